//! VG metadata text (docs/protocol.md §5.8) decoded into volume group, physical volume, logical
//! volume and segment records, with the original VG section kept for lvmetad.

use crate::config::{parse, write_tree, Body, DupMode, Node, ParseError, Scalar, Tree, Value};
use std::fmt;
use std::sync::OnceLock;

/// A VG as its metadata text describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeGroup {
    pub name: String,
    /// Dashed VG UUID as written in the text.
    pub id: String,
    pub seqno: u64,
    pub status: Vec<String>,
    pub flags: Vec<String>,
    /// Extent size in 512-byte sectors.
    pub extent_size: u64,
    pub max_lv: u64,
    pub max_pv: u64,
    pub metadata_copies: u64,
    pub system_id: Option<String>,
    pub pvs: Vec<VgPv>,
    pub lvs: Vec<LogicalVolume>,
    /// The VG section as parsed (root key = VG name), for lvmetad's `metadata` node.
    pub section: Node,
    /// That node written out, once (see [`VolumeGroup::metadata_text`]).
    written: Written,
}

/// One `physical_volumes/pvN` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct VgPv {
    /// `pv0`, `pv1`, ... (what segments refer to).
    pub key: String,
    /// Dashed PV UUID.
    pub id: String,
    /// The device hint written at the last commit.
    pub device_hint: Option<String>,
    pub status: Vec<String>,
    /// Sizes in sectors.
    pub dev_size: u64,
    pub pe_start: u64,
    pub pe_count: u64,
    pub ba_start: u64,
    pub ba_size: u64,
}

/// One `logical_volumes/<name>` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LogicalVolume {
    pub name: String,
    pub id: String,
    pub status: Vec<String>,
    pub segments: Vec<Segment>,
}

/// One `segmentN`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start_extent: u64,
    pub extent_count: u64,
    pub seg_type: String,
    pub stripe_count: Option<u64>,
    /// Stripe size in sectors.
    pub stripe_size: Option<u64>,
    /// Areas from `stripes`, `mirrors` or `raids`: a PV key (`pv0`) or an LV name, and the
    /// first extent where the list gives one.
    pub areas: Vec<(String, Option<u64>)>,
    /// Which list the areas came from (`stripes`, `mirrors`, `raids`), if any.
    pub area_kind: Option<String>,
}

impl Segment {
    /// The type as `lvs` reports it: a one-stripe `striped` segment is `linear`.
    pub fn report_type(&self) -> String {
        if self.seg_type == "striped" && self.stripe_count == Some(1) {
            "linear".into()
        } else {
            self.seg_type.clone()
        }
    }
}

/// Text derived from the rest of a value and kept once written: not part of the value's
/// identity (any two compare equal) and not shown by `Debug`.
#[derive(Clone, Default)]
struct Written(OnceLock<String>);

impl PartialEq for Written {
    fn eq(&self, _: &Written) -> bool {
        true
    }
}

impl fmt::Debug for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

impl VolumeGroup {
    /// The `metadata { ... }` node that `pv_found` carries for this VG, in the tree writer,
    /// written on first use and shared by every PV of a scan that carries this VG.
    pub fn metadata_text(&self) -> &str {
        self.written.0.get_or_init(|| {
            write_tree(&[Node::section("metadata", self.section.children().to_vec())])
        })
    }

    /// Extents of all PVs.
    pub fn extent_count(&self) -> u64 {
        self.pvs.iter().map(|p| p.pe_count).sum()
    }

    /// Extents allocated on the PV with key `pv_key`.
    pub fn allocated_on(&self, pv_key: &str) -> u64 {
        let mut n = 0;
        for seg in self.lvs.iter().flat_map(|lv| &lv.segments) {
            let per_area = match seg.area_kind.as_deref() {
                Some("stripes") => seg.extent_count / (seg.areas.len().max(1) as u64),
                Some("mirrors") => seg.extent_count,
                _ => continue,
            };
            n += seg.areas.iter().filter(|(name, _)| name == pv_key).count() as u64 * per_area;
        }
        n
    }

    /// Extents not allocated to any LV.
    pub fn free_count(&self) -> u64 {
        let used: u64 = self.pvs.iter().map(|p| self.allocated_on(&p.key)).sum();
        self.extent_count().saturating_sub(used)
    }

    /// The VG entry for a PV UUID (dashed or not).
    pub fn pv_by_id(&self, pvid: &str) -> Option<&VgPv> {
        let bare: String = pvid.chars().filter(|&c| c != '-').collect();
        self.pvs
            .iter()
            .find(|p| p.id.chars().filter(|&c| c != '-').eq(bare.chars()))
    }

