//! Disk verification: lvmetad checks what it is about to serve against the disks, so that no
//! reply presents metadata as valid once the disks say otherwise (lvmetad/README.md, "Disk
//! verification", states the guarantee and its limits).
//!
//! - **Binding** ([`bind`]). A PV is verified only on the device where the daemon itself saw its
//!   label: a `pv_found` that reports it at a device not yet bound to it queues a label read at
//!   the device number it was given, done by an idle-priority binder thread or by the first
//!   check of that PV, whichever comes first. Fake device numbers (protocol tests), image files
//!   and devices holding another PV stay *unverifiable*; `dump` says which and why.
//! - **vg_lookup** reads one block (label + mda header) of the first bound PV of the VG with an
//!   mda in use: lvm commits every in-use mda of a VG, so that header moves with every write. A
//!   header equal to the one confirmed for the cached copy proves freshness; otherwise the
//!   committed text is read, parsed and compared with the cached copy (and confirmed when equal).
//! - **pv_lookup** checks that PV; **pv_list / vg_list** share *passes* over every bound PV: a
//!   pass that started after a request arrived proves freshness for it, so concurrent and
//!   back-to-back list requests wait on one pass instead of reading each.
//! - Findings: [`Finding`]; what a reply adds: [`Marks`].
//!
//! # Locking
//! `state` (per-VG results), the bindings' map and `pass` are leaf mutexes: `state` may be taken while
//! the cache read lock is held (cache → state), never the other way round; `pass` is never held
//! with any other lock. **No lock is held across disk I/O**: the cache is read into a
//! [`Target`] snapshot, the lock released, the disk read, and the cache locked again only to
//! compare.

pub mod bind;
pub mod disk;

use crate::cache::{filter_metadata, Cache, ORPHAN};
use crate::compare::pv_ids;
use bind::{Bindings, Bound};
use common::config::{write_tree, Body, Node};
use common::daemon::Request;
use common::scan::label::DiskLocn;
use common::scan::mda::{MdaHeader, RawLocn};
use common::scan::metadata::VolumeGroup;
use disk::{inspect_twice, OpenError, Seen};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Threads reading devices in a list pass.
const PASS_THREADS: usize = 8;

/// The heading of the section `dump` ends with when verification is on (not in C's dump).
pub const DUMP_HEADING: &str = "\n# VERIFICATION (not in lvmetad 2.02.187)\n\n";

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The disk holds what the cache holds.
    Fresh,
    /// Not checked: no PV of it was seen at its device (or it has no mda in use).
    Unverifiable(String),
    /// The VG's metadata on disk differs from the cached copy (lvcreate, vgcfgrestore ...).
    Stale(String),
    /// The device could not be read (EIO, truncated, unreadable mda header).
    Unreadable(String),
    /// Something beyond one VG's metadata changed: label wiped or replaced, device gone, VG
    /// renamed, removed or created, PVs added to or removed from a VG.
    Structural(String),
}

impl Finding {
    /// The word shown in `dump`.
    pub fn word(&self) -> &'static str {
        match self {
            Finding::Fresh => "fresh",
            Finding::Unverifiable(_) => "unverifiable",
            Finding::Stale(_) => "stale",
            Finding::Unreadable(_) => "unreadable",
            Finding::Structural(_) => "structural",
        }
    }
    fn detail(&self) -> &str {
        match self {
            Finding::Fresh => "",
            Finding::Unverifiable(s)
            | Finding::Stale(s)
            | Finding::Unreadable(s)
            | Finding::Structural(s) => s,
        }
    }
    fn rank(&self) -> u8 {
        match self {
            Finding::Fresh => 0,
            Finding::Unverifiable(_) => 1,
            Finding::Stale(_) => 2,
            Finding::Unreadable(_) => 3,
            Finding::Structural(_) => 4,
        }
    }
}

/// Markers a reply gets from a verification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// `vg_invalid {}` (vg_lookup): the client re-reads the VG from disk.
    pub vg_invalid: bool,
    /// `global_invalid {}`; the daemon also drops its token so the next command rescans.
    pub global_invalid: bool,
}

