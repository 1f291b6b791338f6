//! The cluster message (docs/protocol.md §7.9): C's `struct clog_request`, i.e. two u64 version
//! words, `originator`, `pit_server`, then a `dm_ulog_request` and its data, all little-endian on
//! the wire on every host. Plus the checkpoint that carries a log's state to a joining node.
//!
//! Checkpoints: C sends one `CHECKPOINT_READY` (type 21) holding `sync ‖ clean ‖ "<rr> <who>"`
//! and hangs when that exceeds CPG's message limit. We send type 23 (`CHECKPOINT_PART`) pieces,
//! each below the limit, of a versioned image that also carries the mark list; we still accept a
//! C type-21 checkpoint.
#![forbid(unsafe_code)]

use crate::ulog::{self, Endian, RequestType, UlogError, UlogRequest};
use std::fmt;

/// `CLOG_TFR_VERSION`.
pub const CLOG_VERSION: u64 = 5;
/// Bytes before the `dm_ulog_request`.
pub const PREFIX_LEN: usize = 24;
/// Header bytes of a cluster message (184).
pub const MESSAGE_HEADER_LEN: usize = PREFIX_LEN + ulog::HEADER_LEN;
/// `RECOVERING_REGION_SECTION_SIZE` of the C checkpoint.
pub const C_RECOVERING_LEN: usize = 64;
const CKPT_MAGIC: u32 = 0x4B43_4D43; // "CMCK"
const CKPT_VERSION: u32 = 1;
const PIECE_HEADER: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    Short(usize),
    /// `version[0]` is not 5 (2..4 are the RHEL5 layout, which C cannot really read either).
    Version(u64),
    Ulog(UlogError),
    Checkpoint(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Short(n) => write!(f, "cluster message of {n} bytes is too short"),
            WireError::Version(v) => write!(
                f,
                "Unable to process cluster message: Incompatible version {v}"
            ),
            WireError::Ulog(e) => write!(f, "cluster message: {e}"),
            WireError::Checkpoint(w) => write!(f, "bad checkpoint: {w}"),
        }
    }
}

impl std::error::Error for WireError {}

/// One cluster message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClogMessage {
    /// Node the request came from (the CPG sender for requests; the target node for checkpoints).
    pub originator: u32,
    /// The server when a request was queued during startup (local use; sent as C does).
    pub pit_server: u32,
    pub req: UlogRequest,
}

impl ClogMessage {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(MESSAGE_HEADER_LEN + self.req.data.len());
        v.extend_from_slice(&CLOG_VERSION.to_le_bytes());
        v.extend_from_slice(&CLOG_VERSION.to_le_bytes());
        v.extend_from_slice(&self.originator.to_le_bytes());
        v.extend_from_slice(&self.pit_server.to_le_bytes());
        let start = v.len();
        self.req.encode_into(Endian::Little, &mut v);
        if cfg!(target_endian = "big") {
            ulog::swap_payload(self.req.request_type, &mut v[start + ulog::HEADER_LEN..]);
        }
        v
    }

    pub fn decode(buf: &[u8]) -> Result<ClogMessage, WireError> {
        if buf.len() < MESSAGE_HEADER_LEN {
            return Err(WireError::Short(buf.len()));
        }
        let e = Endian::Little;
        let version = e.u64(buf);
        if version != CLOG_VERSION {
            return Err(WireError::Version(version));
        }
        let mut req = UlogRequest::decode(&buf[PREFIX_LEN..], e).map_err(WireError::Ulog)?;
        if cfg!(target_endian = "big") {
            ulog::swap_payload(req.request_type, &mut req.data);
        }
        Ok(ClogMessage {
            originator: e.u32(&buf[16..]),
            pit_server: e.u32(&buf[20..]),
            req,
        })
    }
}

