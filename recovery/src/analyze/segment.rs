//! One segment's analysis: its log scanned from its start or from a checkpoint, its
//! index verified in step with it. A leaf of the analysis: the drivers that run it
//! over a directory (`analyze`, `pieces`) build on it, and it on neither.

use crate::index::{IndexState, IndexVerifier};
use crate::layout::SegmentFiles;
use crate::scan::{
    scan_log_with, EachMessage, IgnoreMessages, ScanBuffer, ScanOutcome, ScanStart, Scanned,
    Visitor,
};
use journal::SegmentKey;
use serde::Serialize;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Read size of a segment's scan: small enough that what was read is still in the
/// core's cache when it is hashed. A read-ahead thread per scan, reading 1 MiB chunks
/// while the scan hashed, made analyses slower, page-cached or cold (the kernel reads
/// ahead of a sequential reader anyway): see the README's performance table.
const SCAN_CHUNK: usize = 128 << 10;

thread_local! {
    /// Each scanning thread's buffer, lent to every scan it runs: a small segment
    /// then costs no allocation and no zeroing of a fresh buffer.
    static SCRATCH: std::cell::RefCell<ScanBuffer> = std::cell::RefCell::new(ScanBuffer::new(SCAN_CHUNK));
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {cause}", crate::names::escaped(.path))]
pub struct AnalyzeError {
    pub path: PathBuf,
    pub cause: io::Error,
}

/// What one segment holds.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentAnalysis {
    pub files: SegmentFiles,
    /// `None` when the `.log` is missing.
    pub scan: Option<ScanOutcome>,
    /// Meaningful only when the `.log` exists.
    pub index: IndexState,
}

impl SegmentAnalysis {
    pub fn key(&self) -> SegmentKey {
        self.files.key
    }

    /// Messages in the valid prefix of the log.
    pub fn valid_messages(&self) -> u64 {
        self.scan.map_or(0, |s| {
            s.start.next_offset.saturating_sub(self.key().start_offset) + s.messages
        })
    }

    /// The first offset after this segment's valid messages.
    pub fn offset_after(&self) -> u64 {
        self.key()
            .start_offset
            .saturating_add(self.valid_messages())
    }

    /// The offset-gap rule, for `check` and the planner alike: whether this segment
    /// starts before `prev`'s valid messages end. 0.6.0 serves a gap forward between
    /// whole segments (measured: a poll inside the gap returns the next message),
    /// which is what salvage leaves where offsets were never written; an overlap it
    /// does not.
    pub fn overlaps(&self, prev: &SegmentAnalysis) -> bool {
        self.key().start_offset < prev.offset_after()
    }

    /// Both files present, zero bytes each.
    pub fn is_empty_pair(&self) -> bool {
        self.files.log_len == Some(0) && self.files.index_len == Some(0)
    }

    pub fn has_data(&self) -> bool {
        self.files.log_len.unwrap_or(0) > 0
    }
}

/// Scans one segment from `start` (its beginning, or a checkpoint) and verifies the
/// index entries of the messages it finds.
pub fn analyze_segment(
    files: &SegmentFiles,
    start: ScanStart,
) -> Result<SegmentAnalysis, AnalyzeError> {
    analyze_range(files, start, None)
}

