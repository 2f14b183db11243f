//! Stored consumer offsets past a partition's last message.
//!
//! iggy-server 0.6.0 loads each consumer's and group's stored offset as it is and
//! serves `next` polls from the offset after it. A crash can leave one past the
//! partition's end (the server served and the consumer stored messages that never
//! reached the disk), and so can a cut. New messages are then given the offsets the
//! consumer already stored, and it skips them without an error. The files are the
//! consumers' state, not damage: nothing here changes them, and the directory is
//! still ready to start. `check` and `recover` name each one, with how many of the
//! next messages produced its consumer would not see.

use crate::analyze::{PartitionAnalysis, SegmentAnalysis};
use crate::layout::OffsetKind;
use journal::PartitionId;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// A stored offset at or past the partition's next offset.
#[derive(Clone, Debug, Serialize)]
pub struct OffsetAhead {
    pub partition: PartitionId,
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub path: PathBuf,
    pub kind: OffsetKind,
    /// The offset stored in the file: the last one its consumer has seen.
    pub stored: u64,
    /// The offset the partition's next message will get.
    pub next_offset: u64,
}

impl OffsetAhead {
    /// How many of the next messages produced its consumer would skip.
    pub fn skipped(&self) -> u64 {
        (self.stored.saturating_sub(self.next_offset)).saturating_add(1)
    }
}

impl fmt::Display for OffsetAhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.kind {
            OffsetKind::Consumer => "consumer",
            OffsetKind::Group => "consumer group",
        };
        write!(
            f,
            "{}: {who} offset {} stored, past the end of partition {} (its next message \
             gets offset {}): that {who} will not see the next {} message(s) produced",
            crate::names::escaped(&self.path),
            self.stored,
            self.partition,
            self.next_offset,
            self.skipped()
        )
    }
}

/// The stored offsets of `p` at or past its next offset, as its valid messages
/// leave it. A partition without a valid message is left out: what the server then
/// takes for its next offset depends on more than the segments.
pub fn offsets_ahead(p: &PartitionAnalysis) -> Vec<OffsetAhead> {
    ahead_of_segments(p, p.segments.iter())
}

/// As [`offsets_ahead`], with only `segments` (some of `p`'s own) left in `p`.
pub(crate) fn ahead_of_segments<'a>(
    p: &PartitionAnalysis,
    segments: impl DoubleEndedIterator<Item = &'a SegmentAnalysis>,
) -> Vec<OffsetAhead> {
    let Some(tail) = segments.rev().find(|s| s.valid_messages() > 0) else {
        return Vec::new();
    };
    let next_offset = tail.offset_after();
    p.offset_files
        .iter()
        .filter_map(|f| {
            let stored = f.value.filter(|&v| v >= next_offset)?;
            Some(OffsetAhead {
                partition: p.id,
                path: f.path.clone(),
                kind: f.kind,
                stored,
                next_offset,
            })
        })
        .collect()
}
