//! Tests of the one rule for opening the journal, against real sled databases in
//! temporary folders: what inspection leaves untouched, what writers move aside, and
//! where scratch copies go.
//!
//! In a file of their own because they are as long as the rule itself.

use super::*;
use crate::journal_copy::SCRATCH_PREFIX;
use journal::{PartitionId, Record};
use std::collections::BTreeMap;

fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
                out.insert(p, None);
            } else {
                out.insert(p.clone(), Some(fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn journal_with_a_record(state: &Path) {
    let j = Journal::open(&state.join(JOURNAL_DIR)).unwrap();
    let segment = PartitionId::new(0, 0, 0).segment(0);
    j.append(Record::SegmentOpened { segment }).unwrap();
}

#[test]
fn inspection_reads_a_copy_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    journal_with_a_record(tmp.path());
    let before = tree(tmp.path());
    {
        let mut opened = open(tmp.path(), Access::Inspect).unwrap();
        assert_eq!(opened.condition, Condition::Usable);
        assert_eq!(opened.load_states().unwrap().len(), 1);
        let j = opened.journal().unwrap();
        assert_eq!(j.records_since(0).count(), 1);
    }
    assert_eq!(tree(tmp.path()), before);
}

#[test]
fn inspection_reports_a_corrupt_or_missing_journal_and_leaves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = open(tmp.path(), Access::Inspect).unwrap();
    assert_eq!(opened.condition, Condition::Missing);
    assert!(opened.journal().is_none());
    drop(opened);
    assert!(fs::read_dir(tmp.path()).unwrap().next().is_none());

    journal_with_a_record(tmp.path());
    let db = tmp.path().join(JOURNAL_DIR).join("db");
    let len = fs::metadata(&db).unwrap().len().max(4096) as usize;
    fs::write(
        &db,
        (0..len).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let before = tree(tmp.path());
    let opened = open(tmp.path(), Access::Inspect).unwrap();
    assert!(
        matches!(&opened.condition, Condition::Unusable { why } if why.contains("journal")),
        "{:?}",
        opened.condition
    );
    assert!(opened.journal().is_none());
    drop(opened);
    assert_eq!(tree(tmp.path()), before);
}

#[test]
fn writers_move_an_unusable_journal_aside_and_start_afresh() {
    let tmp = tempfile::tempdir().unwrap();
    let opened = open(tmp.path(), Access::Own).unwrap();
    assert_eq!(opened.condition, Condition::Created);
    drop(opened);
    journal_with_a_record(tmp.path());
    let db = tmp.path().join(JOURNAL_DIR).join("db");
    let len = fs::metadata(&db).unwrap().len().max(4096) as usize;
    let noise: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
    fs::write(&db, &noise).unwrap();
    let opened = open(tmp.path(), Access::Own).unwrap();
    let Condition::Replaced { aside, .. } = &opened.condition else {
        panic!("{:?}", opened.condition);
    };
    assert_eq!(fs::read(aside.join("db")).unwrap(), noise);
    let journal = opened.journal().unwrap();
    assert_eq!(journal.records_since(0).count(), 0, "a fresh journal");
}

#[test]
fn a_journal_held_by_another_handle_is_an_error_for_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let held = Journal::open(&tmp.path().join(JOURNAL_DIR)).unwrap();
    let err = open(tmp.path(), Access::Own).unwrap_err();
    assert!(format!("{err:#}").contains("another process holds the journal"));
    // Inspection cannot copy it consistently either.
    let err = open(tmp.path(), Access::Inspect).unwrap_err();
    assert!(format!("{err:#}").contains("another process holds the journal"));
    drop(held);
}

#[test]
fn a_scratch_folder_goes_to_the_temporary_folder_when_the_state_dir_is_not_writable() {
    let tmp = tempfile::tempdir().unwrap();
    // Not creatable there (its parent is missing), as in a read-only state dir.
    let scratch = Scratch::create(&tmp.path().join("missing/state")).unwrap();
    let dir = scratch.dir.clone();
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    fs::write(dir.join("f"), b"x").unwrap();
    drop(scratch);
    assert!(!dir.exists());
}

#[test]
fn stale_scratch_folders_of_dead_processes_are_removed_by_writers() {
    let tmp = tempfile::tempdir().unwrap();
    // pid_max is at most 2^22: this pid does not exist.
    let stale = tmp.path().join(format!("{SCRATCH_PREFIX}99999999-1"));
    let live = tmp
        .path()
        .join(format!("{SCRATCH_PREFIX}{}-1", std::process::id()));
    fs::create_dir_all(stale.join("journal")).unwrap();
    fs::create_dir_all(&live).unwrap();
    drop(open(tmp.path(), Access::Own).unwrap());
    assert!(!stale.exists());
    assert!(live.exists());
}
