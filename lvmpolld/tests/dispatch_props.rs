//! Random request sequences (a small hand-written generator) against the handler with a launcher
//! that spawns nothing: the handler never panics, every reply is one of C's, a result is handed
//! out exactly once, the active count matches the running entries, and the dump lists exactly the
//! entries that still exist.
#![forbid(unsafe_code)]

use common::config::{Node, SimpleField, Tree};
use common::daemon::{Handler, Response};
use common::test_support::{request_tree, Rng};
use lvmpolld::command::LvpollCommand;
use lvmpolld::store::{Entry, Outcome};
use lvmpolld::{Launcher, Polld, Registry};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
struct Collect(Mutex<Vec<Arc<Entry>>>);

impl Launcher for Collect {
    fn launch(&self, e: Arc<Entry>, _: LvpollCommand) {
        self.0.lock().push(e);
    }
    fn terminate(&self, _: &Arc<Entry>) {}
    fn shutdown(&self) {}
}

fn status(r: &Response) -> String {
    match r {
        Response::Simple(f) => match &f[0].1 {
            SimpleField::Str(s) => s.clone(),
            o => panic!("status not a string: {o:?}"),
        },
        Response::Raw(s) => {
            assert!(s.starts_with("# Registered polling operations\n\npoll {\n"));
            assert!(s.ends_with("}"));
            "dump".into()
        }
        Response::Tree(_) | Response::Parts(_) => {
            panic!("lvmpolld answers only with the printf writer or a raw dump")
        }
    }
}

#[test]
fn random_sequences_keep_invariants() {
    for seed in 1..=40u64 {
        let mut rng = Rng::xorshift64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let registry = Arc::new(Registry::new());
        let launched = Arc::new(Collect::default());
        let d = Polld::new(
            "/nonexistent/lvm".into(),
            Arc::clone(&registry),
            Arc::clone(&launched) as Arc<dyn Launcher>,
        );
        // what we expect each ID (store, id) to report: None = not there
        let mut model: HashMap<(bool, String), Option<Outcome>> = HashMap::new();
        let mut running: Vec<Arc<Entry>> = Vec::new();
        for _ in 0..300 {
            let lvid = rng.pick(&["A", "B", "C"]);
            let sysdir = if rng.chance(30) { Some("/etc/x") } else { None };
            let abort = rng.chance(25);
            let kind = rng.pick(&[
                "pvmove",
                "convert",
                "merge",
                "merge_thin",
                "progress_info",
                "dump",
                "bogus",
            ]);
            let mut nodes = vec![Node::value("request", kind), Node::value("lvid", lvid)];
            if let Some(s) = sysdir {
                nodes.push(Node::value("sysdir", s));
            }
            if abort {
                nodes.push(Node::value("abort", 1i64));
            }
            if !rng.chance(5) {
                nodes.push(Node::value("vgname", "vg"));
            }
            nodes.push(Node::value("lvname", "lv"));
            nodes.push(Node::value(
                "interval",
                rng.pick(&["1", "0", "+3", "-1", "x"]),
            ));
            let r = d.handle(&request_tree(Tree { nodes }));
            let st = status(&r);
            let key = (abort, format!("{}{lvid}", sysdir.unwrap_or("")));
            match kind {
                "progress_info" => {
                    let want = model.get(&key).cloned().flatten();
                    match (st.as_str(), model.get(&key)) {
                        ("not_found", None) => {}
                        ("in_progress", Some(None)) => {}
                        ("finished", Some(Some(_))) => {
                            assert!(want.is_some());
                            model.remove(&key);
                        }
                        other => panic!("seed {seed}: progress {key:?}: {other:?}"),
                    }
                }
                "dump" | "bogus" => {}
                _ => {
                    if st == "OK" {
                        model
                            .entry(key)
                            .and_modify(|v| {
                                if v.is_some() {
                                    *v = None; // uncollected result replaced by a new run
                                }
                            })
                            .or_insert(None);
                    }
                }
            }
            running.extend(launched.0.lock().drain(..));
            // finish a random running entry now and then
            if !running.is_empty() && rng.chance(30) {
                let i = rng.below(running.len());
                let e = running.swap_remove(i);
                let o = Outcome::Exited((rng.next_u64() % 4) as i32);
                registry.finish(&e, Ok(o));
                let key = (e.abort, e.id.clone());
                if let Some(v) = model.get_mut(&key) {
                    *v = Some(o);
                }
            }
            let unfinished = model.values().filter(|v| v.is_none()).count();
            assert_eq!(registry.active(), unfinished, "seed {seed}: active count");
            assert_eq!(registry.len(), model.len(), "seed {seed}: entries");
            let dump = registry.dump();
            assert_eq!(dump.matches("\t\tlvid=").count(), model.len());
        }
    }
}
