//! Scanning one device: its label, every metadata area it lists, and the newest VG metadata
//! found in the non-ignored areas.

use super::io::BlockSource;
use super::label::{read_label, DiskLocn, Label, LabelError};
use super::mda::{read_committed_text, read_mda_header, MdaError, MdaHeader};
use super::metadata::{parse_vg_text, MetadataError, VolumeGroup};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// One metadata area listed in the pv_header.
#[derive(Debug, Clone, PartialEq)]
pub struct MdaInfo {
    /// Where the pv_header says it is.
    pub locn: DiskLocn,
    /// The validated header; `None` when it could not be read (then lvmetad does not hear of it).
    pub header: Option<MdaHeader>,
}

/// A problem with one metadata area that did not stop the scan of the device.
#[derive(Debug)]
pub enum AreaProblem {
    Header(usize, MdaError),
    Text(usize, MdaError),
    Metadata(usize, MetadataError),
}

impl fmt::Display for AreaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AreaProblem::Header(i, e) => write!(f, "mda{i} header: {e}"),
            AreaProblem::Text(i, e) => write!(f, "mda{i} text: {e}"),
            AreaProblem::Metadata(i, e) => write!(f, "mda{i}: {e}"),
        }
    }
}

/// What one device holds.
#[derive(Debug)]
pub struct ScannedPv {
    /// Size of the device in bytes.
    pub size: u64,
    pub label: Label,
    pub mdas: Vec<MdaInfo>,
    /// The VG with the highest seqno among the non-ignored areas (shared with the other PVs
    /// of the scan whose committed text is the same, see [`VgTexts`]).
    pub vg: Option<Arc<VolumeGroup>>,
    /// Which mda (index) the VG was read from.
    pub vg_from: Option<usize>,
    pub problems: Vec<AreaProblem>,
}

/// Whether `seqno` beats the best seen so far (`None`: nothing yet).
pub(crate) fn newer(best: Option<u64>, seqno: u64) -> bool {
    match best {
        Some(b) => seqno > b,
        None => true,
    }
}

/// The VG texts one scan has parsed, keyed by text checksum and length: every PV of a VG
/// carries the same committed text, so a scan of N PVs in N/8 VGs parses each text once and
/// the PVs share the result. A hit compares the whole text, so two texts with one checksum
/// never share a VG. Parsing happens outside the lock; two workers meeting the same new text
/// at once may both parse it (the first kept wins).
#[derive(Debug, Default)]
pub struct VgTexts {
    seen: Mutex<TextsSeen>,
}

/// (checksum, length) -> the texts with that key and their VGs.
type TextsSeen = HashMap<(u32, usize), Vec<(Vec<u8>, Arc<VolumeGroup>)>>;

impl VgTexts {
    /// The VG of `text` (whose CRC is `checksum`), parsed now or by an earlier PV.
    pub fn parse(&self, checksum: u32, text: Vec<u8>) -> Result<Arc<VolumeGroup>, MetadataError> {
        let key = (checksum, text.len());
        let known = |seen: &TextsSeen| {
            seen.get(&key)
                .and_then(|v| v.iter().find(|(t, _)| *t == text))
                .map(|(_, vg)| Arc::clone(vg))
        };
        if let Some(vg) = known(&self.seen.lock()) {
            return Ok(vg);
        }
        let vg = Arc::new(parse_vg_text(&text)?);
        let mut seen = self.seen.lock();
        if let Some(first) = known(&seen) {
            return Ok(first);
        }
        seen.entry(key).or_default().push((text, Arc::clone(&vg)));
        Ok(vg)
    }
}

/// Read a device: label first (an error means "not a PV"), then each metadata area.
pub fn scan_pv(src: &dyn BlockSource) -> Result<ScannedPv, LabelError> {
    scan_pv_with(src, &VgTexts::default())
}

