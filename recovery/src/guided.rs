//! Journal-guided analysis: scan only where a crash could have left damage.
//!
//! A segment the journal saw sealed is trusted without a scan when its two file
//! lengths still match and its last message is still the one journaled: one small
//! read of its header, at the position the journal gives, must show the journaled
//! checksum and offset and end exactly at the end of the log. When the sidecar also
//! journaled the files' stamps after the seal (`journal::stamp`), and the listing
//! found both files with the very same stamps, not even that read is made. (The index is trusted
//! by its length: the sidecar verified it entry by entry before journaling the seal,
//! and the server only ever appends to a segment, which changes its lengths. On a
//! cold cache every read is a trip to the disk, so one read, not two.) A segment the
//! journal saw open is scanned from its last checkpoint. Everything else (unknown to
//! the journal, or not matching it) is scanned in full: the journal accelerates, it
//! never overrides the disk.

use crate::analyze::{analyze_each, analyze_segment, Analysis, AnalyzeError, SegmentAnalysis};
use crate::index::{IndexState, ENTRY_LEN};
use crate::layout::{DataDir, SegmentFiles};
use crate::parallel::IO_THREADS;
use crate::read_back::{read_back_message, Proof};
use crate::scan::{MessageMeta, ScanOutcome, ScanStart, StopReason};
use journal::{SegmentKey, SegmentPhase, SegmentState};
use serde::Serialize;
use std::collections::HashMap;

/// How much of the directory the journal let us skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GuidedStats {
    pub trusted: usize,
    /// Of the trusted segments, those trusted by their files' stamps alone, unread.
    pub trusted_by_stamp: usize,
    pub resumed: usize,
    pub scanned: usize,
    pub bytes_scanned: u64,
    /// Bytes of `state/log` whose entries the journal's mark let us take as verified.
    pub state_log_bytes_trusted: u64,
    /// Bytes of `state/log` verified (hashed) in this run.
    pub state_log_bytes_verified: u64,
    /// Partitions whose offsets folders were taken from the journal's listings
    /// (their stamps unchanged) rather than read.
    pub offsets_listings_used: usize,
}

