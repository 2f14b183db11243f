use super::*;
use crate::test_support::{Segment, TestDir};
use std::time::Duration;

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

/// Topic folders are walked in parallel: every topic's partitions, strays and links
/// are still found, in order, whatever thread listed them.
#[test]
fn every_topic_is_walked_with_its_strays_and_links() {
    let dir = TestDir::new(&[Segment::whole(0, 3)]);
    let root = dir.data_dir();
    let topics = 100u32;
    for t in 2..=topics {
        let partitions = root.join(format!("streams/1/topics/{t}/partitions"));
        std::fs::create_dir_all(partitions.join(format!("{}/offsets", t % 3))).unwrap();
        std::fs::write(partitions.join("notes.txt"), b"x").unwrap();
        std::os::unix::fs::symlink("/tmp", partitions.join("7")).unwrap();
        std::fs::write(root.join(format!("streams/1/topics/{t}/extra")), b"x").unwrap();
    }
    let found = discover(root).unwrap();
    let ids: Vec<PartitionId> = found.partitions.iter().map(|p| p.id).collect();
    let mut expected = vec![dir.id];
    expected.extend((2..=topics).map(|t| PartitionId::new(1, t, t % 3)));
    expected.sort();
    assert_eq!(ids, expected);
    let stray_names = |name: &str| {
        found
            .strays
            .iter()
            .filter(|s| s.path.file_name().is_some_and(|n| n == name))
            .count()
    };
    assert_eq!(stray_names("notes.txt"), topics as usize - 1);
    assert_eq!(stray_names("extra"), topics as usize - 1);
    let mut paths: Vec<_> = found.strays.iter().map(|s| s.path.clone()).collect();
    paths.sort();
    assert_eq!(
        paths,
        found
            .strays
            .iter()
            .map(|s| s.path.clone())
            .collect::<Vec<_>>(),
        "strays sorted"
    );
    let links = found
        .anomalies
        .iter()
        .filter(|a| a.path.file_name().is_some_and(|n| n == "7"))
        .count();
    assert_eq!(links, topics as usize - 1, "{:?}", found.anomalies);
}

/// Files a stopped run left beside the segments are strays that say so; other files
/// are simply not segment files.
#[test]
fn files_a_stopped_run_left_are_strays_named_as_such() {
    let dir = TestDir::new(&[Segment::whole(0, 3)]);
    let names = [
        ".00000000000000000000.index.iggy-warden-tmp",
        ".00000000000000000003.log.iggy-warden-removed",
        "00000000000000000000.index.iggy-warden-tmp",
        "notes.txt",
    ];
    for name in names {
        std::fs::write(dir.partition_dir().join(name), b"x").unwrap();
    }
    let found = discover(dir.data_dir()).unwrap();
    let reasons: Vec<(String, bool)> = found
        .strays
        .iter()
        .map(|s| {
            let name = s.path.file_name().unwrap().to_string_lossy().into_owned();
            (name, s.reason.starts_with("left by an iggy-warden run"))
        })
        .collect();
    let expected: Vec<(String, bool)> = names
        .iter()
        .map(|n| (n.to_string(), n.starts_with('.')))
        .collect();
    assert_eq!(reasons, expected);
}

/// A guided listing of `dir` with the journal's `known` listings, keeping listings of
/// folders unchanged for `margin`; the one partition's layout.
fn guided(
    dir: &TestDir,
    known: &HashMap<PartitionId, OffsetsListing>,
    margin: Duration,
) -> PartitionLayout {
    let guide = OffsetsGuide { known, margin };
    let mut found = discover_guided(dir.data_dir(), None, Some(guide), &|_| {}).unwrap();
    assert_eq!(found.partitions.len(), 1);
    found.partitions.remove(0)
}

fn names(p: &PartitionLayout) -> Vec<(String, u64, Option<u64>)> {
    p.offset_files
        .iter()
        .map(|f| {
            let name = f
                .path
                .strip_prefix(&p.dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, f.len, f.value)
        })
        .collect()
}

/// A partition with consumer 7's offset (42) stored, its folders a moment old.
fn with_consumer_offset() -> TestDir {
    let dir = TestDir::new(&[Segment::whole(0, 3)]);
    let consumers = dir.partition_dir().join("offsets/consumers");
    std::fs::write(consumers.join("7"), 42u64.to_le_bytes()).unwrap();
    // Past the file system clock's tick, so that a later change moves the stamps.
    std::thread::sleep(Duration::from_millis(30));
    dir
}

