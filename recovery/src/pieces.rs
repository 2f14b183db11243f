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

use crate::analyze::segment::{analyze_range, analyze_segment, AnalyzeError, SegmentAnalysis};
use crate::index::{IndexEntry, ENTRY_LEN};
use crate::layout::SegmentFiles;
use crate::parallel::map_ordered;
use crate::scan::{MessageMeta, ScanStart, StopReason};
use std::fs::File;
use std::io;
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
    let counts: Vec<u64> = (segments.iter())
        .map(|files| piece_count(files, piece_bytes))
        .collect();
    let pieces: Vec<Piece<'_>> = (segments.iter().zip(&counts))
        .flat_map(|(&files, &of)| (0..of).map(move |number| Piece { files, number, of }))
        .collect();
    let scans = map_ordered(&pieces, threads, |piece| {
        let scan = scan_piece(piece);
        progress(piece.log_share());
        Ok::<_, AnalyzeError>(scan)
    })?;
    let mut scans = scans.into_iter();
    let merged: Vec<Merged> = (segments.iter().zip(&counts))
        .map(|(&files, &of)| merge(files, scans.by_ref().take(saturating_usize(of)).collect()))
        .collect();
    // Segments whose clean prefix ends before their last piece: scanned on from there.
    let resumes: Vec<(&SegmentFiles, &Prefix)> = (segments.iter().zip(&merged))
        .filter_map(|(&files, m)| match m {
            Merged::Resume(prefix) => Some((files, prefix)),
            Merged::Done(_) => None,
        })
        .collect();
    let resumed = map_ordered(&resumes, threads, |(files, prefix)| {
        analyze_segment(files, prefix.next).map(|a| prefix.complete(a))
    })?;
    let mut resumed = resumed.into_iter();
    (segments.iter().zip(merged))
        .map(|(files, m)| match m {
            Merged::Done(analysis) => Ok(*analysis),
            // `map_ordered` gives one result per resume, in order: a defensive answer.
            Merged::Resume(_) => resumed.next().ok_or_else(|| AnalyzeError {
                path: files.log_path.clone(),
                cause: io::Error::other("the segment's analysis went missing"),
            }),
        })
        .collect()
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
        scan_inner(files, start, end)
    });
    PieceScan::Inner { start, clean }
}

/// The piece of the log from `start` to `end`, with the index entries of its
/// messages, when it is clean.
fn scan_inner(files: &SegmentFiles, start: ScanStart, end: ScanStart) -> Option<Clean> {
    let piece = analyze_range(files, start, Some(end)).ok()?;
    let scan = piece.scan?;
    let clean = scan.start == start
        && scan.stop == StopReason::EndOfFile
        && scan.valid_len == end.position
        && scan.next_offset == end.next_offset
        && piece.index.is_consistent();
    clean.then_some(Clean {
        messages: scan.messages,
        last: scan.last,
        end,
    })
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
