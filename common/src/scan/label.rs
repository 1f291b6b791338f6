//! The label and the pv_header (docs/protocol.md §5.1–5.3): a 512-byte sector among the first four
//! of the device, holding `label_header` and then `pv_header` with its data, metadata and
//! bootloader area lists.

use super::crc::{calc_crc, INITIAL_CRC};
use super::io::{le_u32, le_u64, BlockSource, ReadError};
use std::fmt;

pub const SECTOR_SIZE: u64 = 512;
/// Sectors 0..4 are searched for a label.
pub const LABEL_SCAN_SECTORS: u64 = 4;
const LABEL_ID: &[u8; 8] = b"LABELONE";
const LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// `label_header` size; the CRC covers the sector from byte 20 (`offset_xl`) on.
const LABEL_HEADER_SIZE: usize = 32;
const PV_UUID_LEN: usize = 32;
const DISK_LOCN_SIZE: usize = 16;

/// `pv_header_extension.flags` bit: the PV belongs to a VG.
pub const PV_EXT_USED: u32 = 0x1;

/// One `{offset, size}` entry of a pv_header list, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLocn {
    pub offset: u64,
    /// 0 means "to the end of the device" for data areas.
    pub size: u64,
}

/// A decoded pv_header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvHeader {
    /// The 32-character PVID, without dashes.
    pub pvid: String,
    /// PV size in bytes as the header records it.
    pub device_size: u64,
    pub data_areas: Vec<DiskLocn>,
    pub metadata_areas: Vec<DiskLocn>,
    /// 0 when the header has no extension.
    pub ext_version: u32,
    pub ext_flags: u32,
    pub bootloader_areas: Vec<DiskLocn>,
}

/// A label found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Sector the label was found in (normally 1).
    pub sector: u64,
    pub pv: PvHeader,
}

/// Why a device has no usable label.
#[derive(Debug)]
pub enum LabelError {
    /// No `LABELONE` sector among the first four.
    NotFound,
    /// A `LABELONE` sector names another sector than the one it sits in.
    WrongSector {
        found_at: u64,
        claims: u64,
    },
    /// A `LABELONE` sector whose CRC does not match.
    BadChecksum {
        sector: u64,
        stored: u32,
        computed: u32,
    },
    /// A label of another type than `LVM2 001`.
    UnknownType {
        sector: u64,
    },
    /// `offset_xl` puts the pv_header (partly) outside the label sector.
    HeaderOffset {
        offset: u32,
    },
    /// A disk_locn list runs to the end of the sector without its zero terminator.
    Unterminated {
        list: &'static str,
    },
    /// The pv_header extension does not fit in the label sector.
    ExtensionPastSector,
    /// The PV UUID has characters outside `[0-9a-zA-Z!#]`.
    BadPvid,
    Read(ReadError),
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelError::NotFound => write!(f, "no label found in the first 4 sectors"),
            LabelError::WrongSector { found_at, claims } => {
                write!(f, "label for sector {claims} found at sector {found_at}")
            }
            LabelError::BadChecksum { sector, stored, computed } => write!(
                f,
                "label checksum mismatch in sector {sector}: stored {stored:#010x}, computed {computed:#010x}"
            ),
            LabelError::UnknownType { sector } => {
                write!(f, "label in sector {sector} is not of type \"LVM2 001\"")
            }
            LabelError::HeaderOffset { offset } => {
                write!(f, "pv_header offset {offset} lies outside the label sector")
            }
            LabelError::Unterminated { list } => {
                write!(f, "pv_header {list} list has no terminator within the label sector")
            }
            LabelError::ExtensionPastSector => {
                write!(f, "pv_header extension runs past the label sector")
            }
            LabelError::BadPvid => write!(f, "PV UUID has invalid characters"),
            LabelError::Read(e) => write!(f, "reading the label: {e}"),
        }
    }
}

impl std::error::Error for LabelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LabelError::Read(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether `c` is in the UUID alphabet `[0-9a-zA-Z!#]`.
pub fn is_uuid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'!' || c == b'#'
}

