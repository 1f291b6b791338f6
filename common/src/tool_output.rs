//! Standard output of the command-line tools (`lvmetad-scan`, `lvmetactl`).
//!
//! Everything a tool prints for its reader goes through [`emit`]: a reader that went away
//! (`| head`, `| true`) ends the tool quietly with status 0, as a C tool killed by SIGPIPE
//! ends a pipeline that did what it wanted; `println!` would panic on the `EPIPE` instead.
//! A tool's usage and help go the same way (`Invocation::or_exit_with(|s| emit(tool, s))`).
#![forbid(unsafe_code)]

use std::io::{ErrorKind, Write};

/// Write `text` to stdout and flush. A closed pipe exits 0 at once; any other write error is
/// reported as `TOOL: writing the output: ERROR` and exits 1.
pub fn emit(tool: &str, text: &str) {
    if let Err(e) = write_all(&mut std::io::stdout().lock(), text) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("{tool}: writing the output: {e}");
        std::process::exit(1);
    }
}

fn write_all(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone.
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_reader_is_a_broken_pipe_not_a_panic() {
        let e = write_all(&mut Closed, "x").expect_err("the write must fail");
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
        let mut v = Vec::new();
        write_all(&mut v, "abc\n").expect("a vector takes everything");
        assert_eq!(v, b"abc\n");
    }
}
