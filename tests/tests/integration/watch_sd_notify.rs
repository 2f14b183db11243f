//! The systemd protocol against a real `NOTIFY_SOCKET`: `READY=1` only once the
//! start-up reconciliation is journaled, `WATCHDOG=1` at half of `WATCHDOG_USEC`,
//! `STOPPING=1` and exit 0 on SIGTERM.

use crate::watch_common;

use harness::{DataDirBuilder, PartitionSpec};
use journal::{Journal, SegmentPhase};
use std::time::{Duration, Instant};
use watch_common::*;

const PARTITIONS: u32 = 200;
const WATCHDOG_USEC: u64 = 300_000;

#[test]
fn ready_comes_after_reconciliation_and_watchdog_pings_keep_time() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    let log = tmp.path().join("sidecar.log");
    let mut builder = DataDirBuilder::new().seed(7);
    for p in 0..PARTITIONS {
        builder = builder.partition(
            PartitionSpec::new(p % 4, 0, p / 4)
                .messages(12, 40..200, 0)
                .segment_size(600),
        );
    }
    builder.build(&data);
    let notify = NotifySocket::bind(&tmp.path().join("notify.sock"));
    let usec = WATCHDOG_USEC.to_string();
    let env = [
        ("NOTIFY_SOCKET", s(&notify.path)),
        ("WATCHDOG_USEC", usec.as_str()),
    ];

    // First run: killed the moment READY arrives. Everything on disk must already be
    // in the journal then, or READY came before the reconciliation.
    let sidecar = Sidecar::spawn(&data, &state, &log, &env);
    let ready = wait_for(Duration::from_secs(30), "READY=1", || {
        let (_, msg) = notify.recv()?;
        msg.lines().any(|l| l == "READY=1").then_some(msg)
    });
    sidecar.kill();
    assert!(
        ready.contains(&format!("STATUS=watching: {PARTITIONS} partitions watched")),
        "{ready}"
    );
    let layout = recovery::layout::discover(&data).unwrap();
    let journal = Journal::open(&state.join("journal")).unwrap();
    let mut segments = 0;
    for p in &layout.partitions {
        for seg in &p.segments {
            let st = journal
                .segment_state(&seg.key)
                .unwrap()
                .unwrap_or_else(|| panic!("READY before {} was journaled", seg.key));
            assert_ne!(st.phase, SegmentPhase::Deleted);
            segments += 1;
        }
    }
    drop(journal);
    assert!(segments > 2 * PARTITIONS as usize, "{segments} segments");
    while notify.recv().is_some() {}

    // Second run: watchdog pings at half of WATCHDOG_USEC, after READY as before.
    let sidecar = Sidecar::spawn(&data, &state, &log, &env);
    let mut pings = Vec::new();
    let mut ready_at = None;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let Some((at, msg)) = notify.recv() else {
            continue;
        };
        if msg.lines().any(|l| l == "READY=1") {
            ready_at = Some(at);
        }
        if msg.lines().any(|l| l == "WATCHDOG=1") && ready_at.is_some() {
            pings.push(at);
        }
        if ready_at.is_some_and(|r| at.duration_since(r) > Duration::from_secs(2)) {
            break;
        }
    }
    let ready_at = ready_at.expect("READY=1 on the second start");
    let timeout = Duration::from_micros(WATCHDOG_USEC);
    assert!(
        pings.len() >= 8,
        "{} pings in 2 s with WATCHDOG_USEC={WATCHDOG_USEC}",
        pings.len()
    );
    let mut last = ready_at;
    for at in &pings {
        let gap = at.duration_since(last);
        assert!(gap < timeout, "watchdog gap {gap:?} ≥ {timeout:?}");
        last = *at;
    }

    let status = sidecar.terminate();
    assert!(status.success(), "{status}");
    let mut stopping = false;
    while let Some((_, msg)) = notify.recv() {
        stopping |= msg.lines().any(|l| l == "STOPPING=1");
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
    journal_agrees_with_disk(&data, &state).unwrap();
}
