//! What was found, as rows like `pvs`, `vgs` and `lvs --segments` report them, built either from
//! a disk scan or from what lvmetad caches; printed as aligned text or as hand-written JSON.

use super::device::{block_device_path, major_minor, Device};
use super::label::{dashed_uuid, SECTOR_SIZE};
use super::metadata::{vg_from_tree, VolumeGroup};
use super::pv::ScannedPv;
use crate::config::{Node, Tree};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One PV row. Sizes are in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvRow {
    pub name: String,
    /// Dashed PV UUID.
    pub uuid: String,
    pub vg_name: Option<String>,
    /// Size of the device (from the device when scanned, else the label's).
    pub dev_size: u64,
    /// `pv_size`: pe_count * extent size in a VG, else the label's device size.
    pub pv_size: u64,
    pub pe_start: u64,
    pub pe_count: u64,
    pub pe_alloc_count: u64,
    pub mda_count: usize,
    pub ba_start: u64,
    pub ba_size: u64,
    pub allocatable: bool,
}

/// Everything to report.
#[derive(Debug, Default)]
pub struct Inventory {
    pub pvs: Vec<PvRow>,
    pub vgs: Vec<VolumeGroup>,
    /// Dashed PV UUID -> device name, for segment `devices`.
    pub pv_names: BTreeMap<String, String>,
}

fn bare(id: &str) -> String {
    id.chars().filter(|&c| c != '-').collect()
}

impl Inventory {
    /// From a disk scan: the newest copy of each VG (by VG UUID) among all PVs.
    pub fn from_scan(scans: &[(Device, ScannedPv)]) -> Inventory {
        let mut vgs: BTreeMap<String, VolumeGroup> = BTreeMap::new();
        for (_, pv) in scans {
            if let Some(vg) = &pv.vg {
                let keep = super::pv::newer(vgs.get(&vg.id).map(|old| old.seqno), vg.seqno);
                if keep {
                    vgs.insert(vg.id.clone(), (**vg).clone());
                }
            }
        }
        let vgs: Vec<VolumeGroup> = vgs.into_values().collect();
        let rows = scans
            .iter()
            .map(|(dev, pv)| {
                let h = &pv.label.pv;
                let mdas = pv.mdas.iter().filter(|m| m.header.is_some()).count();
                let ba = h.bootloader_areas.first();
                (
                    dev.path.display().to_string(),
                    h.pvid.clone(),
                    pv.size,
                    h.device_size,
                    mdas,
                    h.data_areas.first().map_or(0, |d| d.offset),
                    ba.map_or((0, 0), |b| (b.offset, b.size)),
                )
            })
            .collect::<Vec<_>>();
        let mut inv = Inventory {
            vgs,
            ..Default::default()
        };
        for (name, pvid, dev_size, label_size, mdas, pe_start, ba) in rows {
            inv.push_pv(name, &pvid, dev_size, label_size, mdas, pe_start, ba);
        }
        inv
    }

    #[allow(clippy::too_many_arguments)]
    fn push_pv(
        &mut self,
        name: String,
        pvid: &str,
        dev_size: u64,
        label_size: u64,
        mdas: usize,
        pe_start: u64,
        ba: (u64, u64),
    ) {
        let found = self
            .vgs
            .iter()
            .find_map(|vg| vg.pv_by_id(pvid).map(|p| (vg, p)));
        let uuid = dashed_uuid(&bare(pvid));
        self.pv_names.insert(uuid.clone(), name.clone());
        let row = match found {
            Some((vg, p)) => PvRow {
                name,
                uuid,
                vg_name: Some(vg.name.clone()),
                dev_size,
                pv_size: p.pe_count * vg.extent_size * SECTOR_SIZE,
                pe_start: p.pe_start * SECTOR_SIZE,
                pe_count: p.pe_count,
                pe_alloc_count: vg.allocated_on(&p.key),
                mda_count: mdas,
                ba_start: p.ba_start * SECTOR_SIZE,
                ba_size: p.ba_size * SECTOR_SIZE,
                allocatable: p.status.iter().any(|s| s == "ALLOCATABLE"),
            },
            None => PvRow {
                name,
                uuid,
                vg_name: None,
                dev_size,
                pv_size: label_size,
                pe_start,
                pe_count: 0,
                pe_alloc_count: 0,
                mda_count: mdas,
                ba_start: ba.0,
                ba_size: ba.1,
                allocatable: false,
            },
        };
        self.pvs.push(row);
    }

