//! Bounded positional reads from a device: a block device, an image file, or bytes in memory.
//!
//! Every read names its offset and length up front; a read that would run past the end of the
//! device is refused before any I/O, so a crafted size can never make the reader allocate or read
//! more than the device holds.
//!
//! [`FileSource`] is the one way the tree reads metadata from disk: `O_DIRECT` by default (a PV
//! written by another host or below the page cache is read as it is on disk, as lvm2 reads it),
//! through a reusable aligned bounce buffer ([`AlignedBuf`]); the scanner keeps one per worker.

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

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

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            _ => None,
        }
    }
}

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

/// A reusable heap buffer whose usable part starts on a [`DIRECT_ALIGN`] boundary (an
/// over-allocated `Vec`, sliced: no unsafe). It only grows, so a scan worker that keeps one
/// allocates once, not per device.
#[derive(Debug, Default)]
pub struct AlignedBuf {
    raw: Vec<u8>,
}

impl AlignedBuf {
    /// An aligned slice of `len` bytes; its contents are whatever the last read left there.
    pub fn slice_mut(&mut self, len: usize) -> &mut [u8] {
        let need = len + DIRECT_ALIGN;
        if self.raw.len() < need {
            self.raw.resize(need, 0);
        }
        let shift = self.raw.as_ptr().align_offset(DIRECT_ALIGN);
        &mut self.raw[shift..shift + len]
    }

    /// Bytes held (capacity of the aligned part).
    pub fn capacity(&self) -> usize {
        self.raw.len().saturating_sub(DIRECT_ALIGN)
    }
}

/// An open device or image file with its size. By default it reads with `O_DIRECT`, as lvm2
/// does, through an aligned bounce buffer ([`AlignedBuf`]) that the caller may lend
/// ([`use_buffer`](Self::use_buffer)) and take back ([`into_buffer`](Self::into_buffer)).
/// A file that cannot do `O_DIRECT` (`EINVAL` at open or at the first read, e.g. on tmpfs) is
/// read through the page cache instead.
pub struct FileSource {
    pub file: File,
    pub size: u64,
    direct: Cell<bool>,
    bounce: RefCell<AlignedBuf>,
}

impl FileSource {
    /// Open `path` read-only, with `O_DIRECT` when `direct` and the file allows it, and measure
    /// it (block devices and regular files alike).
    pub fn open(path: &Path, direct: bool) -> std::io::Result<FileSource> {
        let open = |flags: i32| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(path)
        };
        let (mut file, direct) = if direct {
            match open(libc::O_DIRECT) {
                Ok(f) => (f, true),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (open(0)?, false),
                Err(e) => return Err(e),
            }
        } else {
            (open(0)?, false)
        };
        let size = file.seek(SeekFrom::End(0))?;
        Ok(FileSource::from_file(file, size, direct))
    }

    /// Wrap an already open file; `direct` says whether it was opened with `O_DIRECT`.
    pub fn from_file(file: File, size: u64, direct: bool) -> FileSource {
        FileSource {
            file,
            size,
            direct: Cell::new(direct),
            bounce: RefCell::new(AlignedBuf::default()),
        }
    }

    /// Whether reads bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct.get()
    }

    /// Lend a bounce buffer for `O_DIRECT` reads (it replaces the one held).
    pub fn use_buffer(&mut self, buf: AlignedBuf) {
        *self.bounce.get_mut() = buf;
    }

    /// Give the bounce buffer back, closing the file.
    pub fn into_buffer(self) -> AlignedBuf {
        self.bounce.into_inner()
    }

    /// The file refused an aligned read: read it through the page cache from now on.
    fn fall_back_to_buffered(&self) -> std::io::Result<()> {
        let flags = fcntl(self.file.as_raw_fd(), FcntlArg::F_GETFL)?;
        let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_DIRECT;
        fcntl(self.file.as_raw_fd(), FcntlArg::F_SETFL(flags))?;
        self.direct.set(false);
        Ok(())
    }
}

