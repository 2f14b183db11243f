//! The sidecar's metrics: what it exports and when (see `crate::metrics` for the
//! encoding, the endpoint and the textfile).
//!
//! - The core computes the checkpoint lag and coverage from its model once per
//!   metrics interval ([`Core::metrics_tick`], called every turn of its loop): one
//!   `stat` of each open segment's `.log`, nothing read.
//! - The exporter thread (`warden-metrics`) refreshes what lives in files once per
//!   interval — `last-recover.json`, the sizes of the quarantine and the journal —
//!   and writes the textfile.
//! - The endpoint, on the supervisor's runtime, encodes on each scrape from the
//!   `Status` counters and the latest of the above.
//!
//! Everything here only reads: the data directory through `stat`, the state
//! directory through listings and the recover record.

use crate::metrics::exposition::{counter, counter_family, gauge, gauge_family, render, Format};
use crate::metrics::recover_result::{self, RecoverRecord};
use crate::metrics::{self, dir_size, DirSize, LagSnapshot, SegmentBytes, Settings};
use crate::watch::core::Core;
use crate::watch::reconcile::Phase;
use crate::watch::status::Status;
use crate::watch::tracker::log_path;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::{Registry, Unit};
use recovery::names::escaped;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Prefix of every metric name.
pub const PREFIX: &str = "iggy_warden";

/// The quarantine is walked again after this long even when its folder did not
/// change (a repair adds a folder, which changes it).
const QUARANTINE_REWALK: Duration = Duration::from_secs(60);

impl Core {
    /// Publishes the checkpoint lag and coverage when metrics are on and one is due.
    pub(super) fn metrics_tick(&mut self) {
        let Some(top) = self.status.metrics.lag_due(Instant::now()) else {
            return;
        };
        let data_dir = &self.settings.data_dir;
        let segments = self.model.partitions.iter_mut().flat_map(|(pid, part)| {
            let dir = data_dir.join(pid.rel_dir());
            let pid = *pid;
            part.segments.iter_mut().map(move |(start, phase)| {
                let on_disk = || {
                    std::fs::metadata(log_path(&dir, &pid.segment(*start))).map_or(0, |m| m.len())
                };
                let (disk, vouched) = match phase {
                    Phase::Sealed { log_len, .. } => (*log_len, *log_len),
                    Phase::Open(t) => (on_disk(), t.checkpointed),
                    Phase::Sealing(s) => (on_disk(), s.tracker.checkpointed),
                };
                SegmentBytes {
                    partition: pid,
                    disk,
                    vouched,
                }
            })
        });
        let snapshot = LagSnapshot::build(top, segments);
        self.status.metrics.publish_lag(snapshot);
    }
}

/// What the exporter thread reads from files.
#[derive(Debug, Default)]
struct FileFacts {
    recover: Option<RecoverRecord>,
    /// `Some(false)` when a `last-recover.json` exists but was ignored.
    recover_ok: Option<bool>,
    quarantine: Option<DirSize>,
    journal: Option<DirSize>,
}

