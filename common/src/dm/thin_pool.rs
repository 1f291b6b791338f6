//! Posting queued messages to a live thin pool, the way lvm2 ≥ 2.02.128 does (docs/protocol.md
//! §8.5): during an *origin-only suspend* of the pool. With messages queued, that "suspend"
//! validates the kernel's transaction id, posts the messages and `set_transaction_id N-1 N`, and
//! leaves the pool and its data and metadata devices running; only the thin devices being
//! snapshotted (the origins) are really suspended, around it. With nothing queued it suspends the
//! pool node alone.
#![forbid(unsafe_code)]

use std::fmt;

use nix::errno::Errno;

use super::control::{DeviceInfo, DmControl, DmError, SuspendFlags};
use super::thin_messages::{
    KernelState, MessageQueue, QueueError, ThinMessage, TransactionIdMismatch,
};
use super::thin_status::{PoolMode, StatusError, ThinPoolStatus, ThinPoolUsage};
use super::types::{DevNum, DeviceRef, Sectors};

/// Why a pool operation failed. Every variant names the pool; the queue is untouched by all of
/// them, so the caller may retry (posting is idempotent) or [`MessageQueue::abandon`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThinError {
    Dm(DmError),
    /// The device's live table is not a single thin-pool target.
    NotAThinPool {
        pool: String,
        found: String,
    },
    BadStatus {
        pool: String,
        error: StatusError,
    },
    /// The pool is failed, read-only or needs a check: messages would fail or make it worse.
    PoolUnusable {
        pool: String,
        state: &'static str,
    },
    /// The kernel's transaction id is neither the recorded one nor one below it: the caller's
    /// record is stale (or the pool was changed behind its back).
    TransactionMismatch {
        pool: String,
        kernel: u64,
        expected: u64,
    },
    /// The kernel refused a message.
    MessageFailed {
        pool: String,
        message: ThinMessage,
        errno: Errno,
    },
    /// After set_transaction_id the pool reports another id.
    TransactionNotApplied {
        pool: String,
        kernel: u64,
        expected: u64,
    },
    Queue(QueueError),
}

impl fmt::Display for ThinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThinError::Dm(e) => write!(f, "{e}"),
            ThinError::NotAThinPool { pool, found } => {
                write!(f, "{pool} is not a thin pool (its table holds {found})")
            }
            ThinError::BadStatus { pool, error } => write!(f, "{pool}: {error}"),
            ThinError::PoolUnusable { pool, state } => {
                write!(f, "thin pool {pool} is {state}: refusing to send messages")
            }
            ThinError::TransactionMismatch {
                pool,
                kernel,
                expected,
            } => {
                write!(
                    f,
                    "thin pool {pool} transaction_id is {kernel}, while expected {expected}"
                )
            }
            ThinError::MessageFailed {
                pool,
                message,
                errno,
            } => {
                write!(
                    f,
                    "thin pool {pool} refused \"{message}\": {}",
                    errno.desc()
                )
            }
            ThinError::TransactionNotApplied {
                pool,
                kernel,
                expected,
            } => write!(
                f,
                "thin pool {pool} transaction_id is {kernel} and does not match expected {expected}"
            ),
            ThinError::Queue(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ThinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ThinError::Dm(e) => Some(e),
            ThinError::BadStatus { error, .. } => Some(error),
            ThinError::MessageFailed { errno, .. } => Some(errno),
            ThinError::Queue(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DmError> for ThinError {
    fn from(e: DmError) -> Self {
        ThinError::Dm(e)
    }
}

impl From<QueueError> for ThinError {
    fn from(e: QueueError) -> Self {
        ThinError::Queue(e)
    }
}

/// What an origin-only suspend of the pool did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginOnlySuspend {
    /// Messages were posted; the pool was not suspended. Ids before and after.
    MessagesPosted {
        from: u64,
        to: u64,
        posted: Vec<ThinMessage>,
    },
    /// The kernel already had the recorded id (an earlier attempt got through): nothing was sent,
    /// the pool was not suspended, and the queue is now empty.
    AlreadyCommitted { transaction_id: u64 },
    /// Nothing was queued: the pool node itself is suspended (resume it).
    PoolSuspended,
}

/// A thin pool addressed through a control node.
#[derive(Debug)]
pub struct ThinPool<'a> {
    control: &'a DmControl,
    dev: DeviceRef,
}

impl<'a> ThinPool<'a> {
    pub fn new(control: &'a DmControl, dev: DeviceRef) -> Self {
        ThinPool { control, dev }
    }

    pub fn device(&self) -> &DeviceRef {
        &self.dev
    }

    fn name(&self) -> String {
        self.dev.to_string()
    }

    /// The pool's status, read without flushing (as libdm does before messaging).
    pub fn status(&self) -> Result<ThinPoolStatus, ThinError> {
        let (_, lines) = self.control.status(&self.dev, true)?;
        let line = match lines.as_slice() {
            [l] if l.target_type.as_str() == "thin-pool" => l,
            other => {
                let found = other
                    .iter()
                    .map(|l| l.target_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ThinError::NotAThinPool {
                    pool: self.name(),
                    found: if found.is_empty() {
                        "no target".into()
                    } else {
                        found
                    },
                });
            }
        };
        ThinPoolStatus::parse(&line.params).map_err(|error| ThinError::BadStatus {
            pool: self.name(),
            error,
        })
    }

