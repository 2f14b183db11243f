use super::*;
use crate::plan::Mode;
use crate::test_support::{message, Segment, TestDir, HEADER};
use journal::SegmentFile;

/// Two sealed segments and a newest one torn inside its last message's header.
fn torn_tail() -> TestDir {
    let mut newest = Segment::whole(6, 3);
    newest.log_mut().extend(&message(9, b"torn")[..HEADER / 2]);
    TestDir::new(&[Segment::whole(0, 3), Segment::whole(3, 3), newest])
}

fn touched(dir: &TestDir) -> BTreeSet<PartitionId> {
    BTreeSet::from([dir.id])
}

#[test]
fn a_partition_only_cut_resumes_every_segment_at_its_kept_messages_end() {
    let dir = torn_tail();
    let analysis = dir.analysis();
    let plan = dir.plan(Mode::TolerateTail);
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a.action, RepairAction::TruncateLog { .. })),
        "{:#?}",
        plan.actions
    );
    assert!(rewritten(&plan.actions).is_empty());
    let points = resume_points(&analysis, &touched(&dir), &BTreeSet::new());
    assert_eq!(points.len(), 3);
    for (start, messages) in [(0u64, 3u64), (3, 3), (6, 3)] {
        let whole = Segment::whole(start, messages);
        let point = points[&dir.key(start)].checkpoint.expect("a checkpoint");
        assert_eq!(point.valid_len, whole.log_len(), "segment {start}");
        assert_eq!(point.next_offset, start + messages, "segment {start}");
    }
}

#[test]
fn a_partition_with_a_rebuilt_index_is_read_again_in_full() {
    let mut seg = Segment::whole(0, 4);
    seg.index_mut()[16..48].fill(0);
    let dir = TestDir::new(&[seg]);
    let plan = dir.plan(Mode::TolerateTail);
    let rewritten = rewritten(&plan.actions);
    assert_eq!(rewritten, touched(&dir), "{:#?}", plan.actions);
    assert!(resume_points(&dir.analysis(), &touched(&dir), &rewritten).is_empty());
}

#[test]
fn untouched_partitions_and_unverified_indexes_get_no_resume_point() {
    let dir = torn_tail();
    let analysis = dir.analysis();
    assert!(resume_points(&analysis, &BTreeSet::new(), &BTreeSet::new()).is_empty());
    // Half an entry at the end of a sealed segment's index: its entries were not
    // verified up to the messages' end, so that segment is read in full.
    let mut sealed = Segment::whole(0, 3);
    sealed.index_mut().truncate(40);
    let dir = TestDir::new(&[sealed, Segment::whole(3, 3)]);
    let points = resume_points(&dir.analysis(), &touched(&dir), &BTreeSet::new());
    assert!(!points.contains_key(&dir.key(0)));
    assert!(points.contains_key(&dir.key(3)));
}

/// Cuts the torn tail as the repair would: the log to its valid messages.
fn cut_torn_tail(dir: &TestDir) {
    let log = dir.data_dir().join(dir.rel(6, SegmentFile::Log));
    let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.set_len(Segment::whole(6, 3).log_len()).unwrap();
}

#[test]
fn only_partitions_whose_every_repair_is_a_cut_count_as_only_cut() {
    let dir = torn_tail();
    let plan = dir.plan(Mode::TolerateTail);
    assert_eq!(
        only_cut(&plan.actions),
        touched(&dir),
        "{:#?}",
        plan.actions
    );
    // Missing offsets folders add a repair that changes the folder's entries.
    std::fs::remove_dir_all(dir.partition_dir().join("offsets")).unwrap();
    let plan = dir.plan(Mode::TolerateTail);
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a.action, RepairAction::CreateDir { .. })),
        "{:#?}",
        plan.actions
    );
    assert!(only_cut(&plan.actions).is_empty(), "{:#?}", plan.actions);
    // A rebuilt index is no cut either.
    let mut seg = Segment::whole(0, 4);
    seg.index_mut()[16..48].fill(0);
    let dir = TestDir::new(&[seg]);
    assert!(only_cut(&dir.plan(Mode::TolerateTail).actions).is_empty());
}

#[test]
fn a_layout_after_cuts_has_the_lengths_the_files_have_now() {
    let dir = torn_tail();
    let analysis = dir.analysis();
    cut_torn_tail(&dir);
    let layouts = layouts_after_cuts(&analysis, &touched(&dir)).unwrap();
    let listed = crate::layout::discover(dir.data_dir()).unwrap();
    let [after] = layouts.as_slice() else {
        panic!("one layout: {layouts:#?}");
    };
    let [relisted] = listed.partitions.as_slice() else {
        panic!("one partition listed: {:#?}", listed.partitions);
    };
    // What a listing of the folder now finds, field by field.
    assert_eq!(
        serde_json::to_value(after).unwrap(),
        serde_json::to_value(relisted).unwrap()
    );
    let stamps = |p: &PartitionLayout| -> Vec<_> {
        (p.segments.iter())
            .map(|s| (s.log_stamp, s.index_stamp))
            .collect()
    };
    assert_eq!(stamps(after), stamps(relisted));
    let newest = after.segments.last().unwrap();
    assert_eq!(newest.log_len, Some(Segment::whole(6, 3).log_len()));
    // Only the partitions asked for.
    assert!(layouts_after_cuts(&analysis, &BTreeSet::new())
        .unwrap()
        .is_empty());
}

#[test]
fn a_partition_whose_segment_files_changed_otherwise_is_left_to_list_again() {
    type Change = fn(&TestDir);
    let ways: [(&str, Change); 3] = [
        ("a log gone", |d| {
            std::fs::remove_file(d.data_dir().join(d.rel(3, SegmentFile::Log))).unwrap()
        }),
        ("an index become a folder", |d| {
            let index = d.data_dir().join(d.rel(0, SegmentFile::Index));
            std::fs::remove_file(&index).unwrap();
            std::fs::create_dir(&index).unwrap();
        }),
        ("a log become a link", |d| {
            let log = d.data_dir().join(d.rel(6, SegmentFile::Log));
            std::fs::remove_file(&log).unwrap();
            std::os::unix::fs::symlink(d.data_dir().join(d.rel(0, SegmentFile::Log)), &log)
                .unwrap();
        }),
    ];
    for (what, change) in ways {
        let dir = torn_tail();
        let analysis = dir.analysis();
        change(&dir);
        let layouts = layouts_after_cuts(&analysis, &touched(&dir)).unwrap();
        assert!(layouts.is_empty(), "{what}: {layouts:#?}");
    }
    // A file that was missing and is there now.
    let mut half = Segment::whole(0, 3);
    half.index = None;
    let dir = TestDir::new(&[half]);
    let analysis = dir.analysis();
    std::fs::write(dir.data_dir().join(dir.rel(0, SegmentFile::Index)), b"").unwrap();
    assert!(layouts_after_cuts(&analysis, &touched(&dir))
        .unwrap()
        .is_empty());
}
