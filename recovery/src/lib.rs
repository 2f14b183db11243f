//! Iggy 0.6 data directories: read, judge, repair.
//!
//! Data flows one way: [`layout`] lists the files, [`analyze`] scans them (with
//! [`scan`] and [`index`]), [`verdict`] names what is wrong. The state files the
//! server reads before any segment (`state/log`, `state/info`) and the metadata they
//! record are judged by [`state_check`]. The journal is the only state kept between
//! runs.

mod after_repair;
pub mod analyze;
mod budget;
pub mod busy;
pub mod execute;
pub mod fsops;
pub mod guided;
pub mod index;
mod journal_log;
pub mod layout;
pub mod message;
pub mod metadata;
pub mod mode;
pub mod names;
pub mod offset_reset;
pub mod offsets_ahead;
mod parallel;
mod pieces;
pub mod pipeline;
pub mod plan;
pub mod quarantine;
pub mod read_back;
mod readahead;
pub mod rebuild;
pub mod report;
pub mod restore;
pub mod salvage;
pub mod scan;
pub mod space;
pub mod state_check;
pub mod state_command;
pub mod state_info;
pub mod state_inspect;
pub mod state_log;
pub mod verdict;
pub mod work_names;

#[cfg(test)]
mod test_support;

pub use journal::{ByteRange, PartitionId, RepairAction, RepairId, SegmentKey};
