//! A full repopulation that sends `pv_found` while the devices are still being read, so that
//! lvmetad stores the first PVs while the scanner reads the next ones (docs/protocol.md §4.4).
//!
//! The scan workers hand over results as they finish; a router takes them back into scan
//! order and gives each PV to one of several connections of the same updater (as
//! [`super::feed`] does after a complete scan), keeping every group of PVs whose order matters
//! on one connection in scan order. A group is known only once every device was read, so the
//! router decides as the PVs come, with the keys of [`group_keys`]:
//!
//! - a PV whose keys are bound to no connection opens a group on the least busy one, and binds
//!   its keys there; a PV with keys bound to one connection joins it;
//! - a PV without VG metadata of its own (no metadata area, or an empty one) waits until a PV
//!   whose VG lists it arrives, and is sent just before that PV (nothing else of its group can
//!   have come before it); those no VG lists go out at the end, each a group alone;
//! - a PV whose keys are bound to two connections (it joins groups already split, e.g. a
//!   renamed VG), or a PVID seen on a second device (duplicates), cannot be fed this way: the
//!   router stops sending and says why ([`Streamed::redo`]). The caller then feeds the whole
//!   scan again after `pv_clear_all`, which empties lvmetad's PV and VG tables, exactly as a
//!   repopulation after a complete scan does; nothing of the first attempt survives.
//!
//! With one connection everything goes out in scan order, nothing waits. The first error stops
//! every connection and is returned; the scan still runs to its end.
//!
//! # Locking
//! `first_error` and the per-connection `busy` counters are the only shared state; no lock is
//! held while a request is sent.
#![forbid(unsafe_code)]

use super::device::{scan_devices_into, Device, DeviceError, ScanOptions};
use super::feed::{group_keys, Fed, FeedSession, Flight};
use super::pv::ScannedPv;
use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What a scan that fed lvmetad as it went did.
#[derive(Debug, Default)]
pub struct Streamed {
    /// Every PV read, in scan order (devices without a label left out).
    pub scans: Vec<(Device, ScannedPv)>,
    /// The scan's own warnings (damaged areas, unreadable devices), in scan order.
    pub scan_warnings: Vec<String>,
    /// What the `pv_found` requests gave; warning indices are into `scans`.
    pub fed: Fed,
    /// Why the PVs could not all be fed as they came: the caller must feed again.
    pub redo: Option<String>,
}

/// One PV on its way: (index in the scan list, device, what it holds).
type Job = (usize, Device, ScannedPv);

/// Where the router sends a PV.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// To this connection, after the waiting PVs listed (in scan order).
    Send(usize, Vec<usize>),
    /// Keep it until a VG lists it.
    Wait,
    /// Stop: the PVs cannot be fed as they come.
    Redo(String),
}

/// The connection each group key is bound to, and the PVs that wait (by PVID).
struct Router {
    conns: usize,
    bound: HashMap<String, usize>,
    waiting: HashMap<String, Vec<usize>>,
    pvids: HashSet<String>,
}

impl Router {
    fn new(conns: usize) -> Router {
        Router {
            conns,
            bound: HashMap::new(),
            waiting: HashMap::new(),
            pvids: HashSet::new(),
        }
    }

    /// Route the PV at scan index `at`; `idle` picks a connection for a new group.
    fn route(&mut self, at: usize, pv: &ScannedPv, idle: impl FnOnce() -> usize) -> Route {
        let pvid = &pv.label.pv.pvid;
        if !self.pvids.insert(pvid.clone()) {
            return Route::Redo(format!("PV {pvid} is on more than one device"));
        }
        if self.conns == 1 {
            return Route::Send(0, vec![]);
        }
        let keys = group_keys(pv);
        let mut on: Option<usize> = None;
        for k in &keys {
            match (self.bound.get(k), on) {
                (Some(&c), Some(o)) if c != o => {
                    return Route::Redo(format!(
                        "PV {pvid} joins groups already sent on two connections"
                    ))
                }
                (Some(&c), _) => on = Some(c),
                (None, _) => {}
            }
        }
        if on.is_none() && pv.vg.is_none() {
            self.waiting.entry(keys[0].clone()).or_default().push(at);
            return Route::Wait;
        }
        let c = on.unwrap_or_else(idle);
        let mut released = Vec::new();
        for k in keys {
            if let Some(w) = self.waiting.remove(&k) {
                released.extend(w);
            }
            self.bound.insert(k, c);
        }
        released.sort_unstable();
        Route::Send(c, released)
    }

    /// The PVs still waiting, in scan order: no VG listed them.
    fn unclaimed(&mut self) -> Vec<usize> {
        let mut left: Vec<usize> = self.waiting.drain().flat_map(|(_, w)| w).collect();
        left.sort_unstable();
        left
    }
}

