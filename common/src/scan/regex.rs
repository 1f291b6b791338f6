//! The regular-expression subset of lvm2's device filters (libdm/regex): literals, `.`, `[...]`
//! and `[^...]` with ranges and `\n \r \t` escapes, `\x` quoting, `*`, `+`, `?`, `|`, `( )`, and
//! `^` / `$` as anchor symbols that match the start and end of the name.
//!
//! Matching is a search (the pattern may match anywhere in the name), done by simulating a
//! Thompson NFA over `^ name $`: linear in the name length, no backtracking.

use std::fmt;

/// Symbols beyond the 256 bytes: the start and end of the input.
const HAT: usize = 256;
const DOLLAR: usize = 257;
const SYMBOLS: usize = 258;
/// Patterns longer than this are refused (lvm.conf filters are short).
const MAX_PATTERN: usize = 4096;
/// Deepest `( )` nesting accepted.
const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegexError {
    UnclosedBracket,
    UnclosedParen,
    UnexpectedParen,
    DanglingEscape,
    BadOr,
    /// `*`, `+` or `?` with nothing before it.
    NothingToRepeat,
    TooLong,
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegexError::UnclosedBracket => "unterminated character set",
            RegexError::UnclosedParen => "missing ')' in regular expression",
            RegexError::UnexpectedParen => "unbalanced ')' in regular expression",
            RegexError::DanglingEscape => "badly quoted character at end of expression",
            RegexError::BadOr => "badly formed 'or' expression",
            RegexError::NothingToRepeat => "repetition operator with nothing to repeat",
            RegexError::TooLong => "regular expression too long",
        })
    }
}

impl std::error::Error for RegexError {}

#[derive(Clone, PartialEq, Eq)]
struct CharSet([u64; 5]);

impl CharSet {
    fn empty() -> Self {
        CharSet([0; 5])
    }
    fn set(&mut self, s: usize) {
        self.0[s / 64] |= 1 << (s % 64);
    }
    fn clear(&mut self, s: usize) {
        self.0[s / 64] &= !(1 << (s % 64));
    }
    fn has(&self, s: usize) -> bool {
        self.0[s / 64] & (1 << (s % 64)) != 0
    }
    fn single(s: usize) -> Self {
        let mut c = Self::empty();
        c.set(s);
        c
    }
    /// All bytes (not the anchors).
    fn all_bytes() -> Self {
        let mut c = Self::empty();
        (0..256).for_each(|s| c.set(s));
        c
    }
}

enum Ast {
    Set(CharSet),
    Cat(Box<Ast>, Box<Ast>),
    Or(Box<Ast>, Box<Ast>),
    Star(Box<Ast>),
    Plus(Box<Ast>),
    Quest(Box<Ast>),
    Empty,
}

struct Parser<'a> {
    p: &'a [u8],
    i: usize,
    depth: usize,
}