    /// From lvmetad's `pv_list` reply and the `vg_lookup` metadata of each VG. `names` maps
    /// device numbers to the names to show (else `/dev/NAME` from sysfs, or `MAJ:MIN`).
    pub fn from_lvmetad(
        pv_list: &Tree,
        vgs: Vec<VolumeGroup>,
        names: &BTreeMap<u64, String>,
    ) -> Inventory {
        let mut inv = Inventory {
            vgs,
            ..Default::default()
        };
        let Some(list) = pv_list.find("physical_volumes") else {
            return inv;
        };
        for pv in list.children() {
            let devno = pv.find_int("device").unwrap_or(0) as u64;
            let name = names
                .get(&devno)
                .cloned()
                .unwrap_or_else(|| device_name(devno));
            let id = pv.find_str("id").unwrap_or(&pv.key).to_owned();
            let size = pv.find_int("dev_size").unwrap_or(0) as u64;
            let mdas = pv
                .children()
                .iter()
                .filter(|n| n.key.starts_with("mda") && !n.children().is_empty())
                .count();
            let pe_start = pv.find_int("da0/offset").unwrap_or(0) as u64;
            let ba = (
                pv.find_int("ba0/offset").unwrap_or(0) as u64,
                pv.find_int("ba0/size").unwrap_or(0) as u64,
            );
            inv.push_pv(name, &id, size, size, mdas, pe_start, ba);
        }
        inv.pvs.sort_by(|a, b| a.name.cmp(&b.name));
        inv
    }

    /// `devices` of a segment: `NAME(PE)` for PV areas, `LV(PE)` for LV areas.
    fn devices(&self, vg: &VolumeGroup, areas: &[(String, Option<u64>)]) -> String {
        areas
            .iter()
            .map(|(name, pe)| {
                let shown = vg
                    .pvs
                    .iter()
                    .find(|p| &p.key == name)
                    .map(|p| {
                        self.pv_names
                            .get(&p.id)
                            .cloned()
                            .unwrap_or_else(|| "[unknown]".into())
                    })
                    .unwrap_or_else(|| name.clone());
                format!("{shown}({})", pe.unwrap_or(0))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Text tables like `pvs`, `vgs` and `lvs -a --segments`.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let pv_rows: Vec<Vec<String>> = self
            .pvs
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.vg_name.clone().unwrap_or_default(),
                    "lvm2".into(),
                    format!("{}--", if p.allocatable { 'a' } else { '-' }),
                    human(p.pv_size),
                    human(
                        p.pv_size
                            .saturating_sub(p.pe_alloc_count * extent_bytes(self, p)),
                    ),
                    p.uuid.clone(),
                ]
            })
            .collect();
        table(
            &mut out,
            &["PV", "VG", "Fmt", "Attr", "PSize", "PFree", "PV UUID"],
            &pv_rows,
        );
        let vg_rows: Vec<Vec<String>> = self
            .vgs
            .iter()
            .map(|vg| {
                let ext = vg.extent_size * SECTOR_SIZE;
                vec![
                    vg.name.clone(),
                    vg.pvs.len().to_string(),
                    vg.visible_lvs().count().to_string(),
                    vg.seqno.to_string(),
                    human(vg.extent_count() * ext),
                    human(vg.free_count() * ext),
                    vg.id.clone(),
                ]
            })
            .collect();
        out.push('\n');
        table(
            &mut out,
            &["VG", "#PV", "#LV", "Seq", "VSize", "VFree", "VG UUID"],
            &vg_rows,
        );
        let mut lv_rows = Vec::new();
        for vg in &self.vgs {
            for lv in &vg.lvs {
                let name = if lv.status.iter().any(|s| s == "VISIBLE") {
                    lv.name.clone()
                } else {
                    format!("[{}]", lv.name)
                };
                for seg in &lv.segments {
                    lv_rows.push(vec![
                        name.clone(),
                        vg.name.clone(),
                        seg.report_type(),
                        seg.start_extent.to_string(),
                        seg.extent_count.to_string(),
                        self.devices(vg, &seg.areas),
                    ]);
                }
            }
        }
        out.push('\n');
        table(
            &mut out,
            &["LV", "VG", "Type", "Start", "Extents", "Devices"],
            &lv_rows,
        );
        out
    }

    /// JSON: `{"pvs":[...],"vgs":[...],"lvs":[...]}` with sizes in bytes.
    pub fn to_json(&self) -> String {
        let mut o = String::from("{\n  \"pvs\": [");
        for (i, p) in self.pvs.iter().enumerate() {
            let _ = write!(
                o,
                "{}\n    {{\"pv_name\": {}, \"pv_uuid\": {}, \"vg_name\": {}, \"dev_size\": {}, \"pv_size\": {}, \"pe_start\": {}, \"pv_pe_count\": {}, \"pv_pe_alloc_count\": {}, \"pv_mda_count\": {}, \"pv_ba_start\": {}, \"pv_ba_size\": {}}}",
                if i > 0 { "," } else { "" },
                js(&p.name),
                js(&p.uuid),
                js(p.vg_name.as_deref().unwrap_or("")),
                p.dev_size,
                p.pv_size,
                p.pe_start,
                p.pe_count,
                p.pe_alloc_count,
                p.mda_count,
                p.ba_start,
                p.ba_size
            );
        }
        o.push_str("\n  ],\n  \"vgs\": [");
        for (i, vg) in self.vgs.iter().enumerate() {
            let _ = write!(
                o,
                "{}\n    {{\"vg_name\": {}, \"vg_uuid\": {}, \"vg_seqno\": {}, \"vg_extent_size\": {}, \"vg_extent_count\": {}, \"vg_free_count\": {}, \"pv_count\": {}, \"lv_count\": {}}}",
                if i > 0 { "," } else { "" },
                js(&vg.name),
                js(&vg.id),
                vg.seqno,
                vg.extent_size * SECTOR_SIZE,
                vg.extent_count(),
                vg.free_count(),
                vg.pvs.len(),
                vg.visible_lvs().count()
            );
        }
        o.push_str("\n  ],\n  \"lvs\": [");
        let mut first = true;
        for vg in &self.vgs {
            for lv in &vg.lvs {
                let segs: Vec<String> = lv
                    .segments
                    .iter()
                    .map(|s| {
                        format!(
                            "{{\"seg_start_pe\": {}, \"seg_size_pe\": {}, \"segtype\": {}, \"stripes\": {}, \"stripe_size\": {}, \"devices\": {}}}",
                            s.start_extent,
                            s.extent_count,
                            js(&s.report_type()),
                            s.stripe_count.unwrap_or(s.areas.len() as u64),
                            s.stripe_size.unwrap_or(0) * SECTOR_SIZE,
                            js(&self.devices(vg, &s.areas))
                        )
                    })
                    .collect();
                let _ = write!(
                    o,
                    "{}\n    {{\"vg_name\": {}, \"lv_name\": {}, \"lv_uuid\": {}, \"visible\": {}, \"seg_count\": {}, \"segments\": [{}]}}",
                    if first { "" } else { "," },
                    js(&vg.name),
                    js(&lv.name),
                    js(&lv.id),
                    lv.status.iter().any(|s| s == "VISIBLE"),
                    lv.segments.len(),
                    segs.join(", ")
                );
                first = false;
            }
        }
        o.push_str("\n  ]\n}\n");
        o
    }
}

