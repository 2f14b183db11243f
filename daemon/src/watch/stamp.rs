//! Stamping sealed segments, so that recovery can trust them without a read.
//!
//! Recovery after a crash trusts a segment the sidecar sealed with one read of its
//! last message; on a cold cache that read is a trip to the disk per sealed segment,
//! most of a guided run's reads. Once a sealed segment has settled, the sidecar
//! journals its files' stamps (`journal::stamp`); a guided run that lists the same
//! stamps reads nothing of it.
//!
//! A stamp vouches for what is on the disk, taken in this order:
//! 1. `fdatasync` of both files: the journal outlives a power loss, so the bytes it
//!    vouches for must too (nothing is changed: the server's pending writes reach the
//!    disk sooner than its own flush would have sent them);
//! 2. `stat` of both: the lengths must be the seal's, and both files unchanged for
//!    [`Settings::stamp_margin`](crate::watch::core::Settings) (a change within the
//!    same tick of the file system's clock would not move the times again);
//! 3. the last message read back: still the journaled one, as a guided run would
//!    have checked it;
//! 4. `stat` again: nothing changed meanwhile.
//!
//! Only segments this sidecar sealed are stamped, [`STAMP_AFTER`] after their files
//! were last written ([`due`]): a segment the server sealed long before the sidecar
//! started, sealed by the start-up reconciliation or the coverage pass, is stamped
//! at once, so a crash soon after start leaves nothing of it to read. The others
//! are read back by recovery as before.

use crate::watch::tracker::SealFacts;
use journal::{FileStamp, SegmentFile, SegmentKey};
use recovery::fsops::open_read;
use recovery::read_back::{read_back_message, Proof};
use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long after its seal a segment is stamped: by then the server's last writes
/// to it have usually been written back by the kernel (30 s by default), so the sync
/// costs nothing.
pub const STAMP_AFTER: Duration = Duration::from_secs(30);
/// How long a file must be unchanged before its stamp is taken.
pub const STAMP_MARGIN: Duration = Duration::from_secs(2);
/// Attempts for a segment whose files are not settled yet.
const ATTEMPTS: u32 = 3;
/// Segments waiting at most: a server that seals faster than they are stamped (tiny
/// segments under a heavy load) leaves the rest unstamped, read back by recovery as
/// before, rather than growing the queue without bound.
const MAX_WAITING: usize = 10_000;

/// When to stamp `key`'s files under `dir`, sealed at `now`: [`STAMP_AFTER`] (or
/// `after`) past the newer of their modification times, so that the server's last
/// writes have been written back and the sync costs nothing, however long ago that
/// was. A file that cannot be `stat`ed (gone, say) leaves the full delay: the
/// attempt then finds out.
pub fn due(dir: &Path, key: SegmentKey, now: Instant, after: Duration) -> Instant {
    let age = |file| {
        let path = key.path_in(dir, file);
        let modified = recovery::fsops::metadata(&path).ok()??.modified().ok()?;
        SystemTime::now().duration_since(modified).ok()
    };
    let settled_for = age(SegmentFile::Log)
        .zip(age(SegmentFile::Index))
        .map_or(Duration::ZERO, |(log, index)| log.min(index));
    now + after.saturating_sub(settled_for)
}

/// The outcome of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    Stamps {
        log: FileStamp,
        index: FileStamp,
    },
    /// Changed too recently: try again later.
    NotSettled,
    /// No longer what the seal verified: not stamped (recovery reads it back).
    Changed(&'static str),
}

