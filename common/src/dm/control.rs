//! [`DmControl`]: an open `/dev/mapper/control` and the device-mapper operations on it
//! (version, list, create, load, suspend, resume, remove, info, status, table, message).
//!
//! This layer never creates or removes `/dev/mapper/NAME` nodes: that is udev's job (or
//! libdm's with `DM_DISABLE_UDEV`). Every device is reachable as `/dev/dm-MINOR` via devtmpfs.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;

use super::ioctl::{self, flags, Command, Reply, Request};
use super::types::{DevNum, DeviceRef, DmName, DmUuid, Sectors, TargetLine};

/// The control node of the device-mapper driver.
pub const CONTROL_PATH: &str = "/dev/mapper/control";

/// An error from the device-mapper layer, with the operation and device it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmError {
    /// `/dev/mapper/control` could not be opened (no driver, not root).
    Open { path: String, errno: Errno },
    /// The kernel refused an ioctl.
    Ioctl {
        op: &'static str,
        device: String,
        errno: Errno,
    },
    /// The kernel's answer could not be decoded.
    BadReply {
        op: &'static str,
        device: String,
        why: String,
    },
}

impl DmError {
    /// The kernel's errno, when the kernel refused the operation.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            DmError::Open { errno, .. } | DmError::Ioctl { errno, .. } => Some(*errno),
            DmError::BadReply { .. } => None,
        }
    }
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmError::Open { path, errno } => write!(f, "cannot open {path}: {}", errno.desc()),
            DmError::Ioctl { op, device, errno } if device.is_empty() => {
                write!(f, "device-mapper {op} failed: {}", errno.desc())
            }
            DmError::Ioctl { op, device, errno } => {
                write!(f, "device-mapper {op} of {device} failed: {}", errno.desc())
            }
            DmError::BadReply { op, device, why } => {
                write!(
                    f,
                    "device-mapper {op} of {device}: bad answer from the kernel: {why}"
                )
            }
        }
    }
}

impl std::error::Error for DmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DmError::Open { errno, .. } | DmError::Ioctl { errno, .. } => Some(errno),
            _ => None,
        }
    }
}

/// What the kernel reports about one device (`DM_DEV_STATUS`, what `dmsetup info` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub uuid: String,
    pub dev: DevNum,
    pub suspended: bool,
    pub read_only: bool,
    pub live_table: bool,
    pub inactive_table: bool,
    pub open_count: i32,
    pub event_nr: u32,
    pub target_count: u32,
}

impl DeviceInfo {
    fn from_reply(r: &Reply) -> Self {
        DeviceInfo {
            name: r.name.clone(),
            uuid: r.uuid.clone(),
            dev: r.dev,
            suspended: r.flags & flags::SUSPEND != 0,
            read_only: r.flags & flags::READONLY != 0,
            live_table: r.flags & flags::ACTIVE_PRESENT != 0,
            inactive_table: r.flags & flags::INACTIVE_PRESENT != 0,
            open_count: r.open_count,
            event_nr: r.event_nr,
            target_count: r.target_count,
        }
    }
}

/// How a suspend treats I/O and filesystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SuspendFlags {
    /// Keep queued I/O queued instead of flushing it (`DM_NOFLUSH_FLAG`): mirrors, multipath,
    /// pools that may be out of data space.
    pub noflush: bool,
    /// Do not freeze a filesystem on the device (`DM_SKIP_LOCKFS_FLAG`).
    pub skip_lockfs: bool,
}

impl SuspendFlags {
    fn bits(self) -> u32 {
        (if self.noflush { flags::NOFLUSH } else { 0 })
            | (if self.skip_lockfs {
                flags::SKIP_LOCKFS
            } else {
                0
            })
    }
}

/// An open device-mapper control node. Cheap to share by reference; every call is one or a few
/// ioctls and holds no state between calls.
#[derive(Debug)]
pub struct DmControl {
    file: File,
}

fn target(dev: &DeviceRef) -> Request {
    let mut r = Request::default();
    match dev {
        DeviceRef::Name(n) => r.name = Some(n.clone()),
        DeviceRef::Uuid(u) => r.uuid = Some(u.clone()),
        DeviceRef::Dev(d) => r.dev = Some(*d),
    }
    r
}

impl DmControl {
    /// Opens [`CONTROL_PATH`].
    pub fn open() -> Result<Self, DmError> {
        Self::open_path(Path::new(CONTROL_PATH))
    }

