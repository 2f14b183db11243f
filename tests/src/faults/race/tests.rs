//! Self-tests of the race faults: the exact bytes each changes on a built partition,
//! and, on built shapes and the real fixtures, that a fresh resynchronising scan finds
//! exactly the valid offsets the report predicted.

use super::super::tests::{apply_checked, built, P};
use super::*;
use crate::fixtures::{
    copy_of, fixture_copy, FixtureCopy, CLEAN, KILLED_UNDER_LOAD, RACE_ROTATION,
};
use crate::format::{decode_index, decode_message};
use crate::layout::segment_file_name;
use crate::salvage::{partition_valid_messages, PartitionMessages};
use crate::snapshot::{diff, snapshot};
use crate::writer::{DataDirBuilder, PartitionSpec};
use crate::{apply, race_faults, Fault, FaultReport};

fn name(start: u64, extension: &str) -> String {
    format!("{P}/{}", segment_file_name(start, extension))
}

fn salvage(copy: &FixtureCopy, partition: &str) -> PartitionMessages {
    partition_valid_messages(copy.path(), partition).unwrap()
}

/// Applies `fault` through the common checks and compares the report's prediction with
/// a fresh scan; returns the report and the scans before and after.
fn apply_predicted(
    copy: &FixtureCopy,
    partition: &str,
    fault: RaceFault,
) -> (FaultReport, PartitionMessages, PartitionMessages) {
    let before = salvage(copy, partition);
    let (_, _, report) = apply_checked(copy, partition, Fault::Race(fault));
    check_prediction(&report, &before, &salvage(copy, partition));
    (report, before, salvage(copy, partition))
}

fn check_prediction(report: &FaultReport, before: &PartitionMessages, after: &PartitionMessages) {
    let s = report
        .survivors
        .as_ref()
        .expect("race faults predict survivors");
    let what = &report.description;
    assert_eq!(s.valid_offsets, after.distinct_offsets(), "{what}");
    assert_eq!(s.conflicting_offsets, after.conflicting_offsets(), "{what}");
    let kept = after.distinct_offsets();
    let lost: Vec<u64> = before
        .distinct_offsets()
        .into_iter()
        .filter(|o| kept.binary_search(o).is_err())
        .collect();
    assert_eq!(s.lost_offsets, lost, "{what}");
}

fn all_but(gone: &[u64]) -> Vec<u64> {
    (0..25).filter(|o| !gone.contains(o)).collect()
}

fn offsets_in(p: &PartitionMessages, start: u64) -> Vec<u64> {
    let file = segment_file_name(start, "log");
    p.messages
        .iter()
        .filter(|m| m.file == file)
        .map(|m| m.offset)
        .collect()
}

// The built partition: 25 messages of 156 bytes; segments 0 (0..9), 10 (10..19, the
// newest sealed) and 20 (20..24, the newest).

#[test]
fn misplaced_batch_moves_a_run_into_the_middle_of_the_newest_segment() {
    let copy = built();
    let old = snapshot(copy.path());
    let (report, _, after) = apply_predicted(&copy, P, RaceFault::MisplacedBatch { messages: 3 });
    let new = snapshot(copy.path());
    assert_eq!(new[&name(10, "log")], old[&name(10, "log")][..1092]);
    assert_eq!(new[&name(10, "index")], old[&name(10, "index")][..112]);
    let moved = [
        &old[&name(20, "log")][..312],
        &old[&name(10, "log")][1092..],
        &old[&name(20, "log")][312..],
    ]
    .concat();
    assert_eq!(new[&name(20, "log")], moved);
    assert_eq!(new[&name(20, "index")], old[&name(20, "index")]);
    assert_eq!(offsets_in(&after, 20), [20, 21, 17, 18, 19, 22, 23, 24]);
    let s = report.survivors.unwrap();
    assert_eq!(s.valid_offsets, all_but(&[]), "every message kept");
    assert!(s.lost_offsets.is_empty() && s.conflicting_offsets.is_empty());
    assert_eq!(report.affected_offsets, [17, 18, 19, 22, 23, 24]);
    assert_eq!(report.intact_messages_before, 17);
    assert_eq!(
        (report.path, report.offset),
        (copy.path().join(name(20, "log")), 312)
    );
}

