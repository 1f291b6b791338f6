//! The device-mapper ioctl layer and the thin-pool helpers (protocol.md §8).
//!
//! SKELETON: being written.
