//! Live alerts: a writer reproduces each signature of the 0.6.0 rotation race in a
//! partition while the sidecar watches, and a write that stops in the middle of a
//! message. The sidecar runs with a one-hour checkpoint interval, so its
//! verification passes are the test's `TICK`s (the control socket answers once the
//! pass is done): no assertion depends on the wall clock.
//!
//! Each alert must be in force after the pass that sees it, with its kind, segment,
//! file and byte; logged at error level with those fields; shown in systemd's
//! `STATUS=`; raised once per segment and kind; still in force after a restart; and
//! gone after `recover` repaired the partition. A healthy writer at full speed, with
//! passes running while it writes, raises none.

use crate::warden;
use crate::watch_common;

use harness::format::{encode_message, index_entry, Message};
use harness::layout::segment_file_name;
use harness::{DataDirBuilder, PartitionSpec};
use serde_json::Value;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use watch_common::*;

const WAIT: Duration = Duration::from_secs(60);
/// One hour: the sidecar verifies only at start and on `TICK`.
const NO_CLOCK: &[&str] = &[
    "--checkpoint-interval-ms",
    "3600000",
    "--stall-alert-checkpoints",
    "3",
];

/// Timestamps of the messages the tests write by hand.
const TIME: u64 = 1_900_000_000_000_000;

struct Setup {
    _tmp: tempfile::TempDir,
    data: std::path::PathBuf,
    state: std::path::PathBuf,
    log: std::path::PathBuf,
    writer: LiveWriter,
}

/// A data directory with two partitions of a few segments each, and a live writer.
fn setup(seed: u64) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    let log = tmp.path().join("sidecar.log");
    let built = DataDirBuilder::new()
        .seed(seed)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(30, 50..200, 0)
                .segment_size(2000)
                .trailing_empty_pair(false),
        )
        .partition(
            PartitionSpec::new(1, 0, 0)
                .messages(12, 50..200, 0)
                .segment_size(2000)
                .trailing_empty_pair(false),
        )
        .build(&data);
    let mut writer = LiveWriter::new(&data, 4000, seed);
    writer.adopt(&built);
    Setup {
        _tmp: tmp,
        data,
        state,
        log,
        writer,
    }
}

fn start(x: &Setup, envs: &[(&str, &str)]) -> Sidecar {
    let mut sidecar = Sidecar::spawn_with(&x.data, &x.state, &x.log, envs, NO_CLOCK);
    sidecar.wait_watching(WAIT);
    sidecar.tick();
    sidecar
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// One message at `offset`, as the server frames it.
fn message(offset: u64, payload: usize) -> Vec<u8> {
    encode_message(&Message {
        id: 7 << 64 | u128::from(offset),
        offset,
        timestamp: TIME + offset,
        origin_timestamp: TIME,
        payload: vec![0x5a; payload],
        headers: Vec::new(),
    })
}

/// The open segment of writer partition `i`: (segment key text, rel log path,
/// log path, index path).
fn open_segment(
    w: &LiveWriter,
    i: usize,
) -> (String, String, std::path::PathBuf, std::path::PathBuf) {
    let p = &w.partitions[i];
    let (st, t, pa) = p.ids;
    let rel = format!(
        "streams/{st}/topics/{t}/partitions/{pa}/{}",
        segment_file_name(p.segment_start, "log")
    );
    (
        format!("{st}/{t}/{pa}@{}", p.segment_start),
        rel,
        p.dir.join(segment_file_name(p.segment_start, "log")),
        p.dir.join(segment_file_name(p.segment_start, "index")),
    )
}

fn find<'a>(alerts: &'a [Value], kind: &str, segment: &str) -> Option<&'a Value> {
    alerts
        .iter()
        .find(|a| a["kind"] == kind && a["segment"] == segment)
}

fn kinds(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| format!("{}:{}", a["kind"].as_str().unwrap_or("?"), a["segment"]))
        .collect()
}

/// The error line the alert was logged with carries its fields.
fn assert_logged_with_fields(log: &str, kind: &str, segment: &str, file: &str, byte: u64) {
    let line = log
        .lines()
        .find(|l| {
            l.contains("ERROR") && l.contains(&format!("kind=\"{kind}\"")) || {
                l.contains("ERROR") && l.contains(&format!("kind={kind}"))
            }
        })
        .unwrap_or_else(|| panic!("no ERROR line with kind {kind}:\n{log}"));
    for field in [
        format!("segment={segment}"),
        format!("file={file}"),
        format!("byte={byte}"),
    ] {
        assert!(line.contains(&field), "{field} missing from: {line}");
    }
    assert!(line.contains("restart"), "{line}");
}

