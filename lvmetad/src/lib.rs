//! lvmetad: the LVM metadata cache daemon of lvm2 2.02.187, as a library.
//!
//! [`Lvmetad::handle`] answers one request without any I/O; the binary (`main.rs`) plugs it into
//! `common::daemon::run`, and tests, the bench and the fuzz target call it directly.
//!
//! Modules: [`token`] (token state machine), [`global`] (global flags, get/set_global_info),
//! [`cache`] (the tables and `_update_metadata`), [`pv`] and [`vg`] (requests that change the
//! cache), [`lookup`] (read-only requests with memoized reply text), [`dump`].
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
//!
//! Order: token → (released) → cache → one memo lock. No lock is held across socket I/O: the
//! server writes the reply after `handle` returns.

pub mod cache;
pub mod compare;
pub mod dump;
pub mod global;
pub mod lookup;
pub mod pv;
pub mod token;
pub mod vg;

use cache::Cache;
use common::daemon::{Handler, Request, Response};
use global::Flags;
use parking_lot::{Mutex, RwLock};
use token::{Envelope, TokenState};

/// Protocol name and version answered by `hello`.
pub const PROTOCOL: &str = "lvmetad";
pub const PROTOCOL_VERSION: i64 = 1;

/// The daemon state.
#[derive(Debug, Default)]
pub struct Lvmetad {
    token: Mutex<TokenState>,
    flags: Flags,
    cache: RwLock<Cache>,
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
    pub fn new() -> Lvmetad {
        Lvmetad::default()
    }

    /// Answer one request (never `hello`, which the server answers).
    pub fn handle(&self, r: &Request) -> Response {
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
        let invalid = self.flags.invalid();
        match rq {
            "vg_lookup" => lookup::vg_lookup(&self.cache.read(), invalid, r),
            "pv_lookup" => lookup::pv_lookup(&self.cache.read(), invalid, r),
            "pv_list" => lookup::pv_list(&self.cache.read(), invalid),
            "vg_list" => lookup::vg_list(&self.cache.read(), invalid),
            "dump" => Response::Raw(dump::dump(&self.cache.read())),
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
