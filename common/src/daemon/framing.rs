//! Message framing: payload + `"\n##\n"` (docs/protocol.md §1.2).
//!
//! A message ends at the **first** `"\n##\n"` in the stream. lvm2's C reader instead checks,
//! after every `read()`, whether the bytes gathered so far *end* with the terminator; when a
//! client sends two requests in one `write()` the C daemon therefore sees one message ending in
//! the second terminator, parses the first request and silently drops the second. Splitting at
//! the first terminator keeps pipelined messages apart. The two rules differ only when a payload
//! itself contains `"\n##\n"` (the writers never escape it): C may or may not split there depending
//! on how `read()` happened to chunk the stream; we always split there.
//!
//! A message whose payload grows past the reader's cap fails with [`FrameError::TooLarge`]
//! instead of eating memory (C has no cap); the stream is then out of sync and should be closed
//! after an error reply.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};

/// The request our servers answer with `pipelining = 1` (not in lvm2): they keep requests
/// written back to back apart and answer them in order, so a client may send several before
/// reading replies. lvm2's C daemons answer it with a failure.
pub const CAPABILITIES: &str = "capabilities";

/// The message terminator.
pub const TERMINATOR: &[u8] = b"\n##\n";
/// Default cap on one message (64 MiB).
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

/// Bytes asked of one `read()`.
const READ_CHUNK: usize = 64 << 10;

/// Why a message could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// Clean end of stream between messages.
    Eof,
    /// End of stream in the middle of a message (C: ECONNRESET).
    Truncated,
    /// The message grew past the cap.
    TooLarge(usize),
    Io(io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Eof => write!(f, "connection closed"),
            FrameError::Truncated => write!(f, "connection closed in the middle of a message"),
            FrameError::TooLarge(n) => write!(f, "message larger than {n} bytes"),
            FrameError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads framed messages from a stream, keeping bytes that follow a terminator for the next
/// message (so two requests sent in one `write()` are two messages).
pub struct FrameReader<R> {
    inner: R,
    /// Bytes read from the stream; `buf[start..]` belong to messages not yet returned.
    buf: Vec<u8>,
    start: usize,
    /// Scratch space for one `read()`, reused across messages.
    chunk: Vec<u8>,
    max: usize,
    /// `buf[start..start + scanned]` is known to hold no complete terminator.
    scanned: usize,
}

/// A buffer that grew past this for one big message is released afterwards.
const KEEP_CAPACITY: usize = 1 << 20;

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            start: 0,
            chunk: Vec::new(),
            max,
            scanned: 0,
        }
    }

    /// The next message's payload, terminator stripped.
    ///
    /// After [`FrameError::TooLarge`] the stream position is inside the oversized message; the
    /// caller should answer and close rather than read on.
    pub fn read_message(&mut self) -> Result<Vec<u8>, FrameError> {
        loop {
            if let Some(end) = self.find_terminator() {
                let payload = self.buf[self.start..self.start + end].to_vec();
                self.start += end + TERMINATOR.len();
                self.scanned = 0;
                if self.start == self.buf.len() {
                    if self.buf.capacity() > KEEP_CAPACITY {
                        self.buf = Vec::new();
                    }
                    self.buf.clear();
                    self.start = 0;
                }
                return Ok(payload);
            }
            // No terminator: any terminator still to come starts at or after
            // `pending - (TERMINATOR.len() - 1)`, so the payload is at least that long.
            let pending = self.buffered();
            if pending > self.max + TERMINATOR.len() - 1 {
                return Err(FrameError::TooLarge(self.max));
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let want = READ_CHUNK.min(self.max + TERMINATOR.len() - pending);
            if self.chunk.len() < want {
                self.chunk.resize(want, 0);
            }
            match self.inner.read(&mut self.chunk[..want]) {
                Ok(0) if pending == 0 => return Err(FrameError::Eof),
                Ok(0) => return Err(FrameError::Truncated),
                Ok(n) => self.buf.extend_from_slice(&self.chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FrameError::Io(e)),
            }
        }
    }

    /// Position (from `start`) of the first terminator, searching only bytes not searched before.
    fn find_terminator(&mut self) -> Option<usize> {
        let pending = &self.buf[self.start..];
        let from = self.scanned.saturating_sub(TERMINATOR.len() - 1);
        let found = pending[from..]
            .windows(TERMINATOR.len())
            .position(|w| w == TERMINATOR)
            .map(|i| from + i);
        if found.is_none() {
            self.scanned = pending.len();
        }
        found
    }

    /// Bytes already read from the stream that belong to messages not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The cap on one message's payload.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// Write `payload` and the terminator.
pub fn write_message<W: Write>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    w.write_all(payload)?;
    w.write_all(TERMINATOR)?;
    w.flush()
}

