use super::*;
use journal::{CheckpointState, FileStamp, PartitionId, SegmentPhase};
use std::path::PathBuf;

fn files(log_len: u64, index_len: u64) -> SegmentFiles {
    SegmentFiles {
        key: PartitionId::new(1, 1, 1).segment(100),
        log_path: PathBuf::from("/d/p/00000000000000000100.log"),
        index_path: PathBuf::from("/d/p/00000000000000000100.index"),
        log_len: Some(log_len),
        index_len: Some(index_len),
        log_stamp: Some(stamp(7, log_len)),
        index_stamp: Some(stamp(8, index_len)),
    }
}

fn stamp(ino: u64, len: u64) -> FileStamp {
    FileStamp {
        ino,
        len,
        mtime_sec: 1,
        mtime_nsec: 2,
        ctime_sec: 3,
        ctime_nsec: 4,
    }
}

fn state(phase: SegmentPhase, checkpoint: Option<CheckpointState>) -> SegmentState {
    SegmentState {
        phase,
        last_seq: 1,
        checkpoint,
    }
}

fn sealed(log_len: u64, index_len: u64) -> SegmentPhase {
    SegmentPhase::Sealed {
        log_len,
        index_len,
        last_offset: Some(109),
        last_checksum: Some(5),
        last_start: Some(900),
    }
}

fn paths(reads: [Option<(&Path, u64, u64)>; 2]) -> Vec<(String, u64, u64)> {
    reads
        .into_iter()
        .flatten()
        .map(|(p, from, to)| (p.display().to_string(), from, to))
        .collect()
}

#[test]
fn an_open_segment_is_read_from_its_checkpoint_in_the_log_and_the_index() {
    let f = files(5000, 320);
    let checkpoint = CheckpointState {
        seq: 2,
        valid_len: 4000,
        next_offset: 116,
    };
    for phase in [SegmentPhase::Opened, SegmentPhase::SealIntent] {
        assert_eq!(
            paths(will_read(&f, &state(phase, Some(checkpoint)))),
            vec![
                (f.log_path.display().to_string(), 4000, 5000),
                (f.index_path.display().to_string(), 256, 320),
            ]
        );
    }
    // No checkpoint, or one past the log's end: scanned from the start, no advice.
    assert_eq!(
        paths(will_read(&f, &state(SegmentPhase::Opened, None))),
        vec![]
    );
    let beyond = CheckpointState {
        valid_len: 6000,
        ..checkpoint
    };
    assert_eq!(
        paths(will_read(&f, &state(SegmentPhase::Opened, Some(beyond)))),
        vec![]
    );
}

#[test]
fn a_sealed_segment_is_read_at_its_last_message_unless_its_stamps_vouch_for_it() {
    let f = files(1000, 160);
    assert_eq!(
        paths(will_read(&f, &state(sealed(1000, 160), None))),
        vec![(f.log_path.display().to_string(), 900, 1000)]
    );
    // Lengths that differ from the journaled ones: scanned in full, no advice.
    assert_eq!(
        paths(will_read(&f, &state(sealed(1200, 160), None))),
        vec![]
    );
    let stamped = |log: FileStamp| SegmentPhase::SealedStamped {
        log_len: 1000,
        index_len: 160,
        last_offset: Some(109),
        last_checksum: Some(5),
        last_start: Some(900),
        log,
        index: stamp(8, 160),
    };
    assert_eq!(
        paths(will_read(&f, &state(stamped(stamp(7, 1000)), None))),
        vec![]
    );
    assert_eq!(
        paths(will_read(&f, &state(stamped(stamp(9, 1000)), None))),
        vec![(f.log_path.display().to_string(), 900, 1000)]
    );
    assert_eq!(
        paths(will_read(&f, &state(SegmentPhase::Deleted, None))),
        vec![]
    );
}
