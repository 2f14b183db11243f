//! The sidecar's background coverage pass: open segments that nobody writes are
//! verified at the configured rate and checkpointed to their end, `status` shows the
//! pass, and after a restart the pass goes on from the journaled checkpoints.

use crate::watch_common;
use crate::BIN;

use harness::{DataDirBuilder, PartitionSpec};
use journal::{Journal, SegmentPhase};
use std::path::{Path, PathBuf};
use std::time::Duration;
use watch_common::*;

/// Two partitions whose only segment is open and about 2.5 MB long.
fn build(data: &Path) -> u64 {
    let spec = |p| {
        PartitionSpec::new(1, 1, p)
            .messages(12_000, 100..=200, 0)
            .segment_size(1 << 30)
            .trailing_empty_pair(false)
    };
    DataDirBuilder::new()
        .seed(7)
        .partition(spec(1))
        .partition(spec(2))
        .build(data);
    let layout = recovery::layout::discover(data).unwrap();
    layout
        .partitions
        .iter()
        .flat_map(|p| &p.segments)
        .map(|s| s.log_len.unwrap_or(0))
        .sum()
}

fn coverage(sidecar: &Sidecar) -> (u64, u64, u64) {
    let c = &sidecar.status_json()["coverage"];
    let n = |k: &str| {
        c[k].as_u64()
            .unwrap_or_else(|| panic!("coverage.{k} in {c}"))
    };
    (
        n("bytes_to_verify"),
        n("bytes_verified"),
        n("segments_left"),
    )
}

/// Every open segment's journaled checkpoint, as (valid_len, log length on disk).
fn checkpoints(data: &Path, state: &Path) -> Vec<(u64, u64)> {
    let journal = Journal::open(&state.join("journal")).unwrap();
    let states = journal.all_segment_states().unwrap();
    drop(journal);
    let layout = recovery::layout::discover(data).unwrap();
    let mut out = Vec::new();
    for seg in layout.partitions.iter().flat_map(|p| &p.segments) {
        let st = states
            .iter()
            .find(|(k, _)| *k == seg.key)
            .unwrap_or_else(|| panic!("{} not in the journal", seg.key));
        assert!(
            matches!(st.1.phase, SegmentPhase::Opened),
            "{} is open",
            seg.key
        );
        let valid = st.1.checkpoint.map_or(0, |c| c.valid_len);
        out.push((valid, seg.log_len.unwrap_or(0)));
    }
    out
}

/// A temporary folder with the data directory of [`build`], and where the state
/// directory and the sidecar's log go; the data's log bytes.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let (data, state) = (tmp.path().join("data"), tmp.path().join("state"));
    let log = tmp.path().join("sidecar.log");
    let total = build(&data);
    (tmp, data, state, log, total)
}

#[test]
fn open_segments_nobody_writes_are_verified_at_the_rate_and_checkpointed() {
    let (_tmp, data, state, log, total) = setup();
    assert!(total > 4 << 20, "{total} bytes");
    let mut sidecar = Sidecar::spawn_with(
        &data,
        &state,
        &log,
        &[],
        &[
            "--checkpoint-interval-ms",
            "100",
            "--coverage-mib-per-sec",
            "1",
        ],
    );
    sidecar.wait_watching(Duration::from_secs(30));
    // At 1 MiB/s the pass needs seconds: just after start-up it has begun, not ended.
    let (to_verify, verified, left) = coverage(&sidecar);
    assert_eq!(
        to_verify, total,
        "nothing is vouched for at the first start"
    );
    assert!(
        verified < total && left > 0,
        "{verified} of {total}, {left} left"
    );
    let verified = wait_for(Duration::from_secs(60), "the pass to end", || {
        let (_, verified, left) = coverage(&sidecar);
        (left == 0).then_some(verified)
    });
    assert_eq!(verified, total);
    let text = std::process::Command::new(BIN)
        .args(["status", "--state-dir", s(&state), "--data-dir", s(&data)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains(&format!(
            "coverage pass: {total} of {total} bytes verified, done"
        )),
        "{stdout}"
    );
    assert!(sidecar.terminate().success(), "{}", sidecar_log(&log));
    for (valid, on_disk) in checkpoints(&data, &state) {
        assert_eq!(valid, on_disk, "the checkpoint reaches the end of the log");
    }
}

#[test]
fn after_a_restart_the_pass_goes_on_from_the_journaled_checkpoints() {
    let (_tmp, data, state, log, total) = setup();
    let args = [
        "--checkpoint-interval-ms",
        "50",
        "--coverage-mib-per-sec",
        "1",
    ];
    let mut first = Sidecar::spawn_with(&data, &state, &log, &[], &args);
    first.wait_watching(Duration::from_secs(30));
    wait_for(Duration::from_secs(30), "a MiB verified", || {
        (coverage(&first).1 >= 1 << 20).then_some(())
    });
    // SIGKILL: only what the checkpoints journaled survives.
    first.kill();
    let vouched: u64 = checkpoints(&data, &state).iter().map(|(v, _)| v).sum();
    assert!(vouched > 0, "checkpoints were journaled during the pass");

    let mut second = Sidecar::spawn_with(&data, &state, &log, &[], &args);
    second.wait_watching(Duration::from_secs(30));
    let (to_verify, _, _) = coverage(&second);
    assert_eq!(
        to_verify,
        total - vouched,
        "the pass resumes at the checkpoints"
    );
    let verified = wait_for(Duration::from_secs(60), "the pass to end", || {
        let (_, verified, left) = coverage(&second);
        (left == 0).then_some(verified)
    });
    assert_eq!(verified, total - vouched, "no byte read twice");
    assert!(second.terminate().success(), "{}", sidecar_log(&log));
    for (valid, on_disk) in checkpoints(&data, &state) {
        assert_eq!(valid, on_disk);
    }
}

fn sidecar_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}
