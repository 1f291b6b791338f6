#![no_main]
// PLACEHOLDER: replaced by the area that owns this decoder.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
