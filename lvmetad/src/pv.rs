//! PV requests that change the cache: `pv_found` (with the daemon-side duplicate detection that
//! disables lvmetad, docs/protocol.md §3.7), `pv_gone` and `pv_clear_all` (§3.9).

use crate::cache::{Cache, Update, ORPHAN};
use crate::compare::differs;
use crate::global::{Flags, GLFL_DISABLE, REASON_DUPLICATES};
use common::config::SimpleField;
use common::daemon::{Request, Response};
use common::log_error;

fn int32(r: &Request, path: &str) -> Option<i64> {
    r.int(path).map(|v| i64::from(v as i32))
}

fn warn(msg: String) {
    log_error!("{msg}");
}

/// `pv_found`.
pub fn pv_found(cache: &mut Cache, flags: &Flags, r: &Request) -> Response {
    let Some(tree) = r.tree.as_ref() else {
        return Response::error("failed", "Ignore PV without PV metadata");
    };
    let Some(arg_pvmeta) = tree.find("pvmeta") else {
        return Response::error("failed", "Ignore PV without PV metadata");
    };
    let Some(pvid) = r.str("pvmeta/id") else {
        return Response::error("failed", "Ignore PV without PV UUID");
    };
    let Some(device) = arg_pvmeta.find_int("device").map(|d| d as u64) else {
        return Response::error("failed", "Ignore PV without device");
    };
    let arg_vgmeta = tree.find("metadata");
    let mut arg_name = None;
    let mut arg_vgid = None;
    let mut arg_seqno = -1;
    if arg_vgmeta.is_some() {
        arg_name = r.str("vgname");
        arg_vgid = r.str("metadata/id");
        arg_seqno = int32(r, "metadata/seqno").unwrap_or(-1);
        if arg_name.is_none() {
            return Response::error("failed", "Ignore VG metadata from PV without VG name");
        }
        if arg_vgid.is_none() {
            return Response::error("failed", "Ignore VG metadata from PV without VG vgid");
        }
        if arg_seqno < 0 {
            return Response::error("failed", "Ignore VG metadata from PV without VG seqno");
        }
    }

    let new_pvmeta = arg_pvmeta;
    let old_pvmeta = cache.pvmeta.get(pvid);
    let dev_old = old_pvmeta.map_or(0, |m| m.device);
    let pvid_on_dev = cache.device_to_pvid.get(&device).cloned();
    let mut changed;
    let mut prev_on_dev: Option<(String, Option<String>)> = None;

    match pvid_on_dev.as_deref() {
        Some(p) if p == pvid && dev_old != 0 && dev_old == device => {
            changed = old_pvmeta.is_some_and(|old| differs(&old.node(), new_pvmeta));
            cache.set_pvmeta(pvid, new_pvmeta);
        }
        None if dev_old == 0 => {
            changed = true;
            cache.device_to_pvid.insert(device, pvid.to_owned());
            cache.set_pvmeta(pvid, new_pvmeta);
        }
        Some(prev) if prev != pvid => {
            changed = true;
            let prev = prev.to_owned();
            let prev_vgid = cache.pvid_to_vgid.get(&prev).cloned();
            if cache.remove_pvmeta(&prev).is_some() {
                cache.device_to_pvid.remove(&device);
                if cache.pvmeta.contains_key(pvid) {
                    warn(format!(
                        "pv_found: PV {pvid} on device {device} is a duplicate"
                    ));
                    flags.set(GLFL_DISABLE | REASON_DUPLICATES);
                    return Response::error("failed", "Ignore duplicate PV");
                }
            }
            cache.device_to_pvid.insert(device, pvid.to_owned());
            cache.set_pvmeta(pvid, new_pvmeta);
            prev_on_dev = Some((prev, prev_vgid));
        }
        _ if dev_old != 0 && dev_old != device => {
            warn(format!(
                "pv_found: PV {pvid} on device {device} is a duplicate of device {dev_old}"
            ));
            flags.set(GLFL_DISABLE | REASON_DUPLICATES);
            return Response::error("failed", "Ignore duplicate PV");
        }
        _ => return Response::error("failed", "Ignore PV for unknown state"),
    }

    let mut seqno_before = -1;
    let (vgid, name): (Option<String>, Option<String>) = match (arg_vgmeta, arg_name, arg_vgid) {
        (Some(meta), Some(name), Some(vgid)) => {
            let (outcome, before) = cache.update_metadata(name, vgid, meta, Some(pvid));
            if let Update::Ignored(why) | Update::Refused(why) = outcome {
                warn(format!(
                    "Cannot use VG metadata for {name} {vgid} from PV {pvid} on {device}: {why}"
                ));
            }
            seqno_before = before;
            changed |= before != arg_seqno;
            (Some(vgid.to_owned()), Some(name.to_owned()))
        }
        _ => {
            let vgid = cache.pvid_to_vgid.get(pvid).cloned();
            let name = vgid
                .as_ref()
                .and_then(|v| cache.vgid_to_vgname.get(v).cloned());
            (vgid, name)
        }
    };

    let mut status: Option<&str> = None;
    let mut seqno_after = -1;
    match vgid.as_deref() {
        None | Some(ORPHAN) => status = Some("orphan"),
        Some(v) => match cache.vgs.get(v) {
            Some(vg) => {
                status = Some(if cache.vg_complete(&vg.metadata) {
                    "complete"
                } else {
                    "partial"
                });
                seqno_after = vg.seqno();
            }
            None => warn(format!(
                "pv_found {pvid} on {device} vgid {v}: no VG metadata"
            )),
        },
    }

    if let Some((prev_pvid, Some(prev_vgid))) = prev_on_dev {
        if vgid.as_deref() != Some(prev_vgid.as_str()) {
            cache.remove_vg_if_missing(&prev_vgid, true);
        }
        cache.pvid_to_vgid.remove(&prev_pvid);
    }

    Response::simple(
        "OK",
        vec![
            // C passes a NULL string to printf when the VG has no cached metadata.
            (
                "status",
                SimpleField::Str(status.unwrap_or("(null)").into()),
            ),
            ("changed", SimpleField::Int(i64::from(changed))),
            (
                "vgid",
                SimpleField::Str(vgid.unwrap_or_else(|| ORPHAN.into())),
            ),
            (
                "vgname",
                SimpleField::Str(name.unwrap_or_else(|| ORPHAN.into())),
            ),
            ("seqno_before", SimpleField::Int(seqno_before)),
            ("seqno_after", SimpleField::Int(seqno_after)),
        ],
    )
}

