//! Saving, finding and checking quarantined bytes on a real file system.

use super::*;
use crate::fsops::{StdFs, SyncRound};
use std::fs;
use std::path::Path;

#[test]
fn a_long_zero_tail_is_described_and_only_a_truncation_may_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let seg = journal::PartitionId::new(0, 0, 0).segment(0);
    let rel = seg.rel_log();
    let path = data.join(&rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"kept").unwrap();
    let len = 4 + 2 * ZERO_RUN_MIN;
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len)
        .unwrap();
    let q = Quarantine::new(&tmp.path().join("state"));
    let action = RepairAction::TruncateLog {
        segment: seg,
        keep_len: 4,
        original_len: len,
    };
    let range = ByteRange::new(4, len);
    let m = q
        .save(
            &StdFs,
            RepairId(1),
            &action,
            "zeros",
            &data,
            &rel,
            range,
            false,
        )
        .unwrap();
    assert!(m.zero_run);
    assert_eq!(
        fs::metadata(Home::Own(q.repair_dir(m.repair)).bytes())
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        q.load_verified(m.repair).unwrap().map(|(_, m)| m),
        Some(m.clone())
    );
    q.check_paths(&Home::Own(q.repair_dir(m.repair)), &m)
        .unwrap();
    // A crafted manifest may not claim zeros for another kind of repair.
    let mut crafted = m.clone();
    crafted.action = RepairAction::QuarantineFile {
        path: rel.clone(),
        len,
    };
    let err = q
        .check_paths(&Home::Own(q.repair_dir(m.repair)), &crafted)
        .unwrap_err();
    assert!(err.to_string().contains("zero run"), "{err}");
    // Written zeros count too; a short zero tail is still copied.
    fs::write(&path, vec![0u8; 100]).unwrap();
    let small = RepairAction::TruncateLog {
        segment: seg,
        keep_len: 0,
        original_len: 100,
    };
    let m = q
        .save(
            &StdFs,
            RepairId(2),
            &small,
            "short",
            &data,
            &rel,
            ByteRange::new(0, 100),
            false,
        )
        .unwrap();
    assert!(!m.zero_run);
    assert_eq!(
        fs::read(Home::Own(q.repair_dir(m.repair)).bytes()).unwrap(),
        vec![0u8; 100]
    );
}

#[test]
fn a_giant_or_unreadable_manifest_is_bad_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let q = Quarantine::new(tmp.path());
    let id = RepairId(7);
    fs::create_dir_all(q.repair_dir(id)).unwrap();
    let path = q.repair_dir(id).join(MANIFEST);
    fs::File::create(&path).unwrap().set_len(50 << 30).unwrap();
    let err = q.load(id).unwrap_err();
    assert!(
        matches!(err, QuarantineError::BadManifest { .. }) && err.to_string().contains("more than"),
        "{err}"
    );
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let err = q.load(id).unwrap_err();
    assert!(
        matches!(err, QuarantineError::BadManifest { .. })
            && err.to_string().contains("symbolic link"),
        "{err}"
    );
}

#[test]
fn saving_under_an_id_that_holds_another_repair_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("a.log"), b"0123456789").unwrap();
    fs::write(data.join("b.log"), b"abcdefghij").unwrap();
    let q = Quarantine::new(&tmp.path().join("state"));
    let id = RepairId(1);
    let cut = |file: &str| RepairAction::QuarantineFile {
        path: file.into(),
        len: 10,
    };
    let range = ByteRange::new(4, 10);
    let save = |file: &str| q.save(&StdFs, id, &cut(file), "r", &data, file, range, false);
    save("a.log").unwrap();
    let saved = fs::read(Home::Own(q.repair_dir(id)).bytes()).unwrap();
    // The same repair again (a rerun) finds its complete save.
    save("a.log").unwrap();
    let other = save("b.log");
    assert!(
        matches!(other, Err(QuarantineError::IdTaken { .. })),
        "{other:?}"
    );
    assert_eq!(
        fs::read(Home::Own(q.repair_dir(id)).bytes()).unwrap(),
        saved
    );
    assert_eq!(q.load(id).unwrap().unwrap().file, "a.log");
    assert_eq!(q.highest_id().unwrap(), Some(id));
}

