//! Bindings: the device at which the daemon itself saw each PV's label, and the reads that see
//! it, kept off the `pv_found` path.
//!
//! A `pv_found` reporting a PV at a device it is not bound to notes the binding as *pending*
//! and queues it for the binder thread, which reads the labels once the reports pause for
//! 20 ms (at most 1 s after the first it holds), at idle CPU priority (`SCHED_IDLE`): a scan
//! feeding 1000 PVs is not slowed by 1000 label reads. Whoever needs a
//! binding first settles it: the binder, a check of that PV (which reads the label itself
//! before it goes on) or `dump` (which settles every pending one, so what it shows does not
//! depend on the binder's progress). A PV reported again at the device it is bound to keeps its
//! binding without a read.
//!
//! Lock: `map` is a leaf mutex, never held across I/O and never together with another
//! verification lock; `Devices::bufs` likewise.

use super::disk::{inspect_in, DevicePaths, OpenError, Seen};
use common::scan::io::{AlignedBuf, FileSource};
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the daemon opens devices: remembered paths, reused buffers, and the count of reads.
#[derive(Debug, Default)]
pub struct Devices {
    paths: DevicePaths,
    /// Read buffers (aligned bounce buffer, head) reused between reads.
    bufs: Mutex<Vec<(AlignedBuf, Vec<u8>)>>,
    /// Device heads read since start (`disk_reads` in `dump`).
    pub reads: AtomicU64,
}

impl Devices {
    /// Open `devno` and run `f` on it with a pair of reused read buffers.
    pub fn with_device<T>(
        &self,
        devno: u64,
        f: impl FnOnce(&FileSource, &mut Vec<u8>) -> T,
    ) -> Result<T, OpenError> {
        let mut src = self.paths.open(devno)?;
        let (bounce, mut head) = self.bufs.lock().pop().unwrap_or_default();
        src.use_buffer(bounce);
        let out = f(&src, &mut head);
        let mut pool = self.bufs.lock();
        if pool.len() < 8 {
            pool.push((src.into_buffer(), head));
        }
        Ok(out)
    }

    /// Read the label at `devno`: `Ok` when it holds `pvid`, else why not.
    fn read_binding(&self, pvid: &str, devno: u64) -> Result<(), String> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let seen = self.with_device(devno, |src, buf| {
            match inspect_in(src, pvid, None, |_| false, buf) {
                Seen::Pv { .. } => Ok(()),
                Seen::OtherPv(p) => Err(format!("the device holds PV {p}")),
                Seen::NoLabel(e) | Seen::Unreadable(e) => Err(e),
                Seen::MdaGone(_) => Err("mda not in the label".to_owned()),
            }
        });
        seen.unwrap_or_else(|e| Err(e.to_string()))
    }
}

/// What is known of one PV's label at its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// Reported there; the label is not read yet.
    Pending,
    /// The label holds the PV.
    Seen,
    /// It does not, or the device could not be read: why.
    NotSeen(String),
}

type Map = Mutex<HashMap<String, (u64, Bound)>>;

/// Record `result` for `pvid` at `devno` unless the PV was reported elsewhere meanwhile.
fn settle(map: &Map, pvid: &str, devno: u64, result: Result<(), String>) {
    let mut m = map.lock();
    if let Some((at, b @ Bound::Pending)) = m.get_mut(pvid) {
        if *at == devno {
            *b = match result {
                Ok(()) => Bound::Seen,
                Err(why) => Bound::NotSeen(why),
            };
        }
    }
}

fn is_pending(map: &Map, pvid: &str, devno: u64) -> bool {
    matches!(map.lock().get(pvid), Some((at, Bound::Pending)) if *at == devno)
}

/// Read the label of a pending binding and record what it shows.
fn read_now(map: &Map, devices: &Devices, pvid: &str, devno: u64) -> Result<(), String> {
    let r = devices.read_binding(pvid, devno);
    settle(map, pvid, devno, r.clone());
    r
}

/// The bindings of every PV ever reported, and the binder that settles them.
#[derive(Debug, Default)]
pub struct Bindings {
    map: Arc<Map>,
    pub devices: Arc<Devices>,
    /// The binder's queue; the thread starts with the first pending binding and ends when this
    /// is dropped.
    queue: Mutex<Option<Sender<(String, u64)>>>,
}

