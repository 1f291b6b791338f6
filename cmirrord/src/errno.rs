//! Error numbers of log requests: typed inside the daemon (nix's [`Errno`]), a negative `i32`
//! only where they leave it, in `dm_ulog_request.error` to the kernel and in the cluster
//! message's `error` to the other nodes, as C sends them.
#![forbid(unsafe_code)]

pub use nix::errno::Errno;

/// The value the kernel and the other nodes read for `e`: the negative errno.
pub const fn wire(e: Errno) -> i32 {
    -(e as i32)
}

/// The reply code of a result: 0, or the negative errno.
pub fn wire_result<T>(r: &Result<T, Errno>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => wire(*e),
    }
}

/// The errno of an I/O error, `fallback` when it carries none.
pub fn from_io(e: &std::io::Error, fallback: Errno) -> Errno {
    e.raw_os_error().map_or(fallback, Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_leave_as_negative_errnos() {
        assert_eq!(wire(Errno::EINVAL), -libc::EINVAL);
        assert_eq!(wire_result::<()>(&Ok(())), 0);
        assert_eq!(wire_result::<()>(&Err(Errno::EIO)), -libc::EIO);
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(from_io(&io, Errno::EIO), Errno::ENOENT);
        assert_eq!(from_io(&std::io::Error::other("x"), Errno::EIO), Errno::EIO);
    }
}
