//! cmirrord: the cluster mirror log daemon. The command line and environment are parsed by
//! `cmirrord::options`; this file starts the daemon in C's order (fork, log, pidfile, signals,
//! kernel link, engine) and maps failures to C's exit codes.
//!
//! The pidfile is `<pid dir>/cmirrord.pid` (set by ./configure), or `CMIRRORD_PIDFILE`.
//! Test hook: with `CMIRRORD_KERNEL_SOCKET=PATH` the kernel link is a UNIX datagram socket at
//! PATH carrying the same connector frames, instead of netlink (see `cmirrord-kclient`).
#![forbid(unsafe_code)]

use cmirrord::connector::{KernelLink, NetlinkLink, UnixLink};
use cmirrord::daemon::{self, Exit};
use cmirrord::engine::Engine;
use common::daemon::log::{self, LogConfig};
use common::daemon::process::{self, ReadyPipe};
use common::{log_error, log_info};

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
    let args: Vec<String> = std::env::args().collect();
    let o = cmirrord::options::parse(&args, &|k| std::env::var_os(k)).or_exit();
    let ready = if o.foreground {
        None
    } else {
        Some(daemonize())
    };
    log::init("cmirrord", LogConfig::parse("info,warn"), o.foreground);
    let pidfile = match process::Pidfile::acquire(&o.pidfile) {
        Ok(p) => p,
        Err(e) => {
            log_error!("Failed to create lockfile {}: {e}", o.pidfile.display());
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
    cmirrord::mirror_log::set_trace(o.trace);
    let test_socket = o.kernel_socket;
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
