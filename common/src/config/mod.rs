//! The libdm-config text codec: one codec for daemon messages, on-disk metadata and lvm.conf.
//!
//! - [`Tree`], [`Node`], [`Value`], [`Scalar`]: the value model (this file).
//! - [`parse`]: lexer and parser with the two duplicate-key modes ([`DupMode`]) and hard limits.
//! - [`write`]: the tree writer (`dm_config_write_node`), the printf-style simple writer
//!   (`daemon_reply_simple`), and the metadata writer (`lib/format_text/export.c` layout).
//!
//! Lookups follow libdm: a path is split on `/`, each level takes the *first* matching key, and
//! types are strict (an INT lookup on a string gives `None`).
#![forbid(unsafe_code)]

mod build;
mod edit;
mod lex;
mod metadata;
pub mod parse;
pub mod write;

#[cfg(test)]
mod tests_cases;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_libdm_vectors;
#[cfg(test)]
mod tests_roundtrip;

pub use parse::{parse, parse_with_limits, DupMode, Limits, ParseError};
pub use write::{write_metadata, write_simple, write_tree, SimpleField};

/// A single config value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// 64-bit signed integer (`strtoll(.., 0)` semantics when parsed).
    Int(i64),
    /// libdm keeps floats as C `float` (32-bit) and writes them with `%f`.
    Float(f32),
    /// A string, unescaped.
    Str(String),
}

/// The right-hand side of `key = ...`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `key = 1`, `key = "x"`.
    Scalar(Scalar),
    /// `key = [a, b]`; `[]` is the empty array. A one-element array is kept as an array so the
    /// metadata writer can emit brackets, but lookups treat it exactly like a scalar and the tree
    /// writer writes it as a scalar (libdm quirk).
    Array(Vec<Scalar>),
}

/// What a node holds: either a section of child nodes or a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Section(Vec<Node>),
    Value(Value),
}

/// One `key { ... }` or `key = value` node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub key: String,
    pub body: Body,
}

/// A parsed document: the top-level nodes in document order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Scalar {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Scalar::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl Value {
    /// The value as libdm's value chain sees it: a scalar is a one-element list.
    pub fn items(&self) -> &[Scalar] {
        match self {
            Value::Scalar(s) => std::slice::from_ref(s),
            Value::Array(v) => v,
        }
    }
    /// The first element, as `dm_config_find_*` reads it (`None` for `[]`).
    pub fn first(&self) -> Option<&Scalar> {
        self.items().first()
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Scalar(Scalar::Str(s.to_owned()))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Scalar(Scalar::Str(s))
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Scalar(Scalar::Int(i))
    }
}

impl Node {
    pub fn value(key: impl Into<String>, value: impl Into<Value>) -> Node {
        Node {
            key: key.into(),
            body: Body::Value(value.into()),
        }
    }
    pub fn section(key: impl Into<String>, children: Vec<Node>) -> Node {
        Node {
            key: key.into(),
            body: Body::Section(children),
        }
    }
    /// Children of a section; empty for a value node.
    pub fn children(&self) -> &[Node] {
        match &self.body {
            Body::Section(c) => c,
            Body::Value(_) => &[],
        }
    }
    pub fn children_mut(&mut self) -> Option<&mut Vec<Node>> {
        match &mut self.body {
            Body::Section(c) => Some(c),
            Body::Value(_) => None,
        }
    }
    pub fn is_section(&self) -> bool {
        matches!(self.body, Body::Section(_))
    }
    pub fn get_value(&self) -> Option<&Value> {
        match &self.body {
            Body::Value(v) => Some(v),
            Body::Section(_) => None,
        }
    }
    /// Path lookup below this node (the path is relative to its children).
    pub fn find(&self, path: &str) -> Option<&Node> {
        find_in(self.children(), path)
    }
    pub fn find_mut(&mut self, path: &str) -> Option<&mut Node> {
        match &mut self.body {
            Body::Section(c) => find_in_mut(c, path),
            Body::Value(_) => None,
        }
    }
    pub fn find_str(&self, path: &str) -> Option<&str> {
        nonempty(self.find_str_allow_empty(path))
    }
    pub fn find_str_allow_empty(&self, path: &str) -> Option<&str> {
        self.find(path)?.get_value()?.first()?.as_str()
    }
    pub fn find_int(&self, path: &str) -> Option<i64> {
        self.find(path)?.get_value()?.first()?.as_int()
    }
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }
    /// Builder: append `key = value` at the top level.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Tree {
        self.nodes.push(Node::value(key, value));
        self
    }
    /// Builder: append a whole node at the top level.
    pub fn with_node(mut self, node: Node) -> Tree {
        self.nodes.push(node);
        self
    }
    /// `dm_config_find_node`: first match at each level of the `/`-separated path.
    pub fn find(&self, path: &str) -> Option<&Node> {
        find_in(&self.nodes, path)
    }
    pub fn find_mut(&mut self, path: &str) -> Option<&mut Node> {
        find_in_mut(&mut self.nodes, path)
    }
    /// `dm_config_find_str`: a non-empty STRING, else `None`.
    pub fn find_str(&self, path: &str) -> Option<&str> {
        nonempty(self.find_str_allow_empty(path))
    }
    /// `dm_config_find_str_allow_empty`.
    pub fn find_str_allow_empty(&self, path: &str) -> Option<&str> {
        self.find(path)?.get_value()?.first()?.as_str()
    }
    /// `dm_config_find_int64`: an INT, else `None`.
    pub fn find_int(&self, path: &str) -> Option<i64> {
        self.find(path)?.get_value()?.first()?.as_int()
    }
    /// `dm_config_find_bool`: INT (nonzero) or y/yes/on/true, n/no/off/false.
    pub fn find_bool(&self, path: &str) -> Option<bool> {
        match self.find(path)?.get_value()?.first()? {
            Scalar::Int(i) => Some(*i != 0),
            Scalar::Str(s) => match s.to_ascii_lowercase().as_str() {
                "y" | "yes" | "on" | "true" => Some(true),
                "n" | "no" | "off" | "false" => Some(false),
                _ => None,
            },
            Scalar::Float(_) => None,
        }
    }
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn find_in<'a>(mut level: &'a [Node], path: &str) -> Option<&'a Node> {
    let mut found = None;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let node = level.iter().find(|n| n.key == seg)?;
        level = node.children();
        found = Some(node);
    }
    found
}

fn find_in_mut<'a>(level: &'a mut [Node], path: &str) -> Option<&'a mut Node> {
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    let first = segs.next()?;
    let mut node = level.iter_mut().find(|n| n.key == first)?;
    for seg in segs {
        node = match &mut node.body {
            Body::Section(c) => c.iter_mut().find(|n| n.key == seg)?,
            Body::Value(_) => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_takes_first_match_and_is_type_strict() {
        let t = Tree::new()
            .with("a", 1)
            .with("a", 2)
            .with("s", "")
            .with_node(Node::section("sec", vec![Node::value("k", "v")]));
        assert_eq!(t.find_int("a"), Some(1));
        assert_eq!(t.find_str("a"), None);
        assert_eq!(t.find_str("s"), None);
        assert_eq!(t.find_str_allow_empty("s"), Some(""));
        assert_eq!(t.find_str("sec/k"), Some("v"));
        assert_eq!(t.find_str("/sec//k"), Some("v"));
    }
}