/// One connection's feeder: posts the PVs its queue brings, within the session's window, and
/// reads replies while it waits for more; opens the session on the first PV. After an error
/// (its own or another connection's) it only passes the PVs through. Returns what it sent and
/// every PV it was given.
fn feed_one<S: FeedSession>(
    open: &(dyn Fn() -> Result<S, S::Error> + Sync),
    queue: Receiver<Job>,
    stop: &AtomicBool,
    busy: &AtomicUsize,
    fail: &(dyn Fn(S::Error) + Sync),
) -> (Fed, Vec<Job>) {
    let mut flight: Option<Flight<S, Job>> = None;
    let mut done: Vec<Job> = Vec::new();
    let mut fed = Fed::default();
    loop {
        let waiting = flight.as_ref().is_some_and(Flight::waiting);
        let next = if waiting {
            queue.try_recv()
        } else {
            queue.recv().map_err(|_| TryRecvError::Disconnected)
        };
        let job = match next {
            Ok(job) => job,
            Err(TryRecvError::Empty) => {
                // Nothing new yet: collect a reply meanwhile.
                if let Some(Err(e)) = flight.as_mut().map(|f| f.answer_oldest(&mut done)) {
                    fail(e);
                    flight = None;
                }
                continue;
            }
            Err(TryRecvError::Disconnected) => break,
        };
        busy.fetch_sub(1, Ordering::Relaxed);
        if stop.load(Ordering::Relaxed) {
            done.push(job);
            continue;
        }
        if flight.is_none() {
            match open() {
                Ok(session) => flight = Some(Flight::new(session)),
                Err(e) => {
                    fail(e);
                    done.push(job);
                    continue;
                }
            }
        }
        if let Some(Err(e)) = flight.as_mut().map(|f| f.post(job, &mut done)) {
            // The failed session's PVs are dropped with it: the caller gets the error.
            fail(e);
            flight = None;
        }
    }
    if let Some(mut f) = flight {
        match f.drain(&mut done) {
            Ok(()) => fed = f.fed,
            Err(e) => fail(e),
        }
    }
    (fed, done)
}

