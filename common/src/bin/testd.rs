//! A tiny daemon on `common::daemon`, for the server's tests.
//!
//! Requests: `hello` (built in), `echo` (replies with the request's other fields, tree writer),
//! `sleep` with `ms = N` (holds the request in flight), `panic` (the handler panics), `busy`
//! with `on = 1|0` (what `Handler::is_idle` answers: not idle while on); anything
//! else gets `response = "failed"`, `reason = "request not implemented"`.
//!
//! Options: the shared ones (`-f -s -p -l -t`), plus `--max-message BYTES`,
//! `--max-connections N`, `--root-only`, `--shutdown-marker FILE` (written by
//! `Handler::shutdown`, to show it runs).
#![forbid(unsafe_code)]

use common::config::{Node, SimpleField, Tree};
use common::daemon::cli::{self, DaemonSpec};
use common::daemon::{Handler, Request, Response};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct TestHandler {
    shutdown_marker: Option<PathBuf>,
    busy: AtomicBool,
}

impl Handler for TestHandler {
    fn handle(&self, req: &Request) -> Response {
        match req.name() {
            "echo" => {
                let mut nodes = vec![Node::value("response", "OK")];
                if let Some(t) = &req.tree {
                    nodes.extend(t.nodes.iter().filter(|n| n.key != "request").cloned());
                }
                Response::Tree(Tree { nodes })
            }
            "sleep" => {
                let ms = req.int("ms").unwrap_or(0).clamp(0, 60_000) as u64;
                std::thread::sleep(Duration::from_millis(ms));
                Response::simple("OK", vec![("slept_ms", SimpleField::Int(ms as i64))])
            }
            "panic" => panic!("testd: panic requested"),
            "busy" => {
                self.busy.store(req.int("on") == Some(1), Ordering::SeqCst);
                Response::simple("OK", vec![])
            }
            _ => Response::error("failed", "request not implemented"),
        }
    }

    fn is_idle(&self) -> bool {
        !self.busy.load(Ordering::SeqCst)
    }

    fn shutdown(&self) {
        if let Some(p) = &self.shutdown_marker {
            let _ = std::fs::write(p, "shutdown called\n");
        }
    }
}

fn main() {
    let spec = DaemonSpec {
        name: "testd",
        protocol: "testd",
        protocol_version: 1,
        socket_env: "LVM_TESTD_SOCKET",
        default_socket: common::paths::default_socket("testd"),
        pidfile_env: "LVM_TESTD_PIDFILE",
        default_pidfile: common::paths::default_pidfile("testd"),
    };
    let mut opts = getopts::Options::new();
    cli::add_common_options(&mut opts);
    opts.optopt("", "max-message", "largest request in bytes", "BYTES");
    opts.optopt("", "max-connections", "most clients served at once", "N");
    opts.optopt("", "shutdown-marker", "file written on shutdown", "FILE");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("testd: {e}");
            std::process::exit(2);
        }
    };
    if m.opt_present("h") {
        print!("{}", opts.usage("Usage: testd [options]"));
        return;
    }
    let mut config = match cli::server_config(&spec, &m) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("testd: {e}");
            std::process::exit(2);
        }
    };
    let number = |name: &str| -> Option<usize> {
        m.opt_str(name).map(|v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("testd: bad --{name} {v:?}");
                std::process::exit(2)
            })
        })
    };
    if let Some(n) = number("max-message") {
        config.max_message = n;
    }
    if let Some(n) = number("max-connections") {
        config.max_connections = n;
    }
    let handler = TestHandler {
        shutdown_marker: m.opt_str("shutdown-marker").map(PathBuf::from),
        busy: AtomicBool::new(false),
    };
    if let Err(e) = common::daemon::run(config, Arc::new(handler)) {
        eprintln!("testd: {e}");
        std::process::exit(e.exit_code());
    }
}
