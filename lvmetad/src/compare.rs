//! Config-tree helpers with libdaemon's semantics: `compare_config` (which decides a reply's
//! `changed` flag and whether same-seqno metadata "differs") and small node accessors.
//!
//! `compare_config` in lvm2 does not compare keys, and compares value lists only as far as both
//! lists go; we keep that on purpose so `changed` and the "unmatching data" decisions match C.

use common::config::{Body, Node, Scalar, Value};
use std::cmp::Ordering;

/// C's value type order (`DM_CFG_INT`, `FLOAT`, `STRING`, `EMPTY_ARRAY`).
fn type_rank(s: Option<&Scalar>) -> u8 {
    match s {
        Some(Scalar::Int(_)) => 0,
        Some(Scalar::Float(_)) => 1,
        Some(Scalar::Str(_)) => 2,
        None => 3,
    }
}

fn cmp_scalar(a: Option<&Scalar>, b: Option<&Scalar>) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Some(Scalar::Str(x)), Some(Scalar::Str(y))) => x.as_bytes().cmp(y.as_bytes()),
        (Some(Scalar::Int(x)), Some(Scalar::Int(y))) => x.cmp(y),
        (Some(Scalar::Float(x)), Some(Scalar::Float(y))) => {
            if (x - y).abs() < 1e-6 {
                Ordering::Equal
            } else {
                x.partial_cmp(y).unwrap_or(Ordering::Equal)
            }
        }
        _ => Ordering::Equal,
    }
}

/// `compare_value`: element by element while both chains go on. An empty list is one
/// EMPTY_ARRAY value, which compares equal to any other EMPTY_ARRAY and ends the walk.
fn cmp_value(a: &Value, b: &Value) -> Ordering {
    let (ia, ib) = (a.items(), b.items());
    let mut i = 0;
    loop {
        let (x, y) = (ia.get(i), ib.get(i));
        let r = cmp_scalar(x, y);
        if r != Ordering::Equal || x.is_none() {
            return r;
        }
        // continue only if both chains have a next element
        if i + 1 >= ia.len() || i + 1 >= ib.len() {
            return Ordering::Equal;
        }
        i += 1;
    }
}

/// `compare_config` over two sibling chains starting at `a[0]` and `b[0]`.
fn cmp_chain(a: &[Node], b: &[Node]) -> Ordering {
    let (Some(x), Some(y)) = (a.first(), b.first()) else {
        return Ordering::Equal;
    };
    let mut r = match (&x.body, &y.body) {
        (Body::Value(va), Body::Value(vb)) => cmp_value(va, vb),
        (Body::Value(_), Body::Section(_)) => Ordering::Greater,
        (Body::Section(_), Body::Value(_)) => Ordering::Less,
        (Body::Section(_), Body::Section(_)) => Ordering::Equal,
    };
    let (ca, cb) = (x.children(), y.children());
    if !ca.is_empty() && !cb.is_empty() {
        r = cmp_chain(ca, cb);
    }
    if r != Ordering::Equal {
        return r;
    }
    match (a.len() > 1, b.len() > 1) {
        (true, true) => cmp_chain(&a[1..], &b[1..]),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => Ordering::Equal,
    }
}

/// Whether lvm2's `compare_config` calls two single nodes different.
pub fn differs(a: &Node, b: &Node) -> bool {
    cmp_chain(std::slice::from_ref(a), std::slice::from_ref(b)) != Ordering::Equal
}

/// The PV sections of a stored metadata node (`metadata/physical_volumes/*`).
pub fn pv_sections(metadata: &Node) -> &[Node] {
    metadata
        .find("physical_volumes")
        .map(Node::children)
        .unwrap_or(&[])
}

/// The ids of the PVs listed in a metadata node, in order (entries without an id are skipped).
pub fn pv_ids(metadata: &Node) -> impl Iterator<Item = &str> {
    pv_sections(metadata)
        .iter()
        .filter_map(|pv| pv.find_str("id"))
}

/// libdm's 32-bit `dm_config_find_int` (C `int` truncation) at `path` below `node`.
pub fn find_int32(node: &Node, path: &str) -> Option<i64> {
    node.find_int(path).map(|v| i64::from(v as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(k: &str, x: impl Into<Value>) -> Node {
        Node::value(k, x)
    }

    #[test]
    fn keys_are_not_compared_but_values_are() {
        let a = Node::section("pvmeta", vec![v("device", 1), v("id", "x")]);
        let b = Node::section("other", vec![v("dev", 1), v("uuid", "x")]);
        assert!(!differs(&a, &b));
        let c = Node::section("pvmeta", vec![v("device", 2), v("id", "x")]);
        assert!(differs(&a, &c));
        let d = Node::section("pvmeta", vec![v("device", 1)]);
        assert!(differs(&a, &d), "a longer chain differs");
    }

    #[test]
    fn lists_compare_only_their_common_prefix() {
        let s = |x: &[&str]| Value::Array(x.iter().map(|s| Scalar::Str(s.to_string())).collect());
        assert_eq!(cmp_value(&s(&["a", "b"]), &s(&["a"])), Ordering::Equal);
        assert_ne!(cmp_value(&s(&["a", "b"]), &s(&["a", "c"])), Ordering::Equal);
        assert_eq!(cmp_value(&s(&[]), &s(&[])), Ordering::Equal);
        assert_ne!(cmp_value(&s(&[]), &s(&["a"])), Ordering::Equal);
    }
}
