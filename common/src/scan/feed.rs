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
use std::collections::{HashMap, VecDeque};
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

/// What joins a PV to a group: its PVID and, when it carries VG metadata, the VG's name, its id
/// and the PVIDs the metadata lists. Two PVs sharing a key belong to one group.
pub fn group_keys(pv: &ScannedPv) -> Vec<String> {
    let mut keys = vec![format!("p:{}", pv.label.pv.pvid)];
    if let Some(vg) = &pv.vg {
        keys.push(format!("n:{}", vg.name));
        keys.push(format!("u:{}", vg.id));
        keys.extend(
            vg.pvs
                .iter()
                .map(|listed| format!("p:{}", listed.id.replace('-', ""))),
        );
    }
    keys
}

/// The scan indices in `sent` grouped so that PVs whose order matters to lvmetad share a group
/// (see the module doc); each group and the list of groups are in scan order.
pub fn feed_groups(scans: &[(Device, ScannedPv)], sent: &[usize]) -> Vec<Vec<usize>> {
    let mut sets = DisjointSets::new(sent.len());
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (at, &i) in sent.iter().enumerate() {
        for key in group_keys(&scans[i].1) {
            match owner.get(&key) {
                Some(&o) => sets.union(o, at),
                None => {
                    owner.insert(key, at);
                }
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

/// One connection that sends `pv_found`: `post` writes the request for a PV, `answer` reads the
/// reply to the oldest request posted and returns the warning it calls for. Up to `window()`
/// requests may be posted before their replies are read: 1 (a round trip each) for lvm2's C
/// lvmetad, which reads two requests written back to back as one; more for a daemon that says
/// it keeps them apart (`capabilities`, docs/protocol.md §1.2).
pub trait FeedSession {
    type Error;
    fn post(&mut self, dev: &Device, pv: &ScannedPv) -> Result<(), Self::Error>;
    fn answer(&mut self, pv: &ScannedPv) -> Result<Option<String>, Self::Error>;
    fn window(&self) -> usize;
    /// Whether `pv` had better wait for the answers in flight (see [`super::vg_once`]).
    fn must_wait(&self, _pv: &ScannedPv) -> bool {
        false
    }
}

/// A PV handed to a connection: its index in the scan list, where it is, what it holds.
pub trait Posted {
    fn at(&self) -> usize;
    fn dev(&self) -> &Device;
    fn pv(&self) -> &ScannedPv;
}

impl Posted for (usize, &Device, &ScannedPv) {
    fn at(&self) -> usize {
        self.0
    }
    fn dev(&self) -> &Device {
        self.1
    }
    fn pv(&self) -> &ScannedPv {
        self.2
    }
}

impl Posted for (usize, Device, ScannedPv) {
    fn at(&self) -> usize {
        self.0
    }
    fn dev(&self) -> &Device {
        &self.1
    }
    fn pv(&self) -> &ScannedPv {
        &self.2
    }
}

/// A session with the PVs posted on it and not answered yet, in order; answered ones are
/// counted in `fed` and handed back through `done`.
pub struct Flight<S, J> {
    session: S,
    window: usize,
    posted: VecDeque<J>,
    pub fed: Fed,
}

impl<S: FeedSession, J: Posted> Flight<S, J> {
    pub fn new(session: S) -> Flight<S, J> {
        let window = session.window().max(1);
        Flight {
            session,
            window,
            posted: VecDeque::new(),
            fed: Fed::default(),
        }
    }

    /// Post `job`, first reading replies while the window is full or the session wants the
    /// job to wait for one.
    pub fn post(&mut self, job: J, done: &mut Vec<J>) -> Result<(), S::Error> {
        while self.posted.len() >= self.window
            || (self.waiting() && self.session.must_wait(job.pv()))
        {
            self.answer_oldest(done)?;
        }
        self.session.post(job.dev(), job.pv())?;
        self.posted.push_back(job);
        Ok(())
    }

    /// Whether some PV waits for its reply.
    pub fn waiting(&self) -> bool {
        !self.posted.is_empty()
    }

    /// Read the reply to the oldest PV posted (nothing when none waits).
    pub fn answer_oldest(&mut self, done: &mut Vec<J>) -> Result<(), S::Error> {
        let Some(job) = self.posted.pop_front() else {
            return Ok(());
        };
        let warning = self.session.answer(job.pv())?;
        self.fed.pv_found += 1;
        self.fed.warnings.extend(warning.map(|w| (job.at(), w)));
        done.push(job);
        Ok(())
    }

    /// Read every reply still due.
    pub fn drain(&mut self, done: &mut Vec<J>) -> Result<(), S::Error> {
        while self.waiting() {
            self.answer_oldest(done)?;
        }
        Ok(())
    }
}

/// Send every index of `sent` over up to `conns` connections: `open` makes one (in the thread
/// that uses it); each posts its groups' PVs within its window. The first error stops every
/// connection and is returned. (The lvmetad session is `super::lvmetad`'s; this module only
/// spreads the work.)
pub fn feed_parallel<S: FeedSession>(
    open: &(dyn Fn() -> Result<S, S::Error> + Sync),
    scans: &[(Device, ScannedPv)],
    sent: &[usize],
    conns: usize,
) -> Result<Fed, S::Error>
where
    S::Error: Send,
{
    let groups = feed_groups(scans, sent);
    let conns = conns.clamp(1, groups.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<S::Error>> = Mutex::new(None);
    let fed: Mutex<Fed> = Mutex::new(Fed::default());
    std::thread::scope(|s| {
        for _ in 0..conns {
            s.spawn(|| {
                let run = || -> Result<Fed, S::Error> {
                    let mut flight = Flight::new(open()?);
                    let mut done = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let Some(group) = groups.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        for &i in group {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            let (dev, pv) = &scans[i];
                            flight.post((i, dev, pv), &mut done)?;
                        }
                    }
                    flight.drain(&mut done)?;
                    Ok(flight.fed)
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
pub(crate) mod tests {
    use super::*;
    use crate::scan::device::DeviceKind;
    use crate::scan::io::MemSource;
    use crate::scan::pv::{scan_pv, tests::pv_image};
    use std::path::PathBuf;

    pub(crate) fn dev(n: u64) -> Device {
        let path = format!("/dev/loop{n}");
        Device {
            path: PathBuf::from(&path),
            aliases: vec![path],
            devno: 1792 + n,
            kind: DeviceKind::Block,
        }
    }

    /// VG metadata text naming `pvids` as its PVs.
    pub(crate) fn vg_text(name: &str, id: &str, pvids: &[&str]) -> String {
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

    pub(crate) fn dashed(raw: &str) -> String {
        crate::scan::label::dashed_uuid(raw)
    }

    pub(crate) fn pv(raw_id: &str, vg: Option<&str>) -> ScannedPv {
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

    /// A session that records what was posted and answers after the fact, checking the window.
    struct Recorder {
        window: usize,
        posted: Vec<u64>,
        answered: usize,
        most_in_flight: usize,
    }

    impl FeedSession for Recorder {
        type Error = String;
        fn post(&mut self, dev: &Device, _: &ScannedPv) -> Result<(), String> {
            self.posted.push(dev.devno - 1792);
            self.most_in_flight = self.most_in_flight.max(self.posted.len() - self.answered);
            Ok(())
        }
        fn answer(&mut self, pv: &ScannedPv) -> Result<Option<String>, String> {
            self.answered += 1;
            Ok(pv
                .vg
                .as_ref()
                .map(|vg| format!("answer {} for {}", self.answered, vg.name)))
        }
        fn window(&self) -> usize {
            self.window
        }
    }

    #[test]
    fn a_flight_posts_up_to_its_window_and_reads_answers_in_order() {
        let t = vg_text("vgw", "Wb1234-abcd-abcd-abcd-abcd-abcd-abcdef", &[]);
        let pvs: Vec<(Device, ScannedPv)> = (0..7)
            .map(|n| {
                (
                    dev(n),
                    pv(&format!("WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW{n}"), Some(&t)),
                )
            })
            .collect();
        for window in [1, 3] {
            let mut f = Flight::new(Recorder {
                window,
                posted: vec![],
                answered: 0,
                most_in_flight: 0,
            });
            let mut done = Vec::new();
            for (i, (d, p)) in pvs.iter().enumerate() {
                f.post((i, d, p), &mut done).unwrap();
            }
            assert!(f.waiting() || window == 1);
            f.drain(&mut done).unwrap();
            assert!(!f.waiting());
            assert_eq!(f.session.posted, (0..7).collect::<Vec<u64>>());
            assert_eq!(f.session.most_in_flight, window, "window {window}");
            assert_eq!(f.fed.pv_found, 7);
            let order: Vec<usize> = done.iter().map(|j| j.0).collect();
            assert_eq!(
                order,
                (0..7).collect::<Vec<_>>(),
                "answers in posting order"
            );
            let first = &f.fed.warnings[0];
            assert_eq!(first, &(0, "answer 1 for vgw".to_owned()));
        }
    }
}
