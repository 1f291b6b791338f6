//! The on-disk PV reader (label, pv_header, mda_header, metadata text; protocol.md §5) and the
//! lvmetad feeder that `pvscan --cache` is (protocol.md §4).
//!
//! SKELETON: being written.
