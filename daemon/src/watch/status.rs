//! Counters the core publishes and the supervisor reads: systemd's `STATUS=`, the
//! control socket's `STATUS` answer, and the core's heartbeat for the watchdog.
//!
//! Plain atomics: the core writes, others read; no value depends on another, so no
//! ordering stronger than `Relaxed` is needed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Status {
    started: Instant,
    /// Milliseconds since `started` when the core last proved it is alive.
    heartbeat_ms: AtomicU64,
    pub partitions: AtomicU64,
    pub segments: AtomicU64,
    /// Records appended to the journal by this process.
    pub journaled: AtomicU64,
    /// inotify events received.
    pub events: AtomicU64,
    /// Full reconciliations done (the start-up one included).
    pub reconciliations: AtomicU64,
    /// Full reconciliations forced by a gap: queue overflow, watcher errors.
    pub overflows: AtomicU64,
    pub anomalies: AtomicU64,
    /// Segments waiting for their seal verification.
    pub sealing: AtomicU64,
    /// Open segments with bytes not verified yet.
    pub dirty: AtomicU64,
    pub ready: AtomicBool,
    pub released: AtomicBool,
    /// Nothing to do: every event seen so far is handled.
    pub idle: AtomicBool,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
            partitions: AtomicU64::new(0),
            segments: AtomicU64::new(0),
            journaled: AtomicU64::new(0),
            events: AtomicU64::new(0),
            reconciliations: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
            anomalies: AtomicU64::new(0),
            sealing: AtomicU64::new(0),
            dirty: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            released: AtomicBool::new(false),
            idle: AtomicBool::new(false),
        }
    }
}

impl Status {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn beat(&self) {
        self.heartbeat_ms.store(self.now_ms(), Relaxed);
    }

    /// Time since the core's last heartbeat.
    pub fn since_beat(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.heartbeat_ms.load(Relaxed)),
        )
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }

    fn state(&self) -> &'static str {
        if self.released.load(Relaxed) {
            "released"
        } else if self.ready.load(Relaxed) {
            "watching"
        } else {
            "reconciling"
        }
    }

    /// One human line for systemd's `STATUS=`.
    pub fn human(&self) -> String {
        format!(
            "{}: {} partitions watched, {} events journaled, {} anomalies",
            self.state(),
            self.partitions.load(Relaxed),
            self.journaled.load(Relaxed),
            self.anomalies.load(Relaxed)
        )
    }

    /// `key=value` pairs, for the control socket.
    pub fn line(&self) -> String {
        format!(
            "state={} partitions={} segments={} journaled={} events={} reconciliations={} \
             overflows={} anomalies={} sealing={} dirty={} idle={}",
            self.state(),
            self.partitions.load(Relaxed),
            self.segments.load(Relaxed),
            self.journaled.load(Relaxed),
            self.events.load(Relaxed),
            self.reconciliations.load(Relaxed),
            self.overflows.load(Relaxed),
            self.anomalies.load(Relaxed),
            self.sealing.load(Relaxed),
            self.dirty.load(Relaxed),
            self.idle.load(Relaxed)
        )
    }
}