/// `6-4-4-4-4-4-6` dashed form of a 32-character id (docs/protocol.md §5.7).
pub fn dashed_uuid(id: &str) -> String {
    let mut out = String::with_capacity(38);
    let mut rest = id;
    for (i, n) in [6usize, 4, 4, 4, 4, 4, 6].iter().enumerate() {
        let cut = (*n).min(rest.len());
        let (head, tail) = rest.split_at(cut);
        if i > 0 {
            out.push('-');
        }
        out.push_str(head);
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Search sectors 0..4 of `src` for an LVM2 label and decode its pv_header.
pub fn read_label(src: &dyn BlockSource) -> Result<Label, LabelError> {
    let want = (LABEL_SCAN_SECTORS * SECTOR_SIZE).min(src.size() / SECTOR_SIZE * SECTOR_SIZE);
    let head = src.read_vec(0, want).map_err(LabelError::Read)?;
    find_label_in(&head)
}

/// [`read_label`] over the first sectors already in memory.
pub fn find_label_in(head: &[u8]) -> Result<Label, LabelError> {
    let mut first_problem = None;
    for (index, sector) in head.chunks_exact(SECTOR_SIZE as usize).enumerate() {
        let index = index as u64;
        if index >= LABEL_SCAN_SECTORS {
            break;
        }
        if &sector[..8] != LABEL_ID {
            continue;
        }
        match check_label_sector(index, sector) {
            Ok(()) => {
                return Ok(Label {
                    sector: index,
                    pv: parse_pv_header(sector)?,
                })
            }
            Err(e) => {
                first_problem.get_or_insert(e);
            }
        }
    }
    Err(first_problem.unwrap_or(LabelError::NotFound))
}

fn check_label_sector(index: u64, sector: &[u8]) -> Result<(), LabelError> {
    let claims = le_u64(sector, 8).unwrap_or(u64::MAX);
    if claims != index {
        return Err(LabelError::WrongSector {
            found_at: index,
            claims,
        });
    }
    let stored = le_u32(sector, 16).unwrap_or(0);
    let computed = calc_crc(INITIAL_CRC, &sector[20..]);
    if stored != computed {
        return Err(LabelError::BadChecksum {
            sector: index,
            stored,
            computed,
        });
    }
    if &sector[24..32] != LABEL_TYPE {
        return Err(LabelError::UnknownType { sector: index });
    }
    Ok(())
}

/// Decode the pv_header of a checked label sector; every field must lie inside the sector.
fn parse_pv_header(sector: &[u8]) -> Result<PvHeader, LabelError> {
    let offset = le_u32(sector, 20).unwrap_or(u32::MAX);
    let start = offset as usize;
    let fixed = PV_UUID_LEN + 8;
    if start < LABEL_HEADER_SIZE || start.saturating_add(fixed) > sector.len() {
        return Err(LabelError::HeaderOffset { offset });
    }
    let uuid = &sector[start..start + PV_UUID_LEN];
    if !uuid.iter().all(|&c| is_uuid_char(c)) {
        return Err(LabelError::BadPvid);
    }
    let pvid = String::from_utf8_lossy(uuid).into_owned();
    let device_size = le_u64(sector, start + PV_UUID_LEN).unwrap_or(0);
    let mut at = start + fixed;
    let data_areas = read_locn_list(sector, &mut at, "data area")?;
    let metadata_areas = read_locn_list(sector, &mut at, "metadata area")?;
    let (ext_version, ext_flags) = match (le_u32(sector, at), le_u32(sector, at + 4)) {
        (Some(v), Some(f)) => (v, f),
        _ => return Err(LabelError::ExtensionPastSector),
    };
    at += 8;
    let bootloader_areas = if ext_version != 0 {
        read_locn_list(sector, &mut at, "bootloader area")?
    } else {
        Vec::new()
    };
    Ok(PvHeader {
        pvid,
        device_size,
        data_areas,
        metadata_areas,
        ext_version,
        ext_flags: if ext_version != 0 { ext_flags } else { 0 },
        bootloader_areas,
    })
}

/// Read `{offset,size}` pairs up to the one with offset 0, which must lie inside the sector.
fn read_locn_list(
    sector: &[u8],
    at: &mut usize,
    list: &'static str,
) -> Result<Vec<DiskLocn>, LabelError> {
    let mut out = Vec::new();
    loop {
        let (Some(offset), Some(size)) = (le_u64(sector, *at), le_u64(sector, *at + 8)) else {
            return Err(LabelError::Unterminated { list });
        };
        *at += DISK_LOCN_SIZE;
        if offset == 0 {
            return Ok(out);
        }
        out.push(DiskLocn { offset, size });
    }
}

/// Test and fuzz helper: build a label sector (sector 1 layout) from its parts.
pub fn encode_label_sector(sector_no: u64, pv: &PvHeader) -> Vec<u8> {
    let mut s = vec![0u8; SECTOR_SIZE as usize];
    s[..8].copy_from_slice(LABEL_ID);
    s[8..16].copy_from_slice(&sector_no.to_le_bytes());
    s[20..24].copy_from_slice(&(LABEL_HEADER_SIZE as u32).to_le_bytes());
    s[24..32].copy_from_slice(LABEL_TYPE);
    let mut body = Vec::new();
    let mut id = pv.pvid.as_bytes().to_vec();
    id.resize(PV_UUID_LEN, b'0');
    body.extend_from_slice(&id);
    body.extend_from_slice(&pv.device_size.to_le_bytes());
    let list = |areas: &[DiskLocn], body: &mut Vec<u8>| {
        for a in areas
            .iter()
            .chain(std::iter::once(&DiskLocn { offset: 0, size: 0 }))
        {
            body.extend_from_slice(&a.offset.to_le_bytes());
            body.extend_from_slice(&a.size.to_le_bytes());
        }
    };
    list(&pv.data_areas, &mut body);
    list(&pv.metadata_areas, &mut body);
    body.extend_from_slice(&pv.ext_version.to_le_bytes());
    body.extend_from_slice(&pv.ext_flags.to_le_bytes());
    if pv.ext_version != 0 {
        list(&pv.bootloader_areas, &mut body);
    }
    let n = body.len().min(s.len() - LABEL_HEADER_SIZE);
    s[LABEL_HEADER_SIZE..LABEL_HEADER_SIZE + n].copy_from_slice(&body[..n]);
    reseal_label_sector(&mut s);
    s
}

/// Recompute the CRC of a label sector after editing it.
pub fn reseal_label_sector(s: &mut [u8]) {
    if s.len() >= SECTOR_SIZE as usize {
        let crc = calc_crc(INITIAL_CRC, &s[20..SECTOR_SIZE as usize]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typical() -> PvHeader {
        PvHeader {
            pvid: "fQvILRuA8coAfpzufGo2gQE2LNKJgIoP".into(),
            device_size: 64 << 20,
            data_areas: vec![DiskLocn {
                offset: 1 << 20,
                size: 0,
            }],
            metadata_areas: vec![DiskLocn {
                offset: 4096,
                size: 1_044_480,
            }],
            ext_version: 2,
            ext_flags: PV_EXT_USED,
            bootloader_areas: vec![],
        }
    }

    fn image_with(sector: Vec<u8>, at: usize) -> Vec<u8> {
        let mut img = vec![0u8; 4096];
        img[at * 512..at * 512 + 512].copy_from_slice(&sector);
        img
    }

    #[test]
    fn typical_label_round_trips_in_sector_1() {
        let img = image_with(encode_label_sector(1, &typical()), 1);
        let l = find_label_in(&img[..2048]).unwrap();
        assert_eq!(l.sector, 1);
        assert_eq!(l.pv, typical());
    }

    #[test]
    fn bootloader_areas_are_read_with_extension() {
        let mut pv = typical();
        pv.bootloader_areas = vec![DiskLocn {
            offset: 1 << 20,
            size: 1 << 20,
        }];
        let img = image_with(encode_label_sector(1, &pv), 1);
        assert_eq!(
            find_label_in(&img[..2048]).unwrap().pv.bootloader_areas,
            pv.bootloader_areas
        );
    }

    #[test]
    fn bad_crc_is_refused() {
        let mut s = encode_label_sector(1, &typical());
        s[100] ^= 1;
        let img = image_with(s, 1);
        assert!(matches!(
            find_label_in(&img[..2048]),
            Err(LabelError::BadChecksum { sector: 1, .. })
        ));
    }

    #[test]
    fn label_claiming_another_sector_is_ignored() {
        let img = image_with(encode_label_sector(2, &typical()), 1);
        assert!(matches!(
            find_label_in(&img[..2048]),
            Err(LabelError::WrongSector {
                found_at: 1,
                claims: 2
            })
        ));
    }

    #[test]
    fn no_label_is_not_found() {
        assert!(matches!(
            find_label_in(&[0u8; 2048]),
            Err(LabelError::NotFound)
        ));
        assert!(matches!(
            find_label_in(&[0u8; 100]),
            Err(LabelError::NotFound)
        ));
    }

    #[test]
    fn pv_header_offset_past_sector_is_refused() {
        for off in [500u32, 480, 10, u32::MAX] {
            let mut s = encode_label_sector(1, &typical());
            s[20..24].copy_from_slice(&off.to_le_bytes());
            reseal_label_sector(&mut s);
            let img = image_with(s, 1);
            assert!(
                matches!(
                    find_label_in(&img[..2048]),
                    Err(LabelError::HeaderOffset { .. })
                ),
                "offset {off}"
            );
        }
    }

    #[test]
    fn disk_locn_list_without_terminator_is_refused() {
        let mut s = encode_label_sector(1, &typical());
        // Fill everything after the fixed part with non-zero offsets.
        for chunk in s[32 + 40..].chunks_mut(16) {
            chunk.fill(0x11);
        }
        reseal_label_sector(&mut s);
        let img = image_with(s, 1);
        assert!(matches!(
            find_label_in(&img[..2048]),
            Err(LabelError::Unterminated { .. })
        ));
    }

    #[test]
    fn extension_past_sector_is_refused() {
        let mut s = encode_label_sector(1, &typical());
        let zeros = 512 - 32 - 40 - 16;
        // One data area list that ends so late that mda list + extension cannot fit.
        for chunk in s[32 + 40..32 + 40 + zeros - 16].chunks_mut(16) {
            chunk.fill(0x22);
        }
        s[32 + 40 + zeros - 16..].fill(0);
        reseal_label_sector(&mut s);
        let img = image_with(s, 1);
        assert!(find_label_in(&img[..2048]).is_err());
    }

    #[test]
    fn bad_pvid_is_refused() {
        let mut pv = typical();
        pv.pvid = "fQvILR-uA8coAfpzufGo2gQE2LNKJgIo".into();
        let img = image_with(encode_label_sector(1, &pv), 1);
        assert!(matches!(
            find_label_in(&img[..2048]),
            Err(LabelError::BadPvid)
        ));
    }

    #[test]
    fn dashes_follow_6_4_4_4_4_4_6() {
        assert_eq!(
            dashed_uuid("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP"),
            "fQvILR-uA8c-oAfp-zufG-o2gQ-E2LN-KJgIoP"
        );
    }
}
