#![no_main]
//! Fuzzes the thin-pool and thin status parsers and the thin message reader of common::dm:
//! no input may panic, and whatever parses must print back to text that parses to the same value.
#![forbid(unsafe_code)]
use common::dm::{ThinMessage, ThinPoolStatus, ThinStatus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(status) = ThinPoolStatus::parse(text) {
        let printed = status.to_string();
        assert_eq!(ThinPoolStatus::parse(&printed).as_ref(), Ok(&status), "{printed:?}");
    }
    let _ = ThinStatus::parse(text);
    if let Ok(message) = text.parse::<ThinMessage>() {
        assert_eq!(message.to_string().parse::<ThinMessage>(), Ok(message));
    }
});