/// One cached PV as the check needs it (copied out of the cache before any I/O).
#[derive(Debug, Clone)]
struct Target {
    pvid: String,
    devno: u64,
    /// The first mda in use, from pvmeta.
    mda: Option<DiskLocn>,
    /// `(vgid, generation)` of the cached VG it belongs to; `None` for orphans.
    vg: Option<(String, u64)>,
}

fn target(cache: &Cache, pvid: &str) -> Option<Target> {
    let pm = cache.pvmeta.get(pvid)?;
    let vg = cache
        .pvid_to_vgid
        .get(pvid)
        .filter(|v| v.as_str() != ORPHAN)
        .and_then(|v| cache.vgs.get(v).map(|e| (v.clone(), e.gen)));
    Some(Target {
        pvid: pvid.to_owned(),
        devno: pm.device,
        mda: pm.mda_locn.map(|(offset, size)| DiskLocn { offset, size }),
        vg,
    })
}

/// The last result for one VG.
#[derive(Debug, Clone)]
struct VgRecord {
    /// Generation of the cached copy `confirmed` belongs to.
    gen: u64,
    /// pvid -> (mda start, committed raw_locn) proven to hold that cached copy.
    confirmed: HashMap<String, (u64, RawLocn)>,
    last: Option<(SystemTime, Finding)>,
}

#[derive(Debug, Default)]
struct State {
    vgs: HashMap<String, VgRecord>,
}

#[derive(Debug, Default)]
struct PassState {
    started: u64,
    finished: u64,
    running: bool,
    marks: Marks,
}

/// Counts since start, shown in `dump`.
#[derive(Debug, Default)]
struct Counters {
    checks: AtomicU64,
    passes: AtomicU64,
    stale: AtomicU64,
    unreadable: AtomicU64,
    structural: AtomicU64,
    unverifiable: AtomicU64,
    token_drops: AtomicU64,
}