/// A log's state for a joining node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// 0 when unknown (a C checkpoint does not say).
    pub region_count: u64,
    pub recovering: Option<(u64, u32)>,
    /// Requests the joiner has queued since its join that this state already includes.
    pub skip: u32,
    pub sync: Vec<u8>,
    pub clean: Vec<u8>,
    /// (region, node) marks.
    pub marks: Vec<(u64, u32)>,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(WireError::Checkpoint("truncated"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(Endian::Little.u32(self.take(4)?))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(Endian::Little.u64(self.take(8)?))
    }
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(48 + self.sync.len() * 2 + self.marks.len() * 12);
        v.extend_from_slice(&CKPT_MAGIC.to_le_bytes());
        v.extend_from_slice(&CKPT_VERSION.to_le_bytes());
        v.extend_from_slice(&self.region_count.to_le_bytes());
        let (rr, who) = self.recovering.unwrap_or((u64::MAX, u32::MAX));
        v.extend_from_slice(&rr.to_le_bytes());
        v.extend_from_slice(&who.to_le_bytes());
        v.extend_from_slice(&self.skip.to_le_bytes());
        v.extend_from_slice(&(self.sync.len() as u32).to_le_bytes());
        v.extend_from_slice(&self.sync);
        v.extend_from_slice(&self.clean);
        v.extend_from_slice(&(self.marks.len() as u32).to_le_bytes());
        for (r, n) in &self.marks {
            v.extend_from_slice(&r.to_le_bytes());
            v.extend_from_slice(&n.to_le_bytes());
        }
        v
    }

    pub fn decode(b: &[u8]) -> Result<Checkpoint, WireError> {
        let mut r = Reader { b, at: 0 };
        if r.u32()? != CKPT_MAGIC {
            return Err(WireError::Checkpoint("magic"));
        }
        if r.u32()? != CKPT_VERSION {
            return Err(WireError::Checkpoint("version"));
        }
        let region_count = r.u64()?;
        let rr = r.u64()?;
        let who = r.u32()?;
        let skip = r.u32()?;
        let n = r.u32()? as usize;
        let sync = r.take(n)?.to_vec();
        let clean = r.take(n)?.to_vec();
        let nmarks = r.u32()? as usize;
        if nmarks > (b.len() - r.at) / 12 {
            return Err(WireError::Checkpoint("mark count"));
        }
        let mut marks = Vec::with_capacity(nmarks);
        for _ in 0..nmarks {
            marks.push((r.u64()?, r.u32()?));
        }
        if r.at != b.len() {
            return Err(WireError::Checkpoint("trailing bytes"));
        }
        let recovering = (rr != u64::MAX).then_some((rr, who));
        Ok(Checkpoint {
            region_count,
            recovering,
            skip,
            sync,
            clean,
            marks,
        })
    }

    /// Read a C `CHECKPOINT_READY` payload: `sync ‖ clean ‖ 64-byte "<rr> <recoverer>"`.
    pub fn decode_c(data: &[u8]) -> Result<Checkpoint, WireError> {
        if data.len() < C_RECOVERING_LEN || !(data.len() - C_RECOVERING_LEN).is_multiple_of(2) {
            return Err(WireError::Checkpoint("C checkpoint size"));
        }
        let n = (data.len() - C_RECOVERING_LEN) / 2;
        let s = &data[2 * n..];
        let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
        let s =
            std::str::from_utf8(s).map_err(|_| WireError::Checkpoint("recovering region text"))?;
        let mut it = s.split_whitespace();
        let rr: u64 = it
            .next()
            .and_then(|x| x.parse().ok())
            .ok_or(WireError::Checkpoint("recovering region"))?;
        let who: u32 = it
            .next()
            .and_then(|x| x.parse().ok())
            .ok_or(WireError::Checkpoint("recoverer"))?;
        Ok(Checkpoint {
            region_count: 0,
            recovering: (rr != u64::MAX).then_some((rr, who)),
            skip: 0,
            sync: data[..n].to_vec(),
            clean: data[n..2 * n].to_vec(),
            marks: vec![],
        })
    }
}

/// Cut an encoded checkpoint into `CHECKPOINT_PART` payloads so that every whole cluster message
/// (184-byte header + 8-byte piece header + chunk) is at most `max_message` bytes.
pub fn split_checkpoint(image: &[u8], max_message: usize) -> Vec<Vec<u8>> {
    let chunk = max_message
        .saturating_sub(MESSAGE_HEADER_LEN + PIECE_HEADER)
        .max(1);
    let total = image.len() as u32;
    let mut out = vec![];
    let mut off = 0usize;
    loop {
        let end = (off + chunk).min(image.len());
        let mut p = Vec::with_capacity(PIECE_HEADER + end - off);
        p.extend_from_slice(&total.to_le_bytes());
        p.extend_from_slice(&(off as u32).to_le_bytes());
        p.extend_from_slice(&image[off..end]);
        out.push(p);
        off = end;
        if off >= image.len() {
            return out;
        }
    }
}

/// Puts the pieces from one sender back together (they arrive in order: CPG delivery is total).
#[derive(Debug, Default)]
pub struct Assembly {
    total: usize,
    buf: Vec<u8>,
}

