//! Codec timings on a large lvmetad-style message (a VG with many LVs), for comparison with
//! libdevmapper (tests/data/config/libdm_bench.c reads the same text).
//!
//! `cargo run --release -p common --features test-support --bin codec-bench -- [LVS] [OUT.txt]`
#![forbid(unsafe_code)]
use common::config::{parse, write_tree, DupMode, Node, Tree, Value};
use std::time::Instant;

fn message(lvs: usize) -> Tree {
    let pvs: Vec<Node> = (0..4)
        .map(|i| {
            Node::section(format!("pv{i}"), vec![])
                .with("id", format!("pvid-{i:04}-xxxx-yyyy-zzzz-0000-111111"))
                .with("device", format!("/dev/sd{}", (b'a' + i as u8) as char))
                .with("status", Value::strings(["ALLOCATABLE"]))
                .with("flags", Value::empty())
                .with("dev_size", 2_097_152)
                .with("pe_start", 2048)
                .with("pe_count", 255)
        })
        .collect();
    let lvs: Vec<Node> = (0..lvs)
        .map(|i| {
            let seg = Node::section("segment1", vec![])
                .with("start_extent", 0)
                .with("extent_count", 4)
                .with("type", "striped")
                .with("stripe_count", 1)
                .with(
                    "stripes",
                    Value::Array(vec!["pv0".into(), (i as i64 * 4).into()]),
                );
            Node::section(format!("lv{i}"), vec![])
                .with("id", format!("lvid-{i:04}-xxxx-yyyy-zzzz-0000-111111"))
                .with("status", Value::strings(["READ", "WRITE", "VISIBLE"]))
                .with("flags", Value::empty())
                .with("creation_time", 1_700_000_000)
                .with("creation_host", "host")
                .with("segment_count", 1)
                .with_node(seg)
        })
        .collect();
    let md = Node::section("metadata", vec![])
        .with("id", "vgid-0000-xxxx-yyyy-zzzz-0000-111111")
        .with("seqno", 42)
        .with("status", Value::strings(["RESIZEABLE", "READ", "WRITE"]))
        .with("extent_size", 8192)
        .with_node(Node::section("physical_volumes", pvs))
        .with_node(Node::section("logical_volumes", lvs));
    Tree::new()
        .with("response", "OK")
        .with("name", "vg0")
        .with_node(md)
}

fn time<F: FnMut()>(what: &str, iters: u32, mut f: F) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(iters);
    println!("{what:<28} {us:>12.2} us/op");
    us
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lvs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let text = write_tree(&message(lvs).nodes);
    if let Some(out) = args.get(2) {
        std::fs::write(out, &text).expect("write text");
    }
    println!("message: {} LVs, {} bytes", lvs, text.len());
    let iters = (200_000 / lvs.max(1)).max(5) as u32;
    time("parse (keep-all)", iters, || {
        let t = parse(text.as_bytes(), DupMode::KeepAll).expect("parses");
        std::hint::black_box(t);
    });
    let tree = parse(text.as_bytes(), DupMode::KeepAll).expect("parses");
    time("write_tree", iters, || {
        std::hint::black_box(write_tree(&tree.nodes));
    });
    let paths: Vec<String> = (0..lvs)
        .step_by((lvs / 100).max(1))
        .map(|i| format!("metadata/logical_volumes/lv{i}/segment1/type"))
        .collect();
    let per = time("100 lookups", iters * 10, || {
        for p in &paths {
            std::hint::black_box(tree.find_str(p));
        }
    });
    println!(
        "{:<28} {:>12.3} us/op",
        "one lookup",
        per / paths.len() as f64
    );
}
