//! Codec cases: the verified vectors of docs/protocol.md §2.7, then lexer, grammar, semantics,
//! writer and hostile-input cases.

use super::parse::ParseErrorKind as K;
use super::*;

pub(super) fn p(s: &str) -> Tree {
    parse(s.as_bytes(), DupMode::KeepAll).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}
pub(super) fn pm(s: &str) -> Tree {
    parse(s.as_bytes(), DupMode::Merge).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}
pub(super) fn err(s: &str) -> ParseError {
    match parse(s.as_bytes(), DupMode::KeepAll) {
        Ok(t) => panic!("{s:?} parsed as {t:?}"),
        Err(e) => e,
    }
}
/// Parse, then write with the tree writer.
fn rw(s: &str) -> String {
    write_tree(&p(s).nodes)
}
fn int(i: i64) -> Value {
    Value::Scalar(Scalar::Int(i))
}
fn flt(f: f32) -> Value {
    Value::Scalar(Scalar::Float(f))
}
fn st(s: &str) -> Value {
    Value::Scalar(Scalar::Str(s.into()))
}
fn val<'t>(t: &'t Tree, path: &str) -> &'t Value {
    t.find(path)
        .and_then(Node::get_value)
        .unwrap_or_else(|| panic!("no value at {path} in {t:?}"))
}

// ---- §2.7 vectors ----

#[test]
fn v_leading_zero_is_octal() {
    assert_eq!(val(&p("c = 010"), "c"), &int(8));
    assert_eq!(rw("c = 010"), "c=8\n");
}

#[test]
fn v_hex_is_an_error() {
    let e = err("d = 0x10");
    assert_eq!(e.kind, K::BadNumber("0x10".into()));
    assert_eq!((e.line, e.column), (1, 5));
}

#[test]
fn v_sign_float_and_leading_dot() {
    let t = p("a = +7\nb = 1.5\nc = .5");
    assert_eq!(val(&t, "a"), &int(7));
    assert_eq!(val(&t, "b"), &flt(1.5));
    assert_eq!(val(&t, "c"), &flt(0.5));
    assert_eq!(write_tree(&t.nodes), "a=7\nb=1.500000\nc=0.500000\n");
}

#[test]
fn v_single_quoted_string_is_written_double_quoted() {
    assert_eq!(val(&p("e = 'sq\"uote'"), "e"), &st("sq\"uote"));
    assert_eq!(rw("e = 'sq\"uote'"), "e=\"sq\\\"uote\"\n");
}

#[test]
fn v_bare_word_is_a_string() {
    assert_eq!(val(&p("f = bare_word"), "f"), &st("bare_word"));
    assert_eq!(rw("f = bare_word"), "f=\"bare_word\"\n");
}

#[test]
fn v_mixed_array() {
    let t = p("g=[1,2,\"three\"]");
    assert_eq!(
        val(&t, "g"),
        &Value::Array(vec![
            Scalar::Int(1),
            Scalar::Int(2),
            Scalar::Str("three".into())
        ])
    );
    assert_eq!(write_tree(&t.nodes), "g=[1,2,\"three\"]\n");
}

#[test]
fn v_one_element_array_is_written_as_scalar() {
    let t = p("b = [\"x\"]");
    assert_eq!(t.find_str("b"), Some("x"));
    assert_eq!(write_tree(&t.nodes), "b=\"x\"\n");
}

#[test]
fn v_empty_array() {
    let t = p("h = []");
    assert_eq!(val(&t, "h"), &Value::Array(vec![]));
    assert_eq!(val(&t, "h").first(), None);
    assert_eq!(write_tree(&t.nodes), "h=[]\n");
    assert_eq!(rw("h = [ ]"), "h=[]\n");
}

#[test]
fn v_quoted_keys_with_special_characters() {
    let t = p("\"k#y\" = 3\n\"k\\\"y\" = 5");
    assert_eq!(t.nodes[0].key, "k#y");
    assert_eq!(t.nodes[1].key, "k\"y");
    assert_eq!(write_tree(&t.nodes), "\"k#y\"=3\n\"k\\\"y\"=5\n");
}