#[test]
fn zero_hole_sealed_zeroes_whole_messages_or_cuts_through_them() {
    for (through, from, to, gone) in [
        (false, 468, 780, vec![13, 14]),
        (true, 468 + 78, 780 + 78, vec![13, 14, 15]),
    ] {
        let copy = built();
        let old = snapshot(copy.path());
        let fault = RaceFault::ZeroHoleSealed {
            messages: 2,
            through_messages: through,
        };
        let (report, _, after) = apply_predicted(&copy, P, fault);
        let new = snapshot(copy.path());
        let (old_log, new_log) = (&old[&name(10, "log")], &new[&name(10, "log")]);
        assert_eq!(new_log[..from], old_log[..from]);
        assert!(new_log[from..to].iter().all(|&b| b == 0));
        assert_eq!(new_log[to..], old_log[to..]);
        assert_eq!(new[&name(10, "index")], old[&name(10, "index")]);
        assert_eq!(
            after.distinct_offsets(),
            all_but(&gone),
            "through {through}"
        );
        let s = report.survivors.unwrap();
        assert_eq!(s.lost_offsets, gone);
        assert_eq!(report.affected_offsets, gone);
        assert_eq!(report.intact_messages_before, 13);
        assert_eq!(report.offset, from as u64);
    }
}

#[test]
fn ghost_index_entries_point_past_the_sealed_log() {
    let copy = built();
    let old = snapshot(copy.path());
    let fault = RaceFault::GhostIndexEntries { entries: 4 };
    let (report, before, after) = apply_predicted(&copy, P, fault);
    let new = snapshot(copy.path());
    let index = &new[&name(10, "index")];
    assert_eq!(index[..160], old[&name(10, "index")][..]);
    let last_ts = decode_index(&old[&name(10, "index")])[9].timestamp;
    let ghosts: Vec<(u32, u32, u64)> = decode_index(&index[160..])
        .iter()
        .map(|e| (e.relative_offset, e.end_position, e.timestamp))
        .collect();
    assert_eq!(
        ghosts,
        (1..=4u32)
            .map(|k| (9 + k, 1560 + 156 * k, last_ts + u64::from(k)))
            .collect::<Vec<_>>()
    );
    assert_eq!(after, before, "no message changes");
    assert_eq!(report.survivors.unwrap().valid_offsets, all_but(&[]));
    assert!(report.affected_offsets.is_empty());
    assert_eq!(report.offset, 160);
}

#[test]
fn duplicate_offset_conflict_leaves_two_valid_messages_for_one_offset() {
    let copy = built();
    let old = snapshot(copy.path());
    let (report, _, after) = apply_predicted(&copy, P, RaceFault::DuplicateOffsetConflict);
    let new = snapshot(copy.path());
    let log = &new[&name(20, "log")];
    assert_eq!(log[..780], old[&name(20, "log")][..]);
    let (copy_msg, len) = decode_message(&log[780..]).unwrap();
    let (original, _) = decode_message(&old[&name(10, "log")][5 * 156..]).unwrap();
    let (newest_last, _) = decode_message(&log[4 * 156..]).unwrap();
    assert_eq!(len, 156);
    assert_eq!((copy_msg.offset, copy_msg.id), (15, original.id));
    assert_eq!(copy_msg.timestamp, newest_last.timestamp + 1);
    assert!(copy_msg.timestamp > original.timestamp);
    let inverted: Vec<u8> = original.payload.iter().map(|b| !b).collect();
    assert_eq!(copy_msg.payload, inverted);
    for file in [name(10, "index"), name(20, "index"), name(10, "log")] {
        assert_eq!(new[&file], old[&file], "{file}");
    }
    assert_eq!(after.conflicting_offsets(), [15]);
    assert_eq!(after.messages.len(), 26);
    let s = report.survivors.unwrap();
    assert_eq!(
        (s.valid_offsets, s.conflicting_offsets),
        (all_but(&[]), vec![15])
    );
    assert!(report.affected_offsets.is_empty());
    assert_eq!(report.intact_messages_before, 25);
}

