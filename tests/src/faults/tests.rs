//! Self-tests of the fault injector: exact file changes on a built partition, and every
//! fault on copies of the real fixtures.

use super::*;
use crate::fixtures::{copy_of, fixture_copy, FixtureCopy, CLEAN, KILLED_UNDER_LOAD};
use crate::layout::segment_file_name;
use crate::snapshot::{diff, partition_messages, snapshot, Snapshot};
use crate::writer::{DataDirBuilder, PartitionSpec};
use std::collections::BTreeSet;

pub(super) const P: &str = "streams/0/topics/0/partitions/0";

/// 25 messages of 156 bytes (payload 100, no headers), segments of 1,560 bytes:
/// segments 0 and 10 are full (sealed), segment 20 holds 5 messages (780 bytes) and is
/// not full, so there is no trailing empty pair.
pub(super) fn built() -> FixtureCopy {
    let tmp = tempfile::tempdir().unwrap();
    let spec = PartitionSpec::new(0, 0, 0)
        .messages(25, 100, 0)
        .segment_size(1560);
    let built = DataDirBuilder::new()
        .seed(5)
        .partition(spec)
        .build(tmp.path());
    let starts: Vec<u64> = built.partitions[0]
        .segments
        .iter()
        .map(|s| s.start_offset)
        .collect();
    assert_eq!(starts, [0, 10, 20]);
    copy_of(tmp.path())
}

fn name(start: u64, extension: &str) -> String {
    format!("{P}/{}", segment_file_name(start, extension))
}

/// Relative paths whose presence or bytes differ between two snapshots.
fn changed(a: &Snapshot, b: &Snapshot) -> BTreeSet<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

