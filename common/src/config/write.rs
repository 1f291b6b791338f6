//! The writers of config text (docs/protocol.md §1.3, §2.6, §2.8).
//!
//! - [`write_tree`]: `dm_config_write_node`, the form of every tree-built daemon message.
//! - [`write_simple`]: libdaemon's printf writer (`daemon_reply_simple`, `daemon_send_simple`).
//! - [`write_metadata`]: the layout of `lib/format_text/export.c` (see [`super::metadata`]).
//!
//! Writers walk the tree with an explicit stack, so deep trees cost no call stack.

use super::{Body, Node, Scalar, Value};
use std::fmt::Write as _;

pub use super::metadata::write_metadata;

/// One field of a printf-style ("simple") message: `key = "str"`, `key = 123`, or a raw block.
#[derive(Debug, Clone, PartialEq)]
pub enum SimpleField {
    Str(String),
    Int(i64),
    /// Appended verbatim (libdaemon's `%b`).
    Raw(String),
}

/// libdm caps indentation at 32 TABs.
const MAX_INDENT: usize = 32;
const TABS: &str = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";

/// `dm_config_write_node`: `key=value` lines, TAB indentation, every line ends with `\n`.
pub fn write_tree(nodes: &[Node]) -> String {
    let mut out = String::with_capacity(64 * nodes.len());
    write_tree_into(&mut out, nodes);
    out
}

/// [`write_tree`] appending to `out`.
pub fn write_tree_into(out: &mut String, nodes: &[Node]) {
    let mut stack: Vec<std::slice::Iter<'_, Node>> = vec![nodes.iter()];
    loop {
        let level = stack.len().wrapping_sub(1);
        let Some(iter) = stack.last_mut() else {
            break;
        };
        let indent = &TABS[..level.min(MAX_INDENT)];
        let Some(node) = iter.next() else {
            stack.pop();
            if level > 0 {
                out.push_str(&TABS[..(level - 1).min(MAX_INDENT)]);
                out.push_str("}\n");
            }
            continue;
        };
        out.push_str(indent);
        push_key(out, &node.key);
        match &node.body {
            Body::Section(children) => {
                out.push_str(" {\n");
                stack.push(children.iter());
            }
            Body::Value(v) => {
                out.push('=');
                push_value(out, v);
                out.push('\n');
            }
        }
    }
}

/// A key as libdm writes it: quoted and escaped when it holds `#`, `"` or `!`. We also quote a
/// key that would not read back as one identifier (empty, whitespace, `=`, `{`, `}`, or a
/// leading `'`, `[`, `]`, `,`), where libdm writes text it cannot parse itself.
pub(crate) fn push_key(out: &mut String, key: &str) {
    let needs = key.is_empty()
        || key.bytes().any(|b| {
            matches!(b, b'#' | b'"' | b'!' | b'=' | b'{' | b'}') || super::lex::is_space(b)
        })
        || matches!(key.as_bytes()[0], b'\'' | b'[' | b']' | b',');
    if needs {
        out.push('"');
        push_escaped(out, key);
        out.push('"');
    } else {
        out.push_str(key);
    }
}

/// `dm_escape_double_quotes`: `"` and `\` get a backslash; nothing else is touched.
pub(crate) fn push_escaped(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(['"', '\\']) {
        out.push_str(&rest[..i]);
        out.push('\\');
        out.push_str(&rest[i..i + 1]);
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// The right-hand side: a one-element array is written as a scalar, `[]` for an empty one.
fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Scalar(s) => push_scalar(out, s),
        Value::Array(items) if items.len() == 1 => push_scalar(out, &items[0]),
        Value::Array(items) => {
            out.push('[');
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_scalar(out, s);
            }
            out.push(']');
        }
    }
}

/// One value: `%lld`, `%f` (six decimals of the `float`), or a quoted escaped string.
pub(crate) fn push_scalar(out: &mut String, s: &Scalar) {
    match s {
        Scalar::Int(i) => push_int(out, *i),
        Scalar::Float(f) => {
            let _ = write!(out, "{:.6}", f64::from(*f));
        }
        Scalar::Str(s) => {
            out.push('"');
            push_escaped(out, s);
            out.push('"');
        }
    }
}

/// `%lld` without going through `fmt`.
pub(crate) fn push_int(out: &mut String, i: i64) {
    let mut buf = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push('-');
    }
    for &b in &buf[at..] {
        out.push(b as char);
    }
}

/// `daemon_reply_simple` / `daemon_send_simple`: `key = "value"\n` and `key = 123\n`, strings
/// written unescaped as C does. A [`SimpleField::Raw`] block is written as C's `"key = %b"`:
/// the key, one space, then the block verbatim (with an empty key, only the block).
pub fn write_simple(fields: &[(&str, SimpleField)]) -> String {
    let mut out = String::new();
    for (key, field) in fields {
        match field {
            SimpleField::Str(s) => {
                out.push_str(key);
                out.push_str(" = \"");
                out.push_str(s);
                out.push_str("\"\n");
            }
            SimpleField::Int(i) => {
                out.push_str(key);
                out.push_str(" = ");
                push_int(&mut out, *i);
                out.push('\n');
            }
            SimpleField::Raw(block) => {
                if !key.is_empty() {
                    out.push_str(key);
                    out.push(' ');
                }
                out.push_str(block);
            }
        }
    }
    out
}
