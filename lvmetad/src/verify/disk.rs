//! Reading one cached PV back from its disk: the block device behind a device number (sysfs),
//! one `O_DIRECT` read of the device head (label and first mda header), and, only when the mda
//! header moved, the committed metadata text. Every byte goes through `common::scan`'s reader
//! and parsers (the one disk reader of the tree).
//!
//! [`inspect`] is I/O-free over any [`BlockSource`] (unit tests feed it images in memory);
//! [`DevicePaths::open`] is the only place that opens a device.

use common::scan::device::{block_device_path, major_minor, HEAD_READ};
use common::scan::io::{BlockSource, FileSource, HeadCached};
use common::scan::label::{dashed_uuid, read_label, DiskLocn, LabelError};
use common::scan::mda::{read_committed_text, read_mda_header, MdaHeader};
use common::scan::metadata::{parse_vg_text, VolumeGroup};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Why a device could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// No block device has this number (fake numbers, image files, a vanished device).
    NoDevice(String),
    /// The device exists but cannot be opened.
    Open(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NoDevice(s) | OpenError::Open(s) => f.write_str(s),
        }
    }
}

/// Device number -> `/dev` path, remembered between checks (a sysfs lookup costs more than the
/// read). A remembered name is trusted only after `fstat` of the opened file shows the number.
#[derive(Debug, Default)]
pub struct DevicePaths {
    paths: Mutex<HashMap<u64, PathBuf>>,
}

impl DevicePaths {
    /// Open the block device `devno` read-only with `O_DIRECT`.
    pub fn open(&self, devno: u64) -> Result<FileSource, OpenError> {
        let (ma, mi) = major_minor(devno);
        let remembered = self.paths.lock().get(&devno).cloned();
        for path in [remembered, None] {
            let fresh = path.is_none();
            let path = match path {
                Some(p) => p,
                None => block_device_path(devno)
                    .ok_or_else(|| OpenError::NoDevice(format!("no block device {ma}:{mi}")))?,
            };
            let src = match FileSource::open(&path, true) {
                Ok(src) => src,
                Err(e) if fresh => {
                    return Err(OpenError::Open(format!("{}: {e}", path.display())));
                }
                Err(_) => continue,
            };
            let rdev = src.file.metadata().map(|m| m.rdev()).unwrap_or(0);
            if rdev == devno {
                self.paths.lock().insert(devno, path);
                return Ok(src);
            }
            self.paths.lock().remove(&devno);
            if fresh {
                return Err(OpenError::NoDevice(format!(
                    "{} is not device {ma}:{mi}",
                    path.display()
                )));
            }
        }
        Err(OpenError::NoDevice(format!("no block device {ma}:{mi}")))
    }
}

/// What the head of a device showed for the PV expected there.
#[derive(Debug)]
pub enum Seen {
    /// The head could not be read (EIO, a device shorter than its label or mda header).
    Unreadable(String),
    /// No valid LVM label (wiped, damaged, never there).
    NoLabel(String),
    /// A label of another PV.
    OtherPv(String),
    /// Our PV; the mda asked for is no longer in its pv_header.
    MdaGone(u64),
    /// Our PV, with the header of the mda asked for (if one was) and, when asked for, the
    /// committed metadata as a VG (`None`: the mda holds none).
    Pv {
        header: Option<Result<MdaHeader, String>>,
        text: Option<Result<Option<Box<VolumeGroup>>, String>>,
    },
}

impl Seen {
    /// Failures that a torn read (metadata being rewritten while read) can cause and that are
    /// worth one more read.
    pub fn worth_retry(&self) -> bool {
        match self {
            Seen::Unreadable(_) => false,
            Seen::NoLabel(_) | Seen::OtherPv(_) | Seen::MdaGone(_) => true,
            Seen::Pv { header, text } => {
                matches!(header, Some(Err(_))) || matches!(text, Some(Err(_)))
            }
        }
    }
}

/// Read the head of `src` (one read), check that it holds `pvid` (dashed), and read the header of
/// its mda at `mda` (usually served from the same read). `want_text` is asked, given the header,
/// whether the committed metadata must be read and parsed too.
pub fn inspect(
    src: &dyn BlockSource,
    pvid: &str,
    mda: Option<DiskLocn>,
    want_text: impl FnOnce(&MdaHeader) -> bool,
) -> Seen {
    inspect_in(src, pvid, mda, want_text, &mut Vec::new())
}

/// Bytes read when only the label is wanted (a binding).
const LABEL_READ: u64 = 4096;

