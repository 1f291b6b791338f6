//! The libdaemon client: connect, `hello`, request/reply (docs/protocol.md §1.5, §1.11).
//!
//! Like lvm2's `daemon_open`, [`Client::connect`] sends `request = "hello"` in the printf writer
//! and checks `response`, `protocol` and (when given) `version`. Requests built as trees go out in
//! the tree writer without the server's extra blank lines; replies are parsed keeping duplicate
//! keys (KeepAll). Replies are capped at [`MAX_REPLY`] bytes.
#![forbid(unsafe_code)]

use super::framing::{frame, FrameError, FrameReader, CAPABILITIES, DEFAULT_MAX_MESSAGE};
use crate::config::{self, DupMode, SimpleField, Tree};
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

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect(_, e) | ClientError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Largest reply a client accepts (lvmetad dumps can be big).
pub const MAX_REPLY: usize = 4 * DEFAULT_MAX_MESSAGE;

/// An open connection to a daemon.
pub struct Client {
    stream: UnixStream,
    reader: FrameReader<UnixStream>,
}

impl Client {
    /// Connect and check `hello` (protocol name, and version when given).
    pub fn connect(
        path: &Path,
        protocol: &str,
        version: Option<i64>,
    ) -> Result<Client, ClientError> {
        let mut c = Client::connect_raw(path)?;
        let hello = config::write_simple(&[("request", SimpleField::Str("hello".into()))]);
        let reply = c.request_raw(hello.as_bytes())?;
        let tree = config::parse(&reply, DupMode::KeepAll)
            .map_err(|e| ClientError::BadReply(format!("hello: {e}")))?;
        let response = tree.find_str("response").unwrap_or("");
        if response != "OK" {
            let reason = tree.find_str("reason").unwrap_or("no reason given");
            return Err(ClientError::BadReply(format!(
                "hello answered {response:?}: {reason}"
            )));
        }
        let got = tree.find_str("protocol").unwrap_or("");
        let got_version = tree.find_int("version");
        let version_ok = version.is_none() || got_version == version;
        if got != protocol || !version_ok {
            let show = |p: &str, v: Option<i64>| match v {
                Some(v) => format!("{p:?} version {v}"),
                None => format!("{p:?}"),
            };
            return Err(ClientError::WrongProtocol {
                expected: show(protocol, version),
                got: show(got, got_version),
            });
        }
        Ok(c)
    }

    /// Connect without the handshake.
    pub fn connect_raw(path: &Path) -> Result<Client, ClientError> {
        let stream =
            UnixStream::connect(path).map_err(|e| ClientError::Connect(path.to_owned(), e))?;
        let reader = FrameReader::new(stream.try_clone().map_err(ClientError::Io)?, MAX_REPLY);
        Ok(Client { stream, reader })
    }

    /// Send a request tree (tree writer) and parse the reply (KeepAll mode).
    pub fn request(&mut self, req: &Tree) -> Result<Tree, ClientError> {
        let payload = config::write_tree(&req.nodes);
        let reply = self.request_raw(payload.as_bytes())?;
        config::parse(&reply, DupMode::KeepAll).map_err(|e| ClientError::BadReply(e.to_string()))
    }

    /// Send a payload without reading its reply: for pipelining, which only a daemon that says
    /// so in answer to `capabilities` ([`Client::pipelining`]) supports. Replies come back in
    /// request order through [`Client::reply`].
    pub fn send_raw(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        use std::io::Write;
        (&self.stream)
            .write_all(&frame(payload))
            .map_err(ClientError::Io)
    }

    /// Read and parse (KeepAll mode) the next reply.
    pub fn reply(&mut self) -> Result<Tree, ClientError> {
        let reply = self.read_reply()?;
        config::parse(&reply, DupMode::KeepAll).map_err(|e| ClientError::BadReply(e.to_string()))
    }

    /// Whether the daemon answers requests written back to back one by one, in order: ours say
    /// `pipelining = 1` in answer to `capabilities` (docs/protocol.md §1.2); lvm2's C daemons
    /// read such requests as one message and answer `capabilities` with a failure.
    pub fn pipelining(&mut self) -> Result<bool, ClientError> {
        let req = config::write_simple(&[
            ("request", SimpleField::Str(CAPABILITIES.into())),
            ("token", SimpleField::Str("skip".into())),
        ]);
        let reply = self.request_raw(req.as_bytes())?;
        let tree = config::parse(&reply, DupMode::KeepAll)
            .map_err(|e| ClientError::BadReply(format!("{CAPABILITIES}: {e}")))?;
        Ok(tree.find_str("response") == Some("OK") && tree.find_int("pipelining") == Some(1))
    }

    /// Send a payload as is and return the reply payload unparsed.
    ///
    /// If the daemon closes the connection while the request is still being written (a request
    /// over its size cap), the error reply it sent first is still returned.
    pub fn request_raw(&mut self, payload: &[u8]) -> Result<Vec<u8>, ClientError> {
        use std::io::{ErrorKind, Write};
        if let Err(e) = (&self.stream).write_all(&frame(payload)) {
            if !matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) {
                return Err(ClientError::Io(e));
            }
            // The daemon hung up on us: read whatever it said before doing so.
            return self.read_reply().map_err(|_| ClientError::Io(e));
        }
        self.read_reply()
    }

    /// Read one reply payload.
    pub fn read_reply(&mut self) -> Result<Vec<u8>, ClientError> {
        self.reader.read_message().map_err(|e| match e {
            FrameError::Io(e) => ClientError::Io(e),
            FrameError::Eof | FrameError::Truncated => ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("daemon closed the connection: {e}"),
            )),
            FrameError::TooLarge(n) => {
                ClientError::BadReply(format!("reply larger than {n} bytes"))
            }
        })
    }

    /// The underlying socket (for timeouts or shutdown).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}
