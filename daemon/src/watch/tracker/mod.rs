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
//! last message that let recovery trust it without a scan.

use crate::watch::alerts::{AlertKind, Finding};
use journal::{CheckpointState, SegmentFile, SegmentKey};
use recovery::index::{EntryCheck, IndexEntry, IndexVerifier, ENTRY_LEN};
use recovery::message::MAX_MESSAGE_LEN;
use recovery::read_back::{read_back_message, Proof};
use recovery::scan::{
    scan_log_with, MessageMeta, ScanBuffer, ScanStart, Scanned, StopReason, Visitor,
};
use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
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

/// Why [`IndexCheck`] stopped a scan.
enum Declined {
    /// The message's index entry is not written yet (or the index shrank under us).
    IndexBehind,
    /// The entry does not match the message: damage, and why.
    Mismatch(String, Finding),
}

/// The tracker's visitor: accepts a message only once its index entry is written and
/// matches it, so the verified position always has its index behind it.
struct IndexCheck<R> {
    verifier: IndexVerifier<R>,
    segment_start: u64,
    declined: Option<Declined>,
}

impl<R: Read> Visitor for IndexCheck<R> {
    type Error = io::Error;

    fn message(&mut self, m: &MessageMeta) -> io::Result<bool> {
        if self.verifier.entries_left() == 0 {
            self.declined = Some(Declined::IndexBehind);
            return Ok(false);
        }
        let check = match self.verifier.check(m) {
            Ok(check) => check,
            // The index shrank while we read it.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => EntryCheck::NoEntry,
            Err(e) => return Err(e),
        };
        self.declined = match check {
            EntryCheck::Matches => return Ok(true),
            EntryCheck::NoEntry | EntryCheck::NotCompared => Some(Declined::IndexBehind),
            EntryCheck::Mismatch {
                found, expected, ..
            } => {
                let entry = m.offset.saturating_sub(self.segment_start);
                Some(Declined::Mismatch(
                    format!(
                        "index entry {entry} is {found:?}, but message {} needs {expected:?}",
                        m.offset
                    ),
                    Finding {
                        kind: AlertKind::GhostIndexEntries,
                        byte: entry.saturating_mul(ENTRY_LEN as u64),
                        in_index: true,
                    },
                ))
            }
            EntryCheck::Unrepresentable { .. } => Some(Declined::Mismatch(
                format!(
                    "message {} ends at byte {}, beyond what a 0.6 index can address",
                    m.offset, m.end
                ),
                Finding {
                    kind: AlertKind::CorruptData,
                    byte: m.start,
                    in_index: false,
                },
            )),
        };
        Ok(false)
    }
}

pub fn log_path(dir: &Path, key: &SegmentKey) -> PathBuf {
    key.path_in(dir, SegmentFile::Log)
}

pub fn index_path(dir: &Path, key: &SegmentKey) -> PathBuf {
    key.path_in(dir, SegmentFile::Index)
}

