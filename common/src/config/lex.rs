//! Tokeniser of the libdm-config text format (docs/protocol.md §2.2), working on bytes.
//!
//! The token kind depends on the previous token, as in libdm: right after `=`, `[` or `,` a word
//! is a value (number or bare string), anywhere else it is an identifier. Tokens are byte ranges
//! into the input; nothing is allocated here. Number conversion (`strtoll(.., 0)` and a `strtod`
//! narrowed to `f32`) lives here too.

/// What a token is. Ranges are byte offsets into the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokKind {
    SectionB,
    SectionE,
    ArrayB,
    ArrayE,
    Comma,
    Eq,
    /// `"…"`; `escaped` is true when the body holds a backslash.
    DqString {
        escaped: bool,
    },
    /// `'…'`, no escapes.
    SqString,
    Int,
    Float,
    /// A word in key context.
    Ident,
    /// A word in value context.
    Bare,
    Eof,
}

/// One token: kind plus the byte range `start..end` of its full text (quotes included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokKind,
    pub start: usize,
    pub end: usize,
}

/// Why the lexer stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LexError {
    /// A quoted string runs to the end of input (offset of the opening quote).
    Unterminated(usize),
    /// A number runs straight into identifier characters (`0x10`, `1e5`, `1.2.3`): the range.
    BadNumber(usize, usize),
}

/// C `isspace` in the C locale.
#[inline]
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Bytes that end an identifier or a bare string.
#[inline]
fn ends_word(b: u8) -> bool {
    is_space(b) || matches!(b, b'#' | b'=' | b'{' | b'}')
}

/// Bytes that may directly follow a number without being glued to it.
#[inline]
fn ends_number(b: u8) -> bool {
    is_space(b)
        || matches!(
            b,
            b'#' | b'=' | b'{' | b'}' | b'[' | b']' | b',' | b'"' | b'\''
        )
}

pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        Lexer { src, pos: 0 }
    }

    /// Skip whitespace and `#` comments.
    fn skip_space(&mut self) {
        let s = self.src;
        let mut i = self.pos;
        while i < s.len() {
            let b = s[i];
            if b == b'#' {
                while i < s.len() && s[i] != b'\n' {
                    i += 1;
                }
            } else if is_space(b) {
                i += 1;
            } else {
                break;
            }
        }
        self.pos = i;
    }

    /// The next token; `values` is true right after `=`, `[` or `,`.
    pub fn next(&mut self, values: bool) -> Result<Token, LexError> {
        self.skip_space();
        let s = self.src;
        let start = self.pos;
        if start >= s.len() {
            return Ok(Token {
                kind: TokKind::Eof,
                start,
                end: start,
            });
        }
        let single = |kind| (kind, start + 1);
        let (kind, end) = match s[start] {
            b'{' => single(TokKind::SectionB),
            b'}' => single(TokKind::SectionE),
            b'[' => single(TokKind::ArrayB),
            b']' => single(TokKind::ArrayE),
            b',' => single(TokKind::Comma),
            b'=' => single(TokKind::Eq),
            b'"' => {
                let mut i = start + 1;
                let mut escaped = false;
                loop {
                    match s.get(i) {
                        None => return Err(LexError::Unterminated(start)),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            escaped = true;
                            i += 2;
                        }
                        Some(_) => i += 1,
                    }
                }
                (TokKind::DqString { escaped }, i + 1)
            }
            b'\'' => match s[start + 1..].iter().position(|&b| b == b'\'') {
                Some(n) => (TokKind::SqString, start + 1 + n + 1),
                None => return Err(LexError::Unterminated(start)),
            },
            b'0'..=b'9' | b'+' | b'-' | b'.' if values => {
                let mut float = s[start] == b'.';
                let mut i = start + 1;
                while i < s.len() {
                    match s[i] {
                        b'0'..=b'9' => i += 1,
                        b'.' if !float => {
                            float = true;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                if i < s.len() && !ends_number(s[i]) {
                    let mut j = i;
                    while j < s.len() && !ends_word(s[j]) {
                        j += 1;
                    }
                    return Err(LexError::BadNumber(start, j));
                }
                (if float { TokKind::Float } else { TokKind::Int }, i)
            }
            _ => {
                let mut i = start + 1;
                while i < s.len() && !ends_word(s[i]) {
                    i += 1;
                }
                (
                    if values {
                        TokKind::Bare
                    } else {
                        TokKind::Ident
                    },
                    i,
                )
            }
        };
        self.pos = end;
        Ok(Token { kind, start, end })
    }
}

/// Does this token kind let the next word be a value?
#[inline]
pub(crate) fn values_follow(kind: TokKind) -> bool {
    matches!(kind, TokKind::Eq | TokKind::ArrayB | TokKind::Comma)
}

/// `strtoll(text, NULL, 0)` on an INT token (`[+-]?[0-9]*`). `None` is `ERANGE`.
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    // base 0: a leading 0 means octal; strtoll stops at the first digit the base rejects.
    let radix: i64 = if digits.first() == Some(&b'0') { 8 } else { 10 };
    let mut acc: i64 = 0;
    for &d in digits {
        let v = i64::from(d - b'0');
        if v >= radix {
            break;
        }
        acc = acc.checked_mul(radix)?;
        acc = if neg {
            acc.checked_sub(v)?
        } else {
            acc.checked_add(v)?
        };
    }
    Some(acc)
}