    /// Whether an LV is visible (shown by plain `lvs`).
    pub fn visible_lvs(&self) -> impl Iterator<Item = &LogicalVolume> {
        self.lvs
            .iter()
            .filter(|lv| lv.status.iter().any(|s| s == "VISIBLE"))
    }
}

/// Why metadata text could not be decoded.
#[derive(Debug)]
pub enum MetadataError {
    Parse(ParseError),
    /// No top-level section holds a VG.
    NoVgSection,
    /// A required field is missing or has the wrong type.
    Missing(String),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::Parse(e) => write!(f, "metadata text: {e}"),
            MetadataError::NoVgSection => write!(f, "metadata text has no VG section"),
            MetadataError::Missing(p) => write!(f, "metadata lacks a valid {p}"),
        }
    }
}

impl std::error::Error for MetadataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MetadataError::Parse(e) => Some(e),
            _ => None,
        }
    }
}

/// Parse raw metadata text (which may end with NUL) into a [`VolumeGroup`].
pub fn parse_vg_text(text: &[u8]) -> Result<VolumeGroup, MetadataError> {
    let tree = parse(text, DupMode::KeepAll).map_err(MetadataError::Parse)?;
    vg_from_tree(&tree)
}

/// The VG is the first top-level section (the rest are `contents`, `version`, ... values).
pub fn vg_from_tree(tree: &Tree) -> Result<VolumeGroup, MetadataError> {
    let section = tree
        .nodes
        .iter()
        .find(|n| n.is_section())
        .ok_or(MetadataError::NoVgSection)?;
    let name = section.key.clone();
    let missing = |what: &str| MetadataError::Missing(format!("{name}/{what}"));
    let id = section
        .find_str("id")
        .ok_or_else(|| missing("id"))?
        .to_owned();
    let seqno = uint(section, "seqno").ok_or_else(|| missing("seqno"))?;
    let extent_size = uint(section, "extent_size").ok_or_else(|| missing("extent_size"))?;
    let mut pvs = Vec::new();
    if let Some(list) = section.find("physical_volumes") {
        for pv in list.children().iter().filter(|n| n.is_section()) {
            let miss = |what: &str| MetadataError::Missing(format!("{name}/{}/{what}", pv.key));
            pvs.push(VgPv {
                key: pv.key.clone(),
                id: pv.find_str("id").ok_or_else(|| miss("id"))?.to_owned(),
                device_hint: pv.find_str("device").map(str::to_owned),
                status: strings(pv, "status"),
                dev_size: uint(pv, "dev_size").unwrap_or(0),
                pe_start: uint(pv, "pe_start").ok_or_else(|| miss("pe_start"))?,
                pe_count: uint(pv, "pe_count").ok_or_else(|| miss("pe_count"))?,
                ba_start: uint(pv, "ba_start").unwrap_or(0),
                ba_size: uint(pv, "ba_size").unwrap_or(0),
            });
        }
    }
    let mut lvs = Vec::new();
    if let Some(list) = section.find("logical_volumes") {
        for lv in list.children().iter().filter(|n| n.is_section()) {
            lvs.push(lv_from_node(&name, lv)?);
        }
    }
    Ok(VolumeGroup {
        id,
        seqno,
        status: strings(section, "status"),
        flags: strings(section, "flags"),
        extent_size,
        max_lv: uint(section, "max_lv").unwrap_or(0),
        max_pv: uint(section, "max_pv").unwrap_or(0),
        metadata_copies: uint(section, "metadata_copies").unwrap_or(0),
        system_id: section.find_str("system_id").map(str::to_owned),
        pvs,
        lvs,
        section: section.clone(),
        written: Written::default(),
        name,
    })
}

fn lv_from_node(vg: &str, lv: &Node) -> Result<LogicalVolume, MetadataError> {
    let miss = |what: &str| MetadataError::Missing(format!("{vg}/{}/{what}", lv.key));
    let mut segments = Vec::new();
    for seg in lv
        .children()
        .iter()
        .filter(|n| n.is_section() && n.key.starts_with("segment"))
    {
        let smiss =
            |what: &str| MetadataError::Missing(format!("{vg}/{}/{}/{what}", lv.key, seg.key));
        let (area_kind, areas) = ["stripes", "mirrors", "raids"]
            .iter()
            .find_map(|k| {
                seg.find(k)
                    .and_then(Node::get_value)
                    .map(|v| (Some(k.to_string()), areas(v)))
            })
            .unwrap_or((None, Vec::new()));
        segments.push(Segment {
            start_extent: uint(seg, "start_extent").ok_or_else(|| smiss("start_extent"))?,
            extent_count: uint(seg, "extent_count").ok_or_else(|| smiss("extent_count"))?,
            seg_type: seg
                .find_str("type")
                .ok_or_else(|| smiss("type"))?
                .to_owned(),
            stripe_count: uint(seg, "stripe_count"),
            stripe_size: uint(seg, "stripe_size"),
            areas,
            area_kind,
        });
    }
    segments.sort_by_key(|s| s.start_extent);
    Ok(LogicalVolume {
        name: lv.key.clone(),
        id: lv.find_str("id").ok_or_else(|| miss("id"))?.to_owned(),
        status: strings(lv, "status"),
        segments,
    })
}

