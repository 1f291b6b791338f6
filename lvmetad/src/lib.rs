//! lvmetad: the LVM metadata cache daemon of lvm2 2.02.187, as a library.
//!
//! [`Lvmetad::handle`] answers one request without any I/O; the binary (`main.rs`) plugs it into
//! `common::daemon::run`, and tests, the bench and the fuzz target call it directly.
//!
//! Modules: [`options`] (the command line; [`ctl_options`] lvmetactl's, [`scan_options`] lvmetad-scan's), [`request`] (the request name decoded into [`request::Op`]), [`token`] (token state machine), [`global`] (global flags, get/set_global_info),
//! [`cache`] (the tables and `_update_metadata`), [`pv`] and [`vg`] (requests that change the
//! cache), [`lookup`] (read-only requests with memoized reply text), [`dump`], [`verify`] (checks
//! of the cache against the disks; the only module that does I/O, and only when enabled).
//!
//! # Locking
//! - `token` (mutex): token, update owner and timeout. Taken first for every request to run the
//!   token check, then **released** before anything else is locked. token_update and
//!   get_global_info run entirely under it.
//! - `cache` (rwlock): all tables. Requests that change the cache take it for writing; lookups,
//!   lists and dump take it for reading, so they never wait for each other.
//! - per-VG memo mutex ([`cache::VgEntry`]) and the list memo mutexes: taken only while holding
//!   the cache read lock, one at a time, to build or fetch a reply text. Two lookups of
//!   different VGs take different memo locks.
//! - flags: an atomic, no lock.
//! - verification state and list-pass mutexes ([`verify::Verifier`]): leaves, taken after (never
//!   before) the cache lock; the disk reads of a verification happen with **no lock held**, before
//!   the cache lock is taken to build the reply. A structural finding drops the token afterwards
//!   (token lock alone).
//!
//! Order: token → (released) → cache → one memo lock or the verification state. No lock is held
//! across socket or disk I/O: the server writes the reply after `handle` returns.
#![forbid(unsafe_code)]

pub mod cache;
pub mod compare;
pub mod ctl_options;
pub mod dump;
pub mod global;
pub mod lookup;
pub mod options;
pub mod pv;
pub mod request;
pub mod scan_options;
pub mod token;
pub mod verify;
pub mod vg;

use cache::Cache;
use common::daemon::{Handler, Request, Response};
use global::Flags;
use parking_lot::{Mutex, RwLock};
use request::{Change, Op, Read};
use token::{Envelope, TokenState};
use verify::{Marks, Verifier};

/// Protocol name and version answered by `hello`.
pub const PROTOCOL: &str = "lvmetad";
pub const PROTOCOL_VERSION: i64 = 1;

/// The daemon state.
#[derive(Debug, Default)]
pub struct Lvmetad {
    token: Mutex<TokenState>,
    flags: Flags,
    cache: RwLock<Cache>,
    /// `None`: verification off (C's behaviour, and the library default: no I/O).
    verify: Option<Verifier>,
}

impl Lvmetad {
    /// A daemon without disk verification (answers exactly as C 2.02.187 does, no I/O).
    pub fn new() -> Lvmetad {
        Lvmetad::default()
    }

    /// A daemon that verifies its cache against the disks ([`verify`]).
    pub fn verifying() -> Lvmetad {
        Lvmetad {
            verify: Some(Verifier::new()),
            ..Lvmetad::default()
        }
    }

    /// The verification a read request gets (disk reads, no lock held).
    fn verify_read(&self, v: &Verifier, op: Read, r: &Request) -> Marks {
        let marks = match op {
            Read::VgLookup => {
                let vgid = lookup::resolve_vg(&self.cache.read(), r).map(|(u, _)| u.to_owned());
                match vgid {
                    Ok(vgid) => v.check_vg(&self.cache, &vgid),
                    Err(_) => Marks::default(),
                }
            }
            Read::PvLookup => {
                let pvid = lookup::resolve_pv(&self.cache.read(), r).map(str::to_owned);
                match pvid {
                    Ok(pvid) => v.check_pv(&self.cache, &pvid),
                    Err(_) => Marks::default(),
                }
            }
            Read::PvList | Read::VgList => v.check_all(&self.cache),
            Read::Dump => Marks::default(),
        };
        if marks.global_invalid && self.token.lock().drop_for_rescan() {
            v.note_token_drop();
        }
        marks
    }

