//! Running and watching the lvpoll children (docs/protocol.md §6.6).
//!
//! [`ChildWatcher`] is the real [`Launcher`]. A request only queues the command, so the reply
//! does not wait for fork and exec; **one** watcher thread spawns it, then `poll()`s the stdout
//! and stderr pipes of all children at once, logs their lines as they arrive (stdout at INFO,
//! stderr at WARN, in C's `\tLVPOLL: PID n: STDOUT: '...'` form), applies the per-operation timeout (three silent
//! periods of `lvmpolld_internal_timeout` make a monitoring error, as in C), reaps every child
//! and publishes its exit code or signal in the [`Registry`]. The watcher thread is the only
//! place that reaps or signals children, so a PID is never signalled after it was reaped.
//!
//! Shutdown: every child still running gets SIGTERM, then the watcher waits until all are
//! reaped (SIGKILL after [`KILL_AFTER`]), then the thread ends.

use crate::command::{LvpollCommand, RET_EXEC_FAILED};
use crate::launcher::Launcher;
use crate::store::{Entry, Outcome, Registry};
use common::daemon::log;
use common::{log_debug, log_error, log_info, log_warn};
use crossbeam_channel::{Receiver, Sender};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// After SIGTERM at shutdown, children still running this long later get SIGKILL.
pub const KILL_AFTER: Duration = Duration::from_secs(10);
/// A line longer than this is logged in pieces (bounds the memory a chatty child can take).
const MAX_LINE: usize = 16 << 10;
/// Most bytes read from one pipe per wakeup.
const MAX_READ_PER_WAKEUP: usize = 64 << 10;
/// Silent timeout periods that make a monitoring error (C: `timeout > MAX_TIMEOUT`, MAX 2).
const MAX_TIMEOUTS: u32 = 2;

enum Msg {
    Launch(Arc<Entry>, LvpollCommand),
    Terminate(Arc<Entry>),
    Shutdown,
}

/// Spawns lvpoll children and watches them from one thread. The thread starts with the first
/// child (so a daemon can be built before `common::daemon::run` forks).
pub struct ChildWatcher {
    registry: Arc<Registry>,
    running: Mutex<Option<Running>>,
}

struct Running {
    tx: Sender<Msg>,
    wake: Arc<File>,
    thread: Option<JoinHandle<()>>,
}

impl ChildWatcher {
    pub fn new(registry: Arc<Registry>) -> ChildWatcher {
        ChildWatcher {
            registry,
            running: Mutex::new(None),
        }
    }

    fn spawn_thread(&self) -> io::Result<Running> {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut monitor = Monitor {
            registry: Arc::clone(&self.registry),
            rx,
            wake: File::from(r),
            children: Vec::new(),
            stopping: None,
            last_sweep: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("lvpoll-watch".into())
            .stack_size(128 << 10)
            .spawn(move || monitor.run())?;
        Ok(Running {
            tx,
            wake: Arc::new(File::from(w)),
            thread: Some(thread),
        })
    }

    /// Hand a message to the watcher thread, starting it if `start` and it is not running.
    fn send(&self, m: Msg, start: bool) -> Result<(), Msg> {
        let mut guard = self.running.lock();
        if guard.is_none() && start {
            match self.spawn_thread() {
                Ok(r) => *guard = Some(r),
                Err(e) => {
                    log_error!("LVMPOLLD: cannot start the child watcher thread: {}", e);
                    return Err(m);
                }
            }
        }
        let Some(r) = guard.as_ref() else {
            return Err(m);
        };
        let (tx, wake) = (r.tx.clone(), Arc::clone(&r.wake));
        drop(guard);
        tx.send(m).map_err(|e| e.into_inner())?;
        // A full pipe already means "wake up"; nothing else can fail here that matters.
        let _ = (&*wake).write(&[1]);
        Ok(())
    }
}

/// Spawn errors that mean "the exec failed" (the C child would `_exit(101)`), as opposed to
/// failures to create the pipes or the process (a monitoring error in C).
fn is_exec_failure(e: &io::Error) -> bool {
    !matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE)
    )
}

