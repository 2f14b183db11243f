//! Test harness of iggy-warden: an independent implementation of the Iggy 0.6 on-disk
//! format that writes data directories of any shape, injects crash and disk faults into
//! them (or into copies of the real iggy-server 0.6.0 fixtures), and compares
//! directories byte for byte. It shares no code with the product crates.
//!
//! - [`format`]: message and index entry bytes, a minimal log reader;
//! - [`layout`]: partition folders, segment file names, reading a partition back;
//! - [`salvage`]: every valid message anywhere in a partition's logs, resynchronising
//!   past bad bytes (the yardstick for what a salvage must keep);
//! - [`state_log`]: `state/log` entries as 0.6.0 writes them;
//! - [`writer`]: data directories laid out as iggy-server 0.6.0 does;
//! - [`faults`]: one fault per damage the format notes describe;
//! - [`fixtures`]: the committed real fixtures and writable copies of them;
//! - [`commands`]: `inject-fault` and `valid-messages`, the binaries under `src/bin/`;
//! - [`cli`]: running a built binary (the test crate names it) and measuring it;
//! - [`snapshot`]: byte-exact directory snapshots, their diffs, a partition's messages.

pub mod cli;
pub mod commands;
pub mod faults;
pub mod fixtures;
pub mod format;
pub mod layout;
pub mod salvage;
pub mod snapshot;
pub mod state_log;
pub mod writer;

pub use cli::{measured, Run};
pub use faults::{
    all_faults, apply, apply_state, apply_to_first, fault_named, race_faults, state_faults, Fault,
    FaultReport, RaceFault, StateFault, StateFaultReport, Survivors,
};
pub use fixtures::{copy_dir, fixture, fixture_copy, fixtures_dir, FixtureCopy};
pub use format::{encode_message, index_entry, Message, SegmentAppender};
pub use salvage::{valid_messages, FoundMessage, PartitionMessages};
pub use snapshot::{assert_same, partition_messages, snapshot, Snapshot};
pub use writer::{BuiltDir, DataDirBuilder, PartitionSpec};
