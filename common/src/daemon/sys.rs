//! Process-level plumbing of the server, with every `unsafe` call of libdaemon in one place:
//! the signal self-pipe, `fork`, stray-fd closing, the pidfile lock, adopting the
//! socket-activation fd, and the C allocator's tuning.
//!
//! Signals only set a flag and write one byte to a non-blocking pipe (the "wake pipe"), which the
//! main loop polls together with the listening socket; connection threads write to the same pipe
//! when they end. So the main loop never sleeps to poll anything.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{pipe2, ForkResult};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Write end of the wake pipe, for the signal handler (-1 = none yet).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Set by a shutdown signal or [`request_shutdown`].
static SHUTDOWN: AtomicBool = AtomicBool::new(false);
/// The signal that asked for shutdown (0 = none or not a signal).
static SHUTDOWN_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The self-pipe that wakes the main loop.
pub(crate) struct Wake {
    read: OwnedFd,
    write: OwnedFd,
}

impl Wake {
    pub(crate) fn new() -> io::Result<Wake> {
        let (read, write) = pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        Ok(Wake { read, write })
    }
    /// Make the main loop's `poll` return.
    pub(crate) fn wake(&self) {
        // A full pipe already guarantees a wake-up, so EAGAIN is fine to ignore.
        let _ = nix::unistd::write(&self.write, &[1u8]);
    }
    /// Empty the pipe after a wake-up.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = nix::unistd::read(self.read.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
        }
    }
    pub(crate) fn read_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

