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
//!
//! A cut changes no folder's entries either: a partition whose repairs were all
//! cuts is not listed again (its folder and two offsets folders, a dozen system
//! calls); its segment files' lengths are read again, one `stat` each, and the
//! rest is what the analysis listed.

use crate::analyze::Analysis;
use crate::index::IndexState;
use crate::layout::{LayoutError, PartitionLayout};
use crate::parallel::{map_ordered, IO_THREADS};
use crate::plan::PlannedAction;
use journal::{CheckpointState, PartitionId, RepairAction, SegmentKey, SegmentPhase, SegmentState};
use restat::restat_segments;
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

/// The partitions whose every repair cut a segment file's tail.
pub(crate) fn only_cut(actions: &[PlannedAction]) -> BTreeSet<PartitionId> {
    let mut other = BTreeSet::new();
    let mut cut = BTreeSet::new();
    for a in actions {
        let Some(id) = a.partition else { continue };
        match a.action {
            RepairAction::TruncateLog { .. } | RepairAction::TruncateIndex { .. } => {
                cut.insert(id);
            }
            _ => {
                other.insert(id);
            }
        }
    }
    &cut - &other
}

/// The layouts of the `only_cut` partitions as the analysis `before` listed them,
/// their segment files' lengths and stamps read again. A partition where a segment
/// file is no longer what the listing found is left out: list it again.
pub(crate) fn layouts_after_cuts(
    before: &Analysis,
    only_cut: &BTreeSet<PartitionId>,
) -> Result<Vec<PartitionLayout>, LayoutError> {
    let partitions: Vec<_> = (before.partitions.iter())
        .filter(|p| only_cut.contains(&p.id))
        .collect();
    // A stat each, waiting on the disk when its cache is cold: as many threads as
    // a listing.
    let found = map_ordered(&partitions, IO_THREADS, |p| {
        let files: Vec<_> = p.segments.iter().map(|s| &s.files).collect();
        restat_segments(&p.dir, &files)
    })?;
    let layouts = (partitions.into_iter().zip(found))
        .filter_map(|(p, segments)| Some(p.layout_with(segments?)))
        .collect();
    Ok(layouts)
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

mod restat;

#[cfg(test)]
mod tests;