/// Here the sidecar's own clock drives it while the writer writes (50 ms
/// checkpoints, the default grace of 10 for stalled writes), as in production: the
/// test's back-to-back passes would let a writer merely descheduled between a
/// batch's log and index writes look stalled. Passes on `TICK` follow the writer.
#[test]
fn a_healthy_writer_at_full_speed_raises_no_alert() {
    let mut x = setup(31);
    let mut sidecar = Sidecar::spawn_with(
        &x.data,
        &x.state,
        &x.log,
        &[],
        &["--checkpoint-interval-ms", "50"],
    );
    sidecar.wait_watching(WAIT);
    let writer = std::thread::spawn({
        let mut w = std::mem::replace(&mut x.writer, LiveWriter::new(&x.data, 4000, 0));
        move || {
            for n in 0..600 {
                w.append(n % 2, 1 + n % 7, 20..=300);
            }
            w
        }
    });
    // The sidecar's passes run while the writer writes: they see batches whose index
    // is not written yet and messages written in part, which are writes in flight.
    x.writer = writer.join().unwrap();
    for _ in 0..5 {
        sidecar.tick();
    }
    let st = sidecar.status_json();
    assert_eq!(st["alerts"], Value::Array(Vec::new()), "{st}");
    assert_eq!(st["anomalies"], 0, "{st}");
    assert!(
        x.writer.partitions[0].segments.len() > 3,
        "the writer rotated: {:?}",
        x.writer.partitions[0].segments
    );
    let text = sidecar.log_text();
    assert!(!text.contains("ERROR"), "{text}");
    assert!(sidecar.terminate().success());
    journal_agrees_with_disk(&x.data, &x.state).unwrap();
}