#[test]
fn v_hash_inside_identifier_starts_a_comment() {
    let e = err("key#x = 2");
    assert!(
        matches!(e.kind, K::Unexpected(ref s) if s.contains("end of input")),
        "{e}"
    );
}

#[test]
fn v_newline_inside_string_is_written_raw() {
    let t = p("s = \"line1\nline2\"");
    assert_eq!(t.find_str("s"), Some("line1\nline2"));
    assert_eq!(write_tree(&t.nodes), "s=\"line1\nline2\"\n");
}

#[test]
fn v_int64_limits() {
    let src = "big = 9223372036854775807\nneg = -9223372036854775808";
    let t = p(src);
    assert_eq!(t.find_int("big"), Some(i64::MAX));
    assert_eq!(t.find_int("neg"), Some(i64::MIN));
    assert_eq!(
        write_tree(&t.nodes),
        "big=9223372036854775807\nneg=-9223372036854775808\n"
    );
}

// ---- numbers ----

#[test]
fn octal_forms_follow_strtoll() {
    let t = p("a = 00017\nb = 08\nc = 0789\nd = -010\ne = 0");
    assert_eq!(
        [
            t.find_int("a"),
            t.find_int("b"),
            t.find_int("c"),
            t.find_int("d"),
            t.find_int("e")
        ],
        [Some(15), Some(0), Some(7), Some(-8), Some(0)]
    );
}

#[test]
fn lone_sign_is_zero() {
    let t = p("a = +\nb = -\nc = [-, +]");
    assert_eq!(t.find_int("a"), Some(0));
    assert_eq!(t.find_int("b"), Some(0));
    assert_eq!(
        val(&t, "c"),
        &Value::Array(vec![Scalar::Int(0), Scalar::Int(0)])
    );
}

#[test]
fn float_forms() {
    let t = p("a = 1.\nb = -.5\nc = .\nd = 0.1\ne = 100.25");
    assert_eq!(val(&t, "a"), &flt(1.0));
    assert_eq!(val(&t, "b"), &flt(-0.5));
    assert_eq!(val(&t, "c"), &flt(0.0));
    assert_eq!(
        write_tree(&t.nodes),
        "a=1.000000\nb=-0.500000\nc=0.000000\nd=0.100000\ne=100.250000\n"
    );
}

#[test]
fn floats_are_narrowed_to_32_bits() {
    let t = p("a = 16777217.0\nb = 0.3");
    assert_eq!(val(&t, "a"), &flt(16_777_216.0));
    assert_eq!(write_tree(&t.nodes), "a=16777216.000000\nb=0.300000\n");
    // %f of a float holds the exact binary value.
    assert_eq!(rw("x = 1234567.8"), "x=1234567.750000\n");
}

#[test]
fn exponent_and_double_dot_are_errors() {
    assert_eq!(err("a = 1e5").kind, K::BadNumber("1e5".into()));
    assert_eq!(err("a = 1.2.3").kind, K::BadNumber("1.2.3".into()));
    assert_eq!(err("a = [1, 2x]").kind, K::BadNumber("2x]".into()));
    assert_eq!(err("a = -1-2").kind, K::BadNumber("-1-2".into()));
}

#[test]
fn error_messages_stay_short_for_huge_tokens() {
    let e = err(&format!("a = {}x", "9".repeat(1 << 20)));
    assert!(matches!(&e.kind, K::BadNumber(s) if s.chars().count() == 41 && s.ends_with('…')));
    let e = err(&format!("{} }}", "k".repeat(1 << 20)));
    assert!(e.to_string().len() < 200, "{}", e.to_string().len());
}

#[test]
fn int_overflow_is_an_error() {
    assert_eq!(
        err("a = 9223372036854775808").kind,
        K::BadNumber("9223372036854775808".into())
    );
    assert_eq!(
        err("a = -9223372036854775809").kind,
        K::BadNumber("-9223372036854775809".into())
    );
}

#[test]
fn creation_time_overflow_is_repaired() {
    let t = p("lv {\ncreation_time = 99999999999999999999\n}");
    assert_eq!(t.find_int("lv/creation_time"), Some(1_527_120_000));
    let t = p("a/creation_time = [1, 99999999999999999999]");
    assert_eq!(
        val(&t, "a/creation_time"),
        &Value::Array(vec![Scalar::Int(1), Scalar::Int(1_527_120_000)])
    );
    assert!(parse(b"creation_timex = 99999999999999999999", DupMode::KeepAll).is_err());
}