/// Write `parts` and the terminator with vectored writes (no copy of the parts).
pub fn write_parts<W: Write>(w: &mut W, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| io::IoSlice::new(p))
        .collect();
    slices.push(io::IoSlice::new(TERMINATOR));
    let mut rest: &mut [io::IoSlice<'_>] = &mut slices;
    while !rest.is_empty() {
        match w.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    w.flush()
}

/// `payload` + terminator in one buffer, so a reply goes out in a single `write()` when it fits.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + TERMINATOR.len());
    v.extend_from_slice(payload);
    v.extend_from_slice(TERMINATOR);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out the given chunks one `read()` at a time.
    struct Chunks(Vec<Vec<u8>>, usize);
    impl Read for Chunks {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() {
                return Ok(0);
            }
            let c = &mut self.0[self.1];
            let n = c.len().min(out.len());
            out[..n].copy_from_slice(&c[..n]);
            c.drain(..n);
            if c.is_empty() {
                self.1 += 1;
            }
            Ok(n)
        }
    }

    fn reader(chunks: &[&[u8]], max: usize) -> FrameReader<Chunks> {
        FrameReader::new(Chunks(chunks.iter().map(|c| c.to_vec()).collect(), 0), max)
    }

    #[test]
    fn pipelined_messages_in_one_read_stay_apart() {
        let mut r = reader(&[b"request=\"a\"\n##\nrequest=\"b\"\n##\n"], 1024);
        assert_eq!(r.read_message().unwrap(), b"request=\"a\"");
        assert_eq!(r.read_message().unwrap(), b"request=\"b\"");
        assert!(matches!(r.read_message(), Err(FrameError::Eof)));
    }

    #[test]
    fn terminator_split_across_reads() {
        for cut in 0..=TERMINATOR.len() {
            let mut first = b"x = 1".to_vec();
            first.extend_from_slice(&TERMINATOR[..cut]);
            let mut second = TERMINATOR[cut..].to_vec();
            second.extend_from_slice(b"y = 2\n##\n");
            let mut r = reader(&[&first, &second], 1024);
            assert_eq!(r.read_message().unwrap(), b"x = 1", "cut at {cut}");
            assert_eq!(r.read_message().unwrap(), b"y = 2", "cut at {cut}");
            assert!(matches!(r.read_message(), Err(FrameError::Eof)));
        }
    }

    #[test]
    fn byte_by_byte() {
        let data = b"a=1\n##\n\n##\nb=2\n##\n";
        let chunks: Vec<&[u8]> = data.chunks(1).collect();
        let mut r = reader(&chunks, 1024);
        assert_eq!(r.read_message().unwrap(), b"a=1");
        assert_eq!(r.read_message().unwrap(), b"");
        assert_eq!(r.read_message().unwrap(), b"b=2");
        assert!(matches!(r.read_message(), Err(FrameError::Eof)));
    }

    #[test]
    fn cap_is_enforced_and_exact_fit_passes() {
        let mut r = reader(&[b"0123456789\n##\n"], 10);
        assert_eq!(r.read_message().unwrap(), b"0123456789");
        let mut r = reader(&[b"01234567890\n##\n"], 10);
        assert!(matches!(r.read_message(), Err(FrameError::TooLarge(10))));
        // A big message without a terminator is refused without reading it all.
        let big = vec![b'x'; 1 << 20];
        let mut r = reader(&[&big], 1000);
        assert!(matches!(r.read_message(), Err(FrameError::TooLarge(1000))));
        assert!(r.buffered() <= 1000 + TERMINATOR.len());
    }

    #[test]
    fn big_message_then_small_ones_in_odd_chunks() {
        let big = vec![b'b'; 3 << 20];
        let mut stream = big.clone();
        stream.extend_from_slice(b"\n##\nsmall=1\n##\n\n##\ntail=2\n##\n");
        let chunks: Vec<&[u8]> = stream.chunks(100_003).collect();
        let mut r = reader(&chunks, 4 << 20);
        assert_eq!(r.read_message().unwrap(), big);
        assert_eq!(r.read_message().unwrap(), b"small=1");
        assert_eq!(r.read_message().unwrap(), b"");
        assert_eq!(r.read_message().unwrap(), b"tail=2");
        assert_eq!(r.buffered(), 0);
        assert!(matches!(r.read_message(), Err(FrameError::Eof)));
    }

    #[test]
    fn truncated_message() {
        let mut r = reader(&[b"a=1\n##\nb=2\n#"], 1024);
        assert_eq!(r.read_message().unwrap(), b"a=1");
        assert!(matches!(r.read_message(), Err(FrameError::Truncated)));
    }

    #[test]
    fn empty_stream_is_eof() {
        let mut r = reader(&[], 1024);
        assert!(matches!(r.read_message(), Err(FrameError::Eof)));
    }

    #[test]
    fn interrupted_reads_are_retried() {
        struct Eintr(bool, &'static [u8]);
        impl Read for Eintr {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                self.0 = !self.0;
                if self.0 {
                    return Err(io::Error::from(io::ErrorKind::Interrupted));
                }
                let n = self.1.len().min(out.len()).min(3);
                out[..n].copy_from_slice(&self.1[..n]);
                self.1 = &self.1[n..];
                Ok(n)
            }
        }
        let mut r = FrameReader::new(Eintr(false, b"hello=1\n##\n"), 100);
        assert_eq!(r.read_message().unwrap(), b"hello=1");
        assert!(matches!(r.read_message(), Err(FrameError::Eof)));
    }

    #[test]
    fn write_then_read_round_trip() {
        let mut out = Vec::new();
        write_message(&mut out, b"one").unwrap();
        write_parts(&mut out, &[b"pa", b"", b"rts"]).unwrap();
        out.extend_from_slice(&frame(b"two"));
        let mut r = FrameReader::new(&out[..], 100);
        assert_eq!(r.read_message().unwrap(), b"one");
        assert_eq!(r.read_message().unwrap(), b"parts");
        assert_eq!(r.read_message().unwrap(), b"two");
    }

    #[test]
    fn vectored_write_survives_short_writes() {
        /// Takes at most 3 bytes per call, and fails every other call with EINTR.
        struct Trickle(Vec<u8>, bool);
        impl Write for Trickle {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.1 = !self.1;
                if self.1 {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                let n = b.len().min(3);
                self.0.extend_from_slice(&b[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = Trickle(Vec::new(), false);
        write_parts(
            &mut w,
            &[b"response=\"OK\"\n", b"", b"body {\n}\n", b"\n\n"],
        )
        .unwrap();
        assert_eq!(w.0, b"response=\"OK\"\nbody {\n}\n\n\n\n##\n");
    }
}
