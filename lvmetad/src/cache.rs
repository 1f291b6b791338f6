//! The metadata cache: lvmetad's eight tables and the primitives that keep them consistent
//! (`remove_metadata`, `vg_remove_if_missing`, the pvid→vgid re-mapping, outdated PVs) plus
//! `_update_metadata` (docs/protocol.md §3.8).
//!
//! Everything here runs with `&mut Cache`, i.e. under the cache write lock (see the lock order in
//! the crate doc). Readers only ever see a consistent cache. Each VG carries a memo of its
//! serialized `vg_lookup` text; every mutation that can change that text clears the memo of the
//! VGs concerned (through `pv_refs`, which maps a PVID to the VGs whose lookup reply shows it).

use crate::compare::{differs_filtered, find_int32, pv_ids};
use common::config::{parse, write_tree, Body, DupMode, Node};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The vgid every PV outside a VG maps to.
pub const ORPHAN: &str = "#orphan";
/// `vg_info.flags`: the cached VG is older than what another host wrote.
pub const VGFL_INVALID: u32 = 0x1;

/// A cached VG: its metadata section (key `metadata`, device hints filtered out) and the memo of
/// its serialized `vg_lookup` section.
#[derive(Debug)]
pub struct VgEntry {
    pub metadata: Node,
    pub(crate) memo: Mutex<Option<Arc<str>>>,
    /// Changes whenever the cached metadata is replaced (unique over the daemon's life), so a
    /// disk verification knows which copy it checked.
    pub gen: u64,
}

impl VgEntry {
    fn new(metadata: Node, gen: u64) -> VgEntry {
        VgEntry {
            metadata,
            memo: Mutex::new(None),
            gen,
        }
    }
    /// The cached seqno (C reads it as a 32-bit int; -1 when missing).
    pub fn seqno(&self) -> i64 {
        find_int32(&self.metadata, "seqno").unwrap_or(-1)
    }
}

/// A stored `pvmeta` section, kept as its tree-writer text: about a fifth of the memory of the
/// parsed tree, and a PV's pvmeta is only needed as a tree when a reply text is (re)built or a
/// new pv_found is compared with it. The fields the cache logic needs are kept decoded.
#[derive(Debug, Clone)]
pub struct PvMeta {
    text: Box<str>,
    /// `device` (0 when absent), as C's `dm_config_get_uint64`.
    pub device: u64,
    /// Whether `mda0/ignore` or `mda1/ignore` is 0 (an mda in use: the PV can be outdated).
    pub mda_in_use: bool,
    /// `(start, size)` in bytes of the first mda in use (`ignore = 0`), if any.
    pub mda_locn: Option<(u64, u64)>,
}

impl PvMeta {
    pub fn new(node: &Node) -> PvMeta {
        let in_use = |n: &str| node.find_int(n).unwrap_or(1) == 0;
        PvMeta {
            text: write_tree(std::slice::from_ref(node)).into_boxed_str(),
            device: node.find_int("device").map_or(0, |d| d as u64),
            mda_in_use: in_use("mda0/ignore") || in_use("mda1/ignore"),
            mda_locn: ["mda0", "mda1"].iter().find_map(|m| {
                let field = |f: &str| node.find_int(&format!("{m}/{f}"));
                match (field("ignore"), field("start"), field("size")) {
                    (Some(0), Some(start), Some(size)) if start > 0 && size >= 0 => {
                        Some((start as u64, size as u64))
                    }
                    _ => None,
                }
            }),
        }
    }
    /// The section as a tree (key `pvmeta`).
    pub fn node(&self) -> Node {
        parse(self.text.as_bytes(), DupMode::KeepAll)
            .ok()
            .and_then(|t| t.nodes.into_iter().next())
            .unwrap_or_else(|| Node::section("pvmeta", vec![]))
    }
    /// The tree-writer text (`pvmeta {` ... `}`).
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// `struct vg_info`: set by `set_vg_info`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VgInfo {
    pub external_version: i64,
    pub flags: u32,
}