#[derive(Debug)]
struct SidecarCollector {
    status: Arc<Status>,
    files: Arc<Mutex<FileFacts>>,
    started: SystemTime,
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Collector for SidecarCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.status;
        let enc = &mut e;
        let bytes = Some(&Unit::Bytes);
        let seconds = Some(&Unit::Seconds);
        // The sidecar itself.
        gauge(
            enc,
            "exported_timestamp",
            "When these values were encoded, in Unix time",
            seconds,
            unix_seconds(SystemTime::now()),
        )?;
        gauge(
            enc,
            "start_time",
            "When the sidecar started, in Unix time",
            seconds,
            unix_seconds(self.started),
        )?;
        gauge(enc, "ready", "1 while the sidecar watches (start-up reconciliation done, journal not lent to recover), else 0", None, i64::from(s.ready.load(Relaxed) && !s.released.load(Relaxed)))?;
        counter(
            enc,
            "events_journaled",
            "Records the sidecar appended to its journal since it started",
            None,
            s.journaled.load(Relaxed),
        )?;
        counter(
            enc,
            "inotify_events",
            "inotify events received",
            None,
            s.events.load(Relaxed),
        )?;
        counter(
            enc,
            "reconciliations",
            "Full reconciliations of journal and disk",
            None,
            s.reconciliations.load(Relaxed),
        )?;
        counter(
            enc,
            "overflows",
            "Full reconciliations forced by an event queue overflow or a watcher error",
            None,
            s.overflows.load(Relaxed),
        )?;
        counter(
            enc,
            "anomalies",
            "Anomalies seen: damaged segments, seals that never completed, layout anomalies",
            None,
            s.anomalies.load(Relaxed),
        )?;
        gauge(
            enc,
            "layout_anomalies",
            "Layout anomalies in force",
            None,
            s.layout_anomalies() as u64,
        )?;
        gauge(
            enc,
            "partitions",
            "Partitions watched",
            None,
            s.partitions.load(Relaxed),
        )?;
        gauge(
            enc,
            "segments",
            "Live segments known",
            None,
            s.segments.load(Relaxed),
        )?;
        gauge(
            enc,
            "sealing_segments",
            "Segments waiting for their seal verification",
            None,
            s.sealing.load(Relaxed),
        )?;
        gauge(
            enc,
            "unverified_segments",
            "Open segments written since they were last verified",
            None,
            s.dirty.load(Relaxed),
        )?;

        // Alerts, by kind: every kind has its series, 0 when none (the alert board in
        // `watch/alerts.rs` is the one source, alerts reloaded from the journal
        // included).
        counter_family(
            enc,
            "alerts_raised",
            "Alerts raised since the sidecar started, by kind",
            s.alerts
                .raised_by_kind()
                .into_iter()
                .map(|(k, n)| ([("kind", k.name())], n)),
        )?;
        gauge_family(
            enc,
            "alerts_active",
            "Alerts in force, by kind",
            None,
            s.alerts
                .active_by_kind()
                .into_iter()
                .map(|(k, n)| ([("kind", k.name())], n)),
        )?;

        // The journal.
        let (flush, flushes) = s.metrics.journal_flush();
        gauge(
            enc,
            "journal_last_flush",
            "Duration of the journal's last append and flush",
            seconds,
            flush.as_secs_f64(),
        )?;
        counter(
            enc,
            "journal_flushes",
            "Journal appends flushed since the sidecar started",
            None,
            flushes,
        )?;
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = files.journal {
            gauge(enc, "journal", "Size of the journal folder", bytes, j.bytes)?;
        }

        // Checkpoint lag and coverage.
        if let Some((at, lag)) = s.metrics.lag() {
            gauge_family(
                enc,
                "partition_checkpoint_lag",
                "Bytes of the worst partitions past their last journaled checkpoint (capped: see partitions_behind_checkpoint for all)",
                bytes,
                lag.top.iter().map(|(p, b)| {
                    ([("stream", p.stream), ("topic", p.topic), ("partition", p.partition)], *b)
                }),
            )?;
            gauge(enc, "checkpoint_lag", "Bytes past their last journaled checkpoint, over every partition: what a journal-guided recover would scan", bytes, lag.behind_total)?;
            gauge(
                enc,
                "checkpoint_lag_max",
                "Bytes past the last journaled checkpoint of the worst partition",
                bytes,
                lag.behind_max,
            )?;
            gauge(
                enc,
                "partitions_behind_checkpoint",
                "Partitions with bytes past their last journaled checkpoint",
                None,
                lag.partitions_behind,
            )?;
            gauge(
                enc,
                "log_on_disk",
                "Log bytes of the live segments on disk",
                bytes,
                lag.disk_bytes,
            )?;
            gauge(enc, "log_vouched", "Log bytes the journal vouches for: sealed segments whole, open segments up to their last checkpoint", bytes, lag.vouched_bytes)?;
            gauge(enc, "coverage_ratio", "Log bytes the journal vouches for divided by log bytes on disk (1 when there are none)", None, lag.coverage())?;
            gauge(
                enc,
                "lag_snapshot_timestamp",
                "When the checkpoint lag was computed, in Unix time",
                seconds,
                unix_seconds(at),
            )?;
        }

