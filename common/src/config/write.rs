//! The three writers of config text (protocol.md §1.3, §2.6, §2.8).
//!
//! SKELETON: signatures are fixed; the implementation is being written.

use super::Node;

/// One field of a printf-style ("simple") message: `key = "str"`, `key = 123`, or a raw block.
#[derive(Debug, Clone, PartialEq)]
pub enum SimpleField {
    Str(String),
    Int(i64),
    /// Appended verbatim (libdaemon's `%b`).
    Raw(String),
}

/// `dm_config_write_node`: `key=value` lines, TAB indentation, every line ends with `\n`.
pub fn write_tree(nodes: &[Node]) -> String {
    let _ = nodes;
    todo!("tree writer")
}

/// `daemon_reply_simple` / `daemon_send_simple`: `key = "value"\n` and `key = 123\n`, strings
/// written unescaped as C does.
pub fn write_simple(fields: &[(&str, SimpleField)]) -> String {
    let _ = fields;
    todo!("simple writer")
}

/// The on-disk VG metadata layout of `lib/format_text/export.c`: `key = value` with spaces,
/// lists as `["a", "b"]`; `indent` selects the backup-file form with TAB indentation.
pub fn write_metadata(nodes: &[Node], indent: bool) -> String {
    let _ = (nodes, indent);
    todo!("metadata writer")
}
