//! The libdaemon client: connect, `hello`, request/reply (protocol.md §1.5, §1.11).
//!
//! SKELETON: signatures are fixed; the implementation is being written.

use crate::config::Tree;
use std::fmt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum ClientError {
    /// connect() failed (missing socket, refused...).
    Connect(PathBuf, std::io::Error),
    /// The daemon answered hello with another protocol or version.
    WrongProtocol {
        expected: String,
        got: String,
    },
    Io(std::io::Error),
    /// The reply did not parse (C: EPROTO).
    BadReply(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(p, e) => write!(f, "{}: connect failed: {e}", p.display()),
            ClientError::WrongProtocol { expected, got } => {
                write!(f, "daemon speaks {got}, expected {expected}")
            }
            ClientError::Io(e) => write!(f, "I/O error: {e}"),
            ClientError::BadReply(s) => write!(f, "bad reply: {s}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// An open connection to a daemon.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connect and check `hello` (protocol name, and version when given).
    pub fn connect(
        path: &Path,
        protocol: &str,
        version: Option<i64>,
    ) -> Result<Client, ClientError> {
        let _ = (path, protocol, version);
        todo!("client connect")
    }
    /// Connect without the handshake.
    pub fn connect_raw(path: &Path) -> Result<Client, ClientError> {
        let _ = path;
        todo!("client connect_raw")
    }
    /// Send a request tree (tree writer) and parse the reply (KeepAll mode).
    pub fn request(&mut self, req: &Tree) -> Result<Tree, ClientError> {
        let _ = req;
        todo!("client request")
    }
    /// Send a payload as is and return the reply payload unparsed.
    pub fn request_raw(&mut self, payload: &[u8]) -> Result<Vec<u8>, ClientError> {
        let _ = (payload, &self.stream);
        todo!("client request_raw")
    }
}
