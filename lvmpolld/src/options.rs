//! lvmpolld's command line, read as lvm2's lvmpolld reads it: the shared daemon options
//! (`common::daemon::cli`), `-B/--binary` and `--dump`, with C's texts and exit codes (a bad
//! option or a client option mixed with server ones prints usage and exits 1; `-B` must name
//! an executable).
#![forbid(unsafe_code)]

use common::daemon::cli::{self, DaemonSpec, Invocation};
use common::daemon::log::LogType;
use common::daemon::ServerConfig;
use std::path::PathBuf;

const SOCKET_ENV: &str = "LVM_LVMPOLLD_SOCKET";
const PIDFILE_ENV: &str = "LVM_LVMPOLLD_PIDFILE";

/// What lvmpolld runs as.
#[derive(Debug)]
pub enum Options {
    /// The daemon, running `binary lvpoll ...` for its polls.
    Serve {
        config: ServerConfig,
        binary: PathBuf,
    },
    /// `--dump`: print the state of the daemon on `socket`.
    Dump { socket: PathBuf },
}

fn usage(prog: &str) -> String {
    format!(
        "Usage:\n\
         {prog} [-V] [-h] [-f] [-l {{all|wire|debug}}] [-s path] [-B path] [-p path] [-t secs]\n\
         {prog} --dump [-s path]\n\
         \x20  -V|--version     Show version info\n\
         \x20  -h|--help        Show this help information\n\
         \x20  -f|--foreground  Don't fork, run in the foreground\n\
         \x20  --dump           Dump full lvmpolld state\n\
         \x20  -l|--log         Logging message level (-l {{all|wire|debug}})\n\
         \x20  -p|--pidfile     Set path to the pidfile\n\
         \x20  -s|--socket      Set path to the communication socket\n\
         \x20  -B|--binary      Path to lvm2 binary\n\
         \x20  -t|--timeout     Time to wait in seconds before shutdown on idle (missing or 0 = infinite)\n\
         \x20  --root-only      Refuse clients that are not root\n"
    )
}

fn spec() -> DaemonSpec {
    DaemonSpec {
        name: "lvmpolld",
        protocol: crate::PROTOCOL,
        protocol_version: crate::PROTOCOL_VERSION,
        socket_env: SOCKET_ENV,
        default_socket: common::paths::default_socket("lvmpolld"),
        pidfile_env: PIDFILE_ENV,
        default_pidfile: common::paths::default_pidfile("lvmpolld"),
    }
}

/// Parse `args` (the program name first).
pub fn parse(args: &[String]) -> Invocation<Options> {
    let prog = args.first().map_or("lvmpolld", String::as_str);
    let mut opts = getopts::Options::new();
    cli::add_common_options(&mut opts);
    opts.optopt("B", "binary", "path to the lvm2 binary", "PATH");
    opts.optflag("", "dump", "dump the state of a running lvmpolld");
    let m = match opts.parse(args.get(1..).unwrap_or_default()) {
        Ok(m) => m,
        Err(e) => return Invocation::complain(format!("{prog}: {e}\n{}", usage(prog)), 1),
    };
    if m.opt_present("h") {
        return Invocation::print(usage(prog), 0);
    }
    if m.opt_present("V") {
        return Invocation::print(
            format!("lvmpolld version: {}\n", env!("CARGO_PKG_VERSION")),
            0,
        );
    }
    let server_opt = ["B", "f", "l", "p", "t"].iter().any(|o| m.opt_present(o));
    if m.opt_present("dump") {
        if server_opt {
            return Invocation::Exit {
                stdout: usage(prog),
                stderr: "Invalid combination of client and server parameters.\n\n".into(),
                code: 1,
            };
        }
        let socket = m
            .opt_str("s")
            .or_else(|| std::env::var(SOCKET_ENV).ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| common::paths::default_socket("lvmpolld"));
        return Invocation::Run(Options::Dump {
            socket: socket.into(),
        });
    }
    let mut config = match cli::server_config(&spec(), &m) {
        Ok(c) => c,
        Err(e) => {
            return Invocation::complain(format!("Invalid value of timeout parameter. ({e})\n"), 1)
        }
    };
    // Warnings (lvpoll's stderr among them) are always logged, as in C.
    config.log.stderr_mask |= 1 << (LogType::Warn as u32);
    let binary = PathBuf::from(
        m.opt_str("B")
            .unwrap_or_else(|| common::paths::LVM_BINARY.to_owned()),
    );
    if nix::unistd::access(&binary, nix::unistd::AccessFlags::X_OK).is_err() {
        return Invocation::complain(
            format!(
                "E: LVMPOLLD: Execute access rights denied on {}\n",
                binary.display()
            ),
            1,
        );
    }
    Invocation::Run(Options::Serve { config, binary })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Invocation<Options> {
        parse(&common::test_support::argv("lvmpolld", args))
    }

    fn exit_of(i: Invocation<Options>) -> (String, String, i32) {
        let (out, err, code) = i.exit().expect("prints and exits");
        (out.to_owned(), err.to_owned(), code)
    }

    #[test]
    fn help_version_and_refusals() {
        let (out, _, code) = exit_of(parse_args(&["-h"]));
        assert!(out.starts_with("Usage:\nlvmpolld [-V]") && code == 0);
        let (out, _, code) = exit_of(parse_args(&["-V"]));
        assert!(out.starts_with("lvmpolld version: ") && code == 0);
        let (_, err, code) = exit_of(parse_args(&["--bogus"]));
        assert!(err.starts_with("lvmpolld: ") && err.contains("Usage:") && code == 1);
        let (out, err, code) = exit_of(parse_args(&["--dump", "-f"]));
        assert!(err.starts_with("Invalid combination") && out.starts_with("Usage:") && code == 1);
        let (_, err, code) = exit_of(parse_args(&["-t", "x", "-B", "/bin/sh"]));
        assert!(err.starts_with("Invalid value of timeout parameter.") && code == 1);
        let (_, err, code) = exit_of(parse_args(&["-B", "/nonexistent/lvm"]));
        assert_eq!(
            (err.as_str(), code),
            (
                "E: LVMPOLLD: Execute access rights denied on /nonexistent/lvm\n",
                1
            )
        );
    }

    #[test]
    fn serve_and_dump() {
        match parse_args(&["-f", "-B", "/bin/sh", "-s", "/tmp/p.socket"]) {
            Invocation::Run(Options::Serve { config, binary }) => {
                assert!(config.foreground);
                assert_eq!(binary, PathBuf::from("/bin/sh"));
                assert_eq!(config.socket_path, PathBuf::from("/tmp/p.socket"));
                assert_ne!(config.log.stderr_mask & (1 << (LogType::Warn as u32)), 0);
            }
            other => panic!("{other:?}"),
        }
        match parse_args(&["--dump", "-s", "/tmp/d.socket"]) {
            Invocation::Run(Options::Dump { socket }) => {
                assert_eq!(socket, PathBuf::from("/tmp/d.socket"))
            }
            other => panic!("{other:?}"),
        }
    }
}
