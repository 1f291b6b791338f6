//! `struct dm_ulog_request` (docs/protocol.md §7.3): the 160-byte header plus payload that the
//! kernel's dm-log-userspace sends, and every `DM_ULOG_*` request type with its typed payloads.
//!
//! Byte order: the kernel link is host order by definition (netlink), the cluster wire is
//! little-endian. [`Endian`] says which one a buffer uses; every field is read and written
//! explicitly in that order, never by casting memory. On little-endian hosts both are the same.
#![forbid(unsafe_code)]

use std::fmt;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 160;
/// `DM_UUID_LEN`: the uuid field, NUL included.
pub const UUID_FIELD_LEN: usize = 129;
/// `DM_ULOG_REQUEST_VERSION`.
pub const REQUEST_VERSION: u32 = 2;
/// `DM_ULOG_REQUEST_SIZE`: the largest connector payload the C daemon accepts.
pub const REQUEST_SIZE: usize = 1024;
/// `DM_ULOG_REQUEST_MASK`.
pub const REQUEST_MASK: u32 = 0xFF;
/// Bit OR'd into the type of a server's reply on the cluster.
pub const RESPONSE_BIT: u32 = 0x1000;

/// Byte order of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Host order (the kernel link).
    Native,
    /// Little-endian (the cluster wire).
    Little,
}

impl Endian {
    pub fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Native => u32::from_ne_bytes(a),
            Endian::Little => u32::from_le_bytes(a),
        }
    }
    pub fn u64(self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        match self {
            Endian::Native => u64::from_ne_bytes(a),
            Endian::Little => u64::from_le_bytes(a),
        }
    }
    pub fn put_u32(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Native => v.to_ne_bytes(),
            Endian::Little => v.to_le_bytes(),
        }
    }
    pub fn put_u64(self, v: u64) -> [u8; 8] {
        match self {
            Endian::Native => v.to_ne_bytes(),
            Endian::Little => v.to_le_bytes(),
        }
    }
}

/// The request types (`DM_ULOG_*`) plus the two the daemon uses among nodes, and our own
/// checkpoint piece (type 23, not in C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestType {
    Ctr = 1,
    Dtr = 2,
    Presuspend = 3,
    Postsuspend = 4,
    Resume = 5,
    GetRegionSize = 6,
    IsClean = 7,
    InSync = 8,
    Flush = 9,
    MarkRegion = 10,
    ClearRegion = 11,
    GetResyncWork = 12,
    SetRegionSync = 13,
    GetSyncCount = 14,
    StatusInfo = 15,
    StatusTable = 16,
    IsRemoteRecovering = 17,
    CheckpointReady = 21,
    MemberJoin = 22,
    CheckpointPart = 23,
}

impl RequestType {
    pub fn from_u32(v: u32) -> Option<RequestType> {
        use RequestType::*;
        Some(match v {
            1 => Ctr,
            2 => Dtr,
            3 => Presuspend,
            4 => Postsuspend,
            5 => Resume,
            6 => GetRegionSize,
            7 => IsClean,
            8 => InSync,
            9 => Flush,
            10 => MarkRegion,
            11 => ClearRegion,
            12 => GetResyncWork,
            13 => SetRegionSync,
            14 => GetSyncCount,
            15 => StatusInfo,
            16 => StatusTable,
            17 => IsRemoteRecovering,
            21 => CheckpointReady,
            22 => MemberJoin,
            23 => CheckpointPart,
            _ => return None,
        })
    }
    /// Whether the kernel may send this type (1..=17).
    pub fn is_kernel(self) -> bool {
        (self as u32) <= 17
    }
    /// The C name (`DM_ULOG_MARK_REGION`).
    pub fn name(self) -> &'static str {
        use RequestType::*;
        match self {
            Ctr => "DM_ULOG_CTR",
            Dtr => "DM_ULOG_DTR",
            Presuspend => "DM_ULOG_PRESUSPEND",
            Postsuspend => "DM_ULOG_POSTSUSPEND",
            Resume => "DM_ULOG_RESUME",
            GetRegionSize => "DM_ULOG_GET_REGION_SIZE",
            IsClean => "DM_ULOG_IS_CLEAN",
            InSync => "DM_ULOG_IN_SYNC",
            Flush => "DM_ULOG_FLUSH",
            MarkRegion => "DM_ULOG_MARK_REGION",
            ClearRegion => "DM_ULOG_CLEAR_REGION",
            GetResyncWork => "DM_ULOG_GET_RESYNC_WORK",
            SetRegionSync => "DM_ULOG_SET_REGION_SYNC",
            GetSyncCount => "DM_ULOG_GET_SYNC_COUNT",
            StatusInfo => "DM_ULOG_STATUS_INFO",
            StatusTable => "DM_ULOG_STATUS_TABLE",
            IsRemoteRecovering => "DM_ULOG_IS_REMOTE_RECOVERING",
            CheckpointReady => "DM_ULOG_CHECKPOINT_READY",
            MemberJoin => "DM_ULOG_MEMBER_JOIN",
            CheckpointPart => "DM_ULOG_CHECKPOINT_PART",
        }
    }
}

