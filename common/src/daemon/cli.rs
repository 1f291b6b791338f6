//! Command-line options every daemon shares: `-f -s -p -l -t -h -V`, with the socket and pidfile
//! defaults taken from the environment as lvm2 does.
//!
//! Precedence for the socket and pidfile: `-s`/`-p`, then the daemon's environment variable,
//! then its built-in default. `-t` is an unsigned decimal number of seconds below `UINT_MAX`;
//! `0` means never exit.
#![forbid(unsafe_code)]

use super::log::LogConfig;
use super::server_config::ServerConfig;
use std::path::PathBuf;
use std::time::Duration;

/// What one daemon needs to describe its shared options.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    pub name: &'static str,
    pub protocol: &'static str,
    pub protocol_version: i64,
    /// Env var naming the socket (`LVM_LVMETAD_SOCKET`) and the built-in default.
    pub socket_env: &'static str,
    pub default_socket: String,
    /// Env var naming the pidfile (`LVM_LVMETAD_PIDFILE`) and the built-in default.
    pub pidfile_env: &'static str,
    pub default_pidfile: String,
}

/// Add the shared options to a getopts parser (daemons add their own before parsing).
pub fn add_common_options(opts: &mut getopts::Options) {
    opts.optflag("f", "foreground", "don't fork, log to stderr");
    opts.optflag("h", "help", "show this help");
    opts.optflag("V", "version", "show the version");
    opts.optopt(
        "l",
        "log",
        "log types to stderr: all,wire,debug,info,warn",
        "LIST",
    );
    opts.optopt("s", "socket", "socket path", "PATH");
    opts.optopt("p", "pidfile", "pidfile path", "PATH");
    opts.optopt("t", "timeout", "exit after SECS idle (0 = never)", "SECS");
    opts.optflag(
        "",
        "root-only",
        "refuse clients that are not root (SO_PEERCRED)",
    );
}

/// What a daemon's command line asks for: run with the options, or print and exit (help,
/// version, usage errors), exactly as the C daemon prints. Each daemon's library parses its
/// command line into one (unit-tested there); its `main` only calls [`Invocation::or_exit`].
#[derive(Debug)]
pub enum Invocation<T> {
    Run(T),
    /// Print `stderr`, then `stdout`, and exit with `code`.
    Exit {
        stdout: String,
        stderr: String,
        code: i32,
    },
}

impl<T> Invocation<T> {
    /// `text` on stdout, exit `code`.
    pub fn print(text: impl Into<String>, code: i32) -> Self {
        Invocation::Exit {
            stdout: text.into(),
            stderr: String::new(),
            code,
        }
    }

    /// `text` on stderr, exit `code`.
    pub fn complain(text: impl Into<String>, code: i32) -> Self {
        Invocation::Exit {
            stdout: String::new(),
            stderr: text.into(),
            code,
        }
    }

    /// What it would print on stdout and stderr and exit with; `None` when it runs.
    pub fn exit(&self) -> Option<(&str, &str, i32)> {
        match self {
            Invocation::Run(_) => None,
            Invocation::Exit {
                stdout,
                stderr,
                code,
            } => Some((stdout, stderr, *code)),
        }
    }

    /// The options to run with; or print what there is to print and exit the process.
    pub fn or_exit(self) -> T {
        self.or_exit_with(|text| {
            use std::io::Write;
            let _ = std::io::stdout().write_all(text.as_bytes());
            let _ = std::io::stdout().flush();
        })
    }

    /// [`Invocation::or_exit`] writing stdout through `out` (a tool's, which ends quietly on a
    /// closed pipe: `common::tool_output::emit`). Stderr goes first.
    pub fn or_exit_with(self, out: impl FnOnce(&str)) -> T {
        match self {
            Invocation::Run(t) => t,
            Invocation::Exit {
                stdout,
                stderr,
                code,
            } => {
                use std::io::Write;
                let _ = std::io::stderr().write_all(stderr.as_bytes());
                out(&stdout);
                std::process::exit(code)
            }
        }
    }
}

