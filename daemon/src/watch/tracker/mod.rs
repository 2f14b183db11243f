//! Incremental verification of one segment while iggy-server appends to it.
//!
//! A [`Tracker`] remembers how far a segment is verified: the byte position after the
//! last message whose frame (length, XXH3 checksum, offset) *and* index entry were
//! checked, and the offset expected next. Each [`Tracker::advance`] scans only the
//! bytes after that position (`scan_log_with` from a `ScanStart`), so a segment's bytes
//! are read once, however many writes and events there were. The caller lends the
//! read buffer ([`verify_buffer`]), one for all trackers: reading the server's writes
//! (a copy out of the page cache) and hashing them is nearly all the sidecar's CPU.
//!
//! The server writes a batch to the `.log` first and to the `.index` after, so the
//! scan stops at the first message whose index entry is not written yet and resumes
//! there later: the verified position always has a matching index behind it, which is
//! what a checkpoint promises recovery. A torn frame at the end is a write in
//! progress, not damage: the position stays and the next event retries. Anything else
//! (a bad checksum followed by data, an offset jump, an index entry that does not
//! match) is an anomaly: the tracker stops there, keeps its last good position for
//! recovery, and says why.
//!
//! Sealing asks the same question at the end of a segment's life: did the scan reach
//! the end of the log exactly, and does the index hold one entry per message and no
//! more? Only then is the segment journaled `Sealed`, with the exact lengths and the
//! last message that let recovery trust it without a scan (`seal.rs`).

mod index_check;
mod open_files;
mod seal;

use crate::watch::alerts::{AlertKind, Finding};
use index_check::{Declined, IndexCheck};
use journal::{CheckpointState, SegmentFile, SegmentKey};
use open_files::Looked;
pub use open_files::{OpenFileCache, OpenFiles};
use recovery::fsops::ReadAt;
use recovery::index::{IndexEntry, ENTRY_LEN};
use recovery::message::MAX_MESSAGE_LEN;
use recovery::scan::{scan_log_with, ScanBuffer, ScanStart, Scanned, StopReason};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Most log bytes one `advance` reads: larger than the largest message (so a scan
/// always makes progress), small enough that one segment cannot hold the core up for
/// long.
pub const SCAN_BUDGET: u64 = 2 * MAX_MESSAGE_LEN;

/// Read size of the sidecar's scans: what was read is still in the CPU cache when its
/// checksums are computed (a quarter less CPU than 1 MiB reads, measured on ext4).
const VERIFY_READ: usize = 128 << 10;

/// The read buffer to lend to [`Tracker::advance`] and [`Tracker::seal_check`].
pub fn verify_buffer() -> ScanBuffer {
    ScanBuffer::new(VERIFY_READ)
}

/// The last verified message, as `Sealed` records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastMessage {
    pub offset: u64,
    pub checksum: u64,
    /// Byte of the `.log` where it starts.
    pub start: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracker {
    pub key: SegmentKey,
    /// Verified up to this byte of the `.log` (end of a message, or 0).
    pub pos: u64,
    /// Offset of the next message expected.
    pub next_offset: u64,
    /// `None` with `pos > 0` when the tracker resumed from a checkpoint and has not
    /// seen a message since: it is read back when needed.
    pub last: Option<LastMessage>,
    /// `valid_len` of the newest checkpoint journaled for this incarnation.
    pub checkpointed: u64,
    /// A journaled checkpoint not yet checked against the files.
    resume: Option<CheckpointState>,
    /// Why verification stopped for good, if it did.
    pub anomaly: Option<Box<str>>,
    /// What and where the damage is, for an alert, when it stopped for good.
    pub finding: Option<Finding>,
    /// Lengths (log, index) when the index was last seen ahead of a fully verified
    /// log: the second sighting with the same lengths is damage.
    index_ahead: Option<(u64, u64)>,
}

/// What one [`Tracker::advance`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Advance {
    /// Verified up to the end of the log as it was.
    UpToDate,
    /// Stopped before the end: a frame still being written, or an index lagging
    /// behind the log. Retry on the next event.
    Waiting(String),
    /// The scan budget was used up before the end of the log: call again.
    Partial,
    /// The `.log` does not exist (any more).
    Gone,
    /// Verification stopped at damage; [`Tracker::anomaly`] says why. Reported once.
    Anomaly(String),
    /// Stopped at damage found earlier.
    Stalled,
}

