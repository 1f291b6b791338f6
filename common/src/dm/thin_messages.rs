//! Thin-pool messages and the queue lvm2 keeps of them, with its transaction-id rule
//! (docs/protocol.md §8.2–8.4, lvm2 ≥ 2.02.128 including 2.03): the recorded transaction id goes up
//! by one when the first message enters an empty queue; the messages are posted later (during an
//! origin-only suspend of the pool, see [`super::thin_pool`]) and end with
//! `set_transaction_id N-1 N`. No I/O here.
#![forbid(unsafe_code)]

use std::fmt;

use nix::errno::Errno;

/// Largest thin device id (`DM_THIN_MAX_DEVICE_ID`, 24 bits).
pub const MAX_THIN_DEVICE_ID: u32 = (1 << 24) - 1;

/// A thin device id inside a pool (0 ..= 2^24 - 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThinDevId(u32);

impl ThinDevId {
    pub fn new(id: u64) -> Result<Self, QueueError> {
        u32::try_from(id)
            .ok()
            .filter(|&i| i <= MAX_THIN_DEVICE_ID)
            .map(ThinDevId)
            .ok_or(QueueError::DeviceIdTooLarge(id))
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ThinDevId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One message to a thin-pool target (sent to sector 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinMessage {
    CreateThin(ThinDevId),
    CreateSnap { id: ThinDevId, origin: ThinDevId },
    Delete(ThinDevId),
    SetTransactionId { current: u64, new: u64 },
    ReserveMetadataSnap,
    ReleaseMetadataSnap,
}

impl ThinMessage {
    /// The errno that means "already done" and so counts as success: a replayed create_thin finds
    /// the device (EEXIST), a replayed delete finds it gone (ENODATA).
    pub fn expected_errno(&self) -> Option<Errno> {
        match self {
            ThinMessage::CreateThin(_) => Some(Errno::EEXIST),
            ThinMessage::Delete(_) => Some(Errno::ENODATA),
            _ => None,
        }
    }

    /// Whether the message changes the pool's devices, and so belongs in a transaction.
    pub fn changes_devices(&self) -> bool {
        matches!(
            self,
            ThinMessage::CreateThin(_) | ThinMessage::CreateSnap { .. } | ThinMessage::Delete(_)
        )
    }

    /// The thin device the message creates or deletes.
    pub fn device(&self) -> Option<ThinDevId> {
        match self {
            ThinMessage::CreateThin(id)
            | ThinMessage::CreateSnap { id, .. }
            | ThinMessage::Delete(id) => Some(*id),
            _ => None,
        }
    }
}

/// The exact text the kernel takes.
impl fmt::Display for ThinMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThinMessage::CreateThin(id) => write!(f, "create_thin {id}"),
            ThinMessage::CreateSnap { id, origin } => write!(f, "create_snap {id} {origin}"),
            ThinMessage::Delete(id) => write!(f, "delete {id}"),
            ThinMessage::SetTransactionId { current, new } => {
                write!(f, "set_transaction_id {current} {new}")
            }
            ThinMessage::ReserveMetadataSnap => f.write_str("reserve_metadata_snap"),
            ThinMessage::ReleaseMetadataSnap => f.write_str("release_metadata_snap"),
        }
    }
}

/// A message text that is not one of the six thin-pool messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSyntaxError(pub String);

impl fmt::Display for MessageSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a thin-pool message: {:?}", self.0)
    }
}

impl std::error::Error for MessageSyntaxError {}

