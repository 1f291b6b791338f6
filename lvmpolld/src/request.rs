//! Request decoding (docs/protocol.md §6.2): turns a libdaemon [`Request`] into a typed [`Op`] with
//! the same checks, in the same order, as lvm2's lvmpolld, and builds the replies of §6.3. Pure
//! functions, no I/O.

use common::config::SimpleField;
use common::daemon::{Request, Response};

/// The four polling operations lvmpolld can run (`--polloperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PollType {
    Pvmove,
    Convert,
    Merge,
    MergeThin,
}

impl PollType {
    /// The request name, which is also the `--polloperation` argument and the dump `type`.
    pub fn name(self) -> &'static str {
        match self {
            PollType::Pvmove => "pvmove",
            PollType::Convert => "convert",
            PollType::Merge => "merge",
            PollType::MergeThin => "merge_thin",
        }
    }

    pub fn from_request(name: &str) -> Option<PollType> {
        match name {
            "pvmove" => Some(PollType::Pvmove),
            "convert" => Some(PollType::Convert),
            "merge" => Some(PollType::Merge),
            "merge_thin" => Some(PollType::MergeThin),
            _ => None,
        }
    }
}

/// Least internal timeout of a poll, in seconds (`MIN_POLLING_TIMEOUT`).
pub const MIN_POLLING_TIMEOUT: u32 = 60;

/// A validated poll-init request (`pvmove`, `convert`, `merge`, `merge_thin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollInit {
    pub kind: PollType,
    pub lvid: String,
    pub vgname: String,
    pub lvname: String,
    /// The interval exactly as the client sent it; passed on to `lvpoll --interval`.
    pub interval: String,
    pub sysdir: Option<String>,
    pub abort: bool,
    pub handle_missing_pvs: bool,
    /// `max(2 × interval, 60)` with C's unsigned 32-bit arithmetic.
    pub timeout: u32,
}

impl PollInit {
    /// The store key: sysdir and lvid concatenated (§6.4).
    pub fn id(&self) -> String {
        make_id(self.sysdir.as_deref(), &self.lvid)
    }
}

/// A `progress_info` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressQuery {
    pub lvid: String,
    pub sysdir: Option<String>,
    /// Look in the abort store instead of the poll store.
    pub abort: bool,
}

impl ProgressQuery {
    pub fn id(&self) -> String {
        make_id(self.sysdir.as_deref(), &self.lvid)
    }
}

/// What a request asks for, or the error reply it earns.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    PollInit(PollInit),
    Progress(ProgressQuery),
    Dump,
    /// Rejected during decoding; the reply is final.
    Reject(Response),
}

/// `sysdir + lvid`, or just `lvid`.
pub fn make_id(sysdir: Option<&str>, lvid: &str) -> String {
    match sysdir {
        Some(s) => format!("{s}{lvid}"),
        None => lvid.to_owned(),
    }
}

/// Reasons the C daemon gives, byte for byte.
pub mod reason {
    pub const NOT_IMPLEMENTED: &str = "request not implemented";
    pub const MISSING_LVID: &str = "request requires lvid set";
    pub const MISSING_LVNAME: &str = "request requires lvname set";
    pub const MISSING_VGNAME: &str = "request requires vgname set";
    pub const POLLING_FAILED: &str = "polling of lvm command failed";
    pub const ILLEGAL_ABORT: &str = "abort only supported with PVMOVE polling operation";
    pub const DIFFERENT_OPERATION: &str = "Different operation on LV already in progress";
    pub const INVALID_INTERVAL: &str = "request requires interval set";
}

/// `response = "<status>"` plus `reason`.
pub fn reply(status: &str, why: &str) -> Response {
    Response::error(status, why)
}

/// `response = "<status>"` alone.
pub fn bare(status: &str) -> Response {
    Response::simple(status, vec![])
}

/// `response = "finished"`, `reason = "retcode"|"signal"`, `value = N`.
pub fn finished(signal: bool, value: i64) -> Response {
    Response::simple(
        "finished",
        vec![
            (
                "reason",
                SimpleField::Str(if signal { "signal" } else { "retcode" }.to_owned()),
            ),
            ("value", SimpleField::Int(value)),
        ],
    )
}

