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

/// Where a walk over the metadata that `pv_found` brings stands, for [`differs_filtered`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The children of the metadata node.
    Root,
    /// The children of its first `physical_volumes` node: one section per PV.
    Pvs,
    /// The items of one PV section, seen without the `device` hints (the filter's rule).
    PvItems,
    /// Anywhere else: as is.
    Plain,
}

/// The nodes of `list` the filter of `crate::cache::filter_metadata` keeps at `level`: every
/// one, except among a PV's items, where a `device` after the first item goes, and the item
/// that follows a removed one stays unchecked (C's unlink-and-step quirk).
fn kept(list: &[Node], level: Level) -> impl Iterator<Item = &Node> {
    let mut skip_check = false;
    list.iter()
        .enumerate()
        .filter(move |(i, n)| {
            if level != Level::PvItems || *i == 0 || skip_check {
                skip_check = false;
                return true;
            }
            let hint = n.key == "device";
            skip_check = hint;
            !hint
        })
        .map(|(_, n)| n)
}

/// `cmp_chain` between the filtered view of `a` (at `level`) and `b` as is.
fn cmp_chain_filtered(a: &[Node], level: Level, b: &[Node]) -> Ordering {
    let mut pvs_seen = false;
    let (mut xs, mut ys) = (kept(a, level), b.iter());
    let (Some(mut x), Some(mut y)) = (xs.next(), ys.next()) else {
        return Ordering::Equal;
    };
    loop {
        let mut r = match (&x.body, &y.body) {
            (Body::Value(va), Body::Value(vb)) => cmp_value(va, vb),
            (Body::Value(_), Body::Section(_)) => Ordering::Greater,
            (Body::Section(_), Body::Value(_)) => Ordering::Less,
            (Body::Section(_), Body::Section(_)) => Ordering::Equal,
        };
        let below = match level {
            Level::Root if x.key == "physical_volumes" && !pvs_seen => {
                pvs_seen = true;
                Level::Pvs
            }
            Level::Root => {
                pvs_seen |= x.key == "physical_volumes";
                Level::Plain
            }
            Level::Pvs => Level::PvItems,
            Level::PvItems | Level::Plain => Level::Plain,
        };
        let (ca, cb) = (x.children(), y.children());
        if !ca.is_empty() && !cb.is_empty() {
            r = cmp_chain_filtered(ca, below, cb);
        }
        if r != Ordering::Equal {
            return r;
        }
        match (xs.next(), ys.next()) {
            (Some(nx), Some(ny)) => (x, y) = (nx, ny),
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (None, None) => return Ordering::Equal,
        }
    }
}

/// `differs(&filter_metadata(new), old)` for metadata as `pv_found` / `vg_update` bring it,
/// without building the filtered copy (the common case of a rescan: the same metadata again).
pub fn differs_filtered(new: &Node, old: &Node) -> bool {
    let r = match (&new.body, &old.body) {
        (Body::Value(va), Body::Value(vb)) => cmp_value(va, vb),
        (Body::Value(_), Body::Section(_)) => Ordering::Greater,
        (Body::Section(_), Body::Value(_)) => Ordering::Less,
        (Body::Section(_), Body::Section(_)) => Ordering::Equal,
    };
    let (ca, cb) = (new.children(), old.children());
    let r = if !ca.is_empty() && !cb.is_empty() {
        cmp_chain_filtered(ca, Level::Root, cb)
    } else {
        r
    };
    r != Ordering::Equal
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

    /// A metadata-like tree: top-level values and sections, one or two `physical_volumes`
    /// (sometimes a value), PV sections whose items are often `device` hints, adjacent ones too.
    fn random_metadata(rng: &mut common::test_support::Rng) -> Node {
        let keys = ["id", "device", "status", "dev_size", "device", "pe_start"];
        let value = |rng: &mut common::test_support::Rng| -> Value {
            match rng.below(3) {
                0 => Value::from(rng.below(3) as i64),
                1 => Value::from(["a", "b", "/dev/x"][rng.below(3)]),
                _ => Value::Array(vec![]),
            }
        };
        let mut top = vec![v("id", "vg-id"), v("seqno", 3)];
        for _ in 0..1 + rng.below(2) {
            if rng.chance(10) {
                top.push(Node::value("physical_volumes", value(rng)));
                continue;
            }
            let pvs = (0..rng.below(4))
                .map(|k| {
                    let items = (0..rng.below(6))
                        .map(|_| Node::value(keys[rng.below(keys.len())], value(rng)))
                        .collect();
                    Node::section(format!("pv{k}"), items)
                })
                .collect();
            top.push(Node::section("physical_volumes", pvs));
        }
        if rng.chance(50) {
            top.push(Node::section("logical_volumes", vec![v("device", 1)]));
        }
        Node::section("vg", top)
    }

    #[test]
    fn differs_filtered_is_differs_after_filter_metadata() {
        use crate::cache::filter_metadata;
        let mut rng = common::test_support::Rng::xorshift64(0x5eed_f11e);
        let (mut same, mut other) = (0, 0);
        for _ in 0..20_000 {
            let new = random_metadata(&mut rng);
            // Against its own filtered copy (the rescan case), or another random one.
            let old = if rng.chance(50) {
                filter_metadata(&new)
            } else {
                filter_metadata(&random_metadata(&mut rng))
            };
            let want = differs(&filter_metadata(&new), &old);
            assert_eq!(
                differs_filtered(&new, &old),
                want,
                "new {new:?}\nold {old:?}"
            );
            if want {
                other += 1
            } else {
                same += 1
            }
        }
        assert!(
            same > 5_000 && other > 5_000,
            "{same} equal, {other} different"
        );
    }
}
