//! The device-mapper ioctl wire format (`struct dm_ioctl` and what follows it) and the one
//! function that calls `ioctl(2)`.
//!
//! A request is a buffer: a 312-byte header, then a payload (target specs, a message, a new name).
//! The kernel writes its answer into the same buffer; when the buffer is too small for the answer
//! it sets `DM_BUFFER_FULL_FLAG` and the caller retries with a larger one ([`run`] does).
//! Everything except [`raw_ioctl`] is plain byte handling and unit-tested without a kernel.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::types::{DevNum, DmName, DmUuid, Sectors, TargetLine, TargetType};

/// Size of `struct dm_ioctl` (also the offset of the payload: `data_start`).
pub const HEADER_LEN: usize = 312;
/// Size of `struct dm_target_spec` (the parameter string follows it).
const TARGET_SPEC_LEN: usize = 40;
/// Interface version we speak: major 4; minor 0 asks for nothing newer than the first 4.x.
const INTERFACE_VERSION: [u32; 3] = [4, 0, 0];
/// Start size of a buffer that receives data (libdm uses 16 KiB too); doubled on BUFFER_FULL.
const FIRST_REPLY_SIZE: usize = 16 * 1024;
/// Give up growing past this (a status or table never needs it; a sane bound on a loop).
const MAX_BUFFER: usize = 64 * 1024 * 1024;

const NAME_OFFSET: usize = 48;
const UUID_OFFSET: usize = 176;
const NAME_FIELD: usize = 128;
const UUID_FIELD: usize = 129;

/// `dm_ioctl.flags` bits.
pub mod flags {
    pub const READONLY: u32 = 1 << 0;
    pub const SUSPEND: u32 = 1 << 1;
    pub const STATUS_TABLE: u32 = 1 << 4;
    pub const ACTIVE_PRESENT: u32 = 1 << 5;
    pub const INACTIVE_PRESENT: u32 = 1 << 6;
    pub const BUFFER_FULL: u32 = 1 << 8;
    pub const SKIP_LOCKFS: u32 = 1 << 10;
    pub const NOFLUSH: u32 = 1 << 11;
    pub const DATA_OUT: u32 = 1 << 16;
}

/// The ioctl commands this crate uses (`DM_*_CMD` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Version = 0,
    ListDevices = 2,
    DevCreate = 3,
    DevRemove = 4,
    DevSuspend = 6,
    DevStatus = 7,
    TableLoad = 9,
    TableStatus = 12,
    TargetMsg = 14,
}

impl Command {
    /// `_IOWR(0xfd, cmd, struct dm_ioctl)`.
    fn request_code(self) -> libc::c_ulong {
        nix::request_code_readwrite!(0xfd, self as u8, HEADER_LEN) as libc::c_ulong
    }
    /// Whether the kernel returns data after the header (and may ask for a larger buffer).
    fn returns_data(self) -> bool {
        matches!(
            self,
            Command::ListDevices | Command::TableStatus | Command::TargetMsg
        )
    }
    pub fn name(self) -> &'static str {
        match self {
            Command::Version => "version",
            Command::ListDevices => "list",
            Command::DevCreate => "create",
            Command::DevRemove => "remove",
            Command::DevSuspend => "suspend/resume",
            Command::DevStatus => "info",
            Command::TableLoad => "load",
            Command::TableStatus => "status/table",
            Command::TargetMsg => "message",
        }
    }
}

/// What a request carries; the header fields not listed here are zero.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub flags: u32,
    pub dev: Option<DevNum>,
    pub name: Option<DmName>,
    pub uuid: Option<DmUuid>,
    pub target_count: u32,
    pub payload: Vec<u8>,
}

/// The decoded header of the kernel's answer and the data that followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub version: [u32; 3],
    pub flags: u32,
    pub target_count: u32,
    pub open_count: i32,
    pub event_nr: u32,
    pub dev: DevNum,
    pub name: String,
    pub uuid: String,
    /// Bytes from `data_start` to `data_size`.
    pub data: Vec<u8>,
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}
fn get_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}
fn get_u64(buf: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(buf.get(at..at + 8)?.try_into().ok()?))
}
/// The NUL-terminated string at the start of `bytes` (all of it if there is no NUL).
fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
fn align8(n: usize) -> usize {
    (n + 7) & !7
}