    /// The status of a pool that can take messages.
    pub fn writable_usage(&self) -> Result<ThinPoolUsage, ThinError> {
        let unusable = |state| ThinError::PoolUnusable {
            pool: self.name(),
            state,
        };
        match self.status()? {
            ThinPoolStatus::Fail => Err(unusable("failed")),
            ThinPoolStatus::Error => Err(unusable("unable to report its status")),
            ThinPoolStatus::Working(u) if u.needs_check => Err(unusable("flagged needs_check")),
            ThinPoolStatus::Working(u) if u.mode == PoolMode::ReadOnly => {
                Err(unusable("read-only"))
            }
            ThinPoolStatus::Working(u) => Ok(u),
        }
    }

    /// The metadata and data devices from the pool's table.
    pub fn metadata_and_data(&self) -> Result<(DevNum, DevNum), ThinError> {
        let (_, lines) = self.control.table(&self.dev)?;
        let mut words = lines
            .first()
            .map(|l| l.params.split_ascii_whitespace())
            .into_iter()
            .flatten();
        match (
            words.next().and_then(|w| w.parse().ok()),
            words.next().and_then(|w| w.parse().ok()),
        ) {
            (Some(meta), Some(data)) => Ok((meta, data)),
            _ => Err(ThinError::NotAThinPool {
                pool: self.name(),
                found: "an unreadable thin-pool table".into(),
            }),
        }
    }

    /// Sends one message now, outside any transaction. The message's expected errno (EEXIST for
    /// create_thin, ENODATA for delete) counts as success.
    pub fn send_now(&self, message: ThinMessage) -> Result<(), ThinError> {
        match self
            .control
            .message(&self.dev, Sectors(0), &message.to_string())
        {
            Ok(_) => Ok(()),
            Err(DmError::Ioctl { errno, .. }) if Some(errno) == message.expected_errno() => Ok(()),
            Err(DmError::Ioctl { errno, .. }) => Err(ThinError::MessageFailed {
                pool: self.name(),
                message,
                errno,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The origin-only suspend of the pool (see the module doc). On success the queue is empty
    /// and its recorded id is the kernel's; on any error the queue is as it was.
    pub fn suspend_origin_only(
        &self,
        queue: &mut MessageQueue,
        how: SuspendFlags,
    ) -> Result<OriginOnlySuspend, ThinError> {
        let usage = self.writable_usage()?;
        let committed = match queue.kernel_state(usage.transaction_id) {
            Ok(state) => state == KernelState::Committed,
            Err(TransactionIdMismatch { kernel, expected }) => {
                return Err(ThinError::TransactionMismatch {
                    pool: self.name(),
                    kernel,
                    expected,
                })
            }
        };
        if queue.is_empty() {
            self.control.suspend(&self.dev, how)?;
            return Ok(OriginOnlySuspend::PoolSuspended);
        }
        if committed {
            queue.mark_committed();
            return Ok(OriginOnlySuspend::AlreadyCommitted {
                transaction_id: usage.transaction_id,
            });
        }
        let plan = queue.plan();
        for message in &plan {
            self.send_now(*message)?;
            if let ThinMessage::SetTransactionId { new, .. } = *message {
                let now = self.writable_usage()?.transaction_id;
                if now != new {
                    return Err(ThinError::TransactionNotApplied {
                        pool: self.name(),
                        kernel: now,
                        expected: new,
                    });
                }
            }
        }
        queue.mark_committed();
        Ok(OriginOnlySuspend::MessagesPosted {
            from: usage.transaction_id,
            to: queue.recorded_transaction_id(),
            posted: plan,
        })
    }

    /// lvm's whole update of a pool: suspend the thin `origins` (devices being snapshotted; a real
    /// suspend with flush and filesystem freeze), origin-only suspend the pool (posting the queue),
    /// call `while_suspended`, then resume what was suspended. Resumes even when posting failed.
    pub fn commit(
        &self,
        queue: &mut MessageQueue,
        origins: &[DeviceRef],
        while_suspended: &mut dyn FnMut(),
    ) -> Result<OriginOnlySuspend, ThinError> {
        let mut suspended: Vec<&DeviceRef> = Vec::new();
        let mut result = Ok(OriginOnlySuspend::PoolSuspended);
        for origin in origins {
            match self.control.suspend(origin, SuspendFlags::default()) {
                Ok(_) => suspended.push(origin),
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        if result.is_ok() {
            result = self.suspend_origin_only(
                queue,
                SuspendFlags {
                    noflush: true,
                    skip_lockfs: true,
                },
            );
            if result.is_ok() {
                while_suspended();
            }
        }
        if let Ok(OriginOnlySuspend::PoolSuspended) = result {
            if let Err(e) = self.control.resume(&self.dev) {
                result = Err(e.into());
            }
        }
        for origin in suspended.into_iter().rev() {
            if let Err(e) = self.control.resume(origin) {
                if result.is_ok() {
                    result = Err(e.into());
                }
            }
        }
        result
    }

    /// `info` of the pool and of its metadata and data devices (when those are dm devices).
    pub fn stack_info(&self) -> Result<Vec<(DevNum, Option<DeviceInfo>)>, ThinError> {
        let pool = self.control.info(&self.dev)?;
        let (meta, data) = self.metadata_and_data()?;
        let mut out = Vec::new();
        if let Some(p) = pool {
            out.push((p.dev, Some(p)));
        }
        for d in [meta, data] {
            out.push((d, self.control.info(&DeviceRef::Dev(d)).ok().flatten()));
        }
        Ok(out)
    }
}
