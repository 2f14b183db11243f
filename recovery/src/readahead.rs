//! Starting the reads a journal-guided analysis will make while the folders are
//! still being listed.
//!
//! On a cold cache a guided run waits on the disk: a few trips per partition to list
//! its folders, then the reads of its analysis (an open segment's log after the
//! checkpoint and its index entries there; a sealed segment's last message when its
//! stamps do not vouch for it). Listing every partition first and only then reading
//! made those reads a second wait. As soon as a partition's folder is listed, the
//! kernel is advised (`POSIX_FADV_WILLNEED`) of them, so they run in the background
//! while the other partitions are listed, and the analysis finds them in the page
//! cache. Advice only: nothing is read here, and an error is ignored (the analysis
//! opens the same files and reports what fails).

use crate::guided::{approach, Approach, Look};
use crate::index::ENTRY_LEN;
use crate::layout::{PartitionLayout, SegmentFiles};
use journal::{SegmentKey, SegmentState};
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::Path;

/// At most this much of each range is advised: a long tail is read on by the
/// kernel's own read-ahead once the scan reads it in order, and advice for more
/// than that could be dropped from the cache again before the analysis gets there.
const ADVISE_AT_MOST: u64 = 4 << 20;

/// Advises the kernel of what the guided analysis will read of `p`'s segments.
pub fn advise(p: &PartitionLayout, known: &HashMap<SegmentKey, SegmentState>) {
    for files in &p.segments {
        let Some(state) = known.get(&files.key) else {
            continue;
        };
        for (path, from, to) in will_read(files, state).into_iter().flatten() {
            let Some(len) = NonZeroU64::new(to.saturating_sub(from).min(ADVISE_AT_MOST)) else {
                continue;
            };
            if let Ok(file) = crate::fsops::open_read(path) {
                let _ = rustix::fs::fadvise(&file, from, Some(len), rustix::fs::Advice::WillNeed);
            }
        }
    }
}

/// The byte ranges (file, from, to) of `files` that the guided analysis reads for a
/// segment the journal knows as `state`, when it reads anything.
fn will_read<'a>(
    files: &'a SegmentFiles,
    state: &SegmentState,
) -> [Option<(&'a Path, u64, u64)>; 2] {
    let Some(log_len) = files.log_len else {
        return [None, None];
    };
    match approach(files, Some(state)) {
        Approach::Sealed {
            last: Some((_, at)),
            look: Look::ReadBack,
        } => [Some((&files.log_path, at, log_len)), None],
        Approach::Resume(from) => {
            let entries = from.next_offset.saturating_sub(files.key.start_offset);
            let index_from = entries.saturating_mul(ENTRY_LEN as u64);
            [
                Some((&files.log_path, from.position, log_len)),
                files
                    .index_len
                    .map(|len| (files.index_path.as_path(), index_from, len)),
            ]
        }
        Approach::Sealed { .. } | Approach::Whole => [None, None],
    }
}

#[cfg(test)]
mod tests;
