//! VG requests that change the cache: `vg_update`, `vg_remove`, `vg_clear_outdated_pvs` and
//! `set_vg_info` (docs/protocol.md §3.8, §3.9, §3.11).
//!
//! Where C 2.02.187 calls `exit(EXIT_FAILURE)` (vg_update without id, name or seqno, or an update
//! `_update_metadata` refuses), we reply `failed` with a reason and leave the cache untouched.

use crate::cache::{Cache, Update, VGFL_INVALID};
use common::daemon::{Request, Response};
use common::log_error;

fn int32(r: &Request, path: &str) -> Option<i64> {
    r.int(path).map(|v| i64::from(v as i32))
}

fn refuse(reason: &str) -> Response {
    log_error!("vg_update failed: {reason}; cache left unchanged");
    Response::error("failed", reason)
}

/// `vg_update`.
pub fn vg_update(cache: &mut Cache, r: &Request) -> Response {
    let Some(metadata) = r.tree.as_ref().and_then(|t| t.find("metadata")) else {
        return Response::simple("OK", vec![]);
    };
    let Some(vgid) = r.str("metadata/id") else {
        return refuse("vg_update: need VG UUID");
    };
    let Some(name) = r.str("vgname") else {
        return refuse("vg_update: need VG name");
    };
    if int32(r, "metadata/seqno").unwrap_or(-1) < 0 {
        return refuse("vg_update: need VG seqno");
    }
    match cache.update_metadata(name, vgid, metadata, None).0 {
        Update::Stored | Update::Unchanged => {}
        Update::Ignored(why) | Update::Refused(why) => {
            return refuse(&format!("vg_update: failed metadata update: {why}"));
        }
    }
    // vg_info_update: a stored seqno at or above the external version clears VGFL_INVALID.
    if let Some(seqno) = metadata.find_int("seqno") {
        if let Some(info) = cache.info.get_mut(vgid) {
            if seqno >= info.external_version {
                info.flags &= !VGFL_INVALID;
            }
        }
    }
    Response::simple("OK", vec![])
}

/// `vg_remove`.
pub fn vg_remove(cache: &mut Cache, r: &Request) -> Response {
    let Some(vgid) = r.str("uuid") else {
        return Response::error("failed", "need VG UUID");
    };
    cache.remove_metadata(vgid, true);
    Response::simple("OK", vec![])
}

/// `vg_clear_outdated_pvs`.
pub fn vg_clear_outdated_pvs(cache: &mut Cache, r: &Request) -> Response {
    let Some(vgid) = r.str("vgid") else {
        return Response::error("failed", "need VG UUID");
    };
    cache.clear_outdated(vgid);
    Response::simple("OK", vec![])
}

/// `set_vg_info`: mark the cached VG invalid when another host wrote a newer seqno (or
/// unconditionally for version 0, which vgremove sends).
pub fn set_vg_info(cache: &mut Cache, r: &Request) -> Response {
    let ok = Response::simple("OK", vec![]);
    let version = int32(r, "version").unwrap_or(-1);
    if version == -1 {
        return ok;
    }
    let by_uuid = r
        .str("uuid")
        .filter(|u| cache.vgs.contains_key(*u))
        .map(str::to_owned);
    let vgid = match by_uuid {
        Some(v) => v,
        None => {
            let Some(name) = r.str("name") else {
                return ok;
            };
            match cache.vgid_for_name(name).0 {
                Some(v) if cache.vgs.contains_key(v) => v.to_owned(),
                _ => return ok,
            }
        }
    };
    if version != 0 {
        let cached = cache
            .vgs
            .get(&vgid)
            .and_then(|vg| vg.metadata.find_int("seqno"));
        if cached.is_some_and(|c| c >= version) {
            return ok;
        }
    }
    let info = cache.info.entry(vgid).or_default();
    info.external_version = version;
    info.flags |= VGFL_INVALID;
    ok
}
