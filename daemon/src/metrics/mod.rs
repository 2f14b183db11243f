//! Prometheus metrics of the sidecar, in the OpenMetrics text format
//! (`prometheus-client`), served only when configured: on `metrics_listen` over HTTP
//! (`http.rs`), and/or as a node_exporter textfile at `metrics_textfile`, written
//! atomically (`textfile.rs`).
//!
//! - [`SidecarMetrics`] holds what the sidecar's threads update that its `Status`
//!   counters do not: the last journal flush, and the checkpoint lag
//!   and coverage snapshot the core computes from its model (`watch/metrics.rs`).
//! - `recover_result.rs` is the `last-recover.json` that `recover` writes and the
//!   sidecar exports.
//! - `exposition.rs` encodes, and converts to the older Prometheus text format for
//!   clients that do not ask for OpenMetrics (node_exporter's textfile collector).
//!
//! Per-partition series are capped: the worst [`Settings::top_partitions`]
//! partitions, plus totals over all of them.

pub mod exposition;
pub mod http;
pub mod recover_result;
pub mod textfile;

use journal::PartitionId;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Default refresh of the computed metrics (lag, sizes, the recover record) and of
/// the textfile.
pub const DEFAULT_INTERVAL_MS: u64 = 5000;

/// Default number of partitions with series of their own.
pub const DEFAULT_TOP_PARTITIONS: usize = 10;

/// Most partitions with series of their own, whatever the configuration says.
pub const MAX_TOP_PARTITIONS: usize = 1000;

/// Where and how often metrics are exported (config keys `metrics_listen`,
/// `metrics_textfile`, `metrics_interval_ms`, `metrics_top_partitions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub listen: Option<SocketAddr>,
    pub textfile: Option<PathBuf>,
    pub interval: Duration,
    pub top_partitions: usize,
}

impl Settings {
    /// `None` when neither a listener nor a textfile is configured: no metrics.
    pub fn from_config(
        listen: Option<SocketAddr>,
        textfile: Option<PathBuf>,
        interval_ms: Option<u64>,
        top_partitions: Option<usize>,
        data_dir: &Path,
    ) -> anyhow::Result<Option<Self>> {
        if listen.is_none() && textfile.is_none() {
            return Ok(None);
        }
        let interval_ms = interval_ms.unwrap_or(DEFAULT_INTERVAL_MS);
        if interval_ms < 100 {
            anyhow::bail!("metrics_interval_ms must be at least 100");
        }
        let top_partitions = top_partitions.unwrap_or(DEFAULT_TOP_PARTITIONS);
        if top_partitions > MAX_TOP_PARTITIONS {
            anyhow::bail!("metrics_top_partitions must be at most {MAX_TOP_PARTITIONS}");
        }
        if let Some(file) = &textfile {
            textfile::check_path(file, data_dir)?;
        }
        Ok(Some(Self {
            listen,
            textfile,
            interval: Duration::from_millis(interval_ms),
            top_partitions,
        }))
    }
}

/// Checkpoint lag and coverage, computed by the core from its model of the segments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LagSnapshot {
    /// The worst partitions by bytes behind their last checkpoint, worst first, only
    /// those behind at all.
    pub top: Vec<(PartitionId, u64)>,
    /// Bytes behind the last checkpoint, over every partition.
    pub behind_total: u64,
    pub behind_max: u64,
    /// Partitions with bytes behind their last checkpoint.
    pub partitions_behind: u64,
    /// `.log` bytes of the live segments on disk.
    pub disk_bytes: u64,
    /// Of those, the bytes the journal vouches for: sealed segments whole, open ones
    /// up to their last checkpoint.
    pub vouched_bytes: u64,
}

/// One segment's share of a [`LagSnapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentBytes {
    pub partition: PartitionId,
    /// `.log` bytes on disk.
    pub disk: u64,
    /// Bytes the journal vouches for (at most `disk`).
    pub vouched: u64,
}

