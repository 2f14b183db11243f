//! Journals and quarantines written by earlier releases: the releases before journal
//! formats 3 to 7 (`fixtures/warden-format-2/` to `fixtures/warden-format-6/`), whose
//! journals the current build migrates instead of moving them aside, keeping their
//! history, recovering with them and restoring their repairs; and the release before
//! packed run folders (`fixtures/warden-run-v1/`), whose run folder is listed and
//! restored.

use crate::warden;
use harness::cli::Run;
use harness::fixtures::{copy_dir, fixtures_dir};
use journal::{Journal, Record, SegmentPhase};
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Golden {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    state: PathBuf,
}

/// The fixtures of older journal formats.
const OLDER_FORMATS: [&str; 5] = [
    "warden-format-2",
    "warden-format-3",
    "warden-format-4",
    "warden-format-5",
    "warden-format-6",
];

/// A copy of `fixtures/<name>/`'s data and state directories.
fn golden_from(name: &str) -> Golden {
    let src = fixtures_dir().join("..").join(name);
    let tmp = tempfile::tempdir().unwrap();
    let (data, state) = (tmp.path().join("data"), tmp.path().join("state"));
    copy_dir(&src.join("data"), &data).unwrap();
    copy_dir(&src.join("state"), &state).unwrap();
    Golden {
        _tmp: tmp,
        data,
        state,
    }
}

fn run(g: &Golden, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--data-dir", s(&g.data), "--state-dir", s(&g.state)]);
    warden(all)
}

#[test]
fn journals_of_older_formats_are_migrated_with_their_history() {
    for name in OLDER_FORMATS {
        migrated_with_history(name);
    }
}

fn migrated_with_history(name: &str) {
    let g = golden_from(name);
    let verify = run(&g, &["journal", "verify"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    // Nothing was moved aside: the same journal, readable whole.
    let names: Vec<_> = std::fs::read_dir(&g.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains("unusable")), "{names:?}");
    let journal = Journal::open(&g.state.join("journal")).unwrap();
    let records: Vec<Record> = journal
        .records_since(0)
        .map(|e| e.map(|e| e.record))
        .collect::<Result<_, _>>()
        .unwrap();
    let done = records
        .iter()
        .filter(|r| matches!(r, Record::RepairDone { .. }))
        .count();
    assert_eq!(done, 11, "the old release's 11 repairs are in the history");
    let sealed = journal
        .all_segment_states()
        .unwrap()
        .into_iter()
        .filter(|(_, st)| {
            matches!(
                st.phase,
                SegmentPhase::Sealed { .. } | SegmentPhase::SealedStamped { .. }
            )
        })
        .count();
    assert!(
        sealed >= 2,
        "{name}: the old sidecar's seals are kept ({sealed})"
    );
    drop(journal);
    // A build that reads only the old format would now refuse it by its marker.
    // sled lets go of its lock from a background thread a moment after the close
    // (`Journal::open` waits for it the same way).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let db = loop {
        match sled::open(g.state.join("journal")) {
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => break opened.unwrap(),
        }
    };
    let marker = db.open_tree("meta").unwrap().get("format_version").unwrap();
    assert_eq!(
        marker.as_deref(),
        Some(&u64::from(journal::envelope::FORMAT_VERSION).to_be_bytes()[..])
    );
}

#[test]
fn recover_trusts_the_old_seals_and_restore_gives_back_the_old_repairs() {
    for name in OLDER_FORMATS {
        recover_and_restore(name);
    }
}

fn recover_and_restore(name: &str) {
    let g = golden_from(name);
    let recover = run(&g, &["recover", "--mode", "tolerate-tail"]);
    assert_eq!(recover.code, 0, "{}{}", recover.stdout, recover.stderr);
    // The three segments the old sidecar sealed are trusted without a scan. (Its
    // checkpoint of the open one counts only within the boot that wrote it.)
    assert!(
        recover.stdout.contains("journal used: 3 segments trusted"),
        "{}",
        recover.stdout
    );

    let torn =
        std::fs::read_to_string(fixtures_dir().join("..").join(name).join("torn-log")).unwrap();
    let torn = torn.trim();
    let listed = run(&g, &["restore", "--list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let list = listed.json();
    let repairs = list["repairs"].as_array().unwrap();
    let old = repairs
        .iter()
        .find(|r| r["file"] == torn)
        .unwrap_or_else(|| panic!("the old quarantine of {torn} is listed: {list:#}"));
    assert_eq!(old["bytes"], 30);
    let saved = std::fs::read(old["saved_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        old["saved_range"],
        serde_json::json!({"start": 0, "end": 30})
    );

    let id = old["id"].as_str().unwrap();
    let back = run(&g, &["restore", id]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(std::fs::read(g.data.join(torn)).unwrap(), saved);
}

/// A run folder of version 1 (`fixtures/warden-run-v1/`: a file per repair, as
/// the release before packed run folders wrote them) is listed and restored, one
/// repair or the whole run.
#[test]
fn a_run_folder_of_the_release_before_is_listed_and_restored() {
    let g = golden_from("warden-run-v1");
    let torn = std::fs::read_to_string(fixtures_dir().join("../warden-run-v1/torn-log")).unwrap();
    let torn = torn.trim();
    let listed = run(&g, &["restore", "--list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let list = listed.json();
    let repairs = list["repairs"].as_array().unwrap();
    assert!(repairs.len() > 1, "{list:#}");
    let cut = repairs
        .iter()
        .find(|r| r["file"] == torn)
        .unwrap_or_else(|| panic!("the cut of {torn} is listed: {list:#}"));
    let run_id = cut["run"]
        .as_str()
        .expect("saved in a run folder")
        .to_string();
    assert_eq!(cut["bytes"], 30);
    let saved_at = cut["saved_at"].as_str().unwrap();
    assert!(saved_at.ends_with(&format!("{}.bytes", cut["id"].as_str().unwrap())));
    assert_eq!(
        cut["saved_range"],
        serde_json::json!({"start": 0, "end": 30})
    );
    let saved = std::fs::read(saved_at).unwrap();
    assert_eq!(saved, b"a torn tail, thirty bytes long");
    // The log was moved into quarantine whole.
    assert!(!g.data.join(torn).exists());

    let back = run(&g, &["restore", &run_id]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(std::fs::read(g.data.join(torn)).unwrap(), saved);
}