/// `daemon_request_int` read into a C `unsigned`: the low 32 bits, non-zero = set.
fn flag(req: &Request, key: &str) -> bool {
    req.int(key).map(|v| v as u32 != 0).unwrap_or(false)
}

/// `sscanf(s, "%u")`: optional white space, optional `+`, at least one digit; trailing text is
/// ignored; out-of-range values saturate as `strtoul` does and are then cut to 32 bits.
pub fn scan_unsigned(s: &str) -> Option<u32> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let t = t.strip_prefix('+').unwrap_or(t);
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let v = t[..digits].bytes().fold(0u64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d - b'0')))
            .unwrap_or(u64::MAX)
    });
    Some(v as u32)
}

/// Decode a request the way lvmpolld's `_handler` dispatches it.
pub fn decode(req: &Request) -> Op {
    let name = req.name();
    if let Some(kind) = PollType::from_request(name) {
        return match decode_poll_init(req, kind) {
            Ok(p) => Op::PollInit(p),
            Err(r) => Op::Reject(r),
        };
    }
    match name {
        "progress_info" => match req.str("lvid") {
            None => Op::Reject(reply("failed", reason::MISSING_LVID)),
            Some(lvid) => Op::Progress(ProgressQuery {
                lvid: lvid.to_owned(),
                sysdir: req.str("sysdir").map(str::to_owned),
                abort: flag(req, "abort"),
            }),
        },
        "dump" => Op::Dump,
        _ => Op::Reject(reply("invalid", reason::NOT_IMPLEMENTED)),
    }
}

