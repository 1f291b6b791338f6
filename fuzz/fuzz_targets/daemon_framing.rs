#![no_main]
//! libdaemon framing: arbitrary bytes fed through `FrameReader` in arbitrary chunks (with
//! interrupted reads). Invariants: no panic; no payload contains the terminator or exceeds the
//! cap; payloads and terminators re-assemble exactly the bytes consumed; every byte handed to
//! the reader is either returned, or still buffered; the result does not depend on the chunking.
#![forbid(unsafe_code)]
use common::daemon::framing::{FrameError, FrameReader, TERMINATOR};
use libfuzzer_sys::fuzz_target;
use std::io::{self, Read};

/// Hands out `data` in chunks whose sizes come from `sizes` (cycled), with an EINTR now and then.
struct Chunked<'a> {
    data: &'a [u8],
    pos: usize,
    sizes: &'a [u8],
    turn: usize,
    /// The last read was an EINTR (never two in a row, or an all-zero `sizes` would spin).
    interrupted: bool,
}

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let s = self.sizes.get(self.turn % self.sizes.len().max(1)).copied().unwrap_or(7);
        self.turn += 1;
        if s == 0 && !self.interrupted {
            self.interrupted = true;
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        self.interrupted = false;
        let n = (s.max(1) as usize).min(out.len()).min(self.data.len() - self.pos);
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Read every message; returns (payloads, final error, bytes handed out, bytes buffered).
fn drain(data: &[u8], sizes: &[u8], max: usize) -> (Vec<Vec<u8>>, String, usize, usize) {
    let mut r = FrameReader::new(
        Chunked {
            data,
            pos: 0,
            sizes,
            turn: 0,
            interrupted: false,
        },
        max,
    );
    let mut out = Vec::new();
    let end = loop {
        match r.read_message() {
            Ok(p) => out.push(p),
            Err(e) => break e,
        }
    };
    let kind = match &end {
        FrameError::Eof => "eof",
        FrameError::Truncated => "truncated",
        FrameError::TooLarge(_) => "too large",
        FrameError::Io(_) => panic!("unexpected I/O error {end}"),
    };
    (out, kind.to_owned(), r.get_ref().pos, r.buffered())
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 2 {
        return;
    }
    let max = 1 + (input[0] as usize) * 4;
    let nsizes = (input[1] as usize % 16).min(input.len() - 2);
    let sizes = &input[2..2 + nsizes];
    let data = &input[2 + nsizes..];

    let (payloads, end, consumed, buffered) = drain(data, sizes, max);
    let mut rebuilt = Vec::new();
    for p in &payloads {
        assert!(p.len() <= max, "payload over the cap");
        assert!(
            !p.windows(TERMINATOR.len()).any(|w| w == TERMINATOR),
            "payload contains the terminator"
        );
        rebuilt.extend_from_slice(p);
        rebuilt.extend_from_slice(TERMINATOR);
    }
    assert_eq!(rebuilt.len() + buffered, consumed, "bytes not accounted for");
    assert_eq!(&data[..rebuilt.len()], &rebuilt[..], "payloads are not the input");
    match end.as_str() {
        "eof" => assert!(buffered == 0 && consumed == data.len()),
        "truncated" => assert!(buffered > 0 && consumed == data.len()),
        _ => assert!(buffered > max),
    }
    // One byte per read gives the same messages and the same ending.
    let (one, end1, _, _) = drain(data, &[1], max);
    assert_eq!(one, payloads, "chunking changed the messages");
    assert_eq!(end1, end, "chunking changed the outcome");
});
