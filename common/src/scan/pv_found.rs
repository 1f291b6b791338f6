//! What a `pv_found` request carries (docs/protocol.md §4.6): the `pvmeta` node of a scanned
//! device, `vgname` and the VG's `metadata` when the PV holds VG metadata, written as lvm2's tree
//! writer does; which device of a PV found on several lvmetad hears of; and the warning
//! lvmetad's answer calls for. I/O-free: [`super::lvmetad`] sends them.
#![forbid(unsafe_code)]

use super::device::Device;
use super::label::dashed_uuid;
use super::pv::ScannedPv;
use crate::config::{write_tree, Node, Tree};
use std::collections::BTreeMap;

/// The `pvmeta { ... }` node for a scanned device (docs/protocol.md §4.6).
pub fn pvmeta_node(dev: &Device, pv: &ScannedPv) -> Node {
    let h = &pv.label.pv;
    let mut c = vec![
        Node::value("device", dev.devno as i64),
        Node::value("dev_size", h.device_size as i64),
        Node::value("format", "lvm2"),
        Node::value("label_sector", pv.label.sector as i64),
        Node::value("id", dashed_uuid(&h.pvid)),
        Node::value("ext_version", i64::from(h.ext_version)),
        Node::value("ext_flags", i64::from(h.ext_flags)),
    ];
    for (i, mda) in pv.mdas.iter().enumerate() {
        // lvm2 creates the node before reading the header and leaves it empty on failure.
        let fields = match &mda.header {
            Some(hd) => vec![
                Node::value("ignore", i64::from(hd.ignored())),
                Node::value("start", mda.locn.offset as i64),
                Node::value("size", mda.locn.size as i64),
                // lvm2 only computes free space for mdas it reads metadata from.
                Node::value(
                    "free_sectors",
                    if hd.ignored() {
                        0
                    } else {
                        hd.free_sectors() as i64
                    },
                ),
            ],
            None => Vec::new(),
        };
        c.push(Node::section(format!("mda{i}"), fields));
    }
    for (prefix, list) in [("da", &h.data_areas), ("ba", &h.bootloader_areas)] {
        for (i, a) in list.iter().enumerate() {
            c.push(Node::section(
                format!("{prefix}{i}"),
                vec![
                    Node::value("offset", a.offset as i64),
                    Node::value("size", a.size as i64),
                ],
            ));
        }
    }
    Node::section("pvmeta", c)
}

/// The whole `pv_found` request text after `envelope`: the envelope, `pvmeta`, and `vgname` +
/// `metadata` when the PV carries VG metadata and `metadata` asks for it (see
/// [`super::vg_once`]), as the tree writer writes them, with the VG's `metadata` node written once per VG
/// ([`VolumeGroup::metadata_text`](super::VolumeGroup::metadata_text)) rather than copied and
/// written for each of its PVs.
pub fn pv_found_text(envelope: &[Node], dev: &Device, pv: &ScannedPv, metadata: bool) -> String {
    let mut nodes = envelope.to_vec();
    nodes.push(pvmeta_node(dev, pv));
    let Some(vg) = pv.vg.as_ref().filter(|_| metadata) else {
        return write_tree(&nodes);
    };
    nodes.push(Node::value("vgname", vg.name.clone()));
    let mut text = write_tree(&nodes);
    text.push_str(vg.metadata_text());
    text
}

/// PVIDs seen on more than one device: pvid -> indices into the scan list.
pub fn find_duplicates(scans: &[(Device, ScannedPv)]) -> BTreeMap<String, Vec<usize>> {
    let mut by_pvid: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (_, pv)) in scans.iter().enumerate() {
        by_pvid.entry(pv.label.pv.pvid.clone()).or_default().push(i);
    }
    by_pvid.retain(|_, v| v.len() > 1);
    by_pvid
}

/// Among duplicate devices of one PVID, the one to tell lvmetad about: the one the VG metadata
/// names as the PV's device, else one whose size matches the PV size, else the first.
pub fn preferred_duplicate(scans: &[(Device, ScannedPv)], idx: &[usize]) -> usize {
    let hinted = idx.iter().copied().find(|&i| {
        let (dev, pv) = &scans[i];
        pv.vg
            .as_ref()
            .and_then(|vg| vg.pv_by_id(&pv.label.pv.pvid))
            .and_then(|p| p.device_hint.as_deref())
            == Some(dev.path.to_string_lossy().as_ref())
    });
    hinted.unwrap_or(idx[0])
}

