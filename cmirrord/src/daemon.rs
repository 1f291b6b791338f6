//! The poll loop (written next).