fn open_optional(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
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
        self.advance_within(dir, scratch, SCAN_BUDGET)
    }

    /// [`Tracker::advance`], reading at most `budget` log bytes (the background
    /// coverage pass reads in small steps). A message longer than the budget is still
    /// verified whole: a step that ends before its first message's end reads again
    /// with [`SCAN_BUDGET`].
    pub fn advance_within(
        &mut self,
        dir: &Path,
        scratch: &mut ScanBuffer,
        budget: u64,
    ) -> io::Result<Outcome> {
        let lp = log_path(dir, &self.key);
        let ip = index_path(dir, &self.key);
        let Some(log) = open_optional(&lp)? else {
            return Ok(Outcome {
                advance: Advance::Gone,
                restarted: false,
                log_len: 0,
                index_len: None,
            });
        };
        let log_len = log.metadata()?.len();
        // A stat, not an open: most calls find nothing new and need only the length.
        let index_len = match std::fs::metadata(&ip) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut restarted = false;
        if let Some(cp) = self.resume.take() {
            let index = open_optional(&ip)?;
            if !self.checkpoint_fits(&cp, log_len, index.as_ref(), index_len) {
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
            let advance = self.index_ahead_check(&lp, log_len, index_len);
            return Ok(outcome(advance));
        }
        self.index_ahead = None;
        let Some(index) = open_optional(&ip)? else {
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
        let mut advance = self.scan(log, index, log_len, available, scratch, budget)?;
        let cut = log_len.saturating_sub(before) > budget;
        if cut
            && self.pos == before
            && budget < SCAN_BUDGET
            && matches!(advance, Advance::Waiting(_))
        {
            let log = File::open(&lp)?;
            let index = File::open(&ip)?;
            advance = self.scan(log, index, log_len, available, scratch, SCAN_BUDGET)?;
        }
        if advance == Advance::UpToDate {
            advance = self.index_ahead_check(&lp, log_len, index_len);
        }
        Ok(outcome(advance))
    }

    /// The log is verified to its end: is the index ahead of it? The server writes a
    /// batch to the log before its index entries, so entries past the last message
    /// while the log keeps its length (it is stat'ed again after the index) describe
    /// messages that are not there. Seen twice with the same lengths (on the next
    /// pass), it is damage; once, it may still be a write in flight.
    fn index_ahead_check(&mut self, lp: &Path, log_len: u64, index_len: Option<u64>) -> Advance {
        let expected = self.messages().saturating_mul(ENTRY_LEN as u64);
        let entries = index_len.unwrap_or(0);
        let log_still = std::fs::metadata(lp).map(|m| m.len()).ok();
        if entries <= expected || log_still != Some(log_len) {
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
        mut log: File,
        mut index: File,
        log_len: u64,
        available: u64,
        scratch: &mut ScanBuffer,
        budget: u64,
    ) -> io::Result<Advance> {
        let start = self.key.start_offset;
        log.seek(SeekFrom::Start(self.pos))?;
        index.seek(SeekFrom::Start(self.messages() * ENTRY_LEN as u64))?;
        let from = self.pos;
        let want = (log_len - self.pos).min(budget);
        // The budget, not the file, ends this read: a frame cut there is not a tail.
        let cut_short = want < log_len.saturating_sub(self.pos);
        let mut check = IndexCheck {
            verifier: IndexVerifier::new(index, available.saturating_mul(ENTRY_LEN as u64), start),
            segment_start: start,
            declined: None,
        };
        let scanned = scan_log_with(
            log.take(want),
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

    /// The `Sealed` facts when the segment is complete: the scan reached the end of the
    /// log and the index has exactly one entry per message.
    pub fn seal_check(&mut self, dir: &Path, scratch: &mut ScanBuffer) -> io::Result<SealCheck> {
        let out = self.advance(dir, scratch)?;
        match out.advance {
            Advance::UpToDate => {}
            Advance::Partial => return Ok(SealCheck::Partial),
            Advance::Gone => return Ok(SealCheck::NotYet("the log is gone".into())),
            Advance::Waiting(why) | Advance::Anomaly(why) => return Ok(SealCheck::NotYet(why)),
            Advance::Stalled => {
                return Ok(SealCheck::NotYet(
                    self.anomaly.as_deref().unwrap_or_default().to_string(),
                ));
            }
        }
        let Some(index_len) = out.index_len else {
            return Ok(SealCheck::NotYet("the index file is missing".into()));
        };
        let expected = self.messages() * ENTRY_LEN as u64;
        if index_len != expected {
            return Ok(SealCheck::NotYet(format!(
                "index has {index_len} bytes for {} messages ({expected} expected)",
                self.messages()
            )));
        }
        if self.last.is_none() && self.messages() > 0 {
            match read_last_message(dir, &self.key, self.messages(), self.pos)? {
                Some(last) => self.last = Some(last),
                None => {
                    return Ok(SealCheck::NotYet(
                        "the last message does not match its index entries".into(),
                    ))
                }
            }
        }
        Ok(SealCheck::Complete(SealFacts {
            log_len: self.pos,
            index_len,
            last: self.last,
        }))
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

fn read_entry(mut f: &File, n: u64) -> io::Result<IndexEntry> {
    f.seek(SeekFrom::Start(n * ENTRY_LEN as u64))?;
    let mut b = [0u8; ENTRY_LEN];
    f.read_exact(&mut b)?;
    Ok(IndexEntry::decode(&b))
}

/// Reads back the last of `count` messages ending at `end`, using the index to find
/// where it starts; `None` when frame, index and checksum disagree.
fn read_last_message(
    dir: &Path,
    key: &SegmentKey,
    count: u64,
    end: u64,
) -> io::Result<Option<LastMessage>> {
    let index = File::open(index_path(dir, key))?;
    let start = if count >= 2 {
        u64::from(read_entry(&index, count - 2)?.position)
    } else {
        0
    };
    let Some(offset) = key.start_offset.checked_add(count - 1) else {
        return Ok(None);
    };
    let mut log = File::open(log_path(dir, key))?;
    let last = read_back_message(&mut log, start, end, offset, Proof::ValidFrame)?;
    Ok(last.map(|m| LastMessage {
        offset: m.offset,
        checksum: m.checksum,
        start: m.start,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use journal::PartitionId;
    use recovery::message::{frame_checksum, HEADER_LEN};
    use std::io::Write;

    /// An Iggy 0.6 message frame (test data, encoded independently of the scanner).
    pub(crate) fn frame(offset: u64, payload: usize) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[8..24].copy_from_slice(&(u128::from(offset) + 1).to_le_bytes());
        b[24..32].copy_from_slice(&offset.to_le_bytes());
        b[32..40].copy_from_slice(&(1000 + offset).to_le_bytes());
        b[40..48].copy_from_slice(&(999 + offset).to_le_bytes());
        b[52..56].copy_from_slice(&(payload as u32).to_le_bytes());
        b.extend((0..payload).map(|i| (i as u8).wrapping_mul(31).wrapping_add(offset as u8)));
        let sum = frame_checksum(&b).unwrap();
        b[..8].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Appends messages like the server: the whole batch to the log, then its entries.
    pub(crate) struct SegWriter {
        pub dir: PathBuf,
        pub key: SegmentKey,
        pub log_len: u64,
        pub next: u64,
    }

    impl SegWriter {
        pub(crate) fn create(dir: &Path, key: SegmentKey) -> Self {
            std::fs::create_dir_all(dir).unwrap();
            File::create(log_path(dir, &key)).unwrap();
            File::create(index_path(dir, &key)).unwrap();
            Self {
                dir: dir.to_path_buf(),
                key,
                log_len: 0,
                next: key.start_offset,
            }
        }

        pub(crate) fn log_only(&mut self, n: u64, payload: usize) -> Vec<u8> {
            let mut log = Vec::new();
            let mut index = Vec::new();
            for _ in 0..n {
                let f = frame(self.next, payload);
                let meta = MessageMeta {
                    offset: self.next,
                    start: self.log_len,
                    end: self.log_len + f.len() as u64,
                    timestamp: 1000 + self.next,
                    checksum: 0,
                };
                index.extend_from_slice(
                    &IndexEntry::for_message(&meta, self.key.start_offset)
                        .unwrap()
                        .encode(),
                );
                self.log_len = meta.end;
                self.next += 1;
                log.extend_from_slice(&f);
            }
            self.append_log(&log);
            index
        }

        pub(crate) fn append_log(&self, bytes: &[u8]) {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(log_path(&self.dir, &self.key))
                .unwrap();
            f.write_all(bytes).unwrap();
        }

        pub(crate) fn append_index(&self, bytes: &[u8]) {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(index_path(&self.dir, &self.key))
                .unwrap();
            f.write_all(bytes).unwrap();
        }

        pub(crate) fn append(&mut self, n: u64, payload: usize) {
            let index = self.log_only(n, payload);
            self.append_index(&index);
        }
    }

    fn key() -> SegmentKey {
        PartitionId::new(0, 0, 0).segment(100)
    }

    #[test]
    fn verifies_only_new_bytes_and_waits_for_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegWriter::create(dir.path(), key());
        let mut t = Tracker::new(key());
        assert_eq!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::UpToDate
        );
        w.append(3, 10);
        assert_eq!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::UpToDate
        );
        assert_eq!((t.pos, t.next_offset), (w.log_len, 103));
        // Log written, index not yet: nothing verified past the index.
        let pending = w.log_only(2, 5);
        let before = t.pos;
        assert!(matches!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::Waiting(_)
        ));
        assert_eq!(t.pos, before);
        w.append_index(&pending);
        assert_eq!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::UpToDate
        );
        assert_eq!(t.messages(), 5);
        // Half a frame: a write in progress.
        let f = frame(w.next, 100);
        w.append_log(&f[..30]);
        assert!(matches!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::Waiting(_)
        ));
        assert!(t.anomaly.is_none());
        let check = t
            .clone()
            .seal_check(dir.path(), &mut verify_buffer())
            .unwrap();
        assert!(matches!(check, SealCheck::NotYet(_)), "{check:?}");
    }

    #[test]
    fn a_small_budget_steps_through_whole_messages_and_never_stalls() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegWriter::create(dir.path(), key());
        // 10 messages of about 1 KiB, then one of 8 KiB, then 10 small ones.
        w.append(10, 1000);
        w.append(1, 8000);
        w.append(10, 1000);
        let mut t = Tracker::new(key());
        let mut steps = Vec::new();
        loop {
            let before = t.pos;
            let advance = t
                .advance_within(dir.path(), &mut verify_buffer(), 2500)
                .unwrap()
                .advance;
            assert!(t.pos > before, "every step makes progress ({advance:?})");
            steps.push(t.pos - before);
            if advance == Advance::UpToDate {
                break;
            }
            // A frame the budget cut is not a torn tail.
            assert_eq!(advance, Advance::Partial);
        }
        assert_eq!((t.pos, t.messages()), (w.log_len, 21));
        assert!(t.anomaly.is_none());
        // Steps stay within the budget, except the one that had to take the 8 KiB
        // message whole.
        assert_eq!(steps.iter().filter(|&&n| n > 2500).count(), 1, "{steps:?}");
    }

    #[test]
    fn seals_with_exact_facts_and_resumes_from_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegWriter::create(dir.path(), key());
        w.append(4, 20);
        let mut t = Tracker::new(key());
        let SealCheck::Complete(facts) = t.seal_check(dir.path(), &mut verify_buffer()).unwrap()
        else {
            panic!("not sealable")
        };
        assert_eq!(facts.log_len, w.log_len);
        assert_eq!(facts.index_len, 64);
        assert_eq!(facts.last.map(|l| l.offset), Some(103));

        // A tracker resumed at the end from a checkpoint reads the last message back.
        let cp = CheckpointState {
            seq: 1,
            valid_len: t.pos,
            next_offset: 104,
        };
        let mut r = Tracker::resumed(key(), Some(cp));
        assert_eq!(
            r.seal_check(dir.path(), &mut verify_buffer()).unwrap(),
            SealCheck::Complete(facts)
        );

        // A checkpoint that does not fit the files restarts from 0.
        let bad = CheckpointState {
            seq: 1,
            valid_len: t.pos - 1,
            next_offset: 104,
        };
        let mut r = Tracker::resumed(key(), Some(bad));
        let out = r.advance(dir.path(), &mut verify_buffer()).unwrap();
        assert!(out.restarted);
        assert_eq!(out.advance, Advance::UpToDate);
        assert_eq!(r.pos, w.log_len);
    }

    #[test]
    fn damage_stops_the_tracker_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegWriter::create(dir.path(), key());
        w.append(2, 20);
        let mut bad = frame(w.next, 20);
        bad[60] ^= 0xff;
        w.append_log(&bad);
        w.append(1, 20);
        let mut t = Tracker::new(key());
        let out = t.advance(dir.path(), &mut verify_buffer()).unwrap();
        assert!(matches!(out.advance, Advance::Anomaly(ref r) if r.contains("checksum")));
        assert_eq!(t.messages(), 2);
        assert_eq!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::Stalled
        );

        // An index entry that does not match its message.
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegWriter::create(dir.path(), key());
        let mut index = w.log_only(2, 8);
        index[16 + 4] ^= 1;
        w.append_index(&index);
        let mut t = Tracker::new(key());
        assert!(matches!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::Anomaly(ref r) if r.contains("index entry 1")
        ));
        assert_eq!(t.messages(), 1);
    }

    #[test]
    fn an_index_longer_than_the_log_is_not_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegWriter::create(dir.path(), key());
        w.append(2, 20);
        w.append_index(&[0u8; 16]);
        let mut t = Tracker::new(key());
        // Once: maybe a write in flight. Twice with the same lengths: ghost entries.
        let check = t.seal_check(dir.path(), &mut verify_buffer()).unwrap();
        assert!(
            matches!(check, SealCheck::NotYet(ref why) if why.contains("index ahead")),
            "{check:?}"
        );
        assert_eq!(t.finding, None);
        let check = t.seal_check(dir.path(), &mut verify_buffer()).unwrap();
        assert!(
            matches!(check, SealCheck::NotYet(ref why) if why.contains("index has 48 bytes")),
            "{check:?}"
        );
        assert_eq!(
            t.finding,
            Some(Finding {
                kind: AlertKind::GhostIndexEntries,
                byte: 32,
                in_index: true
            })
        );
    }

    #[test]
    fn each_stop_names_its_alert() {
        // A batch of the wrong offsets, as the race writes it.
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegWriter::create(dir.path(), key());
        w.append(2, 20);
        let at = w.log_len;
        w.next += 50;
        w.append(2, 20);
        let mut t = Tracker::new(key());
        assert!(matches!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::Anomaly(ref r) if r.contains("message offset 152 where 102 was expected")
        ));
        assert_eq!(
            t.finding,
            Some(Finding {
                kind: AlertKind::MisplacedBatch,
                byte: at,
                in_index: false
            })
        );
        // Zeros, then data.
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegWriter::create(dir.path(), key());
        w.append(2, 20);
        let at = w.log_len;
        w.append_log(&[0u8; 100]);
        w.log_len += 100;
        w.append(2, 20);
        let mut t = Tracker::new(key());
        assert!(matches!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::Anomaly(_)
        ));
        assert_eq!(
            t.finding.map(|f| (f.kind, f.byte)),
            Some((AlertKind::ZeroHole, at))
        );
        // A message written in part is a write in flight, not damage.
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegWriter::create(dir.path(), key());
        w.append(2, 20);
        w.append_log(&frame(w.next, 40)[..30]);
        let mut t = Tracker::new(key());
        assert!(matches!(
            t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
            Advance::Waiting(_)
        ));
        assert_eq!(t.finding, None);
    }
}