    pub fn open_path(path: &Path) -> Result<Self, DmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| DmError::Open {
                path: path.display().to_string(),
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })?;
        Ok(DmControl { file })
    }

    fn call(
        &self,
        cmd: Command,
        req: &Request,
        device: &dyn fmt::Display,
    ) -> Result<Reply, DmError> {
        ioctl::run(self.file.as_fd(), cmd, req).map_err(|errno| DmError::Ioctl {
            op: cmd.name(),
            device: device.to_string(),
            errno,
        })
    }

    /// The driver's interface version, e.g. `[4, 47, 0]`.
    pub fn version(&self) -> Result<[u32; 3], DmError> {
        Ok(self
            .call(Command::Version, &Request::default(), &"")?
            .version)
    }

    /// Every device: number and name.
    pub fn list(&self) -> Result<Vec<(DevNum, String)>, DmError> {
        Ok(self
            .call(Command::ListDevices, &Request::default(), &"")?
            .name_list())
    }

    /// Creates a device with no table (load one, then resume it).
    pub fn create(&self, name: &DmName, uuid: Option<&DmUuid>) -> Result<DeviceInfo, DmError> {
        let req = Request {
            name: Some(name.clone()),
            uuid: uuid.cloned(),
            ..Request::default()
        };
        Ok(DeviceInfo::from_reply(&self.call(
            Command::DevCreate,
            &req,
            name,
        )?))
    }

    /// Loads `lines` as the device's inactive table (it goes live at the next resume).
    pub fn load(
        &self,
        dev: &DeviceRef,
        lines: &[TargetLine],
        read_only: bool,
    ) -> Result<DeviceInfo, DmError> {
        let mut req = target(dev);
        req.payload = ioctl::encode_table(lines);
        req.target_count = u32::try_from(lines.len()).unwrap_or(u32::MAX);
        if read_only {
            req.flags |= flags::READONLY;
        }
        Ok(DeviceInfo::from_reply(&self.call(
            Command::TableLoad,
            &req,
            dev,
        )?))
    }

    pub fn suspend(&self, dev: &DeviceRef, how: SuspendFlags) -> Result<DeviceInfo, DmError> {
        let mut req = target(dev);
        req.flags = flags::SUSPEND | how.bits();
        Ok(DeviceInfo::from_reply(&self.call(
            Command::DevSuspend,
            &req,
            dev,
        )?))
    }

    /// Resumes a device, swapping in its inactive table if it has one.
    pub fn resume(&self, dev: &DeviceRef) -> Result<DeviceInfo, DmError> {
        Ok(DeviceInfo::from_reply(&self.call(
            Command::DevSuspend,
            &target(dev),
            dev,
        )?))
    }

    pub fn remove(&self, dev: &DeviceRef) -> Result<(), DmError> {
        self.call(Command::DevRemove, &target(dev), dev).map(drop)
    }

    /// The device's state, or `None` if there is no such device.
    pub fn info(&self, dev: &DeviceRef) -> Result<Option<DeviceInfo>, DmError> {
        match self.call(Command::DevStatus, &target(dev), dev) {
            Ok(r) => Ok(Some(DeviceInfo::from_reply(&r))),
            Err(DmError::Ioctl {
                errno: Errno::ENXIO,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn table_status(
        &self,
        dev: &DeviceRef,
        extra: u32,
    ) -> Result<(DeviceInfo, Vec<TargetLine>), DmError> {
        let mut req = target(dev);
        req.flags |= extra;
        let reply = self.call(Command::TableStatus, &req, dev)?;
        let lines = reply.target_lines().map_err(|why| DmError::BadReply {
            op: Command::TableStatus.name(),
            device: dev.to_string(),
            why,
        })?;
        Ok((DeviceInfo::from_reply(&reply), lines))
    }

    /// The live table's status lines. `noflush` asks targets not to flush first (thin pools
    /// otherwise commit metadata to report exact figures).
    pub fn status(
        &self,
        dev: &DeviceRef,
        noflush: bool,
    ) -> Result<(DeviceInfo, Vec<TargetLine>), DmError> {
        self.table_status(dev, if noflush { flags::NOFLUSH } else { 0 })
    }

    /// The live table.
    pub fn table(&self, dev: &DeviceRef) -> Result<(DeviceInfo, Vec<TargetLine>), DmError> {
        self.table_status(dev, flags::STATUS_TABLE)
    }

    /// Sends a message to the target at `sector`; returns the target's answer text, if any.
    pub fn message(
        &self,
        dev: &DeviceRef,
        sector: Sectors,
        text: &str,
    ) -> Result<Option<String>, DmError> {
        let mut req = target(dev);
        req.payload = ioctl::encode_message(sector, text);
        Ok(self.call(Command::TargetMsg, &req, dev)?.message_output())
    }
}
