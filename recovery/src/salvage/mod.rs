//! Salvage: keep every message whose checksum is valid, wherever it is found.
//!
//! The 0.6.0 rotation race (fixed upstream in 0.7.0) persists batches into the wrong
//! segment file and out of order, leaves zero holes inside sealed segments and index
//! entries for messages that are not there. Cutting at the first bad byte would lose
//! every valid message after it. Salvage, after RocksDB's `kSkipAnyCorruptedRecords`,
//! instead re-lays the partition from its first damaged segment on:
//!
//! 1. [`resync`] finds every valid frame in each file of that region;
//! 2. the messages are ordered by offset; exact duplicates are kept once, and of two
//!    different messages with one offset the one the index points to wins, else the
//!    earlier timestamp, else the lower (file, byte);
//! 3. [`layout`] cuts them into segments of consecutive offsets, each named by its
//!    first offset and no larger than the partition's largest log;
//! 4. one [`RepairAction::Relay`] replaces the region's files, which go whole into
//!    quarantine (hard links where possible), by the new ones.
//!
//! Segments before the region stay untouched. If a message found in the region has
//! an offset that an intact earlier segment already covers, the region grows to the
//! whole partition, so the duplicate rule sees every copy.

mod execute;
pub mod layout;
pub mod resync;
mod signatures;

use crate::analyze::{PartitionAnalysis, SegmentAnalysis};
use crate::index::{IndexState, ENTRY_LEN};
use crate::scan::StopReason;
use crate::verdict::Problem;
use journal::{PartitionId, RelayOriginal, RelaySegment, RepairAction};
use layout::{choose, lay_out, Candidate};
pub use resync::DroppedDuplicate;
use resync::{resync_scan, FileScan};
use serde::Serialize;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

#[derive(Debug, thiserror::Error)]
#[error("cannot salvage from {}: {cause}", crate::names::escaped(.path))]
pub struct SalvageError {
    pub path: PathBuf,
    pub cause: io::Error,
}

/// What salvage would do to one partition.
#[derive(Clone, Debug, Serialize)]
pub struct Salvage {
    pub partition: PartitionId,
    /// Segments before this position stay as they are.
    pub first_segment: usize,
    /// Messages the partition holds afterwards: the untouched segments' and the
    /// re-laid ones.
    pub kept_messages: u64,
    pub dropped: Vec<DroppedDuplicate>,
    /// The race's signatures found in the region (misplaced batches, zero holes,
    /// ghost index entries, duplicate offsets).
    pub signatures: Vec<Problem>,
    /// Bytes the new segments take (logs and indexes).
    pub new_bytes: u64,
    pub action: RepairAction,
}

impl Salvage {
    /// Bytes of the files replaced.
    pub fn original_bytes(&self) -> u64 {
        match &self.action {
            RepairAction::Relay { originals, .. } => originals.iter().map(|o| o.len).sum(),
            _ => 0,
        }
    }
}

/// Whether a segment is sound as it stands: a whole log of valid consecutive
/// messages matching its name, a consistent index, and no overlap with `prev_end`
/// (the offset after the previous segment; a gap forward is served by 0.6.0).
fn is_sound(seg: &SegmentAnalysis, prev_end: Option<u64>) -> bool {
    let Some(scan) = seg.scan else { return false };
    scan.stop == StopReason::EndOfFile
        && seg.index == IndexState::Consistent
        && prev_end.is_none_or(|end| seg.key().start_offset >= end)
}

/// Position of the first segment that is not sound, if any.
pub fn first_damaged(p: &PartitionAnalysis) -> Option<usize> {
    let mut prev_end = None;
    for (i, seg) in p.segments.iter().enumerate() {
        if !is_sound(seg, prev_end) {
            return Some(i);
        }
        prev_end = Some(seg.key().start_offset + seg.valid_messages());
    }
    None
}

