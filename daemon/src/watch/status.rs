//! Counters the core publishes and the supervisor reads: systemd's `STATUS=`, the
//! control socket's `STATUS` answer, and the core's heartbeat for the watchdog.
//!
//! Plain atomics: the core writes, others read; no value depends on another, so no
//! ordering stronger than `Relaxed` is needed. The layout anomalies in force are a
//! small map behind a mutex, changed only when one appears or goes.

use crate::watch::alerts::AlertBoard;
use crate::watch::coverage::CoverageStatus;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Layout anomalies remembered by path; more are still counted and logged.
const MAX_LAYOUT_ANOMALIES: usize = 4096;

/// The layout anomalies in force: escaped path (relative to the data directory) →
/// what is wrong there (one word: `not-a-folder`, `unreadable`, `unwatchable`,
/// `missing`), and the newest one.
#[derive(Debug, Default)]
struct Layout {
    open: BTreeMap<String, &'static str>,
    newest: Option<String>,
}

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
    /// Anomalies seen: damaged segments, seals that never completed, and layout
    /// anomalies (each counted when it appears).
    pub anomalies: AtomicU64,
    layout: Mutex<Layout>,
    /// Segments waiting for their seal verification.
    pub sealing: AtomicU64,
    /// Open segments with bytes not verified yet.
    pub dirty: AtomicU64,
    pub ready: AtomicBool,
    pub released: AtomicBool,
    /// `state/log` holds an entry that stops iggy-server 0.6.0 at its next start.
    pub state_log_unreplayable: AtomicBool,
    /// Nothing to do: every event seen so far is handled.
    pub idle: AtomicBool,
    /// What the metrics export beside these counters (alerts by kind, journal
    /// flushes, checkpoint lag): see `crate::metrics`.
    pub metrics: crate::metrics::SidecarMetrics,
    /// Alerts in force and counted (`alerts.rs`).
    pub alerts: AlertBoard,
    /// The background coverage pass (`coverage.rs`).
    pub coverage: CoverageStatus,
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
            layout: Mutex::new(Layout::default()),
            sealing: AtomicU64::new(0),
            dirty: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            released: AtomicBool::new(false),
            state_log_unreplayable: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            metrics: crate::metrics::SidecarMetrics::default(),
            alerts: AlertBoard::default(),
            coverage: CoverageStatus::default(),
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

    fn layout(&self) -> std::sync::MutexGuard<'_, Layout> {
        self.layout.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a layout anomaly at `rel` (an escaped path relative to the data
    /// directory); true when it is new (then counted in `anomalies`).
    pub fn layout_anomaly(&self, rel: &str, what: &'static str) -> bool {
        let mut layout = self.layout();
        if layout.open.get(rel) == Some(&what) {
            return false;
        }
        if layout.open.len() < MAX_LAYOUT_ANOMALIES || layout.open.contains_key(rel) {
            layout.open.insert(rel.to_string(), what);
        }
        layout.newest = Some(format!("{rel}:{what}"));
        Self::add(&self.anomalies, 1);
        true
    }

    /// Forgets the layout anomalies at `rel` and every path above it: `rel` was
    /// listed fine. True when one was in force.
    pub fn layout_resolved(&self, rel: &str) -> bool {
        let mut layout = self.layout();
        if layout.open.is_empty() {
            return false;
        }
        let above = |p: &str| {
            p == rel || p == "." || rel.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
        };
        let before = layout.open.len();
        layout.open.retain(|p, _| !above(p));
        let resolved = layout.open.len() != before;
        let newest_open = layout.newest.as_ref().is_some_and(|n| {
            n.rsplit_once(':')
                .is_some_and(|(p, _)| layout.open.contains_key(p))
        });
        if !newest_open {
            // Another one still in force, if any.
            layout.newest = layout
                .open
                .iter()
                .next_back()
                .map(|(p, what)| format!("{p}:{what}"));
        }
        resolved
    }

    /// Layout anomalies in force.
    pub fn layout_anomalies(&self) -> usize {
        self.layout().open.len()
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

    /// One human line for systemd's `STATUS=`: the alerts in force first, so that
    /// `systemctl status` shows them.
    pub fn human(&self) -> String {
        let mut text = String::new();
        if self.state_log_unreplayable.load(Relaxed) {
            text.push_str(
                "STATE-LOG holds an entry that stops iggy-server 0.6.0 at its next start; \
                 run `iggy-warden check`. ",
            );
        }
        if let Some(newest) = self.alerts.newest() {
            let n = self.alerts.active_count();
            text.push_str(&format!(
                "ALERT {} in segment {} ({} at byte {}){}; run `iggy-warden status`. ",
                newest.kind,
                newest.segment,
                newest.file,
                newest.byte,
                if n > 1 {
                    format!(" and {} more", n - 1)
                } else {
                    String::new()
                }
            ));
        }
        text.push_str(&format!(
            "{}: {} partitions watched, {} events journaled, {} anomalies",
            self.state(),
            self.partitions.load(Relaxed),
            self.journaled.load(Relaxed),
            self.anomalies.load(Relaxed)
        ));
        let layout = self.layout();
        if let Some(newest) = &layout.newest {
            text.push_str(&format!(
                "; {} in the layout (newest: {newest})",
                layout.open.len()
            ));
        }
        text
    }

    /// `key=value` pairs, for the control socket.
    pub fn line(&self) -> String {
        format!(
            "state={} partitions={} segments={} journaled={} events={} reconciliations={} \
             overflows={} anomalies={} layout_anomalies={} sealing={} dirty={} idle={} \
             alerts={} alerts_raised={} coverage_segments_left={} coverage_bytes_verified={} \
             state_log_unreplayable={}{}{}",
            self.state(),
            self.partitions.load(Relaxed),
            self.segments.load(Relaxed),
            self.journaled.load(Relaxed),
            self.events.load(Relaxed),
            self.reconciliations.load(Relaxed),
            self.overflows.load(Relaxed),
            self.anomalies.load(Relaxed),
            self.layout_anomalies(),
            self.sealing.load(Relaxed),
            self.dirty.load(Relaxed),
            self.idle.load(Relaxed),
            self.alerts.active_count(),
            self.alerts.raised_total(),
            self.coverage.segments_left.load(Relaxed),
            self.coverage.bytes_verified.load(Relaxed),
            self.state_log_unreplayable.load(Relaxed),
            self.alerts.newest().map_or(String::new(), |a| format!(
                " alert={}:{}",
                a.kind, a.segment
            )),
            // Escaped, with spaces too, so that the line stays `key=value` pairs.
            self.layout()
                .newest
                .as_ref()
                .map_or(String::new(), |n| format!(
                    " anomaly={}",
                    n.replace(' ', "\\x20")
                ))
        )
    }
}

impl Status {
    /// Everything `STATUS` says, and the alerts in force, as one JSON object (the
    /// control socket's `STATUS-JSON`, read by `iggy-warden status`).
    pub fn json(&self) -> Value {
        let counts = |m: BTreeMap<crate::watch::alerts::AlertKind, u64>| {
            m.into_iter()
                .map(|(k, n)| (k.name().to_string(), Value::from(n)))
                .collect::<serde_json::Map<String, Value>>()
        };
        let layout = self.layout();
        json!({
            "state": self.state(),
            "partitions": self.partitions.load(Relaxed),
            "segments": self.segments.load(Relaxed),
            "journaled": self.journaled.load(Relaxed),
            "events": self.events.load(Relaxed),
            "reconciliations": self.reconciliations.load(Relaxed),
            "overflows": self.overflows.load(Relaxed),
            "anomalies": self.anomalies.load(Relaxed),
            "layout_anomalies": layout.open.len(),
            "newest_layout_anomaly": layout.newest,
            "sealing": self.sealing.load(Relaxed),
            "dirty": self.dirty.load(Relaxed),
            "idle": self.idle.load(Relaxed),
            "state_log_unreplayable": self.state_log_unreplayable.load(Relaxed),
            "alerts_active": counts(self.alerts.active_by_kind()),
            "alerts_raised": counts(self.alerts.raised_by_kind()),
            "alerts": self.alerts.active().iter().map(|a| a.to_json()).collect::<Vec<_>>(),
            "coverage": {
                "bytes_to_verify": self.coverage.bytes_to_verify.load(Relaxed),
                "bytes_verified": self.coverage.bytes_verified.load(Relaxed),
                "segments_left": self.coverage.segments_left.load(Relaxed),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_anomalies_are_counted_once_and_shown_until_resolved() {
        let s = Status::default();
        assert!(s.layout_anomaly("streams/0/topics/0/partitions/1", "not-a-folder"));
        assert!(!s.layout_anomaly("streams/0/topics/0/partitions/1", "not-a-folder"));
        assert!(s.layout_anomaly("streams/1 x", "unreadable"));
        assert_eq!(s.anomalies.load(Relaxed), 2);
        assert_eq!(s.layout_anomalies(), 2);
        let line = s.line();
        assert!(line.contains("layout_anomalies=2"), "{line}");
        assert!(
            line.ends_with(" anomaly=streams/1\\x20x:unreadable"),
            "{line}"
        );
        assert!(s.human().contains("2 in the layout"), "{}", s.human());
        // Listing a partition folder fine clears it and anything above it.
        assert!(s.layout_resolved("streams/1 x/topics/0/partitions/0"));
        assert!(!s.layout_resolved("streams/1 x/topics/0/partitions/0"));
        assert!(s.layout_resolved("streams/0/topics/0/partitions/1"));
        assert_eq!(s.layout_anomalies(), 0);
        assert!(!s.line().contains("anomaly="));
        assert_eq!(s.anomalies.load(Relaxed), 2);
    }
}
