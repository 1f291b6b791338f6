//! Metadata areas (docs/protocol.md §5.4–5.5): the `mda_header` sector, its `raw_locn` slots, and
//! the committed metadata text in the circular buffer after the header, wrap-around included.
//!
//! Every size and offset read from disk is checked against the mda and the device before it is
//! used, so a header that lies about sizes is refused without reading outside the area.

use super::crc::{calc_crc, INITIAL_CRC};
use super::io::{le_u32, le_u64, BlockSource, ReadError};
use super::label::{DiskLocn, SECTOR_SIZE};
use std::fmt;

/// `FMTT_MAGIC`.
pub const MDA_MAGIC: &[u8; 16] =
    b"\x20\x4c\x56\x4d\x32\x20\x78\x5b\x35\x41\x25\x72\x30\x4e\x2a\x3e";
/// `FMTT_VERSION`.
pub const MDA_VERSION: u32 = 1;
/// `raw_locn.flags` bit: the mda is ignored (`--metadataignore`).
pub const RAW_LOCN_IGNORED: u32 = 0x1;
const RAW_LOCN_AT: usize = 40;
const RAW_LOCN_SIZE: usize = 24;
/// Metadata text above this is refused (a real VG's text is far smaller).
pub const MAX_TEXT: u64 = 4 << 30;

/// One `raw_locn` slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawLocn {
    /// Relative to the mda start; 0 = no metadata.
    pub offset: u64,
    /// Length of the text including its trailing NUL.
    pub size: u64,
    pub checksum: u32,
    pub flags: u32,
}

/// A validated mda_header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaHeader {
    /// Absolute byte offset of the header.
    pub start: u64,
    /// Size of the whole area, header included.
    pub size: u64,
    /// Slot 0: the committed metadata.
    pub committed: RawLocn,
}

impl MdaHeader {
    /// `RAW_LOCN_IGNORED` of slot 0.
    pub fn ignored(&self) -> bool {
        self.committed.flags & RAW_LOCN_IGNORED != 0
    }

    /// Free space lvmetad is told about, in sectors (docs/protocol.md §5.5 step 8).
    pub fn free_sectors(&self) -> u64 {
        let usable = self.size.saturating_sub(SECTOR_SIZE);
        if self.committed.offset == 0 {
            return (usable / 2) >> 9;
        }
        let used = self
            .committed
            .size
            .div_ceil(SECTOR_SIZE)
            .saturating_mul(2 * SECTOR_SIZE);
        if used >= usable {
            0
        } else {
            ((usable - used) / 2) >> 9
        }
    }
}

/// Why an mda or its text cannot be used.
#[derive(Debug)]
pub enum MdaError {
    BadHeaderChecksum {
        stored: u32,
        computed: u32,
    },
    BadMagic,
    BadVersion(u32),
    /// The header's `start` is not where the pv_header says the mda is.
    WrongStart {
        expected: u64,
        found: u64,
    },
    /// The area is too small to hold a header and any text (sizes 0, 1, ... 512).
    TooSmall(u64),
    /// The header claims a larger area than the pv_header or the device allow.
    SizeMismatch {
        header: u64,
        limit: u64,
    },
    /// The committed text's location is impossible.
    BadLocation {
        offset: u64,
        size: u64,
        reason: &'static str,
    },
    /// The text checksum does not match `raw_locn.checksum`.
    BadTextChecksum {
        stored: u32,
        computed: u32,
    },
    /// The text does not start with a valid VG name.
    BadVgName,
    Read(ReadError),
}

impl fmt::Display for MdaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MdaError::BadHeaderChecksum { stored, computed } => write!(
                f,
                "mda header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            MdaError::BadMagic => write!(f, "mda header has a wrong magic"),
            MdaError::BadVersion(v) => write!(f, "mda header version {v} is not 1"),
            MdaError::WrongStart { expected, found } => {
                write!(f, "mda header at {expected} claims to start at {found}")
            }
            MdaError::TooSmall(s) => write!(f, "mda size {s} is too small"),
            MdaError::SizeMismatch { header, limit } => {
                write!(f, "mda size {header} exceeds the {limit} bytes available")
            }
            MdaError::BadLocation {
                offset,
                size,
                reason,
            } => {
                write!(f, "metadata location offset {offset} size {size}: {reason}")
            }
            MdaError::BadTextChecksum { stored, computed } => write!(
                f,
                "metadata checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            MdaError::BadVgName => write!(f, "metadata text does not start with a valid VG name"),
            MdaError::Read(e) => write!(f, "reading the metadata area: {e}"),
        }
    }
}

