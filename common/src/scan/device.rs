//! Devices to scan: block devices found under `/dev`, or paths given by the user (block devices
//! and regular image files alike), each with the device number lvmetad keys it by; and the
//! parallel scan of a device list over a bounded worker pool (one open file and one set of
//! reusable read buffers per worker).
//!
//! Image files have no device number, so they get a synthetic one that is stable for the life of
//! the file: major [`IMAGE_MAJOR`] and a 20-bit minor from a CRC of the file's `(st_dev, st_ino)`.

use super::crc::calc_crc;
use super::io::{AlignedBuf, FileSource, HeadCached};
use super::label::LabelError;
use super::pv::{scan_pv_with, ScannedPv, VgTexts};
use parking_lot::Mutex;
use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Major number of the synthetic device numbers given to image files (unassigned in Linux's
/// devices.txt; the largest 12-bit major).
pub const IMAGE_MAJOR: u32 = 4095;
/// Bytes read in the first request to a device: the label sector, the mda header at 4096 and the
/// first 11.5 KiB of the metadata ring, where a VG's first commits put their text (a text
/// further on takes a second read; lvm2 reads a 128 KiB block).
pub const HEAD_READ: u64 = 16384;
/// Worker threads (and so open files) of a scan, at most.
pub const MAX_WORKERS: usize = 16;

/// What kind of thing a scanned path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Block,
    Image,
}

/// One device to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The name used to open it and to report it.
    pub path: PathBuf,
    /// Every name it was found under (for the filter), `path` first.
    pub aliases: Vec<String>,
    /// `dev_t` in Linux's userspace encoding (`makedev`).
    pub devno: u64,
    pub kind: DeviceKind,
}

#[derive(Debug)]
pub enum DeviceError {
    Stat(PathBuf, std::io::Error),
    Open(PathBuf, std::io::Error),
    /// Neither a block device nor a regular file.
    NotADevice(PathBuf),
    Label(PathBuf, LabelError),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Stat(p, e) => write!(f, "{}: {e}", p.display()),
            DeviceError::Open(p, e) => write!(f, "{}: open failed: {e}", p.display()),
            DeviceError::NotADevice(p) => {
                write!(f, "{}: not a block device or image file", p.display())
            }
            DeviceError::Label(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for DeviceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DeviceError::Stat(_, e) | DeviceError::Open(_, e) => Some(e),
            DeviceError::Label(_, e) => Some(e),
            _ => None,
        }
    }
}

impl DeviceError {
    /// "Not a PV" rather than a failure: no label, or a device without medium (an empty CD
    /// drive, a detached loop device).
    pub fn is_no_label(&self) -> bool {
        match self {
            DeviceError::Label(_, LabelError::NotFound) => true,
            DeviceError::Open(_, e) => {
                matches!(e.raw_os_error(), Some(libc::ENOMEDIUM) | Some(libc::ENXIO))
            }
            _ => false,
        }
    }
}

/// `makedev` in the Linux userspace encoding.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32)
}

/// `(major, minor)` of an encoded device number.
pub fn major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The kernel's name of a block device number (`/sys/dev/block/MAJ:MIN` -> `NAME`) as
/// `/dev/NAME`; `None` when no block device has that number.
pub fn block_device_path(devno: u64) -> Option<PathBuf> {
    let (ma, mi) = major_minor(devno);
    let link = std::fs::read_link(format!("/sys/dev/block/{ma}:{mi}")).ok()?;
    Some(Path::new("/dev").join(link.file_name()?))
}

/// The synthetic device number of an image file.
pub fn image_devno(st_dev: u64, st_ino: u64) -> u64 {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&st_dev.to_le_bytes());
    key[8..].copy_from_slice(&st_ino.to_le_bytes());
    makedev(IMAGE_MAJOR, calc_crc(0, &key) & 0xf_ffff)
}

/// Describe a path given by the user.
pub fn device_from_path(path: &Path) -> Result<Device, DeviceError> {
    let meta = std::fs::metadata(path).map_err(|e| DeviceError::Stat(path.to_owned(), e))?;
    let ft = meta.file_type();
    let (devno, kind) = if ft.is_block_device() {
        (meta.rdev(), DeviceKind::Block)
    } else if ft.is_file() {
        (image_devno(meta.dev(), meta.ino()), DeviceKind::Image)
    } else {
        return Err(DeviceError::NotADevice(path.to_owned()));
    };
    Ok(Device {
        path: path.to_owned(),
        aliases: vec![path.display().to_string()],
        devno,
        kind,
    })
}

