//! The packed run form read back: crafted slices refused with the file and offset
//! named, and run folders of the release before (a file per repair) still read.

use super::tests::{requests, run_requests};
use super::*;
use crate::fsops::{StdFs, SyncRound};
use std::fs;
use std::path::Path;

/// A data directory of `n` files `p<i>.log` ("0123456" and three digits), and a packed
/// run saving bytes 4..10 of each under ids 3..3 + n.
fn packed_run(root: &Path, n: u64) -> (Quarantine, RunId, Vec<Manifest>) {
    let data = root.join("data");
    let items = run_requests(&data, 3, n);
    let requests = requests(&data, &items);
    let q = Quarantine::new(&root.join("state"));
    let round = SyncRound::new();
    let saved = q.save_run(&StdFs, &requests, &round).unwrap();
    round.run(&StdFs).unwrap();
    let run = RunId::of(requests.iter().map(|r| r.id)).unwrap();
    (q, run, saved)
}

#[test]
fn crafted_slices_are_refused_naming_the_file_and_the_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (q, run, saved) = packed_run(tmp.path(), 3);
    let path = q.run_dir(run).join(MANIFEST);
    let good = RunManifest::new(run, saved);
    let slice = |offset, len| Some(PackedSlice { offset, len });
    let parse = |m: &RunManifest| RunManifest::parse(&path, run, &serde_json::to_vec(m).unwrap());
    assert_eq!(parse(&good).unwrap(), good);

    // Refused as they are read: `(manifest, repair, offset, why)`.
    let mut crafted = Vec::new();
    let mut m = good.clone();
    m.repairs[1].packed = slice(6, 5);
    crafted.push((m, 4, 6, "is not the 6 bytes it saved"));
    let mut m = good.clone();
    m.repairs[1].packed = slice(3, 6);
    crafted.push((m, 4, 3, "overlaps the bytes of repair r00000003"));
    let mut m = good.clone();
    m.repairs[0].packed = slice(12, 6);
    crafted.push((m, 5, 12, "overlaps the bytes of repair r00000003"));
    let mut m = good.clone();
    m.repairs[2].range = ByteRange::new(4, u64::MAX);
    m.repairs[2].packed = slice(12, u64::MAX - 4);
    crafted.push((m, 5, 12, "ends past the largest offset"));
    let mut m = good.clone();
    m.version = 1;
    crafted.push((m, 3, 0, "is a slice in a run of a file per repair"));
    for (m, repair, at, why) in crafted {
        let err = parse(&m).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, QuarantineError::BadSlice { repair: r, offset, .. }
                if *r == RepairId(repair) && *offset == at)
                && text.contains(why)
                && text.contains(&path.display().to_string())
                && text.contains(&format!("offset {at}")),
            "{why}: {err}"
        );
        // Through the finder too: an error for the run's repairs, never a panic.
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(q.load_verified(RepairId(repair)).is_err());
        assert!(q.list_each().unwrap()[0].manifest.is_err());
    }
    let mut m = good.clone();
    m.repairs[2].packed = None;
    let err = parse(&m).unwrap_err();
    assert!(
        err.to_string().contains("no slice of the packed file"),
        "{err}"
    );

    // Well formed, but past the end of the packed file (18 bytes): refused when the
    // slice is read, before any of it is, however long it says it is.
    let bytes = q.run_dir(run).join(BYTES);
    for (range, packed, why) in [
        (
            ByteRange::new(4, 10),
            slice(1000, 6),
            "ends past the packed file's 18 bytes",
        ),
        (
            ByteRange::new(4, 1 << 50),
            slice(12, (1 << 50) - 4),
            "ends past the packed file's 18 bytes",
        ),
    ] {
        let mut m = good.clone();
        m.repairs[2].range = range;
        m.repairs[2].packed = packed;
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        let offset = packed.unwrap().offset;
        let err = q.load_verified(RepairId(5)).unwrap_err();
        assert!(
            matches!(&err, QuarantineError::BadSlice { path: p, offset: o, .. }
                if *p == bytes && *o == offset)
                && err.to_string().contains(why),
            "{err}"
        );
        // The other repairs of the run still verify.
        q.load_verified(RepairId(3)).unwrap().unwrap();
    }

    // A packed file cut short, or gone: each repair past the cut is refused.
    fs::write(&path, serde_json::to_vec(&good).unwrap()).unwrap();
    fs::write(&bytes, b"456000456").unwrap();
    q.load_verified(RepairId(3)).unwrap().unwrap();
    assert!(matches!(
        q.load_verified(RepairId(4)).unwrap_err(),
        QuarantineError::BadSlice { offset: 6, .. }
    ));
    fs::remove_file(&bytes).unwrap();
    assert!(matches!(
        q.load_verified(RepairId(3)).unwrap_err(),
        QuarantineError::BytesChanged { .. }
    ));

    // A repair's own folder never names a slice.
    let own = q.repair_dir(RepairId(40));
    fs::create_dir_all(&own).unwrap();
    let mut m = good.repairs[0].clone();
    m.repair = RepairId(40);
    fs::write(own.join(MANIFEST), serde_json::to_vec(&m).unwrap()).unwrap();
    let err = q.load(RepairId(40)).unwrap_err();
    assert!(err.to_string().contains("only runs have"), "{err}");
}

