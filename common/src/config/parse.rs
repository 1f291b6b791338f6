//! Parser of the libdm-config text format (docs/protocol.md §2.3–2.4): grammar, limits, errors.
//!
//! The grammar is driven by an explicit stack of open sections, so nesting depth costs heap, not
//! call stack; [`Limits::max_depth`] bounds it (path keys such as `a/b/c` count every segment).
//! Tokens come from [`super::lex`]; nodes are placed by [`super::build`] according to [`DupMode`].
//! Line and column of an error are computed from the byte offset only when an error happens.

use super::build::{merge_all, push_path, split_path};
use super::lex::{parse_float, parse_int, values_follow, LexError, Lexer, TokKind, Token};
use super::{Body, Node, Scalar, Tree, Value};
use std::fmt;

/// How repeated keys under one parent are treated (docs/protocol.md §2.4).
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
    /// A `"…"` or `'…'` string runs to the end of input (libdm accepts it; we refuse it).
    Unterminated,
    /// A NUL byte followed by more text (libdm silently stops at the first NUL).
    Nul,
    /// A key that is empty or whose `/` path ends with an empty segment.
    EmptyKey,
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
            ParseErrorKind::Unterminated => write!(f, "unterminated string"),
            ParseErrorKind::Nul => write!(f, "NUL byte inside the text"),
            ParseErrorKind::EmptyKey => write!(f, "empty key"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parse a document with the default [`Limits`].
pub fn parse(input: &[u8], mode: DupMode) -> Result<Tree, ParseError> {
    parse_with_limits(input, mode, &Limits::default())
}

/// Parse a document.
///
/// Trailing NUL bytes end the input as in libdm (C strings, zero-padded metadata areas); a NUL
/// followed by anything else is refused ([`ParseErrorKind::Nul`]) where libdm would silently drop
/// the rest. The text must be UTF-8.
pub fn parse_with_limits(input: &[u8], mode: DupMode, limits: &Limits) -> Result<Tree, ParseError> {
    if input.len() > limits.max_input {
        return Err(ParseError {
            line: 1,
            column: 1,
            kind: ParseErrorKind::TooLarge(limits.max_input),
        });
    }
    let mut src = input;
    if let Some(nul) = input.iter().position(|&b| b == 0) {
        if input[nul..].iter().any(|&b| b != 0) {
            return Err(error_at(input, nul, ParseErrorKind::Nul));
        }
        src = &input[..nul];
    }
    let text = match std::str::from_utf8(src) {
        Ok(t) => t,
        Err(e) => return Err(error_at(src, e.valid_up_to(), ParseErrorKind::InvalidUtf8)),
    };
    Parser {
        text,
        lexer: Lexer::new(src),
        mode,
        limits,
    }
    .document()
    .map_err(|e| *e)
}

/// The parser's internal error: boxed, so that the `Result`s passed around on every token stay
/// small (the error path is rare, the token path is hot).
type Fail = Box<ParseError>;

/// Build an error for byte offset `off`: 1-based line, and column counted in characters.
fn error_at(src: &[u8], off: usize, kind: ParseErrorKind) -> ParseError {
    let off = off.min(src.len());
    let before = &src[..off];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let column = 1 + before[line_start..]
        .iter()
        .filter(|&&b| (b & 0xc0) != 0x80)
        .count();
    ParseError { line, column, kind }
}

/// A section whose `{` has been read and whose `}` has not.
struct Frame {
    key: String,
    /// Tree depth of this section (the implicit root is 0).
    depth: usize,
    children: Vec<Node>,
}

struct Parser<'a, 'l> {
    text: &'a str,
    lexer: Lexer<'a>,
    mode: DupMode,
    limits: &'l Limits,
}

impl<'a> Parser<'a, '_> {
    fn err(&self, off: usize, kind: ParseErrorKind) -> Fail {
        Box::new(error_at(self.text.as_bytes(), off, kind))
    }

    fn next(&mut self, prev: TokKind) -> Result<Token, Fail> {
        self.lexer.next(values_follow(prev)).map_err(|e| match e {
            LexError::Unterminated(at) => self.err(at, ParseErrorKind::Unterminated),
            LexError::BadNumber(s, e) => {
                self.err(s, ParseErrorKind::BadNumber(excerpt(&self.text[s..e])))
            }
        })
    }

    fn unexpected(&self, tok: Token, expected: &str) -> Fail {
        let found = match tok.kind {
            TokKind::Eof => "end of input".to_owned(),
            _ => format!("`{}`", excerpt(&self.text[tok.start..tok.end])),
        };
        self.err(
            tok.start,
            ParseErrorKind::Unexpected(format!("{found}, expected {expected}")),
        )
    }

    /// The text of a string token without its quotes, unescaped for `"…"`.
    fn string_body(&self, tok: Token) -> String {
        let body = &self.text[tok.start + 1..tok.end - 1];
        match tok.kind {
            TokKind::DqString { escaped: true } => unescape(body),
            _ => body.to_owned(),
        }
    }

    fn document(mut self) -> Result<Tree, Fail> {
        let mut stack: Vec<Frame> = vec![Frame {
            key: String::new(),
            depth: 0,
            children: Vec::new(),
        }];
        let mut tok = self.next(TokKind::SectionE)?;
        loop {
            let key = match tok.kind {
                TokKind::Eof if stack.len() == 1 => break,
                TokKind::Eof => return Err(self.unexpected(tok, "`}`")),
                TokKind::SectionE if stack.len() > 1 => {
                    let frame = stack.pop().expect("stack holds the open section");
                    let children = self.merged(frame.children);
                    let parent = stack.last_mut().expect("root frame stays");
                    push_path(&mut parent.children, frame.key, Body::Section(children));
                    tok = self.next(TokKind::SectionE)?;
                    continue;
                }
                TokKind::Ident => self.text[tok.start..tok.end].to_owned(),
                TokKind::DqString { .. } | TokKind::SqString => self.string_body(tok),
                _ => return Err(self.unexpected(tok, "a key")),
            };
            let key_pos = tok.start;
            let segments =
                split_path(&key).ok_or_else(|| self.err(key_pos, ParseErrorKind::EmptyKey))?;
            let depth = stack.last().map_or(0, |f| f.depth);
            tok = self.next(tok.kind)?;
            match tok.kind {
                TokKind::SectionB => {
                    let depth = depth + segments;
                    if depth > self.limits.max_depth {
                        return Err(
                            self.err(key_pos, ParseErrorKind::TooDeep(self.limits.max_depth))
                        );
                    }
                    stack.push(Frame {
                        key,
                        depth,
                        children: Vec::new(),
                    });
                    tok = self.next(TokKind::SectionB)?;
                }
                TokKind::Eq => {
                    if depth + segments - 1 > self.limits.max_depth {
                        return Err(
                            self.err(key_pos, ParseErrorKind::TooDeep(self.limits.max_depth))
                        );
                    }
                    let (value, after) = self.value(&key)?;
                    let parent = stack.last_mut().expect("root frame stays");
                    push_path(&mut parent.children, key, Body::Value(value));
                    tok = after;
                }
                _ => return Err(self.unexpected(tok, "`=` or `{`")),
            }
        }
        let root = stack.pop().expect("root frame stays");
        if root.children.is_empty() {
            return Err(self.err(self.text.len(), ParseErrorKind::Empty));
        }
        Ok(Tree {
            nodes: self.merged(root.children),
        })
    }

    /// In merge mode, fold a closed section's children.
    fn merged(&self, children: Vec<Node>) -> Vec<Node> {
        match self.mode {
            DupMode::KeepAll => children,
            DupMode::Merge => merge_all(children),
        }
    }

    /// After `=` of `key`: a scalar or an array. Returns the value and the token after it.
    fn value(&mut self, key: &str) -> Result<(Value, Token), Fail> {
        let tok = self.next(TokKind::Eq)?;
        if tok.kind != TokKind::ArrayB {
            let s = self.scalar(tok, key)?;
            let after = self.next(tok.kind)?;
            return Ok((Value::Scalar(s), after));
        }
        let mut items = Vec::new();
        let mut tok = self.next(TokKind::ArrayB)?;
        while tok.kind != TokKind::ArrayE {
            items.push(self.scalar(tok, key)?);
            tok = self.next(tok.kind)?;
            if tok.kind == TokKind::Comma {
                tok = self.next(TokKind::Comma)?;
            }
        }
        let after = self.next(TokKind::ArrayE)?;
        Ok((Value::Array(items), after))
    }

    fn scalar(&self, tok: Token, key: &str) -> Result<Scalar, Fail> {
        let text = &self.text[tok.start..tok.end];
        match tok.kind {
            TokKind::Int => match parse_int(text) {
                Some(i) => Ok(Scalar::Int(i)),
                // libdm repairs creation_time written by old 32-bit builds to 2018-05-24.
                None if key.rsplit('/').next() == Some("creation_time") => {
                    Ok(Scalar::Int(1_527_120_000))
                }
                None => Err(self.err(tok.start, ParseErrorKind::BadNumber(excerpt(text)))),
            },
            TokKind::Float => parse_float(text)
                .map(Scalar::Float)
                .ok_or_else(|| self.err(tok.start, ParseErrorKind::BadNumber(excerpt(text)))),
            TokKind::DqString { .. } | TokKind::SqString => Ok(Scalar::Str(self.string_body(tok))),
            TokKind::Bare => Ok(Scalar::Str(text.to_owned())),
            _ => Err(self.unexpected(tok, "a value")),
        }
    }
}

/// At most 40 characters of a token for an error message (hostile tokens can be megabytes).
fn excerpt(t: &str) -> String {
    let mut shown: String = t.chars().take(40).collect();
    if shown.len() < t.len() {
        shown.push('…');
    }
    shown
}

/// `dm_unescape_double_quotes`: `\"` becomes `"`, `\\` becomes `\`, any other pair stays.
pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.as_bytes().first() {
            Some(&c @ (b'"' | b'\\')) => {
                out.push(c as char);
                rest = &after[1..];
            }
            _ => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}
