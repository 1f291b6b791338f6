//! What a daemon tells the socket server ([`ServerConfig`], from its command line) and how the
//! server fails to start or run ([`ServerError`]). Shared by `server`, `conn` and `listen`, so
//! none of them imports another for these.
#![forbid(unsafe_code)]

use super::log::LogConfig;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the server needs from a daemon's command line.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Program name for logs and syslog (`lvmetad`).
    pub name: String,
    /// Answered by `hello` (`"lvmetad"`, `"lvmpolld"`).
    pub protocol: String,
    pub protocol_version: i64,
    pub socket_path: PathBuf,
    pub pidfile: Option<PathBuf>,
    /// `-f`: stay in the foreground, log to stderr.
    pub foreground: bool,
    /// `-t N`: exit after N seconds idle; `None` = never.
    pub idle_timeout: Option<Duration>,
    pub log: LogConfig,
    /// Largest request accepted; larger ones get an error reply and the connection is closed.
    pub max_message: usize,
    /// Most connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Stack size of each connection thread.
    pub thread_stack: usize,
    /// Refuse clients whose SO_PEERCRED uid is not 0.
    pub root_only: bool,
}

impl ServerConfig {
    /// Defaults shared by every daemon; the caller fills in paths from its options.
    pub fn new(name: &str, protocol: &str, protocol_version: i64, socket_path: PathBuf) -> Self {
        ServerConfig {
            name: name.to_owned(),
            protocol: protocol.to_owned(),
            protocol_version,
            socket_path,
            pidfile: None,
            foreground: false,
            idle_timeout: None,
            log: LogConfig::default(),
            max_message: super::framing::DEFAULT_MAX_MESSAGE,
            max_connections: 1024,
            thread_stack: 1 << 20,
            root_only: false,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServerError {
    /// Another instance holds the pidfile lock (C exits 13).
    AlreadyRunning(PathBuf),
    /// A live daemon answers on the socket.
    SocketInUse(PathBuf),
    /// The socket path is not a socket, or has unsafe owner or permissions.
    UnsafeSocket(PathBuf, String),
    Io(String, std::io::Error),
}

impl ServerError {
    /// Process exit code for this error (13 for AlreadyRunning, as lvm2; 1 otherwise).
    pub fn exit_code(&self) -> i32 {
        match self {
            ServerError::AlreadyRunning(_) => 13,
            _ => 1,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::AlreadyRunning(p) => {
                write!(
                    f,
                    "Failed to acquire lock on {}. Already running?",
                    p.display()
                )
            }
            ServerError::SocketInUse(p) => write!(f, "Socket {} already in use", p.display()),
            ServerError::UnsafeSocket(p, why) => write!(f, "{}: {}", p.display(), why),
            ServerError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}