impl std::error::Error for MdaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MdaError::Read(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ReadError> for MdaError {
    fn from(e: ReadError) -> Self {
        MdaError::Read(e)
    }
}

/// Read and validate the header of the mda at `locn` (from the pv_header).
pub fn read_mda_header(src: &dyn BlockSource, locn: DiskLocn) -> Result<MdaHeader, MdaError> {
    let sector = src.read_vec(locn.offset, SECTOR_SIZE)?;
    let h = parse_mda_header(&sector, locn.offset)?;
    // The area must lie within what the pv_header gave it and within the device.
    let limit = if locn.size != 0 { locn.size } else { h.size };
    let dev_room = src.size().saturating_sub(locn.offset);
    let limit = limit.min(dev_room);
    if h.size > limit {
        return Err(MdaError::SizeMismatch {
            header: h.size,
            limit,
        });
    }
    Ok(h)
}

/// Validate a header sector found at absolute offset `at` (checksum, magic, version, start).
pub fn parse_mda_header(sector: &[u8], at: u64) -> Result<MdaHeader, MdaError> {
    if sector.len() < SECTOR_SIZE as usize {
        return Err(MdaError::TooSmall(sector.len() as u64));
    }
    let sector = &sector[..SECTOR_SIZE as usize];
    let stored = le_u32(sector, 0).unwrap_or(0);
    let computed = calc_crc(INITIAL_CRC, &sector[4..]);
    if stored != computed {
        return Err(MdaError::BadHeaderChecksum { stored, computed });
    }
    if &sector[4..20] != MDA_MAGIC {
        return Err(MdaError::BadMagic);
    }
    let version = le_u32(sector, 20).unwrap_or(0);
    if version != MDA_VERSION {
        return Err(MdaError::BadVersion(version));
    }
    let start = le_u64(sector, 24).unwrap_or(0);
    if start != at {
        return Err(MdaError::WrongStart {
            expected: at,
            found: start,
        });
    }
    let size = le_u64(sector, 32).unwrap_or(0);
    if size <= SECTOR_SIZE {
        return Err(MdaError::TooSmall(size));
    }
    let committed = raw_locn(sector, 0).unwrap_or_default();
    Ok(MdaHeader {
        start,
        size,
        committed,
    })
}

fn raw_locn(sector: &[u8], slot: usize) -> Option<RawLocn> {
    let at = RAW_LOCN_AT + slot * RAW_LOCN_SIZE;
    Some(RawLocn {
        offset: le_u64(sector, at)?,
        size: le_u64(sector, at + 8)?,
        checksum: le_u32(sector, at + 16)?,
        flags: le_u32(sector, at + 20)?,
    })
}

/// Where the committed text lies: one or two `(absolute offset, length)` pieces.
pub fn text_pieces(h: &MdaHeader) -> Result<Vec<(u64, u64)>, MdaError> {
    let RawLocn { offset, size, .. } = h.committed;
    let bad = |reason| {
        Err(MdaError::BadLocation {
            offset,
            size,
            reason,
        })
    };
    if size == 0 {
        return bad("empty metadata");
    }
    if size > MAX_TEXT {
        return bad("larger than 4 GiB");
    }
    if offset >= h.size {
        return bad("offset beyond the metadata area");
    }
    if offset < SECTOR_SIZE {
        return bad("offset inside the mda header");
    }
    if size > h.size - SECTOR_SIZE {
        return bad("larger than the metadata area");
    }
    let end = offset + size; // both bounded above, no overflow
    if end <= h.size {
        return Ok(vec![(h.start + offset, size)]);
    }
    let wrap = end - h.size;
    if wrap > offset - SECTOR_SIZE {
        return bad("too large for the circular buffer");
    }
    Ok(vec![
        (h.start + offset, size - wrap),
        (h.start + SECTOR_SIZE, wrap),
    ])
}

/// Read the committed metadata text of a validated mda and check its CRC and leading VG name.
/// Returns `None` when the mda holds no metadata (slot 0 offset 0).
pub fn read_committed_text(
    src: &dyn BlockSource,
    h: &MdaHeader,
) -> Result<Option<Vec<u8>>, MdaError> {
    if h.committed.offset == 0 {
        return Ok(None);
    }
    let mut text = Vec::new();
    let mut crc = INITIAL_CRC;
    for (at, len) in text_pieces(h)? {
        let part = src.read_vec(at, len)?;
        crc = calc_crc(crc, &part);
        text.extend_from_slice(&part);
    }
    if crc != h.committed.checksum {
        return Err(MdaError::BadTextChecksum {
            stored: h.committed.checksum,
            computed: crc,
        });
    }
    if leading_vg_name(&text).is_none() {
        return Err(MdaError::BadVgName);
    }
    Ok(Some(text))
}

/// The VG name the text starts with (up to 128 bytes, ended by whitespace or `{`), if valid.
pub fn leading_vg_name(text: &[u8]) -> Option<&str> {
    let head = &text[..text.len().min(128)];
    let end = head
        .iter()
        .position(|&c| c.is_ascii_whitespace() || c == b'{')?;
    let name = std::str::from_utf8(&head[..end]).ok()?;
    valid_vg_name(name).then_some(name)
}

/// lvm2's name rules: `[a-zA-Z0-9+_.-]`, not starting with `-`, not `.` or `..`.
pub fn valid_vg_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 128
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'_' | b'.' | b'-'))
}