/// A data directory with `n` files `p<i>.log` of 10 bytes, and a request to save
/// bytes 4..10 of each under ids `first..first + n`.
pub(super) fn run_requests(
    data: &Path,
    first: u64,
    n: u64,
) -> Vec<(RepairId, RepairAction, String, String)> {
    fs::create_dir_all(data).unwrap();
    (0..n)
        .map(|i| {
            let file = format!("p{i}.log");
            fs::write(data.join(&file), format!("0123456{i:03}")).unwrap();
            let action = RepairAction::QuarantineFile {
                path: file.clone(),
                len: 10,
            };
            (RepairId(first + i), action, format!("reason {i}"), file)
        })
        .collect()
}

pub(super) fn requests<'a>(
    data: &'a Path,
    items: &'a [(RepairId, RepairAction, String, String)],
) -> Vec<SaveRequest<'a>> {
    items
        .iter()
        .map(|(id, action, reason, file)| SaveRequest {
            id: *id,
            action,
            reason,
            data_dir: data,
            file,
            range: ByteRange::new(4, 10),
            created_file: false,
        })
        .collect()
}

#[test]
fn a_run_saves_every_repair_in_one_folder_that_each_repair_is_found_in() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let q = Quarantine::new(&tmp.path().join("state"));
    let items = run_requests(&data, 12, 3);
    let round = SyncRound::new();
    let saved = q
        .save_run(&StdFs, &requests(&data, &items), &round)
        .unwrap();
    // The bytes were synced inside; the manifest's folder waits for the caller.
    assert_eq!(round.len(), 1);
    round.run(&StdFs).unwrap();
    let run = RunId::parse("run-r00000012-r00000014").unwrap();
    let folder = q.run_dir(run);
    let mut names: Vec<String> = fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // One packed file: each repair's 6 bytes at its offset, in id order.
    assert_eq!(names, [BYTES, MANIFEST]);
    assert_eq!(fs::read(folder.join(BYTES)).unwrap(), b"456000456001456002");
    let loaded = q.load_run(run).unwrap().unwrap();
    assert!(loaded.is_packed());
    assert_eq!(loaded.repairs, saved);
    for (i, m) in saved.iter().enumerate() {
        let (home, found) = q.load_verified(m.repair).unwrap().unwrap();
        assert_eq!(&found, m);
        assert_eq!(home.run(), Some(run));
        let slice = PackedSlice {
            offset: 6 * i as u64,
            len: 6,
        };
        assert_eq!(found.packed, Some(slice));
        let saved = home.saved(&found);
        assert_eq!(saved.path, folder.join(BYTES));
        assert_eq!(saved.range, slice.range().unwrap());
        let bytes = fs::read(&saved.path).unwrap();
        assert_eq!(
            bytes.get(saved.range.start as usize..saved.range.end as usize),
            Some(format!("456{i:03}").as_bytes())
        );
        q.check_paths(&home, &found).unwrap();
    }
    assert_eq!(q.list().unwrap(), saved);
    assert_eq!(q.highest_id().unwrap(), Some(RepairId(14)));
    let finder = q.finder().unwrap();
    let (_, action, _, file) = &items[1];
    assert!(finder.saved_before(RepairId(13), action, file).unwrap());
    assert!(!finder.saved_before(RepairId(15), action, file).unwrap());
    // Under the same id, another repair's save is refused.
    let err = finder
        .saved_before(RepairId(13), action, "p0.log")
        .unwrap_err();
    assert!(matches!(err, QuarantineError::IdTaken { .. }), "{err}");
    // A changed slice is found out, naming the packed file and its offset; its
    // neighbours still verify.
    fs::write(folder.join(BYTES), b"456000456999456002").unwrap();
    let err = q.load_verified(RepairId(13)).unwrap_err();
    assert!(
        matches!(err, QuarantineError::BadSlice { offset: 6, .. })
            && err.to_string().contains("bytes")
            && err.to_string().contains("offset 6"),
        "{err}"
    );
    q.load_verified(RepairId(12)).unwrap().unwrap();
    q.load_verified(RepairId(14)).unwrap().unwrap();
}

