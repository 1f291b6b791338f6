//! lvm2's CRC-32 (docs/protocol.md §5.6): the IEEE reflected polynomial without pre- or
//! post-inversion, chained from a caller-chosen initial value.

/// Initial value for labels, mda headers and metadata text.
pub const INITIAL_CRC: u32 = 0xf597_a6cf;

/// Slicing-by-8 tables: `TABLES[0]` is the classic byte table; `TABLES[k][b]` is the CRC of
/// byte `b` followed by `k` zero bytes, so eight bytes are folded with eight lookups at once.
const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = t[0][(prev & 0xff) as usize] ^ (prev >> 8);
            k += 1;
        }
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = make_tables();

fn byte_step(crc: u32, b: u8) -> u32 {
    TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
}

/// Continue a CRC from `init` over `buf` (eight bytes per step; a metadata text of a few KiB
/// is checked on every PV of a scan).
pub fn calc_crc(init: u32, buf: &[u8]) -> u32 {
    let mut crc = init;
    let mut chunks = buf.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = TABLES[7][(lo & 0xff) as usize]
            ^ TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][(hi & 0xff) as usize]
            ^ TABLES[2][((hi >> 8) & 0xff) as usize]
            ^ TABLES[1][((hi >> 16) & 0xff) as usize]
            ^ TABLES[0][(hi >> 24) as usize];
    }
    chunks.remainder().iter().fold(crc, |c, &b| byte_step(c, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relation_to_zlib_crc32_holds() {
        // zlib crc32("123456789") = 0xcbf43926; lvm_crc(init, buf) = !zlib(buf, !init).
        assert_eq!(!calc_crc(!0, b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn eight_at_a_time_equals_byte_by_byte() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 63, 512, 999, 1000] {
            for start in [0, 1, 3] {
                let part = &data[start..len.max(start)];
                let slow = part.iter().fold(INITIAL_CRC, |c, &b| byte_step(c, b));
                assert_eq!(calc_crc(INITIAL_CRC, part), slow, "len {len} from {start}");
            }
        }
    }

    #[test]
    fn chaining_equals_one_pass() {
        let a = calc_crc(INITIAL_CRC, b"hello ");
        assert_eq!(calc_crc(a, b"world"), calc_crc(INITIAL_CRC, b"hello world"));
    }

    #[test]
    fn filter_token_examples_from_protocol() {
        assert_eq!(calc_crc(0, b"a|.*|"), 2_175_851_276);
        let t = calc_crc(calc_crc(0, b"r|/dev/sdb|"), b"a|.*|");
        assert_eq!(t, 705_910_794);
    }
}
