//! Placing parsed nodes under their parent (docs/protocol.md §2.4): `/` path keys and the two
//! duplicate-key modes.
//!
//! - [`DupMode::KeepAll`]: every path segment makes a new node (libdm skips the lookup
//!   entirely), so `a/b=1 a/c=2` gives two sections `a`.
//! - [`DupMode::Merge`]: each segment reuses the first node of that name; a repeated section
//!   merges into the first, a repeated value replaces the earlier one in place. Where libdm
//!   would give one node both a value and children, the value is kept and the children dropped.
//!
//! Nodes are appended as read; in merge mode a section's child list is folded by [`merge_all`]
//! when its `}` is read (and the top level at the end of input).

use super::{Body, Node};
use std::collections::HashMap;

/// Number of segments of a path key, or `None` when the key is empty or its last segment is
/// (libdm would create a node with an empty name that its own writer cannot write back).
pub(crate) fn split_path(key: &str) -> Option<usize> {
    if key.is_empty() || key.ends_with('/') {
        return None;
    }
    if !key.contains('/') {
        return Some(1);
    }
    Some(key.split('/').filter(|s| !s.is_empty()).count())
}

/// Append `key` (a path) holding `body` to `children`: the path segments become nested
/// sections. In [`DupMode::Merge`] the list is merged later by [`merge_all`].
pub(crate) fn push_path(children: &mut Vec<Node>, key: String, body: Body) {
    if !key.contains('/') {
        children.push(Node { key, body });
        return;
    }
    let mut segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let last = segs.pop().unwrap_or_default().to_owned();
    let chain = segs
        .iter()
        .rev()
        .fold(Node { key: last, body }, |inner, seg| {
            Node::section(*seg, vec![inner])
        });
    children.push(chain);
}

/// Merge mode: fold a list of sibling nodes (in document order) so that each name appears
/// once, at its first position; sections merge recursively, values take the last occurrence.
/// Applied when a section closes, which gives the same result as libdm merging node by node
/// while parsing.
pub(crate) fn merge_all(children: Vec<Node>) -> Vec<Node> {
    let mut out = Vec::with_capacity(children.len());
    merge_children(&mut out, children);
    out
}

/// Below this many nodes to merge a linear scan is cheaper than an index.
const INDEX_FROM: usize = 16;

/// Merge one node into an existing one of the same name. A section meeting a value: the value
/// wins (libdm keeps both on one node, and its writer and value lookups only see the value).
fn merge_into(existing: &mut Node, node: Node) {
    match (&mut existing.body, node.body) {
        (Body::Section(dst), Body::Section(src)) => merge_children(dst, src),
        (_, Body::Value(new)) => existing.body = Body::Value(new),
        (Body::Value(_), Body::Section(_)) => {}
    }
}

/// Merge every node of `src` into `dst`, in order. Long lists use a name index so that a
/// hostile lvm.conf with many keys costs O(n), not O(n²).
fn merge_children(dst: &mut Vec<Node>, src: Vec<Node>) {
    if src.len() < INDEX_FROM {
        for n in src {
            match dst.iter().position(|d| d.key == n.key) {
                Some(i) => merge_into(&mut dst[i], n),
                None => dst.push(n),
            }
        }
        return;
    }
    let mut index: HashMap<String, usize> = HashMap::with_capacity(dst.len() + src.len());
    for (i, n) in dst.iter().enumerate() {
        index.entry(n.key.clone()).or_insert(i);
    }
    for n in src {
        match index.get(&n.key) {
            Some(&i) => merge_into(&mut dst[i], n),
            None => {
                index.insert(n.key.clone(), dst.len());
                dst.push(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_keys_count_segments_and_refuse_empty_last() {
        assert_eq!(split_path("a"), Some(1));
        assert_eq!(split_path("/a//b"), Some(2));
        assert_eq!(split_path("a/"), None);
        assert_eq!(split_path("/"), None);
        assert_eq!(split_path(""), None);
    }

    #[test]
    fn large_merge_uses_index_and_keeps_first_position() {
        let mk = |n: usize, v: i64| -> Vec<Node> {
            (0..n).map(|i| Node::value(format!("k{i}"), v)).collect()
        };
        let mut dst = mk(100, 1);
        let mut src = mk(50, 2);
        src.push(Node::value("new", 3));
        merge_children(&mut dst, src);
        let merged = merge_all(vec![Node::value("a", 1), Node::value("a", 2)]);
        assert_eq!(merged, vec![Node::value("a", 2)]);
        assert_eq!(dst.len(), 101);
        assert_eq!(dst[0], Node::value("k0", 2));
        assert_eq!(dst[60], Node::value("k60", 1));
        assert_eq!(dst[100], Node::value("new", 3));
    }
}