impl Request {
    /// Lays the request out in a buffer of at least `size` bytes.
    pub fn encode(&self, size: usize) -> Vec<u8> {
        let len = size.max(HEADER_LEN + self.payload.len());
        let mut buf = vec![0u8; len];
        for (i, v) in INTERFACE_VERSION.iter().enumerate() {
            put_u32(&mut buf, i * 4, *v);
        }
        put_u32(&mut buf, 12, u32::try_from(len).unwrap_or(u32::MAX));
        put_u32(&mut buf, 16, HEADER_LEN as u32);
        put_u32(&mut buf, 20, self.target_count);
        put_u32(&mut buf, 28, self.flags);
        put_u64(&mut buf, 40, self.dev.map_or(0, DevNum::to_kernel));
        if let Some(n) = &self.name {
            // DmName guarantees at most 127 bytes, so the NUL always fits.
            buf[NAME_OFFSET..NAME_OFFSET + n.as_str().len()].copy_from_slice(n.as_str().as_bytes());
        }
        if let Some(u) = &self.uuid {
            buf[UUID_OFFSET..UUID_OFFSET + u.as_str().len()].copy_from_slice(u.as_str().as_bytes());
        }
        buf[HEADER_LEN..HEADER_LEN + self.payload.len()].copy_from_slice(&self.payload);
        buf
    }
}

impl Reply {
    /// Reads the header the kernel wrote back, and the data it announced.
    pub fn decode(buf: &[u8]) -> Option<Reply> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        let data_size = (get_u32(buf, 12)? as usize).min(buf.len());
        let data_start = get_u32(buf, 16)? as usize;
        let data = buf
            .get(data_start..data_size)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        Some(Reply {
            version: [get_u32(buf, 0)?, get_u32(buf, 4)?, get_u32(buf, 8)?],
            target_count: get_u32(buf, 20)?,
            open_count: get_u32(buf, 24)? as i32,
            flags: get_u32(buf, 28)?,
            event_nr: get_u32(buf, 32)?,
            dev: DevNum::from_kernel(get_u64(buf, 40)?),
            name: c_str(&buf[NAME_OFFSET..NAME_OFFSET + NAME_FIELD]),
            uuid: c_str(&buf[UUID_OFFSET..UUID_OFFSET + UUID_FIELD]),
            data,
        })
    }

    /// The target specs of a TABLE_STATUS answer: `next` counts from the start of the data.
    pub fn target_lines(&self) -> Result<Vec<TargetLine>, String> {
        let mut lines = Vec::new();
        let mut at = 0usize;
        for i in 0..self.target_count {
            let spec = self
                .data
                .get(at..at + TARGET_SPEC_LEN)
                .ok_or_else(|| format!("target {i} lies outside the returned data"))?;
            let start = get_u64(spec, 0).unwrap_or(0);
            let length = get_u64(spec, 8).unwrap_or(0);
            let next = get_u32(spec, 20).unwrap_or(0) as usize;
            let ty = c_str(&spec[24..40]);
            let target_type = TargetType::new(&ty).map_err(|e| format!("target {i}: {e}"))?;
            let params = c_str(&self.data[at + TARGET_SPEC_LEN..]);
            lines.push(TargetLine {
                start: Sectors(start),
                length: Sectors(length),
                target_type,
                params,
            });
            if i + 1 < self.target_count {
                if next <= at {
                    return Err(format!(
                        "target {i}: next offset {next} does not move forward"
                    ));
                }
                at = next;
            }
        }
        Ok(lines)
    }

    /// The `dm_name_list` records of a LIST_DEVICES answer: `next` counts from each record.
    pub fn name_list(&self) -> Vec<(DevNum, String)> {
        let mut out = Vec::new();
        let mut at = 0usize;
        while let (Some(dev), Some(next)) = (get_u64(&self.data, at), get_u32(&self.data, at + 8)) {
            if dev != 0 {
                out.push((
                    DevNum::from_kernel(dev),
                    c_str(self.data.get(at + 12..).unwrap_or(&[])),
                ));
            }
            if next == 0 {
                break;
            }
            at += next as usize;
        }
        out
    }

    /// The text a target answered to a message (`DM_DATA_OUT_FLAG`), if any.
    pub fn message_output(&self) -> Option<String> {
        (self.flags & flags::DATA_OUT != 0).then(|| c_str(&self.data))
    }
}