/// Result of an advance, plus whether the tracker started over from byte 0 because
/// the journaled state did not fit the files (the caller journals a new
/// `SegmentOpened`, so the stale checkpoint is forgotten).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub advance: Advance,
    pub restarted: bool,
    /// Lengths of the files as this advance saw them.
    pub log_len: u64,
    pub index_len: Option<u64>,
}

/// Whether a segment can be sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealCheck {
    Complete(SealFacts),
    /// More bytes to verify first: call again.
    Partial,
    /// Not complete or not consistent, and why.
    NotYet(String),
}

/// The `Sealed` record's values, when a segment is complete and consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealFacts {
    pub log_len: u64,
    pub index_len: u64,
    pub last: Option<LastMessage>,
}

pub fn log_path(dir: &Path, key: &SegmentKey) -> PathBuf {
    key.path_in(dir, SegmentFile::Log)
}

pub fn index_path(dir: &Path, key: &SegmentKey) -> PathBuf {
    key.path_in(dir, SegmentFile::Index)
}

impl Tracker {
    /// A segment verified from its first byte.
    pub fn new(key: SegmentKey) -> Self {
        Self {
            key,
            pos: 0,
            next_offset: key.start_offset,
            last: None,
            checkpointed: 0,
            resume: None,
            anomaly: None,
            finding: None,
            index_ahead: None,
        }
    }

    /// A segment the journal saw open, with its newest checkpoint (checked against the
    /// files on the first advance).
    pub fn resumed(key: SegmentKey, checkpoint: Option<CheckpointState>) -> Self {
        let mut t = Self::new(key);
        t.resume = checkpoint;
        t.checkpointed = checkpoint.map_or(0, |c| c.valid_len);
        t
    }

    /// Where the next advance starts reading: the journaled checkpoint while it is
    /// not checked yet (it is resumed if it fits the files).
    pub fn resumes_at(&self) -> u64 {
        self.resume.map_or(self.pos, |c| c.valid_len)
    }

    /// Messages verified so far.
    pub fn messages(&self) -> u64 {
        self.next_offset.saturating_sub(self.key.start_offset)
    }

    /// Whether there is a verified position newer than the journaled checkpoint.
    pub fn needs_checkpoint(&self) -> bool {
        self.resume.is_none() && self.pos > self.checkpointed
    }

    /// Verifies what was appended since the last call, at most [`SCAN_BUDGET`] log bytes.
    pub fn advance(&mut self, dir: &Path, scratch: &mut ScanBuffer) -> io::Result<Outcome> {
        self.advance_within(dir, &mut None, scratch, SCAN_BUDGET)
    }

