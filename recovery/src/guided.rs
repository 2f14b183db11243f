//! Journal-guided analysis: scan only where a crash could have left damage.
//!
//! A segment the journal saw sealed is trusted without a scan when its two file
//! lengths still match and its last message is still the one journaled (checked with
//! two small reads: the last index entries and the last message header). A segment the
//! journal saw open is scanned from its last checkpoint. Everything else (unknown to
//! the journal, or not matching it) is scanned in full: the journal accelerates, it
//! never overrides the disk.

use crate::analyze::{analyze_segment, Analysis, AnalyzeError, PartitionAnalysis, SegmentAnalysis};
use crate::index::{IndexEntry, IndexState, ENTRY_LEN};
use crate::layout::{DataDir, SegmentFiles};
use crate::message::{MessageHeader, HEADER_LEN};
use crate::parallel::{map_ordered, IO_THREADS};
use crate::scan::{MessageMeta, ScanOutcome, ScanStart, StopReason};
use journal::{SegmentKey, SegmentPhase, SegmentState};
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// How much of the directory the journal let us skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GuidedStats {
    pub trusted: usize,
    pub resumed: usize,
    pub scanned: usize,
    pub bytes_scanned: u64,
}

pub fn analyze_guided(
    dir: &DataDir,
    known: &HashMap<SegmentKey, SegmentState>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Analysis, GuidedStats), AnalyzeError> {
    // Mostly small reads that wait on the disk: see `parallel`.
    let done = map_ordered(&dir.partitions, IO_THREADS, |p| {
        let mut stats = GuidedStats::default();
        let mut segments = Vec::with_capacity(p.segments.len());
        for files in &p.segments {
            segments.push(analyze_known(files, known.get(&files.key), &mut stats)?);
            progress(files.log_len.unwrap_or(0));
        }
        Ok::<_, AnalyzeError>((PartitionAnalysis::new(p, segments), stats))
    })?;
    let mut stats = GuidedStats::default();
    let mut partitions = Vec::with_capacity(done.len());
    for (analysis, s) in done {
        stats.trusted += s.trusted;
        stats.resumed += s.resumed;
        stats.scanned += s.scanned;
        stats.bytes_scanned += s.bytes_scanned;
        partitions.push(analysis);
    }
    let analysis = Analysis {
        root: dir.root.clone(),
        version: dir.version.clone(),
        partitions,
        strays: dir.strays.clone(),
    };
    Ok((analysis, stats))
}

fn analyze_known(
    files: &SegmentFiles,
    state: Option<&SegmentState>,
    stats: &mut GuidedStats,
) -> Result<SegmentAnalysis, AnalyzeError> {
    let start = files.key.start_offset;
    let mut from = ScanStart::segment(start);
    if let Some(state) = state {
        match state.phase {
            SegmentPhase::Sealed {
                log_len,
                index_len,
                last_checksum,
                ..
            } if files.log_len == Some(log_len) && files.index_len == Some(index_len) => {
                if let Some(seg) = trust_sealed(files, last_checksum) {
                    stats.trusted += 1;
                    return Ok(seg);
                }
            }
            SegmentPhase::Opened | SegmentPhase::SealIntent => {
                if let Some(c) = state.checkpoint {
                    if files.log_len.is_some_and(|len| len >= c.valid_len) {
                        from = ScanStart {
                            position: c.valid_len,
                            next_offset: c.next_offset,
                        };
                    }
                }
            }
            _ => {}
        }
    }
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

/// The analysis of a sealed segment whose files still end as journaled, or `None`
/// when anything does not match (then it is scanned).
fn trust_sealed(files: &SegmentFiles, last_checksum: Option<u64>) -> Option<SegmentAnalysis> {
    let log_len = files.log_len?;
    let index_len = files.index_len?;
    if index_len % ENTRY_LEN as u64 != 0 {
        return None;
    }
    let count = index_len / ENTRY_LEN as u64;
    let start = files.key.start_offset;
    // A file name near u64::MAX cannot hold `count` offsets: scan it instead.
    let next_offset = start.checked_add(count)?;
    let last = if count == 0 {
        (log_len == 0 && last_checksum.is_none()).then_some(None)?
    } else {
        Some(last_message(files, count, log_len, last_checksum?)?)
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

/// Reads the last two index entries and the last message header; returns the last
/// message when they agree with each other, the log length and the checksum.
fn last_message(
    files: &SegmentFiles,
    count: u64,
    log_len: u64,
    checksum: u64,
) -> Option<MessageMeta> {
    let entries_from = count.saturating_sub(2);
    let mut buf = [0u8; 2 * ENTRY_LEN];
    let n = ((count - entries_from) as usize) * ENTRY_LEN;
    read_at(
        &files.index_path,
        entries_from * ENTRY_LEN as u64,
        buf.get_mut(..n)?,
    )?;
    let entry = |i: usize| {
        buf.get(i * ENTRY_LEN..(i + 1) * ENTRY_LEN)?
            .first_chunk()
            .map(IndexEntry::decode)
    };
    let last = entry(n / ENTRY_LEN - 1)?;
    let msg_start = if count >= 2 {
        u64::from(entry(0)?.position)
    } else {
        0
    };
    let end = u64::from(last.position);
    if end != log_len || u64::from(last.relative_offset) != count - 1 {
        return None;
    }
    let mut head = [0u8; HEADER_LEN];
    read_at(&files.log_path, msg_start, &mut head)?;
    let header = MessageHeader::parse(&head);
    let offset = files.key.start_offset.checked_add(count - 1)?;
    let consistent = header.checksum == checksum
        && header.offset == offset
        && msg_start.checked_add(header.frame_len()) == Some(end);
    consistent.then_some(MessageMeta {
        offset,
        start: msg_start,
        end,
        timestamp: header.timestamp,
        checksum,
    })
}

fn read_at(path: &Path, pos: u64, buf: &mut [u8]) -> Option<()> {
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::Start(pos)).ok()?;
    f.read_exact(buf).ok()
}