/// Memos of the whole-cache list replies; cleared by every write request.
#[derive(Debug, Default)]
pub struct ListMemos {
    pub pv_list: Mutex<Option<Arc<str>>>,
    pub vg_list: Mutex<Option<Arc<str>>>,
}

/// How `_update_pvid_to_vgid` treats the PVs it re-maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remap {
    /// Just re-map.
    Only,
    /// Also drop VGs left without any present PV.
    RemoveEmpty,
    /// Also record each PV as outdated for the target VG.
    MarkOutdated,
}

/// What `_update_metadata` did with the metadata it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// New metadata is now cached.
    Stored,
    /// Same seqno and same content: nothing to do.
    Unchanged,
    /// Not used (bad seqno, foreign id, outdated or inconsistent copy from one PV).
    Ignored(&'static str),
    /// vg_update inconsistent with the cache: C aborts the daemon here; we refuse the update.
    Refused(&'static str),
}

impl Update {
    pub fn ok(&self) -> bool {
        matches!(self, Update::Stored | Update::Unchanged)
    }
}

/// The cache tables (C's `lvmetad_state` hashes).
#[derive(Debug, Default)]
pub struct Cache {
    pub(crate) pvmeta: BTreeMap<String, PvMeta>,
    pub(crate) device_to_pvid: BTreeMap<u64, String>,
    pub(crate) pvid_to_vgid: BTreeMap<String, String>,
    pub(crate) vgs: BTreeMap<String, VgEntry>,
    pub(crate) vgid_to_vgname: BTreeMap<String, String>,
    /// Multi-valued: two VGs may share a name. Values in insertion order.
    pub(crate) vgname_to_vgid: BTreeMap<String, Vec<String>>,
    /// vgid → outdated PVIDs, newest first (C prepends).
    pub(crate) outdated: BTreeMap<String, Vec<String>>,
    pub(crate) info: BTreeMap<String, VgInfo>,
    /// pvid → vgids whose vg_lookup text shows this PV (metadata or outdated list); one entry
    /// per reference.
    pv_refs: HashMap<String, Vec<String>>,
    pub(crate) lists: ListMemos,
    /// Source of [`VgEntry::gen`].
    next_gen: u64,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// `pv_clear_all`: every table emptied; generations keep counting, so a VG cached again
    /// never reuses the generation of the copy it replaces.
    pub fn clear_all(&mut self) {
        let next_gen = self.next_gen;
        *self = Cache::new();
        self.next_gen = next_gen;
    }

    // ----- memo bookkeeping -------------------------------------------------------------

    fn add_ref(&mut self, pvid: &str, vgid: &str) {
        self.pv_refs
            .entry(pvid.to_owned())
            .or_default()
            .push(vgid.to_owned());
    }

    fn drop_ref(&mut self, pvid: &str, vgid: &str) {
        if remove_value(self.pv_refs.get_mut(pvid), vgid) {
            self.pv_refs.remove(pvid);
        }
    }

    /// Clear the lookup memo of every VG that shows `pvid`.
    fn touch_pv(&mut self, pvid: &str) {
        if let Some(vgids) = self.pv_refs.get(pvid) {
            for vgid in vgids {
                if let Some(vg) = self.vgs.get_mut(vgid) {
                    *vg.memo.get_mut() = None;
                }
            }
        }
    }

    fn touch_vg(&mut self, vgid: &str) {
        if let Some(vg) = self.vgs.get_mut(vgid) {
            *vg.memo.get_mut() = None;
        }
    }

    /// Forget the list memos (called after every write request).
    pub fn touch_lists(&mut self) {
        *self.lists.pv_list.get_mut() = None;
        *self.lists.vg_list.get_mut() = None;
    }

    // ----- table primitives with memo upkeep ---------------------------------------------

    pub(crate) fn set_pvmeta(&mut self, pvid: &str, pvmeta: &Node) {
        self.pvmeta.insert(pvid.to_owned(), PvMeta::new(pvmeta));
        self.touch_pv(pvid);
    }

    pub(crate) fn remove_pvmeta(&mut self, pvid: &str) -> Option<PvMeta> {
        let old = self.pvmeta.remove(pvid);
        if old.is_some() {
            self.touch_pv(pvid);
        }
        old
    }

    fn set_vg(&mut self, vgid: &str, metadata: Node) {
        self.take_vg(vgid);
        let ids: Vec<String> = pv_ids(&metadata).map(str::to_owned).collect();
        for id in &ids {
            self.add_ref(id, vgid);
        }
        self.next_gen += 1;
        self.vgs
            .insert(vgid.to_owned(), VgEntry::new(metadata, self.next_gen));
    }

    fn take_vg(&mut self, vgid: &str) -> Option<Node> {
        let vg = self.vgs.remove(vgid)?;
        let ids: Vec<String> = pv_ids(&vg.metadata).map(str::to_owned).collect();
        for id in &ids {
            self.drop_ref(id, vgid);
        }
        Some(vg.metadata)
    }

    pub(crate) fn clear_outdated(&mut self, vgid: &str) {
        if let Some(list) = self.outdated.remove(vgid) {
            for pvid in &list {
                self.drop_ref(pvid, vgid);
            }
            self.touch_vg(vgid);
        }
    }

    fn add_name(&mut self, name: &str, vgid: &str) {
        self.vgname_to_vgid
            .entry(name.to_owned())
            .or_default()
            .push(vgid.to_owned());
    }

    fn remove_name(&mut self, name: &str, vgid: &str) {
        if remove_value(self.vgname_to_vgid.get_mut(name), vgid) {
            self.vgname_to_vgid.remove(name);
        }
    }

    /// `dm_hash_lookup_with_val(vgname_to_vgid, name, vgid)`.
    pub(crate) fn name_has_vgid(&self, name: &str, vgid: &str) -> bool {
        self.vgname_to_vgid
            .get(name)
            .is_some_and(|v| v.iter().any(|x| x == vgid))
    }

    /// `dm_hash_lookup_with_count`: the first vgid of a name and how many there are.
    pub(crate) fn vgid_for_name(&self, name: &str) -> (Option<&str>, usize) {
        match self.vgname_to_vgid.get(name) {
            Some(v) => (v.first().map(String::as_str), v.len()),
            None => (None, 0),
        }
    }

    /// Whether every PV listed in the VG has pvmeta (`_vg_is_complete`).
    pub(crate) fn vg_complete(&self, metadata: &Node) -> bool {
        pv_ids(metadata).all(|id| self.pvmeta.contains_key(id))
    }

    // ----- lvm2's cache primitives ---------------------------------------------------------

    /// `mark_outdated_pv`: only PVs with an mda in use (`mdaN/ignore = 0`) are recorded.
    pub(crate) fn mark_outdated(&mut self, vgid: &str, pvid: &str) {
        if !self.pvmeta.get(pvid).is_some_and(|m| m.mda_in_use) {
            return;
        }
        let list = self.outdated.entry(vgid.to_owned()).or_default();
        if list.iter().any(|p| p == pvid) {
            return;
        }
        list.insert(0, pvid.to_owned());
        self.add_ref(pvid, vgid);
        self.touch_vg(vgid);
    }

    /// `_update_pvid_to_vgid`: map every PV listed in `pvids` to `vgid`.
    pub(crate) fn remap_pvs(&mut self, pvids: &[String], vgid: &str, mode: Remap) {
        let mut to_check: Vec<String> = Vec::new();
        for pvid in pvids {
            if mode == Remap::RemoveEmpty {
                if let Some(old) = self.pvid_to_vgid.get(pvid) {
                    if !to_check.contains(old) {
                        to_check.push(old.clone());
                    }
                }
            }
            if mode == Remap::MarkOutdated {
                self.mark_outdated(vgid, pvid);
            }
            self.pvid_to_vgid.insert(pvid.clone(), vgid.to_owned());
        }
        for old in to_check {
            self.remove_vg_if_missing(&old, false);
        }
    }

    /// `remove_metadata`: forget a VG entirely; with `orphan_pvs`, its PVs become orphans.
    pub(crate) fn remove_metadata(&mut self, vgid: &str, orphan_pvs: bool) {
        self.info.remove(vgid);
        let meta = self.take_vg(vgid);
        if let Some(name) = self.vgid_to_vgname.remove(vgid) {
            self.remove_name(&name, vgid);
        }
        self.clear_outdated(vgid);
        if let (true, Some(meta)) = (orphan_pvs, meta) {
            let ids: Vec<String> = pv_ids(&meta).map(str::to_owned).collect();
            self.remap_pvs(&ids, ORPHAN, Remap::Only);
        }
    }

    /// `vg_remove_if_missing`: drop the VG when none of its PVs is present and mapped to it.
    pub(crate) fn remove_vg_if_missing(&mut self, vgid: &str, orphan_pvs: bool) {
        let Some(vg) = self.vgs.get(vgid) else {
            return;
        };
        let present = pv_ids(&vg.metadata).any(|pvid| {
            self.pvid_to_vgid.get(pvid).is_some_and(|v| v == vgid) && self.pvmeta.contains_key(pvid)
        });
        if !present {
            self.remove_metadata(vgid, orphan_pvs);
        }
    }

    fn purge(&mut self, name: &str, vgid: &str) {
        self.remove_metadata(vgid, true);
        self.remove_name(name, vgid);
    }

    fn store(&mut self, name: &str, vgid: &str, meta: Node) {
        let ids: Vec<String> = pv_ids(&meta).map(str::to_owned).collect();
        self.set_vg(vgid, meta);
        self.vgid_to_vgname.insert(vgid.to_owned(), name.to_owned());
        self.add_name(name, vgid);
        self.remap_pvs(&ids, vgid, Remap::RemoveEmpty);
    }

    /// `_update_metadata`. `pvid` is set for pv_found (metadata read from that one PV) and `None`
    /// for vg_update. Returns the outcome and the seqno reported as `seqno_before` (the old
    /// seqno, or the new one when nothing was cached).
    pub fn update_metadata(
        &mut self,
        name: &str,
        vgid: &str,
        new_metadata: &Node,
        pvid: Option<&str>,
    ) -> (Update, i64) {
        let name_lookup = self.vgid_to_vgname.get(vgid).cloned();
        let vgid_lookup = self.name_has_vgid(name, vgid);
        let mut needs_repair = false;
        let mut rename_from: Option<String> = None;
        let mut is_new = false;
        let mut have_old = false;
        match (&name_lookup, vgid_lookup) {
            (None, false) => is_new = true,
            (Some(old), found) if old != name => {
                if found {
                    needs_repair = true;
                } else {
                    rename_from = Some(old.clone());
                    have_old = self.vgs.contains_key(vgid);
                    needs_repair = !have_old;
                }
            }
            (Some(_), true) => {
                have_old = self.vgs.contains_key(vgid);
                needs_repair = !have_old;
            }
            _ => needs_repair = true,
        }

        // The filtered copy (device hints dropped) is built only to be stored; the checks read
        // fields the filter leaves alone, and the comparison sees through it.
        let meta = new_metadata;
        let new_seq = find_int32(meta, "seqno").unwrap_or(-1);
        let mut old_seq = if have_old {
            self.vgs.get(vgid).map_or(-1, VgEntry::seqno)
        } else {
            -1
        };
        let reported = if have_old { old_seq } else { new_seq };

        if new_seq <= 0 {
            return (Update::Ignored("invalid seqno"), reported);
        }
        match meta.find_str("id") {
            None => return (Update::Ignored("metadata has no id"), reported),
            Some(id) if id != vgid => return (Update::Ignored("metadata id differs"), reported),
            _ => {}
        }
        if needs_repair {
            return match pvid {
                Some(_) => (
                    Update::Ignored("metadata inconsistent with cache"),
                    reported,
                ),
                None => (
                    Update::Refused("metadata inconsistent with cache"),
                    reported,
                ),
            };
        }
        if let Some(pvid) = pvid {
            if old_seq > 0 && new_seq < old_seq {
                self.mark_outdated(vgid, pvid);
                return (Update::Ignored("outdated metadata on PV"), reported);
            }
            if old_seq > 0 && new_seq > old_seq {
                let ids: Vec<String> = self
                    .vgs
                    .get(vgid)
                    .map(|vg| pv_ids(&vg.metadata).map(str::to_owned).collect())
                    .unwrap_or_default();
                self.remap_pvs(&ids, vgid, Remap::MarkOutdated);
            }
        }
        if have_old && old_seq <= 0 {
            self.purge(name, vgid);
            (is_new, rename_from, have_old, old_seq) = (true, None, false, -1);
        }
        if have_old && new_seq == old_seq {
            let old_differs = self
                .vgs
                .get(vgid)
                .is_some_and(|vg| differs_filtered(meta, &vg.metadata));
            if old_differs {
                if pvid.is_some() {
                    return (
                        Update::Ignored("same seqno with different content"),
                        reported,
                    );
                }
                self.purge(name, vgid);
                (is_new, rename_from, have_old, old_seq) = (true, None, false, -1);
            }
        }
        if pvid.is_none() && have_old && new_seq < old_seq {
            self.purge(name, vgid);
            (is_new, rename_from, old_seq) = (true, None, -1);
        }

        if is_new {
            self.store(name, vgid, filter_metadata(meta));
            return (Update::Stored, reported);
        }
        if let Some(old_name) = rename_from {
            let old_ids: Vec<String> = self
                .vgs
                .get(vgid)
                .map(|vg| pv_ids(&vg.metadata).map(str::to_owned).collect())
                .unwrap_or_default();
            self.remap_pvs(&old_ids, ORPHAN, Remap::Only);
            self.info.remove(vgid);
            self.clear_outdated(vgid);
            self.take_vg(vgid);
            self.vgid_to_vgname.remove(vgid);
            self.remove_name(&old_name, vgid);
            self.store(name, vgid, filter_metadata(meta));
            return (Update::Stored, reported);
        }
        if old_seq == new_seq {
            return (Update::Unchanged, reported);
        }
        let old_ids: Vec<String> = self
            .vgs
            .get(vgid)
            .map(|vg| pv_ids(&vg.metadata).map(str::to_owned).collect())
            .unwrap_or_default();
        self.remap_pvs(&old_ids, ORPHAN, Remap::Only);
        let new_ids: Vec<String> = pv_ids(meta).map(str::to_owned).collect();
        self.set_vg(vgid, filter_metadata(meta));
        self.remap_pvs(&new_ids, vgid, Remap::RemoveEmpty);
        (Update::Stored, reported)
    }
}

/// `filter_metadata`: a copy of the metadata section keyed `metadata`, with the advisory
/// `device` hints removed from each PV (except a PV's first child, as C's loop skips it).
pub fn filter_metadata(metadata: &Node) -> Node {
    let mut meta = metadata.clone();
    meta.key = "metadata".to_owned();
    if let Some(pvs) = meta.find_mut("physical_volumes") {
        if let Body::Section(list) = &mut pvs.body {
            for pv in list.iter_mut() {
                if let Body::Section(items) = &mut pv.body {
                    // C unlinks a matching sibling and then steps onto the node that took
                    // its place without checking it, so of two adjacent hints one survives.
                    let mut i = 1;
                    while i < items.len() {
                        if items[i].key == "device" {
                            items.remove(i);
                        }
                        i += 1;
                    }
                }
            }
        }
    }
    meta
}

/// Remove the first `value` from a multi-valued map entry, keeping the others in order; true when
/// the entry is now empty and should go.
fn remove_value(list: Option<&mut Vec<String>>, value: &str) -> bool {
    let Some(list) = list else { return false };
    if let Some(i) = list.iter().position(|x| x == value) {
        list.remove(i);
    }
    list.is_empty()
}