fn decode_poll_init(req: &Request, kind: PollType) -> Result<PollInit, Response> {
    let abort = flag(req, "abort");
    if abort && kind != PollType::Pvmove {
        return Err(reply("invalid", reason::ILLEGAL_ABORT));
    }
    let interval = req.str("interval");
    let uinterval = interval
        .filter(|s| !s.contains('-'))
        .and_then(scan_unsigned)
        .ok_or_else(|| reply("invalid", reason::INVALID_INTERVAL))?;
    let lvname = req
        .str("lvname")
        .ok_or_else(|| reply("failed", reason::MISSING_LVNAME))?;
    let lvid = req
        .str("lvid")
        .ok_or_else(|| reply("failed", reason::MISSING_LVID))?;
    let vgname = req
        .str("vgname")
        .ok_or_else(|| reply("failed", reason::MISSING_VGNAME))?;
    Ok(PollInit {
        kind,
        lvid: lvid.to_owned(),
        vgname: vgname.to_owned(),
        lvname: lvname.to_owned(),
        interval: interval.unwrap_or_default().to_owned(),
        sysdir: req.str("sysdir").map(str::to_owned),
        abort,
        handle_missing_pvs: flag(req, "handle_missing_pvs"),
        timeout: uinterval.wrapping_mul(2).max(MIN_POLLING_TIMEOUT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::config::{Node, Tree};

    fn req(nodes: Vec<Node>) -> Request {
        Request {
            tree: Some(Tree { nodes }),
            peer: None,
        }
    }

    fn pvmove(extra: Vec<Node>) -> Request {
        let mut n = vec![
            Node::value("request", "pvmove"),
            Node::value("lvid", "L"),
            Node::value("vgname", "vg"),
            Node::value("lvname", "lv"),
            Node::value("interval", "15"),
        ];
        n.extend(extra);
        req(n)
    }

    fn reject_reason(op: Op) -> (String, String) {
        match op {
            Op::Reject(Response::Simple(f)) => {
                let get = |k: &str| {
                    f.iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| format!("{v:?}"))
                        .unwrap_or_default()
                };
                (get("response"), get("reason"))
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn scan_unsigned_follows_sscanf() {
        assert_eq!(scan_unsigned("15"), Some(15));
        assert_eq!(scan_unsigned("+15"), Some(15));
        assert_eq!(scan_unsigned("  7abc"), Some(7));
        assert_eq!(scan_unsigned("0x10"), Some(0));
        assert_eq!(scan_unsigned("abc"), None);
        assert_eq!(scan_unsigned("   "), None);
        assert_eq!(scan_unsigned("+"), None);
        assert_eq!(scan_unsigned("4294967296"), Some(0));
        assert_eq!(scan_unsigned("99999999999999999999999"), Some(u32::MAX));
    }

    #[test]
    fn pvmove_decodes_with_timeout_floor() {
        match decode(&pvmove(vec![])) {
            Op::PollInit(p) => {
                assert_eq!(p.kind, PollType::Pvmove);
                assert_eq!(p.timeout, 60);
                assert_eq!(p.interval, "15");
                assert_eq!(p.id(), "L");
            }
            o => panic!("{o:?}"),
        }
        match decode(&pvmove(vec![
            Node::value("sysdir", "/etc/x"),
            Node::value("abort", 1i64),
        ])) {
            Op::PollInit(p) => {
                assert!(p.abort);
                assert_eq!(p.id(), "/etc/xL");
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn long_interval_doubles() {
        let mut r = pvmove(vec![]);
        r.tree.as_mut().unwrap().nodes[4] = Node::value("interval", "100");
        match decode(&r) {
            Op::PollInit(p) => assert_eq!(p.timeout, 200),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn checks_come_in_c_order() {
        // abort on a non-pvmove wins over a missing interval
        let r = req(vec![
            Node::value("request", "merge"),
            Node::value("abort", 1i64),
        ]);
        let (s, why) = reject_reason(decode(&r));
        assert!(s.contains("invalid") && why.contains(reason::ILLEGAL_ABORT));
        // an INT interval is refused like a missing one
        let r = req(vec![
            Node::value("request", "pvmove"),
            Node::value("interval", 5i64),
        ]);
        assert!(reject_reason(decode(&r))
            .1
            .contains(reason::INVALID_INTERVAL));
        let r = req(vec![
            Node::value("request", "pvmove"),
            Node::value("interval", "-1"),
            Node::value("lvid", "x"),
        ]);
        assert!(reject_reason(decode(&r))
            .1
            .contains(reason::INVALID_INTERVAL));
        // lvname is checked before lvid, lvid before vgname
        let r = req(vec![
            Node::value("request", "convert"),
            Node::value("interval", "1"),
        ]);
        let (s, why) = reject_reason(decode(&r));
        assert!(s.contains("failed") && why.contains(reason::MISSING_LVNAME));
        let r = req(vec![
            Node::value("request", "convert"),
            Node::value("interval", "1"),
            Node::value("lvname", "lv"),
        ]);
        assert!(reject_reason(decode(&r)).1.contains(reason::MISSING_LVID));
        let r = req(vec![
            Node::value("request", "convert"),
            Node::value("interval", "1"),
            Node::value("lvname", "lv"),
            Node::value("lvid", "x"),
        ]);
        assert!(reject_reason(decode(&r)).1.contains(reason::MISSING_VGNAME));
    }

    #[test]
    fn abort_uses_low_32_bits_and_ignores_strings() {
        let r = pvmove(vec![Node::value("abort", 1i64 << 32)]);
        assert!(matches!(decode(&r), Op::PollInit(p) if !p.abort));
        let r = pvmove(vec![Node::value("abort", "1")]);
        assert!(matches!(decode(&r), Op::PollInit(p) if !p.abort));
    }

    #[test]
    fn other_requests() {
        let r = req(vec![Node::value("request", "progress_info")]);
        assert!(reject_reason(decode(&r)).1.contains(reason::MISSING_LVID));
        let r = req(vec![Node::value("request", "dump")]);
        assert_eq!(decode(&r), Op::Dump);
        let r = req(vec![Node::value("request", "frobnicate")]);
        assert!(reject_reason(decode(&r))
            .1
            .contains(reason::NOT_IMPLEMENTED));
        let garbage = Request {
            tree: None,
            peer: None,
        };
        assert!(reject_reason(decode(&garbage))
            .1
            .contains(reason::NOT_IMPLEMENTED));
    }
}
