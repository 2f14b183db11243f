//! The planner's unit tests: per damage, the exact actions of each mode.

use super::*;
use crate::test_support::{entry, message, Segment, TestDir, ENTRY, HEADER};
use journal::SegmentFile::{Index, Log};
use xxhash_rust::xxh3::xxh3_64;

/// A change that damages a test segment.
type Damage = fn(&mut Segment);

const REPAIRING: [Mode; 3] = [Mode::TolerateTail, Mode::PointInTime, Mode::Salvage];

/// `count` messages from offset 0 with `damage` applied to the segment, and the
/// bytes its log had before.
fn damaged(count: u64, damage: impl FnOnce(&mut Segment)) -> (TestDir, u64) {
    let mut seg = Segment::whole(0, count);
    let whole = seg.log_len();
    damage(&mut seg);
    (TestDir::new(&[seg]), whole)
}

/// The index rebuild of segment `start`, whose valid messages are `count` from
/// `start`: the digest is that of the entries the server writes for them.
fn rewrite(dir: &TestDir, start: u64, count: u64, original_len: Option<u64>) -> RepairAction {
    let index = Segment::whole(start, count).index.unwrap_or_default();
    RepairAction::RewriteIndex {
        segment: dir.key(start),
        original_len,
        new_len: index.len() as u64,
        new_xxh3: xxh3_64(&index),
    }
}

#[test]
fn a_clean_partition_plans_nothing_in_any_mode() {
    let dir = TestDir::new(&[Segment::whole(0, 4), Segment::whole(4, 3)]);
    for mode in REPAIRING.into_iter().chain([Mode::Absolute]) {
        let plan = dir.plan(mode);
        assert!(plan.problems.is_empty(), "{mode}: {:?}", plan.problems);
        assert!(plan.actions.is_empty(), "{mode}: {:?}", plan.actions);
        assert!(!plan.needs_operator(), "{mode}");
    }
}

#[test]
fn a_torn_tail_is_cut_after_the_last_whole_message() {
    let (dir, whole) = damaged(3, |s| {
        s.log_mut().extend(&message(3, b"torn")[..HEADER + 2])
    });
    let cut = RepairAction::TruncateLog {
        segment: dir.key(0),
        keep_len: whole,
        original_len: whole + HEADER as u64 + 2,
    };
    // Salvage finds nothing more to keep, so it makes the tolerate-tail cut.
    for mode in REPAIRING {
        assert_eq!(dir.actions(mode), std::slice::from_ref(&cut), "{mode}");
    }
    assert_eq!(
        dir.refusal(Mode::Absolute),
        "mode absolute repairs nothing; valid messages kept by each mode: salvage 3, \
         point-in-time 3, tolerate-tail 3; run with --mode tolerate-tail to keep every \
         valid message"
    );
}

#[test]
fn a_torn_tail_the_index_already_counted_also_cuts_the_index() {
    let (dir, whole) = damaged(3, |s| {
        s.log_mut().extend(&message(3, b"torn")[..20]);
        s.index_mut().extend(entry(3, 9_999, 1_003));
    });
    assert_eq!(
        dir.actions(Mode::TolerateTail),
        [
            RepairAction::TruncateLog {
                segment: dir.key(0),
                keep_len: whole,
                original_len: whole + 20,
            },
            RepairAction::TruncateIndex {
                segment: dir.key(0),
                keep_len: 3 * ENTRY as u64,
                original_len: 4 * ENTRY as u64,
            },
        ]
    );
}

#[test]
fn a_zero_tail_and_a_corrupt_last_message_are_cut_too() {
    let (dir, whole) = damaged(3, |s| s.log_mut().extend([0u8; 4096]));
    assert_eq!(
        dir.actions(Mode::TolerateTail),
        [RepairAction::TruncateLog {
            segment: dir.key(0),
            keep_len: whole,
            original_len: whole + 4096,
        }]
    );

    // The last message goes; its index entry with it.
    let (dir, whole) = damaged(3, |s| {
        let len = s.log_mut().len();
        s.log_mut()[len - 1] ^= 1;
    });
    let two = Segment::whole(0, 2).log_len();
    assert_eq!(
        dir.actions(Mode::TolerateTail),
        [
            RepairAction::TruncateLog {
                segment: dir.key(0),
                keep_len: two,
                original_len: whole,
            },
            RepairAction::TruncateIndex {
                segment: dir.key(0),
                keep_len: 2 * ENTRY as u64,
                original_len: 3 * ENTRY as u64,
            },
        ]
    );
}

