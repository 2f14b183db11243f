//! The sidecar's metrics, end to end with the real binary: configured through the
//! config file, served over HTTP and written as a node_exporter textfile; `recover`
//! records its result and the sidecar exports it; a hostile `last-recover.json` is
//! ignored with a logged reason while the sidecar goes on.

use crate::warden;
use crate::watch_common;

use harness::state_log::{encrypt_entry, metadata_entries};
use harness::{apply, DataDirBuilder, Fault, PartitionSpec};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;
use watch_common::*;

/// The value of the sample `series` (name and labels exactly as printed).
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.rsplit_once(' ').filter(|(s, _)| *s == series))
        .map(|(_, v)| v.to_string())
}

fn textfile(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `GET /metrics` with `accept`; (status line, content type, body).
fn scrape(addr: &str, accept: &str) -> (String, String, String) {
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or_default()
        .to_string();
    (status, ctype, body.to_string())
}

#[test]
fn the_sidecar_serves_and_writes_metrics_and_exports_the_last_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    let log = tmp.path().join("sidecar.log");
    let prom = tmp.path().join("node").join("iggy-warden.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    DataDirBuilder::new()
        .seed(3)
        .partition(PartitionSpec::new(0, 0, 0).messages(20, 50..200, 0))
        .partition(PartitionSpec::new(1, 0, 0).messages(5, 50..200, 0))
        .build(&data);
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "metrics_listen = \"127.0.0.1:0\"\nmetrics_textfile = \"{}\"\n\
             metrics_interval_ms = 100\nmetrics_top_partitions = 1\n",
            prom.display()
        ),
    )
    .unwrap();
    let mut sidecar = Sidecar::spawn(&data, &state, &log, &[("IGGY_WARDEN_CONFIG", s(&config))]);
    sidecar.wait_watching(Duration::from_secs(30));
    sidecar.wait_idle(Duration::from_secs(30));

    // The textfile: the text format, every partition counted, one per-partition
    // series at most.
    let text = wait_for(Duration::from_secs(30), "the textfile", || {
        let t = textfile(&prom)?;
        (sample(&t, "iggy_warden_ready").as_deref() == Some("1")
            && sample(&t, "iggy_warden_partitions").as_deref() == Some("2")
            && t.contains("iggy_warden_coverage_ratio "))
        .then_some(t)
    });
    assert!(!text.contains("# EOF"), "{text}");
    assert!(
        text.contains("# TYPE iggy_warden_events_journaled_total counter\n"),
        "{text}"
    );
    let journaled: u64 = sample(&text, "iggy_warden_events_journaled_total")
        .unwrap()
        .parse()
        .unwrap();
    assert!(journaled > 0, "{text}");
    let per_partition = text
        .lines()
        .filter(|l| l.starts_with("iggy_warden_partition_checkpoint_lag_bytes{"))
        .count();
    assert!(per_partition <= 1, "{text}");
    assert_eq!(sample(&text, "iggy_warden_last_recover_record_valid"), None);

    // The endpoint: its address from the log (port 0 was asked for).
    let addr = wait_for(Duration::from_secs(10), "the listen address", || {
        let log = sidecar.log_text();
        let at = log.find("serving metrics on http://")?;
        let rest = log.get(at + "serving metrics on http://".len()..)?;
        Some(rest.split('/').next()?.to_string())
    });
    let (status, ctype, body) = scrape(&addr, "application/openmetrics-text;version=1.0.0");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE iggy_warden_events_journaled counter\n"),
        "{body}"
    );
    let (_, ctype, body) = scrape(&addr, "*/*");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    assert_eq!(
        sample(&body, "iggy_warden_partitions").as_deref(),
        Some("2")
    );

    // recover (borrowing the journal) records its result; the sidecar exports it.
    let run = warden(["recover", "--data-dir", s(&data), "--state-dir", s(&state)]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("last-recover.json")).unwrap()).unwrap();
    assert_eq!(record["exit_code"], 0);
    assert_eq!(record["mode"], "tolerate-tail");
    assert_eq!(record["messages_kept"], 25);
    let text = wait_for(Duration::from_secs(30), "the recover's metrics", || {
        let t = textfile(&prom)?;
        (sample(&t, "iggy_warden_last_recover_record_valid").as_deref() == Some("1")).then_some(t)
    });
    let mode = "{mode=\"tolerate-tail\"}";
    let v = |name: &str| sample(&text, &format!("{name}{mode}"));
    assert_eq!(
        v("iggy_warden_last_recover_exit_code").as_deref(),
        Some("0")
    );
    assert_eq!(
        v("iggy_warden_last_recover_messages_kept").as_deref(),
        Some("25")
    );
    assert_eq!(
        v("iggy_warden_last_recover_messages_lost").as_deref(),
        Some("0")
    );
    let repairs: u64 = v("iggy_warden_last_recover_repairs")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        repairs,
        record["repairs"].as_u64().unwrap(),
        "{text}\n{record}"
    );

    // A hostile record: a symlink to a huge file. Ignored with a reason; the
    // sidecar goes on.
    std::fs::remove_file(state.join("last-recover.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", state.join("last-recover.json")).unwrap();
    wait_for(Duration::from_secs(30), "the record to be ignored", || {
        let t = textfile(&prom)?;
        (sample(&t, "iggy_warden_last_recover_record_valid").as_deref() == Some("0")).then_some(())
    });
    let t = textfile(&prom).unwrap();
    assert!(!t.contains("iggy_warden_last_recover_exit_code"), "{t}");
    assert!(
        sidecar
            .log_text()
            .contains("ignoring the last recover's record"),
        "{}",
        sidecar.log_text()
    );
    assert_eq!(sidecar.status().unwrap()["state"], "watching");
    let status = sidecar.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn recover_records_a_refusal_and_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    DataDirBuilder::new()
        .seed(4)
        .partition(PartitionSpec::new(0, 0, 0).messages(10, 50..200, 0))
        .build(&data);
    std::fs::create_dir_all(&state).unwrap();
    apply(&data, "streams/0/topics/0/partitions/0", Fault::TornLogTail).unwrap();
    // absolute repairs nothing: a torn tail makes it exit 3.
    let run = warden([
        "recover",
        "--mode",
        "absolute",
        "--data-dir",
        s(&data),
        "--state-dir",
        s(&state),
    ]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("last-recover.json")).unwrap()).unwrap();
    assert_eq!(record["exit_code"], 3, "{record}");
    assert_eq!(record["mode"], "absolute");
    assert_eq!(record["repairs"], 0);
    assert!(record["refusals"].as_u64().unwrap() >= 1, "{record}");
    // A data directory that is a file is an error (exit 2), recorded with its
    // reason.
    let not_a_dir = tmp.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let run = warden([
        "recover",
        "--data-dir",
        s(&not_a_dir),
        "--state-dir",
        s(&state),
    ]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("last-recover.json")).unwrap()).unwrap();
    assert_eq!(record["exit_code"], 2, "{record}");
    assert!(record["error"].as_str().unwrap().len() > 10, "{record}");
}

