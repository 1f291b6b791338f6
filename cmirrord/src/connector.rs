//! The kernel link (docs/protocol.md §7.2): netlink connector frames (`nlmsghdr` + `cn_msg` +
//! `dm_ulog_request`) and the [`KernelLink`] trait with two implementations that speak the same
//! frames: the real netlink socket ([`NetlinkLink`]) and a UNIX datagram socket ([`UnixLink`])
//! that tests use to stand in for the kernel.
//!
//! Byte order: netlink is host order by definition, so frames use [`Endian::Native`].

use crate::ulog::{Endian, UlogRequest, HEADER_LEN, REQUEST_SIZE};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

pub const NETLINK_CONNECTOR: i32 = 11;
pub const CN_IDX_DM: u32 = 7;
pub const CN_VAL_DM_USERSPACE_LOG: u32 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSGHDR_LEN: usize = 16;
pub const CN_MSG_LEN: usize = 20;
/// The receive buffer C uses.
pub const RECV_BUF: usize = 2048;

#[derive(Debug)]
pub enum LinkError {
    Io(&'static str, nix::Error),
    /// A frame we cannot use (reason); the daemon logs it and goes on.
    BadFrame(String),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Io(what, e) => write!(f, "{what}: {e}"),
            LinkError::BadFrame(w) => write!(f, "bad kernel frame: {w}"),
        }
    }
}

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LinkError::Io(_, e) => Some(e),
            LinkError::BadFrame(_) => None,
        }
    }
}

/// One decoded frame from the kernel side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFrame {
    /// `cn_msg.seq`.
    pub cn_seq: u32,
    pub req: UlogRequest,
}

/// Decode `nlmsghdr` + `cn_msg` + request.
pub fn decode_frame(buf: &[u8]) -> Result<KernelFrame, LinkError> {
    let e = Endian::Native;
    if buf.len() < NLMSGHDR_LEN {
        return Err(LinkError::BadFrame(format!(
            "{} bytes, no netlink header",
            buf.len()
        )));
    }
    let nl_type = u16::from_ne_bytes([buf[4], buf[5]]);
    match nl_type {
        NLMSG_DONE => {}
        NLMSG_ERROR => {
            return Err(LinkError::BadFrame(
                "Unable to recv message from kernel: NLMSG_ERROR".into(),
            ))
        }
        t => return Err(LinkError::BadFrame(format!("Unknown nlmsg_type {t}"))),
    }
    let cn = &buf[NLMSGHDR_LEN..];
    if cn.len() < CN_MSG_LEN {
        return Err(LinkError::BadFrame(
            "Incomplete request from kernel received".into(),
        ));
    }
    let (idx, val) = (e.u32(cn), e.u32(&cn[4..]));
    if (idx, val) != (CN_IDX_DM, CN_VAL_DM_USERSPACE_LOG) {
        return Err(LinkError::BadFrame(format!(
            "connector id {idx}:{val} is not dm-log-userspace"
        )));
    }
    let cn_seq = e.u32(&cn[8..]);
    let len = u16::from_ne_bytes([cn[16], cn[17]]) as usize;
    if len > REQUEST_SIZE {
        return Err(LinkError::BadFrame(format!(
            "Not enough space to receive kernel request ({len}/{REQUEST_SIZE})"
        )));
    }
    let body = &cn[CN_MSG_LEN..];
    if body.len() < len {
        return Err(LinkError::BadFrame(format!(
            "len = {}, msg->len = {len}",
            body.len()
        )));
    }
    let req =
        UlogRequest::decode(&body[..len], e).map_err(|x| LinkError::BadFrame(x.to_string()))?;
    Ok(KernelFrame { cn_seq, req })
}

