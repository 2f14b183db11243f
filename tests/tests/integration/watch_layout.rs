//! The sidecar survives any layout: a known partition folder replaced by a file while
//! it runs is a layout anomaly — logged, counted and shown in `STATUS` — never a
//! reason to exit. It goes on journaling the other partitions, restarts with the file
//! still there, and forgets the anomaly once a folder is back.

use crate::warden;
use crate::watch_common;

use harness::{DataDirBuilder, PartitionSpec};
use journal::{Journal, PartitionId, SegmentPhase};
use std::collections::HashMap;
use std::time::Duration;
use watch_common::*;

const WAIT: Duration = Duration::from_secs(30);
const REPLACED: &str = "streams/0/topics/0/partitions/1";

fn layout_anomalies(st: &HashMap<String, String>) -> Option<u64> {
    st.get("layout_anomalies")?.parse().ok()
}

#[test]
fn a_partition_folder_replaced_by_a_file_is_an_anomaly_not_an_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    let log = tmp.path().join("sidecar.log");
    let built = DataDirBuilder::new()
        .seed(21)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(20, 50..200, 0)
                .segment_size(1500)
                .trailing_empty_pair(false),
        )
        .partition(PartitionSpec::new(0, 0, 1).messages(4, 50..200, 0))
        .partition(PartitionSpec::new(1, 0, 0).messages(4, 50..200, 0))
        .build(&data);
    let mut writer = LiveWriter::new(&data, 1500, 21);
    writer.adopt(&built);

    let mut sidecar = Sidecar::spawn(&data, &state, &log, &[]);
    sidecar.wait_watching(WAIT);
    sidecar.wait_idle(WAIT);
    let st = sidecar.status().unwrap();
    assert_eq!(layout_anomalies(&st), Some(0), "{st:?}");
    assert!(!st.contains_key("anomaly"), "{st:?}");

    // The folder goes and a file takes its name, as fast as a shell does it.
    let replaced = data.join(REPLACED);
    std::fs::remove_dir_all(&replaced).unwrap();
    std::fs::write(&replaced, b"not a folder\n").unwrap();
    let expected = format!("{REPLACED}:not-a-folder");
    wait_for(WAIT, "the anomaly in STATUS", || {
        let st = sidecar.status()?;
        (st.get("anomaly") == Some(&expected)).then_some(st)
    });
    // A full reconciliation sees it again, and goes on too.
    assert_eq!(sidecar.control("RESCAN").as_deref(), Some("OK"));
    wait_for(WAIT, "the rescan", || {
        (sidecar.counter("reconciliations") >= 2).then_some(())
    });

    // The other partitions are still journaled: partition 0/0/0 rotates.
    let segments_before = writer.partitions[0].segments.clone();
    while writer.partitions[0].segments.len() == segments_before.len() {
        writer.append(0, 5, 50..=200);
    }
    writer.append(0, 2, 50..=200);
    writer.append(2, 3, 50..=200);
    sidecar.wait_idle(WAIT);
    let st = sidecar.status().unwrap();
    assert_eq!(layout_anomalies(&st), Some(1), "{st:?}");
    assert_eq!(st.get("anomaly"), Some(&expected), "{st:?}");
    assert_eq!(st.get("anomalies").map(String::as_str), Some("1"), "{st:?}");
    let text = sidecar.log_text();
    assert!(text.contains("layout anomaly"), "{text}");
    assert_eq!(
        text.matches("layout anomaly:").count(),
        1,
        "logged once: {text}"
    );
    let status = sidecar.terminate();
    assert!(status.success(), "{status}");

    let journal = Journal::open(&state.join("journal")).unwrap();
    let states: HashMap<_, _> = journal.all_segment_states().unwrap().into_iter().collect();
    drop(journal);
    let gone = PartitionId::new(0, 0, 1);
    let p0 = PartitionId::new(0, 0, 0);
    for (key, st) in &states {
        if key.partition == gone {
            assert_eq!(st.phase, SegmentPhase::Deleted, "{key}: its folder is gone");
        }
    }
    let newest = *writer.partitions[0].segments.last().unwrap();
    let sealed = *segments_before.last().unwrap();
    assert_eq!(
        states.get(&p0.segment(newest)).map(|s| &s.phase),
        Some(&SegmentPhase::Opened),
        "the new segment of 0/0/0 is journaled"
    );
    assert!(
        matches!(
            states.get(&p0.segment(sealed)).map(|s| &s.phase),
            Some(SegmentPhase::Sealed { .. })
        ),
        "the rotated segment of 0/0/0 is journaled sealed: {:?}",
        states.get(&p0.segment(sealed))
    );
    let p2 = PartitionId::new(1, 0, 0);
    assert!(
        states
            .get(&p2.segment(0))
            .and_then(|s| s.checkpoint)
            .is_some_and(|c| c.next_offset == 7),
        "1/0/0's new messages are checkpointed: {:?}",
        states.get(&p2.segment(0))
    );

    // With the file still there the sidecar starts again.
    let mut sidecar = Sidecar::spawn(&data, &state, &log, &[]);
    sidecar.wait_watching(WAIT);
    let st = sidecar.status().unwrap();
    assert_eq!(layout_anomalies(&st), Some(1), "{st:?}");
    assert_eq!(st.get("anomaly"), Some(&expected), "{st:?}");

    // A folder back in its place ends the anomaly.
    std::fs::remove_file(&replaced).unwrap();
    writer.add_partition(0, 0, 1);
    wait_for(WAIT, "the anomaly to be resolved", || {
        let st = sidecar.status()?;
        (layout_anomalies(&st) == Some(0) && !st.contains_key("anomaly")).then_some(())
    });
    sidecar.wait_idle(WAIT);
    assert_eq!(sidecar.counter("anomalies"), 1);
    let status = sidecar.terminate();
    assert!(status.success(), "{status}");
    let run = warden(["journal", "--state-dir", s(&state), "verify"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}
