#![no_main]
//! Arbitrary bytes as one lvmpolld request: parsed as the server does, dispatched on an
//! in-memory daemon whose launcher spawns nothing. Must never panic; every reply must serialise.
//! A second pass replays the same input against state left by the first (joins, wrong types,
//! forced removal), and finishes every entry so progress_info/dump see finished states too.
#![forbid(unsafe_code)]
use common::config::{parse, DupMode};
use common::daemon::{Handler, Request};
use libfuzzer_sys::fuzz_target;
use lvmpolld::command::LvpollCommand;
use lvmpolld::store::{Entry, Outcome, Registry};
use lvmpolld::{Launcher, Polld};
use std::sync::Arc;
use std::sync::Mutex;

#[derive(Default)]
struct Collect(Mutex<Vec<Arc<Entry>>>);

impl Launcher for Collect {
    fn launch(&self, e: Arc<Entry>, _: LvpollCommand) {
        if let Ok(mut v) = self.0.lock() {
            v.push(e);
        }
    }
    fn terminate(&self, _: &Arc<Entry>) {}
    fn shutdown(&self) {}
}

fuzz_target!(|data: &[u8]| {
    let registry = Arc::new(Registry::new());
    let launched = Arc::new(Collect::default());
    let d = Polld::new(
        "/nonexistent/lvm".into(),
        Arc::clone(&registry),
        Arc::clone(&launched) as Arc<dyn Launcher>,
    );
    let req = Request {
        tree: parse(data, DupMode::KeepAll).ok(),
        peer: None,
    };
    for round in 0..3 {
        let reply = d.handle(&req);
        let _ = reply.to_payload();
        let entries: Vec<_> = match launched.0.lock() {
            Ok(mut v) => v.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for (i, e) in entries.iter().enumerate() {
            let o = if i % 2 == 0 {
                Outcome::Exited(round)
            } else {
                Outcome::Signalled(9)
            };
            registry.finish(e, if round == 1 { Err(()) } else { Ok(o) });
        }
        let _ = registry.dump();
        let _ = d.is_idle();
    }
});
