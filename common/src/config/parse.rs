//! Lexer and parser of the libdm-config text format (protocol.md §2.2–2.4).
//!
//! SKELETON: signatures are fixed; the implementation is being written.

use super::Tree;
use std::fmt;

/// How repeated keys under one parent are treated (protocol.md §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DupMode {
    /// `dm_config_parse_without_dup_node_check`: daemon requests and replies. Every occurrence is
    /// kept as its own node; lookups return the first.
    KeepAll,
    /// `dm_config_parse`: lvm.conf. Repeated sections merge into the first; a repeated value
    /// replaces the earlier one (last wins).
    Merge,
}

/// Hard limits so hostile input cannot exhaust the stack or memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest section nesting accepted.
    pub max_depth: usize,
    /// Largest input accepted, in bytes.
    pub max_input: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 128,
            max_input: 64 << 20,
        }
    }
}

/// What went wrong while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    Empty,
    Unexpected(String),
    TooDeep(usize),
    TooLarge(usize),
    BadNumber(String),
    InvalidUtf8,
}

/// A parse error with the 1-based line and column where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parse error at line {}, column {}: ",
            self.line, self.column
        )?;
        match &self.kind {
            ParseErrorKind::Empty => write!(f, "empty document"),
            ParseErrorKind::Unexpected(s) => write!(f, "unexpected {s}"),
            ParseErrorKind::TooDeep(d) => write!(f, "nesting deeper than {d}"),
            ParseErrorKind::TooLarge(n) => write!(f, "input larger than {n} bytes"),
            ParseErrorKind::BadNumber(s) => write!(f, "bad number {s:?}"),
            ParseErrorKind::InvalidUtf8 => write!(f, "invalid UTF-8"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parse a document with the default [`Limits`].
pub fn parse(input: &[u8], mode: DupMode) -> Result<Tree, ParseError> {
    parse_with_limits(input, mode, &Limits::default())
}

/// Parse a document. Input ends at the first NUL byte, as in libdm.
pub fn parse_with_limits(input: &[u8], mode: DupMode, limits: &Limits) -> Result<Tree, ParseError> {
    let _ = (input, mode, limits);
    todo!("config parser")
}