impl LagSnapshot {
    /// Sums `segments` per partition and keeps the `top` worst partitions. The
    /// segments of one partition must come together (the model's order).
    pub fn build(top: usize, segments: impl IntoIterator<Item = SegmentBytes>) -> Self {
        let mut snap = Self::default();
        let mut per_partition: Vec<(PartitionId, u64)> = Vec::new();
        for s in segments {
            let vouched = s.vouched.min(s.disk);
            let behind = s.disk - vouched;
            snap.disk_bytes = snap.disk_bytes.saturating_add(s.disk);
            snap.vouched_bytes = snap.vouched_bytes.saturating_add(vouched);
            match per_partition.last_mut() {
                Some((p, b)) if *p == s.partition => *b = b.saturating_add(behind),
                _ => per_partition.push((s.partition, behind)),
            }
        }
        per_partition.retain(|(_, b)| *b > 0);
        snap.partitions_behind = per_partition.len() as u64;
        snap.behind_total = per_partition
            .iter()
            .fold(0u64, |t, (_, b)| t.saturating_add(*b));
        snap.behind_max = per_partition.iter().map(|(_, b)| *b).max().unwrap_or(0);
        // Worst first; ties by partition, so the series are stable.
        let order =
            |a: &(PartitionId, u64), b: &(PartitionId, u64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        if per_partition.len() > top && top > 0 {
            per_partition.select_nth_unstable_by(top - 1, order);
        }
        per_partition.truncate(top);
        per_partition.sort_unstable_by(order);
        snap.top = per_partition;
        snap
    }

    /// Vouched bytes ÷ bytes on disk (1 when there are none).
    pub fn coverage(&self) -> f64 {
        if self.disk_bytes == 0 {
            1.0
        } else {
            self.vouched_bytes as f64 / self.disk_bytes as f64
        }
    }
}

/// What the sidecar's threads update for the metrics, beside its `Status` counters.
/// Cheap when metrics are off: the core computes no lag snapshot then.
#[derive(Debug, Default)]
pub struct SidecarMetrics {
    enabled: AtomicBool,
    /// Refresh interval of the lag snapshot, in ms, and partitions in it.
    interval_ms: AtomicU64,
    top_partitions: AtomicU64,
    next_lag: Mutex<Option<Instant>>,
    /// Duration of the journal's last append and flush, in microseconds.
    last_flush_us: AtomicU64,
    flushes: AtomicU64,
    lag: Mutex<Option<(SystemTime, LagSnapshot)>>,
}

impl SidecarMetrics {
    /// Turns the lag snapshot on (metrics are configured).
    pub fn enable(&self, settings: &Settings) {
        let ms = u64::try_from(settings.interval.as_millis()).unwrap_or(u64::MAX);
        self.interval_ms.store(ms, Relaxed);
        self.top_partitions
            .store(settings.top_partitions as u64, Relaxed);
        self.enabled.store(true, Relaxed);
    }

    /// For the core: `Some(top partitions)` when metrics are on and a lag snapshot
    /// is due (the first one at once), and the next one is then scheduled.
    pub fn lag_due(&self, now: Instant) -> Option<usize> {
        if !self.enabled() {
            return None;
        }
        let mut next = self.next_lag.lock().unwrap_or_else(|p| p.into_inner());
        if next.is_some_and(|at| now < at) {
            return None;
        }
        *next = Some(now + Duration::from_millis(self.interval_ms.load(Relaxed)));
        usize::try_from(self.top_partitions.load(Relaxed)).ok()
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// The journal appended and flushed a batch in `took`.
    pub fn journal_flushed(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.last_flush_us.store(us, Relaxed);
        self.flushes.fetch_add(1, Relaxed);
    }

    /// (last flush duration, flushes since start).
    pub fn journal_flush(&self) -> (Duration, u64) {
        (
            Duration::from_micros(self.last_flush_us.load(Relaxed)),
            self.flushes.load(Relaxed),
        )
    }

    pub fn publish_lag(&self, snapshot: LagSnapshot) {
        *self.lag.lock().unwrap_or_else(|p| p.into_inner()) = Some((SystemTime::now(), snapshot));
    }

    /// The newest lag snapshot and when it was taken.
    pub fn lag(&self) -> Option<(SystemTime, LagSnapshot)> {
        self.lag.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Bytes and regular files below a folder, counted without following symlinks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirSize {
    pub bytes: u64,
    pub files: u64,
    /// In the quarantine, repairs with saved bytes: a regular file named `bytes` or
    /// `….bytes` each (a folder of its own, or an entry of a run folder of the
    /// release before), except a run folder's packed `bytes`, which counts the
    /// repairs its manifest lists.
    pub saved_bytes: u64,
}

/// Entries a size walk looks at, at most: the quarantine of a long-lived
/// installation stays far below, and a walk must not hold the exporter up for long.
const MAX_WALK_ENTRIES: u64 = 1_000_000;

/// The size of everything below `dir`; `Ok(None)` when it does not exist. Symlinks
/// are counted as entries but never followed; unreadable subfolders are skipped.
pub fn dir_size(dir: &Path) -> std::io::Result<Option<DirSize>> {
    let top = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut size = DirSize::default();
    let mut seen = 0u64;
    let mut stack: Vec<PathBuf> = Vec::new();
    let mut visit = |entries: std::fs::ReadDir, stack: &mut Vec<PathBuf>, size: &mut DirSize| {
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                return false;
            }
            // The entry's own type: a symlink stays a symlink.
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                size.bytes = size.bytes.saturating_add(meta.len());
                size.files += 1;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name == "bytes" {
                    size.saved_bytes += saved_in(&entry.path());
                } else if name.ends_with(".bytes") {
                    size.saved_bytes += 1;
                }
            }
        }
        true
    };
    if !visit(top, &mut stack, &mut size) {
        return Ok(Some(size));
    }
    while let Some(next) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&next) {
            if !visit(entries, &mut stack, &mut size) {
                break;
            }
        }
    }
    Ok(Some(size))
}

