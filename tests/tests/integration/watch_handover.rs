//! The journal handover: while the sidecar runs, `iggy-warden recover` borrows the
//! journal over `<state dir>/sidecar.sock` and gives it back; a client that dies
//! holding the lease gives it back too. Afterwards the sidecar journals again.

use crate::warden;
use crate::watch_common;

use harness::{DataDirBuilder, PartitionSpec};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;
use watch_common::*;

#[test]
fn recover_borrows_the_journal_from_a_running_sidecar_which_then_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    let log = tmp.path().join("sidecar.log");
    let built = DataDirBuilder::new()
        .seed(11)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(30, 50..200, 0)
                .segment_size(1500)
                .trailing_empty_pair(false),
        )
        .partition(PartitionSpec::new(0, 0, 1).messages(4, 50..200, 0))
        .build(&data);
    let mut writer = LiveWriter::new(&data, 1500, 11);
    writer.adopt(&built);

    let mut sidecar = Sidecar::spawn(&data, &state, &log, &[]);
    sidecar.wait_watching(Duration::from_secs(20));
    sidecar.wait_idle(Duration::from_secs(20));

    // recover needs the journal: without the handover it would find it locked.
    let run = warden(["recover", "--data-dir", s(&data), "--state-dir", s(&state)]);
    assert_eq!(run.code, 0, "recover: {}\n{}", run.stdout, run.stderr);
    wait_for(
        Duration::from_secs(20),
        "the sidecar to take the journal back",
        || {
            let st = sidecar.status()?;
            (st.get("state").map(String::as_str) == Some("watching")
                && st.get("reconciliations").map(String::as_str) == Some("2"))
            .then_some(())
        },
    );

    // A raw client: RELEASED means the journal is free for this process to open.
    let mut conn = UnixStream::connect(state.join("sidecar.sock")).unwrap();
    conn.write_all(b"RELEASE\n").unwrap();
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).unwrap();
    assert_eq!(line, "RELEASED\n");
    assert_eq!(
        sidecar.status().unwrap().get("state").map(String::as_str),
        Some("released")
    );
    let journal = journal::Journal::open(&state.join("journal")).unwrap();
    drop(journal);
    // The client goes away without a word, as a killed process would.
    drop(conn);
    wait_for(Duration::from_secs(20), "the sidecar to resume", || {
        let st = sidecar.status()?;
        (st.get("state").map(String::as_str) == Some("watching")
            && st.get("reconciliations").map(String::as_str) == Some("3"))
        .then_some(())
    });

    // And it journals again: a rotation, and appends to the new segment.
    let before = writer.partitions[0].segments.len();
    while writer.partitions[0].segments.len() == before {
        writer.append(0, 3, 50..=200);
    }
    writer.append(0, 2, 50..=200);
    let journaled = sidecar.counter("journaled");
    sidecar.wait_idle(Duration::from_secs(20));
    assert!(sidecar.counter("journaled") > journaled);
    let status = sidecar.terminate();
    assert!(status.success(), "{status}");
    assert!(!state.join("sidecar.sock").exists(), "socket left behind");
    let agreement = journal_agrees_with_disk(&data, &state)
        .unwrap_or_else(|e| panic!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()));
    assert!(agreement.sealed >= 2, "{agreement:?}");

    // No sidecar: recover opens the journal itself, as before.
    let run = warden(["recover", "--data-dir", s(&data), "--state-dir", s(&state)]);
    assert_eq!(run.code, 0, "recover: {}\n{}", run.stdout, run.stderr);
}