/// Name of a raw type value for logs (`DM_ULOG_FLUSH`, or the number).
pub fn type_name(raw: u32) -> String {
    match RequestType::from_u32(raw & !RESPONSE_BIT) {
        Some(t) => t.name().to_owned(),
        None => format!("{raw}"),
    }
}

/// Why a buffer is not a `dm_ulog_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UlogError {
    /// Fewer than 160 bytes.
    ShortHeader(usize),
    /// `data_size` says more than the buffer holds.
    ShortData { data_size: u32, available: usize },
    /// No NUL inside the 129-byte uuid field.
    UuidNotTerminated,
    /// A typed payload has the wrong size for its request type.
    BadPayload { rtype: &'static str, len: usize },
}

impl fmt::Display for UlogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UlogError::ShortHeader(n) => write!(
                f,
                "request of {n} bytes is shorter than the 160-byte header"
            ),
            UlogError::ShortData {
                data_size,
                available,
            } => {
                write!(
                    f,
                    "data_size {data_size} exceeds the {available} payload bytes received"
                )
            }
            UlogError::UuidNotTerminated => write!(f, "uuid field is not NUL-terminated"),
            UlogError::BadPayload { rtype, len } => write!(f, "bad payload size {len} for {rtype}"),
        }
    }
}

impl std::error::Error for UlogError {}

/// One `dm_ulog_request`. `uuid` holds the bytes before the NUL (at most 128).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UlogRequest {
    pub luid: u64,
    pub uuid: Vec<u8>,
    pub version: u32,
    pub error: i32,
    pub seq: u32,
    pub request_type: u32,
    pub data: Vec<u8>,
}

impl UlogRequest {
    /// A request of `rtype` for `uuid`/`luid` with `data`, as the kernel would send it.
    pub fn new(rtype: RequestType, uuid: &str, luid: u64, seq: u32, data: Vec<u8>) -> UlogRequest {
        let mut u = uuid.as_bytes().to_vec();
        u.truncate(UUID_FIELD_LEN - 1);
        UlogRequest {
            luid,
            uuid: u,
            version: REQUEST_VERSION,
            error: 0,
            seq,
            request_type: rtype as u32,
            data,
        }
    }

    /// Decode from `buf` (header then `data_size` bytes; trailing bytes are ignored).
    pub fn decode(buf: &[u8], e: Endian) -> Result<UlogRequest, UlogError> {
        if buf.len() < HEADER_LEN {
            return Err(UlogError::ShortHeader(buf.len()));
        }
        let uuid_field = &buf[8..8 + UUID_FIELD_LEN];
        let nul = uuid_field
            .iter()
            .position(|&b| b == 0)
            .ok_or(UlogError::UuidNotTerminated)?;
        let data_size = e.u32(&buf[156..]);
        let available = buf.len() - HEADER_LEN;
        if data_size as usize > available {
            return Err(UlogError::ShortData {
                data_size,
                available,
            });
        }
        Ok(UlogRequest {
            luid: e.u64(&buf[0..]),
            uuid: uuid_field[..nul].to_vec(),
            version: e.u32(&buf[140..]),
            error: e.u32(&buf[144..]) as i32,
            seq: e.u32(&buf[148..]),
            request_type: e.u32(&buf[152..]),
            data: buf[HEADER_LEN..HEADER_LEN + data_size as usize].to_vec(),
        })
    }

