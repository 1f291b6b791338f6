//! lvmetad: the LVM metadata cache daemon of lvm2 2.02.187, as a library.
//!
//! [`Lvmetad::handle`] answers one request without any I/O; the binary (`main.rs`) plugs it into
//! `common::daemon::run`, and tests, the bench and the fuzz target call it directly.
//!
//! Modules: [`token`] (token state machine), [`global`] (global flags, get/set_global_info),
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
pub mod dump;
pub mod global;
pub mod lookup;
pub mod pv;
pub mod token;
pub mod verify;
pub mod vg;

use cache::Cache;
use common::daemon::{Handler, Request, Response};
use global::Flags;
use parking_lot::{Mutex, RwLock};
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

/// Requests that change the cache (cache write lock).
const WRITES: &[&str] = &[
    "pv_found",
    "pv_gone",
    "vg_update",
    "vg_remove",
    "set_vg_info",
    "pv_clear_all",
    "vg_clear_outdated_pvs",
];

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
    fn verify_read(&self, v: &Verifier, rq: &str, r: &Request) -> Marks {
        let marks = match rq {
            "vg_lookup" => {
                let vgid = lookup::resolve_vg(&self.cache.read(), r).map(|(u, _)| u.to_owned());
                match vgid {
                    Ok(vgid) => v.check_vg(&self.cache, &vgid),
                    Err(_) => Marks::default(),
                }
            }
            "pv_lookup" => {
                let pvid = lookup::resolve_pv(&self.cache.read(), r).map(str::to_owned);
                match pvid {
                    Ok(pvid) => v.check_pv(&self.cache, &pvid),
                    Err(_) => Marks::default(),
                }
            }
            "pv_list" | "vg_list" => v.check_all(&self.cache),
            _ => Marks::default(),
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
        {
            let mut token = self.token.lock();
            if env.request == "token_update" {
                return token.update(&env);
            }
            if let Some(refusal) = token.check(&env) {
                return refusal;
            }
            if env.request == "get_global_info" {
                return global::get_global_info(&self.flags, &mut token);
            }
        }
        let rq = env.request;
        if WRITES.contains(&rq) {
            if let (Some(v), "pv_found") = (&self.verify, rq) {
                v.bind(r);
            }
            let mut cache = self.cache.write();
            let reply = match rq {
                "pv_found" => pv::pv_found(&mut cache, &self.flags, r),
                "pv_gone" => pv::pv_gone(&mut cache, r),
                "pv_clear_all" => pv::pv_clear_all(&mut cache),
                "vg_update" => vg::vg_update(&mut cache, r),
                "vg_remove" => vg::vg_remove(&mut cache, r),
                "vg_clear_outdated_pvs" => vg::vg_clear_outdated_pvs(&mut cache, r),
                _ => vg::set_vg_info(&mut cache, r),
            };
            cache.touch_lists();
            return reply;
        }
        let marks = match &self.verify {
            Some(v) => self.verify_read(v, rq, r),
            None => Marks::default(),
        };
        let invalid = self.flags.invalid() || marks.global_invalid;
        match rq {
            "vg_lookup" => {
                lookup::vg_lookup_marked(&self.cache.read(), invalid, marks.vg_invalid, r)
            }
            "pv_lookup" => lookup::pv_lookup(&self.cache.read(), invalid, r),
            "pv_list" => lookup::pv_list(&self.cache.read(), invalid),
            "vg_list" => lookup::vg_list(&self.cache.read(), invalid),
            "dump" => {
                let cache = self.cache.read();
                let mut text = dump::dump(&cache);
                if let Some(v) = &self.verify {
                    text.push_str(verify::DUMP_HEADING);
                    text.push_str(&v.report(&cache));
                }
                Response::Raw(text)
            }
            "set_global_info" => global::set_global_info(&self.flags, r),
            _ => Response::error("failed", "request not implemented"),
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
