#![no_main]
//! Arbitrary bytes as a sequence of lvmetad requests (split on the `"\n##\n"` terminator, each
//! parsed as the server does) dispatched into one in-memory daemon whose token is set up first,
//! so state-changing requests reach the cache. After every request the whole state is read back
//! (dump, lists, lookups of everything the dump names), which must never panic. The same input
//! is then replayed on the resulting state.
use common::config::{parse, DupMode};
use common::daemon::{Request, Response};
use libfuzzer_sys::fuzz_target;
use lvmetad::Lvmetad;

fn req(text: &[u8]) -> Request {
    Request {
        tree: parse(text, DupMode::KeepAll).ok(),
        peer: None,
    }
}

fn reads(d: &Lvmetad) {
    let dump = match d.handle(&req(b"request=\"dump\"")) {
        Response::Raw(s) => s,
        other => panic!("dump answered {other:?}"),
    };
    for q in ["pv_list", "vg_list", "get_global_info"] {
        // Replies are not re-parsed here: like C, the tree writer leaves keys such as "a/b"
        // unquoted, which no libdm-style parser reads back as written.
        let _ = d
            .handle(&req(format!("request=\"{q}\"\ntoken=\"skip\"").as_bytes()))
            .to_payload();
    }
    // look up every id the dump shows (top-level keys of its trees)
    for line in dump
        .lines()
        .filter(|l| l.ends_with(" {") && !l.starts_with('\t'))
    {
        let key = line.trim_end_matches(" {").trim_matches('"');
        if key.contains('"') || key.contains('\\') {
            continue;
        }
        for q in [
            format!("request=\"vg_lookup\"\ntoken=\"skip\"\nuuid=\"{key}\""),
            format!("request=\"pv_lookup\"\ntoken=\"skip\"\nuuid=\"{key}\""),
        ] {
            let _ = d.handle(&req(q.as_bytes())).to_payload();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let d = Lvmetad::new();
    d.handle(&req(
        b"request=\"token_update\"\ntoken=\"update in progress\"\npid=1\nupdate_timeout=0",
    ));
    d.handle(&req(
        b"request=\"token_update\"\ntoken=\"filter:4125943625\"\npid=1\nupdate_timeout=0",
    ));
    for _round in 0..2 {
        let mut rest = data;
        loop {
            let (msg, next) = match rest.windows(4).position(|w| w == b"\n##\n") {
                Some(i) => (&rest[..i], Some(&rest[i + 4..])),
                None => (rest, None),
            };
            let _ = d.handle(&req(msg)).to_payload();
            reads(&d);
            match next {
                Some(n) if !n.is_empty() => rest = n,
                _ => break,
            }
        }
    }
});
