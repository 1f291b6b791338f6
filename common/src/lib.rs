//! Shared library of the LVM2 daemons (lvmetad, lvmpolld, cmirrord).
//!
//! Map of the crate:
//! - [`config`]: the libdm-config text codec (value model, parser, the tree writer used on the wire,
//!   the printf-style "simple" writer, and the on-disk metadata writer).
//! - [`daemon`]: libdaemon: message framing, the threaded UNIX-socket server, the client, logging
//!   and the command-line options every daemon shares.
//! - [`scan`]: the on-disk PV reader (label, pv_header, mda, metadata text) and the lvmetad feeder.
//! - [`dm`]: the device-mapper ioctl layer and the thin-pool message and status helpers.
//! - [`paths`]: default socket, pidfile and binary paths (set by `./configure`).
//! - [`tool_output`]: the command-line tools' standard output (a closed pipe is not a panic).
//!
//! No daemon logic lives here, and no global state except the process-wide logger.
//!
//! Unsafe code is denied crate-wide and allowed only in the two wrappers `daemon::sys` (fork,
//! signal handlers, adopting systemd's fd) and [`dm::ioctl`]; every other module forbids it.
#![deny(unsafe_code)]

pub mod config;
pub mod daemon;
pub mod dm;
pub mod paths;
pub mod scan;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod tool_output;