impl Bindings {
    /// `pv_found` reported `pvid` at `devno`.
    pub fn reported(&self, pvid: &str, devno: u64) {
        {
            let mut m = self.map.lock();
            if matches!(m.get(pvid), Some((at, Bound::Seen | Bound::Pending)) if *at == devno) {
                return;
            }
            m.insert(pvid.to_owned(), (devno, Bound::Pending));
        }
        let job = (pvid.to_owned(), devno);
        let job = match self.binder() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(e) => e.into_inner(),
            },
            None => job,
        };
        // No binder thread (it could not start): read it now, as a check would.
        let _ = read_now(&self.map, &self.devices, &job.0, job.1);
    }

    fn binder(&self) -> Option<Sender<(String, u64)>> {
        let mut q = self.queue.lock();
        if q.is_none() {
            let (tx, rx) = unbounded();
            let (map, devices) = (self.map.clone(), self.devices.clone());
            let started = std::thread::Builder::new()
                .name("binder".into())
                .spawn(move || run_binder(&map, &devices, rx));
            if started.is_ok() {
                *q = Some(tx);
            }
        }
        q.clone()
    }

    /// The binding of `pvid` at `devno` as a check needs it, read now if still pending.
    pub fn at(&self, pvid: &str, devno: u64) -> Result<(), String> {
        let b = self.map.lock().get(pvid).cloned();
        match b {
            Some((at, _)) if at != devno => {
                Err("reported at another device since its label was seen".to_owned())
            }
            Some((_, Bound::Seen)) => Ok(()),
            Some((_, Bound::NotSeen(why))) => Err(why),
            Some((_, Bound::Pending)) => read_now(&self.map, &self.devices, pvid, devno),
            None => Err("its label was never seen at its device".to_owned()),
        }
    }

    /// Settle every pending binding now (for `dump`).
    pub fn settle_all(&self) {
        let pending: Vec<(String, u64)> = self
            .map
            .lock()
            .iter()
            .filter(|(_, (_, b))| *b == Bound::Pending)
            .map(|(p, (d, _))| (p.clone(), *d))
            .collect();
        for (pvid, devno) in pending {
            if is_pending(&self.map, &pvid, devno) {
                let _ = read_now(&self.map, &self.devices, &pvid, devno);
            }
        }
    }

    /// A copy of every binding, for `dump`.
    pub fn snapshot(&self) -> HashMap<String, (u64, Bound)> {
        self.map.lock().clone()
    }
}

/// The binder waits for the reports to pause this long before it reads...
const QUIET: Duration = Duration::from_millis(20);
/// ...but no longer than this after the first one it holds.
const MOST: Duration = Duration::from_secs(1);

/// Reads the labels of pending bindings once the `pv_found` reports pause (a scan in progress
/// keeps both CPUs and the devices busy: even at idle priority the reads slowed a 1000-PV scan by
/// 10 ms, since the loop driver works for them at normal priority).
fn run_binder(map: &Map, devices: &Devices, rx: Receiver<(String, u64)>) {
    // Without the idle class the binder still works, at normal priority.
    let _ = common::daemon::run_when_idle();
    let mut batch = Vec::new();
    while let Ok(first) = rx.recv() {
        let since = Instant::now();
        batch.push(first);
        let mut open = true;
        while since.elapsed() < MOST {
            match rx.recv_timeout(QUIET) {
                Ok(job) => batch.push(job),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        for (pvid, devno) in batch.drain(..) {
            if is_pending(map, &pvid, devno) {
                let _ = read_now(map, devices, &pvid, devno);
            }
        }
        if !open {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_device_is_settled_as_not_seen_by_the_binder_or_the_first_look() {
        let b = Bindings::default();
        let fake = common::scan::device::makedev(4095, 1);
        b.reported("PV1", fake);
        // The binder or this look settles it; either way it is not seen, with the reason.
        let r = b.at("PV1", fake);
        assert!(r.as_ref().is_err_and(|e| e.contains("4095:1")), "{r:?}");
        assert!(matches!(
            b.snapshot().get("PV1"),
            Some((_, Bound::NotSeen(_)))
        ));
        assert_eq!(
            b.at("PV1", fake + 1),
            Err("reported at another device since its label was seen".to_owned())
        );
        assert!(b.at("PV2", fake).is_err());
    }

    #[test]
    fn settle_all_leaves_nothing_pending_and_a_stale_result_is_dropped() {
        let b = Bindings::default();
        for i in 0..50 {
            b.reported(&format!("PV{i}"), common::scan::device::makedev(4095, i));
        }
        b.settle_all();
        assert!(b.snapshot().values().all(|(_, s)| *s != Bound::Pending));
        // A result for a device the PV is no longer reported at is not recorded.
        let map: Map = Mutex::new(HashMap::new());
        map.lock().insert("PV".into(), (2, Bound::Pending));
        settle(&map, "PV", 1, Ok(()));
        assert_eq!(map.lock().get("PV"), Some(&(2, Bound::Pending)));
        settle(&map, "PV", 2, Ok(()));
        assert_eq!(map.lock().get("PV"), Some(&(2, Bound::Seen)));
    }
}
