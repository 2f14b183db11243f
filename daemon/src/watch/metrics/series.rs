//! What the sidecar exports: every series with its name, help, unit and labels,
//! encoded on each scrape from the `Status` counters and the facts the exporter
//! thread last read from files.
//!
//! One collector encodes them all, so the names a dashboard or an alert rule may use
//! are in one place (the tests check the shipped ones against it).

use crate::metrics::exposition::{counter, counter_family, gauge, gauge_family};
use crate::metrics::recover_result::RecoverRecord;
use crate::metrics::DirSize;
use crate::watch::status::Status;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Prefix of every metric name.
pub const PREFIX: &str = "iggy_warden";

/// What the exporter thread reads from files.
#[derive(Debug, Default)]
pub(super) struct FileFacts {
    pub(super) recover: Option<RecoverRecord>,
    /// `Some(false)` when a `last-recover.json` exists but was ignored.
    pub(super) recover_ok: Option<bool>,
    pub(super) quarantine: Option<DirSize>,
    pub(super) journal: Option<DirSize>,
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
        gauge(
            enc,
            "state_log_unreplayable",
            "1 while state/log holds an entry that stops iggy-server 0.6.0 at its next start (its replay panics, or its reader rejects it; check: state-log-unreplayable), else 0",
            None,
            i64::from(s.state_log_unreplayable.load(Relaxed)),
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
            gauge_family(
                enc,
                "last_recover_consumer_offsets_ahead",
                "Stored consumer offsets past their partition's end after the last recover",
                None,
                [(mode, r.consumer_offsets_ahead)],
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
                "Repairs whose removed bytes the quarantine holds",
                None,
                q.saved_bytes,
            )?;
        }
        Ok(())
    }
}

/// The registry with the sidecar's collector, and the facts it reads.
pub(super) fn registry(status: Arc<Status>, files: Arc<Mutex<FileFacts>>) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    registry.register_collector(Box::new(SidecarCollector {
        status,
        files,
        started: SystemTime::now(),
    }));
    registry
}
