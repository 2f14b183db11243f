use super::*;
use crate::plan::Mode;
use crate::test_support::{message, Segment, TestDir, HEADER};

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
