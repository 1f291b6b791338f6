//! cmirrord: the cluster mirror log daemon. Options as C: `-f/--foreground`, `-h/--help`.
//!
//! The pidfile is `<pid dir>/cmirrord.pid` (set by ./configure), or `CMIRRORD_PIDFILE`.
//!
//! Test hook: with `CMIRRORD_KERNEL_SOCKET=PATH` the kernel link is a UNIX datagram socket at
//! PATH carrying the same connector frames, instead of netlink (see `cmirrord-kclient`).
//! `CMIRRORD_TRACE=1` logs every resync hand-out line as it happens.
#![forbid(unsafe_code)]

use cmirrord::connector::{KernelLink, NetlinkLink, UnixLink};
use cmirrord::daemon::{self, Exit};
use cmirrord::engine::Engine;
use common::daemon::log::{self, LogConfig};
use common::daemon::process::{self, ReadyPipe};
use common::{log_error, log_info};
use std::path::PathBuf;

fn usage(to_stderr: bool) {
    let text = "Usage: cmirrord [options]\n   -f, --foreground    stay in the foreground, log to the terminal\n   -h, --help          print this help\n";
    if to_stderr {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// What the parent prints when the child fails to start (C's exit codes).
fn start_failure(code: i32) -> &'static str {
    match code {
        2 => "Failed to create lockfile\nProcess already running?",
        3 => "Unable to create netlink socket",
        4 => "Unable to bind to netlink socket",
        5 => "Unable to setsockopt on netlink socket",
        6 => {
            "Unable to initialize checkpoint service\nHas the cluster infrastructure been started?"
        }
        1 => "Failed to start: Generic error",
        _ => "Failed to start: Unknown error",
    }
}

/// Fork into the background with common's daemonize; the parent maps a failed child's exit
/// code to C's message and exits 1.
fn daemonize() -> ReadyPipe {
    let forked = process::daemonize(&[], |code, _| {
        for line in start_failure(code).lines() {
            log_error!("{line}");
        }
        1
    });
    match forked {
        Ok(ready) => {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            ready
        }
        Err(e) => {
            eprintln!("Unable to fork(): {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = getopts::Options::new();
    opts.optflag(
        "f",
        "foreground",
        "stay in the foreground, log to the terminal",
    );
    opts.optflag("h", "help", "print this help");
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(_) => {
            usage(true);
            std::process::exit(2);
        }
    };
    if m.opt_present("h") {
        usage(false);
        return;
    }
    if !m.free.is_empty() {
        usage(true);
        std::process::exit(2);
    }
    let foreground = m.opt_present("f");
    let ready = if foreground { None } else { Some(daemonize()) };
    log::init("cmirrord", LogConfig::parse("info,warn"), foreground);
    let pidfile = std::env::var_os("CMIRRORD_PIDFILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(common::paths::default_pidfile("cmirrord")));
    let pidfile = match process::Pidfile::acquire(&pidfile) {
        Ok(p) => p,
        Err(e) => {
            log_error!("Failed to create lockfile {}: {e}", pidfile.display());
            std::process::exit(2);
        }
    };

    let sigfd = match daemon::signal_fd() {
        Ok(s) => s,
        Err(e) => {
            log_error!("signalfd: {e}");
            std::process::exit(1);
        }
    };
    cmirrord::mirror_log::set_trace(std::env::var_os("CMIRRORD_TRACE").is_some_and(|v| v == "1"));
    let test_socket = std::env::var_os("CMIRRORD_KERNEL_SOCKET").map(PathBuf::from);
    let mut link: Box<dyn KernelLink> = match &test_socket {
        Some(p) => match UnixLink::bind(p) {
            Ok(l) => Box::new(l),
            Err(e) => {
                log_error!("{e}");
                std::process::exit(3);
            }
        },
        None => match NetlinkLink::open() {
            Ok(l) => Box::new(l),
            Err((code, e)) => {
                log_error!("{e}");
                std::process::exit(code);
            }
        },
    };
    let mut engine = Engine::new(transport(), Box::new(cmirrord::disk::open_disk));
    if let Some(r) = ready {
        r.ready();
    }
    let code = match daemon::run(&mut engine, link.as_mut(), &sigfd) {
        Exit::Clean => {
            engine.leave_all();
            log_info!("cmirrord exiting");
            0
        }
        Exit::Fatal(why) => {
            log_error!("{why}");
            1
        }
    };
    if let Some(p) = test_socket {
        let _ = std::fs::remove_file(p);
    }
    pidfile.remove();
    std::process::exit(code);
}

#[cfg(feature = "cpg")]
fn transport() -> Box<dyn cmirrord::engine::Transport> {
    Box::new(cmirrord::cpg::CpgTransport::new())
}

#[cfg(not(feature = "cpg"))]
fn transport() -> Box<dyn cmirrord::engine::Transport> {
    log_error!("cmirrord was built without the cpg feature: no cluster transport");
    std::process::exit(1);
}