#[test]
fn a_batch_out_of_order_is_alerted_once_survives_a_restart_and_is_cleared_by_recover() {
    let mut x = setup(32);
    let notify = NotifySocket::bind(&x.state.with_file_name("notify.sock"));
    let notify_path = notify.path.to_str().unwrap().to_string();
    let mut sidecar = start(&x, &[("NOTIFY_SOCKET", &notify_path)]);
    assert!(sidecar.alerts().is_empty());

    // A batch whose offsets are 600 past the next one: the race's "message offset
    // 600 where 0 was expected".
    x.writer.append(0, 3, 50..=100);
    let (segment, rel, _, _) = open_segment(&x.writer, 0);
    let byte = x.writer.partitions[0].log_len;
    x.writer.partitions[0].next_offset += 600;
    x.writer.append(0, 4, 50..=100);
    sidecar.tick();
    let alerts = sidecar.alerts();
    let alert = find(&alerts, "misplaced-batch", &segment)
        .unwrap_or_else(|| panic!("no misplaced-batch on {segment}: {alerts:?}"));
    assert_eq!(alert["file"], rel.as_str());
    assert_eq!(alert["byte"], byte);
    assert_eq!(alert["partition"], "0/0/0");
    assert_eq!(alert["race_signature"], true);
    let message = alert["message"].as_str().unwrap();
    assert!(
        message.contains("writing batches out of order")
            && message.contains("restart iggy-server so that recovery can salvage"),
        "{message}"
    );
    assert_eq!(alerts.len(), 1, "{:?}", kinds(&alerts));
    assert_logged_with_fields(&sidecar.log_text(), "misplaced-batch", &segment, &rel, byte);

    // systemd's status line says it.
    let status_line = wait_for(WAIT, "STATUS= with the alert", || {
        let (_, d) = notify.recv()?;
        d.lines()
            .find(|l| l.starts_with("STATUS=ALERT misplaced-batch"))
            .map(str::to_string)
    });
    assert!(status_line.contains(&segment), "{status_line}");

    // Raised once per segment and kind: more bad batches and passes change nothing.
    x.writer.partitions[0].next_offset += 50;
    x.writer.append(0, 2, 50..=100);
    for _ in 0..3 {
        sidecar.tick();
    }
    let st = sidecar.status_json();
    assert_eq!(st["alerts"].as_array().map(Vec::len), Some(1), "{st}");
    assert_eq!(st["alerts_raised"]["misplaced-batch"], 1, "{st}");
    assert_eq!(st["alerts_active"]["misplaced-batch"], 1, "{st}");
    let text = sidecar.log_text();
    assert_eq!(
        text.matches("writing batches out of order").count(),
        1,
        "logged once: {text}"
    );
    let raised_at = alert["raised_unix_micros"].clone();

    // `iggy-warden status` shows it, and exits 1 while an alert is in force.
    let run = warden(["status", "--state-dir", s(&x.state)]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("1 alerts in force")
            && run
                .stdout
                .contains(&format!("misplaced-batch in segment {segment}")),
        "{}",
        run.stdout
    );
    let run = warden(["status", "--state-dir", s(&x.state), "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json()["alerts"][0]["kind"], "misplaced-batch");

    // A restart folds it back from the journal: in force, not raised again.
    assert!(sidecar.terminate().success());
    let mut sidecar = start(&x, &[]);
    sidecar.tick();
    let st = sidecar.status_json();
    let alerts = st["alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        kinds(&alerts),
        vec![format!("misplaced-batch:\"{segment}\"")]
    );
    assert_eq!(alerts[0]["raised_unix_micros"], raised_at);
    assert_eq!(alerts[0]["byte"], byte);
    assert_eq!(st["alerts_raised"]["misplaced-batch"], 0, "{st}");
    assert!(sidecar.log_text().contains("alert still in force"));

    // recover (salvage) repairs the partition while the sidecar runs; once the
    // sidecar has its journal back, the alert is over.
    let run = warden([
        "recover",
        "--data-dir",
        s(&x.data),
        "--state-dir",
        s(&x.state),
        "--mode",
        "salvage",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    wait_for(WAIT, "the alert to be cleared after recover", || {
        let st = sidecar.status()?;
        (st.get("state").map(String::as_str) == Some("watching")
            && st.get("alerts").map(String::as_str) == Some("0"))
        .then_some(())
    });
    sidecar.tick();
    assert!(sidecar.alerts().is_empty(), "{:?}", sidecar.alerts());
    let run = warden(["status", "--state-dir", s(&x.state)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(sidecar.terminate().success());

    // No sidecar: a clear error.
    let run = warden(["status", "--state-dir", s(&x.state)]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("no sidecar answers"), "{}", run.stderr);
}

#[test]
fn a_zero_hole_followed_by_data_is_alerted_at_the_hole() {
    let x = setup(33);
    let mut sidecar = start(&x, &[]);
    let (segment, rel, log, index) = open_segment(&x.writer, 1);
    let hole_at = x.writer.partitions[1].log_len;
    let start = x.writer.partitions[1].segment_start;
    // The race loses a write: zeros where it was, then the next batch after them.
    let next = x.writer.partitions[1].next_offset;
    let zeros = 300u64;
    let after = message(next, 80);
    append_raw(&log, &vec![0u8; zeros as usize]);
    append_raw(&log, &after);
    let end = hole_at + zeros + after.len() as u64;
    append_raw(
        &index,
        &index_entry((next - start) as u32, end as u32, TIME + next),
    );
    sidecar.tick();
    let alerts = sidecar.alerts();
    let alert = find(&alerts, "zero-hole", &segment)
        .unwrap_or_else(|| panic!("no zero-hole on {segment}: {:?}", kinds(&alerts)));
    assert_eq!(alert["file"], rel.as_str());
    assert_eq!(alert["byte"], hole_at);
    assert_eq!(alerts.len(), 1, "{:?}", kinds(&alerts));
    assert_logged_with_fields(&sidecar.log_text(), "zero-hole", &segment, &rel, hole_at);
    assert!(sidecar.terminate().success());
}

#[test]
fn index_entries_without_messages_are_alerted_on_the_next_pass() {
    let mut x = setup(34);
    let mut sidecar = start(&x, &[]);
    x.writer.append(0, 2, 50..=100);
    sidecar.tick();
    let (segment, _, _, index) = open_segment(&x.writer, 0);
    let p = &x.writer.partitions[0];
    let entries = (p.next_offset - p.segment_start) * 16;
    // Three entries past the log's end, the log unchanged.
    let mut ghosts = Vec::new();
    for k in 0..3u64 {
        ghosts.extend_from_slice(&index_entry(
            (p.next_offset - p.segment_start + k) as u32,
            (p.log_len + 100 * (k + 1)) as u32,
            TIME + k,
        ));
    }
    append_raw(&index, &ghosts);
    // The first pass may be a write in flight (the server writes the log first, then
    // the index); the next, with nothing changed, is not.
    sidecar.tick();
    sidecar.tick();
    let alerts = sidecar.alerts();
    let alert = find(&alerts, "ghost-index-entries", &segment)
        .unwrap_or_else(|| panic!("no ghost-index-entries on {segment}: {:?}", kinds(&alerts)));
    let rel_index = alert["file"].as_str().unwrap();
    assert!(rel_index.ends_with(".index"), "{rel_index}");
    assert_eq!(alert["byte"], entries);
    assert_logged_with_fields(
        &sidecar.log_text(),
        "ghost-index-entries",
        &segment,
        rel_index,
        entries,
    );
    assert!(sidecar.terminate().success());
}

#[test]
fn a_segment_rotated_past_while_a_message_was_half_written_is_alerted() {
    let mut x = setup(35);
    let mut sidecar = start(&x, &[]);
    let (segment, rel, log, _) = open_segment(&x.writer, 0);
    let valid_end = x.writer.partitions[0].log_len;
    let (start, offset) = (
        x.writer.partitions[0].segment_start,
        x.writer.partitions[0].next_offset,
    );
    let torn = message(offset, 120);
    append_raw(&log, &torn[..70]);
    // The rotation goes ahead with the save still in flight.
    x.writer.partitions[0].next_offset += 1;
    x.writer.rotate(0);
    x.writer.append(0, 2, 50..=100);
    // A sealed segment gets the seal retries (its last save may still land), one per
    // pass at most: it is alerted when they run out.
    let mut passes = 0;
    let alert = loop {
        sidecar.tick();
        passes += 1;
        let alerts = sidecar.alerts();
        if let Some(a) = find(&alerts, "incomplete-sealed-segment", &segment) {
            break a.clone();
        }
        assert!(
            passes <= 7,
            "not alerted after {passes} passes: {:?}",
            kinds(&alerts)
        );
    };
    assert_eq!(alert["file"], rel.as_str());
    assert_eq!(alert["byte"], valid_end);
    assert!(
        alert["detail"]
            .as_str()
            .unwrap()
            .contains("written in part"),
        "{alert}"
    );
    assert_eq!(sidecar.alerts().len(), 1, "{:?}", kinds(&sidecar.alerts()));

    // The save lands after all: the segment is whole, and sealed; the alert is over.
    append_raw(&log, &torn[70..]);
    let index = log.with_extension("index");
    let end = valid_end + torn.len() as u64;
    append_raw(
        &index,
        &index_entry((offset - start) as u32, end as u32, TIME + offset),
    );
    wait_for(WAIT, "the seal after the late save", || {
        sidecar.tick();
        sidecar.alerts().is_empty().then_some(())
    });
    assert!(sidecar
        .log_text()
        .contains("cleared: the segment was sealed whole"));
    assert!(sidecar.terminate().success());
    journal_agrees_with_disk(&x.data, &x.state).unwrap();
}

#[test]
fn a_write_stopped_mid_message_is_alerted_after_the_grace_and_cleared_when_it_completes() {
    let x = setup(36);
    let mut sidecar = start(&x, &[]);
    let (segment, rel, log, index) = open_segment(&x.writer, 1);
    let p = &x.writer.partitions[1];
    let (start, valid_end, offset) = (p.segment_start, p.log_len, p.next_offset);
    let whole = message(offset, 200);
    append_raw(&log, &whole[..90]);
    // Grace of 3 passes (`--stall-alert-checkpoints 3`): the pass that first sees
    // it, then three more without change.
    for pass in 0..3 {
        sidecar.tick();
        assert!(
            sidecar.alerts().is_empty(),
            "pass {pass}: {:?}",
            kinds(&sidecar.alerts())
        );
    }
    sidecar.tick();
    let alerts = sidecar.alerts();
    let alert = find(&alerts, "stalled-write", &segment)
        .unwrap_or_else(|| panic!("no stalled-write on {segment}: {:?}", kinds(&alerts)));
    assert_eq!(alert["file"], rel.as_str());
    assert_eq!(alert["byte"], valid_end);
    assert_eq!(alert["race_signature"], false);
    assert_logged_with_fields(
        &sidecar.log_text(),
        "stalled-write",
        &segment,
        &rel,
        valid_end,
    );

    // The rest of the message and its index entry: the write completed.
    append_raw(&log, &whole[90..]);
    let end = valid_end + whole.len() as u64;
    append_raw(
        &index,
        &index_entry((offset - start) as u32, end as u32, TIME + offset),
    );
    sidecar.tick();
    assert!(
        sidecar.alerts().is_empty(),
        "{:?}",
        kinds(&sidecar.alerts())
    );
    assert!(sidecar.log_text().contains("cleared: the write completed"));
    assert!(sidecar.terminate().success());
    let run = warden(["journal", "--state-dir", s(&x.state), "show", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\"alerts_cleared\""), "{}", run.stdout);
    assert!(run.stdout.contains("\"alert_raised\""), "{}", run.stdout);
}