/// The TABLE_LOAD payload: one `dm_target_spec` per line, each followed by its parameters, NUL
/// and padding to 8 bytes; `next` is the distance from this spec to the next one.
pub fn encode_table(lines: &[TargetLine]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        let spec_at = out.len();
        let params = line.params.as_bytes();
        let total = align8(TARGET_SPEC_LEN + params.len() + 1);
        out.resize(spec_at + total, 0);
        put_u64(&mut out, spec_at, line.start.0);
        put_u64(&mut out, spec_at + 8, line.length.0);
        put_u32(&mut out, spec_at + 20, total as u32);
        let ty = line.target_type.as_str().as_bytes();
        out[spec_at + 24..spec_at + 24 + ty.len()].copy_from_slice(ty);
        out[spec_at + TARGET_SPEC_LEN..spec_at + TARGET_SPEC_LEN + params.len()]
            .copy_from_slice(params);
    }
    out
}

/// The TARGET_MSG payload: the sector, then the message text and its NUL.
pub fn encode_message(sector: Sectors, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + text.len() + 1);
    out.extend_from_slice(&sector.0.to_ne_bytes());
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    out
}

/// Runs one command, growing the buffer while the kernel reports it full.
pub fn run(control: BorrowedFd<'_>, cmd: Command, req: &Request) -> Result<Reply, Errno> {
    let mut size = if cmd.returns_data() {
        FIRST_REPLY_SIZE
    } else {
        HEADER_LEN
    };
    loop {
        let mut buf = req.encode(size);
        raw_ioctl(control, cmd, &mut buf)?;
        let reply = Reply::decode(&buf).ok_or(Errno::EPROTO)?;
        if reply.flags & flags::BUFFER_FULL != 0 && cmd.returns_data() {
            if buf.len() >= MAX_BUFFER {
                return Err(Errno::ENOBUFS);
            }
            size = buf.len() * 2;
            continue;
        }
        return Ok(reply);
    }
}

