//! Device-mapper: the ioctl layer and the thin-pool helpers (docs/protocol.md §8).
//!
//! - [`types`]: checked names, uuids, target types, sector counts, device numbers, table lines.
//! - [`ioctl`]: the `struct dm_ioctl` wire format, buffer growth on `DM_BUFFER_FULL`, and the one
//!   `unsafe` call.
//! - [`control`]: [`DmControl`], the operations on `/dev/mapper/control` (version, list, create,
//!   load, suspend, resume, remove, info, status, table, message).
//! - [`thin_status`]: I/O-free parsers of `thin-pool` and `thin` status lines.
//! - [`thin_messages`]: thin-pool messages and lvm2's queue with its transaction-id rule (I/O-free).
//! - [`thin_pool`]: posting a queue to a live pool during an origin-only suspend.
//!
//! No global state and no locks: a [`DmControl`] is a file descriptor; the kernel serialises.

pub mod control;
// The unsafe fence: the only module here allowed unsafe code (the DM ioctl).
#[allow(unsafe_code)]
pub mod ioctl;
pub mod thin_messages;
pub mod thin_pool;
pub mod thin_status;
pub mod types;

pub use control::{DeviceInfo, DmControl, DmError, SuspendFlags, CONTROL_PATH};
pub use thin_messages::{
    MessageQueue, MessageSyntaxError, QueueError, ThinDevId, ThinMessage, MAX_THIN_DEVICE_ID,
};
pub use thin_pool::{OriginOnlySuspend, ThinError, ThinPool};
pub use thin_status::{
    DiscardMode, NoSpacePolicy, PoolMode, StatusError, ThinPoolStatus, ThinPoolUsage, ThinStatus,
};
pub use types::{
    DevNum, DeviceRef, DmName, DmUuid, Sectors, TableLineError, TargetLine, TargetType, ValueError,
};
