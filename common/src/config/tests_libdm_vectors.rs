//! The codec against vectors produced by the real libdevmapper
//! (tests/data/config/libdm-vectors.txt): same accept/refuse decision in both duplicate-key
//! modes, and byte-identical tree-writer output.

use super::{parse, write_tree, DupMode};

const VECTORS: &str = include_str!("../../../tests/data/config/libdm-vectors.txt");

/// Undo the file's escapes: `\n`, `\t`, `\\`, `\xNN`.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = &s[i + 2..i + 4];
                out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                i += 2;
            }
            other => panic!("bad escape {other:?} in vector file"),
        }
        i += 2;
    }
    out
}

#[test]
fn libdm_vectors_match() {
    let mut cases = 0;
    let mut ok = 0;
    let mut failures = Vec::new();
    let mut input: Vec<u8> = Vec::new();
    let mut name = "";
    for line in VECTORS.lines() {
        if let Some(n) = line.strip_prefix("### ") {
            name = n;
        } else if let Some(i) = line.strip_prefix("IN ") {
            input = unescape(i);
        } else if let Some((mode, want)) = line.split_once(' ') {
            let mode = match mode {
                "KEEP" => DupMode::KeepAll,
                "MERGE" => DupMode::Merge,
                _ => continue,
            };
            cases += 1;
            let got = match parse(&input, mode) {
                Ok(t) => {
                    ok += 1;
                    write_tree(&t.nodes).into_bytes()
                }
                Err(_) => b"ERR".to_vec(),
            };
            let want = if want == "ERR" {
                b"ERR".to_vec()
            } else {
                unescape(want)
            };
            if got != want {
                failures.push(format!(
                    "{name} {mode:?}: want {:?}, got {:?}",
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                ));
            }
        }
    }
    assert!(cases >= 1000, "only {cases} vectors read");
    assert!(ok >= 700, "only {ok} vectors parse");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Messages captured from the C daemons and tools (tests/data/config/messages/): every one
/// parses in both modes, and the replies the C server built with the tree writer come out of
/// ours byte for byte (the server adds `"\n\n"` after the tree).
#[test]
fn captured_messages_parse_and_tree_replies_rewrite_identically() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/config/messages");
    let mut parsed = 0;
    let mut identical = Vec::new();
    for entry in std::fs::read_dir(dir).expect("messages directory") {
        let path = entry.expect("dir entry").path();
        let bytes = std::fs::read(&path).expect("message file");
        for mode in [DupMode::KeepAll, DupMode::Merge] {
            if let Err(e) = parse(&bytes, mode) {
                panic!("{} ({mode:?}): {e}", path.display());
            }
        }
        parsed += 1;
        let tree = parse(&bytes, DupMode::KeepAll).expect("parsed above");
        if format!("{}\n\n", write_tree(&tree.nodes)).as_bytes() == bytes {
            identical.push(
                path.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    identical.sort();
    assert!(parsed >= 60, "only {parsed} messages");
    assert_eq!(
        identical,
        [
            "lvmetad_pv_list_rep.txt",
            "lvmetad_pv_list_rep_2.txt",
            "lvmetad_pv_lookup_rep.txt",
            "lvmetad_vg_list_rep.txt",
            "lvmetad_vg_lookup_rep_ok.txt",
        ]
    );
}