/// [`inspect`] reading the head into `buf` (its allocation is kept for the next device).
pub fn inspect_in(
    src: &dyn BlockSource,
    pvid: &str,
    mda: Option<DiskLocn>,
    want_text: impl FnOnce(&MdaHeader) -> bool,
    buf: &mut Vec<u8>,
) -> Seen {
    // Without an mda to look at only the label is wanted: it lies in the first 4 sectors, and
    // 4 KiB keeps the read aligned for any sector size.
    let size = if mda.is_some() { HEAD_READ } else { LABEL_READ };
    match HeadCached::new_in(src, size, std::mem::take(buf)) {
        Ok(head) => {
            let seen = inspect_head(&head, pvid, mda, want_text);
            *buf = head.into_buffer();
            seen
        }
        Err((e, b)) => {
            *buf = b;
            Seen::Unreadable(e.to_string())
        }
    }
}

fn inspect_head(
    head: &HeadCached,
    pvid: &str,
    mda: Option<DiskLocn>,
    want_text: impl FnOnce(&MdaHeader) -> bool,
) -> Seen {
    let label = match read_label(head) {
        Ok(l) => l,
        Err(LabelError::Read(e)) => return Seen::Unreadable(e.to_string()),
        Err(e) => return Seen::NoLabel(e.to_string()),
    };
    let found = dashed_uuid(&label.pv.pvid);
    if found != pvid {
        return Seen::OtherPv(found);
    }
    let Some(locn) = mda else {
        return Seen::Pv {
            header: None,
            text: None,
        };
    };
    if !label
        .pv
        .metadata_areas
        .iter()
        .any(|m| m.offset == locn.offset)
    {
        return Seen::MdaGone(locn.offset);
    }
    let header = match read_mda_header(head, locn) {
        Ok(h) => h,
        Err(e) => {
            return Seen::Pv {
                header: Some(Err(e.to_string())),
                text: None,
            }
        }
    };
    let text = want_text(&header).then(|| match read_committed_text(head, &header) {
        Ok(None) => Ok(None),
        Ok(Some(text)) => parse_vg_text(&text)
            .map(|vg| Some(Box::new(vg)))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    });
    Seen::Pv {
        header: Some(Ok(header)),
        text,
    }
}