/// [`analyze_segment`] reading the log no further than `end` when it is given (where
/// a later message starts, and its offset), and comparing the index entries only of
/// the messages before it: one piece of a segment's scan (`pieces.rs`).
pub(crate) fn analyze_range(
    files: &SegmentFiles,
    start: ScanStart,
    end: Option<ScanStart>,
) -> Result<SegmentAnalysis, AnalyzeError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| AnalyzeError { path, cause }
    };
    if files.log_len.is_none() {
        return Ok(SegmentAnalysis {
            files: files.clone(),
            scan: None,
            index: IndexState::Missing,
        });
    }
    let segment_start = files.key.start_offset;
    // A checkpoint the index does not reach cannot be trusted: scan from the start.
    let start = match start.next_offset.checked_sub(segment_start) {
        Some(n)
            if files
                .index_len
                .is_none_or(|len| len >= n.saturating_mul(16)) =>
        {
            start
        }
        _ => ScanStart::segment(segment_start),
    };
    let mut log = crate::fsops::open_read(&files.log_path).map_err(err(&files.log_path))?;
    if start.position > 0 {
        log.seek(SeekFrom::Start(start.position))
            .map_err(err(&files.log_path))?;
    }
    let log = log.take(end.map_or(u64::MAX, |e| e.position.saturating_sub(start.position)));
    let (scan, index) = match files.index_len {
        None => {
            let scan =
                scan_segment_log(log, start, IgnoreMessages).map_err(err(&files.log_path))?;
            (scan, IndexState::Missing)
        }
        Some(len) => {
            let mut idx =
                crate::fsops::open_read(&files.index_path).map_err(err(&files.index_path))?;
            let skip = (start.next_offset - segment_start).saturating_mul(16);
            idx.seek(SeekFrom::Start(skip))
                .map_err(err(&files.index_path))?;
            let before_end = end.map_or(u64::MAX, |e| {
                (e.next_offset.saturating_sub(start.next_offset)).saturating_mul(16)
            });
            let entries_len = len.saturating_sub(skip).min(before_end);
            let mut verifier = IndexVerifier::new(idx, entries_len, segment_start);
            let verify = EachMessage(|m: &crate::scan::MessageMeta| {
                verifier.check(m).map(drop).map_err(ReadFailure::Index)
            });
            let scan = scan_segment_log(log, start, verify).map_err(|e| match e {
                ReadFailure::Log(cause) => err(&files.log_path)(cause),
                ReadFailure::Index(cause) => err(&files.index_path)(cause),
            })?;
            let state = verifier
                .finish(scan.messages)
                .map_err(err(&files.index_path))?;
            (scan, rebase(state, start.next_offset - segment_start, skip))
        }
    };
    Ok(SegmentAnalysis {
        files: files.clone(),
        scan: Some(scan),
        index,
    })
}

/// Which file a read error of a segment's scan came from.
enum ReadFailure {
    Log(io::Error),
    Index(io::Error),
}

impl From<io::Error> for ReadFailure {
    fn from(e: io::Error) -> Self {
        ReadFailure::Log(e)
    }
}

/// Scans `log` from `start` with `visitor`, which never stops the scan.
fn scan_segment_log<R: io::Read, V: Visitor>(
    log: R,
    start: ScanStart,
    visitor: V,
) -> Result<ScanOutcome, V::Error> {
    match scan_with_scratch(log, start, visitor)? {
        Scanned::Ended(outcome) => Ok(outcome),
        // Not from the visitors above, which accept every message; a defensive answer
        // for one that would not: its valid prefix is unknown.
        Scanned::Stopped { .. } => {
            Err(io::Error::other("the scan of the log stopped early").into())
        }
    }
}

/// Scans `src` from `start` through this thread's buffer.
fn scan_with_scratch<R: io::Read, V: Visitor>(
    src: R,
    start: ScanStart,
    visitor: V,
) -> Result<Scanned, V::Error> {
    SCRATCH.with_borrow_mut(|scratch| scan_log_with(src, start, scratch, visitor))
}

/// The verifier counts from where the scan resumed; reports count from the segment's
/// first entry.
fn rebase(state: IndexState, entries_skipped: u64, bytes_skipped: u64) -> IndexState {
    if entries_skipped == 0 {
        return state;
    }
    match state {
        IndexState::HalfEntry { len } => IndexState::HalfEntry {
            len: len + bytes_skipped,
        },
        IndexState::Short { entries, messages } => IndexState::Short {
            entries: entries + entries_skipped,
            messages: messages + entries_skipped,
        },
        IndexState::Long {
            entries,
            messages,
            zero_filled,
        } => IndexState::Long {
            entries: entries + entries_skipped,
            messages: messages + entries_skipped,
            zero_filled,
        },
        IndexState::Mismatch { entry } => IndexState::Mismatch {
            entry: entry + entries_skipped,
        },
        IndexState::Unrepresentable { entry } => IndexState::Unrepresentable {
            entry: entry + entries_skipped,
        },
        other => other,
    }
}
