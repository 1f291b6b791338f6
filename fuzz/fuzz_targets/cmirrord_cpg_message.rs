#![no_main]
//! Cluster decoders: the CPG message, checkpoint images (ours and C's) and the piece
//! assembler. No input may panic; decode(encode(x)) == x.
#![forbid(unsafe_code)]
use cmirrord::wire::{Assembly, Checkpoint, ClogMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ClogMessage::decode(data) {
        assert_eq!(ClogMessage::decode(&m.encode()).expect("re-decode"), m);
    }
    if let Ok(c) = Checkpoint::decode(data) {
        assert_eq!(Checkpoint::decode(&c.encode()).expect("re-decode"), c);
    }
    let _ = Checkpoint::decode_c(data);
    let mut a = Assembly::default();
    for piece in data.split(|&b| b == 0xFE) {
        let _ = a.add(piece);
    }
});