fn extent_bytes(inv: &Inventory, p: &PvRow) -> u64 {
    inv.vgs
        .iter()
        .find(|vg| Some(&vg.name) == p.vg_name.as_ref())
        .map_or(0, |vg| vg.extent_size * SECTOR_SIZE)
}

/// A VG from lvmetad's `vg_lookup` reply (`name` + `metadata { ... }`).
pub fn vg_from_lookup(reply: &Tree) -> Option<VolumeGroup> {
    let name = reply.find_str("name")?;
    let meta = reply.find("metadata")?;
    let tree = Tree::new().with_node(Node::section(name, meta.children().to_vec()));
    vg_from_tree(&tree).ok()
}

/// `/dev/NAME` for a device number when sysfs knows it, else `MAJ:MIN`.
pub fn device_name(devno: u64) -> String {
    match block_device_path(devno) {
        Some(p) => p.display().to_string(),
        None => {
            let (ma, mi) = major_minor(devno);
            format!("{ma}:{mi}")
        }
    }
}

/// lvm-style human size: `60.00m`, `1.00g`.
pub fn human(bytes: u64) -> String {
    const UNITS: [(u64, char); 5] = [
        (1 << 40, 't'),
        (1 << 30, 'g'),
        (1 << 20, 'm'),
        (1 << 10, 'k'),
        (1, 'b'),
    ];
    let (div, unit) = UNITS
        .iter()
        .copied()
        .find(|(d, _)| bytes >= *d)
        .unwrap_or((1, 'b'));
    if unit == 'b' {
        return format!("{bytes}b");
    }
    format!("{:.2}{unit}", bytes as f64 / div as f64)
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut l = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(l, " {c:<width$}", width = w[i]);
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(out, head.to_vec());
    for r in rows {
        line(out, r.iter().map(String::as_str).collect());
    }
}

/// A JSON string literal.
pub fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(js("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(60 << 20), "60.00m");
        assert_eq!(human(3 << 29), "1.50g");
        assert_eq!(human(12), "12b");
    }
}
