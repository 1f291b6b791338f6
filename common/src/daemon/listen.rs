//! Creating the listening socket with lvm2's rules for a path that already exists
//! (docs/protocol.md §1.6 step 8).
//!
//! The socket is made under `umask(0077)`, so the node is `srwx------`. When `bind` finds the path
//! taken: refuse anything that is not a socket (a symlink included), refuse a socket not owned by
//! root or by us, or with any group/other permission bit; refuse to start when a live daemon
//! accepts a connection there; otherwise the socket is stale and is replaced. The socket is bound
//! and listening under a private name before it appears at the path, so a client never meets a
//! socket file that refuses connections. The backlog
//! is [`BACKLOG`] (C uses 1, so a burst of clients gets `EAGAIN`).
#![forbid(unsafe_code)]

use super::server_config::ServerError;
use nix::errno::Errno;
use nix::sys::socket::{
    bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::{umask, Mode};
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// `listen(2)` backlog.
pub const BACKLOG: i32 = 128;

/// Create, bind and listen on a non-blocking, close-on-exec UNIX stream socket at `path`.
pub(crate) fn open_socket(path: &Path) -> Result<UnixListener, ServerError> {
    let old = umask(Mode::from_bits_truncate(0o077));
    let r = bind_and_listen(path);
    umask(old);
    r
}

fn bind_and_listen(path: &Path) -> Result<UnixListener, ServerError> {
    let io = |what: &str, e: Errno| ServerError::Io(format!("{what} {}", path.display()), e.into());
    // Bind and listen on a private name first, then publish it at `path`: a client never finds a
    // socket file that does not accept yet (C binds at `path` and listens a moment later, so a
    // client that connects in between is refused).
    let staging = staging_path(path);
    let _ = std::fs::remove_file(&staging);
    let addr = UnixAddr::new(&staging).map_err(|e| io("socket path too long:", e))?;
    UnixAddr::new(path).map_err(|e| io("socket path too long:", e))?;
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| io("cannot create socket for", e))?;
    bind(fd.as_raw_fd(), &addr).map_err(|e| io("cannot bind", e))?;
    let backlog = Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN);
    let published = listen(&fd, backlog)
        .map_err(|e| io("cannot listen on", e))
        .and_then(|()| publish(&staging, path));
    let _ = std::fs::remove_file(&staging);
    published?;
    Ok(UnixListener::from(fd))
}

/// `<dir>/.<name>.<pid>`: where the socket is bound before it is published.
fn staging_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(
        ".{}.{}",
        name.unwrap_or_default(),
        std::process::id()
    ))
}

/// Give the listening socket at `staging` the name `path`. A hard link fails when `path` is
/// taken (lvm2's EADDRINUSE case): then apply the stale-socket rules and replace it.
fn publish(staging: &Path, path: &Path) -> Result<(), ServerError> {
    let err = match std::fs::hard_link(staging, path) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if std::fs::symlink_metadata(path).is_ok() {
        check_stale(path)?;
        crate::log_info!("replacing stale socket {}", path.display());
    } else if err.kind() != std::io::ErrorKind::Unsupported
        && err.raw_os_error() != Some(libc::EPERM)
    {
        return Err(ServerError::Io(
            format!("cannot create {}", path.display()),
            err,
        ));
    }
    // A stale socket of ours, or a file system without hard links: rename over it.
    std::fs::rename(staging, path)
        .map_err(|e| ServerError::Io(format!("cannot create {}", path.display()), e))
}

/// Decide whether the existing `path` may be replaced: only an unused socket of ours.
fn check_stale(path: &Path) -> Result<(), ServerError> {
    let unsafe_socket = |why: String| ServerError::UnsafeSocket(path.to_owned(), why);
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| ServerError::Io(format!("cannot inspect existing {}", path.display()), e))?;
    if !meta.file_type().is_socket() {
        return Err(unsafe_socket(
            "exists and is not a socket; refusing to replace it".into(),
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(unsafe_socket(format!(
            "socket owned by uid {} (unrecognised owner); refusing to replace it",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(unsafe_socket(format!(
            "socket has unrecognised permissions {:04o}; refusing to replace it",
            meta.mode() & 0o7777
        )));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ServerError::SocketInUse(path.to_owned()));
    }
    Ok(())
}