/// Takes the stamps of `key`'s files under `dir` (the partition folder), sealed
/// with `facts`, in the order the module describes.
pub fn take(dir: &Path, key: SegmentKey, facts: &SealFacts, margin: Duration) -> io::Result<Taken> {
    let log = open_read(&key.path_in(dir, SegmentFile::Log))?;
    let index = open_read(&key.path_in(dir, SegmentFile::Index))?;
    log.sync_data()?;
    index.sync_data()?;
    let stamps = || -> io::Result<(FileStamp, FileStamp)> {
        Ok((
            FileStamp::of(&log.metadata()?),
            FileStamp::of(&index.metadata()?),
        ))
    };
    let before = stamps()?;
    if before.0.len != facts.log_len || before.1.len != facts.index_len {
        return Ok(Taken::Changed(
            "its files no longer have the sealed lengths",
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    if !before.0.settled(now, margin) || !before.1.settled(now, margin) {
        return Ok(Taken::NotSettled);
    }
    match facts.last {
        Some(last) => {
            let mut reader = &log;
            let proof = Proof::RecordedChecksum(last.checksum);
            let back =
                read_back_message(&mut reader, last.start, facts.log_len, last.offset, proof)?;
            if back.is_none() {
                return Ok(Taken::Changed("its last message is not the sealed one"));
            }
        }
        None if facts.log_len != 0 => return Ok(Taken::Changed("no last message was sealed")),
        None => {}
    }
    if stamps()? != before {
        return Ok(Taken::Changed("its files changed while they were stamped"));
    }
    Ok(Taken::Stamps {
        log: before.0,
        index: before.1,
    })
}

/// A sealed segment and what its `Sealed` record journaled.
pub type Sealed = (SegmentKey, SealFacts);

/// Sealed segments waiting to be stamped, in the order they are due.
#[derive(Debug, Default)]
pub struct StampQueue {
    waiting: VecDeque<(Instant, u32, Sealed)>,
}

impl StampQueue {
    pub fn push(&mut self, due: Instant, sealed: Sealed) {
        self.push_attempt(due, 0, sealed);
    }

    fn push_attempt(&mut self, due: Instant, attempts: u32, sealed: Sealed) {
        if self.waiting.len() >= MAX_WAITING {
            return;
        }
        let at = self.waiting.partition_point(|(d, ..)| *d <= due);
        self.waiting.insert(at, (due, attempts, sealed));
    }

    /// The next segment due at `now`, with its attempts so far.
    pub fn next_due(&mut self, now: Instant) -> Option<(u32, Sealed)> {
        if self.waiting.front().is_some_and(|(d, ..)| *d <= now) {
            self.waiting
                .pop_front()
                .map(|(_, attempts, sealed)| (attempts, sealed))
        } else {
            None
        }
    }

    /// Tries `sealed` again at `due`, unless it has had its attempts.
    pub fn retry(&mut self, due: Instant, attempts: u32, sealed: Sealed) {
        if attempts + 1 < ATTEMPTS {
            self.push_attempt(due, attempts + 1, sealed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal::PartitionId;

    fn facts(start: u64) -> Sealed {
        let facts = SealFacts {
            log_len: 0,
            index_len: 0,
            last: None,
        };
        (PartitionId::new(0, 0, 0).segment(start), facts)
    }

    #[test]
    fn a_segment_is_due_its_delay_after_its_files_were_last_written() {
        let tmp = tempfile::tempdir().unwrap();
        let key = PartitionId::new(0, 0, 0).segment(0);
        let now = Instant::now();
        let after = Duration::from_secs(30);
        // Missing files: the full delay.
        assert_eq!(due(tmp.path(), key, now, after), now + after);
        for file in [SegmentFile::Log, SegmentFile::Index] {
            std::fs::write(key.path_in(tmp.path(), file), b"").unwrap();
        }
        // Just written: nearly the full delay.
        let fresh = due(tmp.path(), key, now, after);
        assert!(fresh > now + after - Duration::from_secs(5), "{fresh:?}");
        // Last written a minute ago: due at once.
        let old = SystemTime::now() - Duration::from_secs(60);
        let log = std::fs::File::options()
            .write(true)
            .open(key.path_in(tmp.path(), SegmentFile::Log))
            .unwrap();
        log.set_modified(old).unwrap();
        // The index was written 20 s ago: due 10 s from now.
        let index = std::fs::File::options()
            .write(true)
            .open(key.path_in(tmp.path(), SegmentFile::Index))
            .unwrap();
        index
            .set_modified(SystemTime::now() - Duration::from_secs(20))
            .unwrap();
        let mixed = due(tmp.path(), key, now, after);
        assert!(mixed <= now + Duration::from_secs(10), "{mixed:?}");
        assert!(mixed > now + Duration::from_secs(5), "{mixed:?}");
        index.set_modified(old).unwrap();
        assert_eq!(due(tmp.path(), key, now, after), now);
    }

    #[test]
    fn the_queue_hands_out_what_is_due_in_order_and_gives_up_after_its_attempts() {
        let t = Instant::now();
        let mut q = StampQueue::default();
        q.push(t + Duration::from_secs(2), facts(2));
        q.push(t + Duration::from_secs(1), facts(1));
        q.push(t + Duration::from_secs(9), facts(9));
        assert_eq!(q.next_due(t), None);
        let later = t + Duration::from_secs(5);
        assert_eq!(q.next_due(later), Some((0, facts(1))));
        assert_eq!(q.next_due(later), Some((0, facts(2))));
        assert_eq!(q.next_due(later), None);
        let mut attempts = 0;
        loop {
            q.retry(t, attempts, facts(3));
            match q.next_due(t) {
                Some((a, f)) if f == facts(3) => attempts = a,
                None => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(attempts + 1, ATTEMPTS);
        assert_eq!(q.next_due(t + Duration::from_secs(60)), Some((0, facts(9))));
        for i in 0..MAX_WAITING as u64 + 5 {
            q.push(t, facts(i));
        }
        assert_eq!(q.waiting.len(), MAX_WAITING);
    }
}