/// The only `unsafe` in the device-mapper layer.
fn raw_ioctl(control: BorrowedFd<'_>, cmd: Command, buf: &mut [u8]) -> Result<(), Errno> {
    assert!(
        buf.len() >= HEADER_LEN,
        "dm ioctl buffer shorter than its header"
    );
    // SAFETY: `buf` is a live, exclusively borrowed allocation of `buf.len()` bytes, and its
    // header's data_size field says exactly that length (Request::encode), so the kernel reads and
    // writes only inside it; the fd is borrowed for the whole call.
    let rc = unsafe {
        libc::ioctl(
            control.as_raw_fd(),
            cmd.request_code() as _,
            buf.as_mut_ptr(),
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_match_the_kernel_header() {
        // _IOWR(0xfd, 0, struct dm_ioctl) on x86_64 and most architectures.
        assert_eq!(Command::Version.request_code(), 0xc138_fd00);
        assert_eq!(Command::TargetMsg.request_code(), 0xc138_fd0e);
    }

    #[test]
    fn header_round_trips() {
        let req = Request {
            flags: flags::NOFLUSH | flags::SKIP_LOCKFS,
            dev: Some(DevNum::new(253, 7)),
            name: Some(DmName::new("pool").unwrap()),
            uuid: Some(DmUuid::new(&"u".repeat(128)).unwrap()),
            target_count: 2,
            payload: vec![1, 2, 3],
        };
        let buf = req.encode(1000);
        assert_eq!(buf.len(), 1000);
        let r = Reply::decode(&buf).unwrap();
        assert_eq!(r.version, [4, 0, 0]);
        assert_eq!(r.flags, flags::NOFLUSH | flags::SKIP_LOCKFS);
        assert_eq!(r.dev, DevNum::new(253, 7));
        assert_eq!(r.name, "pool");
        assert_eq!(r.uuid, "u".repeat(128));
        assert_eq!(r.target_count, 2);
        assert_eq!(&r.data[..3], &[1, 2, 3]);
        assert_eq!(r.data.len(), 1000 - HEADER_LEN);
    }

    #[test]
    fn table_payload_is_laid_out_like_libdm() {
        let lines = vec![
            TargetLine::parse("0 100 linear 7:0 0").unwrap(),
            TargetLine::parse("100 28 zero").unwrap(),
        ];
        let p = encode_table(&lines);
        // 40-byte spec + "linear"'s params "7:0 0\0" (6) = 46, padded to 48.
        assert_eq!(get_u32(&p, 20), Some(48));
        assert_eq!(&p[24..30], b"linear");
        assert_eq!(&p[40..46], b"7:0 0\0");
        assert_eq!(get_u64(&p, 48 + 8), Some(28));
        assert_eq!(p.len(), 48 + 48);
    }

    /// A TABLE_STATUS answer as the kernel lays it out: `next` counts from the data start.
    fn status_reply(lines: &[(&str, &str)]) -> Reply {
        let mut data = Vec::new();
        for (i, (ty, params)) in lines.iter().enumerate() {
            let at = data.len();
            let total = align8(TARGET_SPEC_LEN + params.len() + 1);
            data.resize(at + total, 0);
            put_u64(&mut data, at, i as u64 * 10);
            put_u64(&mut data, at + 8, 10);
            put_u32(&mut data, at + 20, (at + total) as u32);
            data[at + 24..at + 24 + ty.len()].copy_from_slice(ty.as_bytes());
            data[at + 40..at + 40 + params.len()].copy_from_slice(params.as_bytes());
        }
        Reply {
            version: [4, 47, 0],
            flags: 0,
            target_count: lines.len() as u32,
            open_count: 0,
            event_nr: 0,
            dev: DevNum::new(253, 0),
            name: "x".into(),
            uuid: String::new(),
            data,
        }
    }

    #[test]
    fn status_specs_are_read_back() {
        let r = status_reply(&[("thin-pool", "1 2/3 4/5 - rw"), ("zero", "")]);
        let lines = r.target_lines().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].params, "1 2/3 4/5 - rw");
        assert_eq!(lines[1].target_type.as_str(), "zero");
        assert_eq!(lines[1].start, Sectors(10));
        let mut short = r.clone();
        short.data.truncate(50);
        assert!(short.target_lines().is_err());
    }

    #[test]
    fn name_lists_skip_the_empty_record() {
        let mut data = vec![0u8; 16];
        let r = Reply {
            data: data.clone(),
            ..status_reply(&[])
        };
        assert!(r.name_list().is_empty());
        data = vec![0u8; 48];
        put_u64(&mut data, 0, DevNum::new(253, 0).to_kernel());
        put_u32(&mut data, 8, 24);
        data[12..16].copy_from_slice(b"abc\0");
        put_u64(&mut data, 24, DevNum::new(253, 1).to_kernel());
        data[36..39].copy_from_slice(b"de\0");
        let r = Reply {
            data,
            ..status_reply(&[])
        };
        assert_eq!(
            r.name_list(),
            vec![
                (DevNum::new(253, 0), "abc".to_string()),
                (DevNum::new(253, 1), "de".to_string())
            ]
        );
    }

    #[test]
    fn message_payload_carries_sector_and_nul() {
        let p = encode_message(Sectors(0), "create_thin 1");
        assert_eq!(&p[..8], &[0; 8]);
        assert_eq!(&p[8..], b"create_thin 1\0");
    }
}