/// An index read once: its length, its XXH3, the entries that point to a valid
/// message of its segment's log, as (relative offset, end position), and how many
/// point nowhere. Memory is bounded by the log's messages, however long the index
/// (a sparse-extended one holds any number of zero entries).
struct IndexFile {
    len: u64,
    xxh3: u64,
    pointed: signatures::EntrySet,
    ghosts: signatures::Ghosts,
}

/// One file of the region, read once.
struct RegionFile {
    rel: String,
    path: PathBuf,
    segment_start: u64,
    log: Option<FileScan>,
    index: Option<IndexFile>,
}

/// Plans the salvage of `p`, or `None` when every segment is sound.
pub fn salvage_partition(p: &PartitionAnalysis) -> Result<Option<Salvage>, SalvageError> {
    let Some(mut first) = first_damaged(p) else {
        return Ok(None);
    };
    let mut files = read_region(p, first)?;
    let intact_end = |first: usize| {
        first
            .checked_sub(1)
            .and_then(|i| p.segments.get(i))
            .map(|s| s.key().start_offset + s.valid_messages())
    };
    let reaches_back = |files: &[RegionFile], end: Option<u64>| {
        end.is_some_and(|end| {
            files
                .iter()
                .filter_map(|f| f.log.as_ref())
                .flat_map(|l| &l.messages)
                .any(|m| m.offset < end)
        })
    };
    if first > 0 && reaches_back(&files, intact_end(first)) {
        let mut earlier = read_segments(p.segments.get(..first).unwrap_or(&[]))?;
        earlier.append(&mut files);
        files = earlier;
        first = 0;
    }
    let kept_before: u64 = p
        .segments
        .iter()
        .take(first)
        .map(SegmentAnalysis::valid_messages)
        .sum();
    let candidates = candidates(&files);
    let chosen = choose(candidates);
    let max_len = p
        .segments
        .iter()
        .filter_map(|s| s.files.log_len)
        .max()
        .unwrap_or(0);
    let mut segments: Vec<RelaySegment> = lay_out(&chosen.kept, max_len);
    if segments.is_empty() && first == 0 {
        // 0.6.0 panics on a partition without a segment: keep one, empty.
        let start = p.segments.first().map_or(0, |s| s.key().start_offset);
        segments.push(RelaySegment {
            start_offset: start,
            messages: 0,
            log_len: 0,
            pieces: Vec::new(),
        });
    }
    let originals: Vec<RelayOriginal> = files
        .iter()
        .map(|f| {
            let (len, xxh3) = match (&f.log, &f.index) {
                (Some(l), _) => (l.len, l.xxh3),
                (None, Some(i)) => (i.len, i.xxh3),
                (None, None) => (0, 0),
            };
            RelayOriginal {
                path: f.rel.clone(),
                len,
                xxh3,
            }
        })
        .collect();
    let dropped = chosen
        .dropped
        .iter()
        .map(|(c, identical)| DroppedDuplicate {
            offset: c.offset,
            file: files
                .get(c.source as usize)
                .map_or(String::new(), |f| f.rel.clone()),
            range: c.range,
            identical: *identical,
        })
        .collect::<Vec<_>>();
    let signatures = signatures::find(&files_view(&files), &dropped, p);
    let new_bytes = segments
        .iter()
        .map(|s| s.log_len + s.messages * ENTRY_LEN as u64)
        .sum();
    let kept_messages = kept_before + segments.iter().map(|s| s.messages).sum::<u64>();
    Ok(Some(Salvage {
        partition: p.id,
        first_segment: first,
        kept_messages,
        dropped,
        signatures,
        new_bytes,
        action: RepairAction::Relay {
            partition: p.id,
            originals,
            segments,
        },
    }))
}

fn read_region(p: &PartitionAnalysis, first: usize) -> Result<Vec<RegionFile>, SalvageError> {
    read_segments(p.segments.get(first..).unwrap_or(&[]))
}

