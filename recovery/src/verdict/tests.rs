//! The verdict's unit tests: per damage, the exact problem (kind, file, offset).

use super::*;
use crate::test_support::{entry, message, Segment, TestDir, ENTRY, HEADER};
use journal::SegmentFile::{Index, Log};

/// A change that damages a test segment's index.
type IndexDamage = fn(&mut Vec<u8>);

/// (kind, file name, offset) of every problem `check` reports.
fn found(dir: &TestDir) -> Vec<(ProblemKind, String, Option<u64>)> {
    judge(&dir.analysis())
        .into_iter()
        .map(|p| {
            let rel = p
                .path
                .strip_prefix(dir.partition_dir())
                .map_or_else(|_| p.path.clone(), PathBuf::from);
            (p.kind, rel.to_string_lossy().into_owned(), p.offset)
        })
        .collect()
}

fn name(dir: &TestDir, start: u64, kind: journal::SegmentFile) -> String {
    dir.key(start).file_name(kind)
}

#[test]
fn clean_segments_have_no_problem() {
    let dir = TestDir::new(&[Segment::whole(0, 4), Segment::whole(4, 3)]);
    assert_eq!(found(&dir), []);
    // A partition that never held a message: its one empty pair is how the server
    // creates it.
    assert_eq!(found(&TestDir::new(&[Segment::empty(0)])), []);
}

#[test]
fn a_message_cut_short_at_the_end_is_a_torn_tail_where_it_starts() {
    for cut in [HEADER - 1, HEADER + 3] {
        let mut seg = Segment::whole(0, 3);
        let whole = seg.log_len();
        seg.log_mut().extend(&message(3, b"cut short")[..cut]);
        let dir = TestDir::new(&[seg]);
        assert_eq!(
            found(&dir),
            [(ProblemKind::TornTail, name(&dir, 0, Log), Some(whole))],
            "cut after {cut} bytes"
        );
    }
}

#[test]
fn zeros_after_the_last_message_are_a_zero_tail() {
    let mut seg = Segment::whole(0, 3);
    let whole = seg.log_len();
    seg.log_mut().extend([0u8; 300]);
    let dir = TestDir::new(&[seg]);
    assert_eq!(
        found(&dir),
        [(ProblemKind::ZeroTail, name(&dir, 0, Log), Some(whole))]
    );
}

#[test]
fn a_bad_checksum_on_the_last_message_is_a_corrupt_tail() {
    let mut seg = Segment::whole(0, 3);
    let len = seg.log_len() as usize;
    seg.log_mut()[len - 1] ^= 0x40;
    let last_start = Segment::whole(0, 2).log_len();
    let dir = TestDir::new(&[seg]);
    // The index still has the last message's entry: one too many now.
    assert_eq!(
        found(&dir),
        [
            (
                ProblemKind::CorruptTail,
                name(&dir, 0, Log),
                Some(last_start)
            ),
            (
                ProblemKind::IndexLong,
                name(&dir, 0, Index),
                Some(2 * ENTRY as u64)
            ),
        ]
    );
}

#[test]
fn damage_with_data_after_it_or_in_a_sealed_segment_is_mid_file() {
    // A flipped byte in the second of four messages.
    let mut seg = Segment::whole(0, 4);
    let second = Segment::whole(0, 1).log_len();
    seg.log_mut()[second as usize + HEADER] ^= 1;
    let dir = TestDir::new(&[seg]);
    let problems = found(&dir);
    assert_eq!(
        problems[0],
        (
            ProblemKind::MidFileCorruption,
            name(&dir, 0, Log),
            Some(second)
        )
    );

    // A torn tail in a segment that later data follows.
    let mut sealed = Segment::whole(0, 2);
    let whole = sealed.log_len();
    sealed.log_mut().extend(&message(2, b"x")[..10]);
    let dir = TestDir::new(&[sealed, Segment::whole(2, 2)]);
    let problems = judge(&dir.analysis());
    assert_eq!(problems[0].kind, ProblemKind::MidFileCorruption);
    assert_eq!(problems[0].offset, Some(whole));
    assert!(problems[0].detail.contains("sealed"), "{}", problems[0]);
}