/// A run folder exactly as the release before packed runs wrote it.
const V1_MANIFEST: &str = r#"{
  "version": 1,
  "run": "run-r00000005-r00000007",
  "repairs": [
    {
      "version": 1,
      "repair": 5,
      "action": { "QuarantineFile": { "path": "a.log", "len": 10 } },
      "reason": "stray",
      "data_dir": "/old/data",
      "file": "a.log",
      "range": { "start": 0, "end": 10 },
      "xxh3": XXH3_A,
      "created_file": false
    },
    {
      "version": 1,
      "repair": 7,
      "action": { "CreateDir": { "path": "offsets" } },
      "reason": "missing",
      "data_dir": "/old/data",
      "file": "offsets",
      "range": { "start": 0, "end": 0 },
      "xxh3": XXH3_EMPTY,
      "created_file": true
    }
  ]
}"#;

#[test]
fn a_run_folder_of_the_release_before_is_read_listed_and_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let q = Quarantine::new(tmp.path());
    let run = RunId::parse("run-r00000005-r00000007").unwrap();
    let folder = q.run_dir(run);
    fs::create_dir_all(&folder).unwrap();
    let text = V1_MANIFEST
        .replace(
            "XXH3_A",
            &xxhash_rust::xxh3::xxh3_64(b"0123456789").to_string(),
        )
        .replace("XXH3_EMPTY", &xxhash_rust::xxh3::xxh3_64(b"").to_string());
    fs::write(folder.join(MANIFEST), text).unwrap();
    fs::write(folder.join("r00000005.bytes"), b"0123456789").unwrap();
    fs::write(folder.join("r00000007.bytes"), b"").unwrap();

    let loaded = q.load_run(run).unwrap().unwrap();
    assert!(!loaded.is_packed());
    let listed: Vec<RepairId> = q.list().unwrap().iter().map(|m| m.repair).collect();
    assert_eq!(listed, [RepairId(5), RepairId(7)]);
    let (home, m) = q.load_verified(RepairId(5)).unwrap().unwrap();
    assert_eq!(home.run(), Some(run));
    assert_eq!(home.packed(), None);
    assert_eq!(home.bytes(), folder.join("r00000005.bytes"));
    let saved = home.saved(&m);
    assert_eq!(
        (saved.path.clone(), saved.range, saved.packed),
        (folder.join("r00000005.bytes"), ByteRange::new(0, 10), false)
    );
    q.check_paths(&home, &m).unwrap();
    q.load_verified(RepairId(7)).unwrap().unwrap();
    assert_eq!(q.load(RepairId(6)).unwrap(), None);
    assert_eq!(q.highest_id().unwrap(), Some(RepairId(7)));
    // Still a whole file each: one byte more is a change.
    fs::write(folder.join("r00000005.bytes"), b"0123456789!").unwrap();
    assert!(matches!(
        q.load_verified(RepairId(5)).unwrap_err(),
        QuarantineError::BytesChanged { .. }
    ));
}