fn frame(cn_seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let e = Endian::Native;
    let total = NLMSGHDR_LEN + CN_MSG_LEN + payload.len();
    let mut v = Vec::with_capacity(total);
    v.extend_from_slice(&e.put_u32(total as u32));
    v.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    v.extend_from_slice(&0u16.to_ne_bytes());
    v.extend_from_slice(&e.put_u32(0));
    v.extend_from_slice(&e.put_u32(std::process::id()));
    v.extend_from_slice(&e.put_u32(CN_IDX_DM));
    v.extend_from_slice(&e.put_u32(CN_VAL_DM_USERSPACE_LOG));
    v.extend_from_slice(&e.put_u32(cn_seq));
    v.extend_from_slice(&e.put_u32(ack));
    v.extend_from_slice(&(payload.len() as u16).to_ne_bytes());
    v.extend_from_slice(&0u16.to_ne_bytes());
    v.extend_from_slice(payload);
    v
}

/// A reply frame: the request with `error`/`data`. Over 1024 bytes → `-ENOSPC`, header only.
pub fn encode_reply(req: &UlogRequest) -> Vec<u8> {
    if HEADER_LEN + req.data.len() > REQUEST_SIZE {
        let mut r = req.clone();
        r.data.clear();
        r.error = -libc::ENOSPC;
        return frame(0, 0, &r.encode(Endian::Native));
    }
    frame(0, 0, &req.encode(Endian::Native))
}

/// A length-0 ack for `seq` carrying a positive errno.
pub fn encode_ack(seq: u32, error: u32) -> Vec<u8> {
    frame(seq, error, &[])
}

/// A request frame as the kernel sends it (for test clients).
pub fn encode_request(req: &UlogRequest) -> Vec<u8> {
    frame(req.seq, 0, &req.encode(Endian::Native))
}

/// Decode any frame (request, reply or ack) for test clients: `(cn_seq, ack, payload)`.
pub fn decode_any(buf: &[u8]) -> Option<(u32, u32, Option<UlogRequest>)> {
    if buf.len() < NLMSGHDR_LEN + CN_MSG_LEN {
        return None;
    }
    let cn = &buf[NLMSGHDR_LEN..];
    let e = Endian::Native;
    let len = u16::from_ne_bytes([cn[16], cn[17]]) as usize;
    let body = cn.get(CN_MSG_LEN..CN_MSG_LEN + len)?;
    let req = if len == 0 {
        None
    } else {
        Some(UlogRequest::decode(body, e).ok()?)
    };
    Some((e.u32(&cn[8..]), e.u32(&cn[12..]), req))
}

/// The kernel side as the daemon sees it.
pub trait KernelLink: AsFd {
    /// Receive one frame (blocking until one is there; call after poll says readable).
    fn recv(&mut self) -> Result<KernelFrame, LinkError>;
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError>;
}

/// NETLINK_CONNECTOR bound to group CN_IDX_DM.
pub struct NetlinkLink {
    fd: OwnedFd,
}

impl NetlinkLink {
    /// Open, bind to group 7 and join it. Errors name the step (C's exit codes 3, 4, 5).
    pub fn open() -> Result<NetlinkLink, (i32, LinkError)> {
        use nix::sys::socket::{bind, NetlinkAddr};
        use std::os::fd::FromRawFd;
        // nix has no NETLINK_CONNECTOR protocol constant, so the socket comes from libc.
        // SAFETY: socket(2) takes no pointers; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            )
        };
        if raw < 0 {
            return Err((
                3,
                LinkError::Io("Unable to create netlink socket", nix::Error::last()),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, CN_IDX_DM))
            .map_err(|e| (4, LinkError::Io("Unable to bind to netlink socket", e)))?;
        let group: libc::c_uint = CN_IDX_DM;
        // SAFETY: the option value points at a live c_uint and its exact size is passed.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_ADD_MEMBERSHIP,
                (&group as *const libc::c_uint).cast(),
                std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err((
                5,
                LinkError::Io("Unable to setsockopt on netlink socket", nix::Error::last()),
            ));
        }
        Ok(NetlinkLink { fd })
    }
}

