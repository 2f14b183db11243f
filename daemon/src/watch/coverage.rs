//! The background coverage pass: the bytes of open segments that the journal does
//! not vouch for yet, verified at a bounded byte rate and checkpointed as they go.
//!
//! Without it, an open segment that receives no writes is never read (the sidecar
//! verifies what is written), so its bytes stay unvouched and a guided `recover` scans
//! it whole. Sealed segments need no pass: start-up reconciliation verifies every
//! segment the journal has not seen sealed. After a restart the pass resumes at the
//! journaled checkpoints, so each byte is read once.
//!
//! The rate is a token bucket (`coverage_mib_per_sec`), not an I/O priority: the
//! `none` scheduler of most NVMe disks ignores the idle class. Bytes the pass reads
//! that were not in the page cache are dropped from it afterwards
//! (`POSIX_FADV_DONTNEED`), so that old data read once does not push the server's hot
//! tails out; a range that was cached before stays cached.

use journal::SegmentKey;
use std::collections::VecDeque;
use std::fs::File;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Log bytes one step reads: small, so that the rate stays smooth and the core
/// returns to its inbox quickly.
pub const STEP: u64 = 1 << 20;

/// What the pass has done, for `status` (the core writes, others read).
#[derive(Debug, Default)]
pub struct CoverageStatus {
    /// Bytes the journal did not vouch for when the pass (re)started.
    pub bytes_to_verify: AtomicU64,
    /// Bytes the pass has verified since.
    pub bytes_verified: AtomicU64,
    /// Open segments the pass has still to reach the end of.
    pub segments_left: AtomicU64,
}

/// The queue of segments to cover and the rate limit.
#[derive(Debug)]
pub struct Coverage {
    queue: VecDeque<SegmentKey>,
    /// Bytes per second; 0: no limit, and no pass (the core verifies at once).
    rate: u64,
    /// Bytes that may be read now; negative after a step larger than the credit.
    credit: i128,
    refilled: Instant,
}

impl Coverage {
    pub fn new(rate: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            rate,
            credit: 0,
            refilled: Instant::now(),
        }
    }

    /// Whether the pass has a rate limit; without one, the core verifies open
    /// segments at once.
    pub fn throttled(&self) -> bool {
        self.rate > 0
    }

    /// Nothing queued.
    pub fn is_done(&self) -> bool {
        self.queue.is_empty()
    }

    /// Starts a pass over these segments, with the bytes each has left to verify.
    pub fn start(&mut self, segments: Vec<(SegmentKey, u64)>, status: &CoverageStatus) {
        if self.rate == 0 {
            return;
        }
        let total = segments.iter().map(|(_, left)| *left).sum();
        self.queue = segments
            .into_iter()
            .filter(|(_, left)| *left > 0)
            .map(|(k, _)| k)
            .collect();
        status.bytes_to_verify.store(total, Relaxed);
        status.bytes_verified.store(0, Relaxed);
        status.segments_left.store(self.queue.len() as u64, Relaxed);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled);
        self.refilled = now;
        let earned = (self.rate as u128).saturating_mul(elapsed.as_micros()) / 1_000_000;
        // At most one second's worth saved up: an idle spell is no licence for a burst.
        self.credit = (self.credit + earned as i128).min(self.rate as i128);
    }

    /// The segment to step next, if there is one and the rate allows a step now.
    pub fn next(&mut self, now: Instant) -> Option<SegmentKey> {
        self.refill(now);
        if self.credit <= 0 {
            return None;
        }
        self.queue.front().copied()
    }

    /// When a step is allowed again (`None`: nothing to do).
    pub fn due(&self, now: Instant) -> Option<Instant> {
        if self.queue.is_empty() || self.rate == 0 {
            return None;
        }
        if self.credit > 0 {
            return Some(now);
        }
        let micros = (-self.credit) as u128 * 1_000_000 / self.rate as u128 + 1;
        Some(self.refilled + Duration::from_micros(micros.min(u64::MAX as u128) as u64))
    }

    /// Accounts for a step of `read` bytes on the front segment; `done` when it needs
    /// no more steps (verified to its end, stopped at damage, or gone).
    pub fn stepped(&mut self, key: SegmentKey, read: u64, done: bool, status: &CoverageStatus) {
        self.credit -= read as i128;
        status.bytes_verified.fetch_add(read, Relaxed);
        if self.queue.front() == Some(&key) {
            self.queue.pop_front();
            if !done {
                // Round robin: one large segment does not hold the others back.
                self.queue.push_back(key);
            }
        }
        status.segments_left.store(self.queue.len() as u64, Relaxed);
    }
}

