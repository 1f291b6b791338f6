//! cmirrord's command line and environment, as C reads them: `-f/--foreground`, `-h/--help`
//! (usage on stdout, exit 0); a bad option or an argument prints usage on stderr and exits 2.
//! `CMIRRORD_PIDFILE` overrides the configured pidfile; the test hooks `CMIRRORD_KERNEL_SOCKET`
//! (a UNIX datagram socket instead of netlink) and `CMIRRORD_TRACE=1` (log every resync
//! hand-out) are read here too.
#![forbid(unsafe_code)]

use common::daemon::cli::Invocation;
use std::path::PathBuf;

/// What cmirrord runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub foreground: bool,
    pub pidfile: PathBuf,
    /// The test kernel link, when set.
    pub kernel_socket: Option<PathBuf>,
    pub trace: bool,
}

const USAGE: &str = "Usage: cmirrord [options]\n   -f, --foreground    stay in the foreground, log to the terminal\n   -h, --help          print this help\n";

/// Parse `args` (the program name first) with the environment variable lookup `env`.
pub fn parse(
    args: &[String],
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Invocation<Options> {
    let mut opts = getopts::Options::new();
    opts.optflag(
        "f",
        "foreground",
        "stay in the foreground, log to the terminal",
    );
    opts.optflag("h", "help", "print this help");
    let m = match opts.parse(args.get(1..).unwrap_or_default()) {
        Ok(m) => m,
        Err(_) => return Invocation::complain(USAGE, 2),
    };
    if m.opt_present("h") {
        return Invocation::print(USAGE, 0);
    }
    if !m.free.is_empty() {
        return Invocation::complain(USAGE, 2);
    }
    Invocation::Run(Options {
        foreground: m.opt_present("f"),
        pidfile: env("CMIRRORD_PIDFILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(common::paths::default_pidfile("cmirrord"))),
        kernel_socket: env("CMIRRORD_KERNEL_SOCKET").map(PathBuf::from),
        trace: env("CMIRRORD_TRACE").is_some_and(|v| v == "1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], vars: &[(&str, &str)]) -> Invocation<Options> {
        let v: Vec<String> = std::iter::once("cmirrord")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(&v, &|k| {
            vars.iter()
                .find(|(name, _)| name == k)
                .map(|(_, val)| val.into())
        })
    }

    #[test]
    fn help_and_usage_errors() {
        for (args, code, on_stdout) in [
            (&["-h"][..], 0, true),
            (&["--help"][..], 0, true),
            (&["-x"][..], 2, false),
            (&["extra"][..], 2, false),
        ] {
            match run(args, &[]) {
                Invocation::Exit {
                    stdout,
                    stderr,
                    code: c,
                } => {
                    let text = if on_stdout { &stdout } else { &stderr };
                    assert!(text.starts_with("Usage: cmirrord"), "{args:?}");
                    assert_eq!(c, code, "{args:?}");
                }
                Invocation::Run(o) => panic!("{args:?} runs with {o:?}"),
            }
        }
    }

    #[test]
    fn options_and_environment() {
        let Invocation::Run(o) = run(
            &["-f"],
            &[
                ("CMIRRORD_PIDFILE", "/tmp/c.pid"),
                ("CMIRRORD_KERNEL_SOCKET", "/tmp/k.sock"),
                ("CMIRRORD_TRACE", "1"),
            ],
        ) else {
            panic!("does not run");
        };
        assert_eq!(
            o,
            Options {
                foreground: true,
                pidfile: "/tmp/c.pid".into(),
                kernel_socket: Some("/tmp/k.sock".into()),
                trace: true,
            }
        );
        let Invocation::Run(o) = run(&[], &[("CMIRRORD_TRACE", "yes")]) else {
            panic!("does not run");
        };
        assert!(!o.foreground && !o.trace && o.kernel_socket.is_none());
    }
}