#[test]
fn race_faults_refuse_what_they_cannot_do_and_change_nothing() {
    let copy = built();
    let before = snapshot(copy.path());
    for fault in [
        RaceFault::MisplacedBatch { messages: 0 },
        RaceFault::MisplacedBatch { messages: 10 },
        RaceFault::ZeroHoleSealed {
            messages: 0,
            through_messages: false,
        },
        RaceFault::ZeroHoleSealed {
            messages: 7,
            through_messages: false,
        },
        RaceFault::ZeroHoleSealed {
            messages: 6,
            through_messages: true,
        },
        RaceFault::GhostIndexEntries { entries: 0 },
    ] {
        assert!(
            apply(copy.path(), P, Fault::Race(fault)).is_err(),
            "{fault:?}"
        );
    }
    assert_eq!(diff(&before, &snapshot(copy.path())), None);
    // One non-empty segment: nothing is sealed.
    let single = "streams/1/topics/0/partitions/0";
    let copy = fixture_copy(CLEAN);
    let before = snapshot(copy.path());
    for fault in race_faults() {
        let error = apply(copy.path(), single, fault).unwrap_err();
        assert!(
            error.contains("1 non-empty segment(s); 2 needed"),
            "{error}"
        );
    }
    assert_eq!(diff(&before, &snapshot(copy.path())), None);
}

#[test]
fn race_faults_predict_what_stays_valid_in_the_real_fixtures() {
    for partition in [
        "streams/0/topics/0/partitions/0",
        "streams/0/topics/0/partitions/1",
    ] {
        for fault in race_faults() {
            let Fault::Race(race) = fault else {
                unreachable!()
            };
            let copy = fixture_copy(KILLED_UNDER_LOAD);
            let (report, before, after) = apply_predicted(&copy, partition, race);
            let lost = report.survivors.as_ref().unwrap().lost_offsets.len();
            let expected_lost = if race.name() == "zero-hole-sealed" {
                3
            } else {
                0
            };
            assert_eq!(lost, expected_lost, "{}", report.description);
            let kept = before.distinct_offsets().len() - expected_lost;
            assert_eq!(after.distinct_offsets().len(), kept);
        }
    }
    // On the race's own leftovers, where valid messages already sit in odd places.
    let partition = "streams/0/topics/0/partitions/0";
    for fault in race_faults() {
        let copy = fixture_copy(RACE_ROTATION);
        let before = salvage(&copy, partition);
        let report = apply(copy.path(), partition, fault).unwrap();
        let after = salvage(&copy, partition);
        check_prediction(&report, &before, &after);
        let lost = report.survivors.unwrap().lost_offsets.len();
        assert_eq!(after.distinct_offsets().len(), 18_000 - lost);
    }
}

#[test]
fn race_faults_keep_their_predictions_on_many_built_shapes() {
    let mut applied = 0;
    for seed in 0..6u64 {
        let tmp = tempfile::tempdir().unwrap();
        // Empty payloads and headers included: the conflicting copy must still differ.
        let spec = PartitionSpec::new(0, 0, 0)
            .messages(60 + seed as usize * 41, 0..=300, 0..=40)
            .segment_size(1500 + seed * 900);
        DataDirBuilder::new()
            .seed(seed)
            .partition(spec)
            .build(tmp.path());
        for fault in race_faults() {
            let Fault::Race(race) = fault else {
                unreachable!()
            };
            let copy = copy_of(tmp.path());
            if apply_predicted_if_possible(&copy, race) {
                applied += 1;
            }
        }
    }
    assert!(applied >= 20, "applied {applied}");
}

/// [`apply_predicted`] when the fault applies (tried first on a throwaway copy, which a
/// refusal must leave unchanged); whether it did.
fn apply_predicted_if_possible(copy: &FixtureCopy, race: RaceFault) -> bool {
    let probe = copy_of(copy.path());
    let before = snapshot(probe.path());
    if apply(probe.path(), P, Fault::Race(race)).is_err() {
        assert_eq!(diff(&before, &snapshot(probe.path())), None, "{race:?}");
        return false;
    }
    apply_predicted(copy, P, race);
    true
}

#[test]
fn race_faults_are_named_apart_from_the_damage_table() {
    let names: Vec<&str> = race_faults().iter().map(Fault::name).collect();
    assert_eq!(
        names,
        [
            "misplaced-batch",
            "zero-hole-sealed",
            "ghost-index-entries",
            "duplicate-offset-conflict"
        ]
    );
    for fault in race_faults() {
        assert_eq!(crate::fault_named(fault.name()), Some(fault));
        assert!(!crate::all_faults().contains(&fault));
        assert_eq!(fault.min_non_empty_segments(), 2);
    }
}
