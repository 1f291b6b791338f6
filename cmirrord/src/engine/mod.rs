//! The daemon's state machine: logs known by uuid + luid, the kernel request paths (local or
//! through the cluster), and one CPG group per resumed log ([`group`]).
//!
//! Everything is driven by calls — [`Engine::kernel_request`], [`Engine::delivered`],
//! [`Engine::confchg`] — and talks to the world only through [`Transport`] (CPG or the
//! simulated bus) and the queue of kernel replies ([`Engine::take_kernel_out`]). One thread owns
//! the engine; there are no locks.
//!
//! Identity: a log is found by uuid, and by luid too when the kernel gives one (luid ≠ 0). The
//! luid never leaves the node: it is zeroed before a request is multicast, and cluster-side
//! lookups use the luid of the instance that joined the group.
#![forbid(unsafe_code)]

mod checkpoint;
mod group;
#[cfg(test)]
mod tests;

use crate::errno::{wire, Errno};
use crate::mirror_log::{self, DiskLog, LogState, MirrorLog};
use crate::ulog::{payload, RequestType, UlogRequest, REQUEST_MASK};
use common::{log_error, log_info};
use std::collections::HashMap;

pub use group::{Group, GroupState};

/// `-EINVAL` as the reply code of the functions that return one.
const EINVAL: i32 = wire(Errno::EINVAL);

/// What the transport saw happen in a group (CPG callbacks, copied out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    Deliver {
        group: String,
        nodeid: u32,
        msg: Vec<u8>,
    },
    Confchg {
        group: String,
        members: Vec<u32>,
        left: Vec<u32>,
        joined: Vec<u32>,
    },
}

/// The cluster transport: one group per log uuid.
pub trait Transport {
    /// (fd, group) pairs to poll; readable means [`Transport::dispatch`] has work. The fds are
    /// borrowed from the transport, so none can outlive the handle that owns it.
    fn poll_fds(&self) -> Vec<(std::os::fd::BorrowedFd<'_>, String)> {
        vec![]
    }
    /// Collect the events of one group (never runs engine code itself).
    fn dispatch(&mut self, _group: &str) -> Vec<TransportEvent> {
        vec![]
    }
    /// Join the group `uuid` (after this, our own join is reported through `confchg`).
    fn join(&mut self, uuid: &str) -> Result<(), Errno>;
    /// Leave the group; our own leave comes back through `confchg`.
    fn leave(&mut self, uuid: &str) -> Result<(), Errno>;
    /// Release the group's resources after our own leave was reported.
    fn finalize(&mut self, uuid: &str);
    /// Multicast `msg` to the group in total order (delivered to ourselves too).
    fn mcast(&mut self, uuid: &str, msg: &[u8]) -> Result<(), Errno>;
    /// Our node id, once known.
    fn local_nodeid(&self) -> Option<u32>;
    /// Largest message that goes out in one piece.
    fn max_message(&self) -> usize;
}

/// Opens the log device named in a `clustered-disk` CTR (path or `MAJ:MIN`).
pub type DiskOpener = Box<dyn FnMut(&str) -> Result<Box<dyn DiskLog>, Errno>>;

/// What goes back to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelOut {
    /// The request with `error` and `data` filled in.
    Reply(UlogRequest),
    /// A length-0 ack for `seq` with a positive errno (0 = ok).
    Ack { seq: u32, error: u32 },
}

/// A log instance on this node.
pub struct LogEntry {
    pub uuid: String,
    pub luid: u64,
    /// On the official list (joined its group) rather than pending.
    pub official: bool,
    pub log: MirrorLog,
}

pub struct Engine {
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) groups: HashMap<String, Group>,
    pub(crate) transport: Box<dyn Transport>,
    opener: DiskOpener,
    out: Vec<KernelOut>,
    /// Logs whose local mirror should be woken to ask for resync work (see [`crate::wake`]).
    wakes: Vec<String>,
    /// Cluster requests delivered to this node (every node sees every request of its groups).
    pub(crate) delivered: u64,
}

fn uuid_matches(e: &LogEntry, uuid: &str, luid: u64) -> bool {
    e.uuid == uuid && (luid == 0 || luid == e.luid)
}

