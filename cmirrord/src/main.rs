//! cmirrord: the cluster mirror log daemon. Options as C: `-f/--foreground`, `-h/--help`.
//!
//! Test hook: with `CMIRRORD_KERNEL_SOCKET=PATH` the kernel link is a UNIX datagram socket at
//! PATH carrying the same connector frames, instead of netlink (see `cmirrord-kclient`).

use cmirrord::connector::{KernelLink, NetlinkLink, UnixLink};
use cmirrord::daemon::{self, Exit};
use cmirrord::engine::Engine;
use common::daemon::log::{self, LogConfig};
use common::{log_error, log_info};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
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

/// Fork; the parent waits until the child says it is ready (exit 0) or dies (its code mapped
/// to a message, exit 1). Returns the child's end of the readiness pipe.
fn daemonize() -> OwnedFd {
    use nix::unistd::{fork, ForkResult};
    let (r, w) = match nix::unistd::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cmirrord: pipe: {e}");
            std::process::exit(1);
        }
    };
    // SAFETY: single-threaded at this point (nothing has spawned a thread yet).
    match unsafe { fork() } {
        Err(e) => {
            eprintln!("Unable to fork(): {e}");
            std::process::exit(1);
        }
        Ok(ForkResult::Parent { child }) => {
            drop(w);
            let mut b = [0u8; 1];
            let mut f = std::fs::File::from(r);
            if matches!(f.read(&mut b), Ok(1)) {
                std::process::exit(0);
            }
            let code = match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
                _ => 1,
            };
            for line in start_failure(code).lines() {
                log_error!("{line}");
            }
            std::process::exit(1);
        }
        Ok(ForkResult::Child) => {
            drop(r);
            let _ = nix::unistd::setsid();
            let _ = std::env::set_current_dir("/");
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                use std::os::fd::AsRawFd;
                for fd in 0..3 {
                    let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
                }
            }
            w
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

    let sigfd = match daemon::signal_fd() {
        Ok(s) => s,
        Err(e) => {
            log_error!("signalfd: {e}");
            std::process::exit(1);
        }
    };
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
    if let Some(w) = ready {
        let _ = std::fs::File::from(w).write_all(b"r");
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
