//! Names the rotation race's signatures in what the resynchronising scan found, so
//! `check` can say what happened, not only where validity ends.

use super::resync::{DroppedDuplicate, FileScan};
use crate::analyze::PartitionAnalysis;
use crate::verdict::{Problem, ProblemKind};
use std::path::Path;

pub struct FileView<'a> {
    pub path: &'a Path,
    pub segment_start: u64,
    pub log: Option<&'a FileScan>,
    /// For an index: its entries that describe no valid message of the log.
    pub index: Option<Ghosts>,
}

/// Index entries that describe no valid message of their segment's log, counted as
/// the index is read (see `read_index`): the entries themselves are not kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ghosts {
    /// Entries in the index.
    pub entries: u64,
    /// Entries that describe no valid message.
    pub count: u64,
    /// The number of the first such entry.
    pub first: Option<u64>,
}

/// Index entries as (relative offset, end position), sorted: built once, then only
/// looked up. A sorted vector rather than a hash set: hashing each pair cost more than
/// the rest of the salvage view, and the pairs come from disk, so a set keyed by them
/// would need a hasher that resists crafted collisions, which costs more still.
/// A log and its index list their entries in order, so sorting them is one pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntrySet(Vec<(u32, u32)>);

impl EntrySet {
    /// Where `entry` sits in the set (0 for the smallest), looked for at `hint`
    /// first: lookups made in file order mostly find each entry right after the last.
    pub fn position(&self, entry: &(u32, u32), hint: usize) -> Option<usize> {
        if self.0.get(hint) == Some(entry) {
            return Some(hint);
        }
        self.0.binary_search(entry).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The entries whose position `keep` marks.
    pub fn subset(&self, keep: &[bool]) -> EntrySet {
        let kept = self.0.iter().zip(keep).filter(|(_, k)| **k);
        EntrySet(kept.map(|(e, _)| *e).collect())
    }
}

impl FromIterator<(u32, u32)> for EntrySet {
    fn from_iter<I: IntoIterator<Item = (u32, u32)>>(iter: I) -> Self {
        let mut entries: Vec<_> = iter.into_iter().collect();
        entries.sort_unstable();
        entries.dedup();
        Self(entries)
    }
}

/// The index entries (relative offset, end position) the valid messages of `log`
/// have, in a segment starting at `segment_start`.
pub fn entries_of(log: Option<&FileScan>, segment_start: u64) -> EntrySet {
    log.map(|l| {
        l.messages
            .iter()
            .filter_map(|m| {
                let rel = m.offset.checked_sub(segment_start)?;
                Some((u32::try_from(rel).ok()?, u32::try_from(m.range.end).ok()?))
            })
            .collect()
    })
    .unwrap_or_default()
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
        if let Some(ghosts) = f.index {
            if let Some(first) = ghosts.first {
                out.push(Problem {
                    kind: ProblemKind::GhostIndexEntries,
                    path: f.path.to_path_buf(),
                    offset: Some(first.saturating_mul(16)),
                    detail: format!(
                        "{} of {} index entries describe no valid message of the log",
                        ghosts.count, ghosts.entries
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

#[cfg(test)]
mod tests {
    use super::EntrySet;

    #[test]
    fn an_entry_set_finds_entries_whatever_the_hint_and_keeps_each_once() {
        let set: EntrySet = [(3, 90), (1, 30), (2, 60), (1, 30), (0, 0)]
            .into_iter()
            .collect();
        assert_eq!(set.len(), 4, "the repeated entry is kept once");
        for hint in [0, 1, 2, 3, 4, usize::MAX] {
            assert_eq!(set.position(&(2, 60), hint), Some(2), "hint {hint}");
            assert_eq!(set.position(&(2, 61), hint), None, "hint {hint}");
        }
        let pointed = set.subset(&[false, true, false, true]);
        assert_eq!(pointed.position(&(1, 30), 0), Some(0));
        assert_eq!(pointed.position(&(3, 90), 0), Some(1));
        assert_eq!(pointed.position(&(2, 60), 0), None);
    }
}