impl Launcher for ChildWatcher {
    fn launch(&self, entry: Arc<Entry>, cmd: LvpollCommand) {
        if let Err(Msg::Launch(e, _)) = self.send(Msg::Launch(entry, cmd), true) {
            self.registry.finish(&e, Err(()));
        }
    }

    fn terminate(&self, entry: &Arc<Entry>) {
        let _ = self.send(Msg::Terminate(Arc::clone(entry)), false);
    }

    fn shutdown(&self) {
        let _ = self.send(Msg::Shutdown, false);
        let thread = self.running.lock().as_mut().and_then(|r| r.thread.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// Start `cmd` for `entry`; on failure publish what C's client would see.
fn spawn(registry: &Registry, entry: Arc<Entry>, cmd: &LvpollCommand) -> Option<Watched> {
    let Some((prog, args)) = cmd.argv.split_first() else {
        registry.finish(&entry, Err(()));
        return None;
    };
    let spawned = Command::new(prog)
        .args(args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            log_error!("LVMPOLLD: failed to run \"{}\": {}", cmd.display(), e);
            let result = if is_exec_failure(&e) {
                Ok(Outcome::Exited(RET_EXEC_FAILED))
            } else {
                Err(())
            };
            registry.finish(&entry, result);
            return None;
        }
    };
    let pid = child.id() as i32;
    log_info!(
        "LVMPOLLD: LVM2 cmd \"{}\" (PID: {})",
        prog.to_string_lossy(),
        pid
    );
    registry.set_pid(&entry, pid);
    let out = child
        .stdout
        .take()
        .map(|p| LineReader::new(p.into(), false));
    let err = child.stderr.take().map(|p| LineReader::new(p.into(), true));
    Some(Watched {
        timeout: Duration::from_secs(u64::from(entry.timeout)),
        entry: Some(entry),
        pid,
        child,
        out,
        err,
        quiet_since: Instant::now(),
        timeouts: 0,
        signalled: false,
    })
}

fn outcome(s: ExitStatus) -> Outcome {
    match (s.code(), s.signal()) {
        (Some(c), _) => Outcome::Exited(c),
        (None, Some(sig)) => Outcome::Signalled(sig),
        (None, None) => Outcome::Exited(-1),
    }
}

/// One pipe of a child, split into lines as data arrives.
struct LineReader {
    file: File,
    buf: Vec<u8>,
    stderr: bool,
}

impl LineReader {
    fn new(fd: OwnedFd, stderr: bool) -> LineReader {
        if let Ok(fl) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
            let _ = fcntl(
                fd.as_raw_fd(),
                FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK),
            );
        }
        LineReader {
            file: File::from(fd),
            buf: Vec::new(),
            stderr,
        }
    }

    fn emit(&self, pid: i32, line: &[u8]) {
        let text = log::Lossy(line);
        if self.stderr {
            log_warn!("\tLVPOLL: PID {}: STDERR: '{}'", pid, text);
        } else {
            log_info!("\tLVPOLL: PID {}: STDOUT: '{}'", pid, text);
        }
    }

    /// Read what is there, at most [`MAX_READ_PER_WAKEUP`] bytes so one chatty child cannot
    /// starve the others. Returns (got data, reached end of file).
    fn pump(&mut self, pid: i32) -> (bool, bool) {
        let mut chunk = [0u8; 4096];
        let mut got = false;
        for _ in 0..MAX_READ_PER_WAKEUP / chunk.len() {
            match self.file.read(&mut chunk) {
                Ok(0) => {
                    if !self.buf.is_empty() {
                        let rest = std::mem::take(&mut self.buf);
                        self.emit(pid, &rest);
                    }
                    return (got, true);
                }
                Ok(n) => {
                    got = true;
                    self.buf.extend_from_slice(&chunk[..n]);
                    while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = self.buf.drain(..=nl).collect();
                        self.emit(pid, &line[..line.len() - 1]);
                    }
                    if self.buf.len() > MAX_LINE {
                        let long = std::mem::take(&mut self.buf);
                        self.emit(pid, &long);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (got, false),
                Err(e) => {
                    log_warn!("LVMPOLLD: reading output of PID {} failed: {}", pid, e);
                    return (got, true);
                }
            }
        }
        (got, false)
    }
}

/// A running child and what the watcher knows about it.
struct Watched {
    /// `None` once its entry got a monitoring error: the child is then only reaped.
    entry: Option<Arc<Entry>>,
    pid: i32,
    child: Child,
    out: Option<LineReader>,
    err: Option<LineReader>,
    /// Start of the current silent period.
    quiet_since: Instant,
    timeouts: u32,
    timeout: Duration,
    signalled: bool,
}

impl Watched {
    /// End of the current silent period (`None`: too far away to represent).
    fn deadline(&self) -> Option<Instant> {
        self.quiet_since.checked_add(self.timeout)
    }