        // The last recover.
        if let Some(ok) = files.recover_ok {
            gauge(enc, "last_recover_record_valid", "1 when last-recover.json was read, 0 when it exists but was ignored (the log says why)", None, i64::from(ok))?;
        }
        if let Some(r) = &files.recover {
            let mode = [("mode", r.mode.as_str())];
            let ms = |v: u64| v as f64 / 1000.0;
            gauge_family(enc, "last_recover_exit_code", "Exit code of the last recover: 0 ready to start, 3 an operator must decide, 2 error", None, [(mode, i64::from(r.exit_code))])?;
            gauge_family(
                enc,
                "last_recover_timestamp",
                "When the last recover ended, in Unix time",
                seconds,
                [(mode, ms(r.finished_unix_ms))],
            )?;
            gauge_family(
                enc,
                "last_recover_duration",
                "Duration of the last recover",
                seconds,
                [(mode, ms(r.duration_ms))],
            )?;
            gauge_family(
                enc,
                "last_recover_repairs",
                "Repairs the last recover made",
                None,
                [(mode, r.repairs)],
            )?;
            gauge_family(
                enc,
                "last_recover_quarantined",
                "Bytes the last recover moved into quarantine",
                bytes,
                [(mode, r.bytes_quarantined)],
            )?;
            gauge_family(
                enc,
                "last_recover_messages_kept",
                "Valid messages in the data directory after the last recover",
                None,
                [(mode, r.messages_kept)],
            )?;
            gauge_family(
                enc,
                "last_recover_messages_lost",
                "Valid messages the last recover moved out of the data directory into quarantine",
                None,
                [(mode, r.messages_lost)],
            )?;
            gauge_family(
                enc,
                "last_recover_refusals",
                "Partitions or state files the last recover left to an operator",
                None,
                [(mode, r.refusals)],
            )?;
        }

        // The quarantine.
        if let Some(q) = files.quarantine {
            gauge(enc, "quarantine", "Size of the quarantine", bytes, q.bytes)?;
            gauge(
                enc,
                "quarantine_files",
                "Files in the quarantine",
                None,
                q.files,
            )?;
            gauge(
                enc,
                "quarantine_repairs",
                "Repairs with a folder in the quarantine",
                None,
                q.top_entries,
            )?;
        }
        Ok(())
    }
}

/// The running exporter: the refresh thread, and the endpoint's task on the
/// supervisor's runtime. Dropping it stops the thread.
pub struct Exporter {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The registry with the sidecar's collector, and the facts it reads.
fn registry(status: Arc<Status>, files: Arc<Mutex<FileFacts>>) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(SidecarCollector {
        status,
        files,
        started: SystemTime::now(),
    }));
    registry
}