    /// Append the encoded request (header + data) to `out`.
    pub fn encode_into(&self, e: Endian, out: &mut Vec<u8>) {
        out.extend_from_slice(&e.put_u64(self.luid));
        let mut uuid = [0u8; UUID_FIELD_LEN + 3];
        let n = self.uuid.len().min(UUID_FIELD_LEN - 1);
        uuid[..n].copy_from_slice(&self.uuid[..n]);
        out.extend_from_slice(&uuid);
        out.extend_from_slice(&e.put_u32(self.version));
        out.extend_from_slice(&e.put_u32(self.error as u32));
        out.extend_from_slice(&e.put_u32(self.seq));
        out.extend_from_slice(&e.put_u32(self.request_type));
        out.extend_from_slice(&e.put_u32(self.data.len() as u32));
        out.extend_from_slice(&self.data);
    }

    pub fn encode(&self, e: Endian) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN + self.data.len());
        self.encode_into(e, &mut v);
        v
    }

    /// The uuid as text (lossy for non-UTF-8 bytes).
    pub fn uuid_str(&self) -> String {
        String::from_utf8_lossy(&self.uuid).into_owned()
    }

    /// The request type without the response bit, if known.
    pub fn rtype(&self) -> Option<RequestType> {
        RequestType::from_u32(self.request_type & !RESPONSE_BIT)
    }

    pub fn is_response(&self) -> bool {
        self.request_type & RESPONSE_BIT != 0
    }

    /// Set an error reply: `error` and no data (C forces `data_size = 0` when `error != 0`).
    pub fn set_error(&mut self, errno_neg: i32) {
        self.error = errno_neg;
        if errno_neg != 0 {
            self.data.clear();
        }
    }
}

/// Payload helpers. Payloads in a [`UlogRequest`] are always held in host order; the cluster
/// codec converts them at the wire (see [`swap_payload`]).
pub mod payload {
    use super::UlogError;

