//! libdaemon: the socket protocol every lvm2 daemon speaks (docs/protocol.md §1).
//!
//! - [`framing`]: messages end with `"\n##\n"`; a reader that keeps pipelined messages apart and
//!   caps their size.
//! - [`server`]: the threaded UNIX-socket server (socket rules, pidfile, daemonize, signals, idle
//!   timeout, the built-in `hello`). A daemon supplies a [`Handler`] and nothing else.
//! - [`server_config`]: what a daemon tells the server ([`ServerConfig`]) and how it fails
//!   ([`ServerError`]).
//! - [`client`]: connect, `hello` handshake, request/reply.
//! - [`log`]: `-l` log types to stderr (foreground) or syslog.
//! - [`cli`]: the options every daemon shares (`-f -s -p -l -t -h -V`).
//! - [`process`]: the locked pidfile and daemonizing with a readiness pipe (cmirrord uses them too).
//! - private: `listen` (the listening socket and lvm2's stale-socket rules), `conn` (connection
//!   threads and their registry), `sys` (every `unsafe` call: signals, fork, pidfile lock, fd 3,
//!   the allocator's tuning and a thread's idle priority, re-exported as [`tune_allocator`] and
//!   [`run_when_idle`]).
//!
//! User-facing behaviour and the differences from C are in `common/README-daemon.md`.
//!
//! A request's way: socket -> framing -> `config::parse` (KeepAll mode) -> [`Request`] ->
//! built-in `hello` or [`Handler::handle`] -> [`Response`] -> writer -> framing -> socket.

pub mod cli;
pub mod client;
pub mod framing;
pub mod log;
pub mod process;
pub mod server;
pub mod server_config;

mod conn;
mod listen;
// The unsafe fence: the only module here allowed unsafe code (fork, signals, fd adoption).
#[allow(unsafe_code)]
mod sys;

use crate::config::{self, SimpleField, Tree};
use std::sync::Arc;

pub use client::{Client, ClientError};
pub use server::{request_shutdown, run};
pub use server_config::{ServerConfig, ServerError};
pub use sys::{process_cpu_time, run_when_idle, tune_allocator};

/// One request as the daemon handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The parsed message; `None` when it did not parse (C then answers as for `request="NONE"`).
    pub tree: Option<Tree>,
    /// The peer's credentials (SO_PEERCRED), when known.
    pub peer: Option<PeerCred>,
}

/// SO_PEERCRED of the connection a request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Request {
    /// `daemon_request_str(r, "request", "NONE")`.
    pub fn name(&self) -> &str {
        self.str("request").unwrap_or("NONE")
    }
    /// `daemon_request_str`: a non-empty string at `path`, else `None`.
    pub fn str(&self, path: &str) -> Option<&str> {
        self.tree.as_ref()?.find_str(path)
    }
    /// `daemon_request_int` reads an INT at `path` (C truncates to 32 bits; callers that need
    /// C's truncation apply it themselves).
    pub fn int(&self, path: &str) -> Option<i64> {
        self.tree.as_ref()?.find_int(path)
    }
}

/// A reply, in the writer the C daemon uses for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// printf writer (`response = "OK"\n...`).
    Simple(Vec<(String, SimpleField)>),
    /// tree writer; the server appends `"\n\n"` before the terminator as C does.
    Tree(Tree),
    /// Text sent as is (dumps, or a reply serialised once).
    Raw(String),
    /// Text sent as is, in pieces the daemon may share between replies (a reply body serialised
    /// once per update and cached): the server writes them with one `writev`, copying nothing.
    Parts(Vec<Arc<str>>),
}

impl Response {
    /// `response = "<status>"` followed by `fields`, in the printf writer.
    pub fn simple(status: &str, fields: Vec<(&str, SimpleField)>) -> Response {
        let mut v = vec![("response".to_owned(), SimpleField::Str(status.to_owned()))];
        v.extend(fields.into_iter().map(|(k, f)| (k.to_owned(), f)));
        Response::Simple(v)
    }
    /// `response = "<status>"` and `reason = "<reason>"`.
    pub fn error(status: &str, reason: &str) -> Response {
        Response::simple(
            status,
            vec![("reason", SimpleField::Str(reason.to_owned()))],
        )
    }
    /// The payload bytes (without the `"\n##\n"` terminator).
    pub fn to_payload(&self) -> String {
        match self {
            Response::Simple(fields) => {
                let f: Vec<(&str, SimpleField)> = fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                config::write_simple(&f)
            }
            Response::Tree(t) => {
                let mut s = config::write_tree(&t.nodes);
                s.push_str("\n\n");
                s
            }
            Response::Raw(s) => s.clone(),
            Response::Parts(parts) => parts.concat(),
        }
    }
}

/// What a daemon plugs into the server.
pub trait Handler: Send + Sync + 'static {
    /// Answer one request (never `hello`: the server answers that itself). Must not panic on any
    /// input; if it does anyway, the server answers with an error and keeps running.
    fn handle(&self, req: &Request) -> Response;
    /// Whether the daemon has no work in progress (for the idle timeout). lvmetad: always.
    fn is_idle(&self) -> bool {
        true
    }
    /// Called once when the server shuts down, before the socket and pidfile are removed.
    fn shutdown(&self) {}
}
