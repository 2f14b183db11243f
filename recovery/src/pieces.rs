//! A large segment's full scan cut into pieces that several threads scan at once.
//!
//! With whole segments as the unit of work, a directory of a few large segments kept
//! one core busy at the end of `check` while the other waited, and a partition of
//! one large segment (iggy-server's default segment is 1 GiB) had one core for all
//! of it; so did `recover` with no journal. A scan must start where a message
//! starts, with the offset expected there, and only the index says where that is
//! without reading all that comes before: a piece starts where the index says
//! message `k` starts (the end position of entry `k - 1`) and ends where the next
//! piece starts.
//!
//! The index is only a guess here, and no result depends on it: a piece counts only
//! when it is *clean* (its messages end exactly at its end, with the offsets and
//! index entries a scan from byte 0 would have checked there) and every piece before
//! it is clean too. From the first piece that is not, the segment is scanned on from
//! that piece's start, which a single scan would have reached in the same state. So
//! the analysis is always the one a single scan from byte 0 gives (the tests compare
//! the two on damaged segments).

use crate::analyze::segment::{analyze_segment, scan_with_scratch, AnalyzeError, SegmentAnalysis};
use crate::index::{IndexEntry, IndexVerifier, ENTRY_LEN};
use crate::layout::SegmentFiles;
use crate::parallel::map_ordered;
use crate::scan::{EachMessage, MessageMeta, ScanStart, Scanned, StopReason};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// Log bytes per piece: small enough that two threads finish within a few
/// milliseconds of each other, large enough that a piece's two index reads and two
/// opens cost nothing beside its scan.
pub(crate) const PIECE_BYTES: u64 = 8 << 20;

/// Piece `number` of `of` of one segment's scan.
struct Piece<'a> {
    files: &'a SegmentFiles,
    number: u64,
    of: u64,
}

/// What scanning one piece found.
enum PieceScan {
    /// A piece before the last: where it starts (`None` when the index gives no
    /// usable start) and, when it is clean, what it holds.
    Inner {
        start: Option<ScanStart>,
        clean: Option<Clean>,
    },
    /// The last piece: the segment's analysis resumed where the piece starts (`None`
    /// when the index gives no usable start, or the scan failed: the segment is then
    /// scanned on again from its clean prefix, which meets the error again if a
    /// single scan would have).
    Last(Option<Box<SegmentAnalysis>>),
}

/// A clean piece: its messages, and where the next one must start.
struct Clean {
    messages: u64,
    last: Option<MessageMeta>,
    end: ScanStart,
}

/// The analyses of `segments` (whole scans), on up to `threads` threads, each segment
/// larger than `piece_bytes` cut into pieces; `progress` receives log bytes as
/// pieces finish. In the order of `segments`.
pub(crate) fn analyze_in_pieces(
    segments: &[&SegmentFiles],
    threads: usize,
    piece_bytes: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<SegmentAnalysis>, AnalyzeError> {
    let pieces: Vec<Piece<'_>> = segments
        .iter()
        .flat_map(|&files| {
            let of = piece_count(files, piece_bytes);
            (0..of).map(move |number| Piece { files, number, of })
        })
        .collect();
    let scans = map_ordered(&pieces, threads, |piece| {
        let scan = scan_piece(piece);
        progress(piece.log_share());
        Ok::<_, AnalyzeError>(scan)
    })?;
    // Each segment's clean prefix, and where a segment must be scanned on from.
    let mut scans = scans.into_iter();
    let mut merged = Vec::with_capacity(segments.len());
    let mut resumes = Vec::new();
    for &files in segments {
        let of = piece_count(files, piece_bytes);
        let own: Vec<PieceScan> = scans.by_ref().take(saturating_usize(of)).collect();
        match merge(files, own) {
            Merged::Done(analysis) => merged.push(Some(*analysis)),
            Merged::Resume(prefix) => {
                resumes.push((merged.len(), files, prefix));
                merged.push(None);
            }
        }
    }
    let resumed = map_ordered(&resumes, threads, |(_, files, prefix)| {
        analyze_segment(files, prefix.next).map(|a| prefix.complete(a))
    })?;
    for ((at, _, _), analysis) in resumes.iter().zip(resumed) {
        if let Some(slot) = merged.get_mut(*at) {
            *slot = Some(analysis);
        }
    }
    Ok(merged.into_iter().flatten().collect())
}

/// Whether a scan of `files` from its start is cut into pieces.
pub(crate) fn splits(files: &SegmentFiles) -> bool {
    piece_count(files, PIECE_BYTES) > 1
}

/// Pieces of `files`' scan: one unless its log is larger than a piece and its index
/// has an entry to start each further piece at.
fn piece_count(files: &SegmentFiles, piece_bytes: u64) -> u64 {
    let (Some(log_len), Some(index_len)) = (files.log_len, files.index_len) else {
        return 1;
    };
    let entries = index_len / ENTRY_LEN as u64;
    (log_len / piece_bytes.max(1)).clamp(1, entries.max(1))
}

fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Piece<'_> {
    /// Its share of the log's bytes, for progress: the shares add up to the log.
    fn log_share(&self) -> u64 {
        let len = u128::from(self.files.log_len.unwrap_or(0));
        let at = |n: u64| (len * u128::from(n) / u128::from(self.of)) as u64;
        at(self.number + 1) - at(self.number)
    }

    /// The message piece `n` starts with, counted from the segment's first: the
    /// index's entries are shared out evenly (strictly increasing, as `of` is at most
    /// the number of entries).
    fn first_message(&self, n: u64) -> u64 {
        let entries = self.files.index_len.unwrap_or(0) / ENTRY_LEN as u64;
        (u128::from(entries) * u128::from(n) / u128::from(self.of)) as u64
    }

    /// Where piece `n` starts, as the index says: the end of the message before its
    /// first. `None` when the entry cannot be read or points outside the log.
    fn start_of(&self, n: u64, index: &File) -> Option<ScanStart> {
        let segment_start = self.files.key.start_offset;
        let first = self.first_message(n);
        if n == 0 {
            return Some(ScanStart::segment(segment_start));
        }
        let mut entry = [0u8; ENTRY_LEN];
        let before = first.checked_sub(1)?;
        index
            .read_exact_at(&mut entry, before.checked_mul(ENTRY_LEN as u64)?)
            .ok()?;
        let position = u64::from(IndexEntry::decode(&entry).position);
        let inside = position > 0 && self.files.log_len.is_some_and(|len| position <= len);
        inside.then_some(ScanStart {
            position,
            next_offset: segment_start.checked_add(first)?,
        })
    }
}

