//! An inotify queue overflow, made real: the sidecar is frozen (SIGSTOP) while events
//! flood its queue past `fs.inotify.max_queued_events`, then segments are rotated,
//! deleted and created, whose events the kernel drops. Thawed, the sidecar sees the
//! overflow and reconciles everything: the journal agrees with the disk again.

use crate::watch_common;

use harness::{DataDirBuilder, PartitionSpec};
use std::time::Duration;
use watch_common::*;

#[test]
fn an_inotify_overflow_triggers_a_rescan_that_repairs_the_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    let log = tmp.path().join("sidecar.log");
    let built = DataDirBuilder::new()
        .seed(3)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(60, 50..200, 0)
                .segment_size(2048)
                .trailing_empty_pair(false),
        )
        .partition(PartitionSpec::new(0, 0, 1).messages(3, 50..200, 0))
        .build(&data);
    let mut writer = LiveWriter::new(&data, 2048, 3);
    writer.adopt(&built);

    let mut sidecar = Sidecar::spawn(&data, &state, &log, &[]);
    sidecar.wait_watching(Duration::from_secs(20));
    sidecar.wait_idle(Duration::from_secs(20));
    assert_eq!(sidecar.counter("overflows"), 0);

    signal(sidecar.pid(), "STOP");
    let max_queued: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Alternating opens of two watched files: inotify merges only identical
    // consecutive events, so each open takes a queue slot.
    let p0 = writer.partitions[0].dir.clone();
    let files: Vec<_> = std::fs::read_dir(&p0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .take(2)
        .collect();
    for i in 0..2 * max_queued + 100 {
        drop(std::fs::File::open(&files[i % 2]).unwrap());
    }
    // Changes whose events the full queue drops.
    let before = writer.partitions[0].segments.len();
    while writer.partitions[0].segments.len() == before {
        writer.append(0, 5, 50..=200);
    }
    writer.append(0, 2, 50..=200);
    assert!(writer.retention(0, 2));
    let p = writer.add_partition(7, 0, 0);
    writer.append(p, 30, 50..=200);
    writer.rotate(p);
    writer.append(1, 4, 50..=200);
    signal(sidecar.pid(), "CONT");

    wait_for(
        Duration::from_secs(20),
        "the overflow to be noticed",
        || (sidecar.counter("overflows") >= 1).then_some(()),
    );
    sidecar.wait_idle(Duration::from_secs(20));
    let text = sidecar.log_text();
    assert!(text.contains("overflowed"), "{text}");
    let status = sidecar.terminate();
    assert!(status.success(), "{status}");
    let agreement = journal_agrees_with_disk(&data, &state).unwrap_or_else(|e| {
        panic!(
            "journal disagrees with disk after the rescan: {e}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    assert_eq!(agreement.partitions, 3);
    assert!(agreement.deleted >= 1);
}
