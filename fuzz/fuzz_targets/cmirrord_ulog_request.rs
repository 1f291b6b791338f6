#![no_main]
//! Kernel-side decoders: connector frames and `dm_ulog_request` in both byte orders, plus the
//! CTR argument parser. No input may panic; whatever decodes must encode back to itself.
#![forbid(unsafe_code)]
use cmirrord::connector;
use cmirrord::mirror_log::parse_ctr;
use cmirrord::ulog::{Endian, UlogRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for e in [Endian::Native, Endian::Little] {
        if let Ok(r) = UlogRequest::decode(data, e) {
            let again = UlogRequest::decode(&r.encode(e), e).expect("re-decode");
            assert_eq!(again, r);
        }
    }
    if let Ok(f) = connector::decode_frame(data) {
        let again =
            connector::decode_frame(&connector::encode_request(&f.req)).expect("frame re-decode");
        assert_eq!(again.req, f.req);
    }
    let _ = connector::decode_any(data);
    if let Ok(r) = UlogRequest::decode(data, Endian::Native) {
        let _ = parse_ctr(&r.data);
    }
    let _ = parse_ctr(data);
});