fn rel(root: &Path, paths: &[PathBuf]) -> BTreeSet<String> {
    paths
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Applies `fault` and checks what holds for every fault: the report's `touched` are
/// exactly the changed files, the valid prefix left is the intact prefix, and every
/// message not reported as affected is still in place.
pub(super) fn apply_checked(
    copy: &FixtureCopy,
    partition: &str,
    fault: Fault,
) -> (Snapshot, Snapshot, FaultReport) {
    let root = copy.path();
    let before = snapshot(root);
    let messages_before = partition_messages(root, partition);
    let scan_before = scan_partition(&root.join(partition)).unwrap();
    let report = apply(root, partition, fault).unwrap_or_else(|e| panic!("{}: {e}", fault.name()));
    let after = snapshot(root);
    assert_eq!(report.fault, fault);
    assert!(report.description.starts_with(fault.name()));
    assert_eq!(
        changed(&before, &after),
        rel(root, &report.touched),
        "{}",
        report.description
    );
    let prefix = report.intact_messages_before as usize;
    assert_eq!(
        partition_messages(root, partition),
        messages_before[..prefix],
        "{}: the valid prefix is what stays intact",
        report.description
    );
    for m in scan_before
        .messages
        .iter()
        .filter(|m| !report.affected_offsets.contains(&m.offset))
    {
        let key = m
            .log_path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let bytes = &after
            .get(&key)
            .unwrap_or_else(|| panic!("{}: {key} gone", fault.name()));
        assert_eq!(
            &bytes[m.start as usize..m.end as usize],
            &m.bytes[..],
            "{}: {key}",
            fault.name()
        );
    }
    (before, after, report)
}

#[test]
fn each_fault_changes_exactly_the_documented_bytes() {
    for fault in all_faults() {
        let copy = built();
        let (before, after, report) = apply_checked(&copy, P, fault);
        let expected_affected = check_built_fault(fault, &before, &after, &report, copy.path());
        assert_eq!(
            report.affected_offsets,
            expected_affected,
            "{}",
            fault.name()
        );
        let first = expected_affected.first().copied().unwrap_or(25);
        assert_eq!(report.intact_messages_before, first, "{}", fault.name());
    }
}

/// Checks the exact bytes `fault` changed in [`built`]'s partition; returns the
/// offsets of the messages it must report as affected.
fn check_built_fault(
    fault: Fault,
    before: &Snapshot,
    after: &Snapshot,
    report: &FaultReport,
    root: &Path,
) -> Vec<u64> {
    let index_len = |s: &Snapshot, start| s[&name(start, "index")].len();
    let log_len = |s: &Snapshot, start| s[&name(start, "log")].len();
    match fault {
        Fault::TornLogTail => {
            assert_eq!(log_len(after, 20), 770);
            assert_eq!(report.offset, 770);
            vec![24]
        }
        Fault::ZeroTail { len } => {
            assert_eq!(after[&name(20, "log")][..780], before[&name(20, "log")][..]);
            assert_eq!(after[&name(20, "log")][780..], vec![0; len as usize]);
            assert_eq!(report.offset, 780);
            vec![]
        }
        Fault::LogCutIndexLonger => {
            assert_eq!(log_len(after, 20), 624);
            assert_eq!(index_len(after, 20), 80);
            vec![24]
        }
        Fault::FlipByteLastMessage => {
            let at = 624 + 56 + 50;
            assert_eq!(report.offset, at as u64);
            assert_eq!(after[&name(20, "log")][at], !before[&name(20, "log")][at]);
            vec![24]
        }
        Fault::IndexHalfEntryShort => {
            assert_eq!(index_len(after, 20), 72);
            vec![]
        }
        Fault::TornLogAndHalfIndex => {
            assert_eq!((log_len(after, 20), index_len(after, 20)), (770, 72));
            vec![24]
        }
        Fault::IndexMissing => {
            assert!(!after.contains_key(&name(20, "index")));
            vec![]
        }
        Fault::IndexZeroFilledTail { entries } => {
            assert_eq!(
                after[&name(20, "index")][80..],
                vec![0; entries as usize * 16]
            );
            vec![]
        }
        Fault::IndexZeroedMiddle { entries } => {
            assert_eq!(entries, 3);
            let (old, new) = (&before[&name(20, "index")], &after[&name(20, "index")]);
            assert_eq!(new[..16], old[..16]);
            assert_eq!(new[16..64], [0; 48]);
            assert_eq!(new[64..], old[64..]);
            vec![]
        }
        Fault::ExtraEmptyPair => {
            assert_eq!((log_len(after, 25), index_len(after, 25)), (0, 0));
            vec![]
        }
        Fault::SuccessorLogWithoutIndex => {
            assert_eq!(log_len(after, 25), 0);
            assert!(!after.contains_key(&name(25, "index")));
            vec![]
        }
        Fault::RotationCrash => {
            assert_eq!((log_len(after, 20), index_len(after, 20)), (770, 64));
            assert_eq!((log_len(after, 25), index_len(after, 25)), (0, 0));
            vec![24]
        }
        Fault::LogMissing => {
            assert!(!after.contains_key(&name(20, "log")));
            assert_eq!(index_len(after, 20), 80);
            (20..25).collect()
        }
        Fault::OffsetGap { gap } => {
            assert_eq!(gap, 5);
            assert_eq!(after[&name(25, "log")], before[&name(20, "log")]);
            assert_eq!(after[&name(25, "index")], before[&name(20, "index")]);
            assert!(
                !after.contains_key(&name(20, "log")) && !after.contains_key(&name(20, "index"))
            );
            (20..25).collect()
        }
        Fault::MidFileCorruptionSealed => {
            let at = 5 * 156 + 56 + 50;
            assert_eq!(report.path, root.join(name(10, "log")));
            assert_eq!(after[&name(10, "log")][at], !before[&name(10, "log")][at]);
            vec![15]
        }
        Fault::TruncatedIndexShortWhole { entries } => {
            assert_eq!(index_len(after, 20), 80 - 16 * entries as usize);
            vec![]
        }
        Fault::Race(_) => unreachable!("race faults are tested in race/tests.rs"),
    }
}

#[test]
fn every_fault_applies_to_the_killed_under_load_fixture() {
    for partition in [
        "streams/0/topics/0/partitions/0",
        "streams/0/topics/0/partitions/1",
    ] {
        for fault in all_faults() {
            let copy = fixture_copy(KILLED_UNDER_LOAD);
            let (_, _, report) = apply_checked(&copy, partition, fault);
            assert!(report.path.starts_with(copy.path().join(partition)));
        }
    }
}

#[test]
fn successor_faults_respect_the_servers_own_empty_pair() {
    // clean p0: segments 0 and 1332 (full, sealed) and the empty pair 2886.
    let p0 = "streams/0/topics/0/partitions/0";
    let copy = fixture_copy(CLEAN);
    let before = snapshot(copy.path());
    let error = apply(copy.path(), p0, Fault::ExtraEmptyPair).unwrap_err();
    assert!(error.contains("segment 2886 already exists"), "{error}");
    assert_eq!(diff(&before, &snapshot(copy.path())), None);

    let (_, after, _) = apply_checked(&copy, p0, Fault::SuccessorLogWithoutIndex);
    assert!(after.contains_key(&format!("{p0}/00000000000000002886.log")));
    assert!(!after.contains_key(&format!("{p0}/00000000000000002886.index")));

    let copy = fixture_copy(CLEAN);
    let (_, _, report) = apply_checked(&copy, p0, Fault::RotationCrash);
    assert_eq!(
        report.touched.len(),
        2,
        "the existing empty pair is kept: {:?}",
        report.touched
    );
    assert_eq!(report.affected_offsets, [2885]);
}

#[test]
fn faults_needing_two_segments_refuse_one_and_change_nothing() {
    let single = "streams/1/topics/0/partitions/0";
    let copy = fixture_copy(CLEAN);
    let before = snapshot(copy.path());
    for fault in all_faults()
        .into_iter()
        .filter(|f| f.min_non_empty_segments() == 2)
    {
        let error = apply(copy.path(), single, fault).unwrap_err();
        assert!(
            error.contains("1 non-empty segment(s); 2 needed"),
            "{error}"
        );
    }
    assert_eq!(diff(&before, &snapshot(copy.path())), None);
    for fault in all_faults()
        .into_iter()
        .filter(|f| f.min_non_empty_segments() == 1)
    {
        apply_checked(&fixture_copy(CLEAN), single, fault);
    }
}

#[test]
fn faults_on_an_empty_partition_fail_without_changes() {
    let tmp = tempfile::tempdir().unwrap();
    DataDirBuilder::new()
        .partition(PartitionSpec::new(0, 0, 0))
        .build(tmp.path());
    let before = snapshot(tmp.path());
    for fault in all_faults() {
        let error = apply(tmp.path(), P, fault).unwrap_err();
        assert!(
            error.contains("non-empty segment"),
            "{}: {error}",
            fault.name()
        );
    }
    assert!(apply(
        tmp.path(),
        "streams/9/topics/0/partitions/0",
        Fault::TornLogTail
    )
    .is_err());
    assert_eq!(diff(&before, &snapshot(tmp.path())), None);
}

#[test]
fn out_of_range_parameters_are_refused() {
    let copy = built();
    let before = snapshot(copy.path());
    for fault in [
        Fault::IndexZeroedMiddle { entries: 4 },
        Fault::IndexZeroedMiddle { entries: 0 },
        Fault::TruncatedIndexShortWhole { entries: 6 },
        Fault::TruncatedIndexShortWhole { entries: 0 },
        Fault::OffsetGap { gap: 0 },
    ] {
        assert!(apply(copy.path(), P, fault).is_err(), "{fault:?}");
    }
    assert_eq!(diff(&before, &snapshot(copy.path())), None);
}

#[test]
fn offset_gap_shifts_a_trailing_empty_pair_too() {
    let copy = fixture_copy(CLEAN);
    let p0 = "streams/0/topics/0/partitions/0";
    let (_, after, report) = apply_checked(&copy, p0, Fault::OffsetGap { gap: 5 });
    for start in [1337, 2891] {
        assert!(after.contains_key(&format!("{p0}/{}", segment_file_name(start, "log"))));
        assert!(after.contains_key(&format!("{p0}/{}", segment_file_name(start, "index"))));
    }
    assert_eq!(report.intact_messages_before, 1332);
    assert_eq!(report.affected_offsets.len(), 1554);
}

#[test]
fn all_faults_lists_each_variant_once() {
    let names: BTreeSet<&str> = all_faults().iter().map(Fault::name).collect();
    assert_eq!(names.len(), 16);
    assert_eq!(all_faults().len(), 16);
}

#[test]
fn faults_keep_their_promises_on_many_built_shapes() {
    let mut shapes: Vec<PartitionSpec> = (0..6u64)
        .map(|seed| {
            PartitionSpec::new(0, 0, 0)
                .messages(40 + seed as usize * 37, 0..=700, 0..=60)
                .segment_size(2048 + seed * 1500)
        })
        .collect();
    // Full last segment followed by the server's empty pair; a single short segment.
    shapes.push(
        PartitionSpec::new(0, 0, 0)
            .messages(10, 44, 0)
            .segment_size(500),
    );
    shapes.push(PartitionSpec::new(0, 0, 0).messages(3, 0, 0));
    let (mut applied, mut refused) = (0, 0);
    for (seed, spec) in shapes.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let built = DataDirBuilder::new()
            .seed(seed as u64)
            .partition(spec)
            .build(tmp.path());
        let segments = &built.partitions[0].segments;
        let non_empty = segments.iter().filter(|s| !s.messages.is_empty()).count();
        let ends_with_empty_pair = segments.last().unwrap().messages.is_empty();
        let newest_count = segments
            .iter()
            .rev()
            .map(|s| s.messages.len() as u64)
            .find(|&n| n > 0)
            .unwrap();
        for fault in all_faults() {
            let copy = copy_of(tmp.path());
            let expect_refusal = match fault {
                Fault::ExtraEmptyPair => ends_with_empty_pair,
                Fault::IndexZeroedMiddle { entries } => newest_count < entries + 2,
                Fault::TruncatedIndexShortWhole { entries } => newest_count < entries,
                _ => non_empty < fault.min_non_empty_segments(),
            };
            if expect_refusal {
                assert!(
                    apply(copy.path(), P, fault).is_err(),
                    "shape {seed}: {fault:?}"
                );
                refused += 1;
            } else {
                apply_checked(&copy, P, fault);
                applied += 1;
            }
        }
    }
    assert!(
        applied > 100 && refused >= 3,
        "applied {applied}, refused {refused}"
    );
}
