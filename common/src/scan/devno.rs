//! Devices named by number, as device events name them: `MAJOR:MINOR` arguments and
//! `--major M --minor m` (lvm2's `pvscan --cache`), whether such a device is present now, and
//! the per-device lock that keeps concurrent event scans of one device in order.
//!
//! Numbers are checked against the kernel's `dev_t` (12-bit major, 20-bit minor): lvmetad keys
//! `pv_gone` by a 32-bit device number, so a larger one would silently name another device.
//!
//! Presence is the kernel's view (`/sys/dev/block/M:m`), not the existence of a node under
//! `/dev`, which may linger after the device is gone (static `/dev`, mdev before its unlink).
//! A present device is opened through its node under `/dev` or `/dev/mapper`, with the same
//! names (aliases) a full scan gives it, so the global filter decides alike for both.
//!
//! The lock: events for one device may run at once (mdev as the kernel's hotplug helper runs one
//! process per event, unordered). Each scanner holds an open-file-description write lock on the
//! byte at offset `devno` of one lock file while it reads the device and tells lvmetad; so the
//! last scanner to read a device read it after every event that started a scanner, and what
//! lvmetad keeps is the device as it is now, whatever order the events ran in.

use super::device::{discover_block_devices, makedev, Device};
use nix::fcntl::{fcntl, FcntlArg};
use std::fmt;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Largest major the kernel's `dev_t` holds (12 bits).
pub const MAX_MAJOR: u64 = (1 << 12) - 1;
/// Largest minor the kernel's `dev_t` holds (20 bits).
pub const MAX_MINOR: u64 = (1 << 20) - 1;
/// Name of the lock file, in the directory of lvmetad's socket.
pub const LOCK_FILE: &str = "lvmetad-scan.lock";

#[derive(Debug, PartialEq, Eq)]
pub enum DevnoError {
    /// Not two decimal numbers around a colon.
    Syntax(String),
    /// A number the kernel's `dev_t` cannot hold.
    OutOfRange { what: &'static str, value: String },
    /// The kernel has the device but no node under `/dev` or `/dev/mapper` names it.
    NoNode(u32, u32),
}

impl fmt::Display for DevnoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevnoError::Syntax(s) => write!(
                f,
                "{s:?}: not a device path nor MAJOR:MINOR (two decimal numbers)"
            ),
            DevnoError::OutOfRange { what, value } => {
                let max = if *what == "major" {
                    MAX_MAJOR
                } else {
                    MAX_MINOR
                };
                write!(f, "{what} {value} is out of range (0..={max})")
            }
            DevnoError::NoNode(ma, mi) => write!(
                f,
                "device {ma}:{mi} exists but has no block device node under /dev or /dev/mapper"
            ),
        }
    }
}

impl std::error::Error for DevnoError {}

/// One number: decimal digits only (no sign, no spaces), within `max`.
fn number(what: &'static str, s: &str, whole: &str) -> Result<u32, DevnoError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DevnoError::Syntax(whole.to_owned()));
    }
    let max = if what == "major" {
        MAX_MAJOR
    } else {
        MAX_MINOR
    };
    match s.parse::<u64>() {
        Ok(v) if v <= max => Ok(v as u32),
        _ => Err(DevnoError::OutOfRange {
            what,
            value: s.to_owned(),
        }),
    }
}

/// Parse `MAJOR:MINOR`.
pub fn parse_major_minor(arg: &str) -> Result<(u32, u32), DevnoError> {
    let (ma, mi) = arg
        .split_once(':')
        .ok_or_else(|| DevnoError::Syntax(arg.to_owned()))?;
    Ok((number("major", ma, arg)?, number("minor", mi, arg)?))
}

/// Parse the values of `--major` and `--minor`.
pub fn parse_major_minor_opts(major: &str, minor: &str) -> Result<(u32, u32), DevnoError> {
    Ok((
        number("major", major, major)?,
        number("minor", minor, minor)?,
    ))
}

/// Whether a command-line argument is meant as `MAJOR:MINOR`: it contains a colon and names no
/// existing file (a path with a colon in it still works).
pub fn looks_like_devno(arg: &str) -> bool {
    arg.contains(':') && !Path::new(arg).exists()
}

/// A device named by number, now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Present(Device),
    Absent(u64),
}

/// Is the block device `major:minor` there, and through which node?
pub fn resolve(major: u32, minor: u32) -> Result<Presence, DevnoError> {
    resolve_in(
        Path::new("/sys/dev/block"),
        major,
        minor,
        discover_block_devices,
    )
}

fn resolve_in(
    sys_dev_block: &Path,
    major: u32,
    minor: u32,
    discover: impl FnOnce() -> Vec<Device>,
) -> Result<Presence, DevnoError> {
    let devno = makedev(major, minor);
    // Without sysfs, the nodes under /dev are all there is to go by.
    let kernel_has_it = if sys_dev_block.is_dir() {
        Some(sys_dev_block.join(format!("{major}:{minor}")).exists())
    } else {
        None
    };
    if kernel_has_it == Some(false) {
        return Ok(Presence::Absent(devno));
    }
    match discover().into_iter().find(|d| d.devno == devno) {
        Some(d) => Ok(Presence::Present(d)),
        None if kernel_has_it.is_none() => Ok(Presence::Absent(devno)),
        None => Err(DevnoError::NoNode(major, minor)),
    }
}