/// The verification state of the daemon.
#[derive(Debug, Default)]
pub struct Verifier {
    bindings: Bindings,
    state: Mutex<State>,
    pass: Mutex<PassState>,
    pass_done: Condvar,
    n: Counters,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Verifier {
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// `pv_found` reported a PV at a device: note it, to be bound off the request path
    /// ([`bind`]).
    pub fn bind(&self, r: &Request) {
        if let (Some(pvid), Some(devno)) = (r.str("pvmeta/id"), r.int("pvmeta/device")) {
            self.bindings.reported(pvid, devno as u64);
        }
    }

    fn bound(&self, t: &Target) -> Result<(), String> {
        self.bindings.at(&t.pvid, t.devno)
    }

    /// The header-and-locn the cached copy of the target's VG was proven to have on this PV.
    fn confirmed(&self, t: &Target) -> Option<(u64, RawLocn)> {
        let (vgid, gen) = t.vg.as_ref()?;
        let st = self.state.lock();
        let rec = st.vgs.get(vgid).filter(|r| r.gen == *gen)?;
        rec.confirmed.get(&t.pvid).copied()
    }

    /// Check one PV (and, if it belongs to a VG, that VG's metadata on it).
    fn check_target(&self, cache: &RwLock<Cache>, t: &Target) -> Finding {
        bump(&self.n.checks);
        if let Err(why) = self.bound(t) {
            return Finding::Unverifiable(format!("PV {}: {why}", t.pvid));
        }
        let confirmed = self.confirmed(t);
        let member = t.vg.is_some();
        let read = self.bindings.devices.with_device(t.devno, |src, buf| {
            let want_text = |h: &MdaHeader| {
                member
                    && h.committed.offset != 0
                    && !h.ignored()
                    && confirmed != Some((h.start, h.committed))
            };
            inspect_twice(src, &t.pvid, t.mda, want_text, buf)
        });
        let (seen, reads) = match read {
            Ok(r) => r,
            Err(OpenError::NoDevice(e)) => {
                return Finding::Structural(format!("PV {}: {e}", t.pvid))
            }
            Err(OpenError::Open(e)) => return Finding::Unreadable(format!("PV {}: {e}", t.pvid)),
        };
        self.bindings
            .devices
            .reads
            .fetch_add(reads, Ordering::Relaxed);
        let pv = &t.pvid;
        let (header, text) = match seen {
            Seen::Unreadable(e) => return Finding::Unreadable(format!("PV {pv}: {e}")),
            Seen::NoLabel(e) => return Finding::Structural(format!("PV {pv}: label gone: {e}")),
            Seen::OtherPv(p) => {
                return Finding::Structural(format!("PV {pv}: its device now holds PV {p}"))
            }
            Seen::MdaGone(at) => {
                return Finding::Structural(format!("PV {pv}: no metadata area at {at} any more"))
            }
            Seen::Pv { header: None, .. } => return Finding::Fresh,
            Seen::Pv {
                header: Some(Err(e)),
                ..
            } => return Finding::Unreadable(format!("PV {pv}: {e}")),
            Seen::Pv {
                header: Some(Ok(h)),
                text,
            } => (h, text),
        };
        let Some((vgid, _)) = &t.vg else {
            if header.committed.offset != 0 && !header.ignored() {
                return Finding::Structural(format!("orphan PV {pv} now holds VG metadata"));
            }
            return Finding::Fresh;
        };
        if header.committed.offset == 0 {
            return Finding::Structural(format!("PV {pv} holds no VG metadata any more"));
        }
        if header.ignored() {
            return Finding::Stale(format!("the metadata area of PV {pv} is now ignored"));
        }
        match text {
            None => Finding::Fresh,
            Some(Err(e)) => Finding::Unreadable(format!("PV {pv}: {e}")),
            Some(Ok(None)) => Finding::Structural(format!("PV {pv} holds no VG metadata any more")),
            Some(Ok(Some(disk))) => self.compare(cache, vgid, pv, &header, &disk),
        }
    }

    /// Compare the VG read from a PV with the cached copy; confirm the header when they agree.
    fn compare(
        &self,
        cache: &RwLock<Cache>,
        vgid: &str,
        pvid: &str,
        h: &MdaHeader,
        disk: &VolumeGroup,
    ) -> Finding {
        let c = cache.read();
        let Some(entry) = c.vgs.get(vgid) else {
            // Dropped from the cache meanwhile: nothing of it is served any more.
            return Finding::Fresh;
        };
        if disk.id != vgid {
            return Finding::Structural(format!("PV {pvid} now holds VG {}", disk.id));
        }
        let name = c.vgid_to_vgname.get(vgid).map_or("", String::as_str);
        if disk.name != name {
            return Finding::Structural(format!("VG {name} renamed to {} on disk", disk.name));
        }
        let mut cached: Vec<&str> = pv_ids(&entry.metadata).collect();
        let mut found: Vec<&str> = disk.pvs.iter().map(|p| p.id.as_str()).collect();
        cached.sort_unstable();
        found.sort_unstable();
        if cached != found {
            return Finding::Structural(format!(
                "VG {name} has {} PVs on disk, {} cached, or other ones",
                found.len(),
                cached.len()
            ));
        }
        let on_disk = filter_metadata(&Node::section("metadata", disk.section.children().to_vec()));
        let difference = first_difference(&on_disk, &entry.metadata, "");
        if let Some(difference) = difference {
            let cached_seq = entry.seqno();
            return Finding::Stale(if disk.seqno as i64 == cached_seq {
                format!("VG {name} seqno {cached_seq} holds other metadata on disk ({difference})")
            } else {
                format!(
                    "VG {name} seqno {} on disk, {cached_seq} cached",
                    disk.seqno
                )
            });
        }
        let mut st = self.state.lock();
        let rec = st.vgs.entry(vgid.to_owned()).or_insert_with(|| VgRecord {
            gen: entry.gen,
            confirmed: HashMap::new(),
            last: None,
        });
        if rec.gen != entry.gen {
            rec.gen = entry.gen;
            rec.confirmed.clear();
        }
        rec.confirmed
            .insert(pvid.to_owned(), (h.start, h.committed));
        Finding::Fresh
    }

    fn record(&self, vgid: &str, gen: u64, f: &Finding) {
        match f {
            Finding::Stale(_) => bump(&self.n.stale),
            Finding::Unreadable(_) => bump(&self.n.unreadable),
            Finding::Structural(_) => bump(&self.n.structural),
            Finding::Unverifiable(_) => bump(&self.n.unverifiable),
            Finding::Fresh => {}
        }
        let mut st = self.state.lock();
        let rec = st.vgs.entry(vgid.to_owned()).or_insert_with(|| VgRecord {
            gen,
            confirmed: HashMap::new(),
            last: None,
        });
        rec.last = Some((SystemTime::now(), f.clone()));
    }

    /// `vg_lookup` of `vgid`: check one PV of the VG.
    pub fn check_vg(&self, cache: &RwLock<Cache>, vgid: &str) -> Marks {
        let (gen, targets) = {
            let c = cache.read();
            let Some(entry) = c.vgs.get(vgid) else {
                return Marks::default();
            };
            let targets: Vec<Target> = pv_ids(&entry.metadata)
                .filter_map(|id| target(&c, id))
                .filter(|t| t.mda.is_some() && t.vg.as_ref().is_some_and(|(v, _)| v == vgid))
                .collect();
            (entry.gen, targets)
        };
        let chosen = targets.iter().find(|t| self.bound(t).is_ok());
        let finding = match chosen {
            Some(t) => self.check_target(cache, t),
            None => Finding::Unverifiable(match targets.first() {
                Some(t) => match self.bound(t) {
                    Err(why) => format!("no PV seen at its device (PV {}: {why})", t.pvid),
                    Ok(()) => "no PV seen at its device".to_owned(),
                },
                None => "no cached PV with a metadata area in use".to_owned(),
            }),
        };
        self.record(vgid, gen, &finding);
        match finding {
            Finding::Fresh | Finding::Unverifiable(_) => Marks::default(),
            Finding::Stale(_) | Finding::Unreadable(_) => Marks {
                vg_invalid: true,
                global_invalid: false,
            },
            Finding::Structural(_) => Marks {
                vg_invalid: true,
                global_invalid: true,
            },
        }
    }

    /// `pv_lookup` of `pvid`: check that PV.
    pub fn check_pv(&self, cache: &RwLock<Cache>, pvid: &str) -> Marks {
        let Some(t) = target(&cache.read(), pvid) else {
            return Marks::default();
        };
        let f = self.check_target(cache, &t);
        if let Some((vgid, gen)) = &t.vg {
            self.record(vgid, *gen, &f);
        }
        global_marks(&f)
    }

    /// `pv_list` / `vg_list`: wait for a pass over every bound PV that started after this call.
    pub fn check_all(&self, cache: &RwLock<Cache>) -> Marks {
        let mut p = self.pass.lock();
        let want = p.started + 1;
        loop {
            if p.finished >= want {
                return p.marks;
            }
            if p.running {
                self.pass_done.wait(&mut p);
                continue;
            }
            p.started += 1;
            p.running = true;
            let me = p.started;
            drop(p);
            // A pass that panicked must neither leave `running` set (every list would wait
            // forever) nor prove anything.
            let run = std::panic::AssertUnwindSafe(|| self.run_pass(cache));
            let marks = std::panic::catch_unwind(run).unwrap_or(Marks {
                vg_invalid: false,
                global_invalid: true,
            });
            p = self.pass.lock();
            p.running = false;
            p.finished = me;
            p.marks = marks;
            self.pass_done.notify_all();
        }
    }

    fn run_pass(&self, cache: &RwLock<Cache>) -> Marks {
        bump(&self.n.passes);
        let targets: Vec<Target> = {
            let c = cache.read();
            c.pvmeta.keys().filter_map(|id| target(&c, id)).collect()
        };
        // Devices are read by a few threads at once: the pass waits on I/O, not on the CPU. Only
        // bound PVs are checked (a pending binding is read first, by the same thread).
        let chunk = targets.len().div_ceil(PASS_THREADS).max(1);
        let mut lost = false;
        let findings: Vec<(&Target, Finding)> = std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .filter(|t| self.bound(t).is_ok())
                            .map(|t| (t, self.check_target(cache, t)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                match h.join() {
                    Ok(part) => all.extend(part),
                    // A reader that failed proves nothing: the reply must not say valid.
                    Err(_) => lost = true,
                }
            }
            all
        });
        let mut marks = Marks {
            vg_invalid: false,
            global_invalid: lost,
        };
        let mut per_vg: HashMap<String, (u64, Finding)> = HashMap::new();
        for (t, f) in findings {
            marks.global_invalid |= global_marks(&f).global_invalid;
            if let Some((vgid, gen)) = &t.vg {
                let slot = per_vg.entry(vgid.clone()).or_insert((*gen, Finding::Fresh));
                if f.rank() > slot.1.rank() {
                    slot.1 = f;
                }
            }
        }
        for (vgid, (gen, f)) in per_vg {
            self.record(&vgid, gen, &f);
        }
        marks
    }

