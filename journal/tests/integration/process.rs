//! Tests that need a second process: crash safety under SIGKILL, and the file lock.
//!
//! The child is this same test binary, re-executed to run one `*_child` test with an
//! environment variable set; without the variable those tests return at once.

use crate::common;

use common::{child, record_for, Rng};
use journal::{Journal, JournalError, Record};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::{mpsc, Arc};
use std::time::Duration;

const CRASH_DIR: &str = "IWJ_TEST_CRASH_DIR";
const CRASH_ROUND: &str = "IWJ_TEST_CRASH_ROUND";
const LOCK_DIR: &str = "IWJ_TEST_LOCK_DIR";
const WRITERS: u64 = 4;

/// Child: appends from several threads until killed, printing `ACK seq writer i` for
/// every acknowledged record (and only after the append returned).
#[test]
fn crash_child() {
    let (Ok(dir), Ok(round)) = (std::env::var(CRASH_DIR), std::env::var(CRASH_ROUND)) else {
        return;
    };
    let round: u64 = round.parse().expect("round");
    let journal = Arc::new(Journal::open(Path::new(&dir)).expect("child opens journal"));
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let journal = Arc::clone(&journal);
            let writer = round * 100 + t;
            std::thread::spawn(move || {
                let mut i = 0u64;
                loop {
                    // Every fourth step is a batch of three, to crash batches too.
                    let acks: Vec<(u64, u64)> = if i % 4 == 3 {
                        let recs = (i..i + 3).map(|k| record_for(writer, k)).collect();
                        let seqs = journal.append_batch(recs).expect("append_batch");
                        let acks = seqs.into_iter().zip(i..).collect();
                        i += 3;
                        acks
                    } else {
                        let seq = journal.append(record_for(writer, i)).expect("append");
                        i += 1;
                        vec![(seq, i - 1)]
                    };
                    let mut out = std::io::stdout().lock();
                    for (seq, k) in acks {
                        writeln!(out, "ACK {seq} {writer} {k}").expect("stdout");
                    }
                    out.flush().expect("flush stdout");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// Parses the complete `ACK` lines a child printed (a killed child may leave half a
/// line, which is ignored: it was never fully acknowledged to us).
fn parse_acks(out: &[u8], acked: &mut BTreeMap<u64, Record>) {
    for line in out.split_inclusive(|b| *b == b'\n') {
        let Some(line) = line.strip_suffix(b"\n") else {
            continue;
        };
        let line = String::from_utf8_lossy(line);
        let mut parts = line.split_whitespace();
        if parts.next() != Some("ACK") {
            continue;
        }
        let nums: Vec<u64> = parts.map(|p| p.parse().expect("ack number")).collect();
        let &[seq, writer, i] = nums.as_slice() else {
            panic!("malformed ack line {line:?}");
        };
        let record = record_for(writer, i);
        if let Some(previous) = acked.insert(seq, record.clone()) {
            panic!("seq {seq} acknowledged twice: {previous:?} and {record:?}");
        }
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::from_time();
    let mut acked = BTreeMap::new();
    let rounds = 12;
    for round in 0..rounds {
        let mut proc = child(
            "process::crash_child",
            &[
                (CRASH_DIR, dir.path().display().to_string()),
                (CRASH_ROUND, round.to_string()),
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
        let stdout = proc.stdout.take().expect("child stdout");
        let (first_ack, got_first_ack) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut all = Vec::new();
            let mut line = Vec::new();
            let mut signalled = false;
            while reader.read_until(b'\n', &mut line).map_or(0, |n| n) > 0 {
                if !signalled && line.starts_with(b"ACK ") {
                    signalled = first_ack.send(()).is_ok();
                }
                all.append(&mut line);
            }
            all
        });
        // Kill at a random moment of steady appending, not during process start-up.
        got_first_ack
            .recv_timeout(Duration::from_secs(30))
            .expect("child acknowledged nothing within 30 s");
        std::thread::sleep(Duration::from_millis(rng.between(20, 200)));
        proc.kill().expect("SIGKILL child");
        proc.wait().expect("reap child");
        let out = reader.join().expect("reader thread");
        parse_acks(&out, &mut acked);

        let journal = Journal::open(dir.path()).expect("reopen after SIGKILL");
        let entries: Vec<_> = journal
            .records_since(0)
            .collect::<Result<_, _>>()
            .expect("read every record after SIGKILL");
        let last = journal.last_seq().expect("last_seq");
        assert_eq!(
            entries.len() as u64,
            last,
            "round {round}: records 1..={last} expected"
        );
        for (n, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.seq,
                n as u64 + 1,
                "round {round}: gap before seq {}",
                entry.seq
            );
        }
        for (seq, record) in &acked {
            let entry = entries.get(*seq as usize - 1).unwrap_or_else(|| {
                panic!("round {round}: acknowledged seq {seq} lost (last {last})")
            });
            assert_eq!(&entry.record, record, "round {round}: seq {seq} differs");
        }
        let report = journal.verify().expect("verify");
        assert!(report.is_sound(), "round {round}: {report}");
        let max_acked = acked.keys().next_back().copied().unwrap_or(0);
        println!(
            "round {round}: {} acknowledged so far, last seq {last} (highest acked {max_acked})",
            acked.len()
        );
    }
    assert!(
        acked.len() > rounds * 10,
        "only {} records acknowledged over {rounds} rounds: the test proved little",
        acked.len()
    );
}

/// Child: tries to open a journal the parent holds open.
#[test]
fn locked_child() {
    let Ok(dir) = std::env::var(LOCK_DIR) else {
        return;
    };
    match Journal::open(Path::new(&dir)) {
        Err(e @ JournalError::Locked { .. }) => {
            assert!(!e.is_unusable() && e.is_locked());
            assert!(e.to_string().contains(&dir), "error names the path: {e}");
            println!("LOCKED-OK {e}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn second_process_gets_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(dir.path()).expect("open");
    journal.append(record_for(1, 0)).expect("append");
    let out = child(
        "process::locked_child",
        &[(LOCK_DIR, dir.path().display().to_string())],
    )
    .output()
    .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("LOCKED-OK"),
        "child did not see Locked: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    drop(journal);
    // Once released, the journal opens again with its record.
    let journal = Journal::open(dir.path()).expect("reopen");
    assert_eq!(journal.last_seq().expect("last_seq"), 1);
}
