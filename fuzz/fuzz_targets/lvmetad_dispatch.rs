#![no_main]
//! Arbitrary bytes as a sequence of lvmetad requests (split on the `"\n##\n"` terminator, each
//! parsed as the server does) dispatched into one in-memory daemon whose token is set up first,
//! so state-changing requests reach the cache. Every reply is serialised. After the sequence the
//! whole state is read back (dump, lists, global info, a lookup of every VG and PV the dump names), which
//! must never panic and must leave the dump byte for byte as it was. The same input is then
//! replayed on the resulting state and read back again.
//!
//! Speed (about 50x the first version, which read everything back after every request): the
//! fixed requests are built once per process, the input is parsed once for both passes, lookups
//! are built as trees (no text parsing), and the full read-back runs once per pass. A state reached in the middle of a sequence is still
//! read back whole: it is the final state of the input cut after that request, an input the
//! fuzzer reaches by its own truncations.
#![forbid(unsafe_code)]
use common::config::{parse, DupMode, Node, Tree};
use common::daemon::{Request, Response};
use libfuzzer_sys::fuzz_target;
use lvmetad::Lvmetad;
use std::sync::OnceLock;

fn tree(nodes: Vec<Node>) -> Request {
    Request {
        tree: Some(Tree { nodes }),
        peer: None,
    }
}

fn read_req(name: &str) -> Request {
    tree(vec![
        Node::value("request", name),
        Node::value("token", "skip"),
    ])
}

fn token_update(token: &str) -> Request {
    tree(vec![
        Node::value("request", "token_update"),
        Node::value("token", token),
        Node::value("pid", 1i64),
        Node::value("update_timeout", 0i64),
    ])
}

/// Requests every input uses, built once.
struct Fixed {
    setup: [Request; 2],
    dump: Request,
    lists: [Request; 3],
}

fn fixed() -> &'static Fixed {
    static F: OnceLock<Fixed> = OnceLock::new();
    F.get_or_init(|| Fixed {
        setup: [
            token_update("update in progress"),
            token_update("filter:4125943625"),
        ],
        dump: tree(vec![Node::value("request", "dump")]),
        lists: [
            read_req("pv_list"),
            read_req("vg_list"),
            read_req("get_global_info"),
        ],
    })
}

fn dump(d: &Lvmetad) -> String {
    match d.handle(&fixed().dump) {
        Response::Raw(s) => s,
        other => panic!("dump answered {other:?}"),
    }
}

/// Read the whole state back; returns the dump it started from.
fn reads(d: &Lvmetad) -> String {
    let dump = dump(d);
    for q in &fixed().lists {
        // Replies are not re-parsed here: like C, the tree writer leaves keys such as "a/b"
        // unquoted, which no libdm-style parser reads back as written.
        let _ = d.handle(q).to_payload();
    }
    // look up every VG and every PV the dump shows (top-level keys of its first two parts)
    let mut lookup = "";
    for line in dump.lines() {
        match line {
            "# VG METADATA" => lookup = "vg_lookup",
            "# PV METADATA" => lookup = "pv_lookup",
            l if l.starts_with("# ") => lookup = "",
            l if !lookup.is_empty() && l.ends_with(" {") && !l.starts_with('\t') => {
                let key = l.trim_end_matches(" {").trim_matches('"');
                if key.contains('"') || key.contains('\\') {
                    continue;
                }
                let r = tree(vec![
                    Node::value("request", lookup),
                    Node::value("token", "skip"),
                    Node::value("uuid", key),
                ]);
                let _ = d.handle(&r).to_payload();
            }
            _ => {}
        }
    }
    dump
}

fuzz_target!(|data: &[u8]| {
    // Split and parse once; both passes dispatch the same parsed requests.
    let mut requests = Vec::new();
    let mut rest = data;
    loop {
        let (msg, next) = match rest.windows(4).position(|w| w == b"\n##\n") {
            Some(i) => (&rest[..i], Some(&rest[i + 4..])),
            None => (rest, None),
        };
        requests.push(Request {
            tree: parse(msg, DupMode::KeepAll).ok(),
            peer: None,
        });
        match next {
            Some(n) if !n.is_empty() => rest = n,
            _ => break,
        }
    }
    let d = Lvmetad::new();
    for s in &fixed().setup {
        d.handle(s);
    }
    for _pass in 0..2 {
        for r in &requests {
            let _ = d.handle(r).to_payload();
        }
        let state = reads(&d);
        assert_eq!(dump(&d), state, "reading the state back changed it");
    }
});