/// Write locks on the bytes of the device numbers in the lock file, held until dropped.
#[derive(Debug)]
pub struct DeviceLocks {
    _file: Option<File>,
}

impl DeviceLocks {
    /// Lock `devnos` (in ascending order, so two scanners never wait on each other in a
    /// circle) in `LOCK_FILE` beside `socket`. Waits for scanners holding one of them. Without
    /// a usable lock file (a read-only directory, an unprivileged user) nothing is locked:
    /// such a caller cannot read devices the kernel announces anyway.
    pub fn acquire(socket: &Path, devnos: &[u64]) -> DeviceLocks {
        let Some(file) = open_lock_file(socket) else {
            return DeviceLocks { _file: None };
        };
        let mut sorted = devnos.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for devno in sorted {
            let lock = byte_lock(devno);
            // EINTR: retry; anything else (ENOLCK, an old kernel without OFD locks): go on
            // unlocked rather than lose the event.
            while let Err(nix::errno::Errno::EINTR) =
                fcntl(file.as_raw_fd(), FcntlArg::F_OFD_SETLKW(&lock))
            {}
        }
        DeviceLocks { _file: Some(file) }
    }
}

/// A write lock on the one byte at offset `devno` (`l_pid` 0, as OFD locks want).
fn byte_lock(devno: u64) -> libc::flock {
    libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: devno as libc::off_t,
        l_len: 1,
        l_pid: 0,
    }
}

fn lock_path(socket: &Path) -> PathBuf {
    socket
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(LOCK_FILE)
}

fn open_lock_file(socket: &Path) -> Option<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(lock_path(socket))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::device::DeviceKind;

    #[test]
    fn major_minor_accepts_kernel_numbers_only() {
        assert_eq!(parse_major_minor("7:0"), Ok((7, 0)));
        assert_eq!(parse_major_minor("4095:1048575"), Ok((4095, 1_048_575)));
        for bad in [
            "7:", ":1", "a:b", "7", "", "7:1:2", "-7:1", "+7:1", " 7:1", "7:0x1",
        ] {
            assert_eq!(
                parse_major_minor(bad),
                Err(DevnoError::Syntax(bad.into())),
                "{bad}"
            );
        }
        for (bad, what) in [
            ("4096:0", "major"),
            ("7:1048576", "minor"),
            ("99999999999999999999999:1", "major"),
            ("7:18446744073709551616", "minor"),
        ] {
            match parse_major_minor(bad) {
                Err(DevnoError::OutOfRange { what: w, .. }) => assert_eq!(w, what, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(parse_major_minor_opts("259", "3"), Ok((259, 3)));
        assert!(parse_major_minor_opts("x", "3").is_err());
        assert!(DevnoError::Syntax("a:b".into())
            .to_string()
            .contains("MAJOR:MINOR"));
    }

    #[test]
    fn presence_follows_sysfs_and_needs_a_node() {
        let dir = std::env::temp_dir().join(format!("devno-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("7:3")).unwrap();
        let node = |devno| Device {
            path: "/dev/loop3".into(),
            aliases: vec!["/dev/loop3".into()],
            devno,
            kind: DeviceKind::Block,
        };
        let l3 = makedev(7, 3);
        // In sysfs with a node: present, with the node's aliases.
        assert_eq!(
            resolve_in(&dir, 7, 3, || vec![node(l3)]),
            Ok(Presence::Present(node(l3)))
        );
        // A stale node of a device the kernel no longer has: absent.
        assert_eq!(
            resolve_in(&dir, 7, 4, || vec![node(makedev(7, 4))]),
            Ok(Presence::Absent(makedev(7, 4)))
        );
        // In sysfs without a node: a clear error, not a pv_gone.
        assert_eq!(
            resolve_in(&dir, 7, 3, Vec::new),
            Err(DevnoError::NoNode(7, 3))
        );
        // No sysfs: the nodes decide.
        let none = dir.join("nosys");
        assert_eq!(
            resolve_in(&none, 7, 3, || vec![node(l3)]),
            Ok(Presence::Present(node(l3)))
        );
        assert_eq!(resolve_in(&none, 7, 3, Vec::new), Ok(Presence::Absent(l3)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn device_locks_exclude_per_device() {
        let dir = std::env::temp_dir().join(format!("devno-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("lvmetad.socket");
        let held = DeviceLocks::acquire(&sock, &[makedev(7, 1), makedev(7, 0)]);
        assert!(held._file.is_some());
        // OFD locks belong to the open file: a second open of the file is another owner.
        let other = std::fs::OpenOptions::new()
            .write(true)
            .open(lock_path(&sock))
            .unwrap();
        let probe = |devno: u64| {
            let lock = byte_lock(devno);
            let free = fcntl(other.as_raw_fd(), FcntlArg::F_OFD_SETLK(&lock)).is_ok();
            if free {
                let unlock = libc::flock {
                    l_type: libc::F_UNLCK as libc::c_short,
                    ..lock
                };
                fcntl(other.as_raw_fd(), FcntlArg::F_OFD_SETLK(&unlock)).unwrap();
            }
            free
        };
        assert!(!probe(makedev(7, 1)), "7:1 is held");
        assert!(probe(makedev(7, 2)), "7:2 is free");
        drop(held);
        assert!(probe(makedev(7, 1)), "released on drop");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
