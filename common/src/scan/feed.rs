//! The `pv_found` part of a full repopulation (docs/protocol.md §4.4) spread over several
//! connections of the same updater.
//!
//! lvmetad checks an update's requests by their token and `pid`, never by connection: C lvmetad
//! 2.02.187 (`lvmetad-core.c`, the token check before every request) and ours accept
//! "update in progress" from any connection that carries the pid that began the update. It
//! does not accept two requests written back to back on one connection (C reads them as one),
//! so there is no pipelining on a connection: the speed comes from several connections, each
//! with one request in flight, while lvmetad serialises the cache changes under its own lock.
//!
//! What must keep its order stays on one connection, in scan order: every PV of one VG (by
//! name and by id, so that two VGs of one name or a renamed one are one group), with the PVs
//! without metadata areas that a VG's metadata lists. Unrelated groups go to whichever
//! connection is free next. The token update that begins the update, `pv_clear_all`, the final
//! token and the duplicate handling stay on the caller's connection, before and after.
#![forbid(unsafe_code)]

use super::device::Device;
use super::pv::ScannedPv;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The most connections a repopulation uses by default: lvmetad applies `pv_found` one at a
/// time, so more only adds threads that wait (1000 loop PVs on 2 CPUs: 1 connection 0.26 s,
/// 2 0.21 s, 4 0.18 s, 8 and 16 the same as 4).
pub const MAX_FEEDS: usize = 4;

/// What the `pv_found` requests of one repopulation gave.
#[derive(Debug, Default)]
pub struct Fed {
    pub pv_found: usize,
    /// (scan index, warning), in scan order.
    pub warnings: Vec<(usize, String)>,
}

