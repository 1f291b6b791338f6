//! One CPG group per resumed log (docs/protocol.md §7.9–7.11): requests in total order, the lowest
//! node id serves, every node applies every request, checkpoints to joiners, leaves and resends.
//!
//! States: `Invalid` (joined, no state yet: requests are queued on the startup list),
//! `Valid`, `Leaving` (our POSTSUSPEND or DTR went out; everything but our leave is ignored).
//!
//! Checkpoints to joiners are in [`super::checkpoint`].

use super::{Engine, KernelOut};
use crate::errno::Errno;
use crate::mirror_log::LogState;
use crate::ulog::{RequestType, UlogRequest, RESPONSE_BIT};
use crate::wire::{Assembly, Checkpoint, ClogMessage};
use common::{log_error, log_info};
use std::collections::{HashMap, VecDeque};

const HISTORY: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Invalid,
    Valid,
    Leaving,
}

#[derive(Debug, Clone)]
pub(crate) enum Startup {
    Request(ClogMessage),
    MemberJoin(u32),
}

pub struct Group {
    pub uuid: String,
    /// luid of the local log instance that joined.
    pub luid: u64,
    pub state: GroupState,
    /// The server: lowest node id among members.
    pub lowest: Option<u32>,
    pub members: Vec<u32>,
    pub(crate) startup: VecDeque<Startup>,
    /// Our own requests waiting for the server's response (matched on seq).
    pub(crate) working: Vec<UlogRequest>,
    /// Joiners waiting for our log to be resumed, with the requests applied since their join.
    pub(crate) deferred: Vec<(u32, u32)>,
    delay: u32,
    resend: bool,
    assembly: HashMap<u32, Assembly>,
    history: VecDeque<String>,
    /// Checkpoints sent and received (for tests and the dump).
    pub checkpoints_sent: u32,
    pub checkpoint_pieces_sent: u32,
}

impl Group {
    pub fn new(uuid: &str, luid: u64) -> Group {
        Group {
            uuid: uuid.to_owned(),
            luid,
            state: GroupState::Invalid,
            lowest: None,
            members: vec![],
            startup: VecDeque::new(),
            working: vec![],
            deferred: vec![],
            delay: 0,
            resend: false,
            assembly: HashMap::new(),
            history: VecDeque::new(),
            checkpoints_sent: 0,
            checkpoint_pieces_sent: 0,
        }
    }

    pub(crate) fn note(&mut self, s: String) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(s);
    }

    fn set_members(&mut self, members: &[u32]) {
        self.members = members.to_vec();
        self.lowest = members.iter().copied().min();
    }

    pub fn dump(&self) -> Vec<String> {
        let mut out = vec![format!("{}::", crate::short_uuid(&self.uuid))];
        out.push(format!(
            "  lowest_id         : {}",
            self.lowest.unwrap_or(0xDEAD)
        ));
        let st = match self.state {
            GroupState::Invalid => "INVALID",
            GroupState::Valid => "VALID",
            GroupState::Leaving => "LEAVING",
        };
        out.push(format!("  state             : {st}"));
        out.push(format!("  delay             : {}", self.delay));
        out.push(format!("  resend_requests   : {}", self.resend as u8));
        out.push(format!("  checkpoints_needed: {}", self.deferred.len()));
        out.push("  Working list:".into());
        for r in &self.working {
            out.push(format!(
                "  {}/{}",
                crate::ulog::type_name(r.request_type),
                r.seq
            ));
        }
        out.push("  Startup list:".into());
        for s in &self.startup {
            match s {
                Startup::Request(m) => out.push(format!(
                    "  {}/{}",
                    crate::ulog::type_name(m.req.request_type),
                    m.req.seq
                )),
                Startup::MemberJoin(n) => out.push(format!("  DM_ULOG_MEMBER_JOIN/{n}")),
            }
        }
        out.push("Command History:".into());
        for (i, h) in self.history.iter().enumerate() {
            out.push(format!("{i}) {h}"));
        }
        out
    }
}

