//! Building and editing trees: setting and removing nodes by path, more builders and
//! conversions, typed lookups beyond the libdm basics, and `Display` (the tree writer).
//!
//! Paths are split on `/` like lookups; editing always works on the *first* match at each level,
//! which is the node every lookup sees.

use super::{write, Body, Node, Scalar, Tree, Value};
use std::fmt;

// No `From<i32>`/`From<u32>` for `Value`: with a single integer impl, a literal such as
// `Node::value("dev_size", 16777216000)` infers `i64`; more impls would make it `i32`.
impl From<f32> for Value {
    fn from(f: f32) -> Self {
        Value::Scalar(Scalar::Float(f))
    }
}
impl From<Scalar> for Value {
    fn from(s: Scalar) -> Self {
        Value::Scalar(s)
    }
}
impl From<Vec<Scalar>> for Value {
    fn from(v: Vec<Scalar>) -> Self {
        Value::Array(v)
    }
}
impl From<&str> for Scalar {
    fn from(s: &str) -> Self {
        Scalar::Str(s.to_owned())
    }
}
impl From<String> for Scalar {
    fn from(s: String) -> Self {
        Scalar::Str(s)
    }
}
impl From<i64> for Scalar {
    fn from(i: i64) -> Self {
        Scalar::Int(i)
    }
}

impl Value {
    /// An array of strings, e.g. `status = ["READ", "WRITE"]`.
    pub fn strings<I, S>(items: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Value::Array(items.into_iter().map(|s| Scalar::Str(s.into())).collect())
    }
    /// The empty array `[]`.
    pub fn empty() -> Value {
        Value::Array(Vec::new())
    }
}

impl Scalar {
    pub fn as_float(&self) -> Option<f32> {
        match self {
            Scalar::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl Node {
    /// Builder: append `key = value` to a section (no effect on a value node).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Node {
        if let Body::Section(c) = &mut self.body {
            c.push(Node::value(key, value));
        }
        self
    }
    /// Builder: append a child node to a section (no effect on a value node).
    pub fn with_node(mut self, node: Node) -> Node {
        if let Body::Section(c) = &mut self.body {
            c.push(node);
        }
        self
    }
    /// Set `path` below this section (see [`Tree::set`]); `false` on a value node or when the
    /// path runs through a value.
    pub fn set(&mut self, path: &str, value: impl Into<Value>) -> bool {
        match &mut self.body {
            Body::Section(c) => set_in(c, path, Body::Value(value.into())),
            Body::Value(_) => false,
        }
    }
    /// Put `node` at `path` below this section (see [`Tree::set_node`]).
    pub fn set_node(&mut self, path: &str, node: Node) -> bool {
        match &mut self.body {
            Body::Section(c) => set_node_in(c, path, node),
            Body::Value(_) => false,
        }
    }
    /// Remove and return the first node at `path` below this section.
    pub fn remove(&mut self, path: &str) -> Option<Node> {
        match &mut self.body {
            Body::Section(c) => remove_in(c, path),
            Body::Value(_) => None,
        }
    }
    /// `dm_config_find_float`: a FLOAT, else `None`.
    pub fn find_float(&self, path: &str) -> Option<f32> {
        self.find(path)?.get_value()?.first()?.as_float()
    }
    /// `dm_config_get_list`: every element (a scalar is a one-element list).
    pub fn find_list(&self, path: &str) -> Option<&[Scalar]> {
        Some(self.find(path)?.get_value()?.items())
    }
    /// `dm_config_get_section`: the node at `path` if it is a section.
    pub fn find_section(&self, path: &str) -> Option<&Node> {
        self.find(path).filter(|n| n.is_section())
    }
    /// `dm_config_find_bool` below this node.
    pub fn find_bool(&self, path: &str) -> Option<bool> {
        scalar_bool(self.find(path)?.get_value()?.first()?)
    }
}

impl Tree {
    /// Parse libdaemon text (first occurrence of a key wins on lookup).
    pub fn parse(text: impl AsRef<[u8]>) -> Result<Tree, super::ParseError> {
        super::parse(text.as_ref(), super::DupMode::KeepAll)
    }
    /// Set `key = value` at `path`: replace the first node there (whatever it was), or append
    /// it, creating missing sections on the way. `false` when the path runs through a value.
    pub fn set(&mut self, path: &str, value: impl Into<Value>) -> bool {
        set_in(&mut self.nodes, path, Body::Value(value.into()))
    }
    /// Put `node` at `path` (its key is replaced by the last path segment), replacing the first
    /// node there or appending it.
    pub fn set_node(&mut self, path: &str, node: Node) -> bool {
        set_node_in(&mut self.nodes, path, node)
    }
    /// Remove and return the first node at `path`.
    pub fn remove(&mut self, path: &str) -> Option<Node> {
        remove_in(&mut self.nodes, path)
    }
    /// `dm_config_find_float`.
    pub fn find_float(&self, path: &str) -> Option<f32> {
        self.find(path)?.get_value()?.first()?.as_float()
    }
    /// `dm_config_get_list`.
    pub fn find_list(&self, path: &str) -> Option<&[Scalar]> {
        Some(self.find(path)?.get_value()?.items())
    }
    /// `dm_config_get_section`.
    pub fn find_section(&self, path: &str) -> Option<&Node> {
        self.find(path).filter(|n| n.is_section())
    }
}

/// The tree writer: `tree.to_string()` is [`write::write_tree`].
impl fmt::Display for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&write::write_tree(&self.nodes))
    }
}

