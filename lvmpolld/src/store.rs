//! The two stores of polling operations (docs/protocol.md §6.4, §6.8) and the `dump` text (§6.10).
//!
//! A [`Registry`] holds the **poll** store (pvmove, convert, merge, merge_thin) and the **abort**
//! store (`pvmove --abort`). Each store maps an ID (`sysdir + lvid`) to an [`Entry`]. The same ID
//! may live in both stores at once.
//!
//! # Lock order
//! 1. a store lock (the poll store before the abort store when both are taken, as in `dump`);
//! 2. then an entry (LV) lock.
//!
//! Never take a store lock while holding an entry lock. Every change of an entry's run state
//! (pid, finished, error, outcome) and of a store's active count happens with the store lock
//! held, so holding both store locks gives a consistent snapshot. No lock is held across I/O:
//! spawning, signalling and reaping children happen outside them (see `watcher`).

use crate::request::{PollInit, PollType};
use common::{log_info, log_warn};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// How a finished lvpoll command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status (`reason = "retcode"`).
    Exited(i32),
    /// Terminating signal (`reason = "signal"`).
    Signalled(i32),
}

/// Mutable state of one polling operation (under the entry lock).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryState {
    /// PID of the lvpoll child; 0 until it is started.
    pub pid: i32,
    /// Monitoring has ended (with a result or an error).
    pub finished: bool,
    /// Monitoring failed (spawn failure, unresponsive child): reported as `failed`.
    pub error: bool,
    /// How the child ended, once known.
    pub outcome: Option<Outcome>,
    /// Poll-init requests that created or joined this operation.
    pub init_requests: u32,
    /// Someone asked for the child to be stopped (pvmove --abort of the same LV).
    pub stop_requested: bool,
}

/// One polling operation: what was asked (fixed) and how it is going (under its own lock).
#[derive(Debug)]
pub struct Entry {
    pub id: String,
    pub lvid: String,
    pub kind: PollType,
    /// `vg/lv`.
    pub lvname: String,
    pub interval: String,
    pub sysdir: Option<String>,
    /// `lvmpolld_internal_timeout` in seconds.
    pub timeout: u32,
    /// Lives in the abort store.
    pub abort: bool,
    state: Mutex<EntryState>,
}

impl Entry {
    pub fn new(p: &PollInit) -> Entry {
        Entry {
            id: p.id(),
            lvid: p.lvid.clone(),
            kind: p.kind,
            lvname: format!("{}/{}", p.vgname, p.lvname),
            interval: p.interval.clone(),
            sysdir: p.sysdir.clone(),
            timeout: p.timeout,
            abort: p.abort,
            state: Mutex::new(EntryState {
                init_requests: 1,
                ..EntryState::default()
            }),
        }
    }

    /// A copy of the run state (takes the entry lock only).
    pub fn state(&self) -> EntryState {
        self.state.lock().clone()
    }

    fn dump_into(&self, out: &mut String) {
        let st = self.state.lock().clone();
        let mut line = |key: &str, quoted: bool, value: &dyn std::fmt::Display| {
            out.push_str("\t\t");
            out.push_str(key);
            out.push_str(if quoted { "=\"" } else { "=" });
            let _ = write!(out, "{value}");
            out.push_str(if quoted { "\"\n" } else { "\n" });
        };
        line("lvid", true, &self.lvid);
        line("type", true, &self.kind.name());
        line("lvname", true, &self.lvname);
        line("lvmpolld_internal_timeout", false, &(self.timeout as i32));
        line("lvm_command_interval", true, &self.interval);
        line(
            "LVM_SYSTEM_DIR",
            true,
            &self.sysdir.as_deref().unwrap_or("<undefined>"),
        );
        line("lvm_command_pid", false, &st.pid);
        line("polling_finished", false, &u8::from(st.finished));
        line("error_occured", false, &u8::from(st.error));
        line("init_requests_count", false, &st.init_requests);
        out.push_str("\t\tlvm_command {\n");
        match st.outcome {
            None => out.push_str("\t\t\tstate=\"in_progress\"\n"),
            Some(o) => {
                let (why, v) = match o {
                    Outcome::Exited(c) => ("retcode", c),
                    Outcome::Signalled(s) => ("signal", s),
                };
                out.push_str("\t\t\tstate=\"finished\"\n\t\t\treason=\"");
                out.push_str(why);
                let _ = writeln!(out, "\"\n\t\t\tvalue={v}");
            }
        }
        out.push_str("\t\t}\n\t}\n");
    }
}

#[derive(Default)]
struct StoreInner {
    entries: BTreeMap<String, Arc<Entry>>,
    /// Operations whose monitoring has not ended.
    active: usize,
}