impl Engine {
    /// Multicast a request for its log's group. Errors: ENOENT (no group), EINVAL (leaving),
    /// EBADE (transport failure).
    pub(crate) fn cluster_send(
        &mut self,
        mut req: UlogRequest,
        originator: u32,
    ) -> Result<(), Errno> {
        let uuid = req.uuid_str();
        let Some(g) = self.groups.get(&uuid) else {
            return Err(Errno::ENOENT);
        };
        if g.state == GroupState::Leaving {
            return Err(Errno::EINVAL);
        }
        req.luid = 0;
        let msg = ClogMessage {
            originator,
            pit_server: 0,
            req,
        };
        self.transport.mcast(&uuid, &msg.encode()).map_err(|e| {
            log_error!("cpg_mcast_joined error: {e}");
            Errno::EBADE
        })
    }

    /// Our POSTSUSPEND or DTR: leave the group (the leave completes in `confchg`).
    pub(crate) fn destroy_group(&mut self, uuid: &str) {
        let Some(g) = self.groups.get_mut(uuid) else {
            return;
        };
        if g.state == GroupState::Leaving {
            return;
        }
        g.state = GroupState::Leaving;
        g.startup.clear();
        if self.transport.leave(uuid).is_err() {
            log_error!("Error leaving CPG!");
        }
    }

