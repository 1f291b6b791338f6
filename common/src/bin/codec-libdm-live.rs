//! The codec against the real libdevmapper on freshly generated inputs (tests/shell/codec-libdm-live.sh).
//!
//! codec-libdm-live gen DIR COUNT SEED     write COUNT generated config texts to DIR/NNNNN
//! codec-libdm-live check DIR ORACLE_OUT   compare our parse + tree writer with the oracle's output
//!
//! The oracle is tests/data/config/libdm_oracle.c (ours) linked against libdevmapper: for every
//! file it prints `== FILE KEEP|MERGE`, then `OK` and the lines `dm_config_write_node` writes, or
//! `ERR`, then `==END`. The generator writes valid config text in random layouts (whitespace,
//! comments, both quote kinds, escapes, UTF-8, path keys, nested and repeated sections,
//! duplicate keys, arrays, ints, floats): it stays out of the deliberate differences listed in
//! common/README-config.md, so any disagreement is a bug on one side. `check` prints the counts
//! and exits 1 on any disagreement (the first ones shown).
#![forbid(unsafe_code)]

use common::config::{parse, write_tree, DupMode};
use std::fmt::Write as _;
use std::process::exit;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Whitespace between tokens, sometimes with a comment (which needs its newline).
fn space(r: &mut Rng, out: &mut String, need: bool) {
    match r.below(8) {
        0 => out.push_str(" # a comment {with} \"stuff\" = [\n"),
        1 => out.push_str("\n\t"),
        2 => out.push('\t'),
        3 | 4 => out.push(' '),
        5 => out.push('\n'),
        _ if need => out.push(' '),
        _ => {}
    }
}

fn string(r: &mut Rng, out: &mut String) {
    let len = r.below(12);
    if r.below(4) == 0 {
        // single quotes: no escapes, no quote of its own kind inside
        out.push('\'');
        for _ in 0..len {
            out.push_str(r.pick(&[
                "a", "Z", " ", "\"", "{", "}", "[", "]", ",", "#", "=", "ž", "\t", "/",
            ]));
        }
        out.push('\'');
        return;
    }
    out.push('"');
    for _ in 0..len {
        out.push_str(r.pick(&[
            "a", "Z", "0", " ", "\\\"", "\\\\", "'", "{", "}", "[", "]", ",", "#", "=", "ž", "\t",
            "/", ".",
        ]));
    }
    out.push('"');
}

fn scalar(r: &mut Rng, out: &mut String) {
    match r.below(5) {
        0 | 1 => string(r, out),
        2 => {
            let v = r.next() as i64 >> r.below(64);
            let _ = write!(out, "{v}");
        }
        3 => {
            let _ = write!(out, "{}", r.below(1000));
        }
        _ => {
            let (i, f) = (r.below(100_000), r.below(1000));
            let sign = if r.below(3) == 0 { "-" } else { "" };
            let _ = write!(out, "{sign}{i}.{f}");
        }
    }
}

fn value(r: &mut Rng, out: &mut String) {
    if r.below(4) != 0 {
        return scalar(r, out);
    }
    out.push('[');
    let n = r.below(5);
    for i in 0..n {
        space(r, out, false);
        scalar(r, out);
        space(r, out, false);
        if i + 1 < n {
            out.push(',');
        }
    }
    out.push(']');
}

/// Value keys and section keys come from disjoint names (a value and a section of the same name
/// in merge mode is a deliberate difference).
fn key(r: &mut Rng, out: &mut String, section: bool) {
    let names: &[&str] = if section {
        &["s", "sec", "t_1", "metadata", "pv0", "Uu"]
    } else {
        &["a", "b", "id", "seqno", "x_2", "Key", "status"]
    };
    out.push_str(r.pick(names));
}

fn nodes(r: &mut Rng, out: &mut String, depth: u32) {
    let n = 1 + r.below(if depth == 0 { 6 } else { 4 });
    for _ in 0..n {
        space(r, out, true);
        if depth < 4 && r.below(3) == 0 {
            // a path key names sections too: "s/t { ... }" or "s/a = 1"
            if r.below(4) == 0 {
                key(r, out, true);
                out.push('/');
            }
            key(r, out, true);
            space(r, out, false);
            out.push('{');
            nodes(r, out, depth + 1);
            space(r, out, true);
            out.push('}');
        } else {
            if r.below(5) == 0 {
                key(r, out, true);
                out.push('/');
            }
            key(r, out, false);
            space(r, out, false);
            out.push('=');
            space(r, out, false);
            value(r, out);
        }
        space(r, out, true);
    }
}

fn generate(dir: &str, count: u64, seed: u64) {
    let mut r = Rng(seed | 1);
    for i in 0..count {
        let mut text = String::new();
        nodes(&mut r, &mut text, 0);
        text.push('\n');
        let path = format!("{dir}/{i:05}");
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("codec-libdm-live: {path}: {e}");
            exit(2);
        }
    }
}

/// Our answer in the oracle's form: the written tree, or "ERR".
fn ours(input: &[u8], mode: DupMode) -> String {
    match parse(input, mode) {
        Ok(t) => format!("OK\n{}", write_tree(&t.nodes)),
        Err(_) => "ERR\n".to_owned(),
    }
}

fn check(dir: &str, oracle_out: &str) {
    let text = match std::fs::read_to_string(oracle_out) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("codec-libdm-live: {oracle_out}: {e}");
            exit(2);
        }
    };
    let (mut cases, mut accepted, mut bad) = (0, 0, Vec::new());
    let mut blocks = text.split("==END\n");
    for block in blocks.by_ref() {
        let Some(rest) = block.strip_prefix("== ") else {
            continue;
        };
        let Some((head, theirs)) = rest.split_once('\n') else {
            continue;
        };
        let Some((file, mode)) = head.rsplit_once(' ') else {
            continue;
        };
        let mode = if mode == "MERGE" {
            DupMode::Merge
        } else {
            DupMode::KeepAll
        };
        let input = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("codec-libdm-live: {file}: {e}");
                exit(2);
            }
        };
        cases += 1;
        accepted += usize::from(theirs.starts_with("OK\n"));
        let mine = ours(&input, mode);
        if mine != theirs {
            bad.push(format!(
                "{file} {mode:?}\n  input:  {:?}\n  libdm:  {theirs:?}\n  ours:   {mine:?}",
                String::from_utf8_lossy(&input)
            ));
        }
    }
    let files = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    println!(
        "{cases} parses of {files} generated inputs: libdm accepted {accepted}; {} disagreements",
        bad.len()
    );
    for b in bad.iter().take(5) {
        println!("{b}");
    }
    if cases != 2 * files || cases == 0 {
        println!(
            "the oracle answered {cases} parses for {files} inputs (want {})",
            2 * files
        );
        exit(1);
    }
    if !bad.is_empty() {
        exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") if args.len() == 5 => {
            let (Ok(n), Ok(seed)) = (args[3].parse(), args[4].parse()) else {
                eprintln!("codec-libdm-live gen DIR COUNT SEED");
                exit(2);
            };
            generate(&args[2], n, seed);
        }
        Some("check") if args.len() == 4 => check(&args[2], &args[3]),
        _ => {
            eprintln!("usage: codec-libdm-live gen DIR COUNT SEED | check DIR ORACLE_OUT");
            exit(2);
        }
    }
}