/// Block devices directly under `/dev` and `/dev/mapper`, one entry per device number with all
/// its names as aliases (sorted; the shortest name first).
pub fn discover_block_devices() -> Vec<Device> {
    discover_under(&[Path::new("/dev"), Path::new("/dev/mapper")])
}

fn discover_under(dirs: &[&Path]) -> Vec<Device> {
    let mut by_dev: std::collections::BTreeMap<u64, Vec<PathBuf>> = Default::default();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if let Ok(meta) = std::fs::metadata(&p) {
                if meta.file_type().is_block_device() {
                    by_dev.entry(meta.rdev()).or_default().push(p);
                }
            }
        }
    }
    by_dev
        .into_iter()
        .map(|(devno, mut names)| {
            names.sort_by(|a, b| {
                let (a, b) = (a.as_os_str().len(), b.as_os_str().len());
                a.cmp(&b)
            });
            names.dedup();
            Device {
                path: names[0].clone(),
                aliases: names.iter().map(|p| p.display().to_string()).collect(),
                devno,
                kind: DeviceKind::Block,
            }
        })
        .collect()
}

/// How to scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Worker threads, and so open files, at most (clamped to 1..=[`MAX_WORKERS`], and to
    /// what the devices can use: [`useful_workers`]).
    pub workers: usize,
    /// Read with `O_DIRECT` (bypassing the page cache, as lvm2 does) where the file allows it;
    /// on by default, off only when asked for (`--buffered`).
    pub direct: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            workers: default_workers(),
            direct: true,
        }
    }
}

/// Open a device read-only (with `O_DIRECT` if asked and supported) and measure it.
pub fn open_device(dev: &Device, direct: bool) -> Result<FileSource, DeviceError> {
    FileSource::open(&dev.path, direct).map_err(|e| DeviceError::Open(dev.path.clone(), e))
}

/// The buffers one scan worker reuses from device to device: the aligned bounce buffer of
/// `O_DIRECT` reads and the device head.
#[derive(Debug, Default)]
pub struct ScanBuffers {
    bounce: AlignedBuf,
    head: Vec<u8>,
}

/// What the workers of one scan share: the VG texts parsed so far.
#[derive(Debug, Default)]
pub struct ScanShared {
    texts: VgTexts,
}

/// Open and scan one device.
pub fn scan_device(dev: &Device, direct: bool) -> Result<ScannedPv, DeviceError> {
    scan_device_with(
        dev,
        direct,
        &mut ScanBuffers::default(),
        &ScanShared::default(),
    )
}

/// Open and scan one device with a worker's buffers (they are kept for the next device) and
/// what the scan's workers share.
pub fn scan_device_with(
    dev: &Device,
    direct: bool,
    bufs: &mut ScanBuffers,
    shared: &ScanShared,
) -> Result<ScannedPv, DeviceError> {
    let mut src = open_device(dev, direct)?;
    src.use_buffer(std::mem::take(&mut bufs.bounce));
    let r = match HeadCached::new_in(&src, HEAD_READ, std::mem::take(&mut bufs.head)) {
        Ok(head) => {
            let r = scan_pv_with(&head, &shared.texts)
                .map_err(|e| DeviceError::Label(dev.path.clone(), e));
            bufs.head = head.into_buffer();
            r
        }
        Err((e, buf)) => {
            bufs.head = buf;
            Err(DeviceError::Label(dev.path.clone(), LabelError::Read(e)))
        }
    };
    bufs.bounce = src.into_buffer();
    r
}

/// Scan devices in parallel over a bounded pool; results come back in the order of `devs`.
pub fn scan_devices(devs: &[Device], opts: ScanOptions) -> Vec<Result<ScannedPv, DeviceError>> {
    let results: Mutex<Vec<Option<Result<ScannedPv, DeviceError>>>> =
        Mutex::new(std::iter::repeat_with(|| None).take(devs.len()).collect());
    scan_devices_into(devs, opts, &|i, r| results.lock()[i] = Some(r));
    results
        .into_inner()
        .into_iter()
        .zip(devs)
        .map(|(r, d)| {
            r.unwrap_or_else(|| {
                Err(DeviceError::Open(
                    d.path.clone(),
                    std::io::Error::other("scan worker failed"),
                ))
            })
        })
        .collect()
}

