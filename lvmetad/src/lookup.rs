//! Read-only requests: `vg_lookup`, `pv_lookup`, `pv_list`, `vg_list` (docs/protocol.md §3.5,
//! §3.6).
//!
//! These run under the cache read lock, so lookups never wait for each other. The text of each
//! VG's `metadata` section (with pvmeta merged in, MISSING flags and outdated PVs) is built once
//! after each change and kept in the VG's memo (its own small lock, so different VGs never
//! contend); `pv_list` and `vg_list` texts are memoized the same way for the whole cache. Only the
//! envelope and the `global_invalid {}` / `vg_invalid {}` markers are added per request.

use crate::cache::{Cache, VgEntry, ORPHAN, VGFL_INVALID};
use common::config::{write_tree, Body, Node, Scalar, Value};
use common::daemon::{Request, Response};
use parking_lot::Mutex;
use std::sync::Arc;

/// `set_flag`: add (`want`) or remove `flag` in the string list `field` of `pv`.
fn set_flag(pv: &mut Node, field: &str, flag: &str, want: bool) {
    let Some(children) = pv.children_mut() else {
        return;
    };
    let idx = children.iter().position(|n| n.key == field);
    let has = |v: &Value| v.items().iter().any(|s| s.as_str() == Some(flag));
    match idx {
        None if want => {
            let v = Value::Array(vec![Scalar::Str(flag.to_owned())]);
            children.insert(0, Node::value(field, v));
        }
        None => {}
        Some(i) => {
            let node = &mut children[i];
            let Body::Value(v) = &mut node.body else {
                return;
            };
            let found = has(v);
            if want && !found {
                let mut items = v.items().to_vec();
                items.insert(0, Scalar::Str(flag.to_owned()));
                *v = Value::Array(items);
            } else if !want && found {
                let mut items = v.items().to_vec();
                if let Some(p) = items.iter().position(|s| s.as_str() == Some(flag)) {
                    items.remove(p);
                }
                *v = match items.len() {
                    1 if matches!(v, Value::Scalar(_)) => Value::Scalar(items.remove(0)),
                    _ => Value::Array(items),
                };
            }
        }
    }
}

/// `merge_pvmeta`: pvmeta's children (minus `id`/`dev_size`, with C's loop quirk: the first
/// child always stays, and after a dropped node the next one is kept unchecked) go in front of
/// the PV's own children.
fn merge_pvmeta(pv: &mut Node, pvmeta: &Node) {
    let src = pvmeta.children();
    let mut merged: Vec<Node> = Vec::with_capacity(src.len() + pv.children().len());
    if let Some(first) = src.first() {
        merged.push(first.clone());
    }
    let mut j = 1;
    while j < src.len() {
        if src[j].key == "id" || src[j].key == "dev_size" {
            j += 1;
            if j >= src.len() {
                break;
            }
        }
        merged.push(src[j].clone());
        j += 1;
    }
    if let Some(children) = pv.children_mut() {
        merged.append(children);
        *children = merged;
    }
}

/// The `metadata` section as vg_lookup returns it.
fn lookup_section(cache: &Cache, vgid: &str, vg: &VgEntry) -> Node {
    let mut meta = vg.metadata.clone();
    if let Some(pvs) = meta
        .find_mut("physical_volumes")
        .and_then(Node::children_mut)
    {
        for pv in pvs.iter_mut() {
            let Some(id) = pv.find_str("id").map(str::to_owned) else {
                continue;
            };
            let pvmeta = cache.pvmeta.get(&id);
            set_flag(pv, "status", "MISSING", pvmeta.is_none());
            if let Some(pm) = pvmeta {
                merge_pvmeta(pv, &pm.node());
            }
        }
    }
    if let Some(list) = cache.outdated.get(vgid) {
        let entries = list
            .iter()
            .rev()
            .filter_map(|pvid| {
                let pm = cache.pvmeta.get(pvid)?.node();
                let mut n = pm.clone();
                n.key = pm.find_str("id").unwrap_or(pvid).to_owned();
                Some(n)
            })
            .collect();
        if let Some(children) = meta.children_mut() {
            children.insert(0, Node::section("outdated_pvs", entries));
        }
    }
    meta
}

fn memo(slot: &Mutex<Option<Arc<str>>>, build: impl FnOnce() -> String) -> Arc<str> {
    let mut g = slot.lock();
    if let Some(text) = g.as_ref() {
        return text.clone();
    }
    let text: Arc<str> = Arc::from(build());
    *g = Some(text.clone());
    text
}

/// Finish a tree reply: `head`, the memoized `body` (shared, not copied), the markers, then the
/// server's two newlines; the server writes the pieces with one `writev`.
fn finish(head: String, body: Arc<str>, global_invalid: bool, vg_invalid: bool) -> Response {
    let mut tail = String::new();
    if global_invalid {
        tail.push_str(&write_tree(&[Node::section("global_invalid", vec![])]));
    }
    if vg_invalid {
        tail.push_str(&write_tree(&[Node::section("vg_invalid", vec![])]));
    }
    tail.push_str("\n\n");
    Response::Parts(vec![Arc::from(head), body, Arc::from(tail)])
}

