//! The request handler: [`Polld`] ties the decoded requests to the stores and to a
//! [`Launcher`] (`launcher.rs`) that runs the lvpoll commands: the real one is
//! [`ChildWatcher`]; tests and the fuzz target plug in one that spawns nothing.

use crate::command::LvpollCommand;
use crate::launcher::Launcher;
use crate::request::{self, reason, Op, PollInit, ProgressQuery};
use crate::store::{InitResult, Outcome, Progress, Registry};
use crate::watcher::ChildWatcher;
use common::daemon::{Handler, Request, Response};
use common::{log_debug, log_error, log_info};
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::store::Entry;

/// lvmpolld's state: the stores, the lvm binary and the launcher.
pub struct Polld {
    registry: Arc<Registry>,
    binary: PathBuf,
    launcher: Arc<dyn Launcher>,
}

impl Polld {
    /// A daemon with a custom launcher (built on `registry`).
    pub fn new(binary: PathBuf, registry: Arc<Registry>, launcher: Arc<dyn Launcher>) -> Polld {
        Polld {
            registry,
            binary,
            launcher,
        }
    }

    /// The real daemon: commands are spawned and watched by a [`ChildWatcher`].
    pub fn with_child_watcher(binary: PathBuf) -> Polld {
        let registry = Arc::new(Registry::new());
        let watcher = ChildWatcher::new(Arc::clone(&registry));
        Polld::new(binary, registry, Arc::new(watcher))
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn poll_init(&self, p: PollInit) -> Response {
        let id = p.id();
        log_debug!("LVMPOLLD: ID={}", id);
        match self.registry.poll_init(&p) {
            InitResult::Joined => {
                log_info!(
                    "LVMPOLLD: {} request for {} joins the running poll",
                    p.kind.name(),
                    id
                );
            }
            InitResult::WrongType { running } => {
                log_error!(
                    "LVMPOLLD: poll operation type mismatch on LV identified by '{}': expected: {}, requested: {}",
                    id,
                    running.name(),
                    p.kind.name()
                );
                return request::reply("invalid", reason::DIFFERENT_OPERATION);
            }
            InitResult::Created(entry) => {
                let cmd = LvpollCommand::new(&self.binary, &p);
                log_info!(
                    "LVMPOLLD: {} request for {}: {}",
                    p.kind.name(),
                    id,
                    cmd.display()
                );
                if p.abort {
                    // pvmove --abort: the regular poll of the same pvmove is pointless now.
                    if let Some(running) = self.registry.running(&id, false) {
                        if self.registry.request_stop(&running) {
                            log_info!("LVMPOLLD: abort requested, stopping the poll of {}", id);
                            self.launcher.terminate(&running);
                        }
                    }
                }
                self.launcher.launch(entry, cmd);
            }
        }
        request::bare("OK")
    }

    fn progress_info(&self, q: ProgressQuery) -> Response {
        match self.registry.progress(&q.id(), q.abort, &q.lvid) {
            Progress::NotFound => request::bare("not_found"),
            Progress::InProgress => request::bare("in_progress"),
            Progress::Failed => request::reply("failed", reason::POLLING_FAILED),
            Progress::Finished(Outcome::Exited(c)) => request::finished(false, i64::from(c)),
            Progress::Finished(Outcome::Signalled(s)) => request::finished(true, i64::from(s)),
        }
    }
}

impl Handler for Polld {
    fn handle(&self, req: &Request) -> Response {
        match request::decode(req) {
            Op::PollInit(p) => self.poll_init(p),
            Op::Progress(q) => self.progress_info(q),
            Op::Dump => Response::Raw(self.registry.dump()),
            Op::Reject(r) => r,
        }
    }

    fn is_idle(&self) -> bool {
        self.registry.active() == 0
    }