/// Reads the kernel's message text back (`create_snap 2 1`); device ids are range-checked.
impl std::str::FromStr for ThinMessage {
    type Err = MessageSyntaxError;
    fn from_str(s: &str) -> Result<Self, MessageSyntaxError> {
        let bad = || MessageSyntaxError(s.to_string());
        let words: Vec<&str> = s.split_ascii_whitespace().collect();
        let num = |w: &str| -> Result<u64, MessageSyntaxError> {
            if w.bytes().all(|b| b.is_ascii_digit()) {
                w.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let dev = |w: &str| ThinDevId::new(num(w)?).map_err(|_| bad());
        Ok(match words.as_slice() {
            ["create_thin", id] => ThinMessage::CreateThin(dev(id)?),
            ["create_snap", id, origin] => ThinMessage::CreateSnap {
                id: dev(id)?,
                origin: dev(origin)?,
            },
            ["delete", id] => ThinMessage::Delete(dev(id)?),
            ["set_transaction_id", cur, new] => ThinMessage::SetTransactionId {
                current: num(cur)?,
                new: num(new)?,
            },
            ["reserve_metadata_snap"] => ThinMessage::ReserveMetadataSnap,
            ["release_metadata_snap"] => ThinMessage::ReleaseMetadataSnap,
            _ => return Err(bad()),
        })
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    DeviceIdTooLarge(u64),
    /// `create_snap` of a device from itself.
    SnapshotOfItself(ThinDevId),
    /// A second message for a device that already has one queued (lvm refuses it too).
    DeviceAlreadyQueued(ThinDevId),
    /// set_transaction_id, reserve/release_metadata_snap are not queued: the queue appends the
    /// first itself, the others do not change devices (send them with `ThinPool::send_now`).
    NotQueueable(ThinMessage),
    /// The recorded transaction id is already u64::MAX.
    TransactionIdExhausted,
    /// Saved messages with a recorded id of 0: there is no committed id below it.
    PendingWithoutTransaction,
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::DeviceIdTooLarge(id) => {
                write!(f, "thin device id {id} is larger than {MAX_THIN_DEVICE_ID}")
            }
            QueueError::SnapshotOfItself(id) => {
                write!(f, "cannot snapshot thin device {id} into itself")
            }
            QueueError::DeviceAlreadyQueued(id) => {
                write!(
                    f,
                    "thin device {id} already has a message queued in this transaction"
                )
            }
            QueueError::NotQueueable(m) => {
                write!(f, "\"{m}\" is not queued; it is sent on its own")
            }
            QueueError::TransactionIdExhausted => {
                write!(f, "transaction id cannot grow past u64::MAX")
            }
            QueueError::PendingWithoutTransaction => {
                write!(
                    f,
                    "pending messages need a recorded transaction id of at least 1"
                )
            }
        }
    }
}

impl std::error::Error for QueueError {}

/// Where the kernel's transaction id stands against a queue's recorded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelState {
    /// The kernel has the recorded id: a pending transaction already went through.
    Committed,
    /// The kernel is one behind: the queued messages may be posted.
    Pending,
}

/// The kernel's transaction id is neither the recorded one nor one below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionIdMismatch {
    pub kernel: u64,
    /// What the kernel should have had (the recorded id, less one with messages pending).
    pub expected: u64,
}

/// The messages waiting for a pool and the transaction id recorded for it (what lvm keeps in the
/// VG metadata): with messages queued it is one more than the kernel's committed id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQueue {
    recorded_transaction_id: u64,
    messages: Vec<ThinMessage>,
}

impl MessageQueue {
    /// An empty queue for a pool whose recorded (and committed) transaction id is `committed`.
    pub fn new(committed: u64) -> Self {
        MessageQueue {
            recorded_transaction_id: committed,
            messages: Vec::new(),
        }
    }

    /// A queue read back from saved metadata: `recorded` already counts the pending messages (as
    /// lvm re-attaches messages on import without bumping the id again).
    pub fn restore(recorded: u64, messages: Vec<ThinMessage>) -> Result<Self, QueueError> {
        if recorded == 0 && !messages.is_empty() {
            return Err(QueueError::PendingWithoutTransaction);
        }
        let mut q = MessageQueue {
            recorded_transaction_id: recorded,
            messages: Vec::new(),
        };
        for m in messages {
            q.check(&m)?;
            q.messages.push(m);
        }
        Ok(q)
    }

    pub fn recorded_transaction_id(&self) -> u64 {
        self.recorded_transaction_id
    }

