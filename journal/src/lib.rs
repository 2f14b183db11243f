//! The write-ahead journal of iggy-warden.
//!
//! It records what happened to every segment while iggy-server ran (opened, seal
//! intent, sealed, deleted, checkpoints) and iggy-warden's own repairs (intent, done,
//! failed), so that recovery looks only where a crash could have left damage.
//! The journal is an accelerator, never the truth: every fact it gives is checked
//! against the disk, and an unusable journal means a full scan.

pub mod action;
pub mod key;

pub use action::{RepairAction, RepairId};
pub use key::{ByteRange, PartitionId, SegmentKey};