/// One hash table of operations with its lock.
#[derive(Default)]
pub struct Store {
    inner: Mutex<StoreInner>,
}

/// Result of a poll-init on the stores.
#[derive(Debug)]
pub enum InitResult {
    /// A new operation: the caller must start its command.
    Created(Arc<Entry>),
    /// The same operation is already running: no new command.
    Joined,
    /// Another operation type runs on that LV.
    WrongType { running: PollType },
}

/// Result of a progress query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    NotFound,
    InProgress,
    Finished(Outcome),
    Failed,
}

/// Both stores.
#[derive(Default)]
pub struct Registry {
    poll: Store,
    abort: Store,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn store(&self, abort: bool) -> &Store {
        if abort {
            &self.abort
        } else {
            &self.poll
        }
    }

    /// Register a poll-init: join a running operation, replace an uncollected result, or create.
    pub fn poll_init(&self, p: &PollInit) -> InitResult {
        let id = p.id();
        let mut store = self.store(p.abort).inner.lock();
        if let Some(e) = store.entries.get(&id).cloned() {
            let mut st = e.state.lock();
            if st.finished {
                drop(st);
                log_warn!(
                    "LVMPOLLD: Force removal of uncollected info for LV {}",
                    p.lvid
                );
                store.entries.remove(&id);
            } else if e.kind != p.kind {
                return InitResult::WrongType { running: e.kind };
            } else {
                st.init_requests += 1;
                return InitResult::Joined;
            }
        }
        let e = Arc::new(Entry::new(p));
        store.entries.insert(id, Arc::clone(&e));
        store.active += 1;
        InitResult::Created(e)
    }

    /// Answer a progress query; a finished or failed entry is removed by the first reader.
    pub fn progress(&self, id: &str, abort: bool, lvid: &str) -> Progress {
        let mut store = self.store(abort).inner.lock();
        let Some(e) = store.entries.get(id).cloned() else {
            return Progress::NotFound;
        };
        let st = e.state.lock().clone();
        if !(st.error || st.finished) {
            return Progress::InProgress;
        }
        log_info!(
            "LVMPOLLD: Polling finished. Removing related data structure for LV {}",
            lvid
        );
        store.entries.remove(id);
        if st.error {
            return Progress::Failed;
        }
        match st.outcome {
            Some(o) => Progress::Finished(o),
            None => Progress::Failed,
        }
    }

    /// Record the PID of an entry's command once it runs.
    pub fn set_pid(&self, e: &Entry, pid: i32) {
        let _store = self.store(e.abort).inner.lock();
        e.state.lock().pid = pid;
    }

    /// Publish the end of an entry's monitoring: `Ok` with how the command ended, or `Err` for a
    /// monitoring error. Only the first call for an entry counts.
    pub fn finish(&self, e: &Entry, result: Result<Outcome, ()>) {
        let mut store = self.store(e.abort).inner.lock();
        let mut st = e.state.lock();
        if st.finished {
            return;
        }
        match result {
            Ok(o) => st.outcome = Some(o),
            Err(()) => st.error = true,
        }
        st.finished = true;
        store.active = store.active.saturating_sub(1);
    }

    /// Mark that an entry's command should be stopped; returns whether it still runs.
    pub fn request_stop(&self, e: &Entry) -> bool {
        let _store = self.store(e.abort).inner.lock();
        let mut st = e.state.lock();
        st.stop_requested = true;
        !st.finished
    }

    /// The running (unfinished) entry under `id` in one store, if any.
    pub fn running(&self, id: &str, abort: bool) -> Option<Arc<Entry>> {
        let store = self.store(abort).inner.lock();
        let e = store.entries.get(id)?;
        let unfinished = !e.state.lock().finished;
        unfinished.then(|| Arc::clone(e))
    }

    /// Operations still being monitored, both stores.
    pub fn active(&self) -> usize {
        let p = self.poll.inner.lock().active;
        let a = self.abort.inner.lock().active;
        p + a
    }