/// `["pv0", 0, "pv1", 0]` or `["lv_rmeta_0", "lv_rimage_0"]`.
fn areas(v: &Value) -> Vec<(String, Option<u64>)> {
    let mut out: Vec<(String, Option<u64>)> = Vec::new();
    for item in v.items() {
        match item {
            Scalar::Str(s) => out.push((s.clone(), None)),
            Scalar::Int(i) => {
                if let Some(last) = out.last_mut().filter(|l| l.1.is_none()) {
                    last.1 = u64::try_from(*i).ok();
                }
            }
            Scalar::Float(_) => {}
        }
    }
    out
}

fn uint(n: &Node, path: &str) -> Option<u64> {
    n.find_int(path).and_then(|i| u64::try_from(i).ok())
}

fn strings(n: &Node, path: &str) -> Vec<String> {
    match n.find(path).map(|n| &n.body) {
        Some(Body::Value(v)) => v
            .items()
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = "vg0 {\nid = \"Ab1234-abcd-abcd-abcd-abcd-abcd-abcdef\"\nseqno = 3\nformat = \"lvm2\"\nstatus = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\nflags = []\nextent_size = 8192\nmax_lv = 0\nmax_pv = 0\nmetadata_copies = 0\n\nphysical_volumes {\n\npv0 {\nid = \"fQvILR-uA8c-oAfp-zufG-o2gQ-E2LN-KJgIoP\"\ndevice = \"/dev/loop0\"\n\nstatus = [\"ALLOCATABLE\"]\nflags = []\ndev_size = 131072\npe_start = 2048\npe_count = 15\n}\n\npv1 {\nid = \"gQvILR-uA8c-oAfp-zufG-o2gQ-E2LN-KJgIoP\"\ndevice = \"/dev/loop1\"\n\nstatus = [\"ALLOCATABLE\"]\nflags = []\ndev_size = 131072\npe_start = 2048\npe_count = 15\n}\n}\n\nlogical_volumes {\n\nlv1 {\nid = \"xxxxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxxxx\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\nsegment_count = 2\n\nsegment1 {\nstart_extent = 0\nextent_count = 4\n\ntype = \"striped\"\nstripe_count = 2\nstripe_size = 128\n\nstripes = [\n\"pv0\", 0,\n\"pv1\", 0\n]\n}\nsegment2 {\nstart_extent = 4\nextent_count = 3\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv1\", 2\n]\n}\n}\n}\n\n}\n# Generated by LVM2\n\ncontents = \"Text Format Volume Group\"\nversion = 1\n\0";

    #[test]
    fn sample_vg_decodes() {
        let vg = parse_vg_text(SAMPLE.as_bytes()).unwrap();
        assert_eq!(vg.name, "vg0");
        assert_eq!(vg.seqno, 3);
        assert_eq!(vg.extent_size, 8192);
        assert_eq!(vg.pvs.len(), 2);
        assert_eq!(vg.pvs[1].device_hint.as_deref(), Some("/dev/loop1"));
        assert_eq!(vg.lvs[0].segments.len(), 2);
        assert_eq!(
            vg.lvs[0].segments[0].areas,
            vec![("pv0".into(), Some(0)), ("pv1".into(), Some(0))]
        );
        assert_eq!(vg.extent_count(), 30);
        assert_eq!(vg.allocated_on("pv0"), 2);
        assert_eq!(vg.allocated_on("pv1"), 5);
        assert_eq!(vg.free_count(), 23);
        assert!(vg.pv_by_id("fQvILRuA8coAfpzufGo2gQE2LNKJgIoP").is_some());
    }

    #[test]
    fn missing_seqno_is_an_error() {
        let t = SAMPLE.replace("seqno = 3\n", "");
        assert!(matches!(
            parse_vg_text(t.as_bytes()),
            Err(MetadataError::Missing(_))
        ));
    }

    #[test]
    fn text_without_section_is_an_error() {
        assert!(parse_vg_text(b"version = 1\n").is_err());
    }
}