impl Assembly {
    /// Add one piece; `Ok(Some(image))` when complete. A piece out of order restarts nothing and
    /// is an error (the sender's pieces are then ignored until a piece with offset 0).
    pub fn add(&mut self, piece: &[u8]) -> Result<Option<Vec<u8>>, WireError> {
        if piece.len() < PIECE_HEADER {
            return Err(WireError::Checkpoint("piece header"));
        }
        let total = Endian::Little.u32(piece) as usize;
        let off = Endian::Little.u32(&piece[4..]) as usize;
        let body = &piece[PIECE_HEADER..];
        if off == 0 {
            self.total = total;
            self.buf.clear();
        }
        if off != self.buf.len() || total != self.total || off + body.len() > total {
            self.buf.clear();
            self.total = 0;
            return Err(WireError::Checkpoint("piece out of order"));
        }
        self.buf.extend_from_slice(body);
        if self.buf.len() == self.total {
            self.total = 0;
            return Ok(Some(std::mem::take(&mut self.buf)));
        }
        Ok(None)
    }
}

/// A checkpoint piece message (type 23) from `sender` for `target`.
pub fn checkpoint_piece_message(
    uuid: &str,
    target: u32,
    sender: u32,
    piece: Vec<u8>,
) -> ClogMessage {
    let mut req = UlogRequest::new(RequestType::CheckpointPart, uuid, 0, sender, piece);
    req.version = ulog::REQUEST_VERSION;
    ClogMessage {
        originator: target,
        pit_server: 0,
        req,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ulog::payload;

    #[test]
    fn message_layout_is_little_endian_c_clog_request() {
        let m = ClogMessage {
            originator: 3,
            pit_server: 1,
            req: UlogRequest::new(
                RequestType::MarkRegion,
                "LVM-x",
                0,
                9,
                payload::list(&[0x0102]),
            ),
        };
        let b = m.encode();
        assert_eq!(b.len(), 184 + 8);
        assert_eq!(&b[0..8], &5u64.to_le_bytes());
        assert_eq!(&b[16..20], &3u32.to_le_bytes());
        assert_eq!(&b[24 + 8..24 + 13], b"LVM-x");
        assert_eq!(&b[24 + 152..24 + 156], &10u32.to_le_bytes());
        assert_eq!(&b[184..192], &0x0102u64.to_le_bytes());
        assert_eq!(ClogMessage::decode(&b).unwrap(), m);
        let mut old = b.clone();
        old[0] = 4;
        assert_eq!(ClogMessage::decode(&old), Err(WireError::Version(4)));
        assert_eq!(ClogMessage::decode(&b[..100]), Err(WireError::Short(100)));
    }

    #[test]
    fn checkpoint_roundtrip_and_pieces() {
        let c = Checkpoint {
            region_count: 5000,
            recovering: Some((17, 2)),
            skip: 1,
            sync: (0..628).map(|i| i as u8).collect(),
            clean: vec![0xAA; 628],
            marks: vec![(3, 1), (3, 2), (4999, 3)],
        };
        let img = c.encode();
        assert_eq!(Checkpoint::decode(&img).unwrap(), c);
        let pieces = split_checkpoint(&img, 400);
        assert!(pieces.len() > 3);
        assert!(pieces.iter().all(|p| MESSAGE_HEADER_LEN + p.len() <= 400));
        let mut a = Assembly::default();
        let mut done = None;
        for p in &pieces {
            done = a.add(p).unwrap();
        }
        assert_eq!(Checkpoint::decode(&done.unwrap()).unwrap(), c);
        // out of order piece is rejected
        let mut a = Assembly::default();
        assert!(a.add(&pieces[1]).is_err());
        assert!(Checkpoint::decode(&img[..img.len() - 1]).is_err());
    }

    #[test]
    fn reads_a_c_checkpoint() {
        let mut d = vec![1u8, 0, 0, 0, 3, 0, 0, 0];
        let mut s = b"7 2".to_vec();
        s.resize(64, 0);
        d.extend_from_slice(&s);
        let c = Checkpoint::decode_c(&d).unwrap();
        assert_eq!(
            (c.sync, c.clean, c.recovering),
            (vec![1, 0, 0, 0], vec![3, 0, 0, 0], Some((7, 2)))
        );
        let mut s = b"18446744073709551615 4294967295".to_vec();
        s.resize(64, 0);
        let c = Checkpoint::decode_c(&s).unwrap();
        assert_eq!(c.recovering, None);
        assert!(Checkpoint::decode_c(&[0; 65]).is_err());
    }
}
