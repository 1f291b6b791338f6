//! The threaded UNIX-socket server (docs/protocol.md §1.5–1.9).
//!
//! [`run`] follows lvm2's `daemon_start`: `LC_ALL=C`; systemd socket activation; daemonize unless
//! in the foreground (the parent returns only when the child is serving, or exits with the
//! child's code); the locked pidfile; signal handlers; the socket (see `listen`); then the main
//! loop. The main loop `poll`s the listening socket and the wake pipe (signals and ending
//! connection threads write to it), accepts clients while under the connection cap and gives each
//! its own thread (see `conn`). On a shutdown signal it stops accepting, lets requests in flight
//! finish, unblocks idle clients and joins every thread, so it exits promptly even with idle
//! clients connected (C 2.02.187 waits for them to hang up). Then `Handler::shutdown`, and the
//! socket (unless activated) and pidfile are removed. When the last client has left, the free
//! heap glibc keeps after a burst is given back (`malloc_trim`; at most every 200 ms).
//!
//! `run` uses process-wide state (signal handlers, the logger) and forks: call it once, from the
//! main thread, before starting any thread of your own when not in the foreground.
#![forbid(unsafe_code)]

use super::conn::{self, Shared};
use super::log;
use super::process;
use super::server_config::{ServerConfig, ServerError};
use super::sys::{self, Pidfile, PidfileError, Wake};
use super::Handler;
use crate::{log_error, log_fatal, log_info};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use super::sys::request_shutdown;

/// How long shutdown waits for requests in flight before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Least time between two heap trims when clients come and go quickly (the trim after the last
/// client of a burst is deferred, never skipped).
const TRIM_INTERVAL: Duration = Duration::from_millis(200);

/// Start the daemon and serve until a shutdown signal or the idle timeout. Daemonizes unless
/// `config.foreground`.
pub fn run(config: ServerConfig, handler: Arc<dyn Handler>) -> Result<(), ServerError> {
    std::env::set_var("LC_ALL", "C");
    log::init(&config.name, config.log, config.foreground);
    let activated = sys::activated_socket(&config.socket_path);
    let ready = if config.foreground {
        None
    } else {
        let keep: Vec<i32> = activated.iter().map(|fd| fd.as_raw_fd()).collect();
        let pidfile = config.pidfile.clone().unwrap_or_default();
        let ready = process::daemonize(&keep, |code, verdict| {
            if code == 13 {
                eprintln!(
                    "Failed to acquire lock on {}. Already running?",
                    pidfile.display()
                );
            } else {
                if !verdict.is_empty() {
                    eprintln!("{verdict}");
                }
                eprintln!("Child exited with code {code}");
            }
            code
        })
        .map_err(|e| ServerError::Io("daemonize".into(), e))?;
        Some(ready)
    };
    match start(config, handler, activated) {
        Ok(server) => {
            if let Some(pipe) = ready {
                pipe.ready();
            }
            server.serve()
        }
        Err(e) => {
            log_fatal!("{}", e);
            if let Some(pipe) = ready {
                pipe.fail(&e.to_string());
            }
            Err(e)
        }
    }
}

/// A started server: pidfile held, signals routed, socket listening.
struct Server {
    shared: Arc<Shared>,
    listener: UnixListener,
    activated: bool,
    pidfile: Option<Pidfile>,
    threads: Vec<JoinHandle<()>>,
    next_id: u64,
}

fn start(
    config: ServerConfig,
    handler: Arc<dyn Handler>,
    activated: Option<OwnedFd>,
) -> Result<Server, ServerError> {
    let pidfile = match &config.pidfile {
        Some(p) => Some(Pidfile::acquire(p).map_err(|e| match e {
            PidfileError::Locked => ServerError::AlreadyRunning(p.clone()),
            PidfileError::Io(what, e) => ServerError::Io(what, e),
        })?),
        None => None,
    };
    let wake = Arc::new(Wake::new().map_err(|e| ServerError::Io("pipe".into(), e))?);
    sys::install_signal_handlers(&wake)
        .map_err(|e| ServerError::Io("signal handlers".into(), e))?;
    let is_activated = activated.is_some();
    let listener = match activated {
        Some(fd) => {
            log_info!("using the socket passed by systemd");
            UnixListener::from(fd)
        }
        None => super::listen::open_socket(&config.socket_path)?,
    };
    Ok(Server {
        shared: Arc::new(Shared::new(config, handler, wake)),
        listener,
        activated: is_activated,
        pidfile,
        threads: Vec::new(),
        next_id: 0,
    })
}

