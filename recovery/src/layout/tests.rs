use super::*;
use crate::test_support::{Segment, TestDir};

#[test]
fn discovering_some_partitions_lists_them_as_the_whole_listing_does() {
    let dir = TestDir::new(&[Segment::whole(0, 3), Segment::whole(3, 2)]);
    let other = PartitionId::new(1, 1, 2);
    std::fs::create_dir_all(dir.data_dir().join(other.rel_dir()).join("offsets")).unwrap();
    let whole = discover(dir.data_dir()).unwrap();
    assert_eq!(whole.partitions.len(), 2);

    let some = discover_partitions(dir.data_dir(), &BTreeSet::from([dir.id])).unwrap();
    let json = |p: &PartitionLayout| serde_json::to_string(p).unwrap();
    assert_eq!(some.partitions.len(), 1);
    assert_eq!(json(&some.partitions[0]), json(&whole.partitions[0]));
    assert_eq!(some.partitions[0].id, dir.id);

    let gone = PartitionId::new(1, 1, 3);
    assert!(discover_partitions(dir.data_dir(), &BTreeSet::from([gone])).is_err());
}
