//! lvmetad-scan's command line: what to do (`--cache`, `--show` or print a scan), the socket,
//! lvm.conf, the scan's threads and reads, the feeds, and the devices. A usage error prints
//! `lvmetad-scan: ERROR` and the usage on stderr and exits 3; `-h` prints the usage and exits 0.
#![forbid(unsafe_code)]

use common::daemon::cli::Invocation;
use common::scan::device::{default_workers, ScanOptions};
use common::scan::devno;
use std::path::PathBuf;

/// The usage text (`-h`; after a usage error on stderr).
pub const USAGE: &str =
    "Usage: lvmetad-scan [--cache] [-s SOCKET] [--config LVMCONF] [--json] [-j N] [DEV...]
       lvmetad-scan --cache [-s SOCKET] [--config LVMCONF] --major M --minor m
       lvmetad-scan --show [-s SOCKET] [--json] [DEV...]

Scan PVs (block devices under /dev, or the given block devices and image files).
A DEV may be MAJOR:MINOR: with --cache, a present device is scanned, an absent one
is removed from lvmetad (pv_gone).
  --cache        fill lvmetad (full repopulation without DEV, those devices only with DEV)
  --major M --minor m  one more device by number (as MAJOR:MINOR)
  --show         print what lvmetad caches (PVs, VGs, LVs) instead of scanning;
                 DEVs given then only name the devices lvmetad knows by number
  -s SOCKET      lvmetad socket (default: $LVM_LVMETAD_SOCKET or the built-in path)
  --config FILE  lvm.conf to read devices/global_filter from (default:
                 $LVM_SYSTEM_DIR/lvm.conf or the system one, when it exists)
  --json         print JSON instead of tables
  -j N           scan with at most N threads (default: 4 per CPU, at most 16;
                 never more than 2 per CPU on loop devices, RAM disks, images)
  --feeds N      a full --cache sends pv_found as it reads, over N connections at
                 once (default 4; 1: read all, then one after the other, as lvm2)
  --buffered     read through the page cache (default: O_DIRECT as lvm2 reads, buffered
                 only for files that cannot do O_DIRECT); --direct is accepted, a no-op
  -h, --help     this text";

/// The exit status of a usage error.
const USAGE_ERROR: i32 = 3;

/// What lvmetad-scan runs with.
#[derive(Debug)]
pub struct Options {
    /// `--cache`: fill lvmetad.
    pub cache: bool,
    /// `--show`: print what lvmetad caches.
    pub show: bool,
    /// `--json`: JSON instead of tables.
    pub json: bool,
    /// `-s`, else `$LVM_LVMETAD_SOCKET`, else the built-in path.
    pub socket: PathBuf,
    /// `--config`: the lvm.conf to read the global filter from.
    pub config: Option<PathBuf>,
    /// `-j` and `--buffered`.
    pub scan: ScanOptions,
    /// `--feeds`: connections of a full `--cache` (at least 1).
    pub feeds: usize,
    /// The DEV arguments, then `--major`/`--minor` as `MAJOR:MINOR`.
    pub devices: Vec<String>,
}

/// Parse `args` (the program name first); the default socket from `$LVM_LVMETAD_SOCKET`.
pub fn parse(args: &[String]) -> Invocation<Options> {
    parse_with_env(args, std::env::var("LVM_LVMETAD_SOCKET").ok())
}

/// [`parse`] with the value of `$LVM_LVMETAD_SOCKET` given.
fn parse_with_env(args: &[String], env_socket: Option<String>) -> Invocation<Options> {
    match options(args.get(1..).unwrap_or_default(), env_socket) {
        Ok(Some(o)) => Invocation::Run(o),
        Ok(None) => Invocation::print(format!("{USAGE}\n"), 0),
        Err(e) => Invocation::complain(format!("lvmetad-scan: {e}\n{USAGE}\n"), USAGE_ERROR),
    }
}