fn escaped(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        c => c,
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.p.get(self.i).copied()
    }

    fn or_term(&mut self) -> Result<Ast, RegexError> {
        let left = self.cat_term()?;
        if self.peek() != Some(b'|') {
            return Ok(left);
        }
        self.i += 1;
        if matches!(self.peek(), None | Some(b')')) {
            return Err(RegexError::BadOr);
        }
        Ok(Ast::Or(Box::new(left), Box::new(self.or_term()?)))
    }

    fn cat_term(&mut self) -> Result<Ast, RegexError> {
        let mut items = Vec::new();
        while !matches!(self.peek(), None | Some(b'|') | Some(b')')) {
            items.push(self.closure_term()?);
        }
        Ok(items
            .into_iter()
            .rev()
            .reduce(|right, left| Ast::Cat(Box::new(left), Box::new(right)))
            .unwrap_or(Ast::Empty))
    }

    fn closure_term(&mut self) -> Result<Ast, RegexError> {
        let mut n = self.term()?;
        while let Some(op @ (b'*' | b'+' | b'?')) = self.peek() {
            self.i += 1;
            n = match op {
                b'*' => Ast::Star(Box::new(n)),
                b'+' => Ast::Plus(Box::new(n)),
                _ => Ast::Quest(Box::new(n)),
            };
        }
        Ok(n)
    }

    fn term(&mut self) -> Result<Ast, RegexError> {
        let Some(c) = self.peek() else {
            return Ok(Ast::Empty);
        };
        self.i += 1;
        Ok(Ast::Set(match c {
            b'(' => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(RegexError::TooLong);
                }
                let inner = self.or_term()?;
                self.depth -= 1;
                if self.peek() != Some(b')') {
                    return Err(RegexError::UnclosedParen);
                }
                self.i += 1;
                return Ok(inner);
            }
            b'*' | b'+' | b'?' => return Err(RegexError::NothingToRepeat),
            b'[' => self.bracket()?,
            b'^' => CharSet::single(HAT),
            b'$' => CharSet::single(DOLLAR),
            b'.' => {
                let mut s = CharSet::all_bytes();
                for b in [b'\n', b'\r', 0] {
                    s.clear(b as usize);
                }
                s
            }
            b'\\' => {
                let e = self.peek().ok_or(RegexError::DanglingEscape)?;
                self.i += 1;
                CharSet::single(escaped(e) as usize)
            }
            c => CharSet::single(c as usize),
        }))
    }

    /// After `[`: a set up to `]`, with `^` negation, ranges and escapes.
    fn bracket(&mut self) -> Result<CharSet, RegexError> {
        let neg = self.peek() == Some(b'^');
        let mut set = if neg {
            let mut s = CharSet::all_bytes();
            s.clear(0);
            self.i += 1;
            s
        } else {
            CharSet::empty()
        };
        let mut last: Option<u8> = None;
        loop {
            let c = self.peek().ok_or(RegexError::UnclosedBracket)?;
            self.i += 1;
            let (lo, hi) = match c {
                b']' => return Ok(set),
                b'\\' => {
                    let e = escaped(self.peek().ok_or(RegexError::UnclosedBracket)?);
                    self.i += 1;
                    (e, e)
                }
                b'-' if last.is_some() => {
                    let end = self.peek().ok_or(RegexError::UnclosedBracket)?;
                    self.i += 1;
                    let start = last.unwrap_or(end);
                    (start.min(end), start.max(end))
                }
                c => (c, c),
            };
            for b in lo..=hi {
                if neg {
                    set.clear(b as usize)
                } else {
                    set.set(b as usize)
                }
            }
            last = Some(hi);
        }
    }
}

#[derive(Clone)]
enum State {
    Sym(CharSet, usize),
    Split(usize, usize),
    Match,
}

/// A compiled pattern.
pub struct Regex {
    states: Vec<State>,
    start: usize,
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regex({} states)", self.states.len())
    }
}

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex, RegexError> {
        if pattern.len() > MAX_PATTERN {
            return Err(RegexError::TooLong);
        }
        let mut p = Parser {
            p: pattern.as_bytes(),
            i: 0,
            depth: 0,
        };
        let ast = p.or_term()?;
        if p.i < p.p.len() {
            return Err(RegexError::UnexpectedParen);
        }
        let mut states = vec![State::Match];
        let start = compile(&ast, 0, &mut states);
        Ok(Regex { states, start })
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let n = self.states.len();
        let mut cur = vec![false; n];
        let mut next = vec![false; n];
        let mut stack = Vec::new();
        let symbols = std::iter::once(HAT)
            .chain(text.bytes().map(usize::from))
            .chain(std::iter::once(DOLLAR));
        for sym in symbols {
            self.add(self.start, &mut cur, &mut stack);
            if cur[0] {
                return true;
            }
            next.iter_mut().for_each(|b| *b = false);
            for s in (0..n).filter(|&s| cur[s]) {
                if let State::Sym(set, to) = &self.states[s] {
                    if sym < SYMBOLS && set.has(sym) {
                        self.add(*to, &mut next, &mut stack);
                    }
                }
            }
            std::mem::swap(&mut cur, &mut next);
        }
        self.add(self.start, &mut cur, &mut stack);
        cur[0]
    }

    /// Add `s` and its epsilon closure to `set`.
    fn add(&self, s: usize, set: &mut [bool], stack: &mut Vec<usize>) {
        stack.push(s);
        while let Some(s) = stack.pop() {
            if set[s] {
                continue;
            }
            set[s] = true;
            if let State::Split(a, b) = self.states[s] {
                stack.push(b);
                stack.push(a);
            }
        }
    }
}

