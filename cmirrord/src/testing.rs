//! In-memory stand-ins used by unit tests, the simulated cluster and the benchmark.
#![forbid(unsafe_code)]

use crate::mirror_log::DiskLog;
use parking_lot::Mutex;
use std::sync::Arc;

/// A log device in memory; clones share the same bytes (like nodes sharing one LUN).
#[derive(Clone)]
pub struct MemDisk {
    inner: Arc<Mutex<MemDiskInner>>,
    devno: (u32, u32),
}

struct MemDiskInner {
    bytes: Vec<u8>,
    writes: u64,
    fail: bool,
}

impl MemDisk {
    pub fn new(major: u32, minor: u32) -> MemDisk {
        MemDisk {
            inner: Arc::new(Mutex::new(MemDiskInner {
                bytes: vec![0; 1 << 20],
                writes: 0,
                fail: false,
            })),
            devno: (major, minor),
        }
    }
    pub fn writes(&self) -> u64 {
        self.inner.lock().writes
    }
    /// The bytes written last (up to the last write's length).
    pub fn image(&self) -> Vec<u8> {
        let g = self.inner.lock();
        let end = g
            .bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |p| p + 1)
            .next_multiple_of(4096)
            .max(4096);
        g.bytes[..end.min(g.bytes.len())].to_vec()
    }
    /// Make every later read and write fail with EIO.
    pub fn fail(&self, on: bool) {
        self.inner.lock().fail = on;
    }
}

impl DiskLog for MemDisk {
    fn read_all(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let g = self.inner.lock();
        if g.fail || buf.len() > g.bytes.len() {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        buf.copy_from_slice(&g.bytes[..buf.len()]);
        Ok(())
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut g = self.inner.lock();
        if g.fail || buf.len() > g.bytes.len() {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        g.bytes[..buf.len()].copy_from_slice(buf);
        g.writes += 1;
        Ok(())
    }
    fn devno(&self) -> std::io::Result<(u32, u32)> {
        Ok(self.devno)
    }
}
