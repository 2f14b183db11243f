//! Where a damaged partition is cut: the first damage, and what the cut keeps. Both
//! the planner and the per-mode counts of a refusal's advice measure from it, so it
//! lives apart from either.

use crate::analyze::{PartitionAnalysis, SegmentAnalysis};
use crate::scan::StopReason;

/// Where a partition is cut: segment `seg` keeps its first `keep_len` log bytes (none
/// when its log is missing) and every later segment goes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cut {
    pub(super) seg: usize,
    pub(super) keep_len: u64,
    /// Whether the cut loses nothing but what a crash leaves at the end of a partition.
    pub(super) tail_only: bool,
}

/// The first damage of `p`, where every mode that cuts cuts it; `None` when the
/// partition has none.
pub(super) fn find_cut(p: &PartitionAnalysis) -> Option<Cut> {
    let later_hold_data = |i: usize| p.segments.iter().skip(i + 1).any(SegmentAnalysis::has_data);
    for (i, seg) in p.segments.iter().enumerate() {
        let Some(scan) = seg.scan else {
            return Some(Cut {
                seg: i,
                keep_len: 0,
                tail_only: !later_hold_data(i),
            });
        };
        if let Some(prev) = i.checked_sub(1).and_then(|j| p.segments.get(j)) {
            if seg.overlaps(prev) {
                return Some(Cut {
                    seg: i - 1,
                    keep_len: prev.files.log_len.unwrap_or(0),
                    tail_only: !seg.has_data() && !later_hold_data(i),
                });
            }
        }
        if scan.stop != StopReason::EndOfFile {
            return Some(Cut {
                seg: i,
                keep_len: scan.valid_len,
                tail_only: scan.stop.is_tail_only() && !later_hold_data(i),
            });
        }
    }
    None
}

/// Messages the partition keeps when cut at `cut` (every segment's valid prefix up
/// to the cut; the cut segment keeps its valid prefix).
pub(super) fn kept_by_cut(p: &PartitionAnalysis, cut: Option<Cut>) -> u64 {
    p.segments
        .iter()
        .enumerate()
        .map(|(i, s)| match cut {
            Some(c) if i > c.seg => 0,
            _ => s.valid_messages(),
        })
        .sum()
}