/// Whether the page at `pos` of `file` is in the page cache: a read that may not
/// wait for the disk (`RWF_NOWAIT`) succeeds only then.
pub fn cached(file: &File, pos: u64) -> bool {
    let mut byte = [0u8; 1];
    let mut bufs = [std::io::IoSliceMut::new(&mut byte)];
    rustix::io::preadv2(file, &mut bufs, pos, rustix::io::ReadWriteFlags::NOWAIT).is_ok()
}

/// Drops `[from, to)` of `file` from the page cache, once the pass has read it.
pub fn drop_cached(file: &File, from: u64, to: u64) {
    if let Some(len) = NonZeroU64::new(to.saturating_sub(from)) {
        // Advice only: when it fails, the bytes merely stay cached.
        let _ = rustix::fs::fadvise(file, from, Some(len), rustix::fs::Advice::DontNeed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal::PartitionId;

    fn key(p: u32, start: u64) -> SegmentKey {
        PartitionId::new(1, 1, p).segment(start)
    }

    #[test]
    fn the_rate_bounds_the_bytes_read_per_second() {
        let status = CoverageStatus::default();
        let mut c = Coverage::new(1000);
        c.start(vec![(key(1, 0), 5000)], &status);
        let t0 = c.refilled;
        // No credit yet at the start: the pass waits for its first tick.
        assert_eq!(c.next(t0), None);
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(c.next(t1), Some(key(1, 0)));
        c.stepped(key(1, 0), 2500, false, &status);
        // 2,000 bytes of debt at 1,000 bytes/s: two seconds before the next step.
        assert_eq!(c.next(t1 + Duration::from_millis(1999)), None);
        let due = c.due(t1 + Duration::from_millis(1999)).map(|d| d - t1);
        assert!(due
            .is_some_and(|d| d > Duration::from_millis(1999) && d <= Duration::from_millis(2001)));
        assert_eq!(c.next(t1 + Duration::from_millis(2001)), Some(key(1, 0)));
        assert_eq!(status.bytes_verified.load(Relaxed), 2500);
        assert_eq!(status.bytes_to_verify.load(Relaxed), 5000);
    }

    #[test]
    fn an_idle_spell_saves_up_at_most_one_second() {
        let status = CoverageStatus::default();
        let mut c = Coverage::new(1000);
        c.start(vec![(key(1, 0), 1 << 30)], &status);
        let later = c.refilled + Duration::from_secs(3600);
        assert!(c.next(later).is_some());
        assert_eq!(c.credit, 1000);
    }

    #[test]
    fn segments_take_turns_and_leave_when_done() {
        let status = CoverageStatus::default();
        let mut c = Coverage::new(1 << 30);
        c.start(
            vec![(key(1, 0), 10), (key(2, 0), 0), (key(3, 5), 10)],
            &status,
        );
        // Nothing left to verify in partition 2: not queued.
        assert_eq!(status.segments_left.load(Relaxed), 2);
        let t = c.refilled + Duration::from_secs(1);
        assert_eq!(c.next(t), Some(key(1, 0)));
        c.stepped(key(1, 0), 1, false, &status);
        assert_eq!(c.next(t), Some(key(3, 5)));
        c.stepped(key(3, 5), 10, true, &status);
        assert_eq!(c.next(t), Some(key(1, 0)));
        c.stepped(key(1, 0), 9, true, &status);
        assert_eq!(c.next(t), None);
        assert_eq!(c.due(t), None);
        assert_eq!(status.segments_left.load(Relaxed), 0);
    }

    #[test]
    fn a_rate_of_zero_turns_the_pass_off() {
        let status = CoverageStatus::default();
        let mut c = Coverage::new(0);
        c.start(vec![(key(1, 0), 10)], &status);
        assert_eq!(c.next(Instant::now() + Duration::from_secs(5)), None);
        assert_eq!(c.due(Instant::now()), None);
        assert_eq!(status.segments_left.load(Relaxed), 0);
    }

    #[test]
    fn read_data_not_cached_before_is_dropped_and_cached_data_stays() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cold");
        std::fs::write(&path, vec![7u8; 1 << 20])?;
        let file = File::open(&path)?;
        file.sync_all()?;
        drop_cached(&file, 0, 1 << 20);
        if cached(&file, 0) {
            // tmpfs and some overlays keep every page: nothing to observe here.
            return Ok(());
        }
        std::fs::read(&path)?;
        assert!(cached(&file, 0) && cached(&file, (1 << 20) - 1));
        // Advice: the kernel skips a page that is busy at that moment, which on a
        // loaded machine happened once in a parallel test run; so up to three times.
        let dropped = (0..3).any(|_| {
            drop_cached(&file, 0, 1 << 19);
            let gone = !cached(&file, 0);
            if !gone {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            gone
        });
        assert!(dropped);
        assert!(cached(&file, (1 << 20) - 1));
        Ok(())
    }
}
