//! lvmpolld as a library: lvm2's polling daemon (docs/protocol.md §6), free of I/O where possible
//! so that tests, the benchmark and the fuzz target drive the same code as the binary.
//!
//! - [`request`]: decoding requests with C's checks and building C's replies.
//! - [`store`]: the poll and abort stores, their entries, the `dump` text. **Lock order: store
//!   lock, then entry (LV) lock; the poll store before the abort store.**
//! - [`command`]: the exact `lvm lvpoll ...` argv and environment.
//! - [`daemon`]: [`Polld`], the `common::daemon::Handler`.
//! - [`launcher`]: the [`Launcher`] seam between the handler and the processes.
//! - [`watcher`]: the real launcher: spawns, watches, logs and reaps the children.
//! - [`options`]: the command line, parsed and unit-tested here (`main` only acts on it);
//!   [`dump_client`]: `--dump`.
#![forbid(unsafe_code)]

pub mod command;
pub mod daemon;
pub mod dump_client;
pub mod launcher;
pub mod options;
pub mod request;
pub mod store;
pub mod watcher;

pub use daemon::Polld;
pub use launcher::{Launcher, NoLauncher};
pub use store::Registry;

/// The protocol name answered by `hello`.
pub const PROTOCOL: &str = "lvmpolld";
/// The protocol version answered by `hello`.
pub const PROTOCOL_VERSION: i64 = 1;
