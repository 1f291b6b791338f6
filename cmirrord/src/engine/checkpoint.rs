//! Checkpoints (docs/protocol.md §7.10): a member snapshots sync bits, clean bits, the recovering
//! region and the mark list for a joiner and multicasts it in pieces below the transport's
//! message limit; the joiner loads it, becomes valid and replays what it queued meanwhile.
//!
//! Checkpoint point: a member snapshots at the joiner's join event when its own log is resumed;
//! otherwise it defers and counts the requests it applies meanwhile, and the checkpoint tells
//! the joiner to skip that many queued requests (C applies them twice).

use super::group::{GroupState, Startup};
use super::Engine;
use crate::wire::{self, Checkpoint};
use common::{log_error, log_info};

impl Engine {
    /// After applying a request: joiners waiting on us count it, and get their checkpoint once
    /// our log is resumed.
    pub(crate) fn after_request(&mut self, uuid: &str) {
        let resumed = self.log_resumed(uuid);
        let Some(g) = self.groups.get_mut(uuid) else {
            return;
        };
        if g.deferred.is_empty() {
            return;
        }
        for d in &mut g.deferred {
            d.1 += 1;
        }
        if resumed && g.state == GroupState::Valid {
            let ds = std::mem::take(&mut g.deferred);
            for (target, skip) in ds {
                self.send_checkpoint(uuid, target, skip);
            }
        }
    }

    pub(crate) fn send_checkpoint(&mut self, uuid: &str, target: u32, skip: u32) {
        let me = self.me();
        let Some(i) = self.group_log(uuid) else {
            return;
        };
        let log = &self.logs[i].log;
        let c = Checkpoint {
            region_count: log.region_count,
            recovering: log.recovering,
            skip,
            sync: log.sync_bits.to_image(),
            clean: log.clean_bits.to_image(),
            marks: log
                .marks
                .iter()
                .flat_map(|(r, ns)| ns.iter().map(move |n| (*r, *n)))
                .collect(),
        };
        let pieces = wire::split_checkpoint(&c.encode(), self.transport.max_message());
        let n = pieces.len() as u32;
        for p in pieces {
            let m = wire::checkpoint_piece_message(uuid, target, me, p);
            if let Err(e) = self.transport.mcast(uuid, &m.encode()) {
                log_error!(
                    "[{}] Failed to export checkpoint for {target}: {e}",
                    crate::short_uuid(uuid)
                );
                return;
            }
        }
        log_info!(
            "[{}] Checkpoint for node {target} sent in {n} pieces of at most {} bytes (skip {skip})",
            crate::short_uuid(uuid),
            self.transport.max_message()
        );
        if let Some(g) = self.groups.get_mut(uuid) {
            g.checkpoints_sent += 1;
            g.checkpoint_pieces_sent += n;
            g.note(format!(
                "Checkpoint data available for node {target} ({n} pieces, skip {skip})"
            ));
        }
    }

    pub(crate) fn import_checkpoint(&mut self, uuid: &str, from: u32, c: Checkpoint) {
        let Some(i) = self.group_log(uuid) else {
            return;
        };
        let log = &mut self.logs[i].log;
        if c.region_count != 0 && c.region_count != log.region_count {
            log_error!(
                "[{}] Checkpoint from {from} is for {} regions, not {}",
                crate::short_uuid(uuid),
                c.region_count,
                log.region_count
            );
            return;
        }
        if let Err(e) = log.load_checkpoint(&c.sync, &c.clean, c.recovering) {
            log_error!(
                "[{}] Failed to import checkpoint from {from}: bitmap size {} ({e})",
                crate::short_uuid(uuid),
                c.sync.len()
            );
            return;
        }
        log.marks.clear();
        for (r, n) in c.marks {
            if r < log.region_count {
                log.marks.entry(r).or_default().push(n);
            }
        }
        let g = self.groups.get_mut(uuid).expect("group exists");
        g.note(format!(
            "Checkpoint data received from {from}.  Log is now valid"
        ));
        log_info!(
            "[{}] Checkpoint data received from {from}.  Log is now valid",
            crate::short_uuid(uuid)
        );
        g.state = GroupState::Valid;
        self.flush_startup(uuid, c.skip);
    }

    /// Replay what queued up while we had no state, skipping requests the checkpoint includes.
    pub(crate) fn flush_startup(&mut self, uuid: &str, mut skip: u32) {
        let me = self.me();
        loop {
            let Some(g) = self.groups.get_mut(uuid) else {
                return;
            };
            let Some(e) = g.startup.pop_front() else {
                break;
            };
            match e {
                Startup::MemberJoin(n) => {
                    if skip > 0 {
                        continue;
                    }
                    self.member_joined(uuid, n);
                }
                Startup::Request(m) => {
                    if skip > 0 {
                        skip -= 1;
                        continue;
                    }
                    let server = m.pit_server == me;
                    self.handle_request(uuid, m, server);
                    self.after_request(uuid);
                }
            }
        }
    }
}