#[test]
fn settled_offsets_folders_are_taken_from_their_listing_until_one_changes() {
    let dir = with_consumer_offset();
    let none = HashMap::new();
    let read = guided(&dir, &none, Duration::ZERO);
    assert_eq!(
        names(&read),
        [("offsets/consumers/7".to_string(), 8, Some(42))]
    );
    let listing = read.offsets_listing.clone().unwrap();
    assert_eq!(listing.consumer_files, ["7"]);
    assert!(listing.group_files.is_empty());
    // The plain listing keeps none, and reports the same.
    let plain = discover(dir.data_dir()).unwrap().partitions.remove(0);
    assert!(plain.offsets_listing.is_none());
    assert_eq!(names(&plain), names(&read));

    // Taken from the listing: a listing that (against its stamps) named no file
    // shows that the folders were not read.
    let mut stale = listing.clone();
    stale.consumer_files.clear();
    let known = HashMap::from([(dir.id, stale.clone())]);
    let taken = guided(&dir, &known, Duration::ZERO);
    assert!(taken.offset_files.is_empty());
    assert_eq!(taken.offsets_listing, Some(stale));

    // The true listing gives what a read gives, the file looked at again: cut in
    // place (which moves no folder's times), it shows cut.
    let known = HashMap::from([(dir.id, listing.clone())]);
    assert_eq!(names(&guided(&dir, &known, Duration::ZERO)), names(&read));
    let file = dir.partition_dir().join("offsets/consumers/7");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(3)
        .unwrap();
    let cut = guided(&dir, &known, Duration::ZERO);
    assert_eq!(names(&cut), [("offsets/consumers/7".to_string(), 3, None)]);
    assert_eq!(cut.offsets_listing, Some(listing.clone()));

    // A new group's offset moves the folder's times: read again, newly listed.
    std::fs::write(
        dir.partition_dir().join("offsets/groups/3"),
        5u64.to_le_bytes(),
    )
    .unwrap();
    let moved = guided(&dir, &known, Duration::ZERO);
    assert_eq!(
        names(&moved),
        [
            ("offsets/consumers/7".to_string(), 3, None),
            ("offsets/groups/3".to_string(), 8, Some(5))
        ]
    );
    assert_ne!(moved.offsets_listing, Some(listing));
}

#[test]
fn a_listing_naming_a_path_out_of_its_folder_or_a_file_twice_has_the_folders_read() {
    let dir = with_consumer_offset();
    let listing = guided(&dir, &HashMap::new(), Duration::ZERO)
        .offsets_listing
        .unwrap();
    std::fs::write(dir.data_dir().join("secret"), 1u64.to_le_bytes()).unwrap();
    let crafted_names: [&[&str]; 6] = [
        &["../../../../../../../../secret"],
        &[".."],
        &["."],
        &[""],
        &["7", "7"],
        &["8", "7"],
    ];
    for names_given in crafted_names {
        let name = names_given.join(",");
        let mut crafted = listing.clone();
        crafted.consumer_files = names_given.iter().map(|n| n.to_string()).collect();
        let known = HashMap::from([(dir.id, crafted.clone())]);
        let p = guided(&dir, &known, Duration::ZERO);
        assert_eq!(
            names(&p),
            [("offsets/consumers/7".to_string(), 8, Some(42))],
            "{name:?}"
        );
        assert_eq!(p.offsets_listing, Some(listing.clone()), "{name:?}");
    }
}

#[test]
fn no_listing_is_kept_of_folders_changed_within_the_margin_or_holding_anything_else() {
    let dir = with_consumer_offset();
    let none = HashMap::new();
    assert!(guided(&dir, &none, Duration::from_secs(3600))
        .offsets_listing
        .is_none());
    assert!(guided(&dir, &none, Duration::ZERO)
        .offsets_listing
        .is_some());
    std::fs::write(dir.partition_dir().join("offsets/groups/notes.txt"), b"x").unwrap();
    assert!(
        guided(&dir, &none, Duration::ZERO)
            .offsets_listing
            .is_some(),
        "a file of any name is an offset file"
    );
    std::fs::write(dir.partition_dir().join("offsets/stray"), b"x").unwrap();
    assert!(guided(&dir, &none, Duration::ZERO)
        .offsets_listing
        .is_none());
    std::fs::remove_file(dir.partition_dir().join("offsets/stray")).unwrap();
    std::fs::write(dir.partition_dir().join("offsets/groups/9.log"), b"x").unwrap();
    assert!(guided(&dir, &none, Duration::ZERO)
        .offsets_listing
        .is_none());
    std::fs::remove_file(dir.partition_dir().join("offsets/groups/9.log")).unwrap();
    std::os::unix::fs::symlink("7", dir.partition_dir().join("offsets/consumers/8")).unwrap();
    assert!(guided(&dir, &none, Duration::ZERO)
        .offsets_listing
        .is_none());
    std::fs::remove_file(dir.partition_dir().join("offsets/consumers/8")).unwrap();
    std::fs::remove_file(dir.partition_dir().join("offsets/groups/notes.txt")).unwrap();
    std::fs::remove_dir(dir.partition_dir().join("offsets/groups")).unwrap();
    assert!(guided(&dir, &none, Duration::ZERO)
        .offsets_listing
        .is_none());
}
