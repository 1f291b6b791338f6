//! Property tests with a hand-rolled generator: for random trees `x`,
//! `parse(write_tree(x)) == normalize(x)` (one-element arrays become scalars, as the writer
//! drops their brackets), `parse(write_metadata(x)) == x`, and both writers' output is a fixed
//! point of parse-then-write.

use super::{parse, write_metadata, write_tree, Body, DupMode, Node, Scalar, Tree, Value};
use crate::test_support::Rng;

/// Key material: plain identifiers, the names the metadata writer treats specially, and keys
/// that need quoting. Never `/` (a path separator) and never empty.
const KEYS: &[&str] = &[
    "a",
    "id",
    "seqno",
    "status",
    "k_1",
    "Dev-Size.x",
    "physical_volumes",
    "logical_volumes",
    "historical_logical_volumes",
    "pv0",
    "device",
    "segment_count",
    "segment1",
    "extent_count",
    "stripes",
    "mirrors",
    "raids",
    "allocation_policy",
    "message1",
    "version",
    "description",
    "k#y",
    "k\"y",
    "bang!",
    "sp ace",
    "eq=",
    "{br}",
    "'sq",
    "[x",
    ",c",
    "back\\slash",
    "ключ",
    "1digit",
    "-dash",
    ".dot",
    "tab\tkey",
];

const STR_PARTS: &[&str] = &[
    "", "x", "READ", "\"", "\\", "\\\"", "\n", "\t", "#", "{", "}", "[", "]", ",", "=", " ", "'",
    "žluť", "/dev/sda", "\u{1}", "\\n", "a b",
];

fn gen_scalar(r: &mut Rng) -> Scalar {
    match r.below(3) {
        0 => Scalar::Int(match r.below(4) {
            0 => i64::MAX,
            1 => i64::MIN,
            2 => r.below(100) as i64 - 50,
            _ => r.next_u64() as i64,
        }),
        // k/64 with |k| < 2^24: exact in a float and exact in six decimals.
        1 => Scalar::Float((r.below(1 << 25) as f32 - (1 << 24) as f32) / 64.0),
        _ => {
            let n = r.below(5);
            Scalar::Str((0..n).map(|_| r.pick(STR_PARTS)).collect())
        }
    }
}

fn gen_value(r: &mut Rng) -> Value {
    if r.below(3) == 0 {
        let n = r.below(5);
        Value::Array((0..n).map(|_| gen_scalar(r)).collect())
    } else {
        Value::Scalar(gen_scalar(r))
    }
}

fn gen_nodes(r: &mut Rng, depth: usize) -> Vec<Node> {
    let n = r.below(6);
    (0..n)
        .map(|_| {
            let key = r.pick(KEYS).to_owned();
            if depth < 6 && r.below(3) == 0 {
                Node::section(key, gen_nodes(r, depth + 1))
            } else {
                Node::value(key, gen_value(r))
            }
        })
        .collect()
}

fn gen_tree(r: &mut Rng) -> Tree {
    let mut nodes = gen_nodes(r, 0);
    if nodes.is_empty() {
        nodes.push(Node::value("only", 1));
    }
    Tree { nodes }
}

/// What the tree writer preserves: a one-element array reads back as a scalar.
fn normalize(nodes: &[Node]) -> Vec<Node> {
    nodes
        .iter()
        .map(|n| Node {
            key: n.key.clone(),
            body: match &n.body {
                Body::Section(c) => Body::Section(normalize(c)),
                Body::Value(Value::Array(v)) if v.len() == 1 => {
                    Body::Value(Value::Scalar(v[0].clone()))
                }
                Body::Value(v) => Body::Value(v.clone()),
            },
        })
        .collect()
}

fn reparse(text: &str, mode: DupMode) -> Tree {
    parse(text.as_bytes(), mode).unwrap_or_else(|e| panic!("{e}\n--- text ---\n{text}"))
}

#[test]
fn tree_writer_round_trip() {
    let mut r = Rng::xorshift64_star(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let x = gen_tree(&mut r);
        let text = write_tree(&x.nodes);
        let back = reparse(&text, DupMode::KeepAll);
        assert_eq!(back.nodes, normalize(&x.nodes), "\n--- text ---\n{text}");
        assert_eq!(write_tree(&back.nodes), text);
    }
}

#[test]
fn metadata_writer_round_trip() {
    let mut r = Rng::xorshift64_star(0x0123_4567_89ab_cdef);
    for indent in [false, true] {
        for _ in 0..3000 {
            let x = gen_tree(&mut r);
            let text = write_metadata(&x.nodes, indent);
            let back = reparse(&text, DupMode::KeepAll);
            assert_eq!(back.nodes, x.nodes, "\n--- text ---\n{text}");
            assert_eq!(write_metadata(&back.nodes, indent), text);
        }
    }
}

#[test]
fn merge_mode_equals_keep_all_without_duplicates() {
    let mut r = Rng::xorshift64_star(42);
    let mut checked = 0;
    for _ in 0..3000 {
        let x = gen_tree(&mut r);
        if has_duplicates(&x.nodes) {
            continue;
        }
        checked += 1;
        let text = write_tree(&x.nodes);
        assert_eq!(
            reparse(&text, DupMode::Merge),
            reparse(&text, DupMode::KeepAll)
        );
    }
    assert!(checked > 500, "only {checked} trees without duplicate keys");
}

fn has_duplicates(nodes: &[Node]) -> bool {
    nodes
        .iter()
        .enumerate()
        .any(|(i, n)| nodes[..i].iter().any(|m| m.key == n.key) || has_duplicates(n.children()))
}
