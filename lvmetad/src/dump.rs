//! `dump`: the whole cache as text, in C's layout (docs/protocol.md §3.12).
//!
//! Runs under the cache read lock and only reads: each tree is written under its new root key
//! from a copy of the root node's header, never by renaming the cached tree as C 2.02.187 does
//! (which corrupts the cache when dumps run concurrently).

use crate::cache::Cache;
use common::config::{write_tree, Node};
use std::fmt::Write;

/// Write `children` as a section called `key` (the tree writer's layout at top level).
fn section(out: &mut String, key: &str, children: &[Node]) {
    // Build a shallow node on the fly: the children are cloned once per dump, the cache's own
    // nodes are never touched.
    out.push_str(&write_tree(&[Node::section(key, children.to_vec())]));
}

fn pairs<'a>(out: &mut String, name: &str, items: impl Iterator<Item = (String, &'a str)>) {
    out.push_str(name);
    out.push_str(" {\n");
    for (k, v) in items {
        let _ = writeln!(out, "    {k} = \"{v}\"");
    }
    out.push_str("}\n");
}

/// The dump text (sent raw, without the tree writer's extra newlines).
pub fn dump(cache: &Cache) -> String {
    let mut out = String::from("# VG METADATA\n\n");
    for vg in cache.vgs.values() {
        let key = vg.metadata.find_str("id").unwrap_or("unknown");
        section(&mut out, key, vg.metadata.children());
    }
    out.push_str("\n# PV METADATA\n\n");
    // A PV is stored under its `pvmeta/id`, which is the key C writes. The stored text is
    // `pvmeta {...}`: splice in the id when it needs no quoting, else rebuild the tree.
    for (pvid, pvmeta) in &cache.pvmeta {
        let plain = !pvid.contains(['#', '"', '!']) && !pvid.is_empty();
        match pvmeta.text().strip_prefix("pvmeta {\n") {
            Some(rest) if plain => {
                out.push_str(pvid);
                out.push_str(" {\n");
                out.push_str(rest);
            }
            _ => section(&mut out, pvid, pvmeta.node().children()),
        }
    }
    out.push_str("\n# VGID to VGNAME mapping\n\n");
    pairs(
        &mut out,
        "vgid_to_vgname",
        cache
            .vgid_to_vgname
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str())),
    );
    out.push_str("\n# VGID to outdated PVs mapping\n\n");
    for (vgid, list) in &cache.outdated {
        // C keeps an empty-array sentinel at the end of the list, so even one PVID is written
        // in brackets.
        let quoted: Vec<String> = list.iter().map(|p| format!("\"{p}\"")).collect();
        let _ = write!(
            out,
            "{vgid} {{\n\tpv_list=[{}]\n\tvgid=\"{vgid}\"\n}}\n",
            quoted.join(",")
        );
    }
    out.push_str("\n# VGNAME to VGID mapping\n\n");
    pairs(
        &mut out,
        "vgname_to_vgid",
        cache
            .vgname_to_vgid
            .iter()
            .flat_map(|(name, ids)| ids.iter().map(move |id| (name.clone(), id.as_str()))),
    );
    out.push_str("\n# PVID to VGID mapping\n\n");
    pairs(
        &mut out,
        "pvid_to_vgid",
        cache
            .pvid_to_vgid
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str())),
    );
    out.push_str("\n# DEVICE to PVID mapping\n\n");
    // C prints the first 4 bytes of the 8-byte key as an int.
    pairs(
        &mut out,
        "device_to_pvid",
        cache
            .device_to_pvid
            .iter()
            .map(|(d, p)| ((*d as u32 as i32).to_string(), p.as_str())),
    );
    out.push_str("\n# VGID to INFO version mapping\n\n");
    out.push_str("vgid_to_info {\n");
    for (vgid, info) in &cache.info {
        let _ = writeln!(out, "    {vgid} = {}", info.external_version);
    }
    out.push_str("}\n");
    out.push_str("\n# VGID to INFO flags mapping\n\n");
    out.push_str("vgid_to_info {\n");
    for (vgid, info) in &cache.info {
        let _ = writeln!(out, "    {vgid} = {:x}", info.flags);
    }
    out.push_str("}\n");
    out
}
