//! Waking a local mirror so that its kernel asks for resync work again.
//!
//! dm-raid1 asks its log for resync work only when its worker runs: on I/O to the mirror, when
//! one of its own recoveries ends, and on resume. A node told "someone else is recovering" goes
//! quiet. In practice one node at a time keeps the resync going; if that node dies, the
//! survivors' kernels never ask again, and the resync stalls until something does I/O on them
//! (C cmirrord has that stall). So when a member leaves a group whose log is not in sync yet,
//! the engine asks the daemon to wake the local mirror ([`crate::engine::Engine::take_wakes`]),
//! and this module does it: it finds the device-mapper device whose `mirror` table names the
//! log's uuid (`userspace N <uuid> clustered-…`) and reads one block from it with O_DIRECT.
//! The kernel cannot answer a read of a cluster-mirrored region without asking the log, so it
//! queues the read and runs its worker, which asks for resync work first.
//!
//! The read waits for the log's answers, which this daemon's own loop gives, so it runs on a
//! thread of its own: [`spawn`]. Nothing here touches the engine.
#![forbid(unsafe_code)]

use common::dm::{DevNum, DeviceRef, DmControl, DmError, DmName};
use common::{log_error, log_info};
use std::fmt;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// Why a wake did not happen.
#[derive(Debug)]
pub enum WakeError {
    /// Talking to device-mapper failed.
    Dm(DmError),
    /// No device has a mirror table that names the log's uuid.
    NoDevice(String),
    /// Opening or reading the mirror device failed.
    Read(String, std::io::Error),
}

impl fmt::Display for WakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WakeError::Dm(e) => write!(f, "device-mapper: {e}"),
            WakeError::NoDevice(uuid) => write!(f, "no mirror device uses log {uuid}"),
            WakeError::Read(path, e) => write!(f, "reading {path}: {e}"),
        }
    }
}

impl std::error::Error for WakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WakeError::Dm(e) => Some(e),
            WakeError::NoDevice(_) => None,
            WakeError::Read(_, e) => Some(e),
        }
    }
}

/// Whether a `mirror` table's parameters use the userspace log `uuid`
/// (`userspace <argc> <uuid> clustered-…`).
pub fn table_uses_log(params: &str, uuid: &str) -> bool {
    let mut words = params.split_ascii_whitespace();
    words.next() == Some("userspace") && words.nth(1) == Some(uuid)
}

/// The name and number of the mirror device that uses log `uuid`.
fn find_device(dm: &DmControl, uuid: &str) -> Result<(String, DevNum), WakeError> {
    for (dev, name) in dm.list().map_err(WakeError::Dm)? {
        let Ok(dm_name) = DmName::new(&name) else {
            continue;
        };
        // A device removed since the list is no error: look at the others.
        let Ok((_, lines)) = dm.table(&DeviceRef::Name(dm_name)) else {
            continue;
        };
        if lines
            .iter()
            .any(|l| l.target_type.as_str() == "mirror" && table_uses_log(&l.params, uuid))
        {
            return Ok((name, dev));
        }
    }
    Err(WakeError::NoDevice(uuid.to_owned()))
}

/// A 4 KiB block, aligned for O_DIRECT.
#[repr(C, align(4096))]
struct Block([u8; 4096]);

/// Find the mirror that uses log `uuid` and read its first block, bypassing the page cache.
/// Returns the device's path (`/dev/mapper/NAME`, else the kernel's `/dev/dm-MINOR`).
pub fn wake_mirror(uuid: &str) -> Result<String, WakeError> {
    let dm = DmControl::open().map_err(WakeError::Dm)?;
    let (name, dev) = find_device(&dm, uuid)?;
    let mut path = format!("/dev/mapper/{name}");
    if !std::path::Path::new(&path).exists() {
        path = format!("/dev/dm-{}", dev.minor);
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .map_err(|e| WakeError::Read(path.clone(), e))?;
    let mut block = Box::new(Block([0; 4096]));
    file.read_at(&mut block.0, 0)
        .map_err(|e| WakeError::Read(path.clone(), e))?;
    Ok(path)
}

/// Wake the mirror of log `uuid` from a thread of its own (the read needs this daemon's loop to
/// answer the kernel, so the loop must not wait for it).
pub fn spawn(uuid: String) {
    let started = std::thread::Builder::new()
        .name("wake".into())
        .spawn(move || match wake_mirror(&uuid) {
            Ok(path) => log_info!(
                "[{}] Woke {path} to ask for resync work",
                crate::short_uuid(&uuid)
            ),
            Err(e) => log_error!(
                "[{}] Cannot wake the mirror to ask for resync work: {e}",
                crate::short_uuid(&uuid)
            ),
        });
    if let Err(e) = started {
        log_error!("Cannot start a thread to wake a mirror: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_log_uuid_in_a_mirror_table() {
        let u = "LVM-abc";
        assert!(table_uses_log(
            "userspace 3 LVM-abc clustered-core 16 2 254:0 0 254:16 0 1 handle_errors",
            u
        ));
        assert!(table_uses_log(
            "userspace 4 LVM-abc clustered-disk 254:32 16 2 254:0 0 254:16 0",
            u
        ));
        assert!(!table_uses_log("userspace 3 LVM-abcd clustered-core 16", u));
        assert!(!table_uses_log("core 2 16 nosync 2 254:0 0 254:16 0", u));
        assert!(!table_uses_log("disk 2 LVM-abc 16 2 254:0 0 254:16 0", u));
        assert!(!table_uses_log("", u));
    }
}
