//! Message framing: payload + `"\n##\n"` (protocol.md §1.2).
//!
//! SKELETON: signatures are fixed; the implementation is being written.

use std::io::{self, Read, Write};

/// The message terminator.
pub const TERMINATOR: &[u8] = b"\n##\n";
/// Default cap on one message (64 MiB).
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

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

impl std::error::Error for FrameError {}

/// Reads framed messages from a stream, keeping bytes that follow a terminator for the next
/// message (so two requests sent in one `write()` are two messages).
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            max,
        }
    }
    /// The next message's payload, terminator stripped.
    pub fn read_message(&mut self) -> Result<Vec<u8>, FrameError> {
        let _ = (&mut self.inner, &mut self.buf, self.max);
        todo!("frame reader")
    }
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

/// Write `payload` and the terminator.
pub fn write_message<W: Write>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    w.write_all(payload)?;
    w.write_all(TERMINATOR)?;
    w.flush()
}