    /// [`Tracker::advance`] through the files held in `files` (opened there when it
    /// holds none, and left there for the next call), reading at most `budget` log
    /// bytes (the background coverage pass reads in small steps). A message longer
    /// than the budget is still verified whole: a step that ends before its first
    /// message's end reads again with [`SCAN_BUDGET`].
    pub fn advance_within(
        &mut self,
        dir: &Path,
        files: &mut Option<OpenFiles>,
        scratch: &mut ScanBuffer,
        budget: u64,
    ) -> io::Result<Outcome> {
        let looked = OpenFiles::look(
            files,
            &log_path(dir, &self.key),
            &index_path(dir, &self.key),
        )?;
        let Some(Looked {
            files,
            log_len,
            index_len,
        }) = looked
        else {
            return Ok(Outcome {
                advance: Advance::Gone,
                restarted: false,
                log_len: 0,
                index_len: None,
            });
        };
        let mut restarted = false;
        if let Some(cp) = self.resume.take() {
            if !self.checkpoint_fits(&cp, log_len, files.index.as_ref(), index_len) {
                restarted = true;
                *self = Self::new(self.key);
            }
        } else if log_len < self.pos {
            // The log shrank under us (a repair, or a server that truncated it): what
            // was verified is not there any more.
            restarted = true;
            *self = Self::new(self.key);
        }
        let outcome = |advance| Outcome {
            advance,
            restarted,
            log_len,
            index_len,
        };
        if self.anomaly.is_some() {
            return Ok(outcome(Advance::Stalled));
        }
        if log_len == self.pos {
            let advance = self.index_ahead_check(files, log_len, index_len);
            return Ok(outcome(advance));
        }
        self.index_ahead = None;
        let Some(index) = &files.index else {
            return Ok(outcome(Advance::Waiting("no index file yet".into())));
        };
        let entries_done = self.messages();
        let entries_in_file = index_len.unwrap_or(0) / ENTRY_LEN as u64;
        let available = entries_in_file.saturating_sub(entries_done);
        if available == 0 {
            return Ok(outcome(Advance::Waiting(format!(
                "index behind the log: the {} bytes after byte {} have no index entry (a \
                 message or its index entry written in part)",
                log_len - self.pos,
                self.pos
            ))));
        }
        let before = self.pos;
        let mut advance = self.scan(&files.log, index, log_len, available, scratch, budget)?;
        let cut = log_len.saturating_sub(before) > budget;
        if cut
            && self.pos == before
            && budget < SCAN_BUDGET
            && matches!(advance, Advance::Waiting(_))
        {
            advance = self.scan(&files.log, index, log_len, available, scratch, SCAN_BUDGET)?;
        }
        if advance == Advance::UpToDate {
            advance = self.index_ahead_check(files, log_len, index_len);
        }
        Ok(outcome(advance))
    }

    /// The log is verified to its end: is the index ahead of it? The server writes a
    /// batch to the log before its index entries, so entries past the last message
    /// while the log keeps its length (it is stat'ed again after the index) describe
    /// messages that are not there. Seen twice with the same lengths (on the next
    /// pass), it is damage; once, it may still be a write in flight.
    fn index_ahead_check(
        &mut self,
        files: &OpenFiles,
        log_len: u64,
        index_len: Option<u64>,
    ) -> Advance {
        let expected = self.messages().saturating_mul(ENTRY_LEN as u64);
        let entries = index_len.unwrap_or(0);
        // The log is stat'ed again only when the index is ahead: most looks end
        // here with an index exactly as long as the messages need.
        if entries <= expected || files.log_len_now() != Some(log_len) {
            self.index_ahead = None;
            return Advance::UpToDate;
        }
        if self.index_ahead == Some((log_len, entries)) {
            let reason = format!(
                "the index has {entries} bytes for {} messages ({expected} expected): \
                 entries from byte {expected} on describe no message of the log",
                self.messages()
            );
            return self.stall(
                reason,
                Finding {
                    kind: AlertKind::GhostIndexEntries,
                    byte: expected,
                    in_index: true,
                },
            );
        }
        self.index_ahead = Some((log_len, entries));
        Advance::Waiting("index ahead of the log".into())
    }

