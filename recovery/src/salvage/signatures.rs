//! Names the rotation race's signatures in what the resynchronising scan found, so
//! `check` can say what happened, not only where validity ends.

use super::resync::FileScan;
use super::DroppedDuplicate;
use crate::analyze::PartitionAnalysis;
use crate::verdict::{Problem, ProblemKind};
use std::collections::HashSet;
use std::path::Path;

pub struct FileView<'a> {
    pub path: &'a Path,
    pub segment_start: u64,
    pub log: Option<&'a FileScan>,
    /// Index entries as (relative offset, end position).
    pub index: Option<&'a [(u32, u32)]>,
}

pub fn find(
    files: &[FileView<'_>],
    dropped: &[DroppedDuplicate],
    p: &PartitionAnalysis,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let segment = |start| Some(p.id.segment(start));
    for f in files {
        if let Some(log) = f.log {
            misplaced(f, log, &mut out);
            if let Some(hole) = log.hole_followed_by_data().filter(|g| g.zeros) {
                out.push(Problem {
                    kind: ProblemKind::ZeroHole,
                    path: f.path.to_path_buf(),
                    offset: Some(hole.range.start),
                    detail: format!(
                        "{} zero bytes inside the log, followed by valid messages",
                        hole.range.len()
                    ),
                    segment: segment(f.segment_start),
                });
            }
        }
        if let Some(entries) = f.index {
            let log = files
                .iter()
                .find(|l| l.segment_start == f.segment_start)
                .and_then(|l| l.log);
            let real: HashSet<(u32, u32)> = log
                .map(|l| {
                    l.messages
                        .iter()
                        .filter_map(|m| {
                            let rel = m.offset.checked_sub(f.segment_start)?;
                            Some((u32::try_from(rel).ok()?, u32::try_from(m.range.end).ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ghosts = entries.iter().position(|e| !real.contains(e));
            if let Some(first) = ghosts {
                let count = entries.iter().filter(|e| !real.contains(e)).count();
                out.push(Problem {
                    kind: ProblemKind::GhostIndexEntries,
                    path: f.path.to_path_buf(),
                    offset: Some(first as u64 * 16),
                    detail: format!(
                        "{count} of {} index entries describe no valid message of the log",
                        entries.len()
                    ),
                    segment: segment(f.segment_start),
                });
            }
        }
    }
    for d in dropped.iter().filter(|d| !d.identical) {
        out.push(Problem {
            kind: ProblemKind::DuplicateOffset,
            path: p.dir.join(
                Path::new(&d.file)
                    .file_name()
                    .map(Path::new)
                    .unwrap_or(Path::new("")),
            ),
            offset: Some(d.range.start),
            detail: format!(
                "a second valid message with offset {} and different bytes; salvage keeps the \
                 copy the index points to (else the earliest) and quarantines this one",
                d.offset
            ),
            segment: None,
        });
    }
    out
}

/// Valid messages whose offset is not the next one expected in their file: batches
/// persisted into the wrong segment or out of order.
fn misplaced(f: &FileView<'_>, log: &FileScan, out: &mut Vec<Problem>) {
    let mut expected = f.segment_start;
    let mut first = None;
    let mut count = 0u64;
    for m in &log.messages {
        if m.offset != expected {
            count += 1;
            first.get_or_insert((m.range.start, m.offset, expected));
        }
        expected = m.offset.saturating_add(1);
    }
    if let Some((at, found, wanted)) = first {
        out.push(Problem {
            kind: ProblemKind::MisplacedBatch,
            path: f.path.to_path_buf(),
            offset: Some(at),
            detail: format!(
                "valid messages in the wrong file or out of order ({count} batch starts); \
                 first: offset {found} where {wanted} was expected"
            ),
            segment: None,
        });
    }
}