impl AsFd for NetlinkLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl KernelLink for NetlinkLink {
    fn recv(&mut self) -> Result<KernelFrame, LinkError> {
        let mut buf = [0u8; RECV_BUF];
        let n = nix::sys::socket::recv(
            self.fd.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(|e| LinkError::Io("Failed to recv message from kernel", e))?;
        decode_frame(&buf[..n])
    }
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        nix::sys::socket::send(
            self.fd.as_raw_fd(),
            frame,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map(|_| ())
        .map_err(|e| LinkError::Io("Failed to send msg to kernel", e))
    }
}

/// A UNIX datagram socket carrying the same frames; replies go to the last sender.
pub struct UnixLink {
    fd: OwnedFd,
    peer: Option<nix::sys::socket::UnixAddr>,
}

impl UnixLink {
    pub fn bind(path: &Path) -> Result<UnixLink, LinkError> {
        use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
        let _ = std::fs::remove_file(path);
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| LinkError::Io("socket", e))?;
        let addr = UnixAddr::new(path).map_err(|e| LinkError::Io("socket path", e))?;
        bind(fd.as_raw_fd(), &addr).map_err(|e| LinkError::Io("bind", e))?;
        Ok(UnixLink { fd, peer: None })
    }
}

impl AsFd for UnixLink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl KernelLink for UnixLink {
    fn recv(&mut self) -> Result<KernelFrame, LinkError> {
        let mut buf = [0u8; RECV_BUF];
        let (n, from) =
            nix::sys::socket::recvfrom::<nix::sys::socket::UnixAddr>(self.fd.as_raw_fd(), &mut buf)
                .map_err(|e| LinkError::Io("recvfrom", e))?;
        self.peer = from;
        decode_frame(&buf[..n])
    }
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        let Some(peer) = self.peer else {
            return Err(LinkError::BadFrame("no kernel-side peer yet".into()));
        };
        nix::sys::socket::sendto(
            self.fd.as_raw_fd(),
            frame,
            &peer,
            nix::sys::socket::MsgFlags::empty(),
        )
        .map(|_| ())
        .map_err(|e| LinkError::Io("sendto", e))
    }
}

/// Raw fd of a link (for poll).
pub fn raw_fd(l: &dyn KernelLink) -> RawFd {
    l.as_fd().as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ulog::{payload, RequestType};

    #[test]
    fn frames_roundtrip_and_reject_junk() {
        let req = UlogRequest::new(RequestType::MarkRegion, "LVM-u", 42, 7, payload::list(&[1]));
        let f = encode_request(&req);
        assert_eq!(f.len(), 16 + 20 + 168);
        let d = decode_frame(&f).unwrap();
        assert_eq!((d.cn_seq, d.req), (7, req.clone()));
        let mut bad = f.clone();
        bad[4] = NLMSG_ERROR as u8;
        assert!(decode_frame(&bad).is_err());
        let mut big = f.clone();
        big[16 + 16..16 + 18].copy_from_slice(&1025u16.to_ne_bytes());
        assert!(decode_frame(&big).is_err());
        assert!(decode_frame(&f[..40]).is_err());
        let mut other = f.clone();
        other[16] = 9;
        assert!(decode_frame(&other).is_err());
    }

    #[test]
    fn oversized_reply_becomes_enospc() {
        let mut req = UlogRequest::new(RequestType::StatusInfo, "LVM-u", 1, 3, vec![]);
        req.data = vec![b'x'; 900];
        let (_, _, r) = decode_any(&encode_reply(&req)).unwrap();
        let r = r.unwrap();
        assert_eq!((r.error, r.data.len()), (-libc::ENOSPC, 0));
        let (seq, ack, none) = decode_any(&encode_ack(9, libc::EAGAIN as u32)).unwrap();
        assert_eq!((seq, ack, none), (9, libc::EAGAIN as u32, None));
    }
}