/// Build a [`ServerConfig`] from parsed shared options. Errors are usage errors (bad `-t`).
pub fn server_config(spec: &DaemonSpec, m: &getopts::Matches) -> Result<ServerConfig, String> {
    let from_env = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let socket = m
        .opt_str("s")
        .map(PathBuf::from)
        .or_else(|| from_env(spec.socket_env))
        .unwrap_or_else(|| PathBuf::from(&spec.default_socket));
    let pidfile = m
        .opt_str("p")
        .map(PathBuf::from)
        .or_else(|| from_env(spec.pidfile_env))
        .unwrap_or_else(|| PathBuf::from(&spec.default_pidfile));
    let mut c = ServerConfig::new(spec.name, spec.protocol, spec.protocol_version, socket);
    c.pidfile = Some(pidfile);
    c.foreground = m.opt_present("f");
    c.root_only = m.opt_present("root-only");
    if let Some(list) = m.opt_str("l") {
        c.log = LogConfig::parse(&list);
    }
    if let Some(t) = m.opt_str("t") {
        c.idle_timeout = parse_timeout(&t)?;
    }
    Ok(c)
}

/// `-t SECS`: digits only, below `UINT_MAX`; `0` = never (`None`).
pub fn parse_timeout(s: &str) -> Result<Option<Duration>, String> {
    let bad = || format!("invalid idle timeout {s:?}: expected seconds (0 = never)");
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u32 = s.parse().map_err(|_| bad())?;
    if n == u32::MAX {
        return Err(bad());
    }
    Ok((n > 0).then(|| Duration::from_secs(u64::from(n))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DaemonSpec {
        DaemonSpec {
            name: "testd",
            protocol: "testd",
            protocol_version: 1,
            socket_env: "LVMD_TEST_CLI_SOCKET_UNSET_VAR",
            default_socket: "/run/lvm/testd.socket".into(),
            pidfile_env: "LVMD_TEST_CLI_PIDFILE_UNSET_VAR",
            default_pidfile: "/run/testd.pid".into(),
        }
    }

    fn matches(args: &[&str]) -> getopts::Matches {
        let mut o = getopts::Options::new();
        add_common_options(&mut o);
        o.parse(args).unwrap()
    }

    #[test]
    fn defaults_and_overrides() {
        let c = server_config(&spec(), &matches(&[])).unwrap();
        assert_eq!(c.socket_path, PathBuf::from("/run/lvm/testd.socket"));
        assert_eq!(c.pidfile, Some(PathBuf::from("/run/testd.pid")));
        assert!(!c.foreground);
        assert_eq!(c.idle_timeout, None);
        let c = server_config(
            &spec(),
            &matches(&[
                "-f", "-s", "/tmp/s", "-p", "/tmp/p", "-t", "60", "-l", "all",
            ]),
        )
        .unwrap();
        assert_eq!(c.socket_path, PathBuf::from("/tmp/s"));
        assert_eq!(c.pidfile, Some(PathBuf::from("/tmp/p")));
        assert!(c.foreground);
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(60)));
        assert_eq!(c.log.stderr_mask, u32::MAX);
    }

    #[test]
    fn env_overrides_default() {
        let mut s = spec();
        s.socket_env = "LVMD_TEST_CLI_SOCKET_SET_VAR";
        std::env::set_var("LVMD_TEST_CLI_SOCKET_SET_VAR", "/tmp/from-env.socket");
        let c = server_config(&s, &matches(&[])).unwrap();
        assert_eq!(c.socket_path, PathBuf::from("/tmp/from-env.socket"));
        let c = server_config(&s, &matches(&["-s", "/tmp/x"])).unwrap();
        assert_eq!(c.socket_path, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn timeout_parsing() {
        assert_eq!(parse_timeout("0"), Ok(None));
        assert_eq!(parse_timeout("5"), Ok(Some(Duration::from_secs(5))));
        assert_eq!(
            parse_timeout("4294967294"),
            Ok(Some(Duration::from_secs(4294967294)))
        );
        for bad in [
            "",
            "-1",
            "+3",
            "1.5",
            "4294967295",
            "99999999999",
            "3s",
            " 3",
        ] {
            assert!(parse_timeout(bad).is_err(), "{bad:?} accepted");
        }
        assert!(server_config(&spec(), &matches(&["-t", "x"])).is_err());
    }
}