/// Repairs whose bytes the file `bytes` holds: one in a repair's own folder; in a
/// run folder (packed, one file for the run) the repairs its manifest lists, none
/// while it has no readable manifest (a save a crash interrupted).
fn saved_in(bytes: &Path) -> u64 {
    use recovery::quarantine::{RunId, RunManifest, MANIFEST};
    let Some(folder) = bytes.parent() else {
        return 1;
    };
    let run = folder.file_name().and_then(|n| n.to_str());
    let Some(run) = run.and_then(RunId::parse) else {
        return 1;
    };
    let path = folder.join(MANIFEST);
    // As large as a manifest may be: a run of tens of thousands of repairs.
    let Ok(text) = recovery::fsops::read_small(&path, 64 << 20) else {
        return 0;
    };
    RunManifest::parse(&path, run, &text).map_or(0, |m| m.repairs.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(p: u32, disk: u64, vouched: u64) -> SegmentBytes {
        SegmentBytes {
            partition: PartitionId::new(0, 0, p),
            disk,
            vouched,
        }
    }

    #[test]
    fn lag_keeps_the_worst_partitions_and_totals_over_all() {
        // 10,000 partitions, partition i behind by i bytes (two segments each: one
        // sealed and whole, one open).
        let segments =
            (0..10_000u32).flat_map(|i| [seg(i, 100, 100), seg(i, 50 + u64::from(i), 50)]);
        let snap = LagSnapshot::build(10, segments);
        assert_eq!(snap.top.len(), 10);
        let worst: Vec<u32> = snap.top.iter().map(|(p, _)| p.partition).collect();
        assert_eq!(worst, (9990..10_000).rev().collect::<Vec<_>>());
        assert_eq!(snap.top[0].1, 9999);
        assert_eq!(snap.partitions_behind, 9999);
        assert_eq!(snap.behind_total, (0..10_000u64).sum::<u64>());
        assert_eq!(snap.behind_max, 9999);
        assert_eq!(snap.disk_bytes, 10_000 * 150 + (0..10_000u64).sum::<u64>());
        assert_eq!(snap.vouched_bytes, 10_000 * 150);
        assert!(snap.coverage() < 1.0 && snap.coverage() > 0.0);
        // A checkpoint past the bytes on disk (a file cut since) vouches for no more
        // than is there.
        let snap = LagSnapshot::build(10, [seg(1, 10, 20)]);
        assert_eq!((snap.vouched_bytes, snap.behind_total), (10, 0));
        assert!(snap.top.is_empty());
        assert_eq!(LagSnapshot::build(0, [seg(1, 10, 0)]).top, vec![]);
        assert_eq!(LagSnapshot::default().coverage(), 1.0);
    }

    #[test]
    fn dir_size_counts_files_and_does_not_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(dir_size(&dir.path().join("none")).unwrap(), None);
        let q = dir.path().join("q");
        std::fs::create_dir_all(q.join("r1")).unwrap();
        std::fs::write(q.join("r1/bytes"), vec![0u8; 1000]).unwrap();
        std::fs::write(q.join("r1/manifest.json"), b"{}").unwrap();
        std::fs::create_dir_all(q.join("r2")).unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; 1 << 20]).unwrap();
        std::os::unix::fs::symlink(&big, q.join("r2/link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), q.join("r2/loop")).unwrap();
        // A run folder: two repairs' bytes and one manifest.
        let run = q.join("run-r00000003-r00000004");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("r00000003.bytes"), b"abc").unwrap();
        std::fs::write(run.join("r00000004.bytes"), b"").unwrap();
        std::fs::write(run.join("manifest.json"), b"{}").unwrap();
        let size = dir_size(&q).unwrap().unwrap();
        assert_eq!(
            size,
            DirSize {
                bytes: 1007,
                files: 5,
                saved_bytes: 3
            }
        );
        // A packed run folder: one file, two repairs in its manifest; none counted
        // before the manifest is written.
        let run = q.join("run-r00000005-r00000006");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("bytes"), b"").unwrap();
        assert_eq!(dir_size(&q).unwrap().unwrap().saved_bytes, 3);
        let repair = |id: u64| {
            serde_json::json!({
                "version": 1, "repair": id,
                "action": { "CreateDir": { "path": format!("d{id}") } },
                "reason": "test", "data_dir": "/data", "file": format!("d{id}"),
                "range": { "start": 0, "end": 0 }, "xxh3": 0, "created_file": true,
                "packed": { "offset": 0, "len": 0 },
            })
        };
        let manifest = serde_json::json!({
            "version": 2, "run": "run-r00000005-r00000006",
            "repairs": [repair(5), repair(6)],
        });
        let text = serde_json::to_vec(&manifest).unwrap();
        std::fs::write(run.join("manifest.json"), text).unwrap();
        assert_eq!(dir_size(&q).unwrap().unwrap().saved_bytes, 5);
    }
}
