//! Config-tree codec round trip: parse arbitrary bytes in both duplicate-key modes; whenever
//! they parse, the tree writer's and the metadata writer's output must parse again and be a
//! fixed point (write -> parse -> write gives the same bytes).
#![no_main]
#![forbid(unsafe_code)]
use common::config::{parse, parse_with_limits, write_metadata, write_tree, DupMode, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_depth: 64,
        max_input: 1 << 20,
    };
    for mode in [DupMode::KeepAll, DupMode::Merge] {
        let Ok(tree) = parse_with_limits(data, mode, &limits) else {
            continue;
        };
        let text = write_tree(&tree.nodes);
        let again = match parse(text.as_bytes(), DupMode::KeepAll) {
            Ok(t) => t,
            Err(e) => panic!("tree writer output does not parse: {e}\n{text}"),
        };
        assert_eq!(write_tree(&again.nodes), text, "tree writer is not a fixed point");

        for indent in [false, true] {
            let md = write_metadata(&tree.nodes, indent);
            let back = match parse(md.as_bytes(), DupMode::KeepAll) {
                Ok(t) => t,
                Err(e) => panic!("metadata writer output does not parse: {e}\n{md}"),
            };
            assert_eq!(
                write_metadata(&back.nodes, indent),
                md,
                "metadata writer is not a fixed point"
            );
        }
    }
});