    pub fn messages(&self) -> &[ThinMessage] {
        &self.messages
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    fn check(&self, m: &ThinMessage) -> Result<(), QueueError> {
        if !m.changes_devices() {
            return Err(QueueError::NotQueueable(*m));
        }
        if let ThinMessage::CreateSnap { id, origin } = m {
            if id == origin {
                return Err(QueueError::SnapshotOfItself(*id));
            }
        }
        if let Some(id) = m.device() {
            if self.messages.iter().any(|q| q.device() == Some(id)) {
                return Err(QueueError::DeviceAlreadyQueued(id));
            }
        }
        Ok(())
    }

    /// Queues a message. The first one into an empty queue raises the recorded transaction id by
    /// one; later ones join the same transaction.
    pub fn push(&mut self, m: ThinMessage) -> Result<(), QueueError> {
        self.check(&m)?;
        if self.messages.is_empty() {
            self.recorded_transaction_id = self
                .recorded_transaction_id
                .checked_add(1)
                .ok_or(QueueError::TransactionIdExhausted)?;
        }
        self.messages.push(m);
        Ok(())
    }

    /// The messages to post, in order, ending with `set_transaction_id N-1 N`. Empty if nothing
    /// is queued.
    pub fn plan(&self) -> Vec<ThinMessage> {
        if self.messages.is_empty() {
            return Vec::new();
        }
        let new = self.recorded_transaction_id;
        let mut plan = self.messages.clone();
        plan.push(ThinMessage::SetTransactionId {
            current: new - 1,
            new,
        });
        plan
    }

    /// The kernel id a pool must have for this queue to be posted (`N-1` with messages pending).
    pub fn expected_kernel_transaction_id(&self) -> u64 {
        self.recorded_transaction_id - u64::from(!self.messages.is_empty())
    }

    /// lvm2's check of a live pool (docs/protocol.md §8.5): the kernel must have the recorded id
    /// (committed) or one less (pending); anything else is a stale or foreign record.
    pub fn kernel_state(&self, kernel: u64) -> Result<KernelState, TransactionIdMismatch> {
        if kernel == self.recorded_transaction_id {
            Ok(KernelState::Committed)
        } else if kernel.checked_add(1) == Some(self.recorded_transaction_id) {
            Ok(KernelState::Pending)
        } else {
            Err(TransactionIdMismatch {
                kernel,
                expected: self.expected_kernel_transaction_id(),
            })
        }
    }

    /// The kernel committed the transaction: forget the messages, keep the id.
    pub fn mark_committed(&mut self) {
        self.messages.clear();
    }

    /// Give up the pending transaction: drop the messages and take the id back down.
    pub fn abandon(&mut self) {
        if !self.messages.is_empty() {
            self.messages.clear();
            self.recorded_transaction_id -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> ThinDevId {
        ThinDevId::new(n).unwrap()
    }

    #[test]
    fn message_texts_are_the_kernels() {
        assert_eq!(ThinMessage::CreateThin(id(0)).to_string(), "create_thin 0");
        assert_eq!(
            ThinMessage::CreateSnap {
                id: id(1),
                origin: id(0)
            }
            .to_string(),
            "create_snap 1 0"
        );
        assert_eq!(
            ThinMessage::Delete(id(16777215)).to_string(),
            "delete 16777215"
        );
        assert_eq!(
            ThinMessage::SetTransactionId { current: 1, new: 2 }.to_string(),
            "set_transaction_id 1 2"
        );
        assert_eq!(
            ThinMessage::ReserveMetadataSnap.to_string(),
            "reserve_metadata_snap"
        );
        assert_eq!(
            ThinMessage::ReleaseMetadataSnap.to_string(),
            "release_metadata_snap"
        );
        assert_eq!(
            ThinDevId::new(1 << 24),
            Err(QueueError::DeviceIdTooLarge(1 << 24))
        );
        assert_eq!(
            ThinMessage::CreateThin(id(3)).expected_errno(),
            Some(Errno::EEXIST)
        );
        assert_eq!(
            ThinMessage::Delete(id(3)).expected_errno(),
            Some(Errno::ENODATA)
        );
        assert_eq!(
            ThinMessage::CreateSnap {
                id: id(1),
                origin: id(0)
            }
            .expected_errno(),
            None
        );
    }

    #[test]
    fn message_texts_parse_back() {
        for m in [
            ThinMessage::CreateThin(id(0)),
            ThinMessage::CreateSnap {
                id: id(2),
                origin: id(1),
            },
            ThinMessage::Delete(id(MAX_THIN_DEVICE_ID.into())),
            ThinMessage::SetTransactionId {
                current: u64::MAX - 1,
                new: u64::MAX,
            },
            ThinMessage::ReserveMetadataSnap,
            ThinMessage::ReleaseMetadataSnap,
        ] {
            assert_eq!(m.to_string().parse::<ThinMessage>(), Ok(m));
        }
        for bad in [
            "",
            "create_thin",
            "create_thin -1",
            "create_thin 16777216",
            "delete 1 2",
            "create_snap 1",
            "frobnicate 1",
        ] {
            assert!(bad.parse::<ThinMessage>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_id_goes_up_once_when_the_first_message_is_queued() {
        let mut q = MessageQueue::new(4);
        assert!(q.plan().is_empty());
        assert_eq!(q.expected_kernel_transaction_id(), 4);
        q.push(ThinMessage::CreateThin(id(7))).unwrap();
        assert_eq!(q.recorded_transaction_id(), 5);
        q.push(ThinMessage::CreateSnap {
            id: id(8),
            origin: id(7),
        })
        .unwrap();
        q.push(ThinMessage::Delete(id(2))).unwrap();
        assert_eq!(q.recorded_transaction_id(), 5);
        assert_eq!(q.expected_kernel_transaction_id(), 4);
        let texts: Vec<String> = q.plan().iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                "create_thin 7",
                "create_snap 8 7",
                "delete 2",
                "set_transaction_id 4 5"
            ]
        );
        q.mark_committed();
        assert!(q.is_empty());
        assert_eq!(q.recorded_transaction_id(), 5);
        q.push(ThinMessage::Delete(id(8))).unwrap();
        assert_eq!(q.recorded_transaction_id(), 6);
        q.abandon();
        assert_eq!(q.recorded_transaction_id(), 5);
        q.abandon();
        assert_eq!(q.recorded_transaction_id(), 5);
    }

    #[test]
    fn kernel_ids_are_checked_against_the_record() {
        let mut q = MessageQueue::new(2);
        q.push(ThinMessage::CreateThin(id(5))).unwrap();
        assert_eq!(q.kernel_state(2), Ok(KernelState::Pending));
        assert_eq!(q.kernel_state(3), Ok(KernelState::Committed));
        // A caller whose record says 7 (so 8 with the message) meets a pool at 2: stale.
        let mut stale = MessageQueue::new(7);
        stale.push(ThinMessage::CreateThin(id(5))).unwrap();
        assert_eq!(
            stale.kernel_state(2),
            Err(TransactionIdMismatch {
                kernel: 2,
                expected: 7
            })
        );
        assert_eq!(
            stale.kernel_state(9),
            Err(TransactionIdMismatch {
                kernel: 9,
                expected: 7
            })
        );
        assert_eq!(stale.recorded_transaction_id(), 8);
        // Nothing queued: the kernel may equal the record, or be one behind (an unfinished
        // transaction, which lvm lets activation through with).
        let idle = MessageQueue::new(4);
        assert_eq!(idle.kernel_state(4), Ok(KernelState::Committed));
        assert_eq!(idle.kernel_state(3), Ok(KernelState::Pending));
        assert_eq!(
            idle.kernel_state(u64::MAX),
            Err(TransactionIdMismatch {
                kernel: u64::MAX,
                expected: 4
            })
        );
    }

    #[test]
    fn refused_messages_leave_the_queue_alone() {
        let mut q = MessageQueue::new(0);
        let before = q.clone();
        assert_eq!(
            q.push(ThinMessage::CreateSnap {
                id: id(1),
                origin: id(1)
            }),
            Err(QueueError::SnapshotOfItself(id(1)))
        );
        let stid = ThinMessage::SetTransactionId { current: 0, new: 1 };
        assert_eq!(q.push(stid), Err(QueueError::NotQueueable(stid)));
        assert_eq!(
            q.push(ThinMessage::ReserveMetadataSnap),
            Err(QueueError::NotQueueable(ThinMessage::ReserveMetadataSnap))
        );
        assert_eq!(q, before);
        q.push(ThinMessage::CreateThin(id(1))).unwrap();
        assert_eq!(
            q.push(ThinMessage::Delete(id(1))),
            Err(QueueError::DeviceAlreadyQueued(id(1)))
        );
        assert_eq!(q.recorded_transaction_id(), 1);
        let mut full = MessageQueue::new(u64::MAX);
        assert_eq!(
            full.push(ThinMessage::CreateThin(id(1))),
            Err(QueueError::TransactionIdExhausted)
        );
        assert!(full.is_empty());
    }

    #[test]
    fn restored_queues_keep_their_recorded_id() {
        let q = MessageQueue::restore(9, vec![ThinMessage::CreateThin(id(3))]).unwrap();
        assert_eq!(q.recorded_transaction_id(), 9);
        assert_eq!(
            q.plan().last(),
            Some(&ThinMessage::SetTransactionId { current: 8, new: 9 })
        );
        assert!(MessageQueue::restore(
            9,
            vec![
                ThinMessage::CreateThin(id(3)),
                ThinMessage::CreateThin(id(3))
            ]
        )
        .is_err());
        assert_eq!(
            MessageQueue::restore(0, vec![ThinMessage::CreateThin(id(3))]),
            Err(QueueError::PendingWithoutTransaction)
        );
    }
}