/// What `check` runs, and `recover` with no journal: the guided analysis with no
/// history, so every segment is scanned from its start (small ones on the I/O
/// threads, large ones in pieces on every core). One path for both, so that what
/// `check` reports is what `recover` would find.
pub fn analyze_without_history(
    dir: &DataDir,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Analysis, AnalyzeError> {
    analyze_guided(dir, &HashMap::new(), progress).map(|(analysis, _)| analysis)
}

pub fn analyze_guided(
    dir: &DataDir,
    known: &HashMap<SegmentKey, SegmentState>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Analysis, GuidedStats), AnalyzeError> {
    // Mostly small reads that wait on the disk: threads beyond the cores keep a
    // cold disk busy (see `parallel`). Large segments the journal vouches for in no
    // way are CPU work, as for `check`: scanned from their start in pieces on every
    // core.
    let from_start = |files: &SegmentFiles| {
        matches!(approach(files, known.get(&files.key)), Approach::Whole)
            && crate::pieces::splits(files)
    };
    let (analysis, per_segment) = analyze_each(dir, IO_THREADS, progress, from_start, |files| {
        let mut stats = GuidedStats::default();
        let seg = analyze_known(files, known.get(&files.key), &mut stats)?;
        Ok((seg, stats))
    })?;
    let state_log_len = dir.state.log.as_ref().map_or(0, |l| l.len);
    let mut stats = GuidedStats {
        state_log_bytes_trusted: dir.state.bytes_trusted,
        state_log_bytes_verified: state_log_len.saturating_sub(dir.state.bytes_trusted),
        ..GuidedStats::default()
    };
    let segments = analysis.partitions.iter().flat_map(|p| &p.segments);
    for (seg, s) in segments.zip(per_segment) {
        let Some(s) = s else {
            stats.scanned += 1;
            stats.bytes_scanned += seg.files.log_len.unwrap_or(0);
            continue;
        };
        stats.trusted += s.trusted;
        stats.trusted_by_stamp += s.trusted_by_stamp;
        stats.resumed += s.resumed;
        stats.scanned += s.scanned;
        stats.bytes_scanned += s.bytes_scanned;
    }
    Ok((analysis, stats))
}

/// How a guided analysis looks at a segment, from what the journal knows of it:
/// decided here once, for the analysis and for the reads it advises beforehand
/// (`readahead`).
pub(crate) enum Approach {
    /// Sealed with the lengths the files still have: trusted if its last message,
    /// journaled as `last` (checksum, start), is still there, known by `look`.
    Sealed {
        last: Option<(u64, u64)>,
        look: Look,
    },
    /// Scanned from a checkpoint the log reaches.
    Resume(ScanStart),
    /// Scanned from its start.
    Whole,
}

pub(crate) fn approach(files: &SegmentFiles, state: Option<&SegmentState>) -> Approach {
    let Some(state) = state else {
        return Approach::Whole;
    };
    match state.phase {
        SegmentPhase::Sealed {
            log_len,
            index_len,
            last_checksum,
            last_start,
            ..
        }
        | SegmentPhase::SealedStamped {
            log_len,
            index_len,
            last_checksum,
            last_start,
            ..
        } if files.log_len == Some(log_len) && files.index_len == Some(index_len) => {
            let look = if stamps_unchanged(files, &state.phase) {
                Look::Stamped
            } else {
                Look::ReadBack
            };
            Approach::Sealed {
                last: last_checksum.zip(last_start),
                look,
            }
        }
        SegmentPhase::Opened | SegmentPhase::SealIntent => match state.checkpoint {
            Some(c) if files.log_len.is_some_and(|len| len >= c.valid_len) => {
                Approach::Resume(ScanStart {
                    position: c.valid_len,
                    next_offset: c.next_offset,
                })
            }
            _ => Approach::Whole,
        },
        _ => Approach::Whole,
    }
}

fn analyze_known(
    files: &SegmentFiles,
    state: Option<&SegmentState>,
    stats: &mut GuidedStats,
) -> Result<SegmentAnalysis, AnalyzeError> {
    let from = match approach(files, state) {
        Approach::Sealed { last, look } => {
            if let Some(seg) = trust_sealed(files, last, look) {
                stats.trusted += 1;
                stats.trusted_by_stamp += usize::from(matches!(look, Look::Stamped));
                return Ok(seg);
            }
            ScanStart::segment(files.key.start_offset)
        }
        Approach::Resume(from) => from,
        Approach::Whole => ScanStart::segment(files.key.start_offset),
    };
    let seg = analyze_segment(files, from)?;
    let scanned_from = seg.scan.map_or(0, |s| s.start.position);
    if scanned_from > 0 {
        stats.resumed += 1;
    } else {
        stats.scanned += 1;
    }
    stats.bytes_scanned += files.log_len.unwrap_or(0).saturating_sub(scanned_from);
    Ok(seg)
}

/// Whether the journal holds stamps of the segment's files and the listing found
/// both files with the very same ones.
fn stamps_unchanged(files: &SegmentFiles, phase: &SegmentPhase) -> bool {
    matches!(*phase, SegmentPhase::SealedStamped { log, index, .. }
        if files.log_stamp == Some(log) && files.index_stamp == Some(index))
}

/// How a sealed segment's last message is known to be the journaled one.
#[derive(Clone, Copy)]
pub(crate) enum Look {
    /// Read back from the log.
    ReadBack,
    /// Not read: both files have the stamps journaled after the sidecar verified
    /// them. The message's timestamp is then unknown (reported as 0); nothing
    /// downstream of the analysis uses it.
    Stamped,
}

/// The analysis of a sealed segment whose files still end as journaled, or `None`
/// when anything does not match (then it is scanned). `last` is the journaled
/// checksum and start of its last message.
fn trust_sealed(
    files: &SegmentFiles,
    last: Option<(u64, u64)>,
    look: Look,
) -> Option<SegmentAnalysis> {
    let log_len = files.log_len?;
    let index_len = files.index_len?;
    if index_len % ENTRY_LEN as u64 != 0 {
        return None;
    }
    let count = index_len / ENTRY_LEN as u64;
    let start = files.key.start_offset;
    // A file name near u64::MAX cannot hold `count` offsets: scan it instead.
    let next_offset = start.checked_add(count)?;
    let last = match (count, last) {
        (0, None) if log_len == 0 => None,
        (0, _) => return None,
        (_, Some((checksum, at))) => Some(match look {
            Look::ReadBack => last_message(files, next_offset - 1, at, checksum)?,
            Look::Stamped if at < log_len => MessageMeta {
                offset: next_offset - 1,
                start: at,
                end: log_len,
                timestamp: 0,
                checksum,
            },
            Look::Stamped => return None,
        }),
        (_, None) => return None,
    };
    Some(SegmentAnalysis {
        files: files.clone(),
        scan: Some(ScanOutcome {
            start: ScanStart::segment(start),
            valid_len: log_len,
            messages: count,
            next_offset,
            last,
            stop: StopReason::EndOfFile,
        }),
        index: IndexState::Consistent,
    })
}

/// Reads the header of the message journaled as the segment's last (offset `offset`,
/// starting at byte `at`); returns it when it still has the journaled checksum and
/// ends exactly at the end of the log.
fn last_message(files: &SegmentFiles, offset: u64, at: u64, checksum: u64) -> Option<MessageMeta> {
    let end = files.log_len?;
    let mut log = crate::fsops::open_read(&files.log_path).ok()?;
    read_back_message(&mut log, at, end, offset, Proof::RecordedChecksum(checksum))
        .ok()
        .flatten()
}