    /// Answer one request (never `hello`, which the server answers).
    pub fn handle(&self, r: &Request) -> Response {
        // C runs an unparsable request through the token check and answers token_mismatch
        // (its token reads as "NONE"); the request is refused as bad input instead.
        if r.tree.is_none() {
            return Response::error("failed", "request could not be parsed");
        }
        let int32 = |p: &str| r.int(p).map(|v| i64::from(v as i32));
        let env = Envelope {
            request: r.name(),
            token: r.str("token").unwrap_or("NONE"),
            pid: int32("pid").unwrap_or(0),
            cmd: r.str("cmd").unwrap_or("NONE"),
            update_timeout: int32("update_timeout").unwrap_or(0),
        };
        let op = Op::from_name(env.request);
        {
            let mut token = self.token.lock();
            if op == Op::TokenUpdate {
                return token.update(&env);
            }
            if let Some(refusal) = token.check(&env) {
                return refusal;
            }
            if op == Op::GetGlobalInfo {
                return global::get_global_info(&self.flags, &mut token);
            }
        }
        match op {
            Op::SetGlobalInfo => global::set_global_info(&self.flags, r),
            Op::Change(c) => self.change(c, r),
            Op::Read(rd) => self.read(rd, r),
            // token_update and get_global_info were answered above, under the token lock.
            Op::Unknown | Op::TokenUpdate | Op::GetGlobalInfo => {
                Response::error("failed", "request not implemented")
            }
        }
    }

    /// A request that changes the cache, under the cache write lock (`pv_found` first queues
    /// the verification's label read of the PV, which happens off this path).
    fn change(&self, c: Change, r: &Request) -> Response {
        if let (Some(v), Change::PvFound) = (&self.verify, c) {
            v.bind(r);
        }
        let mut cache = self.cache.write();
        let reply = match c {
            Change::PvFound => pv::pv_found(&mut cache, &self.flags, r),
            Change::PvGone => pv::pv_gone(&mut cache, r),
            Change::PvClearAll => pv::pv_clear_all(&mut cache),
            Change::VgUpdate => vg::vg_update(&mut cache, r),
            Change::VgRemove => vg::vg_remove(&mut cache, r),
            Change::SetVgInfo => vg::set_vg_info(&mut cache, r),
            Change::VgClearOutdatedPvs => vg::vg_clear_outdated_pvs(&mut cache, r),
        };
        cache.touch_lists();
        reply
    }

    /// A request that reads the cache (after the verification's disk reads, no lock held).
    fn read(&self, rd: Read, r: &Request) -> Response {
        let marks = match &self.verify {
            Some(v) => self.verify_read(v, rd, r),
            None => Marks::default(),
        };
        let invalid = self.flags.invalid() || marks.global_invalid;
        match rd {
            Read::VgLookup => {
                lookup::vg_lookup_marked(&self.cache.read(), invalid, marks.vg_invalid, r)
            }
            Read::PvLookup => lookup::pv_lookup(&self.cache.read(), invalid, r),
            Read::PvList => lookup::pv_list(&self.cache.read(), invalid),
            Read::VgList => lookup::vg_list(&self.cache.read(), invalid),
            Read::Dump => {
                let cache = self.cache.read();
                let mut text = dump::dump(&cache);
                if let Some(v) = &self.verify {
                    text.push_str(verify::DUMP_HEADING);
                    text.push_str(&v.report(&cache));
                }
                Response::Raw(text)
            }
        }
    }
}

impl Handler for Lvmetad {
    fn handle(&self, req: &Request) -> Response {
        Lvmetad::handle(self, req)
    }
}

#[cfg(test)]
mod tests;
