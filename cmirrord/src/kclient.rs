//! The kernel side for tests and the benchmark: sends `dm_ulog_request`s in connector frames to
//! a daemon started with `CMIRRORD_KERNEL_SOCKET`, and waits for the matching reply or ack.
#![forbid(unsafe_code)]

use crate::connector;
use crate::ulog::{payload, RequestType, UlogRequest};
use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockType,
    UnixAddr,
};
use nix::sys::time::TimeVal;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct KernelClient {
    fd: OwnedFd,
    daemon: UnixAddr,
    own: PathBuf,
    seq: u32,
    pub timeout: Duration,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Reply(UlogRequest),
    Ack(u32),
}

impl KernelClient {
    pub fn connect(daemon: &Path) -> Result<KernelClient, String> {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| e.to_string())?;
        let own = std::env::temp_dir().join(format!(
            "cmirrord-kclient-{}-{:x}.sock",
            std::process::id(),
            fd.as_raw_fd()
        ));
        let _ = std::fs::remove_file(&own);
        bind(
            fd.as_raw_fd(),
            &UnixAddr::new(&own).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("bind {}: {e}", own.display()))?;
        setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, 200_000))
            .map_err(|e| e.to_string())?;
        let daemon = UnixAddr::new(daemon).map_err(|e| e.to_string())?;
        let seq = std::process::id().wrapping_mul(7919);
        Ok(KernelClient {
            fd,
            daemon,
            own,
            seq,
            timeout: Duration::from_secs(20),
        })
    }

    /// Send one request and wait for its reply (or ack for CLEAR_REGION).
    pub fn call(
        &mut self,
        t: RequestType,
        uuid: &str,
        luid: u64,
        data: Vec<u8>,
    ) -> Result<Answer, String> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let req = UlogRequest::new(t, uuid, luid, self.seq, data);
        self.call_raw(&req)
    }

    pub fn call_raw(&mut self, req: &UlogRequest) -> Result<Answer, String> {
        let frame = connector::encode_request(req);
        sendto(self.fd.as_raw_fd(), &frame, &self.daemon, MsgFlags::empty())
            .map_err(|e| format!("send: {e}"))?;
        let start = Instant::now();
        let mut buf = [0u8; connector::RECV_BUF];
        while start.elapsed() < self.timeout {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(nix::Error::EAGAIN | nix::Error::EINTR) => continue,
                Err(e) => return Err(format!("recv: {e}")),
            };
            match connector::decode_any(&buf[..n]) {
                Some((_, _, Some(r))) if r.seq == req.seq => return Ok(Answer::Reply(r)),
                Some((seq, ack, None)) if seq == req.seq => return Ok(Answer::Ack(ack)),
                _ => continue,
            }
        }
        Err(format!(
            "no answer to {} seq {} in {:?}",
            crate::ulog::type_name(req.request_type),
            req.seq,
            self.timeout
        ))
    }

    /// A call that must succeed; returns the reply data.
    pub fn ok(
        &mut self,
        t: RequestType,
        uuid: &str,
        luid: u64,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        match self.call(t, uuid, luid, data)? {
            Answer::Reply(r) if r.error == 0 => Ok(r.data),
            Answer::Reply(r) => Err(format!("{} failed: error {}", t.name(), r.error)),
            Answer::Ack(0) => Ok(vec![]),
            Answer::Ack(e) => Err(format!("{} nacked: {e}", t.name())),
        }
    }

    /// Run one text command (see `cmirrord-kclient --help`) and return its output line.
    pub fn command(&mut self, line: &str) -> Result<String, String> {
        use RequestType as T;
        let w: Vec<&str> = line.split_whitespace().collect();
        let (op, uuid, luid) = match w.as_slice() {
            [op, u, l, ..] => (
                *op,
                *u,
                l.parse::<u64>()
                    .map_err(|_| format!("bad luid in {line:?}"))?,
            ),
            [op] if op.starts_with("sleep") => (*op, "", 0),
            _ => return Err(format!("bad command {line:?}")),
        };
        let nums = |from: usize| -> Result<Vec<u64>, String> {
            w[from..]
                .iter()
                .map(|x| x.parse::<u64>().map_err(|_| format!("bad number {x:?}")))
                .collect()
        };
        let word = |d: Vec<u8>| payload::words(&d).first().copied().unwrap_or(0).to_string();
        let simple =
            |c: &mut KernelClient, t: RequestType, data: Vec<u8>| -> Result<String, String> {
                match c.call(t, uuid, luid, data)? {
                    Answer::Reply(r) if r.error != 0 => Ok(format!("error {}", r.error)),
                    Answer::Reply(r) if t == T::Ctr && !r.data.is_empty() => Ok(format!(
                        "ok {}",
                        String::from_utf8_lossy(&r.data).trim_end_matches('\0')
                    )),
                    Answer::Reply(_) => Ok("ok".into()),
                    Answer::Ack(e) => Ok(if e == 0 {
                        "ok".into()
                    } else {
                        format!("nack {e}")
                    }),
                }
            };
        match op {
            "ctr" => simple(self, T::Ctr, format!("{}\0", w[3..].join(" ")).into_bytes()),
            "dtr" => simple(self, T::Dtr, vec![]),
            "presuspend" => simple(self, T::Presuspend, vec![]),
            "postsuspend" => simple(self, T::Postsuspend, vec![]),
            "resume" => simple(self, T::Resume, vec![]),
            "flush" => simple(self, T::Flush, vec![]),
            "mark" => simple(self, T::MarkRegion, payload::list(&nums(3)?)),
            "clear" => simple(self, T::ClearRegion, payload::list(&nums(3)?)),
            "set_sync" => {
                let n = nums(3)?;
                simple(self, T::SetRegionSync, payload::pair(n[0], n[1]))
            }
            "region_size" => self.ok(T::GetRegionSize, uuid, luid, vec![]).map(word),
            "sync_count" => self.ok(T::GetSyncCount, uuid, luid, vec![]).map(word),
            "is_clean" => self
                .ok(T::IsClean, uuid, luid, payload::one(nums(3)?[0]))
                .map(word),
            "in_sync" => self
                .ok(T::InSync, uuid, luid, payload::one(nums(3)?[0]))
                .map(word),
            "work" => self.ok(T::GetResyncWork, uuid, luid, vec![]).map(|d| {
                let v = payload::words(&d);
                if v[0] == 1 {
                    format!("1 {}", v[1])
                } else {
                    "0".into()
                }
            }),
            "remote" => self
                .ok(T::IsRemoteRecovering, uuid, luid, payload::one(nums(3)?[0]))
                .map(|d| {
                    payload::words(&d)
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                }),
            "status_info" => self
                .ok(T::StatusInfo, uuid, luid, vec![])
                .map(|d| String::from_utf8_lossy(&d).into_owned()),
            "status_table" => self
                .ok(T::StatusTable, uuid, luid, vec![])
                .map(|d| format!("{:?}", String::from_utf8_lossy(&d))),
            // resync N [TOTAL]: recover up to N regions (0 = no limit); stop at the first "no
            // work", or with TOTAL, once the log's sync count reaches TOTAL (other nodes may hold
            // regions meanwhile). Prints how many this client recovered.
            "resync" => {
                let a = nums(3)?;
                let limit = a.first().copied().unwrap_or(0);
                let total = a.get(1).copied().unwrap_or(0);
                let mut n = 0u64;
                while limit == 0 || n < limit {
                    let v = payload::words(&self.ok(T::GetResyncWork, uuid, luid, vec![])?);
                    if v[0] == 0 {
                        if total == 0
                            || word(self.ok(T::GetSyncCount, uuid, luid, vec![])?)
                                == total.to_string()
                        {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    self.ok(T::SetRegionSync, uuid, luid, payload::pair(v[1], 1))?;
                    self.ok(T::ClearRegion, uuid, luid, payload::list(&[v[1]]))?;
                    n += 1;
                }
                Ok(n.to_string())
            }
            // cycle N R: N × (mark R, clear R, flush), as the kernel does around a write.
            "cycle" => {
                let a = nums(3)?;
                for i in 0..a[0] {
                    let r = a.get(1).copied().unwrap_or(0) + i % 8;
                    self.ok(T::MarkRegion, uuid, luid, payload::list(&[r]))?;
                    self.ok(T::Flush, uuid, luid, vec![])?;
                    self.ok(T::ClearRegion, uuid, luid, payload::list(&[r]))?;
                    self.ok(T::Flush, uuid, luid, vec![])?;
                }
                Ok(a[0].to_string())
            }
            s if s.starts_with("sleep") => {
                let ms: u64 = s
                    .trim_start_matches("sleep")
                    .trim_start_matches('=')
                    .parse()
                    .unwrap_or(100);
                std::thread::sleep(Duration::from_millis(ms));
                Ok("ok".into())
            }
            _ => Err(format!("unknown command {op:?}")),
        }
    }
}

impl Drop for KernelClient {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.own);
    }
}
