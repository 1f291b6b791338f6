//! The daemon's loop (docs/protocol.md §7.1): one thread polls the kernel link, one fd per CPG
//! group and a signalfd; it feeds the engine and sends the engine's kernel replies.
//!
//! Signals: INT/QUIT/TERM/HUP exit only when no log exists ("Cluster logs exist. Refusing to
//! exit." otherwise); USR1/USR2 dump the log and cluster state to the log; PIPE is ignored.
#![forbid(unsafe_code)]

use crate::connector::{self, KernelLink, LinkError};
use crate::engine::{Engine, KernelOut};
use common::{log_error, log_info};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::AsFd;

/// Why the loop stopped.
#[derive(Debug)]
pub enum Exit {
    /// A shutdown signal with no logs left.
    Clean,
    Fatal(String),
}

fn handled_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        s.add(sig);
    }
    s
}

/// Block the handled signals (call before any thread starts) and return their signalfd.
pub fn signal_fd() -> nix::Result<SignalFd> {
    let set = handled_signals();
    set.thread_block()?;
    // SIGPIPE needs nothing: the Rust runtime starts every program with it ignored.
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}

fn send_out(engine: &mut Engine, link: &mut dyn KernelLink) {
    for uuid in engine.take_wakes() {
        crate::wake::spawn(uuid);
    }
    for o in engine.take_kernel_out() {
        let frame = match &o {
            KernelOut::Reply(r) => connector::encode_reply(r),
            KernelOut::Ack { seq, error } => connector::encode_ack(*seq, *error),
        };
        if let Err(e) = link.send(&frame) {
            log_error!("Failed to respond to kernel: {e}");
        }
    }
}

/// Log the SIGUSR1 dump.
pub fn dump(engine: &Engine) {
    for line in engine.dump() {
        log_error!("{line}");
    }
}

/// Serve until a shutdown signal finds no logs.
pub fn run(engine: &mut Engine, link: &mut dyn KernelLink, sigfd: &SignalFd) -> Exit {
    log_info!("Starting cmirrord:");
    loop {
        let (ready_sig, ready_kernel, ready_groups) = {
            let groups = engine.transport().poll_fds();
            let mut fds = vec![
                PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(link.as_fd(), PollFlags::POLLIN),
            ];
            for (fd, _) in &groups {
                fds.push(PollFd::new(*fd, PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::from(1000u16)) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Exit::Fatal(format!("poll: {e}")),
            }
            let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
            let g: Vec<String> = fds[2..]
                .iter()
                .zip(&groups)
                .filter(|(p, _)| ready(p))
                .map(|(_, (_, name))| name.clone())
                .collect();
            (ready(&fds[0]), ready(&fds[1]), g)
        };
        if ready_kernel {
            match link.recv() {
                Ok(f) => engine.kernel_request(f.req),
                Err(LinkError::BadFrame(w)) => log_error!("{w}"),
                Err(e) => log_error!("{e}"),
            }
            send_out(engine, link);
        }
        for g in ready_groups {
            let events = engine.transport().dispatch(&g);
            for ev in events {
                engine.handle_event(ev);
                send_out(engine, link);
            }
        }
        if ready_sig {
            while let Ok(Some(si)) = sigfd.read_signal() {
                match Signal::try_from(si.ssi_signo as i32) {
                    Ok(Signal::SIGUSR1 | Signal::SIGUSR2) => dump(engine),
                    Ok(_) => {
                        if !engine.has_logs() {
                            return Exit::Clean;
                        }
                        log_error!("Cluster logs exist.  Refusing to exit.");
                    }
                    Err(_) => log_info!("Unknown signal received... ignoring"),
                }
            }
        }
    }
}