    fn pipes_open(&self) -> bool {
        self.out.is_some() || self.err.is_some()
    }

    fn signal(&mut self, sig: Signal) {
        if kill(Pid::from_raw(self.pid), sig).is_ok() {
            self.signalled = true;
        }
    }

    fn drain(&mut self) {
        for r in [self.out.as_mut(), self.err.as_mut()].into_iter().flatten() {
            r.pump(self.pid);
        }
        self.out = None;
        self.err = None;
    }
}

struct Monitor {
    registry: Arc<Registry>,
    rx: Receiver<Msg>,
    wake: File,
    children: Vec<Watched>,
    /// Set at shutdown: when SIGTERM was sent.
    stopping: Option<Instant>,
    last_sweep: Instant,
}

impl Monitor {
    fn run(&mut self) {
        loop {
            let ready = self.wait_for_events();
            self.take_messages();
            self.read_pipes(&ready);
            self.reap();
            self.check_timeouts();
            if let Some(t) = self.stopping {
                if self.children.is_empty() {
                    log_debug!("LVMPOLLD: all lvpoll commands reaped");
                    return;
                }
                if t.elapsed() >= KILL_AFTER {
                    for w in &mut self.children {
                        w.signal(Signal::SIGKILL);
                    }
                }
            }
        }
    }

    fn next_wakeup(&self) -> Duration {
        let now = Instant::now();
        let mut t = Duration::from_secs(1);
        if self.stopping.is_some() {
            t = Duration::from_millis(20);
        }
        for w in &self.children {
            if !w.pipes_open() {
                t = t.min(Duration::from_millis(5));
            } else if w.entry.is_some() {
                if let Some(deadline) = w.deadline() {
                    t = t.min(deadline.saturating_duration_since(now));
                }
            }
        }
        t
    }

