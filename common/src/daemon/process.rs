//! Process plumbing every daemon shares, socket or not: the locked pidfile and daemonizing with a
//! readiness pipe. The libdaemon server uses both; cmirrord (which has no socket) too.
//!
//! `daemonize` forks: call it before the process starts any thread.
#![forbid(unsafe_code)]

use super::sys;
pub use super::sys::{Pidfile, PidfileError};
use nix::unistd::ForkResult;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The daemonized child's end of the readiness pipe: tell the waiting parent how start-up went.
pub struct ReadyPipe(std::fs::File);

impl ReadyPipe {
    /// Start-up succeeded: the parent exits 0.
    pub fn ready(mut self) {
        let _ = self.0.write_all(b"R");
    }
    /// Start-up failed: the parent gets `why`, then waits for our exit code.
    pub fn fail(mut self, why: &str) {
        let _ = self.0.write_all(why.as_bytes());
    }
}

/// Fork into the background. The parent waits until the child calls [`ReadyPipe::ready`] and
/// exits 0, or until the child fails or exits: then it calls `on_failure(exit code, message)`
/// and exits with what that returns. The child runs `setsid`, `chdir /`, points fds 0–2 at
/// /dev/null, closes every other fd except `keep`, and gets the [`ReadyPipe`].
pub fn daemonize(
    keep: &[RawFd],
    on_failure: impl FnOnce(i32, &str) -> i32,
) -> io::Result<ReadyPipe> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match sys::fork_single_threaded()? {
        ForkResult::Parent { child } => {
            drop(wr);
            parent_wait(child, rd, on_failure)
        }
        ForkResult::Child => {
            drop(rd);
            nix::unistd::setsid()?;
            std::env::set_current_dir("/")?;
            sys::stdio_to_dev_null()?;
            super::log::reopen_syslog();
            let mut all = vec![0, 1, 2, wr.as_raw_fd()];
            all.extend_from_slice(keep);
            sys::close_stray_fds(&all);
            Ok(ReadyPipe(std::fs::File::from(wr)))
        }
    }
}

fn parent_wait(
    child: nix::unistd::Pid,
    rd: OwnedFd,
    on_failure: impl FnOnce(i32, &str) -> i32,
) -> ! {
    let mut verdict = Vec::new();
    let _ = std::fs::File::from(rd).read_to_end(&mut verdict);
    if verdict.first() == Some(&b'R') {
        std::process::exit(0);
    }
    use nix::sys::wait::{waitpid, WaitStatus};
    let code = loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break 1,
        }
    };
    std::process::exit(on_failure(code, &String::from_utf8_lossy(&verdict)));
}