impl Exporter {
    /// Starts exporting. A listener that cannot be bound is logged, and the sidecar
    /// goes on without it: its journal matters more than its metrics.
    pub fn start(
        settings: &Settings,
        state_dir: &Path,
        status: Arc<Status>,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<Self> {
        status.metrics.enable(settings);
        let files = Arc::new(Mutex::new(FileFacts::default()));
        let registry = Arc::new(registry(status, files.clone()));
        let render: metrics::http::Render = Arc::new(move |f| render(&registry, f));
        if let Some(addr) = settings.listen {
            match runtime.block_on(tokio::net::TcpListener::bind(addr)) {
                Ok(listener) => {
                    let local = listener.local_addr().unwrap_or(addr);
                    tracing::info!(listen = %local, "serving metrics on http://{local}/metrics");
                    runtime.spawn(metrics::http::serve(listener, render.clone()));
                }
                Err(e) => tracing::error!(
                    listen = %addr,
                    "cannot listen for metrics on {addr}: {e}; metrics are not served over \
                     HTTP (under systemd, the unit needs the opt-in drop-in \
                     metrics-listen.conf); the sidecar goes on"
                ),
            }
        }
        let (stop, stopped) = std::sync::mpsc::channel();
        let mut refresher = Refresher {
            state_dir: state_dir.to_path_buf(),
            textfile: settings.textfile.clone(),
            files,
            render,
            recover_problem: None,
            textfile_problem: None,
            quarantine_walked: None,
        };
        let interval = settings.interval;
        let thread = std::thread::Builder::new()
            .name("warden-metrics".into())
            .spawn(move || loop {
                refresher.refresh();
                match stopped.recv_timeout(interval) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Refresher {
    state_dir: PathBuf,
    textfile: Option<PathBuf>,
    files: Arc<Mutex<FileFacts>>,
    render: metrics::http::Render,
    /// The last problems logged, so that each is logged once, not every interval.
    recover_problem: Option<String>,
    textfile_problem: Option<String>,
    /// When the quarantine was last walked, and its folder's mtime then.
    quarantine_walked: Option<(Instant, Option<SystemTime>)>,
}

impl Refresher {
    fn refresh(&mut self) {
        let (recover, recover_ok) = match recover_result::read(&self.state_dir) {
            Ok(r) => {
                self.recover_problem = None;
                let ok = r.is_some().then_some(true);
                (r, ok)
            }
            Err(e) => {
                let why = e.to_string();
                if self.recover_problem.as_deref() != Some(why.as_str()) {
                    tracing::warn!("ignoring the last recover's record: {why}");
                    self.recover_problem = Some(why);
                }
                (None, Some(false))
            }
        };
        let journal = dir_size(&self.state_dir.join("journal")).ok().flatten();
        let quarantine = self.quarantine();
        {
            let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            files.recover = recover;
            files.recover_ok = recover_ok;
            files.journal = journal;
            if let Some(q) = quarantine {
                files.quarantine = q;
            }
        }
        if let Some(path) = &self.textfile {
            let text = (self.render)(Format::Text);
            match metrics::textfile::replace_file(path, text.as_bytes(), false) {
                Ok(()) => {
                    if self.textfile_problem.take().is_some() {
                        tracing::info!("metrics textfile {} written again", escaped(path));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    if self.textfile_problem.as_deref() != Some(why.as_str()) {
                        tracing::error!(
                            textfile = %escaped(path),
                            "cannot write the metrics textfile {}: {why} (under systemd, its \
                             folder needs the opt-in drop-in metrics-textfile.conf)",
                            escaped(path)
                        );
                        self.textfile_problem = Some(why);
                    }
                }
            }
        }
    }

    /// The quarantine's size when it is due for a walk (its folder changed, or a while
    /// passed); `None` to keep the last figure.
    fn quarantine(&mut self) -> Option<Option<DirSize>> {
        let dir = self.state_dir.join("quarantine");
        let mtime = std::fs::symlink_metadata(&dir)
            .and_then(|m| m.modified())
            .ok();
        if let Some((at, seen)) = self.quarantine_walked {
            if seen == mtime && at.elapsed() < QUARANTINE_REWALK {
                return None;
            }
        }
        self.quarantine_walked = Some((Instant::now(), mtime));
        Some(dir_size(&dir).ok().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::LagSnapshot;
    use crate::watch::alerts::{Alert, AlertKind};
    use journal::PartitionId;

    fn exposition(status: Arc<Status>, files: FileFacts, format: Format) -> String {
        render(&registry(status, Arc::new(Mutex::new(files))), format)
    }

    /// Every sample line: (name, labels, value).
    fn samples(text: &str) -> Vec<(String, String, String)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                let (name, labels) = match series.split_once('{') {
                    Some((n, l)) => (n, l.trim_end_matches('}')),
                    None => (series, ""),
                };
                (name.to_string(), labels.to_string(), value.to_string())
            })
            .collect()
    }

    fn value(text: &str, name: &str, labels: &str) -> String {
        samples(text)
            .into_iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| v)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
    }

    /// Raises an alert of `kind` on the board, as the core does.
    fn raise(status: &Status, kind: AlertKind) {
        status.alerts.insert(Alert {
            kind,
            segment: PartitionId::new(0, 0, 0).segment(0),
            file: String::new(),
            byte: 0,
            detail: String::new(),
            raised_unix_micros: 0,
        });
    }

    #[test]
    fn exposition_names_labels_and_values() {
        let status = Arc::new(Status::default());
        status.journaled.store(42, Relaxed);
        status.partitions.store(3, Relaxed);
        raise(&status, AlertKind::MisplacedBatch);
        raise(&status, AlertKind::ZeroHole);
        status.alerts.remove(|a| a.kind == AlertKind::ZeroHole);
        status.metrics.journal_flushed(Duration::from_micros(250));
        let segs = (0..3u32).map(|p| SegmentBytes {
            partition: PartitionId::new(1, 0, p),
            disk: 1000,
            vouched: 1000 - u64::from(p) * 100,
        });
        status.metrics.publish_lag(LagSnapshot::build(10, segs));
        let files = FileFacts {
            recover: Some(RecoverRecord {
                format: recover_result::FORMAT,
                mode: "salvage".into(),
                exit_code: 3,
                finished_unix_ms: 1_764_590_000_500,
                duration_ms: 1500,
                repairs: 2,
                bytes_quarantined: 4096,
                messages_kept: 900,
                messages_lost: 7,
                refusals: 1,
                error: None,
            }),
            recover_ok: Some(true),
            quarantine: Some(DirSize {
                bytes: 8192,
                files: 4,
                top_entries: 2,
            }),
            journal: Some(DirSize {
                bytes: 65536,
                files: 3,
                top_entries: 3,
            }),
        };
        let text = exposition(status.clone(), files, Format::Text);
        let v = |name: &str, labels: &str| value(&text, name, labels);
        assert_eq!(v("iggy_warden_events_journaled_total", ""), "42");
        assert_eq!(v("iggy_warden_partitions", ""), "3");
        assert_eq!(v("iggy_warden_ready", ""), "0");
        assert_eq!(
            v(
                "iggy_warden_alerts_raised_total",
                "kind=\"misplaced-batch\""
            ),
            "1"
        );
        assert_eq!(
            v("iggy_warden_alerts_active", "kind=\"misplaced-batch\""),
            "1"
        );
        assert_eq!(
            v("iggy_warden_alerts_raised_total", "kind=\"zero-hole\""),
            "1"
        );
        assert_eq!(v("iggy_warden_alerts_active", "kind=\"zero-hole\""), "0");
        assert_eq!(v("iggy_warden_journal_last_flush_seconds", ""), "0.00025");
        assert_eq!(v("iggy_warden_journal_bytes", ""), "65536");
        assert_eq!(v("iggy_warden_checkpoint_lag_bytes", ""), "300");
        assert_eq!(v("iggy_warden_checkpoint_lag_max_bytes", ""), "200");
        assert_eq!(v("iggy_warden_partitions_behind_checkpoint", ""), "2");
        assert_eq!(
            v(
                "iggy_warden_partition_checkpoint_lag_bytes",
                "stream=\"1\",topic=\"0\",partition=\"2\""
            ),
            "200"
        );
        assert_eq!(v("iggy_warden_log_on_disk_bytes", ""), "3000");
        assert_eq!(v("iggy_warden_log_vouched_bytes", ""), "2700");
        assert_eq!(v("iggy_warden_coverage_ratio", ""), "0.9");
        assert_eq!(
            v("iggy_warden_last_recover_exit_code", "mode=\"salvage\""),
            "3"
        );
        assert_eq!(
            v(
                "iggy_warden_last_recover_duration_seconds",
                "mode=\"salvage\""
            ),
            "1.5"
        );
        assert_eq!(
            v("iggy_warden_last_recover_repairs", "mode=\"salvage\""),
            "2"
        );
        assert_eq!(
            v(
                "iggy_warden_last_recover_quarantined_bytes",
                "mode=\"salvage\""
            ),
            "4096"
        );
        assert_eq!(
            v("iggy_warden_last_recover_messages_kept", "mode=\"salvage\""),
            "900"
        );
        assert_eq!(
            v("iggy_warden_last_recover_messages_lost", "mode=\"salvage\""),
            "7"
        );
        assert_eq!(
            v("iggy_warden_last_recover_refusals", "mode=\"salvage\""),
            "1"
        );
        assert_eq!(
            v(
                "iggy_warden_last_recover_timestamp_seconds",
                "mode=\"salvage\""
            ),
            "1764590000.5"
        );
        assert_eq!(v("iggy_warden_quarantine_bytes", ""), "8192");
        assert_eq!(v("iggy_warden_quarantine_repairs", ""), "2");
        // Every family is typed, and only counters end in _total.
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut words = line.split(' ').skip(2);
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
            assert!(name.starts_with("iggy_warden_"), "{line}");
        }
        // Help texts need no escaping in either format.
        for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
            assert!(!line.contains('"') && !line.contains('\\'), "{line}");
        }
        // The same values in OpenMetrics, which ends with # EOF.
        let om = exposition(status, FileFacts::default(), Format::OpenMetrics);
        assert!(
            om.contains("\niggy_warden_events_journaled_total 42\n"),
            "{om}"
        );
        assert!(
            om.contains("# TYPE iggy_warden_events_journaled counter\n"),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"));
        // Without a recover record or a quarantine, their series are absent.
        assert!(!om.contains("last_recover_exit_code{"), "{om}");
        assert!(!om.contains("iggy_warden_quarantine_bytes "), "{om}");
    }

    #[test]
    fn per_partition_series_are_capped_whatever_the_partition_count() {
        let status = Arc::new(Status::default());
        let segs = (0..10_000u32).map(|p| SegmentBytes {
            partition: PartitionId::new(p / 100, 0, p % 100),
            disk: 10_000 + u64::from(p),
            vouched: 10_000,
        });
        status.metrics.publish_lag(LagSnapshot::build(10, segs));
        let text = exposition(status, FileFacts::default(), Format::Text);
        let per_partition: Vec<_> = samples(&text)
            .into_iter()
            .filter(|(n, _, _)| n == "iggy_warden_partition_checkpoint_lag_bytes")
            .collect();
        assert_eq!(per_partition.len(), 10);
        assert_eq!(
            per_partition[0].1,
            "stream=\"99\",topic=\"0\",partition=\"99\""
        );
        assert_eq!(per_partition[0].2, "9999");
        assert_eq!(
            value(&text, "iggy_warden_partitions_behind_checkpoint", ""),
            "9999"
        );
        assert_eq!(
            value(&text, "iggy_warden_checkpoint_lag_bytes", ""),
            (0..10_000u64).sum::<u64>().to_string()
        );
        assert!(samples(&text).len() < 60, "{}", samples(&text).len());
    }

    #[test]
    fn refresh_reads_the_recover_record_sizes_and_writes_the_textfile() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(state.join("quarantine/r00000001")).unwrap();
        std::fs::write(state.join("quarantine/r00000001/bytes"), vec![1u8; 300]).unwrap();
        let textfile = dir.path().join("node/iggy-warden.prom");
        std::fs::create_dir_all(textfile.parent().unwrap()).unwrap();
        let status = Arc::new(Status::default());
        let files = Arc::new(Mutex::new(FileFacts::default()));
        let registry = Arc::new(registry(status, files.clone()));
        let mut refresher = Refresher {
            state_dir: state.clone(),
            textfile: Some(textfile.clone()),
            files,
            render: Arc::new(move |f| render(&registry, f)),
            recover_problem: None,
            textfile_problem: None,
            quarantine_walked: None,
        };
        refresher.refresh();
        let text = std::fs::read_to_string(&textfile).unwrap();
        assert_eq!(value(&text, "iggy_warden_quarantine_bytes", ""), "300");
        assert!(!text.contains("last_recover"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");

        // Garbage in the record: ignored with a reason, marked invalid.
        std::fs::write(state.join(recover_result::FILE_NAME), b"\x00garbage").unwrap();
        refresher.refresh();
        assert!(refresher
            .recover_problem
            .as_deref()
            .is_some_and(|p| p.contains("not a recover record")));
        let text = std::fs::read_to_string(&textfile).unwrap();
        assert_eq!(
            value(&text, "iggy_warden_last_recover_record_valid", ""),
            "0"
        );

        // A real record, written as recover writes it.
        let record = RecoverRecord {
            format: recover_result::FORMAT,
            mode: "tolerate-tail".into(),
            exit_code: 0,
            finished_unix_ms: 1,
            duration_ms: 20,
            repairs: 1,
            bytes_quarantined: 300,
            messages_kept: 10,
            messages_lost: 0,
            refusals: 0,
            error: None,
        };
        recover_result::write(&state, &record).unwrap();
        refresher.refresh();
        assert_eq!(refresher.recover_problem, None);
        let text = std::fs::read_to_string(&textfile).unwrap();
        assert_eq!(
            value(&text, "iggy_warden_last_recover_record_valid", ""),
            "1"
        );
        assert_eq!(
            value(
                &text,
                "iggy_warden_last_recover_exit_code",
                "mode=\"tolerate-tail\""
            ),
            "0"
        );

        // A textfile folder that vanished: logged, no crash, written again later.
        std::fs::remove_dir_all(textfile.parent().unwrap()).unwrap();
        refresher.refresh();
        assert!(refresher.textfile_problem.is_some());
        std::fs::create_dir_all(textfile.parent().unwrap()).unwrap();
        refresher.refresh();
        assert!(refresher.textfile_problem.is_none());
        assert!(textfile.is_file());
    }

    /// Every `iggy_warden_*` name in `text`.
    fn names_in(text: &str) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        let mut rest = text;
        while let Some(at) = rest.find("iggy_warden_") {
            let tail = rest.get(at..).unwrap_or_default();
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail.get(..end).unwrap_or_default().to_string());
            rest = tail.get(end..).unwrap_or_default();
        }
        names
    }

    #[test]
    fn the_shipped_rules_and_dashboard_name_only_exported_metrics() {
        // An exposition with every family present.
        let status = Arc::new(Status::default());
        raise(&status, AlertKind::ZeroHole);
        status.metrics.publish_lag(LagSnapshot::build(
            10,
            [SegmentBytes {
                partition: PartitionId::new(0, 0, 0),
                disk: 10,
                vouched: 5,
            }],
        ));
        let files = FileFacts {
            recover: Some(RecoverRecord {
                format: recover_result::FORMAT,
                mode: "salvage".into(),
                exit_code: 0,
                finished_unix_ms: 0,
                duration_ms: 0,
                repairs: 0,
                bytes_quarantined: 0,
                messages_kept: 0,
                messages_lost: 0,
                refusals: 0,
                error: None,
            }),
            recover_ok: Some(true),
            quarantine: Some(DirSize::default()),
            journal: Some(DirSize::default()),
        };
        let exported: std::collections::BTreeSet<String> =
            samples(&exposition(status, files, Format::Text))
                .into_iter()
                .map(|(n, _, _)| n)
                .collect();
        let rules = include_str!("../../../packaging/prometheus/iggy-warden-rules.yml");
        let dashboard = include_str!("../../../packaging/grafana/iggy-warden-dashboard.json");
        let parsed: serde_json::Value = serde_json::from_str(dashboard).unwrap();
        assert_eq!(parsed["uid"], "iggy-warden");
        for (what, text) in [("rules", rules), ("dashboard", dashboard)] {
            let names = names_in(text);
            assert!(names.len() >= 5, "{what}: {names:?}");
            for name in names {
                assert!(
                    exported.contains(&name),
                    "{what} name {name}, which is not exported"
                );
            }
        }
        // Each alert of the issue is there.
        for alert in [
            "IggyWardenCorruptionAlert",
            "IggyWardenRecoverFailed",
            "IggyWardenJournalBehind",
            "IggyWardenSidecarDown",
            "IggyWardenQuarantineGrew",
        ] {
            assert!(rules.contains(&format!("alert: {alert}\n")), "{alert}");
        }
    }
}