/// A token entry recorded for user 9, whom no entry creates: 0.6.0 panics on it at
/// its next start.
fn append_unreplayable_entry(data: &Path) {
    harness::state_log::append_token(data, 9, "orphan").unwrap();
}

#[test]
fn the_sidecar_says_when_state_log_gets_an_entry_the_next_start_panics_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, state) = (tmp.path().join("data"), tmp.path().join("state"));
    let log = tmp.path().join("sidecar.log");
    let prom = tmp.path().join("iggy-warden.prom");
    DataDirBuilder::new()
        .seed(3)
        .partition(PartitionSpec::new(0, 0, 0).messages(20, 50..200, 0))
        .build(&data);
    let config = tmp.path().join("config.toml");
    let settings = format!(
        "metrics_textfile = \"{}\"\nmetrics_interval_ms = 100\n",
        prom.display()
    );
    std::fs::write(&config, settings).unwrap();
    let envs = [("IGGY_WARDEN_CONFIG", s(&config))];
    let mut sidecar = Sidecar::spawn(&data, &state, &log, &envs);
    sidecar.wait_watching(Duration::from_secs(30));
    let series = "iggy_warden_state_log_unreplayable";
    let value = |want: &str| {
        wait_for(Duration::from_secs(30), want, || {
            let t = textfile(&prom)?;
            (sample(&t, series).as_deref() == Some(want)).then_some(())
        })
    };
    value("0");

    append_unreplayable_entry(&data);
    sidecar.tick();
    value("1");
    let text = sidecar.log_text();
    assert!(
        text.contains("user 9 does not exist") && text.contains("will not start again"),
        "{text}"
    );
    assert_eq!(sidecar.status_json()["state_log_unreplayable"], true);
    let status = warden(["status", "--state-dir", s(&state)]);
    assert_eq!(status.code, 1, "{}", status.stdout);
    assert!(
        status.stdout.contains("state/log holds an entry"),
        "{}",
        status.stdout
    );

    // A sidecar started again on that log, which the journal now holds verified to
    // its end, says so too.
    sidecar.terminate();
    std::fs::remove_file(&prom).unwrap();
    let mut sidecar = Sidecar::spawn(&data, &state, &log, &envs);
    sidecar.wait_watching(Duration::from_secs(30));
    value("1");

    // The operator's cut (point-in-time), with the journal lent: the sidecar takes
    // it back, looks at the shorter log and says all is well again.
    let recover_in = |mode: &str| {
        let run = warden([
            "recover",
            "--mode",
            mode,
            "--data-dir",
            s(&data),
            "--state-dir",
            s(&state),
        ]);
        assert_eq!(run.code, 0, "{mode}: {}\n{}", run.stdout, run.stderr);
    };
    recover_in("point-in-time");
    sidecar.tick();
    value("0");
    assert_eq!(sidecar.status_json()["state_log_unreplayable"], false);

    // A delete-segments request's entry, which 0.6.0's reader rejects: salvage drops
    // it, with the journal lent, and the sidecar says all is well again.
    harness::state_log::append_delete_segments(&data, (0, 0, 0), 1).unwrap();
    sidecar.tick();
    value("1");
    let text = sidecar.log_text();
    assert!(
        text.contains("InvalidCommand") && text.contains("--mode salvage` drops"),
        "{text}"
    );
    recover_in("salvage");
    sidecar.tick();
    value("0");

    // Of an encrypted log, the codes tell: the same entry is named.
    let mut bytes: Vec<u8> = metadata_entries(&[(0, 0, 0)], &[], &[], 1)
        .iter()
        .flat_map(encrypt_entry)
        .collect();
    harness::state_log::append_encrypted_delete_segments(&mut bytes).unwrap();
    std::fs::write(data.join("state/log"), bytes).unwrap();
    sidecar.tick();
    value("1");
    let text = sidecar.log_text();
    assert_eq!(text.matches("InvalidCommand").count(), 2, "{text}");
    // Salvage cannot reseal an encrypted log: a backup is the way.
    assert!(text.contains("put back state/log from a backup"), "{text}");
    sidecar.terminate();
}