#[test]
fn an_index_longer_than_its_log_is_cut_to_its_messages() {
    let (dir, _) = damaged(4, |s| {
        s.index_mut().extend(entry(4, 9_999, 1_004));
        s.index_mut().extend(entry(5, 10_999, 1_005));
    });
    let cut = RepairAction::TruncateIndex {
        segment: dir.key(0),
        keep_len: 4 * ENTRY as u64,
        original_len: 6 * ENTRY as u64,
    };
    for mode in REPAIRING {
        assert_eq!(dir.actions(mode), std::slice::from_ref(&cut), "{mode}");
    }
    // Half an entry past the last whole one: cut as well.
    let (dir, _) = damaged(4, |s| s.index_mut().extend([9u8; 8]));
    assert_eq!(
        dir.actions(Mode::TolerateTail),
        [RepairAction::TruncateIndex {
            segment: dir.key(0),
            keep_len: 4 * ENTRY as u64,
            original_len: 4 * ENTRY as u64 + 8,
        }]
    );
}

#[test]
fn a_short_missing_or_wrong_index_is_rebuilt_from_the_log() {
    let cases: [(&str, Damage, Option<u64>); 4] = [
        ("short", |s| s.index_mut().truncate(2 * ENTRY), Some(32)),
        (
            "short by half an entry",
            |s| s.index_mut().truncate(4 * ENTRY - 8),
            Some(56),
        ),
        ("missing", |s| s.index = None, None),
        (
            "a wrong position",
            |s| s.index_mut()[ENTRY + 4] ^= 1,
            Some(64),
        ),
    ];
    for (what, damage, original_len) in cases {
        let (dir, _) = damaged(4, damage);
        for mode in REPAIRING {
            assert_eq!(
                dir.actions(mode),
                [rewrite(&dir, 0, 4, original_len)],
                "{what}, {mode}"
            );
        }
    }
}

#[test]
fn a_cut_in_the_newest_segment_that_leaves_it_empty_takes_it_out() {
    // A torn first message in a just-rotated segment: the segment goes, newest
    // file first, since the server resets offsets on an empty newest segment.
    let mut fresh = Segment::empty(3);
    fresh.log_mut().extend(&message(3, b"torn")[..30]);
    let dir = TestDir::new(&[Segment::whole(0, 3), fresh]);
    let quarantined = [
        RepairAction::QuarantineFile {
            path: dir.rel(3, Index),
            len: 0,
        },
        RepairAction::QuarantineFile {
            path: dir.rel(3, Log),
            len: 30,
        },
    ];
    for mode in REPAIRING {
        assert_eq!(dir.actions(mode), quarantined, "{mode}");
    }

    let dir = TestDir::new(&[Segment::whole(0, 3), Segment::empty(3)]);
    assert_eq!(
        dir.actions(Mode::TolerateTail),
        [
            RepairAction::QuarantineFile {
                path: dir.rel(3, Index),
                len: 0,
            },
            RepairAction::QuarantineFile {
                path: dir.rel(3, Log),
                len: 0,
            },
        ]
    );
}

#[test]
fn the_last_segment_stays_even_when_nothing_valid_is_left() {
    // The server panics on a partition without a log: an empty one stays.
    let (dir, _) = damaged(0, |s| s.log_mut().extend(&message(0, b"torn")[..10]));
    assert_eq!(
        dir.actions(Mode::TolerateTail),
        [RepairAction::TruncateLog {
            segment: dir.key(0),
            keep_len: 0,
            original_len: 10,
        }]
    );
}

#[test]
fn an_overlapping_segment_only_point_in_time_cuts_and_salvage_re_lays() {
    // Offsets 3 and 4 twice: the second segment starts inside the first.
    let second = Segment::whole(3, 4);
    let dir = TestDir::new(&[Segment::whole(0, 5), second.clone()]);

    let why = dir.refusal(Mode::TolerateTail);
    assert!(why.contains("damage before the end"), "{why}");
    assert!(why.contains("point-in-time 5"), "{why}");

    assert_eq!(
        dir.actions(Mode::PointInTime),
        [
            RepairAction::QuarantineFile {
                path: dir.rel(3, Index),
                len: second.index_len(),
            },
            RepairAction::QuarantineFile {
                path: dir.rel(3, Log),
                len: second.log_len(),
            },
        ]
    );

    // Salvage keeps offsets 0 to 6, one copy of 3 and 4.
    let actions = dir.actions(Mode::Salvage);
    let [RepairAction::Relay {
        partition,
        segments,
        ..
    }] = actions.as_slice()
    else {
        panic!("salvage plans one re-lay: {actions:#?}");
    };
    assert_eq!(*partition, dir.id);
    let kept: u64 = segments.iter().map(|s| s.messages).sum();
    assert_eq!((segments[0].start_offset, kept), (0, 7), "{segments:#?}");
}