    fn scan(
        &mut self,
        log: &File,
        index: &File,
        log_len: u64,
        available: u64,
        scratch: &mut ScanBuffer,
        budget: u64,
    ) -> io::Result<Advance> {
        let start = self.key.start_offset;
        let entries_done = self.messages().saturating_mul(ENTRY_LEN as u64);
        let index = ReadAt::new(index, entries_done);
        let from = self.pos;
        let want = (log_len - self.pos).min(budget);
        // The budget, not the file, ends this read: a frame cut there is not a tail.
        let cut_short = want < log_len.saturating_sub(self.pos);
        let mut check = IndexCheck::new(index, available, start);
        let scanned = scan_log_with(
            ReadAt::new(log, self.pos).take(want),
            ScanStart {
                position: self.pos,
                next_offset: self.next_offset,
            },
            scratch,
            &mut check,
        )?;
        let accepted = match scanned {
            Scanned::Ended(outcome) => outcome.last,
            Scanned::Stopped { last, .. } => last,
        };
        if let Some(m) = accepted {
            self.pos = m.end;
            self.next_offset = m.offset.saturating_add(1);
            self.last = Some(LastMessage {
                offset: m.offset,
                checksum: m.checksum,
                start: m.start,
            });
        }
        let stop = match scanned {
            Scanned::Ended(outcome) => outcome.stop,
            Scanned::Stopped { .. } => {
                return Ok(match check.declined {
                    Some(Declined::Mismatch(reason, finding)) => self.stall(reason, finding),
                    Some(Declined::IndexBehind) | None => {
                        Advance::Waiting("index behind the log".into())
                    }
                })
            }
        };
        match stop {
            StopReason::EndOfFile if self.pos == log_len => Ok(Advance::UpToDate),
            // The end of the budget, not of the file.
            StopReason::EndOfFile => Ok(Advance::Partial),
            s if s.is_tail_only() && cut_short && self.pos > from => Ok(Advance::Partial),
            s if s.is_tail_only() => Ok(Advance::Waiting(s.describe())),
            s => {
                let finding = Finding {
                    kind: kind_of_stop(&s),
                    byte: s.position().unwrap_or(self.pos),
                    in_index: false,
                };
                Ok(self.stall(format!("{} at byte {}", s.describe(), self.pos), finding))
            }
        }
    }

    fn stall(&mut self, reason: String, finding: Finding) -> Advance {
        self.anomaly = Some(reason.clone().into_boxed_str());
        self.finding = Some(finding);
        Advance::Anomaly(reason)
    }

    /// Whether a journaled checkpoint still describes the files: both long enough, and
    /// the index entry before it ends exactly at `valid_len`. If so, the tracker
    /// resumes there.
    fn checkpoint_fits(
        &mut self,
        cp: &CheckpointState,
        log_len: u64,
        index: Option<&File>,
        index_len: Option<u64>,
    ) -> bool {
        let Some(n) = cp.next_offset.checked_sub(self.key.start_offset) else {
            return false;
        };
        let fits = log_len >= cp.valid_len
            && index_len.unwrap_or(0) >= n.saturating_mul(ENTRY_LEN as u64)
            && match (n, index) {
                (0, _) => cp.valid_len == 0,
                (_, None) => false,
                (n, Some(f)) => read_entry(f, n - 1).is_ok_and(|e| {
                    u64::from(e.position) == cp.valid_len && u64::from(e.relative_offset) == n - 1
                }),
            };
        if fits {
            self.pos = cp.valid_len;
            self.next_offset = cp.next_offset;
            self.checkpointed = cp.valid_len;
        }
        fits
    }
}

/// The alert a scan's stop before the end of the log is (tail-only stops are writes
/// in flight and never get here).
fn kind_of_stop(stop: &StopReason) -> AlertKind {
    match stop {
        StopReason::OffsetJump { .. } => AlertKind::MisplacedBatch,
        StopReason::ZeroesThenData { .. } | StopReason::ZeroFill { .. } => AlertKind::ZeroHole,
        _ => AlertKind::CorruptData,
    }
}

pub(super) fn read_entry(f: &File, n: u64) -> io::Result<IndexEntry> {
    let mut b = [0u8; ENTRY_LEN];
    f.read_exact_at(&mut b, n.saturating_mul(ENTRY_LEN as u64))?;
    Ok(IndexEntry::decode(&b))
}

#[cfg(test)]
pub(crate) mod tests;
