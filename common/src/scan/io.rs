//! Bounded positional reads from a device: a block device, an image file, or bytes in memory.
//!
//! Every read names its offset and length up front; a read that would run past the end of the
//! device is refused before any I/O, so a crafted size can never make the reader allocate or read
//! more than the device holds.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Largest single read the scanner ever asks for (metadata text included).
pub const MAX_READ: u64 = 64 << 20;

/// A failed read.
#[derive(Debug)]
pub enum ReadError {
    /// `offset + len` lies beyond the device (or overflows).
    PastEnd {
        offset: u64,
        len: u64,
        size: u64,
    },
    /// The request is larger than [`MAX_READ`].
    TooLarge(u64),
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::PastEnd { offset, len, size } => write!(
                f,
                "read of {len} bytes at offset {offset} runs past the end of the device ({size} bytes)"
            ),
            ReadError::TooLarge(n) => write!(f, "read of {n} bytes is larger than {MAX_READ}"),
            ReadError::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Something the scanner can read sectors from.
pub trait BlockSource {
    /// Size of the device in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` from `offset`; the range is already checked to lie within [`size`](Self::size).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;

    /// Read `len` bytes at `offset`, refusing ranges outside the device or above [`MAX_READ`].
    fn read_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>, ReadError> {
        if len > MAX_READ {
            return Err(ReadError::TooLarge(len));
        }
        let size = self.size();
        match offset.checked_add(len) {
            Some(end) if end <= size => {}
            _ => return Err(ReadError::PastEnd { offset, len, size }),
        }
        let mut buf = vec![0u8; len as usize];
        self.read_exact_at(&mut buf, offset)
            .map_err(ReadError::Io)?;
        Ok(buf)
    }
}

/// Alignment of `O_DIRECT` reads (a multiple of every logical block size in use).
pub const DIRECT_ALIGN: usize = 4096;

/// An open device or image file with its size.
pub struct FileSource {
    pub file: File,
    pub size: u64,
    /// Opened with `O_DIRECT` (as lvm2 reads): reads go through an aligned bounce buffer.
    pub direct: bool,
}

impl BlockSource for FileSource {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if self.direct {
            read_direct(&self.file, buf, offset)
        } else {
            FileExt::read_exact_at(&self.file, buf, offset)
        }
    }
}

/// One aligned read covering `offset..offset+buf.len()`, into a buffer aligned by slicing an
/// over-allocated `Vec` (no unsafe), then copied out.
fn read_direct(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    let align = DIRECT_ALIGN as u64;
    let start = offset / align * align;
    let need = (offset - start) as usize + buf.len();
    let span = need.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    let mut raw = vec![0u8; span + DIRECT_ALIGN];
    let shift = raw.as_ptr().align_offset(DIRECT_ALIGN);
    let aligned = &mut raw[shift..shift + span];
    let mut got = 0;
    while got < need {
        let n = file.read_at(&mut aligned[got..], start + got as u64)?;
        got += n;
        // A short read happens only at the end of the device: what is missing is unreadable.
        if n == 0 || (got < need && got % DIRECT_ALIGN != 0) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    let from = (offset - start) as usize;
    buf.copy_from_slice(&aligned[from..from + buf.len()]);
    Ok(())
}

/// A device image held in memory (tests and the fuzz target).
pub struct MemSource<'a>(pub &'a [u8]);

impl BlockSource for MemSource<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| std::io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A device whose first bytes were read in one request: later reads inside that head are served
/// from memory, others go to the device. One read then covers the label, the first mda header
/// and usually the metadata text, which matters most with `O_DIRECT`.
pub struct HeadCached<'a> {
    inner: &'a dyn BlockSource,
    head: Vec<u8>,
}

impl<'a> HeadCached<'a> {
    /// Read the first `len` bytes (fewer on a smaller device).
    pub fn new(inner: &'a dyn BlockSource, len: u64) -> Result<Self, ReadError> {
        let head = inner.read_vec(0, len.min(inner.size()))?;
        Ok(HeadCached { inner, head })
    }
}

impl BlockSource for HeadCached<'_> {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let cached = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|r| self.head.get(r));
        match cached {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => self.inner.read_exact_at(buf, offset),
        }
    }
}

/// Little-endian field readers over a sector that was already bounds-checked by the caller's
/// layout arithmetic; they return `None` instead of panicking when it was not.
pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_are_refused_before_io() {
        let data = [1u8; 1024];
        let src = MemSource(&data);
        assert!(src.read_vec(512, 512).is_ok());
        assert!(matches!(
            src.read_vec(513, 512),
            Err(ReadError::PastEnd { .. })
        ));
        assert!(matches!(
            src.read_vec(u64::MAX, 2),
            Err(ReadError::PastEnd { .. })
        ));
        assert!(matches!(
            src.read_vec(0, MAX_READ + 1),
            Err(ReadError::TooLarge(_))
        ));
    }

    #[test]
    fn head_cache_serves_inside_and_passes_through_outside() {
        let data: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let src = MemSource(&data);
        let h = HeadCached::new(&src, 1024).unwrap();
        assert_eq!(h.read_vec(1000, 24).unwrap(), &data[1000..1024]);
        assert_eq!(h.read_vec(1000, 100).unwrap(), &data[1000..1100]);
        assert_eq!(h.read_vec(3000, 96).unwrap(), &data[3000..3096]);
        assert!(h.read_vec(4000, 200).is_err());
        assert_eq!(HeadCached::new(&src, 1 << 20).unwrap().size(), 4096);
    }

    #[test]
    fn direct_reads_are_aligned_and_exact() {
        let path = std::env::temp_dir().join(format!("scan-io-direct-{}", std::process::id()));
        let data: Vec<u8> = (0..20000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        // The aligned bounce-buffer path works on any file (here without O_DIRECT itself).
        let src = FileSource {
            file,
            size: data.len() as u64,
            direct: true,
        };
        assert_eq!(src.read_vec(4097, 600).unwrap(), &data[4097..4697]);
        assert_eq!(src.read_vec(19990, 10).unwrap(), &data[19990..]);
        assert_eq!(src.read_vec(0, 20000).unwrap(), data);
        std::fs::remove_file(&path).unwrap();
    }
}
