//! Hostile input: every case is answered by an error (or a bounded result), never a crash,
//! unbounded memory or quadratic time.

use super::parse::ParseErrorKind as K;
use super::tests_cases::{err, p, pm};
use super::*;

#[test]
fn nesting_100000_deep_is_an_error_not_a_crash() {
    let src = format!("{}{}", "a {".repeat(100_000), "}".repeat(100_000));
    let e = err(&src);
    assert_eq!(e.kind, K::TooDeep(128));
    assert_eq!((e.line, e.column), (1, 3 * 128 + 1));
    // An unclosed flood too.
    assert_eq!(err(&"a{".repeat(100_000)).kind, K::TooDeep(128));
}

#[test]
fn deep_path_key_counts_towards_depth() {
    let key = vec!["s"; 200].join("/");
    assert_eq!(err(&format!("{key} = 1")).kind, K::TooDeep(128));
    let ok = vec!["s"; 128].join("/");
    assert_eq!(
        p(&format!("{ok}/leaf = 1")).find_int(&format!("{ok}/leaf")),
        Some(1)
    );
}

#[test]
fn nesting_at_the_limit_parses() {
    let src = format!("{}x=1{}", "a {".repeat(128), "}".repeat(128));
    let t = p(&src);
    let path = format!("{}x", "a/".repeat(128));
    assert_eq!(t.find_int(&path), Some(1));
}

#[test]
fn hundred_megabyte_string_is_too_large() {
    let mut src = b"s = \"".to_vec();
    src.resize(src.len() + (100 << 20), b'x');
    src.push(b'"');
    let e = parse(&src, DupMode::KeepAll).unwrap_err();
    assert_eq!(e.kind, K::TooLarge(64 << 20));
}

#[test]
fn large_string_within_limits_parses() {
    let body = "y".repeat(16 << 20);
    let src = format!("s = \"{body}\"\n");
    let t = p(&src);
    assert_eq!(t.find_str("s").map(str::len), Some(16 << 20));
    let limits = Limits {
        max_depth: 4,
        max_input: 1000,
    };
    let e = parse_with_limits(src.as_bytes(), DupMode::KeepAll, &limits).unwrap_err();
    assert_eq!(e.kind, K::TooLarge(1000));
}

#[test]
fn unterminated_quotes_are_refused() {
    let e = err("a = 1\nb = \"unterminated");
    assert_eq!(e.kind, K::Unterminated);
    assert_eq!((e.line, e.column), (2, 5));
    assert_eq!(err("a = 'x").kind, K::Unterminated);
    assert_eq!(err("\"key").kind, K::Unterminated);
    assert_eq!(err("a = \"ends in backslash\\").kind, K::Unterminated);
}

#[test]
fn embedded_nul_is_refused_trailing_nul_ends_input() {
    let e = parse(b"a = 1\nb = \"x\0y\"", DupMode::KeepAll).unwrap_err();
    assert_eq!(e.kind, K::Nul);
    assert_eq!((e.line, e.column), (2, 7));
    let t = parse(b"a = 1\n\0\0\0\0", DupMode::KeepAll).unwrap();
    assert_eq!(t.find_int("a"), Some(1));
    assert_eq!(parse(b"\0", DupMode::KeepAll).unwrap_err().kind, K::Empty);
}

#[test]
fn invalid_utf8_is_refused_with_position() {
    let e = parse(b"a = 1\nb = \"\xff\"", DupMode::KeepAll).unwrap_err();
    assert_eq!(e.kind, K::InvalidUtf8);
    assert_eq!((e.line, e.column), (2, 6));
    assert!(parse(b"k\xc3 = 1", DupMode::KeepAll).is_err());
}

#[test]
fn error_columns_count_characters() {
    let e = err("žž = }");
    assert_eq!((e.line, e.column), (1, 6));
}

#[test]
fn huge_flat_merge_is_linear() {
    let mut src = String::new();
    for i in 0..200_000 {
        src.push_str(&format!("k{i} = {i}\n"));
    }
    src.push_str("k7 = 70\n");
    let t = pm(&src);
    assert_eq!(t.nodes.len(), 200_000);
    assert_eq!(t.find_int("k7"), Some(70));
    assert_eq!(t.find_int("k199999"), Some(199_999));
}

#[test]
fn many_tiny_tokens() {
    let src = format!("a = [{}]", "1,".repeat(500_000));
    let t = p(&src);
    assert_eq!(t.find_list("a").map(<[Scalar]>::len), Some(500_000));
}