/// `pv_gone`: by `uuid`, else by `device`.
pub fn pv_gone(cache: &mut Cache, r: &Request) -> Response {
    let arg_pvid = r.str("uuid");
    let device = int32(r, "device").unwrap_or(0);
    let by_dev = match arg_pvid {
        None if device > 0 => cache.device_to_pvid.get(&(device as u64)).cloned(),
        _ => None,
    };
    let pvid = match (arg_pvid, by_dev) {
        (Some(p), _) => p.to_owned(),
        (None, Some(p)) => p,
        (None, None) => return Response::error("unknown", "device not in cache"),
    };
    if !cache.pvmeta.contains_key(&pvid) {
        return Response::error("unknown", "PVID does not exist");
    }
    let vgid = cache.pvid_to_vgid.get(&pvid).cloned();
    // As C: with only a uuid the device is 0 and the real device mapping stays.
    cache.device_to_pvid.remove(&(device as u64));
    cache.remove_pvmeta(&pvid);
    if let Some(vgid) = vgid {
        cache.remove_vg_if_missing(&vgid, true);
    }
    Response::simple("OK", vec![])
}

/// `pv_clear_all`: empty every table (token and flags stay).
pub fn pv_clear_all(cache: &mut Cache) -> Response {
    cache.clear_all();
    Response::simple("OK", vec![])
}