impl BlockSource for FileSource {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        if self.direct.get() {
            let r = read_direct(&self.file, &mut self.bounce.borrow_mut(), buf, offset);
            match r {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.fall_back_to_buffered()?,
                r => return r,
            }
        }
        FileExt::read_exact_at(&self.file, buf, offset)
    }
}

/// One aligned read covering `offset..offset+buf.len()` into `bounce`, then copied out.
fn read_direct(
    file: &File,
    bounce: &mut AlignedBuf,
    buf: &mut [u8],
    offset: u64,
) -> std::io::Result<()> {
    let align = DIRECT_ALIGN as u64;
    let start = offset / align * align;
    let need = (offset - start) as usize + buf.len();
    let span = need.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    let aligned = bounce.slice_mut(span);
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
        Self::new_in(inner, len, Vec::new()).map_err(|(e, _)| e)
    }

    /// Like [`new`](Self::new), reading into `buf` (its allocation is reused); on failure the
    /// buffer comes back with the error.
    pub fn new_in(
        inner: &'a dyn BlockSource,
        len: u64,
        mut buf: Vec<u8>,
    ) -> Result<Self, (ReadError, Vec<u8>)> {
        let len = len.min(inner.size());
        if len > MAX_READ {
            return Err((ReadError::TooLarge(len), buf));
        }
        buf.clear();
        buf.resize(len as usize, 0);
        match inner.read_exact_at(&mut buf, 0) {
            Ok(()) => Ok(HeadCached { inner, head: buf }),
            Err(e) => Err((ReadError::Io(e), buf)),
        }
    }

    /// Give the head buffer back for the next device.
    pub fn into_buffer(self) -> Vec<u8> {
        self.head
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
        let mut src = FileSource::from_file(file, data.len() as u64, true);
        src.use_buffer(AlignedBuf::default());
        assert_eq!(src.read_vec(4097, 600).unwrap(), &data[4097..4697]);
        assert_eq!(src.read_vec(19990, 10).unwrap(), &data[19990..]);
        assert_eq!(src.read_vec(0, 20000).unwrap(), data);
        assert!(src.is_direct());
        let buf = src.into_buffer();
        assert!(
            buf.capacity() >= 20480,
            "the bounce buffer grew once and is kept"
        );
        // Opened for real: O_DIRECT where the file system has it, else buffered; same bytes.
        let mut src = FileSource::open(&path, true).unwrap();
        src.use_buffer(buf);
        assert_eq!(src.size, 20000);
        assert_eq!(src.read_vec(4097, 600).unwrap(), &data[4097..4697]);
        assert_eq!(src.read_vec(19990, 10).unwrap(), &data[19990..]);
        let buffered = FileSource::open(&path, false).unwrap();
        assert!(!buffered.is_direct());
        assert_eq!(buffered.read_vec(1, 5).unwrap(), &data[1..6]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn aligned_buffer_is_aligned_and_reused() {
        let mut b = AlignedBuf::default();
        let p1 = b.slice_mut(8192).as_ptr();
        assert_eq!(p1 as usize % DIRECT_ALIGN, 0);
        let p2 = b.slice_mut(4096).as_ptr();
        assert_eq!(p1, p2, "a smaller request reuses the allocation");
        assert_eq!(b.slice_mut(12288).as_ptr() as usize % DIRECT_ALIGN, 0);
    }

    #[test]
    fn head_cache_reuses_the_callers_buffer() {
        let data = [7u8; 3000];
        let src = MemSource(&data);
        let h = HeadCached::new_in(&src, 8192, Vec::with_capacity(8192)).unwrap();
        assert_eq!(h.read_vec(2990, 10).unwrap(), &data[2990..]);
        let buf = h.into_buffer();
        assert_eq!((buf.len(), buf.capacity() >= 8192), (3000, true));
    }
}