#[test]
fn mid_file_corruption_is_cut_by_point_in_time_and_skipped_by_salvage() {
    let (dir, _) = damaged(5, |s| {
        let second = Segment::whole(0, 1).log_len() as usize;
        s.log_mut()[second + HEADER] ^= 1;
    });
    let why = dir.refusal(Mode::TolerateTail);
    assert!(why.contains("mid-file-corruption"), "{why}");
    assert_eq!(
        dir.refusal(Mode::Absolute),
        "mode absolute repairs nothing; valid messages kept by each mode: salvage 4, \
         point-in-time 1, tolerate-tail refuses; run with --mode salvage to keep every \
         valid message"
    );

    let original_len = Segment::whole(0, 5).log_len();
    assert_eq!(
        dir.actions(Mode::PointInTime),
        [
            RepairAction::TruncateLog {
                segment: dir.key(0),
                keep_len: Segment::whole(0, 1).log_len(),
                original_len,
            },
            RepairAction::TruncateIndex {
                segment: dir.key(0),
                keep_len: ENTRY as u64,
                original_len: 5 * ENTRY as u64,
            },
        ]
    );

    let actions = dir.actions(Mode::Salvage);
    let [RepairAction::Relay { segments, .. }] = actions.as_slice() else {
        panic!("salvage plans one re-lay: {actions:#?}");
    };
    let kept: u64 = segments.iter().map(|s| s.messages).sum();
    assert_eq!(kept, 4, "every message but the damaged one: {segments:#?}");
}

#[test]
fn a_zero_hole_before_more_messages_is_salvaged_with_its_signature() {
    // 0.6.0's rotation race: zeros where a write never landed, then later writes.
    let mut seg = Segment::whole(0, 2);
    let before_hole = seg.log_len();
    seg.log_mut().extend([0u8; 500]);
    for offset in 2..4 {
        seg.log_mut().extend(message(offset, b"after the hole"));
    }
    let dir = TestDir::new(&[seg]);

    assert!(dir
        .refusal(Mode::TolerateTail)
        .contains("mid-file-corruption"));
    assert_eq!(
        dir.actions(Mode::PointInTime)[0],
        RepairAction::TruncateLog {
            segment: dir.key(0),
            keep_len: before_hole,
            original_len: before_hole + 500 + 2 * (HEADER as u64 + 14),
        }
    );

    let plan = dir.plan(Mode::Salvage);
    assert!(!plan.needs_operator(), "{:#?}", plan.refusals);
    let [PlannedAction {
        action: RepairAction::Relay { segments, .. },
        reason,
        ..
    }] = plan.actions.as_slice()
    else {
        panic!("salvage plans one re-lay: {:#?}", plan.actions);
    };
    assert!(reason.contains("zero-hole"), "{reason}");
    let kept: u64 = segments.iter().map(|s| s.messages).sum();
    assert_eq!(kept, 4, "{segments:#?}");
}

#[test]
fn missing_offsets_folders_are_created_and_short_offset_files_taken_out() {
    let dir = TestDir::new(&[Segment::whole(0, 2)]);
    let offsets = dir.partition_dir().join("offsets");
    std::fs::remove_dir(offsets.join("groups")).unwrap();
    std::fs::write(offsets.join("consumers/7"), [1, 2, 3]).unwrap();
    let rel = |tail: &str| format!("{}/offsets/{tail}", dir.id.rel_dir());
    let expected = [
        RepairAction::CreateDir {
            path: rel("groups"),
        },
        RepairAction::QuarantineFile {
            path: rel("consumers/7"),
            len: 3,
        },
    ];
    for mode in REPAIRING {
        assert_eq!(dir.actions(mode), expected, "{mode}");
    }
}

#[test]
fn a_stray_log_or_an_unreadable_offset_name_stops_every_mode() {
    let (dir, _) = damaged(2, |s| s.log_mut().extend([0u8; 10]));
    std::fs::write(dir.partition_dir().join("old.log"), b"x").unwrap();
    for mode in REPAIRING {
        assert!(dir.refusal(mode).contains("stray .log"), "{mode}");
    }

    let (dir, _) = damaged(2, |s| s.log_mut().extend([0u8; 10]));
    let name = dir.partition_dir().join("offsets/consumers/name");
    std::fs::write(name, [0; 8]).unwrap();
    for mode in REPAIRING {
        assert!(
            dir.refusal(mode).contains("not named by a number"),
            "{mode}"
        );
    }
}

#[test]
fn least_invasive_mode_is_the_first_that_keeps_every_message() {
    let counts = |tolerate_tail, point_in_time| ModeCounts {
        partition: PartitionId::new(1, 1, 1),
        salvage: 10,
        point_in_time,
        tolerate_tail,
    };
    assert_eq!(counts(Some(10), 10).least_invasive(), Mode::TolerateTail);
    assert_eq!(counts(None, 10).least_invasive(), Mode::PointInTime);
    assert_eq!(counts(Some(8), 8).least_invasive(), Mode::Salvage);
}