impl Server {
    fn serve(mut self) -> Result<(), ServerError> {
        let c = &self.shared.config;
        log_info!("{} listening on {}", c.name, c.socket_path.display());
        let idle_timeout = c.idle_timeout;
        let mut idle_since: Option<Instant> = None;
        let mut accept_paused_until: Option<Instant> = None;
        // Free heap goes back to the kernel once the last client has left (see `give_back`).
        let mut served_since_trim = false;
        let mut last_trim: Option<Instant> = None;
        loop {
            self.reap();
            if sys::shutdown_requested() {
                log_info!(
                    "{} shutdown requested by signal {}.",
                    self.shared.config.name,
                    sys::shutdown_signal()
                );
                break;
            }
            let conns = self.shared.connections();
            if let Some(limit) = idle_timeout {
                if conns == 0 && self.shared.handler.is_idle() {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= limit {
                        log_info!("Inactive for {} seconds. Exiting.", limit.as_secs());
                        break;
                    }
                } else {
                    idle_since = None;
                }
            }
            if accept_paused_until.is_some_and(|t| Instant::now() >= t) {
                accept_paused_until = None;
            }
            let accepting =
                conns < self.shared.config.max_connections && accept_paused_until.is_none();
            let mut trim_in = None;
            if served_since_trim && conns == 0 {
                match last_trim.map(|t| TRIM_INTERVAL.saturating_sub(t.elapsed())) {
                    Some(wait) if !wait.is_zero() => trim_in = Some(wait),
                    _ => {
                        sys::release_free_heap();
                        served_since_trim = false;
                        last_trim = Some(Instant::now());
                    }
                }
            }
            // Wake at least once a second while the idle timeout or an accept pause runs, and in
            // time for a deferred heap trim.
            let timeout = if let Some(wait) = trim_in {
                PollTimeout::from(wait.as_millis().clamp(1, 1000) as u16)
            } else if idle_timeout.is_some() || accept_paused_until.is_some() {
                PollTimeout::from(1000u16)
            } else {
                PollTimeout::NONE
            };
            let wake = Arc::clone(&self.shared.wake);
            let mut fds = vec![PollFd::new(wake.read_fd(), PollFlags::POLLIN)];
            if accepting {
                fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(ServerError::Io("poll".into(), e.into())),
            }
            let listen_ready = accepting
                && fds[1]
                    .revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR));
            drop(fds);
            wake.drain();
            if listen_ready && !sys::shutdown_requested() {
                served_since_trim = true;
                if self.accept_all() {
                    idle_since = None;
                } else {
                    accept_paused_until = Some(Instant::now() + Duration::from_millis(100));
                }
            }
        }
        self.finish();
        Ok(())
    }

    /// Accept every waiting client (up to the cap). False when accepting failed for lack of
    /// resources (then the caller pauses accepting briefly instead of spinning).
    fn accept_all(&mut self) -> bool {
        while self.shared.connections() < self.shared.config.max_connections {
            match self.listener.accept() {
                Ok((stream, _)) => self.spawn(stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log_error!("accept failed: {e}");
                    return !matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    );
                }
            }
        }
        true
    }

    fn spawn(&mut self, stream: std::os::unix::net::UnixStream) {
        let id = self.next_id;
        self.next_id += 1;
        if let Err(e) = self.shared.register(id, &stream) {
            log_error!("cannot track connection: {e}");
            return;
        }
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{id}"))
            .stack_size(self.shared.config.thread_stack)
            .spawn(move || conn::serve(&shared, id, stream));
        match spawned {
            Ok(h) => self.threads.push(h),
            Err(e) => {
                log_error!("cannot start a connection thread: {e}");
                self.shared.forget(id);
            }
        }
    }

    /// Join the threads that have ended.
    fn reap(&mut self) {
        let (done, running): (Vec<_>, Vec<_>) =
            self.threads.drain(..).partition(|h| h.is_finished());
        self.threads = running;
        for h in done {
            let _ = h.join();
        }
    }

    /// Stop clients, wait for requests in flight, join threads, clean up.
    fn finish(mut self) {
        self.shared.stop_all();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let wake = Arc::clone(&self.shared.wake);
        loop {
            // A thread leaves the registry (and wakes us) as its very last step.
            if self.shared.connections() == 0 {
                for h in self.threads.drain(..) {
                    let _ = h.join();
                }
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log_error!(
                    "{} connection(s) still busy after {} s; exiting anyway",
                    self.shared.connections(),
                    SHUTDOWN_GRACE.as_secs()
                );
                break;
            }
            let ms = left.as_millis().min(1000) as u16;
            let mut fds = [PollFd::new(wake.read_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(ms));
            wake.drain();
        }
        self.shared.handler.shutdown();
        if !self.activated {
            let _ = std::fs::remove_file(&self.shared.config.socket_path);
        }
        if let Some(p) = self.pidfile.take() {
            p.remove();
        }
        log_info!("{} exiting", self.shared.config.name);
    }
}