/// The scan indices in `sent` grouped so that PVs whose order matters to lvmetad share a group
/// (see the module doc); each group and the list of groups are in scan order.
pub fn feed_groups(scans: &[(Device, ScannedPv)], sent: &[usize]) -> Vec<Vec<usize>> {
    let mut sets = DisjointSets::new(sent.len());
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut join = |key: String, at: usize, sets: &mut DisjointSets| match owner.get(&key) {
        Some(&o) => sets.union(o, at),
        None => {
            owner.insert(key, at);
        }
    };
    for (at, &i) in sent.iter().enumerate() {
        let pv = &scans[i].1;
        join(format!("p:{}", pv.label.pv.pvid), at, &mut sets);
        if let Some(vg) = &pv.vg {
            join(format!("n:{}", vg.name), at, &mut sets);
            join(format!("u:{}", vg.id), at, &mut sets);
            for listed in &vg.pvs {
                join(format!("p:{}", listed.id.replace('-', "")), at, &mut sets);
            }
        }
    }
    let mut by_root: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (at, &i) in sent.iter().enumerate() {
        let root = sets.find(at);
        let g = *by_root.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// Sends one PV on a connection; returns the warning lvmetad's answer calls for.
pub type SendOne<S, E> = dyn Fn(&mut S, &Device, &ScannedPv) -> Result<Option<String>, E> + Sync;

/// Send every index of `sent` over up to `conns` connections: `open` makes one (in the thread
/// that uses it), `send` sends one PV on it and returns the warning its answer calls for. The
/// first error stops every connection and is returned. (The lvmetad session and its
/// `pv_found` are `super::lvmetad`'s; this module only spreads the work.)
pub fn feed_parallel<S, E: Send>(
    open: &(dyn Fn() -> Result<S, E> + Sync),
    send: &SendOne<S, E>,
    scans: &[(Device, ScannedPv)],
    sent: &[usize],
    conns: usize,
) -> Result<Fed, E> {
    let groups = feed_groups(scans, sent);
    let conns = conns.clamp(1, groups.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let fed: Mutex<Fed> = Mutex::new(Fed::default());
    std::thread::scope(|s| {
        for _ in 0..conns {
            s.spawn(|| {
                let run = || -> Result<Fed, E> {
                    let mut session = open()?;
                    let mut mine = Fed::default();
                    while !stop.load(Ordering::Relaxed) {
                        let Some(group) = groups.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        for &i in group {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            let (dev, pv) = &scans[i];
                            let warning = send(&mut session, dev, pv)?;
                            mine.pv_found += 1;
                            if let Some(w) = warning {
                                mine.warnings.push((i, w));
                            }
                        }
                    }
                    Ok(mine)
                };
                match run() {
                    Ok(mine) => {
                        let mut all = fed.lock();
                        all.pv_found += mine.pv_found;
                        all.warnings.extend(mine.warnings);
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        first_error.lock().get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner() {
        return Err(e);
    }
    let mut fed = fed.into_inner();
    fed.warnings.sort_by_key(|(i, _)| *i);
    Ok(fed)
}

/// Union-find over `0..n` (path halving, union by size).
struct DisjointSets {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> DisjointSets {
        DisjointSets {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::device::DeviceKind;
    use crate::scan::io::MemSource;
    use crate::scan::pv::{scan_pv, tests::pv_image};
    use std::path::PathBuf;

    fn dev(n: u64) -> Device {
        let path = format!("/dev/loop{n}");
        Device {
            path: PathBuf::from(&path),
            aliases: vec![path],
            devno: 1792 + n,
            kind: DeviceKind::Block,
        }
    }

    /// VG metadata text naming `pvids` as its PVs.
    fn vg_text(name: &str, id: &str, pvids: &[&str]) -> String {
        let mut pvs = String::new();
        for (k, p) in pvids.iter().enumerate() {
            pvs.push_str(&format!(
                "pv{k} {{\nid = \"{p}\"\ndevice = \"/dev/x\"\nstatus = [\"ALLOCATABLE\"]\n\
                 dev_size = 16384\npe_start = 2048\npe_count = 1\n}}\n"
            ));
        }
        format!(
            "{name} {{\nid = \"{id}\"\nseqno = 1\nformat = \"lvm2\"\nstatus = [\"READ\", \"WRITE\"]\n\
             flags = []\nextent_size = 8192\nmax_lv = 0\nmax_pv = 0\nmetadata_copies = 0\n\
             physical_volumes {{\n{pvs}}}\n}}\ncontents = \"Text Format Volume Group\"\nversion = 1\n"
        )
    }

    fn dashed(raw: &str) -> String {
        crate::scan::label::dashed_uuid(raw)
    }

    fn pv(raw_id: &str, vg: Option<&str>) -> ScannedPv {
        let img = pv_image(raw_id, vg.map(str::as_bytes), false);
        scan_pv(&MemSource(&img)).expect("a valid test image")
    }

    #[test]
    fn a_vgs_pvs_and_its_mda_less_pvs_share_a_group_others_do_not() {
        let a = [
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA2",
        ];
        let b = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB1";
        let orphan = "OOOOOOOOOOOOOOOOOOOOOOOOOOOOOOO1";
        let vga = vg_text(
            "vga",
            "Ab1234-abcd-abcd-abcd-abcd-abcd-abcdef",
            &[&dashed(a[0]), &dashed(a[1])],
        );
        let vgb = vg_text(
            "vgb",
            "Bb1234-abcd-abcd-abcd-abcd-abcd-abcdef",
            &[&dashed(b)],
        );
        let scans = vec![
            (dev(0), pv(a[0], Some(&vga))),
            (dev(1), pv(b, Some(&vgb))),
            (dev(2), pv(orphan, None)),
            // A PV of vga without a metadata area: only vga's metadata says where it belongs.
            (dev(3), pv(a[1], None)),
        ];
        let groups = feed_groups(&scans, &[0, 1, 2, 3]);
        assert_eq!(groups, vec![vec![0, 3], vec![1], vec![2]]);
        // Skipped indices (duplicates) are not sent at all.
        assert_eq!(feed_groups(&scans, &[1, 3]), vec![vec![1], vec![3]]);
    }

    #[test]
    fn two_vgs_of_one_name_are_one_group() {
        let x = "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX1";
        let y = "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY1";
        let v1 = vg_text(
            "same",
            "Ab1234-abcd-abcd-abcd-abcd-abcd-abcdef",
            &[&dashed(x)],
        );
        let v2 = vg_text(
            "same",
            "Cb1234-abcd-abcd-abcd-abcd-abcd-abcdef",
            &[&dashed(y)],
        );
        let scans = vec![(dev(0), pv(x, Some(&v1))), (dev(1), pv(y, Some(&v2)))];
        assert_eq!(feed_groups(&scans, &[0, 1]), vec![vec![0, 1]]);
    }
}
