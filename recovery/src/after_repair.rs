//! Where the check after a repair may resume instead of reading a segment again.
//!
//! The executor changes a segment file in only two ways: it cuts the file's tail, or
//! it replaces or moves the whole file. A prefix the analysis just verified and that
//! no action wrote is still what was verified: the files are ours alone while the
//! repair runs (`busy`), as they are for a guided run trusting the sidecar's
//! checkpoints. So in a partition whose repairs were only cuts (and created
//! folders), each segment whose messages and index entries were verified is
//! re-read from the end of its valid messages, as from a checkpoint: the check still
//! proves that nothing follows the kept messages in the log and that the index holds
//! exactly one correct entry each, at the cost of two small reads, not of hashing
//! the whole partition a second time. Any other repair (a rebuilt index, a file
//! moved out, a re-lay) has its partition read in full.

use crate::analyze::Analysis;
use crate::index::IndexState;
use crate::plan::PlannedAction;
use journal::{CheckpointState, PartitionId, RepairAction, SegmentKey, SegmentPhase, SegmentState};
use std::collections::{BTreeSet, HashMap};

/// The partitions `actions` change other than by cutting tails, creating folders or
/// resetting a consumer offset (no segment file).
pub(crate) fn rewritten(actions: &[PlannedAction]) -> BTreeSet<PartitionId> {
    actions
        .iter()
        .filter(|a| {
            !matches!(
                a.action,
                RepairAction::TruncateLog { .. }
                    | RepairAction::TruncateIndex { .. }
                    | RepairAction::CreateDir { .. }
                    | RepairAction::ResetConsumerOffset { .. }
            )
        })
        .filter_map(|a| a.partition)
        .collect()
}

/// For the segments of `touched` partitions outside `rewritten`, a checkpoint at the
/// end of the valid messages `before` found, where every one of them had its correct
/// index entry; for the guided analysis that checks the repaired partitions.
pub(crate) fn resume_points(
    before: &Analysis,
    touched: &BTreeSet<PartitionId>,
    rewritten: &BTreeSet<PartitionId>,
) -> HashMap<SegmentKey, SegmentState> {
    before
        .partitions
        .iter()
        .filter(|p| touched.contains(&p.id) && !rewritten.contains(&p.id))
        .flat_map(|p| &p.segments)
        .filter(|s| {
            // Entries past the messages are cut; any other index fault was not
            // verified up to the messages' end.
            matches!(s.index, IndexState::Consistent | IndexState::Long { .. })
        })
        .filter_map(|s| {
            let scan = s.scan?;
            let checkpoint = CheckpointState {
                seq: 0,
                valid_len: scan.valid_len,
                next_offset: scan.next_offset,
            };
            let state = SegmentState {
                phase: SegmentPhase::Opened,
                last_seq: 0,
                checkpoint: Some(checkpoint),
            };
            Some((s.key(), state))
        })
        .collect()
}

#[cfg(test)]
mod tests;
