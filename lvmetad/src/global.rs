//! Global flags and the `get_global_info` / `set_global_info` requests (docs/protocol.md §3.10).
//!
//! The flags live in an atomic so that pv_found (under the cache write lock) and set_global_info
//! (under the global lock) can both change them without C's data race.

use crate::token::TokenState;
use common::config::SimpleField;
use common::daemon::{Request, Response};
use std::sync::atomic::{AtomicU32, Ordering};

pub const GLFL_INVALID: u32 = 0x1;
pub const GLFL_DISABLE: u32 = 0x2;
pub const REASON_DIRECT: u32 = 0x4;
pub const REASON_DUPLICATES: u32 = 0x10;
pub const REASON_VGRESTORE: u32 = 0x20;
pub const REASON_REPAIR: u32 = 0x40;
const REASON_ALL: u32 = REASON_DIRECT | REASON_DUPLICATES | REASON_VGRESTORE | REASON_REPAIR;

/// Reasons in the order get_global_info lists them.
const REASONS: [(&str, u32); 4] = [
    ("DIRECT", REASON_DIRECT),
    ("REPAIR", REASON_REPAIR),
    ("DUPLICATES", REASON_DUPLICATES),
    ("VGRESTORE", REASON_VGRESTORE),
];

/// The daemon-wide flags (GLFL_*).
#[derive(Debug, Default)]
pub struct Flags(AtomicU32);

impl Flags {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
    pub fn set(&self, bits: u32) {
        self.0.fetch_or(bits, Ordering::AcqRel);
    }
    pub fn clear(&self, bits: u32) {
        self.0.fetch_and(!bits, Ordering::AcqRel);
    }
    pub fn invalid(&self) -> bool {
        self.get() & GLFL_INVALID != 0
    }
}

/// C reads request ints as `int`.
fn int32(r: &Request, path: &str) -> Option<i64> {
    r.int(path).map(|v| i64::from(v as i32))
}

/// `set_global_info`: 1 sets, 0 clears, anything else leaves a flag alone.
pub fn set_global_info(flags: &Flags, r: &Request) -> Response {
    let reason_bits = r.str("disable_reason").map_or(0, |reason| {
        REASONS
            .iter()
            .filter(|(word, _)| reason.contains(word))
            .fold(0, |acc, (_, bit)| acc | bit)
    });
    match int32(r, "global_invalid") {
        Some(1) => flags.set(GLFL_INVALID),
        Some(0) => flags.clear(GLFL_INVALID),
        _ => {}
    }
    match int32(r, "global_disable") {
        Some(1) => flags.set(GLFL_DISABLE | reason_bits),
        Some(0) => flags.clear(GLFL_DISABLE | REASON_ALL),
        _ => {}
    }
    Response::simple("OK", vec![])
}

/// The `disable_reason` text: each set reason followed by a comma, cut at 63 bytes, or "none".
pub fn disable_reason(bits: u32) -> String {
    let mut s = String::new();
    if bits & GLFL_DISABLE != 0 {
        for (word, bit) in REASONS {
            if bits & bit != 0 {
                s.push_str(word);
                s.push(',');
            }
        }
        s.truncate(63);
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

/// `get_global_info` (expires a timed-out update first, as C does).
pub fn get_global_info(flags: &Flags, token: &mut TokenState) -> Response {
    token.expire();
    let bits = flags.get();
    let b = |x: u32| SimpleField::Int(i64::from(bits & x != 0));
    Response::simple(
        "OK",
        vec![
            ("global_invalid", b(GLFL_INVALID)),
            ("global_disable", b(GLFL_DISABLE)),
            ("disable_reason", SimpleField::Str(disable_reason(bits))),
            (
                "daemon_pid",
                SimpleField::Int(i64::from(std::process::id())),
            ),
            ("token", SimpleField::Str(token.shown().to_owned())),
            ("update_cmd", SimpleField::Str(token.update_cmd.clone())),
            ("update_pid", SimpleField::Int(token.update_pid)),
            ("update_begin", SimpleField::Int(token.update_begin as i64)),
            ("update_timeout", SimpleField::Int(token.update_timeout)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_in_c_order_with_trailing_comma() {
        assert_eq!(disable_reason(0), "none");
        assert_eq!(disable_reason(REASON_DIRECT), "none", "not disabled");
        assert_eq!(
            disable_reason(GLFL_DISABLE | REASON_DUPLICATES | REASON_DIRECT),
            "DIRECT,DUPLICATES,"
        );
        assert_eq!(disable_reason(GLFL_DISABLE), "none");
        assert_eq!(
            disable_reason(GLFL_DISABLE | REASON_ALL),
            "DIRECT,REPAIR,DUPLICATES,VGRESTORE,"
        );
    }
}
