//! One client connection: its thread and the registry the main loop uses to shut clients down.
//!
//! A connection thread loops: read a framed message (capped), parse it (KeepAll; a failure still
//! reaches the handler with `tree = None`, as C), answer `hello` itself or call the daemon's
//! handler inside `catch_unwind`, write the reply in one `write()`. A request over the cap gets
//! `response = "failed"` and the connection is closed. A panicking handler gets a `failed` reply
//! and the connection keeps being served.
//!
//! Lock: `Registry::conns` (parking_lot, never poisoned) is held only to insert, remove, or
//! walk the table; never across I/O on a client socket or a handler call.
#![forbid(unsafe_code)]

use super::framing::{frame, FrameError, FrameReader, CAPABILITIES};
use super::log;
use super::server_config::ServerConfig;
use super::sys::Wake;
use super::{Handler, PeerCred, Request, Response};
use crate::config::{self, DupMode, SimpleField};
use crate::{log_debug, log_error, log_warn};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// State shared by the main loop and the connection threads.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) wake: Arc<Wake>,
    /// Set when shutdown starts: threads stop after the reply in hand.
    pub(crate) stopping: AtomicBool,
    /// Open connections by id: a second handle on each socket, to shut it down from outside.
    conns: Mutex<HashMap<u64, UnixStream>>,
}

impl Shared {
    pub(crate) fn new(config: ServerConfig, handler: Arc<dyn Handler>, wake: Arc<Wake>) -> Self {
        Shared {
            config,
            handler,
            wake,
            stopping: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn connections(&self) -> usize {
        self.conns.lock().len()
    }

    pub(crate) fn register(&self, id: u64, stream: &UnixStream) -> std::io::Result<()> {
        let twin = stream.try_clone()?;
        self.conns.lock().insert(id, twin);
        Ok(())
    }

    /// Drop a registered connection whose thread could not be started.
    pub(crate) fn forget(&self, id: u64) {
        self.conns.lock().remove(&id);
    }

    /// Begin shutdown: every client socket stops receiving, so an idle thread's blocked read
    /// returns end-of-file at once, while a thread in the middle of a request still writes its
    /// reply (the write side stays open) and then exits. Closing the socket then tells the
    /// client. (`SHUT_RDWR` here would lose the reply of a request in flight.)
    pub(crate) fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for s in self.conns.lock().values() {
            let _ = s.shutdown(Shutdown::Read);
        }
    }
}

/// Removes the connection from the registry and wakes the main loop when the thread ends,
/// however it ends.
struct Deregister<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Deregister<'_> {
    fn drop(&mut self) {
        self.shared.conns.lock().remove(&self.id);
        self.shared.wake.wake();
    }
}

/// The body of a connection thread. The connection is already registered under `id`.
pub(crate) fn serve(shared: &Shared, id: u64, stream: UnixStream) {
    let _dereg = Deregister { shared, id };
    let _ = stream.set_nonblocking(false);
    let peer = peer_cred(&stream);
    let mut reader = FrameReader::new(&stream, shared.config.max_message);
    if shared.config.root_only && !matches!(peer, Some(p) if p.uid == 0) {
        let uid = peer.map_or_else(|| "unknown".to_owned(), |p| p.uid.to_string());
        log_warn!("refusing client with uid {uid}: only root may connect");
        if matches!(reader.read_message(), Ok(_) | Err(FrameError::TooLarge(_))) {
            let r = Response::error("failed", "permission denied: only root may use this daemon");
            let _ = send(&stream, &r);
        }
        return;
    }
    loop {
        let msg = match reader.read_message() {
            Ok(m) => m,
            Err(FrameError::Eof) => break,
            Err(FrameError::TooLarge(max)) => {
                log_error!("request larger than {max} bytes; closing the connection");
                let reason = format!("request too large (limit {max} bytes)");
                let _ = send(&stream, &Response::error("failed", &reason));
                break;
            }
            Err(e) => {
                log_debug!("connection {id}: {e}");
                break;
            }
        };
        log::wire("<- ", &msg);
        let reply = answer(shared, &msg, peer);
        if send(&stream, &reply).is_err() || shared.stopping.load(Ordering::SeqCst) {
            break;
        }
    }
}

/// Parse one request and produce its reply (`hello` built in, else the daemon's handler).
fn answer(shared: &Shared, msg: &[u8], peer: Option<PeerCred>) -> Response {
    let tree = catch_unwind(|| config::parse(msg, DupMode::KeepAll))
        .ok()
        .and_then(Result::ok);
    let req = Request { tree, peer };
    if req.name() == "hello" {
        let c = &shared.config;
        return Response::simple(
            "OK",
            vec![
                ("protocol", SimpleField::Str(c.protocol.clone())),
                ("version", SimpleField::Int(c.protocol_version)),
            ],
        );
    }
    if req.name() == CAPABILITIES {
        return Response::simple("OK", vec![("pipelining", SimpleField::Int(1))]);
    }
    let handler = &shared.handler;
    match catch_unwind(AssertUnwindSafe(|| handler.handle(&req))) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log_error!("request {:?} handler panicked: {what}", req.name());
            Response::error("failed", "internal error while handling the request")
        }
    }
}

/// Serialise and write one reply with its terminator.
fn send(mut stream: &UnixStream, reply: &Response) -> std::io::Result<()> {
    if let Response::Parts(parts) = reply {
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
        for p in &parts {
            log::wire("-> ", p);
        }
        return super::framing::write_parts(&mut stream, &parts);
    }
    let payload = catch_unwind(AssertUnwindSafe(|| reply.to_payload())).unwrap_or_else(|_| {
        log_error!("reply could not be serialised");
        "response = \"failed\"\nreason = \"internal error while writing the reply\"\n".to_owned()
    });
    log::wire("-> ", payload.as_bytes());
    stream.write_all(&frame(payload.as_bytes()))
}

fn peer_cred(stream: &UnixStream) -> Option<PeerCred> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let c = getsockopt(stream, PeerCredentials).ok()?;
    Some(PeerCred {
        pid: c.pid(),
        uid: c.uid(),
        gid: c.gid(),
    })
}
