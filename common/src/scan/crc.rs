//! lvm2's CRC-32 (docs/protocol.md §5.6): the IEEE reflected polynomial without pre- or
//! post-inversion, chained from a caller-chosen initial value.

/// Initial value for labels, mda headers and metadata text.
pub const INITIAL_CRC: u32 = 0xf597_a6cf;

const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
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
        table[i] = c;
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = make_table();

/// Continue a CRC from `init` over `buf`.
pub fn calc_crc(init: u32, buf: &[u8]) -> u32 {
    buf.iter().fold(init, |crc, &b| {
        TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
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