    fn shutdown(&self) {
        self.launcher.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::config::{Node, SimpleField, Tree};
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Recorder {
        launched: Mutex<Vec<(Arc<Entry>, LvpollCommand)>>,
        terminated: Mutex<Vec<String>>,
    }

    impl Launcher for Recorder {
        fn launch(&self, e: Arc<Entry>, c: LvpollCommand) {
            self.launched.lock().push((e, c));
        }
        fn terminate(&self, e: &Arc<Entry>) {
            self.terminated.lock().push(e.id.clone());
        }
        fn shutdown(&self) {}
    }

    fn setup() -> (Polld, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        let p = Polld::new(
            "/sbin/lvm".into(),
            Arc::new(Registry::new()),
            Arc::clone(&rec) as Arc<dyn Launcher>,
        );
        (p, rec)
    }

    fn rq(pairs: &[(&str, &str)], ints: &[(&str, i64)]) -> Request {
        let mut nodes: Vec<Node> = pairs.iter().map(|(k, v)| Node::value(*k, *v)).collect();
        nodes.extend(ints.iter().map(|(k, v)| Node::value(*k, *v)));
        Request {
            tree: Some(Tree { nodes }),
            peer: None,
        }
    }

    fn status(r: &Response) -> String {
        match r {
            Response::Simple(f) => match &f[0].1 {
                SimpleField::Str(s) => s.clone(),
                other => format!("{other:?}"),
            },
            Response::Raw(_) => "raw".into(),
            Response::Tree(_) => "tree".into(),
            Response::Parts(_) => "parts".into(),
        }
    }

    const PV: &[(&str, &str)] = &[
        ("request", "pvmove"),
        ("lvid", "L1"),
        ("vgname", "vg"),
        ("lvname", "pvmove0"),
        ("interval", "1"),
    ];

    #[test]
    fn identical_requests_spawn_once() {
        let (d, rec) = setup();
        assert_eq!(status(&d.handle(&rq(PV, &[]))), "OK");
        assert_eq!(status(&d.handle(&rq(PV, &[]))), "OK");
        assert_eq!(rec.launched.lock().len(), 1);
        assert!(!d.is_idle());
        let prog = rq(&[("request", "progress_info"), ("lvid", "L1")], &[]);
        assert_eq!(status(&d.handle(&prog)), "in_progress");
        let e = Arc::clone(&rec.launched.lock()[0].0);
        d.registry().finish(&e, Ok(Outcome::Exited(3)));
        assert!(d.is_idle());
        assert_eq!(
            d.handle(&prog),
            Response::simple(
                "finished",
                vec![
                    ("reason", SimpleField::Str("retcode".into())),
                    ("value", SimpleField::Int(3))
                ]
            )
        );
        assert_eq!(status(&d.handle(&prog)), "not_found");
    }

    #[test]
    fn abort_stops_running_poll_of_same_lv() {
        let (d, rec) = setup();
        d.handle(&rq(PV, &[]));
        let mut abort: Vec<(&str, &str)> = PV.to_vec();
        abort[4] = ("interval", "0");
        assert_eq!(status(&d.handle(&rq(&abort, &[("abort", 1)]))), "OK");
        assert_eq!(*rec.terminated.lock(), vec!["L1".to_owned()]);
        let launched = rec.launched.lock();
        assert_eq!(launched.len(), 2);
        let argv: Vec<_> = launched[1]
            .1
            .argv
            .iter()
            .map(|a| a.to_str().unwrap())
            .collect();
        assert!(argv.contains(&"--abort"));
    }

    #[test]
    fn failed_monitoring_reports_failed_once() {
        let (d, rec) = setup();
        d.handle(&rq(PV, &[]));
        let e = Arc::clone(&rec.launched.lock()[0].0);
        d.registry().finish(&e, Err(()));
        let prog = rq(&[("request", "progress_info"), ("lvid", "L1")], &[]);
        assert_eq!(
            d.handle(&prog),
            Response::error("failed", reason::POLLING_FAILED)
        );
        assert_eq!(status(&d.handle(&prog)), "not_found");
    }

    #[test]
    fn different_type_is_refused() {
        let (d, _) = setup();
        d.handle(&rq(PV, &[]));
        let mut conv: Vec<(&str, &str)> = PV.to_vec();
        conv[0] = ("request", "convert");
        assert_eq!(
            d.handle(&rq(&conv, &[])),
            Response::error("invalid", reason::DIFFERENT_OPERATION)
        );
    }
}
