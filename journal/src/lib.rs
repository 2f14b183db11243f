//! The write-ahead journal of iggy-warden.
//!
//! It records what happened to every segment while iggy-server ran (opened, seal
//! intent, sealed, deleted, checkpoints) and iggy-warden's own repairs (intent, done,
//! failed), so that recovery looks only where a crash could have left damage.
//! The journal is an accelerator, never the truth: every fact it gives is checked
//! against the disk, and an unusable journal ([`JournalError::is_unusable`]) means a
//! full scan.
//!
//! Segment file names are parsed and built in one place, [`segment_name`].
//!
//! Modules, from the bytes up: [`envelope`] (versioned, checksummed encoding),
//! [`record`] (what is recorded), [`state`] (a segment's state folded from its
//! records), `trees.rs` (the sled trees' keys and values, a leaf), [`store`] (the
//! sled-backed [`Journal`]; its write path with group commit is in `append.rs` and
//! `group.rs`, a round's records in one value in `block.rs`), [`verify`],
//! [`compact`] and [`listing`] (a hint of what the offsets folders hold). No module
//! depends on one that depends on it.

pub mod action;
mod append;
mod block;
pub mod compact;
pub mod envelope;
pub mod error;
pub mod folder;
mod group;
pub mod key;
pub mod listing;
mod marker;
mod pending;
pub mod record;
pub mod segment_name;
pub mod stamp;
pub mod state;
pub mod store;
mod trees;
pub mod verify;

pub use action::{Cut, RelayOriginal, RelayPiece, RelaySegment, RepairAction, RepairId};
pub use compact::CompactReport;
pub use error::JournalError;
pub use key::{ByteRange, ParseSegmentKeyError, PartitionId, SegmentKey};
pub use listing::OffsetsListing;
pub use record::{Entry, Record};
pub use segment_name::SegmentFile;
pub use stamp::FileStamp;
pub use state::{CheckpointState, SegmentPhase, SegmentState};
pub use store::{dir_size, Journal, JournalStats, PendingRepair, Records, StateLogMark};
pub use verify::{JournalProblem, JournalProblemKind, VerifyReport};