    /// poll() the wake pipe and every open child pipe; returns (child index, stderr?) of the
    /// pipes that are readable or closed.
    fn wait_for_events(&mut self) -> Vec<(usize, bool)> {
        let timeout = self.next_wakeup();
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut map = Vec::with_capacity(2 * self.children.len());
        let mut fds = Vec::with_capacity(1 + 2 * self.children.len());
        fds.push(PollFd::new(self.wake.as_fd(), PollFlags::POLLIN));
        for (i, w) in self.children.iter().enumerate() {
            if let Some(r) = &w.out {
                fds.push(PollFd::new(r.file.as_fd(), PollFlags::POLLIN));
                map.push((i, false));
            }
            if let Some(r) = &w.err {
                fds.push(PollFd::new(r.file.as_fd(), PollFlags::POLLIN));
                map.push((i, true));
            }
        }
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => Vec::new(),
            Ok(_) => fds[1..]
                .iter()
                .zip(map)
                .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(_, m)| m)
                .collect(),
            Err(nix::errno::Errno::EINTR) => Vec::new(),
            Err(e) => {
                log_error!("LVMPOLLD: poll() for lvm2 cmd output failed: {}", e);
                std::thread::sleep(Duration::from_millis(10));
                Vec::new()
            }
        }
    }

    fn take_messages(&mut self) {
        let mut sink = [0u8; 256];
        while matches!(self.wake.read(&mut sink), Ok(n) if n > 0) {}
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Msg::Launch(entry, cmd) => {
                    if self.stopping.is_some() {
                        self.registry.finish(&entry, Err(()));
                        continue;
                    }
                    if let Some(mut w) = spawn(&self.registry, entry, &cmd) {
                        if w.entry.as_ref().is_some_and(|e| e.state().stop_requested) {
                            w.signal(Signal::SIGTERM);
                        }
                        self.children.push(w);
                    }
                }
                Msg::Terminate(e) => {
                    for w in &mut self.children {
                        if w.entry.as_ref().is_some_and(|x| Arc::ptr_eq(x, &e)) {
                            log_info!("LVMPOLLD: sending SIGTERM to lvm2 cmd (PID {})", w.pid);
                            w.signal(Signal::SIGTERM);
                        }
                    }
                }
                Msg::Shutdown => {
                    if self.stopping.is_none() {
                        self.stopping = Some(Instant::now());
                        for w in &mut self.children {
                            w.signal(Signal::SIGTERM);
                        }
                    }
                }
            }
        }
    }

    fn read_pipes(&mut self, ready: &[(usize, bool)]) {
        let now = Instant::now();
        for &(i, is_err) in ready {
            let w = &mut self.children[i];
            let pid = w.pid;
            let slot = if is_err { &mut w.err } else { &mut w.out };
            let Some(r) = slot.as_mut() else { continue };
            let (got, eof) = r.pump(pid);
            if eof {
                *slot = None;
            }
            if got {
                w.quiet_since = now;
                w.timeouts = 0;
            }
        }
    }

    /// Reap children whose pipes are closed, and (once a second) any child at all, so a child
    /// whose pipes are held open by its own children is still reaped when it exits.
    fn reap(&mut self) {
        let sweep = self.last_sweep.elapsed() >= Duration::from_secs(1);
        if sweep {
            self.last_sweep = Instant::now();
        }
        let mut i = 0;
        while i < self.children.len() {
            let w = &mut self.children[i];
            if !(sweep || !w.pipes_open() || self.stopping.is_some()) {
                i += 1;
                continue;
            }
            match w.child.try_wait() {
                Ok(None) => i += 1,
                Ok(Some(status)) => {
                    let mut w = self.children.swap_remove(i);
                    w.drain();
                    self.publish(&mut w, status);
                }
                Err(e) => {
                    log_error!(
                        "LVMPOLLD: waitpid() for lvm2 cmd (PID {}) failed: {}",
                        w.pid,
                        e
                    );
                    let mut w = self.children.swap_remove(i);
                    w.drain();
                    if let Some(e) = w.entry.take() {
                        self.registry.finish(&e, Err(()));
                    }
                }
            }
        }
    }

    fn publish(&self, w: &mut Watched, status: ExitStatus) {
        let o = outcome(status);
        match o {
            Outcome::Exited(0) => {
                log_info!("LVMPOLLD: lvm2 cmd (PID {}) finished successfully", w.pid)
            }
            Outcome::Exited(c) => {
                log_error!("LVMPOLLD: lvm2 cmd (PID {}) failed (retcode: {})", w.pid, c)
            }
            Outcome::Signalled(s) => log_error!(
                "LVMPOLLD: lvm2 cmd (PID {}) got terminated by signal ({})",
                w.pid,
                s
            ),
        }
        if let Some(e) = w.entry.take() {
            self.registry.finish(&e, Ok(o));
        }
    }

    fn check_timeouts(&mut self) {
        let now = Instant::now();
        for w in &mut self.children {
            let expired = matches!(w.deadline(), Some(d) if now >= d);
            if w.entry.is_none() || !w.pipes_open() || !expired {
                continue;
            }
            w.timeouts += 1;
            w.quiet_since = now;
            log_warn!(
                "LVMPOLLD: polling for output of the lvm cmd (PID {}) has timed out",
                w.pid
            );
            if w.timeouts > MAX_TIMEOUTS {
                log_error!(
                    "LVMPOLLD: LVM2 cmd is unresponsive too long (PID {}) (no output for {} seconds)",
                    w.pid,
                    u64::from(w.timeouts) * w.timeout.as_secs()
                );
                if let Some(e) = w.entry.take() {
                    self.registry.finish(&e, Err(()));
                }
            }
        }
    }
}