    /// Number of entries (running or with an uncollected result), both stores.
    pub fn len(&self) -> usize {
        let p = self.poll.inner.lock().entries.len();
        let a = self.abort.inner.lock().entries.len();
        p + a
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw `dump` reply (no trailing newline). Entries are listed sorted by ID.
    pub fn dump(&self) -> String {
        let poll = self.poll.inner.lock();
        let abort = self.abort.inner.lock();
        let mut out = String::with_capacity(128 + 512 * (poll.entries.len() + abort.entries.len()));
        out.push_str("# Registered polling operations\n\npoll {\n");
        dump_store(&poll, &mut out);
        out.push_str("}\n\n# Registered abort operations\n\nabort {\n");
        dump_store(&abort, &mut out);
        out.push('}');
        out
    }
}

fn dump_store(s: &StoreInner, out: &mut String) {
    for (id, e) in &s.entries {
        out.push('\t');
        out.push_str(id);
        out.push_str(" {\n");
        e.dump_into(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(kind: PollType, lvid: &str, sysdir: Option<&str>, abort: bool) -> PollInit {
        PollInit {
            kind,
            lvid: lvid.into(),
            vgname: "vg".into(),
            lvname: "lv".into(),
            interval: "1".into(),
            sysdir: sysdir.map(Into::into),
            abort,
            handle_missing_pvs: false,
            timeout: 60,
        }
    }

    #[test]
    fn duplicate_joins_and_other_type_is_refused() {
        let r = Registry::new();
        let p = init(PollType::Pvmove, "A", None, false);
        let InitResult::Created(e) = r.poll_init(&p) else {
            panic!()
        };
        assert!(matches!(r.poll_init(&p), InitResult::Joined));
        assert_eq!(e.state().init_requests, 2);
        let m = init(PollType::Merge, "A", None, false);
        assert!(matches!(
            r.poll_init(&m),
            InitResult::WrongType {
                running: PollType::Pvmove
            }
        ));
        assert_eq!(r.active(), 1);
    }

    #[test]
    fn result_is_handed_out_once() {
        let r = Registry::new();
        let p = init(PollType::Convert, "B", Some("/s"), false);
        let InitResult::Created(e) = r.poll_init(&p) else {
            panic!()
        };
        assert_eq!(r.progress("B", false, "B"), Progress::NotFound);
        assert_eq!(r.progress("/sB", false, "B"), Progress::InProgress);
        r.finish(&e, Ok(Outcome::Signalled(9)));
        r.finish(&e, Ok(Outcome::Exited(0)));
        assert_eq!(r.active(), 0);
        assert_eq!(
            r.progress("/sB", false, "B"),
            Progress::Finished(Outcome::Signalled(9))
        );
        assert_eq!(r.progress("/sB", false, "B"), Progress::NotFound);
        assert!(r.is_empty());
    }

    #[test]
    fn stores_are_independent_and_errors_report_failed() {
        let r = Registry::new();
        let InitResult::Created(a) = r.poll_init(&init(PollType::Pvmove, "C", None, true)) else {
            panic!()
        };
        let InitResult::Created(_) = r.poll_init(&init(PollType::Pvmove, "C", None, false)) else {
            panic!()
        };
        assert_eq!(r.active(), 2);
        r.finish(&a, Err(()));
        assert_eq!(r.progress("C", true, "C"), Progress::Failed);
        assert_eq!(r.progress("C", false, "C"), Progress::InProgress);
    }

    #[test]
    fn finished_entry_is_replaced_by_new_init() {
        let r = Registry::new();
        let p = init(PollType::Merge, "D", None, false);
        let InitResult::Created(e) = r.poll_init(&p) else {
            panic!()
        };
        r.finish(&e, Ok(Outcome::Exited(5)));
        // even another type may take the LV once the old result is uncollected
        let q = init(PollType::MergeThin, "D", None, false);
        assert!(matches!(r.poll_init(&q), InitResult::Created(_)));
        assert_eq!(r.progress("D", false, "D"), Progress::InProgress);
    }

    #[test]
    fn dump_matches_c_layout() {
        let r = Registry::new();
        assert_eq!(
            r.dump(),
            "# Registered polling operations\n\npoll {\n}\n\n# Registered abort operations\n\nabort {\n}"
        );
        let InitResult::Created(e) =
            r.poll_init(&init(PollType::Pvmove, "E", Some("/etc/l"), true))
        else {
            panic!()
        };
        r.set_pid(&e, 42);
        r.finish(&e, Ok(Outcome::Exited(0)));
        let want = "# Registered polling operations\n\npoll {\n}\n\n# Registered abort operations\n\nabort {\n\
\t/etc/lE {\n\t\tlvid=\"E\"\n\t\ttype=\"pvmove\"\n\t\tlvname=\"vg/lv\"\n\t\tlvmpolld_internal_timeout=60\n\
\t\tlvm_command_interval=\"1\"\n\t\tLVM_SYSTEM_DIR=\"/etc/l\"\n\t\tlvm_command_pid=42\n\
\t\tpolling_finished=1\n\t\terror_occured=0\n\t\tinit_requests_count=1\n\t\tlvm_command {\n\
\t\t\tstate=\"finished\"\n\t\t\treason=\"retcode\"\n\t\t\tvalue=0\n\t\t}\n\t}\n}";
        assert_eq!(r.dump(), want);
    }
}