#[test]
fn each_index_state_has_its_own_kind_at_the_index() {
    let cases: [(&str, IndexDamage, ProblemKind); 5] = [
        (
            "one entry short",
            |i| i.truncate(3 * ENTRY),
            ProblemKind::IndexShort,
        ),
        (
            "one entry long",
            |i| i.extend(entry(4, 10_000, 9)),
            ProblemKind::IndexLong,
        ),
        (
            "half an entry more",
            |i| i.extend([7u8; 8]),
            ProblemKind::IndexHalfEntry,
        ),
        (
            "a wrong position",
            |i| i[ENTRY + 4] ^= 1,
            ProblemKind::IndexMismatch,
        ),
        ("zeroed", |i| i.fill(0), ProblemKind::IndexMismatch),
    ];
    for (what, damage, kind) in cases {
        let mut seg = Segment::whole(0, 4);
        damage(seg.index_mut());
        let dir = TestDir::new(&[seg]);
        let problems = found(&dir);
        assert_eq!(problems.len(), 1, "{what}: {problems:?}");
        assert_eq!(
            (problems[0].0, &problems[0].1),
            (kind, &name(&dir, 0, Index)),
            "{what}"
        );
    }
}

#[test]
fn half_a_pair_is_named_by_the_file_that_is_there() {
    let mut no_index = Segment::whole(0, 2);
    no_index.index = None;
    let dir = TestDir::new(&[no_index]);
    assert_eq!(
        found(&dir),
        [(ProblemKind::IndexMissing, name(&dir, 0, Index), None)]
    );

    // A rotation cut short: the new empty log, no index yet.
    let mut successor = Segment::empty(2);
    successor.index = None;
    let dir = TestDir::new(&[Segment::whole(0, 2), successor]);
    assert_eq!(
        found(&dir),
        [(ProblemKind::SuccessorWithoutIndex, name(&dir, 2, Log), None)]
    );

    let mut no_log = Segment::whole(2, 2);
    no_log.log = None;
    let dir = TestDir::new(&[Segment::whole(0, 2), no_log]);
    assert_eq!(
        found(&dir),
        [(ProblemKind::LogMissing, name(&dir, 2, Index), None)]
    );
}

#[test]
fn an_empty_newest_pair_after_messages_is_reported() {
    let dir = TestDir::new(&[Segment::whole(0, 3), Segment::empty(3)]);
    assert_eq!(
        found(&dir),
        [(ProblemKind::EmptyPair, name(&dir, 3, Log), None)]
    );
}

#[test]
fn a_segment_starting_inside_the_previous_one_is_an_offset_gap() {
    let dir = TestDir::new(&[Segment::whole(0, 5), Segment::whole(3, 2)]);
    assert_eq!(
        found(&dir),
        [(ProblemKind::OffsetGap, name(&dir, 3, Log), None)]
    );
    // A gap forward between whole segments is how 0.6.0 serves it: no problem.
    assert_eq!(
        found(&TestDir::new(&[Segment::whole(0, 5), Segment::whole(9, 2)])),
        []
    );
}

#[test]
fn a_first_message_with_another_offset_than_its_segment_is_an_offset_gap() {
    let mut seg = Segment::whole(0, 2);
    seg.start = 10;
    let dir = TestDir::new(&[seg]);
    assert_eq!(
        found(&dir),
        [
            (ProblemKind::OffsetGap, name(&dir, 10, Log), Some(0)),
            (ProblemKind::IndexLong, name(&dir, 10, Index), Some(0)),
        ]
    );
}

#[test]
fn offsets_folders_and_files_the_server_cannot_read() {
    let dir = TestDir::new(&[Segment::whole(0, 2)]);
    let offsets = dir.partition_dir().join("offsets");
    std::fs::remove_dir(offsets.join("groups")).unwrap();
    std::fs::write(offsets.join("consumers/7"), [1, 2, 3]).unwrap();
    std::fs::write(offsets.join("consumers/8"), [0; 8]).unwrap();
    std::fs::write(offsets.join("consumers/name"), [0; 8]).unwrap();
    std::fs::write(dir.partition_dir().join("old.log"), b"x").unwrap();
    let mut problems = found(&dir);
    problems.sort();
    assert_eq!(
        problems,
        [
            (
                ProblemKind::BadOffsetFile,
                "offsets/consumers/7".into(),
                Some(3)
            ),
            (
                ProblemKind::BadOffsetFile,
                "offsets/consumers/name".into(),
                None
            ),
            (ProblemKind::StrayLog, "old.log".into(), None),
            (
                ProblemKind::MissingOffsetsDir,
                "offsets/groups".into(),
                None
            ),
        ]
    );
}
