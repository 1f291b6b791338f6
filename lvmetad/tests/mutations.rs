//! Property test: mutated versions of the captured lvm requests (bytes flipped, lines dropped,
//! duplicated or swapped, numbers replaced by edge values) never make the handler panic, every
//! tree reply parses again, and the state stays readable (dump, lists, lookups). A small
//! xorshift generator (`common::test_support::Rng`) keeps it deterministic and dependency-free.
#![forbid(unsafe_code)]

use common::config::{parse, DupMode};
use common::daemon::Response;
use common::test_support::{request as req, Rng};
use lvmetad::Lvmetad;
use std::path::Path;

fn requests() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/lvmetad_dispatch");
    let session = std::fs::read(dir.join("session.txt")).expect("seed session");
    session
        .split(|&b| b == b'#')
        .map(|s| {
            s.iter()
                .copied()
                .filter(|&b| b != b'#')
                .collect::<Vec<u8>>()
        })
        .filter(|s: &Vec<u8>| s.len() > 4)
        .collect()
}

fn mutate(rng: &mut Rng, msg: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(msg).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..=rng.below(3) {
        if lines.is_empty() {
            break;
        }
        let i = rng.below(lines.len());
        match rng.below(7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 => {
                let edge = [
                    "0",
                    "-1",
                    "2147483648",
                    "-9223372036854775808",
                    "\"x\"",
                    "[]",
                ];
                if let Some(eq) = lines[i].find('=') {
                    let e = edge[rng.below(edge.len())];
                    lines[i] = format!("{}={e}", &lines[i][..eq]);
                }
            }
            4 => lines[i] = lines[i].replace("metadata", "pvmeta"),
            5 => {
                let mut b = lines[i].clone().into_bytes();
                if !b.is_empty() {
                    let k = rng.below(b.len());
                    let alphabet = b"{}[]\"=#,\n x";
                    b[k] = alphabet[rng.below(alphabet.len())];
                }
                lines[i] = String::from_utf8_lossy(&b).into_owned();
            }
            _ => lines.insert(i, "request=\"pv_clear_all\"".to_owned()),
        }
    }
    lines.join("\n").into_bytes()
}

fn read_back(d: &Lvmetad) {
    let dump = match d.handle(&req(b"request=\"dump\"")) {
        Response::Raw(s) => s,
        other => panic!("dump answered {other:?}"),
    };
    for q in ["pv_list", "vg_list"] {
        if let Response::Raw(t) =
            d.handle(&req(format!("request=\"{q}\"\ntoken=\"skip\"").as_bytes()))
        {
            assert!(
                parse(t.as_bytes(), DupMode::KeepAll).is_ok(),
                "{q} unparsable:\n{t}"
            );
        }
    }
    for line in dump
        .lines()
        .filter(|l| l.ends_with(" {") && !l.starts_with('\t'))
        .take(20)
    {
        let key = line.trim_end_matches(" {");
        if key.contains('"') {
            continue;
        }
        let q = format!("request=\"vg_lookup\"\ntoken=\"skip\"\nuuid=\"{key}\"");
        if let Response::Raw(t) = d.handle(&req(q.as_bytes())) {
            assert!(
                parse(t.as_bytes(), DupMode::KeepAll).is_ok(),
                "vg_lookup unparsable:\n{t}"
            );
        }
    }
}

#[test]
fn mutated_captures_never_break_the_daemon() {
    let base = requests();
    assert!(base.len() > 40, "seed requests: {}", base.len());
    let mut rng = Rng::xorshift64(0x9e37_79b9_7f4a_7c15);
    for round in 0..40 {
        let d = Lvmetad::new();
        d.handle(&req(
            b"request=\"token_update\"\ntoken=\"update in progress\"\npid=1",
        ));
        d.handle(&req(
            b"request=\"token_update\"\ntoken=\"filter:4125943625\"\npid=1",
        ));
        for msg in &base {
            let m = if rng.below(3) == 0 {
                mutate(&mut rng, msg)
            } else {
                msg.clone()
            };
            let _ = d.handle(&req(&m)).to_payload();
        }
        if round % 4 == 0 {
            read_back(&d);
        }
        read_back(&d);
    }
}
