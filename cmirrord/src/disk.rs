//! The log device of a `clustered-disk` log: found from `MAJ:MIN` or a path, opened with
//! `O_DIRECT` so every node reads what the server wrote, not a cached copy.
//!
//! O_DIRECT needs page-aligned buffers; we get one by over-allocating a `Vec` and using the
//! aligned part (no unsafe).
#![forbid(unsafe_code)]

use crate::errno::Errno;
use crate::mirror_log::DiskLog;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const ALIGN: usize = 4096;

fn devno_of(p: &Path) -> Option<u64> {
    let m = std::fs::metadata(p).ok()?;
    m.file_type().is_block_device().then_some(m.rdev())
}

/// Find the block device for `MAJ:MIN` (in `/dev/block`, `/dev/mapper`, then `/dev`) or check
/// that a path is a block device.
pub fn find_device(arg: &str) -> Result<PathBuf, Errno> {
    let Some((ma, mi)) = arg.split_once(':') else {
        let p = PathBuf::from(arg);
        let m = std::fs::metadata(&p).map_err(|e| crate::errno::from_io(&e, Errno::ENOENT))?;
        if !m.file_type().is_block_device() {
            return Err(Errno::EINVAL);
        }
        return Ok(p);
    };
    let (ma, mi): (u64, u64) = match (ma.parse(), mi.parse()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(Errno::EINVAL),
    };
    let want = libc::makedev(ma as u32, mi as u32);
    let direct = PathBuf::from(format!("/dev/block/{ma}:{mi}"));
    if devno_of(&direct) == Some(want) {
        return Ok(direct);
    }
    for dir in ["/dev/mapper", "/dev"] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            if devno_of(&e.path()) == Some(want) {
                return Ok(e.path());
            }
        }
    }
    Err(Errno::ENOENT)
}

/// A block device opened `O_RDWR | O_DIRECT`.
pub struct BlockDisk {
    file: File,
    buf: Vec<u8>,
}

impl BlockDisk {
    pub fn open(arg: &str) -> Result<BlockDisk, Errno> {
        let path = find_device(arg)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .map_err(|e| crate::errno::from_io(&e, Errno::EIO))?;
        Ok(BlockDisk { file, buf: vec![] })
    }
}

/// An aligned part of `buf` of `len` bytes (grown as needed).
fn aligned(buf: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buf.len() < len + ALIGN {
        *buf = vec![0; len + ALIGN];
    }
    let off = (ALIGN - (buf.as_ptr() as usize % ALIGN)) % ALIGN;
    &mut buf[off..off + len]
}

impl DiskLog for BlockDisk {
    fn read_all(&mut self, out: &mut [u8]) -> std::io::Result<()> {
        let b = aligned(&mut self.buf, out.len());
        self.file.read_exact_at(b, 0)?;
        out.copy_from_slice(b);
        Ok(())
    }
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        let b = aligned(&mut self.buf, data.len());
        b.copy_from_slice(data);
        self.file.write_all_at(b, 0)?;
        self.file.sync_data()
    }
    fn devno(&self) -> std::io::Result<(u32, u32)> {
        let rdev = self.file.metadata()?.rdev();
        Ok((libc::major(rdev), libc::minor(rdev)))
    }
}

/// The opener the daemon gives the engine.
pub fn open_disk(arg: &str) -> Result<Box<dyn DiskLog>, Errno> {
    Ok(Box::new(BlockDisk::open(arg)?))
}

#[cfg(test)]
mod tests {
    use crate::errno::Errno;

    #[test]
    fn non_block_paths_are_refused() {
        assert_eq!(super::find_device("/dev/null").err(), Some(Errno::EINVAL));
        assert_eq!(
            super::find_device("/nonexistent/x").err(),
            Some(Errno::ENOENT)
        );
        assert_eq!(super::find_device("x:y").err(), Some(Errno::EINVAL));
        assert_eq!(
            super::find_device("4095:1048575").err(),
            Some(Errno::ENOENT)
        );
    }
}