/// The options, or `None` for `-h`.
fn options(args: &[String], env_socket: Option<String>) -> Result<Option<Options>, String> {
    let mut o = getopts::Options::new();
    o.optflag("", "cache", "");
    o.optflag("", "show", "");
    o.optflag("", "json", "");
    o.optopt("s", "socket", "", "SOCKET");
    o.optopt("", "config", "", "FILE");
    o.optopt("j", "jobs", "", "N");
    o.optopt("", "feeds", "", "N");
    o.optopt("", "major", "", "M");
    o.optopt("", "minor", "", "m");
    o.optflag("", "direct", "");
    o.optflag("", "buffered", "");
    o.optflag("h", "help", "");
    let m = o.parse(args).map_err(|e| e.to_string())?;
    if m.opt_present("h") {
        return Ok(None);
    }
    let socket = m
        .opt_str("s")
        .or(env_socket)
        .unwrap_or_else(|| common::paths::default_socket("lvmetad"));
    let workers = match m.opt_str("j") {
        Some(n) => n.parse().map_err(|_| format!("-j {n}: not a number"))?,
        None => default_workers(),
    };
    let feeds = match m.opt_str("feeds") {
        Some(n) => match n.parse() {
            Ok(k) if k >= 1 => k,
            _ => return Err(format!("--feeds {n}: want a number of at least 1")),
        },
        None => common::scan::feed::MAX_FEEDS,
    };
    let mut devices = m.free.clone();
    match (m.opt_str("major"), m.opt_str("minor")) {
        (Some(ma), Some(mi)) => {
            let (ma, mi) = devno::parse_major_minor_opts(&ma, &mi).map_err(|e| e.to_string())?;
            devices.push(format!("{ma}:{mi}"));
        }
        (None, None) => {}
        _ => return Err("--major and --minor go together".into()),
    }
    Ok(Some(Options {
        cache: m.opt_present("cache"),
        show: m.opt_present("show"),
        json: m.opt_present("json"),
        socket: socket.into(),
        config: m.opt_str("config").map(PathBuf::from),
        scan: ScanOptions {
            workers,
            // O_DIRECT is the default; --direct stays accepted for old command lines.
            direct: !m.opt_present("buffered"),
        },
        feeds,
        devices,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::test_support::argv;

    fn parse_args(args: &[&str]) -> Invocation<Options> {
        parse_with_env(&argv("lvmetad-scan", args), None)
    }

    fn run(args: &[&str]) -> Options {
        match parse_args(args) {
            Invocation::Run(o) => o,
            Invocation::Exit { stderr, .. } => panic!("{args:?} refused: {stderr}"),
        }
    }

    /// The error line of a refused command line (the usage follows it, exit 3).
    fn refusal(args: &[&str]) -> String {
        let i = parse_args(args);
        let (out, err, code) = i.exit().expect("refused");
        assert!(out.is_empty() && code == 3, "{args:?}");
        let (line, usage) = err.split_once('\n').expect("two parts");
        assert_eq!(usage, format!("{USAGE}\n"));
        line.to_owned()
    }

    #[test]
    fn help_prints_the_usage_on_stdout() {
        for h in ["-h", "--help"] {
            let usage = format!("{USAGE}\n");
            assert_eq!(
                parse_args(&[h, "--cache"]).exit(),
                Some((usage.as_str(), "", 0))
            );
        }
        assert!(USAGE.starts_with("Usage: lvmetad-scan [--cache]") && USAGE.ends_with("this text"));
    }

    #[test]
    fn defaults() {
        let o = run(&[]);
        assert!(!o.cache && !o.show && !o.json && o.config.is_none() && o.devices.is_empty());
        assert_eq!(
            o.socket,
            PathBuf::from(common::paths::default_socket("lvmetad"))
        );
        assert_eq!((o.scan.workers, o.scan.direct), (default_workers(), true));
        assert_eq!(o.feeds, common::scan::feed::MAX_FEEDS);
        let Invocation::Run(o) = parse_with_env(&argv("s", &[]), Some("/tmp/env.socket".into()))
        else {
            panic!("does not run");
        };
        assert_eq!(o.socket, PathBuf::from("/tmp/env.socket"));
    }

    #[test]
    fn every_option() {
        let o = run(&[
            "--cache",
            "--json",
            "-s",
            "/tmp/s",
            "--config",
            "/tmp/lvm.conf",
            "-j",
            "3",
            "--feeds",
            "1",
            "--buffered",
            "a.img",
            "--major",
            "8",
            "--minor",
            "16",
            "b.img",
        ]);
        assert!(o.cache && o.json && !o.show);
        assert_eq!(o.socket, PathBuf::from("/tmp/s"));
        assert_eq!(o.config, Some(PathBuf::from("/tmp/lvm.conf")));
        assert_eq!((o.scan.workers, o.scan.direct, o.feeds), (3, false, 1));
        assert_eq!(o.devices, ["a.img", "b.img", "8:16"]);
        let o = run(&["--show", "--socket", "/tmp/t", "--direct", "--jobs", "2"]);
        assert!(o.show && o.scan.direct && o.scan.workers == 2);
        assert_eq!(o.socket, PathBuf::from("/tmp/t"));
    }

    #[test]
    fn each_bad_option_is_a_usage_error() {
        assert_eq!(refusal(&["-j", "x"]), "lvmetad-scan: -j x: not a number");
        for n in ["0", "-1", "many"] {
            assert_eq!(
                refusal(&["--feeds", n]),
                format!("lvmetad-scan: --feeds {n}: want a number of at least 1")
            );
        }
        for half in [&["--major", "8"][..], &["--minor", "1"]] {
            assert_eq!(
                refusal(half),
                "lvmetad-scan: --major and --minor go together"
            );
        }
        assert_eq!(
            refusal(&["--major", "x", "--minor", "1"]),
            "lvmetad-scan: \"x\": not a device path nor MAJOR:MINOR (two decimal numbers)"
        );
        assert!(refusal(&["--major", "8", "--minor", "99999999999"])
            .starts_with("lvmetad-scan: minor 99999999999 is out of range"));
        for args in [&["--bogus"][..], &["-j"], &["-s"], &["--cache=1"]] {
            let line = refusal(args);
            assert!(
                line.starts_with("lvmetad-scan: ") && line.len() > 14,
                "{args:?}"
            );
        }
    }
}