    /// A message delivered in total order from `nodeid`.
    pub fn delivered(&mut self, uuid: &str, nodeid: u32, bytes: &[u8]) {
        use RequestType::*;
        if !self.groups.contains_key(uuid) {
            // Late deliveries after our own leave (same dispatch batch) land here.
            common::log_debug!("Unable to find clog_cpg for cluster message");
            return;
        }
        let mut msg = match ClogMessage::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                log_error!("[{}] {e}", crate::short_uuid(uuid));
                return;
            }
        };
        if msg.req.uuid != uuid.as_bytes() {
            log_error!(
                "[{}] Stray message for another log",
                crate::short_uuid(uuid)
            );
            return;
        }
        let me = self.me();
        let response = msg.req.is_response();
        let Some(t) = msg.req.rtype() else {
            log_error!(
                "[{}] Unknown cluster message type {}",
                crate::short_uuid(uuid),
                msg.req.request_type
            );
            return;
        };
        let g = self.groups.get_mut(uuid).expect("checked above");
        if nodeid == me
            && !response
            && !matches!(
                t,
                Resume | ClearRegion | CheckpointReady | CheckpointPart | MemberJoin
            )
        {
            g.working.push(msg.req.clone());
        }
        if t == Postsuspend && !response && nodeid != me {
            // Another node is leaving: if it serves, our outstanding requests need a new server.
            if nodeid < me {
                if Some(nodeid) == g.lowest {
                    g.resend = true;
                }
                g.delay += 1;
            }
            g.note(format!("{nodeid} is leaving"));
            return;
        }
        if g.state == GroupState::Leaving {
            return;
        }
        match t {
            CheckpointReady | CheckpointPart if !response => {
                if msg.originator != me || g.state != GroupState::Invalid {
                    if t == CheckpointPart {
                        g.assembly.remove(&nodeid);
                    }
                    return;
                }
                let image = if t == CheckpointReady {
                    Checkpoint::decode_c(&msg.req.data)
                } else {
                    match g.assembly.entry(nodeid).or_default().add(&msg.req.data) {
                        Ok(None) => return,
                        Ok(Some(img)) => {
                            g.assembly.remove(&nodeid);
                            Checkpoint::decode(&img)
                        }
                        Err(e) => Err(e),
                    }
                };
                match image {
                    Ok(c) => self.import_checkpoint(uuid, nodeid, c),
                    Err(e) => log_error!(
                        "[{}] Failed to import checkpoint from {nodeid}: {e}",
                        crate::short_uuid(uuid)
                    ),
                }
                return;
            }
            MemberJoin => return,
            _ => {}
        }
        if response {
            if msg.originator == me {
                self.handle_response(uuid, msg.req);
            }
            return;
        }
        msg.originator = nodeid;
        if g.state == GroupState::Invalid {
            msg.pit_server = g.lowest.unwrap_or(0);
            g.startup.push_back(Startup::Request(msg));
            return;
        }
        let server = g.lowest == Some(me);
        self.handle_request(uuid, msg, server);
        self.after_request(uuid);
        self.try_resend(uuid);
    }

    /// The server's answer to one of our requests: back to our kernel.
    fn handle_response(&mut self, uuid: &str, mut req: UlogRequest) {
        let g = self.groups.get_mut(uuid).expect("group exists");
        req.request_type &= !RESPONSE_BIT;
        let Some(pos) = g
            .working
            .iter()
            .position(|w| w.seq == req.seq && w.request_type == req.request_type)
        else {
            log_error!(
                "[{}] No match for cluster response: {}:{}",
                crate::short_uuid(uuid),
                crate::ulog::type_name(req.request_type),
                req.seq
            );
            return;
        };
        let orig = g.working.remove(pos);
        g.note(format!(
            "SEQ#={}, TYPE={}, RESP=YES, error={}",
            req.seq,
            crate::ulog::type_name(req.request_type),
            req.error
        ));
        let mut reply = orig;
        reply.error = req.error;
        reply.data = req.data;
        self.out.push(KernelOut::Reply(reply));
    }

    /// Run a delivered request on our copy of the log; the server answers.
    pub(crate) fn handle_request(&mut self, uuid: &str, msg: ClogMessage, server: bool) {
        let me = self.me();
        let mut req = msg.req;
        let t = req.rtype();
        if t == Some(RequestType::Resume) {
            if msg.originator == me {
                let err = match self.group_log(uuid) {
                    Some(i) => self.logs[i].log.resume(),
                    None => crate::errno::wire(Errno::EINVAL),
                };
                req.data.clear();
                // The kernel needs its own luid back.
                if let Some(i) = self.group_log(uuid) {
                    req.luid = self.logs[i].luid;
                }
                self.reply(req, err);
            }
            return;
        }
        self.delivered += 1;
        let err = self.cluster_request(&mut req, msg.originator, server);
        req.set_error(err);
        if let Some(g) = self.groups.get_mut(uuid) {
            g.note(format!(
                "SEQ#={}, TYPE={}, ORIG={}, RESP=NO",
                req.seq,
                crate::ulog::type_name(req.request_type),
                msg.originator
            ));
        }
        if server
            && !matches!(
                t,
                Some(RequestType::ClearRegion) | Some(RequestType::Postsuspend)
            )
        {
            req.request_type |= RESPONSE_BIT;
            if let Err(e) = self.cluster_send(req, msg.originator) {
                log_error!("cluster_send failed: {e}");
            }
        }
    }

    pub(crate) fn member_joined(&mut self, uuid: &str, n: u32) {
        let resumed = self.log_resumed(uuid);
        let Some(g) = self.groups.get_mut(uuid) else {
            return;
        };
        if g.state == GroupState::Valid && g.startup.is_empty() {
            if resumed {
                self.send_checkpoint(uuid, n, 0);
            } else {
                g.deferred.push((n, 0));
            }
        } else {
            g.startup.push_back(Startup::MemberJoin(n));
        }
    }

    /// A membership change of group `uuid`.
    pub fn confchg(&mut self, uuid: &str, members: &[u32], left: &[u32], joined: &[u32]) {
        let me = self.me();
        if !self.groups.contains_key(uuid) {
            log_error!("Unable to find match for CPG config callback");
            return;
        }
        for &l in left {
            if l == me {
                self.own_leave_done(uuid);
                return;
            }
            self.member_left(uuid, l, members);
        }
        for &j in joined {
            let g = self.groups.get_mut(uuid).expect("checked");
            let old = g.lowest;
            g.set_members(members);
            g.note(format!(
                "+++  UUID={}  {j} join  +++",
                crate::short_uuid(uuid)
            ));
            if j == me {
                if members.len() == 1 {
                    g.state = GroupState::Valid;
                }
            } else {
                // Joiners get a checkpoint from every valid member (the joiner takes the first).
                self.member_joined(uuid, j);
            }
            let g = self.groups.get_mut(uuid).expect("checked");
            if old != g.lowest {
                log_info!(
                    "[{}]  Server change {:?} -> {:?} ({j} joined)",
                    crate::short_uuid(uuid),
                    old,
                    g.lowest
                );
            }
        }
        if left.is_empty() && joined.is_empty() {
            if let Some(g) = self.groups.get_mut(uuid) {
                g.set_members(members);
            }
        }
        self.try_resend(uuid);
    }

    fn member_left(&mut self, uuid: &str, l: u32, members: &[u32]) {
        let me = self.me();
        let luid = self.groups.get(uuid).map(|g| g.luid);
        if let Some(i) = luid.and_then(|luid| self.find(uuid, luid, Some(true))) {
            let log = &mut self.logs[i].log;
            log.forget_recoverer(l);
            // The one node still asking for resync work may be the one that left; the others
            // were told "someone is recovering" and stay quiet until woken.
            if log.state == LogState::Resumed && log.sync_count < log.region_count {
                self.wakes.push(uuid.to_owned());
            }
        }
        let g = self.groups.get_mut(uuid).expect("checked");
        g.note(format!(
            "---  UUID={}  {l} left  ---",
            crate::short_uuid(uuid)
        ));
        g.deferred.retain(|d| d.0 != l);
        g.startup
            .retain(|s| !matches!(s, Startup::MemberJoin(n) if *n == l));
        g.assembly.remove(&l);
        if l < me {
            g.delay = g.delay.saturating_sub(1);
            if g.delay == 0 && g.working.is_empty() {
                g.resend = false;
            }
        }
        let old = g.lowest;
        g.set_members(members);
        // A server that vanished without a POSTSUSPEND (crash) leaves requests unanswered too.
        if old == Some(l) && !g.working.is_empty() {
            g.resend = true;
        }
        if old != g.lowest {
            log_info!(
                "[{}]  Server change {:?} -> {:?} ({l} left)",
                crate::short_uuid(uuid),
                old,
                g.lowest
            );
        }
        if g.state == GroupState::Invalid {
            let waiting = 1 + g
                .startup
                .iter()
                .filter(|s| matches!(s, Startup::MemberJoin(_)))
                .count();
            if waiting == members.len() {
                // Nobody left who could send us a checkpoint: act as the first member.
                g.state = GroupState::Valid;
                self.flush_startup(uuid, 0);
            }
        }
    }

    /// Our own leave completed: answer POSTSUSPEND, the log goes back to pending.
    fn own_leave_done(&mut self, uuid: &str) {
        let Some(g) = self.groups.remove(uuid) else {
            return;
        };
        if let Some(i) = self.find(uuid, g.luid, Some(true)) {
            let e = &mut self.logs[i];
            e.official = false;
            e.log.left_cluster();
        }
        for mut r in g.working {
            if r.rtype() == Some(RequestType::Postsuspend) {
                r.luid = g.luid;
                self.reply(r, 0);
            }
        }
        self.transport.finalize(uuid);
    }

    /// Re-send our unanswered requests to a new server once no lower node is still leaving.
    fn try_resend(&mut self, uuid: &str) {
        let Some(g) = self.groups.get_mut(uuid) else {
            return;
        };
        if !g.resend || g.delay > 0 || g.state != GroupState::Valid {
            return;
        }
        g.resend = false;
        let work = std::mem::take(&mut g.working);
        for r in work {
            if r.rtype() == Some(RequestType::SetRegionSync) {
                // Every node applied it already; only the answer was missing.
                let mut r = r;
                r.data.clear();
                self.reply(r, 0);
            } else if let Err(e) = self.cluster_send(r.clone(), 0) {
                self.reply(r, crate::errno::wire(e));
            }
        }
    }
}