#[test]
fn float_out_of_range_is_an_error() {
    let huge = format!("a = 1{}.0", "0".repeat(39));
    assert!(matches!(err(&huge).kind, K::BadNumber(_)));
}

#[test]
fn numbers_are_identifiers_in_key_context() {
    let t = p("1abc = 2\n-x = 3\n.dot = 4");
    assert_eq!(t.find_int("1abc"), Some(2));
    assert_eq!(t.find_int("-x"), Some(3));
    assert_eq!(t.find_int(".dot"), Some(4));
}

// ---- strings ----

#[test]
fn unescape_only_quote_and_backslash() {
    let t = p(r#"s = "x\"y\z\n""#);
    assert_eq!(t.find_str("s"), Some(r#"x"y\z\n"#));
    assert_eq!(write_tree(&t.nodes), "s=\"x\\\"y\\\\z\\\\n\"\n");
    let t = p(r#"s = "a\\\\b\\" "#);
    assert_eq!(t.find_str("s"), Some(r"a\\b\"));
}

#[test]
fn single_quotes_have_no_escapes() {
    let t = p(r"s = 'a\'");
    assert_eq!(t.find_str("s"), Some(r"a\"));
}

#[test]
fn bare_strings_run_through_commas_and_brackets() {
    assert_eq!(p("a = x,y]z").find_str("a"), Some("x,y]z"));
    assert_eq!(p("a = /dev/sda1 b=1").find_str("a"), Some("/dev/sda1"));
    assert_eq!(p("a = x#comment\nb = 2").find_str("a"), Some("x"));
    assert!(err("a = [x,y]").to_string().contains("end of input"));
}

#[test]
fn empty_string_is_missing_for_find_str_only() {
    let t = p("a = \"\"");
    assert_eq!(t.find_str("a"), None);
    assert_eq!(t.find_str_allow_empty("a"), Some(""));
    assert_eq!(write_tree(&t.nodes), "a=\"\"\n");
}

#[test]
fn control_characters_are_written_raw() {
    let t = Tree::new().with("s", "a\tb\u{1}c\rd");
    assert_eq!(write_tree(&t.nodes), "s=\"a\tb\u{1}c\rd\"\n");
    assert_eq!(p(&write_tree(&t.nodes)), t);
}

#[test]
fn utf8_passes_through() {
    let t = p("name = \"žluťoučký kůň\"\nключ = 1");
    assert_eq!(t.find_str("name"), Some("žluťoučký kůň"));
    assert_eq!(t.find_int("ключ"), Some(1));
}

// ---- grammar ----

#[test]
fn both_message_styles_parse_alike() {
    let a = p("response = \"OK\"\nprotocol = \"lvmetad\"\nversion = 1\n");
    let b = p("response=\"OK\"\nprotocol=\"lvmetad\"\nversion=1\n");
    assert_eq!(a, b);
    assert_eq!(a.find_int("version"), Some(1));
}

#[test]
fn newlines_are_not_significant() {
    let t = p("a=1 b=2 c { d=3 }");
    assert_eq!(t.find_int("b"), Some(2));
    assert_eq!(t.find_int("c/d"), Some(3));
    assert_eq!(write_tree(&t.nodes), "a=1\nb=2\nc {\n\td=3\n}\n");
}

#[test]
fn trailing_comma_once() {
    assert_eq!(
        val(&p("a = [1,]"), "a"),
        &Value::Array(vec![Scalar::Int(1)])
    );
    assert!(err("a = [1,,2]").to_string().contains("expected a value"));
    assert!(err("a = [,1]").to_string().contains("expected a value"));
}

#[test]
fn numbers_need_commas_in_arrays() {
    assert!(err("a = [1 2]").to_string().contains("expected a value"));
}

#[test]
fn quoted_array_elements_without_comma_are_accepted_like_libdm() {
    // libdm lexes a quoted string the same in every context, so it takes these as elements.
    assert_eq!(
        val(&p("a = [\"x\" \"y\"]"), "a"),
        &Value::Array(vec![Scalar::Str("x".into()), Scalar::Str("y".into())])
    );
}

#[test]
fn two_values_in_a_row_is_an_error() {
    let e = err("k = \"a\" \"b\"");
    assert!(e.to_string().contains("expected `=` or `{`"), "{e}");
}

#[test]
fn empty_section() {
    let t = p("x { }");
    assert!(t.find("x").unwrap().is_section());
    assert_eq!(write_tree(&t.nodes), "x {\n}\n");
}

#[test]
fn empty_input_and_only_comments_fail() {
    assert_eq!(err("").kind, K::Empty);
    assert_eq!(err("  \n# just a comment\n\t").kind, K::Empty);
}

#[test]
fn unbalanced_braces_fail() {
    assert!(err("a { b = 1").to_string().contains("expected `}`"));
    assert!(err("a = 1 }").to_string().contains("expected a key"));
    assert!(err("{ a = 1 }").to_string().contains("expected a key"));
}

#[test]
fn missing_value_fails() {
    assert!(err("a =").to_string().contains("expected a value"));
    assert!(err("a = }").to_string().contains("expected a value"));
    assert!(err("a = [1").to_string().contains("expected a value"));
}

#[test]
fn garbage_request_fails() {
    assert!(parse(b"this is { garbage", DupMode::KeepAll).is_err());
}

#[test]
fn comments_anywhere_between_tokens() {
    let t = p("# head\na # after key\n= # after eq\n[ 1, # in array\n 2 ] # tail\n");
    assert_eq!(
        val(&t, "a"),
        &Value::Array(vec![Scalar::Int(1), Scalar::Int(2)])
    );
    assert_eq!(
        p("s = \"has # inside\"").find_str("s"),
        Some("has # inside")
    );
}

#[test]
fn empty_keys_are_refused() {
    assert_eq!(err("\"\" = 1").kind, K::EmptyKey);
    assert_eq!(err("a/ = 1").kind, K::EmptyKey);
    assert_eq!(err("\"/\" = 1").kind, K::EmptyKey);
}

// ---- semantics ----

#[test]
fn path_keys_create_sections() {
    let t = pm("sec { k1 = 1 }\nsec/k3 = 3\n/sec//k4 = 4");
    assert_eq!(t.nodes.len(), 1);
    assert_eq!(t.find_int("sec/k3"), Some(3));
    assert_eq!(t.find_int("sec/k4"), Some(4));
    assert_eq!(write_tree(&t.nodes), "sec {\n\tk1=1\n\tk3=3\n\tk4=4\n}\n");
}

#[test]
fn keep_all_path_keys_make_new_sections_each_time() {
    let t = p("a/b = 1\na/c = 2");
    assert_eq!(t.nodes.len(), 2);
    assert_eq!(t.find_int("a/b"), Some(1));
    assert_eq!(t.find_int("a/c"), None, "libdm looks only in the first `a`");
}

#[test]
fn keep_all_first_wins_on_lookup() {
    let t = p("a=1\na=2\ns { x=1 }\ns { x=2 y=3 }");
    assert_eq!(t.nodes.len(), 4);
    assert_eq!(t.find_int("a"), Some(1));
    assert_eq!(t.find_int("s/x"), Some(1));
    assert_eq!(t.find_int("s/y"), None);
    assert_eq!(
        write_tree(&t.nodes),
        "a=1\na=2\ns {\n\tx=1\n}\ns {\n\tx=2\n\ty=3\n}\n"
    );
}

#[test]
fn merge_last_value_wins_in_first_position() {
    let t = pm("a=1\nb=2\na=3");
    assert_eq!(write_tree(&t.nodes), "a=3\nb=2\n");
}

#[test]
fn merge_sections_recursively() {
    let t = pm("d { s { p=1 } x=1 }\nd { s { q=2 } s { p=3 } y=2 }");
    assert_eq!(
        write_tree(&t.nodes),
        "d {\n\ts {\n\t\tp=3\n\t\tq=2\n\t}\n\tx=1\n\ty=2\n}\n"
    );
}

#[test]
fn merge_section_against_value_keeps_the_value() {
    // libdm gives the node both; its writer and value lookups see only the value.
    let t = pm("a = 1\na { b = 2 }\nc { d = 1 }\nc = 2\nx = 1\nx/y = 2");
    assert_eq!(write_tree(&t.nodes), "a=1\nc=2\nx=1\n");
    // KeepAll keeps both as separate nodes.
    assert_eq!(p("a = 1\na { b = 2 }").nodes.len(), 2);
}

#[test]
fn lvm_conf_style_merge() {
    let t = pm("devices {\n\tfilter = [ \"a|.*|\" ]\n}\nglobal { use_lvmetad = 1 }\ndevices { filter = [\"r|.*|\"] scan = \"/dev\" }\n");
    assert_eq!(t.find_str("devices/filter"), Some("r|.*|"));
    assert_eq!(t.find_str("devices/scan"), Some("/dev"));
    assert_eq!(t.find_bool("global/use_lvmetad"), Some(true));
}

// ---- writer ----

#[test]
fn tree_writer_indents_with_tabs_capped_at_32() {
    let mut node = Node::value("leaf", 1);
    for i in (0..40).rev() {
        node = Node::section(format!("s{i}"), vec![node]);
    }
    let out = write_tree(&[node]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "s0 {");
    assert_eq!(lines[33], format!("{}s33 {{", "\t".repeat(32)));
    assert_eq!(lines[40], format!("{}leaf=1", "\t".repeat(32)));
    assert_eq!(*lines.last().unwrap(), "}");
    assert!(out.ends_with("}\n"));
}

#[test]
fn tree_writer_reply_shape() {
    let t = Tree::new().with("response", "OK").with_node(Node::section(
        "volume_groups",
        vec![Node::section("abc-def", vec![Node::value("name", "vg0")])],
    ));
    assert_eq!(
        write_tree(&t.nodes),
        "response=\"OK\"\nvolume_groups {\n\tabc-def {\n\t\tname=\"vg0\"\n\t}\n}\n"
    );
}

#[test]
fn tree_writer_quotes_keys_with_hash_quote_or_bang() {
    let t = Tree::new()
        .with("a!b", 1)
        .with("c#", 2)
        .with("plain_key-1.x", 3);
    assert_eq!(
        write_tree(&t.nodes),
        "\"a!b\"=1\n\"c#\"=2\nplain_key-1.x=3\n"
    );
}

#[test]
fn tree_writer_quotes_keys_that_would_not_read_back() {
    let t = Tree::new().with("a b", 1).with("x=y", 2).with("'q", 3);
    let out = write_tree(&t.nodes);
    assert_eq!(out, "\"a b\"=1\n\"x=y\"=2\n\"'q\"=3\n");
    assert_eq!(p(&out), t);
}

#[test]
fn tree_writer_negative_and_zero_ints() {
    let t = Tree::new().with("a", 0).with("b", -1).with("c", 42);
    assert_eq!(write_tree(&t.nodes), "a=0\nb=-1\nc=42\n");
}

#[test]
fn simple_writer_matches_libdaemon() {
    let out = write_simple(&[
        ("response", SimpleField::Str("OK".into())),
        ("protocol", SimpleField::Str("lvmetad".into())),
        ("version", SimpleField::Int(1)),
    ]);
    assert_eq!(
        out,
        "response = \"OK\"\nprotocol = \"lvmetad\"\nversion = 1\n"
    );
    assert_eq!(p(&out).find_str("protocol"), Some("lvmetad"));
}

#[test]
fn simple_writer_does_not_escape_and_appends_raw_blocks() {
    let out = write_simple(&[
        ("request", SimpleField::Str("pv_add".into())),
        ("reason", SimpleField::Str("a \"b\"".into())),
        ("metadata", SimpleField::Raw("{\n\tx=1\n}\n".into())),
        ("", SimpleField::Raw("tail=2\n".into())),
        ("n", SimpleField::Int(i64::MIN)),
    ]);
    assert_eq!(
        out,
        "request = \"pv_add\"\nreason = \"a \"b\"\"\nmetadata {\n\tx=1\n}\ntail=2\nn = -9223372036854775808\n"
    );
}