/// `strtod` narrowed to `float` on a FLOAT token (`[+-.0-9][0-9]*` with one `.`).
/// `None` when C would set `ERANGE`, or when the value does not fit a `float` (C would store
/// `inf` and later write `inf`, which it cannot read back).
pub(crate) fn parse_float(text: &str) -> Option<f32> {
    let body = text.strip_prefix('+').unwrap_or(text);
    let has_digit = body.bytes().any(|b| b.is_ascii_digit());
    if !has_digit {
        // strtod converts nothing and returns 0 without an error: `.`, `-.`, `+.`
        return Some(0.0);
    }
    let d: f64 = body.parse().ok()?;
    let nonzero_digit = body.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if d.is_infinite() || (d != 0.0 && !d.is_normal()) || (d == 0.0 && nonzero_digit) {
        return None;
    }
    let f = d as f32;
    if f.is_infinite() {
        return None;
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str, values: bool) -> Vec<TokKind> {
        let mut lx = Lexer::new(src.as_bytes());
        let mut v = Vec::new();
        loop {
            let t = lx.next(values).unwrap();
            v.push(t.kind);
            if t.kind == TokKind::Eof {
                return v;
            }
        }
    }

    #[test]
    fn words_are_values_only_after_eq_bracket_comma() {
        use TokKind::*;
        assert_eq!(kinds("12", false), vec![Ident, Eof]);
        assert_eq!(kinds("12", true), vec![Int, Eof]);
        assert_eq!(kinds("1.5", true), vec![Float, Eof]);
        assert_eq!(kinds("abc,d]", true), vec![Bare, Eof]);
        assert_eq!(kinds("a#c\n{", false), vec![Ident, SectionB, Eof]);
    }

    #[test]
    fn strtoll_base_zero() {
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("00017"), Some(15));
        assert_eq!(parse_int("08"), Some(0));
        assert_eq!(parse_int("0789"), Some(7));
        assert_eq!(parse_int("-010"), Some(-8));
        assert_eq!(parse_int("+"), Some(0));
        assert_eq!(parse_int("-"), Some(0));
        assert_eq!(parse_int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), None);
        assert_eq!(parse_int("0777777777777777777777"), Some(i64::MAX));
        assert_eq!(parse_int("01000000000000000000000"), None);
    }

    #[test]
    fn strtod_narrowed_to_float() {
        assert_eq!(parse_float("1."), Some(1.0));
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("-.5"), Some(-0.5));
        assert_eq!(parse_float("+1.25"), Some(1.25));
        assert_eq!(parse_float("."), Some(0.0));
        assert_eq!(parse_float("0.1"), Some(0.1f32));
        let huge = format!("1{}.0", "0".repeat(40));
        assert_eq!(parse_float(&huge), None);
        let tiny = format!("0.{}1", "0".repeat(400));
        assert_eq!(parse_float(&tiny), None);
    }
}