fn read_segments(segments: &[SegmentAnalysis]) -> Result<Vec<RegionFile>, SalvageError> {
    let mut out = Vec::new();
    for seg in segments {
        let f = &seg.files;
        let start = f.key.start_offset;
        let mut scanned = None;
        if f.log_len.is_some() {
            let log = scan_file(&f.log_path)?;
            scanned = Some(out.len());
            out.push(RegionFile {
                rel: f.key.rel_log(),
                path: f.log_path.clone(),
                segment_start: start,
                log: Some(log),
                index: None,
            });
        }
        if f.index_len.is_some() {
            let log = scanned
                .and_then(|i| out.get(i))
                .and_then(|r| r.log.as_ref());
            let index = read_index(&f.index_path, start, log)?;
            out.push(RegionFile {
                rel: f.key.rel_index(),
                path: f.index_path.clone(),
                segment_start: start,
                log: None,
                index: Some(index),
            });
        }
    }
    Ok(out)
}

fn scan_file(path: &Path) -> Result<FileScan, SalvageError> {
    let err = |cause| SalvageError {
        path: path.to_path_buf(),
        cause,
    };
    let file = crate::fsops::open_read(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    resync_scan(file, len).map_err(err)
}

fn read_index(
    path: &Path,
    segment_start: u64,
    log: Option<&FileScan>,
) -> Result<IndexFile, SalvageError> {
    let err = |cause| SalvageError {
        path: path.to_path_buf(),
        cause,
    };
    let real = signatures::entries_of(log, segment_start);
    let mut src = BufReader::with_capacity(1 << 20, crate::fsops::open_read(path).map_err(err)?);
    let mut hasher = Xxh3::new();
    // Which of `real` some entry points to: bounded by the log's messages, however
    // many entries the index repeats.
    let mut pointed = vec![false; real.len()];
    let mut next = 0;
    let mut ghosts = signatures::Ghosts::default();
    let mut len = 0u64;
    let mut entry = [0u8; ENTRY_LEN];
    loop {
        let n = read_up_to(&mut src, &mut entry).map_err(err)?;
        hasher.update(entry.get(..n).unwrap_or(&[]));
        len += n as u64;
        if n < ENTRY_LEN {
            break;
        }
        let [a, b, c, d, e, f, g, h, ..] = entry;
        let pair = (
            u32::from_le_bytes([a, b, c, d]),
            u32::from_le_bytes([e, f, g, h]),
        );
        if let Some(at) = real.position(&pair, next) {
            if let Some(flag) = pointed.get_mut(at) {
                *flag = true;
            }
            next = at + 1;
        } else {
            ghosts.first.get_or_insert(ghosts.entries);
            ghosts.count += 1;
        }
        ghosts.entries += 1;
    }
    Ok(IndexFile {
        len,
        xxh3: hasher.digest(),
        pointed: real.subset(&pointed),
        ghosts,
    })
}

fn read_up_to(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(buf.get_mut(got..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Every valid message of the region, with whether its segment's index points to it.
fn candidates(files: &[RegionFile]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (source, f) in files.iter().enumerate() {
        let Some(log) = &f.log else { continue };
        let pointed = files
            .iter()
            .find(|i| i.index.is_some() && i.segment_start == f.segment_start)
            .and_then(|i| i.index.as_ref())
            .map(|i| &i.pointed);
        let mut next = 0;
        for m in &log.messages {
            let key = (
                u32::try_from(m.offset.wrapping_sub(f.segment_start)).unwrap_or(u32::MAX),
                u32::try_from(m.range.end).unwrap_or(u32::MAX),
            );
            let at = pointed.and_then(|p| p.position(&key, next));
            if let Some(at) = at {
                next = at + 1;
            }
            out.push(Candidate {
                offset: m.offset,
                timestamp: m.timestamp,
                checksum: m.checksum,
                source: source as u32,
                range: m.range,
                indexed: m.offset >= f.segment_start && at.is_some(),
            });
        }
    }
    out
}

/// What signature detection needs of each file.
fn files_view(files: &[RegionFile]) -> Vec<signatures::FileView<'_>> {
    files
        .iter()
        .map(|f| signatures::FileView {
            path: &f.path,
            segment_start: f.segment_start,
            log: f.log.as_ref(),
            index: f.index.as_ref().map(|i| i.ghosts),
        })
        .collect()
}