/// Read `devs` and send each PV found over up to `conns` connections as it comes: `open` makes
/// a connection (in the thread that uses it, on its first PV), `send` sends one PV and returns
/// the warning its answer calls for. The first error stops every connection and is returned.
pub fn feed_while_scanning<S: FeedSession>(
    open: &(dyn Fn() -> Result<S, S::Error> + Sync),
    devs: &[Device],
    opts: ScanOptions,
    conns: usize,
) -> Result<Streamed, S::Error>
where
    S::Error: Send,
{
    let conns = conns.max(1);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<S::Error>> = Mutex::new(None);
    let busy: Vec<AtomicUsize> = (0..conns).map(|_| AtomicUsize::new(0)).collect();
    let fail = |e: S::Error| {
        stop.store(true, Ordering::Relaxed);
        first_error.lock().get_or_insert(e);
    };
    let mut out = Streamed::default();
    let mut done: Vec<Job> = Vec::new();
    std::thread::scope(|s| {
        let (found_tx, found_rx) = unbounded();
        s.spawn(move || {
            scan_devices_into(devs, opts, &|i, r| {
                let _ = found_tx.send((i, r));
            })
        });
        let (queues, feeders): (Vec<Sender<Job>>, Vec<_>) = (0..conns)
            .map(|c| {
                let (tx, rx) = unbounded::<Job>();
                let (stop, busy, fail) = (&stop, &busy[c], &fail);
                let feeder = s.spawn(move || feed_one(open, rx, stop, busy, fail));
                (tx, feeder)
            })
            .unzip();
        let give = |c: usize, job: Job| {
            busy[c].fetch_add(1, Ordering::Relaxed);
            // A feeder only ends once its queue is dropped, below.
            let _ = queues[c].send(job);
        };
        // A new group goes to the connection with the fewest PVs waiting, and among those to
        // the one given the fewest groups: idle connections all get work.
        let groups: Vec<AtomicUsize> = (0..conns).map(|_| AtomicUsize::new(0)).collect();
        let idle = || {
            let c = (0..conns)
                .min_by_key(|&c| {
                    (
                        busy[c].load(Ordering::Relaxed),
                        groups[c].load(Ordering::Relaxed),
                    )
                })
                .unwrap_or(0);
            groups[c].fetch_add(1, Ordering::Relaxed);
            c
        };

        let mut router = Router::new(conns);
        let mut slots: Vec<Option<Result<ScannedPv, DeviceError>>> =
            std::iter::repeat_with(|| None).take(devs.len()).collect();
        let (mut next, mut pvs) = (0, 0);
        let mut held: HashMap<usize, Job> = HashMap::new();
        for (i, r) in found_rx {
            slots[i] = Some(r);
            while let Some(r) = slots.get_mut(next).and_then(Option::take) {
                let dev = devs[next].clone();
                next += 1;
                let pv = match r {
                    Ok(pv) => pv,
                    Err(e) if e.is_no_label() => continue,
                    Err(e) => {
                        out.scan_warnings.push(e.to_string());
                        continue;
                    }
                };
                for p in &pv.problems {
                    out.scan_warnings
                        .push(format!("{}: {p}", dev.path.display()));
                }
                let at = pvs;
                pvs += 1;
                if out.redo.is_some() {
                    done.push((at, dev, pv));
                    continue;
                }
                match router.route(at, &pv, idle) {
                    Route::Send(c, released) => {
                        for w in released {
                            if let Some(job) = held.remove(&w) {
                                give(c, job);
                            }
                        }
                        give(c, (at, dev, pv));
                    }
                    Route::Wait => {
                        held.insert(at, (at, dev, pv));
                    }
                    Route::Redo(why) => {
                        stop.store(true, Ordering::Relaxed);
                        out.redo = Some(why);
                        done.push((at, dev, pv));
                    }
                }
            }
        }
        for w in router.unclaimed() {
            if let Some(job) = held.remove(&w) {
                if out.redo.is_some() {
                    done.push(job);
                } else {
                    give(idle(), job);
                }
            }
        }
        drop(queues);
        for f in feeders {
            if let Ok((fed, sent)) = f.join() {
                out.fed.pv_found += fed.pv_found;
                out.fed.warnings.extend(fed.warnings);
                done.extend(sent);
            }
        }
    });
    if let Some(e) = first_error.into_inner() {
        return Err(e);
    }
    done.sort_by_key(|(at, _, _)| *at);
    out.scans = done.into_iter().map(|(_, dev, pv)| (dev, pv)).collect();
    out.fed.warnings.sort_by_key(|(i, _)| *i);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::feed::tests::{dashed, pv, vg_text};

    const A: [&str; 3] = [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA2",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA3",
    ];
    const B: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB1";
    const ORPHAN: &str = "OOOOOOOOOOOOOOOOOOOOOOOOOOOOOOO1";

    fn vga() -> String {
        let listed: Vec<String> = A.iter().map(|p| dashed(p)).collect();
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        vg_text("vga", "Ab1234-abcd-abcd-abcd-abcd-abcd-abcdef", &listed)
    }

    fn vgb() -> String {
        vg_text(
            "vgb",
            "Bb1234-abcd-abcd-abcd-abcd-abcd-abcdef",
            &[&dashed(B)],
        )
    }

    #[test]
    fn a_vgs_pvs_share_a_connection_and_pvs_without_metadata_wait_for_it() {
        let mut r = Router::new(4);
        let (a, b) = (vga(), vgb());
        // Two PVs of vga without metadata areas come first: they wait.
        assert_eq!(r.route(0, &pv(A[1], None), || 0), Route::Wait);
        assert_eq!(r.route(1, &pv(A[2], None), || 0), Route::Wait);
        assert_eq!(r.route(2, &pv(ORPHAN, None), || 0), Route::Wait);
        // vga's PV with metadata opens a group on the idle connection 2 and takes them along,
        // in scan order, ahead of itself.
        assert_eq!(
            r.route(3, &pv(A[0], Some(&a)), || 2),
            Route::Send(2, vec![0, 1])
        );
        // vgb opens its own group elsewhere.
        assert_eq!(r.route(4, &pv(B, Some(&b)), || 1), Route::Send(1, vec![]));
        // What no VG listed goes out at the end.
        assert_eq!(r.unclaimed(), vec![2]);
    }

    #[test]
    fn a_pv_without_metadata_listed_by_a_routed_vg_goes_straight_to_it() {
        let mut r = Router::new(4);
        assert_eq!(
            r.route(0, &pv(A[0], Some(&vga())), || 3),
            Route::Send(3, vec![])
        );
        assert_eq!(r.route(1, &pv(A[1], None), || 0), Route::Send(3, vec![]));
        assert!(r.unclaimed().is_empty());
    }

    #[test]
    fn duplicates_and_groups_split_across_connections_call_for_a_redo() {
        let mut r = Router::new(4);
        let a = vga();
        assert_eq!(
            r.route(0, &pv(A[0], Some(&a)), || 0),
            Route::Send(0, vec![])
        );
        assert!(
            matches!(r.route(1, &pv(A[0], Some(&a)), || 1), Route::Redo(w) if w.contains("more than one device"))
        );

        // vg "same" (id X) and vg "other" (id Y) go to two connections; then a PV whose VG is
        // named "same" with id Y joins both groups.
        let mut r = Router::new(4);
        let x = vg_text("same", "Xb1234-abcd-abcd-abcd-abcd-abcd-abcdef", &[]);
        let y = vg_text("other", "Yb1234-abcd-abcd-abcd-abcd-abcd-abcdef", &[]);
        let both = vg_text("same", "Yb1234-abcd-abcd-abcd-abcd-abcd-abcdef", &[]);
        assert_eq!(
            r.route(0, &pv(A[0], Some(&x)), || 0),
            Route::Send(0, vec![])
        );
        assert_eq!(
            r.route(1, &pv(A[1], Some(&y)), || 1),
            Route::Send(1, vec![])
        );
        assert!(
            matches!(r.route(2, &pv(A[2], Some(&both)), || 2), Route::Redo(w) if w.contains("two connections"))
        );
    }

    #[test]
    fn one_connection_sends_everything_in_scan_order() {
        let mut r = Router::new(1);
        assert_eq!(r.route(0, &pv(A[1], None), || 0), Route::Send(0, vec![]));
        assert_eq!(
            r.route(1, &pv(A[0], Some(&vga())), || 0),
            Route::Send(0, vec![])
        );
        assert_eq!(r.route(2, &pv(ORPHAN, None), || 0), Route::Send(0, vec![]));
        assert!(r.unclaimed().is_empty());
    }

    /// One connection of the end-to-end test: logs (connection, PVID) of every post.
    struct Logged {
        conn: usize,
        log: std::sync::Arc<Mutex<Vec<(usize, String)>>>,
        answers: usize,
    }

    impl FeedSession for Logged {
        type Error = String;
        fn post(&mut self, _: &Device, pv: &ScannedPv) -> Result<(), String> {
            self.log.lock().push((self.conn, pv.label.pv.pvid.clone()));
            Ok(())
        }
        fn answer(&mut self, _: &ScannedPv) -> Result<Option<String>, String> {
            self.answers += 1;
            Ok(None)
        }
        fn window(&self) -> usize {
            4
        }
    }

    #[test]
    fn a_streamed_scan_sends_every_pv_once_each_group_on_one_connection_in_scan_order() {
        use crate::scan::device::device_from_path;
        use crate::scan::pv::tests::pv_image;
        let dir = std::env::temp_dir().join(format!("scan-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (vga(), vgb());
        // Scan order: vga without metadata, vgb, orphan, vga with metadata, vga without.
        let set: [(&str, Option<&str>); 5] = [
            (A[1], None),
            (B, Some(&b)),
            (ORPHAN, None),
            (A[0], Some(&a)),
            (A[2], None),
        ];
        let mut devs = Vec::new();
        for (k, (id, text)) in set.iter().enumerate() {
            let path = dir.join(format!("pv{k}.img"));
            std::fs::write(&path, pv_image(id, text.map(str::as_bytes), false)).unwrap();
            devs.push(device_from_path(&path).unwrap());
        }
        let not_a_pv = dir.join("empty.img");
        std::fs::write(&not_a_pv, vec![0u8; 1 << 20]).unwrap();
        devs.insert(2, device_from_path(&not_a_pv).unwrap());

        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let opened = AtomicUsize::new(0);
        let open = || -> Result<Logged, String> {
            Ok(Logged {
                conn: opened.fetch_add(1, Ordering::Relaxed),
                log: log.clone(),
                answers: 0,
            })
        };
        let opts = ScanOptions {
            workers: 3,
            direct: false,
        };
        let st = feed_while_scanning(&open, &devs, opts, 4).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(st.redo.is_none());
        assert_eq!(st.fed.pv_found, 5);
        let scanned: Vec<&str> = st
            .scans
            .iter()
            .map(|(_, p)| p.label.pv.pvid.as_str())
            .collect();
        assert_eq!(
            scanned,
            vec![A[1], B, ORPHAN, A[0], A[2]],
            "scans in scan order"
        );
        let log = log.lock();
        let mut sent: Vec<&str> = log.iter().map(|(_, p)| p.as_str()).collect();
        sent.sort_unstable();
        let mut want = vec![A[0], A[1], A[2], B, ORPHAN];
        want.sort_unstable();
        assert_eq!(sent, want, "every PV once");
        let on = |id: &str| log.iter().find(|(_, p)| p == id).map(|(c, _)| *c);
        let vga: Vec<(usize, &str)> = log
            .iter()
            .filter(|(_, p)| A.contains(&p.as_str()))
            .map(|(c, p)| (*c, p.as_str()))
            .collect();
        let c = on(A[0]).unwrap();
        assert_eq!(
            vga,
            vec![(c, A[1]), (c, A[0]), (c, A[2])],
            "vga's group: one connection, scan order"
        );
    }
}