/// [`inspect`], read once more when the first read failed in a way a concurrent rewrite of the
/// label or metadata can cause (a torn read). Returns what was seen and the number of reads.
pub fn inspect_twice(
    src: &dyn BlockSource,
    pvid: &str,
    mda: Option<DiskLocn>,
    want_text: impl Fn(&MdaHeader) -> bool,
    buf: &mut Vec<u8>,
) -> (Seen, u64) {
    let first = inspect_in(src, pvid, mda, &want_text, buf);
    if !first.worth_retry() {
        return (first, 1);
    }
    (inspect_in(src, pvid, mda, &want_text, buf), 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::scan::MemSource;

    #[test]
    fn missing_devices_are_told_apart_from_failed_opens() {
        let paths = DevicePaths::default();
        // Major 4095 is what image files get: never a block device.
        let fake = common::scan::device::makedev(4095, 12345);
        assert!(matches!(paths.open(fake), Err(OpenError::NoDevice(_))));
    }

    use common::scan::crc::{calc_crc, INITIAL_CRC};
    use common::scan::label::{encode_label_sector, PvHeader};
    use common::scan::mda::{encode_mda_header, RawLocn};
    use std::cell::Cell;

    const PVID: &str = "fQvILRuA8coAfpzufGo2gQE2LNKJgIoP";
    const MDA: DiskLocn = DiskLocn {
        offset: 4096,
        size: 61440,
    };

    fn text(seqno: u32) -> Vec<u8> {
        let mut t = format!(
            "vgT {{\nid = \"Ab1234-abcd-abcd-abcd-abcd-abcd-abcdef\"\nseqno = {seqno}\n\
             format = \"lvm2\"\nstatus = [\"READ\"]\nextent_size = 8192\nmax_lv = 0\nmax_pv = 0\n\
             physical_volumes {{\npv0 {{\nid = \"{}\"\nstatus = [\"ALLOCATABLE\"]\n\
             dev_size = 131072\npe_start = 2048\npe_count = 15\n}}\n}}\n}}\n",
            dashed_uuid(PVID)
        )
        .into_bytes();
        t.push(0);
        t
    }

    /// A 64 KiB PV image with one mda at 4096 whose committed text has `seqno`.
    fn image(seqno: u32) -> Vec<u8> {
        let mut img = vec![0u8; 65536];
        let pv = PvHeader {
            pvid: PVID.to_owned(),
            device_size: 65536,
            data_areas: vec![DiskLocn {
                offset: 1048576,
                size: 0,
            }],
            metadata_areas: vec![MDA],
            ext_version: 2,
            ext_flags: 1,
            bootloader_areas: vec![],
        };
        img[512..1024].copy_from_slice(&encode_label_sector(1, &pv));
        let t = text(seqno);
        let slot = RawLocn {
            offset: 512,
            size: t.len() as u64,
            checksum: calc_crc(INITIAL_CRC, &t),
            flags: 0,
        };
        img[4096..4608].copy_from_slice(&encode_mda_header(4096, MDA.size, slot));
        img[4608..4608 + t.len()].copy_from_slice(&t);
        img
    }

    fn seqno_seen(s: &Seen) -> Option<u64> {
        match s {
            Seen::Pv {
                header: Some(Ok(_)),
                text: Some(Ok(Some(vg))),
            } => Some(vg.seqno),
            _ => None,
        }
    }

    #[test]
    fn a_good_pv_shows_its_header_and_text() {
        let img = image(7);
        let s = inspect(&MemSource(&img), &dashed_uuid(PVID), Some(MDA), |_| true);
        assert_eq!(seqno_seen(&s), Some(7));
        let s = inspect(&MemSource(&img), "other", Some(MDA), |_| true);
        assert!(matches!(s, Seen::OtherPv(_)));
    }

    /// A device whose every read fails with EIO.
    struct Eio;
    impl BlockSource for Eio {
        fn size(&self) -> u64 {
            65536
        }
        fn read_exact_at(&self, _: &mut [u8], _: u64) -> std::io::Result<()> {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        }
    }

    #[test]
    fn eio_is_unreadable_and_not_retried() {
        let (s, reads) = inspect_twice(
            &Eio,
            &dashed_uuid(PVID),
            Some(MDA),
            |_| true,
            &mut Vec::new(),
        );
        assert!(matches!(s, Seen::Unreadable(_)), "{s:?}");
        assert_eq!(reads, 1);
    }

    #[test]
    fn truncated_below_the_mda_has_no_header() {
        let img = image(7);
        let s = inspect(
            &MemSource(&img[..2048]),
            &dashed_uuid(PVID),
            Some(MDA),
            |_| true,
        );
        assert!(
            matches!(
                s,
                Seen::Pv {
                    header: Some(Err(_)),
                    ..
                }
            ),
            "{s:?}"
        );
    }

    #[test]
    fn bad_header_checksum_is_an_error_after_a_retry() {
        let mut img = image(7);
        img[4096 + 200] ^= 0xff;
        let (s, reads) = inspect_twice(
            &MemSource(&img),
            &dashed_uuid(PVID),
            Some(MDA),
            |_| true,
            &mut Vec::new(),
        );
        assert!(
            matches!(
                s,
                Seen::Pv {
                    header: Some(Err(_)),
                    ..
                }
            ),
            "{s:?}"
        );
        assert_eq!(reads, 2);
    }

    /// A device being rewritten: the first read sees the new header with half-written text,
    /// later reads the finished write.
    struct Torn {
        torn: Vec<u8>,
        done: Vec<u8>,
        reads: Cell<u32>,
    }
    impl BlockSource for Torn {
        fn size(&self) -> u64 {
            self.done.len() as u64
        }
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            self.reads.set(self.reads.get() + 1);
            let img = if self.reads.get() == 1 {
                &self.torn
            } else {
                &self.done
            };
            MemSource(img).read_exact_at(buf, offset)
        }
    }

    #[test]
    fn torn_reads_are_retried_and_never_pass_as_good() {
        let done = image(8);
        let mut torn = done.clone();
        // The new header is on disk, the text behind it only half written.
        let half = 4608 + text(8).len() / 2;
        torn[half..half + 40].fill(0);
        let src = Torn {
            torn: torn.clone(),
            done,
            reads: Cell::new(0),
        };
        let (s, reads) = inspect_twice(
            &src,
            &dashed_uuid(PVID),
            Some(MDA),
            |_| true,
            &mut Vec::new(),
        );
        assert_eq!((seqno_seen(&s), reads), (Some(8), 2), "{s:?}");
        // Still torn at the second read: an error, never a VG.
        let (s, _) = inspect_twice(
            &MemSource(&torn),
            &dashed_uuid(PVID),
            Some(MDA),
            |_| true,
            &mut Vec::new(),
        );
        assert!(
            matches!(
                s,
                Seen::Pv {
                    text: Some(Err(_)),
                    ..
                }
            ),
            "{s:?}"
        );
    }

    #[test]
    fn short_or_empty_images_are_no_pv() {
        let empty = [0u8; 8192];
        assert!(matches!(
            inspect(&MemSource(&empty), "x", None, |_| false),
            Seen::NoLabel(_)
        ));
        let tiny = [0u8; 100];
        assert!(matches!(
            inspect(&MemSource(&tiny), "x", None, |_| false),
            Seen::NoLabel(_) | Seen::Unreadable(_)
        ));
    }
}