fn scan_piece(piece: &Piece<'_>) -> PieceScan {
    let files = piece.files;
    let last = piece.number + 1 == piece.of;
    let index = if piece.of > 1 {
        crate::fsops::open_read(&files.index_path).ok()
    } else {
        None
    };
    let start = match &index {
        Some(index) => piece.start_of(piece.number, index),
        None => (piece.number == 0).then(|| ScanStart::segment(files.key.start_offset)),
    };
    if last {
        return PieceScan::Last(
            start
                .and_then(|start| analyze_segment(files, start).ok())
                .map(Box::new),
        );
    }
    let clean = index.and_then(|index| {
        let start = start?;
        let end = piece.start_of(piece.number + 1, &index)?;
        if start.position >= end.position {
            return None;
        }
        scan_inner(files, index, start, end).ok().flatten()
    });
    PieceScan::Inner { start, clean }
}

/// Scans the log from `start` to `end`, checking each message's index entry; the
/// piece when it is clean.
fn scan_inner(
    files: &SegmentFiles,
    mut index: File,
    start: ScanStart,
    end: ScanStart,
) -> io::Result<Option<Clean>> {
    let mut log = crate::fsops::open_read(&files.log_path)?;
    log.seek(SeekFrom::Start(start.position))?;
    let first = start.next_offset.saturating_sub(files.key.start_offset);
    index.seek(SeekFrom::Start(first.saturating_mul(ENTRY_LEN as u64)))?;
    let entries = end.next_offset.saturating_sub(start.next_offset);
    let index_len = entries.saturating_mul(ENTRY_LEN as u64);
    let mut verifier = IndexVerifier::new(index, index_len, files.key.start_offset);
    let mut last = None;
    let verify = EachMessage(|m: &MessageMeta| {
        verifier.check(m)?;
        last = Some(*m);
        Ok::<_, io::Error>(())
    });
    let piece = log.take(end.position.saturating_sub(start.position));
    let Scanned::Ended(outcome) = scan_with_scratch(piece, start, verify)? else {
        return Ok(None);
    };
    let clean = outcome.stop == StopReason::EndOfFile
        && outcome.valid_len == end.position
        && outcome.next_offset == end.next_offset
        && verifier.finish(outcome.messages)?.is_consistent();
    Ok(clean.then_some(Clean {
        messages: outcome.messages,
        last,
        end,
    }))
}

/// How a segment's pieces add up.
enum Merged {
    Done(Box<SegmentAnalysis>),
    /// Scan on from `prefix.next`, after the clean pieces before it.
    Resume(Prefix),
}

/// The clean pieces at a segment's start.
struct Prefix {
    segment_start: u64,
    messages: u64,
    last: Option<MessageMeta>,
    /// Where the next piece starts (the segment's start when none is clean).
    next: ScanStart,
}

impl Prefix {
    /// `resumed`, the analysis of the segment from `self.next`, as a scan from byte 0
    /// reports it: these messages counted, the last of them kept when it found none.
    fn complete(&self, mut resumed: SegmentAnalysis) -> SegmentAnalysis {
        if let Some(scan) = resumed.scan.as_mut() {
            scan.start = ScanStart::segment(self.segment_start);
            scan.messages += self.messages;
            scan.last = scan.last.or(self.last);
        }
        resumed
    }
}

fn merge(files: &SegmentFiles, pieces: Vec<PieceScan>) -> Merged {
    let mut prefix = Prefix {
        segment_start: files.key.start_offset,
        messages: 0,
        last: None,
        next: ScanStart::segment(files.key.start_offset),
    };
    for piece in pieces {
        match piece {
            PieceScan::Inner {
                start: Some(start),
                clean: Some(clean),
            } if start == prefix.next => {
                prefix.messages += clean.messages;
                prefix.last = clean.last.or(prefix.last);
                prefix.next = clean.end;
            }
            // No scan: the log is missing, so the segment is one piece.
            PieceScan::Last(Some(analysis))
                if analysis.scan.is_none_or(|s| s.start == prefix.next) =>
            {
                return Merged::Done(Box::new(prefix.complete(*analysis)));
            }
            _ => return Merged::Resume(prefix),
        }
    }
    Merged::Resume(prefix)
}

#[cfg(test)]
mod tests;
