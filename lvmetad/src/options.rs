//! lvmetad's command line, read as lvm2 2.02.187 reads it: the shared daemon options
//! (`common::daemon::cli`), `-?`, `--no-verify`; the texts and exit codes of C (`-V` exits 1,
//! a bad option prints usage on stderr and exits 0).
#![forbid(unsafe_code)]

use common::daemon::cli::{add_common_options, server_config, DaemonSpec, Invocation};
use common::daemon::ServerConfig;
use common::paths;

/// The lvm2 release whose protocol we speak (`-V`).
pub const LVM_VERSION: &str = "2.02.187(2) (2020-03-24)";

/// What lvmetad runs with.
#[derive(Debug)]
pub struct Options {
    pub config: ServerConfig,
    /// Check the cache against the disks (off with `--no-verify`: C's behaviour).
    pub verify: bool,
}

fn usage(prog: &str) -> String {
    format!(
        "Usage:\n\
         {prog} [-V] [-h] [-f] [-l level[,level ...]] [-s path] [-t secs]\n\n\
         \x20  -V       Show version of lvmetad\n\
         \x20  -h       Show this help information\n\
         \x20  -f       Don't fork, run in the foreground\n\
         \x20  -l       Logging message levels (all,fatal,error,warn,info,wire,debug)\n\
         \x20  -p       Set path to the pidfile\n\
         \x20  -s       Set path to the socket to listen on\n\
         \x20  -t       Time to wait in seconds before shutdown on idle (missing or 0 = infinite)\n\
         \x20  --root-only  Refuse clients that are not root\n\
         \x20  --no-verify  Serve the cache without checking it against the disks (C's behaviour)\n\n"
    )
}

/// Parse `args` (the program name first).
pub fn parse(args: &[String]) -> Invocation<Options> {
    let prog = args.first().map_or("lvmetad", String::as_str);
    let mut opts = getopts::Options::new();
    add_common_options(&mut opts);
    opts.optflag("?", "", "show this help on stderr");
    opts.optflag(
        "",
        "no-verify",
        "serve the cache without checking it against the disks",
    );
    let m = match opts.parse(args.get(1..).unwrap_or_default()) {
        Ok(m) => m,
        // C's getopt prints its complaint, then usage on stderr, and exits 0.
        Err(e) => return Invocation::complain(format!("{prog}: {e}\n{}", usage(prog)), 0),
    };
    if m.opt_present("h") {
        return Invocation::print(usage(prog), 0);
    }
    if m.opt_present("?") {
        return Invocation::complain(usage(prog), 0);
    }
    if m.opt_present("V") {
        return Invocation::print(format!("lvmetad version: {LVM_VERSION}\n"), 1);
    }
    let spec = DaemonSpec {
        name: "lvmetad",
        protocol: crate::PROTOCOL,
        protocol_version: crate::PROTOCOL_VERSION,
        socket_env: "LVM_LVMETAD_SOCKET",
        default_socket: paths::default_socket("lvmetad"),
        pidfile_env: "LVM_LVMETAD_PIDFILE",
        default_pidfile: paths::default_pidfile("lvmetad"),
    };
    match server_config(&spec, &m) {
        Ok(config) => Invocation::Run(Options {
            config,
            verify: !m.opt_present("no-verify"),
        }),
        Err(_) => Invocation::complain("Invalid value of timeout parameter.\n", 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn parse_args(args: &[&str]) -> Invocation<Options> {
        parse(&common::test_support::argv("lvmetad", args))
    }

    fn exit_of(i: Invocation<Options>) -> (String, String, i32) {
        let (out, err, code) = i.exit().expect("prints and exits");
        (out.to_owned(), err.to_owned(), code)
    }

    #[test]
    fn version_help_and_bad_options_exit_as_c_does() {
        let (out, err, code) = exit_of(parse_args(&["-V"]));
        assert_eq!(
            (out.as_str(), err.as_str(), code),
            ("lvmetad version: 2.02.187(2) (2020-03-24)\n", "", 1)
        );
        let (out, err, code) = exit_of(parse_args(&["-h"]));
        assert!(out.starts_with("Usage:\nlvmetad [-V]") && err.is_empty() && code == 0);
        let (out, err, code) = exit_of(parse_args(&["-?"]));
        assert!(out.is_empty() && err.starts_with("Usage:") && code == 0);
        let (out, err, code) = exit_of(parse_args(&["-x"]));
        assert!(
            out.is_empty() && err.starts_with("lvmetad: ") && err.contains("Usage:") && code == 0
        );
        let (_, err, code) = exit_of(parse_args(&["-t", "abc"]));
        assert_eq!(
            (err.as_str(), code),
            ("Invalid value of timeout parameter.\n", 1)
        );
    }

    #[test]
    fn run_options() {
        let Invocation::Run(o) = parse_args(&["-f", "-s", "/tmp/x.socket", "--no-verify"]) else {
            panic!("does not run");
        };
        assert!(o.config.foreground && !o.verify);
        assert_eq!(o.config.socket_path, PathBuf::from("/tmp/x.socket"));
        let Invocation::Run(o) = parse_args(&[]) else {
            panic!("does not run");
        };
        assert!(o.verify && !o.config.foreground);
    }
}