    fn u64_at(d: &[u8], i: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&d[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(a)
    }

    /// One u64 (IS_CLEAN, IN_SYNC, IS_REMOTE_RECOVERING requests).
    pub fn region(d: &[u8], rtype: &'static str) -> Result<u64, UlogError> {
        if d.len() < 8 {
            return Err(UlogError::BadPayload {
                rtype,
                len: d.len(),
            });
        }
        Ok(u64_at(d, 0))
    }

    /// u64[] (MARK_REGION, CLEAR_REGION).
    pub fn regions(d: &[u8], rtype: &'static str) -> Result<Vec<u64>, UlogError> {
        if !d.len().is_multiple_of(8) {
            return Err(UlogError::BadPayload {
                rtype,
                len: d.len(),
            });
        }
        Ok((0..d.len() / 8).map(|i| u64_at(d, i)).collect())
    }

    /// `{u64 region; i64 in_sync}` (SET_REGION_SYNC).
    pub fn region_sync(d: &[u8]) -> Result<(u64, i64), UlogError> {
        if d.len() < 16 {
            return Err(UlogError::BadPayload {
                rtype: "DM_ULOG_SET_REGION_SYNC",
                len: d.len(),
            });
        }
        Ok((u64_at(d, 0), u64_at(d, 1) as i64))
    }

    /// Two 8-byte values: `{i64; u64}` replies (GET_RESYNC_WORK, IS_REMOTE_RECOVERING) and the
    /// SET_REGION_SYNC request.
    pub fn pair(a: u64, b: u64) -> Vec<u8> {
        let mut v = a.to_ne_bytes().to_vec();
        v.extend_from_slice(&b.to_ne_bytes());
        v
    }

    pub fn one(a: u64) -> Vec<u8> {
        a.to_ne_bytes().to_vec()
    }

    pub fn list(rs: &[u64]) -> Vec<u8> {
        rs.iter().flat_map(|r| r.to_ne_bytes()).collect()
    }

    /// Read back a reply of one or two 8-byte values (for clients and tests).
    pub fn words(d: &[u8]) -> Vec<u64> {
        (0..d.len() / 8).map(|i| u64_at(d, i)).collect()
    }
}

/// Byte-swap the typed 8-byte fields of a payload (what C's `v5_data_endian_switch` does when
/// a host's order differs from the wire's). Strings and bitmaps are left alone.
pub fn swap_payload(request_type: u32, data: &mut [u8]) {
    use RequestType::*;
    let response = request_type & RESPONSE_BIT != 0;
    let words = match RequestType::from_u32(request_type & !RESPONSE_BIT) {
        Some(GetRegionSize | GetSyncCount | IsClean | InSync) if response => 1,
        Some(GetResyncWork | IsRemoteRecovering) if response => 2,
        Some(IsClean | InSync | IsRemoteRecovering) if !response => 1,
        Some(SetRegionSync) if !response => 2,
        Some(MarkRegion | ClearRegion) if !response => data.len() / 8,
        _ => 0,
    };
    for w in data.chunks_exact_mut(8).take(words) {
        w.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> UlogRequest {
        UlogRequest {
            luid: 0x1122334455667788,
            uuid: b"LVM-abcdef".to_vec(),
            version: 2,
            error: -22,
            seq: 77,
            request_type: RequestType::MarkRegion as u32,
            data: payload::list(&[1, 2, 3]),
        }
    }

    #[test]
    fn header_offsets_match_the_c_struct() {
        let r = sample();
        let b = r.encode(Endian::Little);
        assert_eq!(b.len(), HEADER_LEN + 24);
        assert_eq!(&b[0..8], &0x1122334455667788u64.to_le_bytes());
        assert_eq!(&b[8..18], b"LVM-abcdef");
        assert!(b[18..140].iter().all(|&x| x == 0));
        assert_eq!(&b[140..144], &2u32.to_le_bytes());
        assert_eq!(&b[144..148], &(-22i32).to_le_bytes());
        assert_eq!(&b[148..152], &77u32.to_le_bytes());
        assert_eq!(&b[152..156], &10u32.to_le_bytes());
        assert_eq!(&b[156..160], &24u32.to_le_bytes());
        assert_eq!(UlogRequest::decode(&b, Endian::Little).unwrap(), r);
    }

    #[test]
    fn decode_rejects_short_and_unterminated() {
        let b = sample().encode(Endian::Native);
        assert_eq!(
            UlogRequest::decode(&b[..100], Endian::Native),
            Err(UlogError::ShortHeader(100))
        );
        assert!(matches!(
            UlogRequest::decode(&b[..170], Endian::Native),
            Err(UlogError::ShortData {
                data_size: 24,
                available: 10
            })
        ));
        let mut u = b.clone();
        for x in &mut u[8..137] {
            *x = b'a';
        }
        assert_eq!(
            UlogRequest::decode(&u, Endian::Native),
            Err(UlogError::UuidNotTerminated)
        );
        // 128 characters plus the NUL is the longest uuid.
        u[136] = 0;
        assert_eq!(
            UlogRequest::decode(&u, Endian::Native).unwrap().uuid.len(),
            128
        );
    }

    #[test]
    fn every_type_has_a_number_and_name() {
        for v in 0..64 {
            if let Some(t) = RequestType::from_u32(v) {
                assert_eq!(t as u32, v);
                assert!(t.name().starts_with("DM_ULOG_"));
            }
        }
        assert_eq!(RequestType::from_u32(18), None);
        assert_eq!(
            type_name(RequestType::Flush as u32 | RESPONSE_BIT),
            "DM_ULOG_FLUSH"
        );
    }

    #[test]
    fn payload_helpers() {
        assert_eq!(
            payload::regions(&payload::list(&[5, 9]), "x").unwrap(),
            vec![5, 9]
        );
        assert!(payload::regions(&[0; 7], "x").is_err());
        assert!(payload::region(&[0; 4], "x").is_err());
        assert_eq!(payload::region_sync(&payload::pair(3, 1)).unwrap(), (3, 1));
        assert_eq!(
            payload::words(&payload::pair(7, u64::MAX)),
            vec![7, u64::MAX]
        );
    }

    #[test]
    fn swap_payload_swaps_only_typed_fields() {
        let mut d = payload::list(&[1, 2]);
        swap_payload(RequestType::MarkRegion as u32, &mut d);
        assert_eq!(
            payload::words(&d),
            vec![1u64.swap_bytes(), 2u64.swap_bytes()]
        );
        let mut d = payload::pair(1, 2);
        swap_payload(RequestType::GetResyncWork as u32, &mut d); // request: no data
        assert_eq!(payload::words(&d), vec![1, 2]);
        swap_payload(RequestType::GetResyncWork as u32 | RESPONSE_BIT, &mut d);
        assert_eq!(
            payload::words(&d),
            vec![1u64.swap_bytes(), 2u64.swap_bytes()]
        );
        let mut s = b"1 clustered-core".to_vec();
        swap_payload(RequestType::StatusInfo as u32 | RESPONSE_BIT, &mut s);
        assert_eq!(s, b"1 clustered-core");
    }
}