    /// Count a token drop (a structural change was seen).
    pub fn note_token_drop(&self) {
        bump(&self.n.token_drops);
    }

    /// The `verification { ... }` section `dump` ends with.
    pub fn report(&self, cache: &Cache) -> String {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed) as i64;
        self.bindings.settle_all();
        let bindings = self.bindings.snapshot();
        let st = self.state.lock();
        let mut vgs = Vec::new();
        for (vgid, name) in &cache.vgid_to_vgname {
            let mut items = vec![Node::value("name", name.as_str())];
            match st.vgs.get(vgid).and_then(|r| r.last.as_ref()) {
                Some((at, f)) => {
                    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                    items.push(Node::value("last_verified", secs as i64));
                    items.push(Node::value("result", f.word()));
                    if !f.detail().is_empty() {
                        items.push(Node::value("detail", f.detail()));
                    }
                }
                None => items.push(Node::value("result", "not checked yet")),
            }
            vgs.push(Node::section(vgid.as_str(), items));
        }
        let mut unbound = Vec::new();
        for (pvid, pm) in &cache.pvmeta {
            let why = match bindings.get(pvid) {
                Some((d, Bound::Seen)) if *d == pm.device => continue,
                Some((d, Bound::Seen)) => format!("label seen at device {d}, cached at another"),
                Some((_, Bound::NotSeen(e))) => e.clone(),
                Some((_, Bound::Pending)) => "label not read yet".to_owned(),
                None => "label never seen at its device".to_owned(),
            };
            unbound.push(Node::section(
                pvid.as_str(),
                vec![
                    Node::value("device", pm.device as i64),
                    Node::value("reason", why),
                ],
            ));
        }
        let tree = Node::section(
            "verification",
            vec![
                Node::value("checks", n(&self.n.checks)),
                Node::value("disk_reads", n(&self.bindings.devices.reads)),
                Node::value("list_passes", n(&self.n.passes)),
                Node::value("stale_detected", n(&self.n.stale)),
                Node::value("unreadable_detected", n(&self.n.unreadable)),
                Node::value("structural_detected", n(&self.n.structural)),
                Node::value("unverifiable_checks", n(&self.n.unverifiable)),
                Node::value("token_drops", n(&self.n.token_drops)),
                Node::section("volume_groups", vgs),
                Node::section("unverifiable_pvs", unbound),
            ],
        );
        write_tree(&[tree])
    }
}

/// Where two trees first differ (`path: what`); `None` when they hold the same metadata. A
/// one-element list equals its single value, as lvm reads both alike and the tree writer turns
/// one into the other on the wire.
fn first_difference(a: &Node, b: &Node, path: &str) -> Option<String> {
    let here = if path.is_empty() {
        a.key.clone()
    } else {
        format!("{path}/{}", a.key)
    };
    if a.key != b.key {
        return Some(format!("{here}: key {} vs {}", a.key, b.key));
    }
    match (&a.body, &b.body) {
        (Body::Section(x), Body::Section(y)) => {
            for (m, n) in x.iter().zip(y) {
                if let Some(d) = first_difference(m, n, &here) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{here}: {} vs {} entries", x.len(), y.len()))
        }
        (Body::Value(x), Body::Value(y)) if x.items() == y.items() => None,
        _ => Some(format!("{here}: value differs")),
    }
}

/// Markers of a PV-level check (pv_lookup, lists): only what is beyond one VG's metadata.
fn global_marks(f: &Finding) -> Marks {
    Marks {
        vg_invalid: false,
        global_invalid: matches!(f, Finding::Structural(_) | Finding::Unreadable(_)),
    }
}
