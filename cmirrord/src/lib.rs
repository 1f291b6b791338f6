//! cmirrord as a library: the cluster mirror log daemon's codecs, log functions and cluster
//! engine, free of I/O where possible, so tests, the benchmark and fuzz targets drive the same
//! code as the binary.
//!
//! Map:
//! - [`ulog`]: `struct dm_ulog_request` and the request types (kernel link and cluster).
//! - [`connector`]: netlink connector frames and the [`connector::KernelLink`] trait with its
//!   netlink and UNIX-socket (test) implementations.
//! - [`wire`]: the cluster message (`struct clog_request`, little-endian) and checkpoints.
//! - [`bitmap`], [`mirror_log`]: region bitmaps and one log's functions (core and disk logs).
//! - [`errno`]: request errors as [`errno::Errno`] inside, negative `i32` on the wire.
//! - [`engine`]: logs by uuid + luid, the request paths, and the CPG group state machine
//!   (ordering, server choice, checkpoints, joins and leaves), driven through [`engine::Transport`].
//! - [`sim`]: an in-memory totally ordered group bus to run several engines in one process.
//! - `cpg` (feature `cpg`): the corosync transport.
//! - [`options`]: the command line and environment, parsed and unit-tested here.
//! - [`daemon`]: the poll loop tying kernel link, transport and signals together.
//! - [`wake`]: waking a local mirror into asking for resync work after a member left mid-resync.
//!
//! Unsafe code is denied crate-wide and allowed only in the two FFI wrappers [`connector`] (the
//! netlink socket) and `cpg` (lending corosync's fds); every other module forbids it.
#![deny(unsafe_code)]

pub mod bitmap;
#[allow(unsafe_code)] // the unsafe fence: netlink socket FFI
pub mod connector;
#[cfg(feature = "cpg")]
#[allow(unsafe_code)] // the unsafe fence: corosync fds
pub mod cpg;
pub mod daemon;
pub mod disk;
pub mod engine;
pub mod errno;
pub mod kclient;
pub mod mirror_log;
pub mod options;
pub mod sim;
pub mod testing;
pub mod ulog;
pub mod wake;
pub mod wire;

/// The last 8 characters of a uuid, as C's `SHORT_UUID` prints it in logs.
pub fn short_uuid(uuid: &str) -> &str {
    let n = uuid.len();
    if n > 8 && uuid.is_char_boundary(n - 8) {
        &uuid[n - 8..]
    } else {
        uuid
    }
}