/// Compile `ast` so that it continues at `next`; returns its entry state.
fn compile(ast: &Ast, next: usize, st: &mut Vec<State>) -> usize {
    let push = |st: &mut Vec<State>, s: State| {
        st.push(s);
        st.len() - 1
    };
    match ast {
        Ast::Empty => next,
        Ast::Set(c) => push(st, State::Sym(c.clone(), next)),
        Ast::Cat(a, b) => {
            let b = compile(b, next, st);
            compile(a, b, st)
        }
        Ast::Or(a, b) => {
            let a = compile(a, next, st);
            let b = compile(b, next, st);
            push(st, State::Split(a, b))
        }
        Ast::Quest(a) => {
            let a = compile(a, next, st);
            push(st, State::Split(a, next))
        }
        Ast::Star(a) | Ast::Plus(a) => {
            // loop: split -> (a -> split) | next
            let split = push(st, State::Split(0, next));
            let body = compile(a, split, st);
            st[split] = State::Split(body, next);
            if matches!(ast, Ast::Star(_)) {
                split
            } else {
                body
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Regex::new(p).unwrap().is_match(t)
    }

    #[test]
    fn search_is_unanchored_unless_hat_or_dollar() {
        assert!(m("loop", "/dev/loop3"));
        assert!(m(".*", ""));
        assert!(!m("^loop", "/dev/loop3"));
        assert!(m("^/dev/loop", "/dev/loop3"));
        assert!(m("loop[0-9]$", "/dev/loop3"));
        assert!(!m("loop[0-9]$", "/dev/loop31"));
        assert!(m("^/dev/sd[a-c]+$", "/dev/sdab"));
        assert!(!m("^/dev/sd[a-c]+$", "/dev/sdd"));
    }

    #[test]
    fn classes_alternation_and_repeats() {
        assert!(m("^/dev/(sda|loop)[0-9]*$", "/dev/sda"));
        assert!(m("^/dev/(sda|loop)[0-9]*$", "/dev/loop12"));
        assert!(!m("^/dev/(sda|loop)[0-9]*$", "/dev/sdb"));
        assert!(m("^a?b+$", "bbb"));
        assert!(!m("^a?b+$", "aab"));
        assert!(m("[^a-z]", "abc1"));
        assert!(!m("^[^a-z]+$", "abc1"));
        assert!(m("a\\.b", "a.b"));
        assert!(!m("a\\.b", "axb"));
        assert!(m("^(ab)*$", "abab"));
        assert!(!m("^(ab)*$", "aba"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(Regex::new("[abc").unwrap_err(), RegexError::UnclosedBracket);
        assert_eq!(Regex::new("(abc").unwrap_err(), RegexError::UnclosedParen);
        assert_eq!(Regex::new("abc)").unwrap_err(), RegexError::UnexpectedParen);
        assert_eq!(Regex::new("abc\\").unwrap_err(), RegexError::DanglingEscape);
        assert_eq!(Regex::new("*a").unwrap_err(), RegexError::NothingToRepeat);
        assert_eq!(Regex::new("a|").unwrap_err(), RegexError::BadOr);
    }

    #[test]
    fn nested_stars_stay_linear() {
        let r = Regex::new("^(a*)*b$").unwrap();
        let long = "a".repeat(5000);
        assert!(!r.is_match(&long));
    }
}