/// [`scan_pv`] sharing parsed VG texts with the other devices of one scan.
pub fn scan_pv_with(src: &dyn BlockSource, texts: &VgTexts) -> Result<ScannedPv, LabelError> {
    let label = read_label(src)?;
    let mut mdas = Vec::new();
    let mut problems = Vec::new();
    let mut best: Option<(usize, Arc<VolumeGroup>)> = None;
    for (i, &locn) in label.pv.metadata_areas.iter().enumerate() {
        let header = match read_mda_header(src, locn) {
            Ok(h) => h,
            Err(e) => {
                problems.push(AreaProblem::Header(i, e));
                mdas.push(MdaInfo { locn, header: None });
                continue;
            }
        };
        if !header.ignored() {
            match read_committed_text(src, &header) {
                Ok(Some(text)) => match texts.parse(header.committed.checksum, text) {
                    Ok(vg) => {
                        if newer(best.as_ref().map(|(_, b)| b.seqno), vg.seqno) {
                            best = Some((i, vg));
                        }
                    }
                    Err(e) => problems.push(AreaProblem::Metadata(i, e)),
                },
                Ok(None) => {}
                Err(e) => problems.push(AreaProblem::Text(i, e)),
            }
        }
        mdas.push(MdaInfo {
            locn,
            header: Some(header),
        });
    }
    let (vg_from, vg) = match best {
        Some((i, vg)) => (Some(i), Some(vg)),
        None => (None, None),
    };
    Ok(ScannedPv {
        size: src.size(),
        label,
        mdas,
        vg,
        vg_from,
        problems,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scan::crc::{calc_crc, INITIAL_CRC};
    use crate::scan::io::MemSource;
    use crate::scan::label::{encode_label_sector, PvHeader, PV_EXT_USED};
    use crate::scan::mda::{encode_mda_header, RawLocn};

    /// An 8 MiB PV image with one 1 MiB mda at 4096 holding `text` (if any), like pvcreate.
    pub(crate) fn pv_image(pvid: &str, text: Option<&[u8]>, ignored: bool) -> Vec<u8> {
        pv_image_sized(pvid, text, ignored, 8 << 20, (1 << 20) - 4096)
    }

    /// A PV image of `size` bytes with one mda of `mda_size` bytes at 4096.
    pub(crate) fn pv_image_sized(
        pvid: &str,
        text: Option<&[u8]>,
        ignored: bool,
        size: u64,
        mda_size: u64,
    ) -> Vec<u8> {
        let mut img = vec![0u8; size as usize];
        let mda = DiskLocn {
            offset: 4096,
            size: mda_size,
        };
        let pv = PvHeader {
            pvid: pvid.into(),
            device_size: size,
            data_areas: vec![DiskLocn {
                offset: 1 << 20,
                size: 0,
            }],
            metadata_areas: vec![mda],
            ext_version: 2,
            ext_flags: if text.is_some() { PV_EXT_USED } else { 0 },
            bootloader_areas: vec![],
        };
        img[512..1024].copy_from_slice(&encode_label_sector(1, &pv));
        let mut slot = RawLocn {
            flags: if ignored { 1 } else { 0 },
            ..Default::default()
        };
        if let Some(t) = text {
            img[4096 + 512..4096 + 512 + t.len()].copy_from_slice(t);
            slot.offset = 512;
            slot.size = t.len() as u64;
            slot.checksum = calc_crc(INITIAL_CRC, t);
        }
        img[4096..4608].copy_from_slice(&encode_mda_header(mda.offset, mda.size, slot));
        img
    }

    #[test]
    fn pv_with_vg_is_scanned() {
        let text = crate::scan::metadata::tests::SAMPLE.as_bytes();
        let img = pv_image("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP", Some(text), false);
        let pv = scan_pv(&MemSource(&img)).unwrap();
        assert_eq!(pv.vg.as_ref().unwrap().name, "vg0");
        assert_eq!(pv.mdas.len(), 1);
        assert!(pv.problems.is_empty());
    }

    #[test]
    fn ignored_mda_is_not_read() {
        let text = crate::scan::metadata::tests::SAMPLE.as_bytes();
        let img = pv_image("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP", Some(text), true);
        let pv = scan_pv(&MemSource(&img)).unwrap();
        assert!(pv.vg.is_none());
        assert!(pv.mdas[0].header.as_ref().unwrap().ignored());
    }

    #[test]
    fn broken_mda_header_keeps_the_pv() {
        let mut img = pv_image("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP", None, false);
        img[4200] ^= 0xff;
        let pv = scan_pv(&MemSource(&img)).unwrap();
        assert!(pv.mdas[0].header.is_none());
        assert!(matches!(
            pv.problems[0],
            AreaProblem::Header(0, MdaError::BadHeaderChecksum { .. })
        ));
    }

    #[test]
    fn mda_past_device_end_is_refused() {
        let mut img = pv_image("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP", None, false);
        img.truncate(4096 + 600);
        let pv = scan_pv(&MemSource(&img)).unwrap();
        assert!(matches!(
            pv.problems[0],
            AreaProblem::Header(0, MdaError::SizeMismatch { .. })
        ));
    }

    /// Random byte flips in the label sector, the mda header and the text, each image resealed
    /// (label and mda header CRCs recomputed) or not. The outcome of every image is asserted:
    /// - unsealed damage to the label is refused with a typed `LabelError`;
    /// - unsealed damage to the mda header (label intact) keeps the PV and refuses that area
    ///   with `BadHeaderChecksum`;
    /// - damage to the text alone keeps the PV and refuses the text with `BadTextChecksum`;
    /// - any other image either is refused with a typed error, or reads a VG that is exactly the
    ///   undamaged one (the text CRC guards it), with every mda inside the device.
    #[test]
    fn random_damage_is_refused_or_read_intact() {
        let text = crate::scan::metadata::tests::SAMPLE.as_bytes();
        let base = pv_image_sized(
            "fQvILRuA8coAfpzufGo2gQE2LNKJgIoP",
            Some(text),
            false,
            8192,
            4096,
        );
        let intact = scan_pv(&MemSource(&base))
            .unwrap()
            .vg
            .expect("the undamaged image has a VG");
        let (label_area, header_area, text_area) = (512..1024, 4096..4608, 4608..4608 + text.len());
        let mut seen = [0usize; 5]; // label refused, header refused, text refused, VG read, other
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3000 {
            let mut img = base.clone();
            for _ in 0..1 + rnd() % 4 {
                let region =
                    [(512usize, 512usize), (4096, 64), (4608, text.len())][(rnd() % 3) as usize];
                let at = region.0 + (rnd() as usize) % region.1;
                img[at] = rnd() as u8;
            }
            let resealed = round % 2 == 0;
            if resealed {
                crate::scan::label::reseal_label_sector(&mut img[512..1024]);
                let crc = calc_crc(INITIAL_CRC, &img[4100..4608]);
                img[4096..4100].copy_from_slice(&crc.to_le_bytes());
            }
            let changed = |r: std::ops::Range<usize>| img[r.clone()] != base[r];
            let (label_hit, header_hit, text_hit) = (
                changed(label_area.clone()),
                changed(header_area.clone()),
                changed(text_area.clone()),
            );
            let what = format!("round {round} (resealed {resealed}, label {label_hit}, header {header_hit}, text {text_hit})");
            let result = scan_pv(&MemSource(&img));
            if !resealed && label_hit {
                let e = result
                    .err()
                    .unwrap_or_else(|| panic!("{what}: damaged label accepted"));
                assert!(!matches!(e, LabelError::Read(_)), "{what}: {e}");
                seen[0] += 1;
                continue;
            }
            if !label_hit && !header_hit && !text_hit {
                let pv = result.unwrap_or_else(|e| panic!("{what}: intact image refused: {e}"));
                assert_eq!(pv.vg.as_ref(), Some(&intact), "{what}");
                continue;
            }
            if !label_hit && !resealed && header_hit {
                let pv = result.unwrap_or_else(|e| panic!("{what}: label intact but refused: {e}"));
                assert!(pv.mdas[0].header.is_none() && pv.vg.is_none(), "{what}");
                assert!(
                    matches!(
                        pv.problems[..],
                        [AreaProblem::Header(0, MdaError::BadHeaderChecksum { .. })]
                    ),
                    "{what}: {:?}",
                    pv.problems
                );
                seen[1] += 1;
                continue;
            }
            if !label_hit && !header_hit && text_hit {
                let pv = result.unwrap_or_else(|e| panic!("{what}: label intact but refused: {e}"));
                assert!(pv.vg.is_none(), "{what}: damaged text read as a VG");
                assert!(
                    matches!(
                        pv.problems[..],
                        [AreaProblem::Text(0, MdaError::BadTextChecksum { .. })]
                    ),
                    "{what}: {:?}",
                    pv.problems
                );
                seen[2] += 1;
                continue;
            }
            // Resealed damage to the label or the header: anything typed, or the intact VG.
            match result {
                Err(e) => {
                    assert!(!e.to_string().is_empty(), "{what}");
                    seen[0] += 1;
                }
                Ok(pv) => {
                    for h in pv.mdas.iter().filter_map(|m| m.header.as_ref()) {
                        assert!(h.start + h.size <= img.len() as u64, "{what}: mda outside");
                    }
                    match &pv.vg {
                        Some(vg) => {
                            assert_eq!(vg, &intact, "{what}: a damaged VG was read");
                            seen[3] += 1;
                        }
                        None => {
                            let quiet = pv.mdas.iter().all(|m| {
                                m.header
                                    .as_ref()
                                    .is_some_and(|h| h.ignored() || h.committed.offset == 0)
                            });
                            assert!(
                                quiet || !pv.problems.is_empty(),
                                "{what}: no VG and no reason given"
                            );
                            seen[4] += 1;
                        }
                    }
                }
            }
        }
        // Every kind of outcome is reached: the damage exercises each refusal and the reads.
        assert!(seen.iter().all(|&n| n > 50), "outcomes {seen:?}");
    }

    #[test]
    fn pvs_with_one_text_share_one_parsed_vg_other_texts_do_not() {
        let text = |name: &str| {
            format!(
                "{name} {{\nid = \"Ab1234-abcd-abcd-abcd-abcd-abcd-abcdef\"\nseqno = 3\n\
                 format = \"lvm2\"\nstatus = [\"READ\", \"WRITE\"]\nflags = []\n\
                 extent_size = 8192\nmax_lv = 0\nmax_pv = 0\nmetadata_copies = 0\n}}\n"
            )
        };
        let (a, b) = (text("vga"), text("vgb"));
        let texts = VgTexts::default();
        let scan = |pvid: &str, t: &str| {
            let img = pv_image(pvid, Some(t.as_bytes()), false);
            scan_pv_with(&MemSource(&img), &texts).unwrap().vg.unwrap()
        };
        let one = scan("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1", &a);
        let two = scan("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA2", &a);
        let other = scan("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA3", &b);
        assert!(Arc::ptr_eq(&one, &two), "one text, one parse");
        assert!(!Arc::ptr_eq(&one, &other));
        assert_eq!((one.name.as_str(), other.name.as_str()), ("vga", "vgb"));
        // Same checksum and length but other bytes (a collision): never the same VG.
        let forged = texts.parse(0x1234, b.clone().into_bytes()).unwrap();
        let again = texts.parse(0x1234, a.clone().into_bytes()).unwrap();
        assert_eq!((forged.name.as_str(), again.name.as_str()), ("vgb", "vga"));
        assert!(Arc::ptr_eq(
            &again,
            &texts.parse(0x1234, a.into_bytes()).unwrap()
        ));
    }
}