impl Engine {
    pub fn new(transport: Box<dyn Transport>, opener: DiskOpener) -> Engine {
        Engine {
            logs: vec![],
            groups: HashMap::new(),
            transport,
            opener,
            out: vec![],
            wakes: vec![],
            delivered: 0,
        }
    }

    pub fn transport(&mut self) -> &mut dyn Transport {
        self.transport.as_mut()
    }

    /// Feed one transport event to the group it belongs to.
    pub fn handle_event(&mut self, e: TransportEvent) {
        match e {
            TransportEvent::Deliver { group, nodeid, msg } => self.delivered(&group, nodeid, &msg),
            TransportEvent::Confchg {
                group,
                members,
                left,
                joined,
            } => self.confchg(&group, &members, &left, &joined),
        }
    }

    /// Kernel replies produced so far.
    pub fn take_kernel_out(&mut self) -> Vec<KernelOut> {
        std::mem::take(&mut self.out)
    }

    /// Logs whose local mirror the daemon should wake (a member left mid-resync: it may have
    /// been the one node still asking for resync work).
    pub fn take_wakes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.wakes)
    }

    /// Whether any log exists (official or pending): then the daemon refuses to exit.
    pub fn has_logs(&self) -> bool {
        !self.logs.is_empty()
    }

    pub fn logs(&self) -> &[LogEntry] {
        &self.logs
    }

    pub fn group(&self, uuid: &str) -> Option<&Group> {
        self.groups.get(uuid)
    }

    pub(crate) fn me(&self) -> u32 {
        self.transport.local_nodeid().unwrap_or(0)
    }

    pub(crate) fn find(&self, uuid: &str, luid: u64, official: Option<bool>) -> Option<usize> {
        self.logs.iter().position(|e| {
            uuid_matches(e, uuid, luid) && (official.is_none() || official == Some(e.official))
        })
    }

    /// Official first, then pending (what C does for the requests that allow pending logs).
    fn find_any(&self, uuid: &str, luid: u64) -> Option<usize> {
        self.find(uuid, luid, Some(true))
            .or_else(|| self.find(uuid, luid, Some(false)))
    }

    pub(crate) fn reply(&mut self, mut req: UlogRequest, error: i32) {
        req.set_error(error);
        self.out.push(KernelOut::Reply(req));
    }

    /// One request from the kernel.
    pub fn kernel_request(&mut self, mut req: UlogRequest) {
        use RequestType::*;
        let raw = req.request_type & REQUEST_MASK;
        if raw == 0 {
            // A garbled transmission: ask the kernel to resend.
            self.out.push(KernelOut::Ack {
                seq: req.seq,
                error: libc::EAGAIN as u32,
            });
            return;
        }
        let Some(t) = RequestType::from_u32(raw).filter(|t| t.is_kernel()) else {
            log_error!(
                "Invalid log request received ({}), ignoring.",
                req.request_type
            );
            return;
        };
        req.request_type = raw;
        match t {
            Ctr | Dtr | GetRegionSize | InSync | GetSyncCount | StatusTable | Presuspend => {
                let e = self.local_request(&mut req, t);
                self.reply(req, e);
            }
            Resume => match self.local_resume(&req) {
                Err(e) => self.reply(req, wire(e)),
                Ok(()) => {
                    if let Err(e) = self.cluster_send(req.clone(), 0) {
                        self.reply(req, wire(e));
                    }
                }
            },
            ClearRegion => {
                self.out.push(KernelOut::Ack {
                    seq: req.seq,
                    error: 0,
                });
                let _ = self.cluster_send(req, 0);
            }
            _ => {
                if let Err(e) = self.cluster_send(req.clone(), 0) {
                    req.data.clear();
                    self.reply(req, wire(e));
                }
            }
        }
    }

    /// Requests answered on this node alone. Fills `req.data`; returns the error (0 = ok).
    fn local_request(&mut self, req: &mut UlogRequest, t: RequestType) -> i32 {
        use RequestType::*;
        let uuid = req.uuid_str();
        let luid = req.luid;
        let result = match t {
            Ctr => return self.ctr(req),
            Dtr => return self.dtr(&uuid, luid),
            Presuspend => self.find(&uuid, luid, Some(true)).map(|i| {
                self.logs[i].log.presuspend();
                vec![]
            }),
            GetRegionSize => self
                .find_any(&uuid, luid)
                .map(|i| payload::one(self.logs[i].log.region_size)),
            GetSyncCount => self
                .find_any(&uuid, luid)
                .map(|i| payload::one(self.logs[i].log.get_sync_count())),
            StatusTable => match self.find_any(&uuid, luid) {
                Some(i) => match self.logs[i].log.status_table() {
                    Ok(s) => Some(s.into_bytes()),
                    Err(e) => return wire(e),
                },
                None => None,
            },
            InSync => match self.find(&uuid, luid, Some(true)) {
                Some(i) => {
                    let region = match payload::region(&req.data, "DM_ULOG_IN_SYNC") {
                        Ok(r) => r,
                        Err(_) => return EINVAL,
                    };
                    match self.logs[i].log.in_sync_query(region) {
                        Ok(b) => Some(payload::one(b as u64)),
                        Err(e) => return wire(e),
                    }
                }
                None => None,
            },
            _ => None,
        };
        match result {
            Some(d) => {
                req.data = d;
                0
            }
            None => EINVAL,
        }
    }

    fn ctr(&mut self, req: &mut UlogRequest) -> i32 {
        let uuid = req.uuid_str();
        let args = match mirror_log::parse_ctr(&req.data) {
            Ok(a) => a,
            Err(why) => {
                log_error!("{why}");
                log_error!("Failed to create cluster log ({uuid})");
                return EINVAL;
            }
        };
        // v2: a disk log answers with its device so the kernel can take a reference on it.
        let reply = match (&args.disk, req.version > 1) {
            (Some(d), true) => {
                let mut v = d.as_bytes().to_vec();
                v.push(0);
                v
            }
            _ => vec![],
        };
        req.data = reply;
        if uuid.len() > 126 {
            log_error!("Cannot use too long UUID {uuid}.");
            return EINVAL;
        }
        if self.find(&uuid, req.luid, None).is_some() {
            log_error!(
                "[{}/{}] Log already exists, unable to create.",
                crate::short_uuid(&uuid),
                req.luid
            );
            return EINVAL;
        }
        let disk = match &args.disk {
            Some(d) => match (self.opener)(d) {
                Ok(disk) => Some(disk),
                Err(e) => {
                    log_error!("Unable to find path to device {d}");
                    return wire(e);
                }
            },
            None => None,
        };
        let log = MirrorLog::new(&args, disk);
        self.logs.push(LogEntry {
            uuid,
            luid: req.luid,
            official: false,
            log,
        });
        0
    }

    fn dtr(&mut self, uuid: &str, luid: u64) -> i32 {
        let i = if let Some(i) = self.find(uuid, luid, Some(true)) {
            log_error!("[{}] DTR before SUS: leaving CPG", crate::short_uuid(uuid));
            self.destroy_group(uuid);
            i
        } else if let Some(i) = self.find(uuid, luid, Some(false)) {
            i
        } else {
            log_error!("clog_dtr called on log that is not official or pending");
            return EINVAL;
        };
        self.logs.remove(i);
        0
    }

    /// The local half of RESUME: a pending log joins its group and becomes official.
    fn local_resume(&mut self, req: &UlogRequest) -> Result<(), Errno> {
        let uuid = req.uuid_str();
        if self.find(&uuid, req.luid, Some(true)).is_some() {
            return Ok(());
        }
        let Some(i) = self.find(&uuid, req.luid, Some(false)) else {
            log_error!("clog_resume called on log that is not official or pending");
            return Err(Errno::EINVAL);
        };
        if self.groups.contains_key(&uuid) {
            log_error!("Log entry already exists: {uuid}");
            return Err(Errno::EEXIST);
        }
        if let Err(e) = self.transport.join(&uuid) {
            log_error!("clog_resume:  Failed to create cluster CPG ({e})");
            return Err(Errno::EPERM);
        }
        let luid = self.logs[i].luid;
        self.groups.insert(uuid.clone(), Group::new(&uuid, luid));
        self.logs[i].official = true;
        Ok(())
    }

    /// Index of the official log a group serves.
    pub(crate) fn group_log(&self, uuid: &str) -> Option<usize> {
        let luid = self.groups.get(uuid).map_or(0, |g| g.luid);
        self.find(uuid, luid, Some(true))
    }

    pub(crate) fn log_resumed(&self, uuid: &str) -> bool {
        self.group_log(uuid)
            .is_some_and(|i| self.logs[i].log.state == LogState::Resumed)
    }

    /// A request replicated through the cluster, run on every node (`server`: we answer it).
    /// Fills `req.data`; returns the error.
    pub(crate) fn cluster_request(&mut self, req: &mut UlogRequest, who: u32, server: bool) -> i32 {
        use RequestType::*;
        let uuid = req.uuid_str();
        let Some(t) = req.rtype() else { return EINVAL };
        let Some(i) = self.group_log(&uuid).or_else(|| {
            // STATUS_INFO, like C, also answers for a pending log.
            if t == StatusInfo {
                self.find(&uuid, 0, Some(false))
            } else {
                None
            }
        }) else {
            return EINVAL;
        };
        let data = std::mem::take(&mut req.data);
        let log = &mut self.logs[i].log;
        let name = t.name();
        let r: Result<Vec<u8>, Errno> = match t {
            IsClean => payload::region(&data, name)
                .map_err(|_| Errno::EINVAL)
                .and_then(|r| log.is_clean(r))
                .map(|b| payload::one(b as u64)),
            InSync => payload::region(&data, name)
                .map_err(|_| Errno::EINVAL)
                .and_then(|r| log.in_sync_query(r))
                .map(|b| payload::one(b as u64)),
            Flush => log.flush(server).map(|_| vec![]),
            MarkRegion => payload::regions(&data, name)
                .map_err(|_| Errno::EINVAL)
                .and_then(|rs| log.mark(&rs, who))
                .map(|_| vec![]),
            ClearRegion => payload::regions(&data, name)
                .map_err(|_| Errno::EINVAL)
                .and_then(|rs| log.clear(&rs, who))
                .map(|_| vec![]),
            GetResyncWork => Ok(match log.get_resync_work(who) {
                Some(r) => payload::pair(1, r),
                None => payload::pair(0, 0),
            }),
            SetRegionSync => payload::region_sync(&data)
                .map_err(|_| Errno::EINVAL)
                .and_then(|(r, s)| log.set_region_sync(r, s != 0, who))
                .map(|_| vec![]),
            StatusInfo => log.status_info().map(String::into_bytes),
            IsRemoteRecovering => payload::region(&data, name)
                .map_err(|_| Errno::EINVAL)
                .and_then(|r| log.is_remote_recovering(r))
                .map(|(rec, hint)| payload::pair(rec as u64, hint)),
            GetRegionSize => Ok(payload::one(log.region_size)),
            GetSyncCount => Ok(payload::one(log.get_sync_count())),
            StatusTable => log.status_table().map(String::into_bytes),
            Postsuspend => {
                log.postsuspend();
                self.destroy_group(&uuid);
                Ok(vec![])
            }
            _ => {
                log_error!("Unknown request");
                Err(Errno::EINVAL)
            }
        };
        match r {
            Ok(d) => {
                req.data = d;
                0
            }
            Err(e) => {
                req.data.clear();
                wire(e)
            }
        }
    }

    /// SIGUSR1: the log and cluster state, as C's `log_debug` and `cluster_debug` print it.
    pub fn dump(&self) -> Vec<String> {
        let mut out = vec![
            String::new(),
            "LOG COMPONENT DEBUGGING::".into(),
            "Official log list:".into(),
        ];
        out.push("Pending log list:".into());
        for e in self.logs.iter().filter(|e| !e.official) {
            out.extend(e.log.dump(&e.uuid, false));
        }
        for e in self.logs.iter().filter(|e| e.official) {
            out.extend(e.log.dump(&e.uuid, true));
        }
        out.push(String::new());
        out.push("CLUSTER COMPONENT DEBUGGING::".into());
        out.push(format!("Cluster requests delivered: {}", self.delivered));
        let mut names: Vec<&String> = self.groups.keys().collect();
        names.sort();
        for n in names {
            out.extend(self.groups[n].dump());
        }
        out
    }

    /// Leave every group at once (daemon shutdown with logs still present).
    pub fn leave_all(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for n in names {
            let _ = self.transport.leave(&n);
            self.transport.finalize(&n);
            self.groups.remove(&n);
        }
        log_info!("left all cluster groups");
    }
}
