//! Region bitmaps (clean bits and sync bits) with bounds-checked indices.
//!
//! Layout as C's `dm_bitset_t` without its leading count word: 32-bit words, bit `i` in word
//! `i / 32` at position `i % 32`, and `region_count / 32 + 1` words (one more than needed when the
//! count is a multiple of 32, as C allocates). Serialised as little-endian words, which is the
//! LSB-first byte bitmap of the disk log and the checkpoint on every host.
#![forbid(unsafe_code)]

use std::fmt;

/// A region index past the end of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange {
    pub region: u64,
    pub count: u64,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "region {} is out of range (log has {} regions)",
            self.region, self.count
        )
    }
}

impl std::error::Error for OutOfRange {}

#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap {
    count: u64,
    words: Vec<u32>,
}

impl fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitmap({} of {} set)", self.count_ones(), self.count)
    }
}

impl Bitmap {
    /// All bits clear.
    pub fn new(count: u64) -> Bitmap {
        Bitmap {
            count,
            words: vec![0; (count / 32 + 1) as usize],
        }
    }

    /// Number of regions (valid indices are `0..len()`).
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn check(&self, i: u64) -> Result<(usize, u32), OutOfRange> {
        if i >= self.count {
            return Err(OutOfRange {
                region: i,
                count: self.count,
            });
        }
        Ok(((i / 32) as usize, 1u32 << (i % 32)))
    }

    pub fn get(&self, i: u64) -> Result<bool, OutOfRange> {
        let (w, m) = self.check(i)?;
        Ok(self.words[w] & m != 0)
    }

    pub fn set(&mut self, i: u64, v: bool) -> Result<(), OutOfRange> {
        let (w, m) = self.check(i)?;
        if v {
            self.words[w] |= m;
        } else {
            self.words[w] &= !m;
        }
        Ok(())
    }

    /// Set every region bit (bits past the end stay clear).
    pub fn set_all(&mut self) {
        for w in &mut self.words {
            *w = u32::MAX;
        }
        self.clear_tail();
    }

    /// Clear the bits past `len()` in the last words.
    pub fn clear_tail(&mut self) {
        let full = (self.count / 32) as usize;
        let rem = self.count % 32;
        if full < self.words.len() {
            self.words[full] &= if rem == 0 { 0 } else { (1u32 << rem) - 1 };
            for w in &mut self.words[full + 1..] {
                *w = 0;
            }
        }
    }

    pub fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// The first clear region at or after `start`, if any.
    pub fn next_zero(&self, start: u64) -> Option<u64> {
        let mut i = start;
        while i < self.count {
            let w = self.words[(i / 32) as usize];
            if w == u32::MAX && i.is_multiple_of(32) {
                i += 32;
                continue;
            }
            if w & (1 << (i % 32)) == 0 {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// Size in bytes of the checkpoint image (`(count / 32 + 1) * 4`).
    pub fn image_len(&self) -> usize {
        self.words.len() * 4
    }

    /// Little-endian word image (checkpoint format).
    pub fn to_image(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Load a word image of exactly [`Bitmap::image_len`] bytes; bits past the end are cleared.
    pub fn load_image(&mut self, b: &[u8]) -> Result<(), usize> {
        if b.len() != self.image_len() {
            return Err(b.len());
        }
        for (w, c) in self.words.iter_mut().zip(b.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        self.clear_tail();
        Ok(())
    }

    /// The first `ceil(count / 8)` bytes of the image (disk log format).
    pub fn to_disk_bytes(&self) -> Vec<u8> {
        let mut v = self.to_image();
        v.truncate(self.count.div_ceil(8) as usize);
        v
    }

    /// Load up to `ceil(count / 8)` LSB-first bytes; missing bytes count as zero.
    pub fn load_disk_bytes(&mut self, b: &[u8]) {
        let n = (self.count.div_ceil(8) as usize).min(b.len());
        let mut img = vec![0u8; self.image_len()];
        img[..n].copy_from_slice(&b[..n]);
        let _ = self.load_image(&img);
    }

    /// Copy all bits from `other` (same length).
    pub fn copy_from(&mut self, other: &Bitmap) {
        if other.count == self.count {
            self.words.copy_from_slice(&other.words);
        }
    }

    /// Hex dump lines as C's `print_bits`: `[  0 -  15] 0F 00 ...`, 16 bytes a line.
    pub fn dump_lines(&self) -> Vec<String> {
        let bytes = self.to_disk_bytes();
        bytes
            .chunks(16)
            .enumerate()
            .map(|(n, c)| {
                let i = n * 16;
                let mut s = format!("[{:3} - {:3}]", i, i + 15);
                for b in c {
                    s.push_str(&format!(" {b:02X}"));
                }
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_at_the_exact_end() {
        let mut b = Bitmap::new(64);
        assert!(b.set(63, true).is_ok());
        assert_eq!(
            b.get(64),
            Err(OutOfRange {
                region: 64,
                count: 64
            })
        );
        assert!(b.set(64, true).is_err());
        assert!(b.get(u64::MAX).is_err());
        assert_eq!(b.count_ones(), 1);
        assert!(Bitmap::new(0).get(0).is_err());
    }

    #[test]
    fn image_size_follows_c() {
        assert_eq!(Bitmap::new(1).image_len(), 4);
        assert_eq!(Bitmap::new(31).image_len(), 4);
        assert_eq!(Bitmap::new(32).image_len(), 8);
        assert_eq!(Bitmap::new(2 * 1024 * 1024).image_len(), 256 * 1024 + 4);
    }

    #[test]
    fn set_all_leaves_tail_clear() {
        for n in [1u64, 31, 32, 33, 100] {
            let mut b = Bitmap::new(n);
            b.set_all();
            assert_eq!(b.count_ones(), n, "n={n}");
            assert_eq!(b.next_zero(0), None);
        }
    }

    #[test]
    fn next_zero_skips_full_words() {
        let mut b = Bitmap::new(100);
        b.set_all();
        b.set(70, false).unwrap();
        assert_eq!(b.next_zero(0), Some(70));
        assert_eq!(b.next_zero(70), Some(70));
        assert_eq!(b.next_zero(71), None);
        assert_eq!(b.next_zero(1000), None);
    }

    #[test]
    fn image_roundtrip_and_disk_bytes() {
        let mut b = Bitmap::new(12);
        b.set(0, true).unwrap();
        b.set(9, true).unwrap();
        assert_eq!(b.to_disk_bytes(), vec![0x01, 0x02]);
        let mut c = Bitmap::new(12);
        c.load_image(&b.to_image()).unwrap();
        assert_eq!(b, c);
        assert_eq!(c.load_image(&[0; 3]), Err(3));
        let mut d = Bitmap::new(12);
        d.load_disk_bytes(&[0xFF, 0xFF, 0xFF]);
        assert_eq!(d.count_ones(), 12);
        assert_eq!(b.dump_lines(), vec!["[  0 -  15] 01 02".to_owned()]);
    }
}
