//! Tests of what the sidecar exports: names, labels and values in both formats, the
//! cap on per-partition series, the refresher's files, and the shipped alert rules
//! and dashboard against the exported names.

use super::*;
use crate::metrics::recover_result::RecoverRecord;
use crate::metrics::LagSnapshot;
use crate::watch::alerts::{Alert, AlertKind};
use journal::PartitionId;
use std::sync::atomic::Ordering::Relaxed;

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
            consumer_offsets_ahead: 2,
            error: None,
        }),
        recover_ok: Some(true),
        quarantine: Some(DirSize {
            bytes: 8192,
            files: 4,
            saved_bytes: 2,
        }),
        journal: Some(DirSize {
            bytes: 65536,
            files: 3,
            saved_bytes: 0,
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
            "iggy_warden_last_recover_consumer_offsets_ahead",
            "mode=\"salvage\""
        ),
        "2"
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
        consumer_offsets_ahead: 0,
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
            consumer_offsets_ahead: 0,
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
    let rules = include_str!("../../../../packaging/prometheus/iggy-warden-rules.yml");
    let dashboard = include_str!("../../../../packaging/grafana/iggy-warden-dashboard.json");
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
        "IggyWardenConsumerOffsetsAhead",
    ] {
        assert!(rules.contains(&format!("alert: {alert}\n")), "{alert}");
    }
}