/// The tree writer applied to this one node.
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&write::write_tree(std::slice::from_ref(self)))
    }
}

fn scalar_bool(s: &Scalar) -> Option<bool> {
    match s {
        Scalar::Int(i) => Some(*i != 0),
        Scalar::Str(s) => match s.to_ascii_lowercase().as_str() {
            "y" | "yes" | "on" | "true" => Some(true),
            "n" | "no" | "off" | "false" => Some(false),
            _ => None,
        },
        Scalar::Float(_) => None,
    }
}

/// Split a path into its non-empty segments; `None` when there are none.
fn segments(path: &str) -> Option<(Vec<&str>, &str)> {
    let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let last = segs.pop()?;
    Some((segs, last))
}

/// The child list of the section at `dirs` (created as needed).
fn dir_mut<'a>(mut level: &'a mut Vec<Node>, dirs: &[&str]) -> Option<&'a mut Vec<Node>> {
    for seg in dirs {
        let idx = match level.iter().position(|n| n.key == *seg) {
            Some(i) => i,
            None => {
                level.push(Node::section(*seg, Vec::new()));
                level.len() - 1
            }
        };
        let here = level;
        level = match &mut here[idx].body {
            Body::Section(c) => c,
            Body::Value(_) => return None,
        };
    }
    Some(level)
}

fn set_in(nodes: &mut Vec<Node>, path: &str, body: Body) -> bool {
    let Some((dirs, last)) = segments(path) else {
        return false;
    };
    set_node_in_dirs(
        nodes,
        &dirs,
        last,
        Node {
            key: last.to_owned(),
            body,
        },
    )
}

fn set_node_in(nodes: &mut Vec<Node>, path: &str, mut node: Node) -> bool {
    let Some((dirs, last)) = segments(path) else {
        return false;
    };
    last.clone_into(&mut node.key);
    set_node_in_dirs(nodes, &dirs, last, node)
}

fn set_node_in_dirs(nodes: &mut Vec<Node>, dirs: &[&str], last: &str, node: Node) -> bool {
    let Some(level) = dir_mut(nodes, dirs) else {
        return false;
    };
    match level.iter_mut().find(|n| n.key == last) {
        Some(existing) => *existing = node,
        None => level.push(node),
    }
    true
}

fn remove_in(nodes: &mut Vec<Node>, path: &str) -> Option<Node> {
    let (dirs, last) = segments(path)?;
    let mut level = nodes;
    for seg in dirs {
        let here = level;
        level = match &mut here.iter_mut().find(|n| n.key == seg)?.body {
            Body::Section(c) => c,
            Body::Value(_) => return None,
        };
    }
    let idx = level.iter().position(|n| n.key == last)?;
    Some(level.remove(idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_first_or_creates_path() {
        let mut t = Tree::parse("a=1\na=2\ns { x=1 }").unwrap();
        assert!(t.set("a", "one"));
        assert!(t.set("s/y", 5));
        assert!(t.set("new/deep/k", Value::strings(["p", "q"])));
        assert!(!t.set("a/below_a_value", 1));
        assert_eq!(
            t.to_string(),
            "a=\"one\"\na=2\ns {\n\tx=1\n\ty=5\n}\nnew {\n\tdeep {\n\t\tk=[\"p\",\"q\"]\n\t}\n}\n"
        );
    }

    #[test]
    fn big_integer_literals_still_infer_i64() {
        let n = Node::value("dev_size", 16_777_216_000);
        assert_eq!(n.to_string(), "dev_size=16777216000\n");
    }

    #[test]
    fn remove_takes_the_first_match() {
        let mut t = Tree::parse("a=1\na=2\ns { x=1 y=2 }").unwrap();
        assert_eq!(t.remove("a"), Some(Node::value("a", 1)));
        assert_eq!(t.find_int("a"), Some(2));
        assert_eq!(t.remove("s/y"), Some(Node::value("y", 2)));
        assert_eq!(t.remove("s/zz"), None);
        assert_eq!(t.remove("a/x"), None);
        assert_eq!(t.to_string(), "a=2\ns {\n\tx=1\n}\n");
    }

    #[test]
    fn node_builders_and_typed_lookups() {
        let mut n = Node::section("vg", vec![])
            .with("seqno", 3)
            .with("f", 1.5f32)
            .with("status", Value::strings(["READ"]))
            .with_node(Node::section("pvs", vec![]));
        assert!(n.set("pvs/pv0/dev_size", 8192));
        assert!(n.set_node("lvs", Node::section("ignored", vec![])));
        assert_eq!(n.find_int("pvs/pv0/dev_size"), Some(8192));
        assert_eq!(n.find_float("f"), Some(1.5));
        assert_eq!(n.find_list("status").map(<[Scalar]>::len), Some(1));
        assert!(n.find_section("lvs").is_some());
        assert!(n.find_section("seqno").is_none());
        assert_eq!(n.find_bool("seqno"), Some(true));
        assert_eq!(n.remove("f").map(|n| n.key), Some("f".to_owned()));
        assert_eq!(
            n.to_string(),
            "vg {\n\tseqno=3\n\tstatus=\"READ\"\n\tpvs {\n\t\tpv0 {\n\t\t\tdev_size=8192\n\t\t}\n\t}\n\tlvs {\n\t}\n}\n"
        );
    }
}