extern "C" fn on_shutdown_signal(sig: libc::c_int) {
    SHUTDOWN_SIGNAL.store(sig, Ordering::SeqCst);
    SHUTDOWN.store(true, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: errno is thread-local; we save and restore it around write(2), which is
        // async-signal-safe, on a valid one-byte buffer.
        unsafe {
            let saved = *libc::__errno_location();
            libc::write(fd, [1u8].as_ptr().cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// SIGINT, SIGTERM, SIGQUIT, SIGHUP and SIGALRM request shutdown (SIGHUP does not reload, as
/// lvm2); SIGPIPE is ignored so a client hanging up only fails that write.
pub(crate) fn install_signal_handlers(wake: &Wake) -> io::Result<()> {
    WAKE_FD.store(wake.write.as_raw_fd(), Ordering::SeqCst);
    let act = SigAction::new(
        SigHandler::Handler(on_shutdown_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGALRM,
    ] {
        // SAFETY: the handler only touches atomics and calls write(2) (async-signal-safe).
        unsafe { sigaction(sig, &act) }?;
    }
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring a signal installs no code.
    unsafe { sigaction(Signal::SIGPIPE, &ignore) }?;
    Ok(())
}

/// Ask a running server (in this process) to shut down as if it got SIGTERM.
pub fn request_shutdown() {
    SHUTDOWN.store(true, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) of one byte from a valid buffer; a stale fd at worst gets EBADF.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

pub(crate) fn shutdown_requested() -> bool {
    SHUTDOWN.load(Ordering::SeqCst)
}

pub(crate) fn shutdown_signal() -> i32 {
    SHUTDOWN_SIGNAL.load(Ordering::SeqCst)
}

/// Keep a daemon's memory flat under concurrent large replies (a `pv_list` of 1000 PVs is about
/// 370 KB). Call it first thing in `main`, before any thread starts.
///
/// glibc: a fixed, low mmap threshold makes such buffers go straight back to the kernel instead of
/// glibc raising the threshold and keeping them in a heap; arenas are capped at one per CPU, at
/// most 4, so client threads do not each grow a heap of their own. (One arena for all made
/// concurrent `pv_found` feeds queue on its lock: a 1000-PV rescan took 78 ms against 62 ms with
/// two arenas on 2 CPUs, and 2, 4 or 8 arenas made no difference there.)
///
/// musl: nothing to do, and musl has no `mallopt`. Its allocator has one heap for all threads (no
/// arenas), serves big blocks with their own `mmap` and unmaps them on `free`, and gives freed
/// small-block groups back to the kernel itself: what the glibc settings ask for is its default.
/// Measured under the same load in scripts/README.md ("Memory").
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    let arenas = std::thread::available_parallelism().map_or(1, |n| n.get().min(4)) as i32;
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only adjusts allocator parameters; the caller runs it before any thread
    // starts, so no allocation races with the change.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

/// Let the calling thread run only when a CPU would otherwise idle (`SCHED_IDLE`): for
/// background work that must not slow the requests. Through the raw system call, since musl's
/// `sched_setscheduler` does nothing on Linux. A refusal leaves the thread as it was.
pub fn run_when_idle() -> io::Result<()> {
    /// The kernel's `struct sched_param` (libc's differs between glibc and musl).
    #[repr(C)]
    struct KernelSchedParam {
        sched_priority: libc::c_int,
    }
    let param = KernelSchedParam { sched_priority: 0 };
    // SAFETY: sched_setscheduler(2) on the calling thread (pid 0) with a valid, live
    // sched_param of the kernel's layout; it only changes this thread's scheduling class.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0,
            libc::SCHED_IDLE,
            &param as *const KernelSchedParam,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `fork(2)`. The caller guarantees the process has a single thread (the server forks before it
/// starts any), so the child's memory is consistent.
pub(crate) fn fork_single_threaded() -> io::Result<ForkResult> {
    // SAFETY: only called from `server::run` before any thread is spawned; the child only runs
    // ordinary Rust code of this single thread.
    Ok(unsafe { nix::unistd::fork() }?)
}

/// Close every fd except those in `keep` (used by the daemonized child).
pub(crate) fn close_stray_fds(keep: &[RawFd]) {
    let listed: Option<Vec<RawFd>> = std::fs::read_dir("/proc/self/fd").ok().map(|d| {
        d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    });
    let fds = listed.unwrap_or_else(|| {
        let max = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft.min(1 << 16) as RawFd)
            .unwrap_or(1024);
        (0..max).collect()
    });
    for fd in fds {
        if !keep.contains(&fd) {
            // The fd of the /proc/self/fd listing itself is already closed: EBADF is harmless.
            let _ = nix::unistd::close(fd);
        }
    }
}

/// Redirect fds 0, 1 and 2 to /dev/null.
pub(crate) fn stdio_to_dev_null() -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..3 {
        nix::unistd::dup2(null.as_raw_fd(), fd)?;
    }
    Ok(())
}

/// An open, write-locked pidfile holding our pid. The lock lasts while it is alive.
pub struct Pidfile {
    path: PathBuf,
    _file: File,
}

/// Why the pidfile could not be taken.
#[derive(Debug)]
pub enum PidfileError {
    /// Another process holds the lock (lvm2 exits 13: "Already running?").
    Locked,
    Io(String, io::Error),
}

impl std::fmt::Display for PidfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PidfileError::Locked => write!(f, "pidfile is locked by another process"),
            PidfileError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for PidfileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PidfileError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

impl Pidfile {
    /// `dm_create_lockfile`: create (mode 0644, never through a symlink), take a whole-file
    /// `F_SETLK` write lock (20 tries 1 ms apart), then write `"<pid>\n"`.
    pub fn acquire(path: &Path) -> Result<Pidfile, PidfileError> {
        let what = |s: &str| format!("{s} pidfile {}", path.display());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    PidfileError::Io(
                        what("refusing"),
                        io::Error::new(io::ErrorKind::InvalidInput, "it is a symbolic link"),
                    )
                } else {
                    PidfileError::Io(what("cannot open"), e)
                }
            })?;
        let meta = file
            .metadata()
            .map_err(|e| PidfileError::Io(what("cannot stat"), e))?;
        if !meta.file_type().is_file() {
            return Err(PidfileError::Io(
                what("refusing"),
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        let lock = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        let mut tries = 0;
        loop {
            match fcntl(file.as_raw_fd(), FcntlArg::F_SETLK(&lock)) {
                Ok(_) => break,
                Err(Errno::EACCES | Errno::EAGAIN) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(Errno::EACCES | Errno::EAGAIN) => return Err(PidfileError::Locked),
                Err(e) => return Err(PidfileError::Io(what("cannot lock"), e.into())),
            }
        }
        file.set_len(0)
            .map_err(|e| PidfileError::Io(what("cannot truncate"), e))?;
        use std::io::Write;
        (&file)
            .write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(|e| PidfileError::Io(what("cannot write"), e))?;
        Ok(Pidfile {
            path: path.to_owned(),
            _file: file,
        })
    }

    /// Unlink the pidfile (still holding the lock, so no second instance races us).
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Adopt fd 3 as the listening socket when systemd socket activation applies (docs/protocol.md
/// §1.6): `SD_ACTIVATION=1`, `LISTEN_PID` = our pid, `LISTEN_FDS=1`, and fd 3 is an `AF_UNIX`
/// stream socket bound to exactly `path`. The three variables are removed either way.
pub(crate) fn activated_socket(path: &Path) -> Option<OwnedFd> {
    let sd = std::env::var("SD_ACTIVATION").ok();
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for v in ["SD_ACTIVATION", "LISTEN_PID", "LISTEN_FDS"] {
        std::env::remove_var(v);
    }
    if sd.as_deref() != Some("1") || fds.as_deref() != Some("1") {
        return None;
    }
    if pid?.parse::<u32>().ok()? != std::process::id() {
        return None;
    }
    const FD: RawFd = 3;
    fcntl(FD, FcntlArg::F_GETFD).ok()?;
    // SAFETY: fd 3 was just checked to be open; the borrow lives only within this function.
    let borrowed = unsafe { BorrowedFd::borrow_raw(FD) };
    use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType, UnixAddr};
    if getsockopt(&borrowed, sockopt::SockType).ok()? != SockType::Stream {
        return None;
    }
    let addr: UnixAddr = getsockname(FD).ok()?;
    if addr.path()? != path {
        return None;
    }
    // SAFETY: by the socket-activation protocol, fd 3 is handed to this process and nothing
    // else in it owns fd 3 (it was open before the server started and is checked above).
    let fd = unsafe { OwnedFd::from_raw_fd(FD) };
    let fl = OFlag::from_bits_truncate(fcntl(FD, FcntlArg::F_GETFL).ok()?);
    fcntl(FD, FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK)).ok()?;
    fcntl(FD, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).ok()?;
    Some(fd)
}

/// Give the free heap back to the kernel: glibc keeps memory freed by finished requests in its
/// arena while live blocks sit above it (`malloc_trim(0)` also releases free pages inside the
/// heap). The server calls it when the last client has left. A no-op on other C libraries.
pub(crate) fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own arenas under their locks;
    // it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// CPU time used so far by process `pid` (all its threads, those that exited included), from
/// its CPU clock (`clock_getcpuclockid`): nanosecond run time, not tick-sampled. `None` when the
/// clock cannot be read (no such process, no permission). Used by benchmarks.
pub fn process_cpu_time(pid: u32) -> Option<std::time::Duration> {
    let mut clock: libc::clockid_t = 0;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both calls only write to the two locals passed by pointer.
    let ok = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0
            && libc::clock_gettime(clock, &mut ts) == 0
    };
    ok.then(|| std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    /// The scheduling policy of the calling thread (field 41 of its stat line).
    fn own_policy() -> Option<u32> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        let after_name = &stat[stat.rfind(')')? + 2..];
        after_name.split(' ').nth(38)?.parse().ok()
    }

    #[test]
    fn run_when_idle_moves_only_the_calling_thread_to_sched_idle() {
        let before = own_policy();
        let inside = std::thread::spawn(|| super::run_when_idle().map(|()| own_policy()))
            .join()
            .expect("thread");
        assert_eq!(inside.ok().flatten(), Some(libc::SCHED_IDLE as u32));
        assert_eq!(own_policy(), before);
    }
}