#[test]
fn a_run_folder_without_a_manifest_is_written_again_and_one_with_a_manifest_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let q = Quarantine::new(&tmp.path().join("state"));
    let items = run_requests(&data, 1, 2);
    let run = RunId::of([RepairId(1), RepairId(2)]).unwrap();
    // A save a crash interrupted: a torn packed file, no manifest. Nothing
    // describes it.
    fs::create_dir_all(q.run_dir(run)).unwrap();
    fs::write(q.run_dir(run).join(BYTES), b"45").unwrap();
    assert_eq!(q.load(RepairId(1)).unwrap(), None);
    assert_eq!(q.highest_id().unwrap(), Some(RepairId(2)));
    let round = SyncRound::new();
    let saved = q
        .save_run(&StdFs, &requests(&data, &items), &round)
        .unwrap();
    round.run(&StdFs).unwrap();
    assert_eq!(saved.len(), 2);
    q.load_verified(RepairId(1)).unwrap().unwrap();
    assert_eq!(
        fs::read(q.run_dir(run).join(BYTES)).unwrap(),
        b"456000456001"
    );
    // The run again, now that a manifest describes it: refused, nothing changed.
    let before = fs::read(q.run_dir(run).join(MANIFEST)).unwrap();
    let err = q
        .save_run(&StdFs, &requests(&data, &items), &round)
        .unwrap_err();
    assert!(
        matches!(err, (RepairId(1), QuarantineError::IdTaken { .. })),
        "{err:?}"
    );
    assert_eq!(fs::read(q.run_dir(run).join(MANIFEST)).unwrap(), before);
}

#[test]
fn run_names_have_one_form_and_run_manifests_describe_only_their_run() {
    let run = RunId::of([RepairId(20), RepairId(3), RepairId(7)]).unwrap();
    assert_eq!(run.to_string(), "run-r00000003-r00000020");
    assert_eq!(RunId::parse(&run.to_string()), Some(run));
    for name in [
        "run-r3-r20",
        "run-r00000020-r00000003",
        "run-r00000003-r00000020x",
        "run-r00000003",
        "r00000003",
        "run--r00000003-r00000020",
    ] {
        assert_eq!(RunId::parse(name), None, "{name}");
    }
    assert!(run.contains(RepairId(3)) && run.contains(RepairId(20)));
    assert!(!run.contains(RepairId(2)) && !run.contains(RepairId(21)));

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let q = Quarantine::new(&tmp.path().join("state"));
    let items = run_requests(&data, 3, 2);
    let round = SyncRound::new();
    let saved = q
        .save_run(&StdFs, &requests(&data, &items), &round)
        .unwrap();
    let run = RunId::of([RepairId(3), RepairId(4)]).unwrap();
    let path = q.run_dir(run).join(MANIFEST);
    let good = RunManifest::new(run, saved.clone());
    let parse = |m: &RunManifest| RunManifest::parse(&path, run, &serde_json::to_vec(m).unwrap());
    assert_eq!(parse(&good).unwrap(), good);
    let mut crafted = Vec::new();
    let mut m = good.clone();
    m.run = "run-r00000001-r00000009".into();
    crafted.push((m, "describes"));
    let mut m = good.clone();
    m.repairs[1].repair = RepairId(5);
    crafted.push((m, "outside"));
    let mut m = good.clone();
    m.repairs[1].repair = RepairId(3);
    crafted.push((m, "twice"));
    let mut m = good.clone();
    m.repairs[0].files.push(SavedFile {
        file: "../../x".into(),
        len: 1,
        xxh3: 0,
        saved_as: "../x".into(),
    });
    crafted.push((m, "whole files"));
    let mut m = good.clone();
    m.version = 9;
    crafted.push((m, "version"));
    let mut m = good.clone();
    m.repairs[0].action = RepairAction::Restore {
        repair: RepairId(1),
    };
    crafted.push((m, "in a run folder"));
    for (m, why) in crafted {
        let err = parse(&m).unwrap_err();
        assert!(
            matches!(err, QuarantineError::BadManifest { .. }) && err.to_string().contains(why),
            "{why}: {err}"
        );
    }
    // A bad run manifest is an error for its repairs, and listed as one.
    fs::write(&path, b"{").unwrap();
    assert!(q.load(RepairId(3)).is_err());
    let listed = q.list_each().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, RepairId(3));
    assert!(listed[0].manifest.is_err());
}