/// The VG a `vg_lookup` names, as `(vgid, name)`, or the error reply.
pub fn resolve_vg<'a>(cache: &'a Cache, r: &'a Request) -> Result<(&'a str, &'a str), Response> {
    let uuid = r.str("uuid");
    let name = r.str("name");
    match (uuid, name) {
        (None, None) => Err(Response::error("unknown", "VG not found")),
        (None, Some(n)) => match cache.vgid_for_name(n) {
            (Some(_), count) if count > 1 => Err(Response::error(
                "multiple",
                "Multiple VGs found with same name",
            )),
            (Some(u), _) => Ok((u, n)),
            (None, _) => Err(Response::error("unknown", "VG not found")),
        },
        (Some(u), None) => match cache.vgid_to_vgname.get(u) {
            Some(n) => Ok((u, n.as_str())),
            None => Err(Response::error("unknown", "VG not found")),
        },
        (Some(u), Some(n)) => match cache.vgid_to_vgname.get(u) {
            Some(found) if cache.name_has_vgid(n, u) => {
                if found != n {
                    return Err(Response::error("unknown", "VG mapping inconsistent"));
                }
                Ok((u, n))
            }
            _ => Err(Response::error("unknown", "VG mapping incomplete")),
        },
    }
}

/// `vg_lookup` by `uuid` and/or `name`.
pub fn vg_lookup(cache: &Cache, global_invalid: bool, r: &Request) -> Response {
    vg_lookup_marked(cache, global_invalid, false, r)
}

/// `vg_lookup`, with `vg_invalid {}` also added when `vg_invalid` is set (the disk
/// verification found the cached copy stale).
pub fn vg_lookup_marked(
    cache: &Cache,
    global_invalid: bool,
    vg_invalid: bool,
    r: &Request,
) -> Response {
    let (uuid, name) = match resolve_vg(cache, r) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let Some(vg) = cache.vgs.get(uuid) else {
        return Response::error("unknown", "UUID not found");
    };
    let section = memo(&vg.memo, || {
        write_tree(std::slice::from_ref(&lookup_section(cache, uuid, vg)))
    });
    let head = write_tree(&[Node::value("response", "OK"), Node::value("name", name)]);
    let vg_invalid = vg_invalid
        || cache
            .info
            .get(uuid)
            .is_some_and(|i| i.flags & VGFL_INVALID != 0);
    finish(head, section, global_invalid, vg_invalid)
}

/// `make_pv_node`: the stored pvmeta keyed `key`, plus `vgid` (not for orphans) and `vgname`.
fn pv_node(cache: &Cache, pvid: &str, key: &str) -> Option<Node> {
    let mut pv = cache.pvmeta.get(pvid)?.node();
    pv.key = key.to_owned();
    let vgid = cache.pvid_to_vgid.get(pvid);
    let vgname = vgid.and_then(|v| cache.vgid_to_vgname.get(v));
    if let Some(children) = pv.children_mut() {
        if let Some(v) = vgid.filter(|v| v.as_str() != ORPHAN) {
            children.push(Node::value("vgid", v.as_str()));
        }
        if let Some(n) = vgname {
            children.push(Node::value("vgname", n.as_str()));
        }
    }
    Some(pv)
}

/// The PVID a `pv_lookup` names, or the error reply.
pub fn resolve_pv<'a>(cache: &'a Cache, r: &'a Request) -> Result<&'a str, Response> {
    let uuid = r.str("uuid");
    let device = r.int("device").map_or(0, |d| i64::from(d as i32));
    if uuid.is_none() && device == 0 {
        return Err(Response::error("failed", "need PVID or device"));
    }
    match uuid {
        Some(u) => Ok(u),
        None => match cache.device_to_pvid.get(&(device as u64)) {
            Some(p) => Ok(p.as_str()),
            None => Err(Response::error("unknown", "device not found")),
        },
    }
}

/// `pv_lookup` by `uuid` or `device`.
pub fn pv_lookup(cache: &Cache, global_invalid: bool, r: &Request) -> Response {
    let pvid = match resolve_pv(cache, r) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let Some(pv) = pv_node(cache, pvid, "physical_volume") else {
        return Response::error("unknown", "PV not found");
    };
    let text = write_tree(&[Node::value("response", "OK"), pv]);
    finish(text, Arc::from(""), global_invalid, false)
}

/// `pv_list`.
pub fn pv_list(cache: &Cache, global_invalid: bool) -> Response {
    let text = memo(&cache.lists.pv_list, || {
        let pvs = cache
            .pvmeta
            .keys()
            .filter_map(|id| pv_node(cache, id, id))
            .collect();
        write_tree(&[
            Node::value("response", "OK"),
            Node::section("physical_volumes", pvs),
        ])
    });
    finish(String::new(), text, global_invalid, false)
}

/// `vg_list`.
pub fn vg_list(cache: &Cache, global_invalid: bool) -> Response {
    let text = memo(&cache.lists.vg_list, || {
        let vgs = cache
            .vgid_to_vgname
            .iter()
            .map(|(id, name)| Node::section(id.as_str(), vec![Node::value("name", name.as_str())]))
            .collect();
        write_tree(&[
            Node::value("response", "OK"),
            Node::section("volume_groups", vgs),
        ])
    });
    finish(String::new(), text, global_invalid, false)
}
