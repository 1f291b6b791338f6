#![no_main]
//! The on-disk reader over an in-memory device image: the fuzz input is the head of a device
//! (label in sectors 0..4, mda headers and metadata text wherever the pv_header points), and the
//! device reads as zeros after it up to 4 MiB, so a 10 KB seed can hold a real 1 MiB mda. Seeds
//! are the heads of the sample PVs in tests/data/pv-images. Any input must give a value or a
//! typed error: no panic, no read outside the device.
#![forbid(unsafe_code)]
use common::scan::label::find_label_in;
use common::scan::mda::parse_mda_header;
use common::scan::{scan_pv, BlockSource, MemSource};
use libfuzzer_sys::fuzz_target;

const DEVICE_SIZE: u64 = 4 << 20;

/// The input followed by zeros up to `DEVICE_SIZE`.
struct Head<'a>(&'a [u8]);

impl BlockSource for Head<'_> {
    fn size(&self) -> u64 {
        DEVICE_SIZE.max(self.0.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        assert!(offset + buf.len() as u64 <= self.size(), "read outside the device");
        buf.fill(0);
        let start = offset.min(self.0.len() as u64) as usize;
        let end = (offset + buf.len() as u64).min(self.0.len() as u64) as usize;
        buf[..end - start].copy_from_slice(&self.0[start..end]);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let dev = Head(data);
    if let Ok(pv) = scan_pv(&dev) {
        // Every mda header that validated lies inside the device.
        for m in pv.mdas.iter().filter_map(|m| m.header.as_ref()) {
            assert!(m.start.saturating_add(m.size) <= dev.size());
        }
        let _ = pv.vg.map(|vg| (vg.extent_count(), vg.free_count()));
    }
    let _ = scan_pv(&MemSource(data));
    let _ = find_label_in(&data[..data.len().min(2048)]);
    if data.len() >= 512 {
        let _ = parse_mda_header(&data[..512], 0);
    }
});
