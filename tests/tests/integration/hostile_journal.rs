//! A lost or unusable journal must never cost a byte: repair ids are not reused, so a
//! repair after a journal reset cannot be mistaken for an older one whose bytes sit in
//! the quarantine, and restoring every repair of every run still gives the input back.

use harness::fixtures::KILLED_UNDER_LOAD;
use harness::{apply, fixture_copy, snapshot, Fault};
use std::path::Path;

fn run(args: &[&str], data: &Path, state: &Path) -> harness::Run {
    crate::warden_on(args, data, state)
}

fn manifests(state: &Path) -> Vec<recovery::quarantine::Manifest> {
    recovery::quarantine::Quarantine::new(state).list().unwrap()
}

/// Loses the journal one way or another.
fn reset_journal(state: &Path, how: &str) {
    let journal = state.join("journal");
    match how {
        "deleted" => std::fs::remove_dir_all(&journal).unwrap(),
        "garbage" => {
            let db = journal.join("db");
            let len = std::fs::metadata(&db).unwrap().len().max(4096) as usize;
            let noise: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
            std::fs::write(&db, noise).unwrap();
        }
        other => panic!("{other}"),
    }
}

#[test]
fn repairs_after_a_journal_reset_get_new_ids_and_lose_nothing() {
    for how in ["deleted", "garbage"] {
        for mode in ["tolerate-tail", "point-in-time", "salvage"] {
            let copy = fixture_copy(KILLED_UNDER_LOAD);
            let (data, state) = (copy.path(), copy.tmp_root().join("state"));
            let input = snapshot(data);
            let first = run(&["recover", "--mode", mode], data, &state);
            assert_eq!(first.code, 0, "{how}/{mode}: {}", first.stderr);
            let before = manifests(&state);
            assert!(!before.is_empty());

            let tail = apply(data, "streams/0/topics/0/partitions/0", Fault::TornLogTail).unwrap();
            let damaged = snapshot(data);
            reset_journal(&state, how);
            let second = run(&["recover", "--mode", mode], data, &state);
            assert_eq!(
                second.code, 0,
                "{how}/{mode}: {}{}",
                second.stdout, second.stderr
            );

            let after = manifests(&state);
            let old_max = before.iter().map(|m| m.repair).max().unwrap();
            for m in &before {
                assert!(
                    after.contains(m),
                    "{how}/{mode}: {} was overwritten",
                    m.repair
                );
            }
            let new: Vec<_> = after.iter().filter(|m| !before.contains(m)).collect();
            assert!(!new.is_empty(), "{how}/{mode}: the torn tail was repaired");
            assert!(
                new.iter().all(|m| m.repair > old_max),
                "{how}/{mode}: ids reused"
            );
            let cut = new
                .iter()
                .find(|m| m.file.ends_with(".log") && !m.range.is_empty())
                .unwrap_or_else(|| panic!("{how}/{mode}: the torn bytes are quarantined"));
            assert!(tail.path.ends_with(&cut.file), "{how}/{mode}: {}", cut.file);

            // Undoing the second run gives the damaged directory back, and then
            // undoing the first run too gives the original back, but for the torn
            // bytes the fault itself removed.
            let restore = |repairs: Vec<&recovery::quarantine::Manifest>| {
                let mut args = vec!["restore".to_string()];
                args.extend(repairs.iter().rev().map(|m| m.repair.to_string()));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let restored = run(&args, data, &state);
                assert_eq!(restored.code, 0, "{how}/{mode}: {}", restored.stderr);
            };
            restore(new);
            harness::assert_same(&damaged, &snapshot(data));
            restore(before.iter().collect());
            let diff = harness::snapshot::diff(&input, &snapshot(data)).unwrap_or_default();
            assert_eq!(
                diff.lines().count(),
                2,
                "{how}/{mode}: only the torn file: {diff}"
            );
            let torn = tail
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(diff.contains(&torn), "{how}/{mode}: {diff}");
        }
    }
}

/// Ids start above every folder the quarantine holds, even one the journal never
/// knew of.
#[test]
fn new_ids_start_above_every_quarantine_folder() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let (data, state) = (copy.path(), copy.tmp_root().join("state"));
    assert_eq!(run(&["recover"], data, &state).code, 0);
    let first = manifests(&state).into_iter().next().unwrap();
    // Plant that folder under the next id the journal will hand out.
    let q = state.join("quarantine");
    let planted = q.join("r99999999");
    let (home, _) = recovery::quarantine::Quarantine::new(&state)
        .find(first.repair)
        .unwrap()
        .unwrap();
    std::fs::create_dir(&planted).unwrap();
    // Its saved bytes, a slice of the run's packed file, as a folder of its own.
    let saved = home.saved(&first);
    let packed = std::fs::read(&saved.path).unwrap();
    let bytes = &packed[saved.range.start as usize..saved.range.end as usize];
    std::fs::write(planted.join("bytes"), bytes).unwrap();
    let mut moved = first.clone();
    moved.packed = None;
    moved.repair = journal::RepairId(99_999_999);
    let text = serde_json::to_vec_pretty(&moved).unwrap();
    std::fs::write(planted.join("manifest.json"), text).unwrap();
    apply(data, "streams/0/topics/0/partitions/1", Fault::TornLogTail).unwrap();
    let damaged = snapshot(data);
    // Ids now start above the planted folder, so nothing collides.
    let again = run(&["recover"], data, &state);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let new = manifests(&state);
    assert!(new.iter().any(|m| m.repair.0 > 99_999_999));
    assert_ne!(snapshot(data), damaged);
}