/// Scan devices in parallel over a bounded pool, handing each result to `found` (with its index
/// in `devs`) as soon as it is read, from the worker that read it: in no particular order.
/// Workers take the devices in the order of `devs`. Returns when every device was handed over
/// (a worker that panicked leaves its device out).
pub fn scan_devices_into(
    devs: &[Device],
    opts: ScanOptions,
    found: &(dyn Fn(usize, Result<ScannedPv, DeviceError>) + Sync),
) {
    let workers = opts
        .workers
        .clamp(1, MAX_WORKERS)
        .min(useful_workers(devs))
        .min(devs.len().max(1));
    let next = AtomicUsize::new(0);
    let shared = ScanShared::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut bufs = ScanBuffers::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(dev) = devs.get(i) else { break };
                        found(i, scan_device_with(dev, opts.direct, &mut bufs, &shared));
                    }
                })
            })
            .collect();
        // Joined here so that a worker's panic stays its own (the scope would re-raise it).
        for h in handles {
            let _ = h.join();
        }
    });
}

/// A sensible default pool size: a few per CPU, bounded.
pub fn default_workers() -> usize {
    cpus().saturating_mul(4).min(MAX_WORKERS)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Loop devices (major 7), RAM disks (major 1) and image files are served from memory by kernel
/// work on the same CPUs as the scan: more than two reads in flight per CPU only add switching
/// (1000 loop PVs on 2 CPUs: 4 workers 65 ms, 8 workers 73 ms, 16 workers 89 ms). Disks wait
/// on the device, so more reads in flight hide their latency: any of them in `devs` lifts the
/// limit to [`MAX_WORKERS`].
pub fn useful_workers(devs: &[Device]) -> usize {
    let in_memory = devs
        .iter()
        .all(|d| d.kind == DeviceKind::Image || matches!(major_minor(d.devno).0, 1 | 7));
    if in_memory {
        cpus().saturating_mul(2).max(2)
    } else {
        MAX_WORKERS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_backed_devices_get_two_workers_per_cpu_disks_the_most() {
        let dev = |devno: u64| Device {
            path: PathBuf::from("/dev/x"),
            aliases: vec![],
            devno,
            kind: DeviceKind::Block,
        };
        let loops = [dev(makedev(7, 0)), dev(makedev(7, 1)), dev(makedev(1, 0))];
        assert_eq!(useful_workers(&loops), (cpus() * 2).max(2));
        let mixed = [dev(makedev(7, 0)), dev(makedev(8, 16))];
        assert_eq!(useful_workers(&mixed), MAX_WORKERS);
    }

    #[test]
    fn makedev_round_trips_linux_encoding() {
        assert_eq!(makedev(8, 1), 2049);
        assert_eq!(makedev(7, 0), 1792);
        assert_eq!(major_minor(makedev(259, 70000)), (259, 70000));
        let d = image_devno(2049, 1234);
        assert_eq!(major_minor(d).0, IMAGE_MAJOR);
        assert_eq!(d, image_devno(2049, 1234));
        assert_ne!(d, image_devno(2049, 1235));
    }

    #[test]
    fn image_files_are_devices_and_directories_are_not() {
        let dir = std::env::temp_dir().join(format!("scan-dev-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("pv.img");
        std::fs::write(&img, vec![0u8; 4096]).unwrap();
        let d = device_from_path(&img).unwrap();
        assert_eq!(d.kind, DeviceKind::Image);
        assert!(matches!(
            device_from_path(&dir),
            Err(DeviceError::NotADevice(_))
        ));
        let r = scan_devices(&[d.clone(), d.clone()], ScanOptions::default());
        assert!(
            scan_device(&d, true).unwrap_err().is_no_label(),
            "O_DIRECT falls back on tmpfs"
        );
        assert!(r
            .iter()
            .all(|r| r.as_ref().err().is_some_and(DeviceError::is_no_label)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_chain_to_their_cause() {
        let io = std::io::Error::from_raw_os_error(libc::EIO);
        let e = DeviceError::Label(
            PathBuf::from("/dev/x"),
            LabelError::Read(super::super::io::ReadError::Io(io)),
        );
        let mut chain = Vec::new();
        let mut cur: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cur {
            chain.push(c.to_string());
            cur = c.source();
        }
        assert_eq!(chain.len(), 4, "device -> label -> read -> io: {chain:?}");
        assert_eq!(
            chain[3],
            std::io::Error::from_raw_os_error(libc::EIO).to_string()
        );
    }
}
