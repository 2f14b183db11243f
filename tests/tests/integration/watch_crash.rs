//! The sidecar killed at random moments while a writer creates partitions, appends,
//! rotates and deletes segments: after a final restart, the journal agrees with the
//! disk for every segment, and recovery can trust every sealed one.

use crate::watch_common;

use harness::{DataDirBuilder, PartitionSpec};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use watch_common::*;

#[test]
fn sigkill_at_random_moments_then_the_journal_agrees_with_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    let log = tmp.path().join("sidecar.log");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let built = DataDirBuilder::new()
        .seed(seed)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(40, 50..300, 0)
                .segment_size(4096),
        )
        .partition(
            PartitionSpec::new(0, 0, 1)
                .messages(5, 50..300, 0)
                .segment_size(4096),
        )
        .partition(PartitionSpec::new(1, 0, 0).segment_size(4096))
        .build(&data);
    let mut writer = LiveWriter::new(&data, 4096, seed);
    writer.adopt(&built);

    let done = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new((0u64, 0u64, 0u64)));
    let writer_thread = {
        let (done, stats) = (done.clone(), stats.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            let (mut rotations, mut deletions, mut created) = (0u64, 0u64, 0u64);
            let mut next_stream = 2;
            while started.elapsed() < Duration::from_secs(8) {
                let n = writer.partitions.len();
                let i = writer.rng.below(n as u64) as usize;
                let before = writer.partitions[i].segments.len();
                let batch = 1 + writer.rng.below(12) as usize;
                writer.append(i, batch, 20..=300);
                if writer.partitions[i].segments.len() > before {
                    rotations += 1;
                }
                match writer.rng.below(200) {
                    0..=1 => {
                        // A new partition in an existing topic, or a whole new stream.
                        if writer.rng.below(2) == 0 {
                            writer.add_partition(next_stream, 0, 0);
                            next_stream += 1;
                        } else {
                            let p = writer.partitions.len() as u32;
                            writer.add_partition(0, 0, p);
                        }
                        created += 1;
                    }
                    2..=5 if writer.retention(i, 3) => deletions += 1,
                    _ => {}
                }
                if writer.rng.below(4) == 0 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
            *stats.lock().unwrap() = (rotations, deletions, created);
            done.store(true, Ordering::SeqCst);
            writer
        })
    };

    let mut kills = 0;
    let mut rng = harness::writer::Rng::new(seed ^ 0x5eed);
    while !done.load(Ordering::SeqCst) {
        let sidecar = Sidecar::spawn(&data, &state, &log, &[]);
        // Some kills land mid start-up reconciliation, some while watching.
        std::thread::sleep(Duration::from_millis(30 + rng.below(700)));
        sidecar.kill();
        kills += 1;
    }
    let writer = writer_thread.join().unwrap();
    let (rotations, deletions, created) = *stats.lock().unwrap();
    eprintln!(
        "{kills} kills; writer: {rotations} rotations, {deletions} deletions, {created} partitions \
         created, {} partitions",
        writer.partitions.len()
    );
    assert!(
        kills >= 5 && rotations >= 50,
        "the scenario did not exercise enough"
    );

    let mut sidecar = Sidecar::spawn(&data, &state, &log, &[]);
    sidecar.wait_watching(Duration::from_secs(20));
    sidecar.wait_idle(Duration::from_secs(20));
    let anomalies = sidecar.counter("anomalies");
    let status = sidecar.terminate();
    assert!(status.success(), "exit after SIGTERM: {status}");
    let agreement = journal_agrees_with_disk(&data, &state).unwrap_or_else(|e| {
        panic!(
            "journal disagrees with disk: {e}\nsidecar log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    eprintln!("{agreement:?}");
    assert_eq!(agreement.partitions, writer.partitions.len());
    assert!(agreement.sealed > 0 && agreement.deleted + agreement.sealed > 0);
    assert_eq!(anomalies, 0, "healthy data reported anomalous");
}