/// Test and fuzz helper: encode an mda header sector.
pub fn encode_mda_header(start: u64, size: u64, slot0: RawLocn) -> Vec<u8> {
    let mut s = vec![0u8; SECTOR_SIZE as usize];
    s[4..20].copy_from_slice(MDA_MAGIC);
    s[20..24].copy_from_slice(&MDA_VERSION.to_le_bytes());
    s[24..32].copy_from_slice(&start.to_le_bytes());
    s[32..40].copy_from_slice(&size.to_le_bytes());
    s[40..48].copy_from_slice(&slot0.offset.to_le_bytes());
    s[48..56].copy_from_slice(&slot0.size.to_le_bytes());
    s[56..60].copy_from_slice(&slot0.checksum.to_le_bytes());
    s[60..64].copy_from_slice(&slot0.flags.to_le_bytes());
    let crc = calc_crc(INITIAL_CRC, &s[4..]);
    s[..4].copy_from_slice(&crc.to_le_bytes());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::io::MemSource;

    const START: u64 = 4096;
    const SIZE: u64 = 8192;

    /// A device with an mda at 4096 of 8192 bytes holding `text` at `offset` (may wrap).
    fn device(text: &[u8], offset: u64) -> (Vec<u8>, MdaHeader) {
        let mut img = vec![0u8; (START + SIZE) as usize + 4096];
        let mut crc = INITIAL_CRC;
        for (i, &b) in text.iter().enumerate() {
            let mut rel = offset + i as u64;
            if rel >= SIZE {
                rel = rel - SIZE + SECTOR_SIZE;
            }
            img[(START + rel) as usize] = b;
            crc = calc_crc(crc, &[b]);
        }
        let slot = RawLocn {
            offset,
            size: text.len() as u64,
            checksum: crc,
            flags: 0,
        };
        let hdr = encode_mda_header(START, SIZE, slot);
        img[START as usize..START as usize + 512].copy_from_slice(&hdr);
        let h = read_mda_header(
            &MemSource(&img),
            DiskLocn {
                offset: START,
                size: SIZE,
            },
        )
        .unwrap();
        (img, h)
    }

    #[test]
    fn reads_plain_text() {
        let (img, h) = device(b"vg0 {\nseqno = 1\n}\n\0", 512);
        let t = read_committed_text(&MemSource(&img), &h).unwrap().unwrap();
        assert_eq!(t, b"vg0 {\nseqno = 1\n}\n\0");
        assert_eq!(leading_vg_name(&t), Some("vg0"));
    }

    #[test]
    fn reads_wrapped_text() {
        let text = b"vg_wrap {\nseqno = 7\nsome = \"padding padding padding\"\n}\n\0";
        let off = SIZE - 20;
        let (img, h) = device(text, off);
        assert_eq!(text_pieces(&h).unwrap().len(), 2);
        let t = read_committed_text(&MemSource(&img), &h).unwrap().unwrap();
        assert_eq!(&t[..], &text[..]);
    }

    #[test]
    fn bad_text_crc_is_refused() {
        let (mut img, h) = device(b"vg0 {\n}\n\0", 512);
        img[(START + 513) as usize] ^= 1;
        assert!(matches!(
            read_committed_text(&MemSource(&img), &h),
            Err(MdaError::BadTextChecksum { .. })
        ));
    }

    #[test]
    fn bad_header_crc_magic_version_start_are_refused() {
        let good = encode_mda_header(START, SIZE, RawLocn::default());
        let mut s = good.clone();
        s[100] = 1;
        assert!(matches!(
            parse_mda_header(&s, START),
            Err(MdaError::BadHeaderChecksum { .. })
        ));
        let reseal = |mut s: Vec<u8>| {
            let crc = calc_crc(INITIAL_CRC, &s[4..]);
            s[..4].copy_from_slice(&crc.to_le_bytes());
            s
        };
        let mut s = good.clone();
        s[5] = b'X';
        assert!(matches!(
            parse_mda_header(&reseal(s), START),
            Err(MdaError::BadMagic)
        ));
        let mut s = good.clone();
        s[20] = 2;
        assert!(matches!(
            parse_mda_header(&reseal(s), START),
            Err(MdaError::BadVersion(2))
        ));
        assert!(matches!(
            parse_mda_header(&good, 8192),
            Err(MdaError::WrongStart { .. })
        ));
    }

    #[test]
    fn mda_size_0_or_1_is_refused() {
        for size in [0u64, 1, 512] {
            let s = encode_mda_header(START, size, RawLocn::default());
            assert!(
                matches!(parse_mda_header(&s, START), Err(MdaError::TooSmall(_))),
                "{size}"
            );
        }
    }

    #[test]
    fn mda_larger_than_device_or_pv_header_is_refused() {
        let mut img = vec![0u8; 16384];
        let s = encode_mda_header(START, 1 << 30, RawLocn::default());
        img[4096..4608].copy_from_slice(&s);
        let r = read_mda_header(
            &MemSource(&img),
            DiskLocn {
                offset: START,
                size: 0,
            },
        );
        assert!(matches!(r, Err(MdaError::SizeMismatch { .. })));
        let s = encode_mda_header(START, 8192, RawLocn::default());
        img[4096..4608].copy_from_slice(&s);
        let r = read_mda_header(
            &MemSource(&img),
            DiskLocn {
                offset: START,
                size: 4096,
            },
        );
        assert!(matches!(r, Err(MdaError::SizeMismatch { .. })));
    }

    fn locn_error(offset: u64, size: u64) -> bool {
        let h = MdaHeader {
            start: START,
            size: SIZE,
            committed: RawLocn {
                offset,
                size,
                checksum: 0,
                flags: 0,
            },
        };
        matches!(text_pieces(&h), Err(MdaError::BadLocation { .. }))
    }

    #[test]
    fn impossible_locations_are_refused() {
        assert!(locn_error(512, 5 << 30), "size > 4 GiB");
        assert!(locn_error(SIZE, 10), "offset == mda size");
        assert!(locn_error(SIZE + 512, 10), "offset > mda size");
        assert!(locn_error(100, 10), "offset inside header");
        assert!(locn_error(512, SIZE), "size larger than the buffer");
        assert!(locn_error(1024, 0), "empty");
        assert!(
            locn_error(1024, SIZE - 511),
            "one byte more than the buffer"
        );
        assert!(!locn_error(SIZE - 512, 1024), "a sane wrap");
        let h = MdaHeader {
            start: START,
            size: SIZE,
            committed: RawLocn {
                offset: SIZE - 512,
                size: 1024,
                checksum: 0,
                flags: 0,
            },
        };
        assert_eq!(
            text_pieces(&h).unwrap(),
            vec![(START + SIZE - 512, 512), (START + 512, 512)]
        );
    }

    #[test]
    fn free_sectors_follow_lvm2() {
        let mut h = MdaHeader {
            start: 4096,
            size: 1_044_480,
            committed: RawLocn::default(),
        };
        assert_eq!(h.free_sectors(), ((1_044_480 - 512) / 2) >> 9);
        h.committed = RawLocn {
            offset: 512,
            size: 1000,
            checksum: 0,
            flags: 0,
        };
        assert_eq!(h.free_sectors(), ((1_044_480 - 512 - 2048) / 2) >> 9);
        h.size = 2048;
        assert_eq!(h.free_sectors(), 0);
    }

    #[test]
    fn vg_name_rules() {
        assert!(valid_vg_name("vg_0.a+b-c"));
        assert!(!valid_vg_name("-vg"));
        assert!(!valid_vg_name(".."));
        assert!(!valid_vg_name("v g"));
        assert_eq!(leading_vg_name(b"vg1{"), Some("vg1"));
        assert_eq!(leading_vg_name(b"vg1"), None);
    }
}
