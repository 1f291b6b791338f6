//! The on-disk PV reader (docs/protocol.md §5) and the lvmetad feeder that `pvscan --cache` is
//! (docs/protocol.md §4).
//!
//! - [`crc`]: lvm2's CRC-32 variant.
//! - [`io`]: bounded positional reads ([`BlockSource`]) from files, devices or memory.
//! - [`label`]: label search in sectors 0..4, label_header, pv_header and its extension.
//! - [`mda`]: mda_header, raw_locn, the committed metadata text (wrap-around included).
//! - [`metadata`]: metadata text -> [`VolumeGroup`] / PV / LV / segment records.
//! - [`pv`]: one device from label to newest VG metadata ([`scan_pv`]).
//! - [`regex`], [`filter`]: lvm2's filter regex subset and `devices/global_filter` + token.
//! - [`device`]: devices under /dev or given as paths, device numbers, the parallel scan pool.
//! - [`devno`]: devices named by `MAJOR:MINOR` (device events), their presence, per-device locks.
//! - [`pv_found`]: what a `pv_found` request carries; which device of a duplicated PV is sent.
//! - [`lvmetad`]: the lvmetad client: `pv_found` body, full and per-device updates, duplicates.
//! - [`feed`]: a full update's `pv_found` requests over several connections, grouped by VG.
//! - [`stream`]: a full update that sends `pv_found` while the devices are still being read.
//! - [`vg_once`]: a VG's metadata sent once per feeding connection, not with each of its PVs.
//! - [`report`]: what was found, from disk or from lvmetad, as a `pvs`-like table or JSON.
//!
//! Nothing here panics on disk contents: every offset and size read from a device is checked
//! before it is used, and each failure is a typed error.
#![forbid(unsafe_code)]

pub mod crc;
pub mod device;
pub mod devno;
pub mod feed;
pub mod filter;
pub mod io;
pub mod label;
pub mod lvmetad;
pub mod mda;
pub mod metadata;
pub mod pv;
pub mod pv_found;
pub mod regex;
pub mod report;
pub mod stream;
pub mod vg_once;

pub use io::{BlockSource, FileSource, MemSource};
pub use metadata::VolumeGroup;
pub use pv::{scan_pv, ScannedPv};
