//! The corosync CPG transport (feature `cpg`), through the rust-corosync crate.
//!
//! One CPG handle per log group. rust-corosync runs our callbacks while it holds a global
//! mutex, so a callback only copies the event into a crossbeam channel; the daemon's loop
//! drains the channel after `dispatch` returns and only then touches the engine (which may
//! multicast, leave, or finalize — never inside a callback).
//!
//! Group names are the uuid plus a NUL, as C names them (`strlen + 1`), so our groups and a C
//! daemon's are the same groups.

use crate::engine::{Transport, TransportEvent};
use crate::errno::Errno;
use crossbeam_channel::{unbounded, Receiver, Sender};
use rust_corosync::cpg;
use rust_corosync::{CsError, DispatchFlags, NodeId};
use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::OnceLock;

static EVENTS: OnceLock<Sender<TransportEvent>> = OnceLock::new();

fn deliver_cb(_h: &cpg::Handle, group: String, nodeid: NodeId, _pid: u32, msg: &[u8], _len: usize) {
    if let Some(tx) = EVENTS.get() {
        let _ = tx.send(TransportEvent::Deliver {
            group,
            nodeid: nodeid.into(),
            msg: msg.to_vec(),
        });
    }
}

fn confchg_cb(
    _h: &cpg::Handle,
    group: &str,
    members: Vec<cpg::Address>,
    left: Vec<cpg::Address>,
    joined: Vec<cpg::Address>,
) {
    let ids = |v: Vec<cpg::Address>| {
        v.into_iter()
            .map(|a| u32::from(a.nodeid))
            .collect::<Vec<u32>>()
    };
    if let Some(tx) = EVENTS.get() {
        let _ = tx.send(TransportEvent::Confchg {
            group: group.to_owned(),
            members: ids(members),
            left: ids(left),
            joined: ids(joined),
        });
    }
}

fn errno(e: CsError) -> Errno {
    match e {
        CsError::CsErrTryAgain => Errno::EAGAIN,
        CsError::CsErrLibrary => Errno::ENOTCONN,
        _ => Errno::EPERM,
    }
}

/// All CPG handles of this daemon.
pub struct CpgTransport {
    handles: HashMap<String, cpg::Handle>,
    rx: Receiver<TransportEvent>,
    me: Option<u32>,
    max_message: usize,
    /// Groups whose corosync connection failed.
    dead: std::collections::HashSet<String>,
}

impl CpgTransport {
    /// One per process (the callback channel is process-wide).
    pub fn new() -> CpgTransport {
        let (tx, rx) = unbounded();
        let _ = EVENTS.set(tx);
        CpgTransport {
            handles: HashMap::new(),
            rx,
            me: None,
            max_message: 64 * 1024,
            dead: Default::default(),
        }
    }

    fn name(uuid: &str) -> String {
        format!("{uuid}\0")
    }
}

impl Default for CpgTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport for CpgTransport {
    fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, String)> {
        self.handles
            .iter()
            .filter(|(g, _)| !self.dead.contains(*g))
            .filter_map(|(g, h)| cpg::fd_get(h).ok().map(|fd| (fd, g.clone())))
            // SAFETY: the fd belongs to the CPG handle in `self.handles`; a handle is finalized
            // (closing its fd) only through `&mut self`, so it stays open while `&self` lends it.
            .map(|(fd, g)| (unsafe { BorrowedFd::borrow_raw(fd) }, g))
            .collect()
    }

    /// Run the callbacks of one group's handle and return what they saw.
    fn dispatch(&mut self, uuid: &str) -> Vec<TransportEvent> {
        if let Some(h) = self.handles.get(uuid) {
            if let Err(e) = cpg::dispatch(h, DispatchFlags::All) {
                // corosync went away: stop polling this handle (requests then fail with
                // -EBADE) instead of spinning on a dead descriptor.
                common::log_error!("cpg_dispatch failed: {e}");
                if matches!(e, CsError::CsErrLibrary | CsError::CsErrBadHandle) {
                    self.dead.insert(uuid.to_owned());
                }
            }
        }
        self.rx.try_iter().collect()
    }

    fn join(&mut self, uuid: &str) -> Result<(), Errno> {
        let model = cpg::ModelData::ModelV1(cpg::Model1Data {
            flags: cpg::Model1Flags::None,
            deliver_fn: Some(deliver_cb),
            confchg_fn: Some(confchg_cb),
            totem_confchg_fn: None,
        });
        let h = cpg::initialize(&model, 0).map_err(|e| {
            common::log_error!("cpg_initialize failed:  Cannot join cluster ({e})");
            errno(e)
        })?;
        self.me = Some(cpg::local_get(&h).map_err(errno)?.into());
        if let Ok(n) = cpg::max_atomic_msgsize_get(&h) {
            self.max_message = n as usize;
        }
        cpg::join(&h, &Self::name(uuid)).map_err(|e| {
            common::log_error!("cpg_join failed:  Cannot join cluster ({e})");
            errno(e)
        })?;
        self.handles.insert(uuid.to_owned(), h);
        Ok(())
    }

    fn leave(&mut self, uuid: &str) -> Result<(), Errno> {
        let h = self.handles.get(uuid).ok_or(Errno::ENOENT)?;
        cpg::leave(h, &Self::name(uuid)).map_err(errno)
    }

    fn finalize(&mut self, uuid: &str) {
        self.dead.remove(uuid);
        // Dropping the handle finalizes it; we are never inside a callback here.
        self.handles.remove(uuid);
    }

    fn mcast(&mut self, uuid: &str, msg: &[u8]) -> Result<(), Errno> {
        let h = self.handles.get(uuid).ok_or(Errno::ENOENT)?;
        let mut tries = 0;
        loop {
            match cpg::mcast_joined(h, cpg::Guarantee::TypeAgreed, msg) {
                Ok(()) => return Ok(()),
                Err(CsError::CsErrTryAgain) if tries < 1000 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => return Err(errno(e)),
            }
        }
    }

    fn local_nodeid(&self) -> Option<u32> {
        self.me
    }

    fn max_message(&self) -> usize {
        self.max_message
    }
}