/// The warning lvm2 prints when lvmetad's answer to `pv_found` shows that the VG's metadata on
/// this PV is not the one lvmetad keeps.
pub fn seqno_warning(pv: &ScannedPv, reply: &Tree) -> Option<String> {
    let vg = pv.vg.as_ref()?;
    let after = reply.find_int("seqno_after").unwrap_or(-1);
    let before = reply.find_int("seqno_before").unwrap_or(-1);
    (after != vg.seqno as i64 || after != before)
        .then(|| format!("WARNING: Inconsistent metadata found for VG {}", vg.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::scan::device::DeviceKind;
    use crate::scan::io::MemSource;
    use crate::scan::pv::{scan_pv, tests::pv_image};
    use std::path::PathBuf;

    /// The request-specific nodes of `pv_found` as a tree: what [`pv_found_text`] must equal
    /// once written.
    fn pv_found_body(dev: &Device, pv: &ScannedPv) -> Vec<Node> {
        let mut body = vec![pvmeta_node(dev, pv)];
        if let Some(vg) = &pv.vg {
            body.push(Node::value("vgname", vg.name.clone()));
            body.push(Node::section("metadata", vg.section.children().to_vec()));
        }
        body
    }

    fn dev(path: &str, devno: u64) -> Device {
        Device {
            path: PathBuf::from(path),
            aliases: vec![path.into()],
            devno,
            kind: DeviceKind::Block,
        }
    }

    #[test]
    fn pv_found_text_is_the_tree_writer_output_of_the_whole_request() {
        let text = crate::scan::metadata::tests::SAMPLE.as_bytes();
        let envelope = Tree::new()
            .with("request", "pv_found")
            .with("token", "filter:0")
            .with("pid", 7)
            .nodes;
        for img in [
            pv_image("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP", Some(text), false),
            pv_image("OOOOOOOOOOOOOOOOOOOOOOOOOOOOOOO1", None, false),
        ] {
            let pv = scan_pv(&MemSource(&img)).unwrap();
            let d = dev("/dev/loop0", 1792);
            let mut whole = envelope.clone();
            whole.extend(pv_found_body(&d, &pv));
            let want = write_tree(&whole);
            assert_eq!(pv_found_text(&envelope, &d, &pv, true), want);
            // Written once: the second PV of the VG gets the same text.
            assert_eq!(pv_found_text(&envelope, &d, &pv, true), want);
        }
    }

    #[test]
    fn pv_found_body_has_the_shape_of_lvm2() {
        let text = crate::scan::metadata::tests::SAMPLE.as_bytes();
        let img = pv_image("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP", Some(text), false);
        let pv = scan_pv(&MemSource(&img)).unwrap();
        let body = pv_found_body(&dev("/dev/loop0", 1792), &pv);
        let keys: Vec<&str> = body.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(keys, ["pvmeta", "vgname", "metadata"]);
        let pvmeta: Vec<&str> = body[0].children().iter().map(|n| n.key.as_str()).collect();
        assert_eq!(
            pvmeta,
            [
                "device",
                "dev_size",
                "format",
                "label_sector",
                "id",
                "ext_version",
                "ext_flags",
                "mda0",
                "da0"
            ]
        );
        assert_eq!(body[0].find_int("device"), Some(1792));
        assert_eq!(
            body[0].find_str("id"),
            Some("fQvILR-uA8c-oAfp-zufG-o2gQ-E2LN-KJgIoP")
        );
        assert_eq!(body[0].find_int("label_sector"), Some(1));
        assert_eq!(body[0].find_int("ext_flags"), Some(1));
        assert_eq!(body[0].find_int("mda0/start"), Some(4096));
        assert_eq!(body[0].find_int("mda0/ignore"), Some(0));
        assert_eq!(body[0].find_int("da0/offset"), Some(1 << 20));
        assert_eq!(
            body[1]
                .get_value()
                .and_then(|v| v.first())
                .and_then(|s| s.as_str()),
            Some("vg0")
        );
        assert_eq!(body[2].find_int("seqno"), Some(3));
        assert_eq!(
            body[2].find_str("id"),
            Some("Ab1234-abcd-abcd-abcd-abcd-abcd-abcdef")
        );
    }

    #[test]
    fn orphan_pv_sends_pvmeta_only() {
        let img = pv_image("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP", None, false);
        let pv = scan_pv(&MemSource(&img)).unwrap();
        assert_eq!(pv_found_body(&dev("/dev/loop0", 1792), &pv).len(), 1);
    }

    #[test]
    fn duplicates_prefer_the_hinted_device() {
        let text = crate::scan::metadata::tests::SAMPLE.as_bytes();
        let img = pv_image("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP", Some(text), false);
        let other = pv_image("zzvILRuA8coAfpzufGo2gQE2LNKJgIoP", None, false);
        let scans = vec![
            (dev("/dev/loop9", 1801), scan_pv(&MemSource(&img)).unwrap()),
            (
                dev("/dev/loop5", 1797),
                scan_pv(&MemSource(&other)).unwrap(),
            ),
            (dev("/dev/loop0", 1792), scan_pv(&MemSource(&img)).unwrap()),
        ];
        let d = find_duplicates(&scans);
        assert_eq!(d.len(), 1);
        let idx = &d["fQvILRuA8coAfpzufGo2gQE2LNKJgIoP"];
        assert_eq!(idx, &vec![0, 2]);
        assert_eq!(
            preferred_duplicate(&scans, idx),
            2,
            "the VG names /dev/loop0 for pv0"
        );
    }
}
