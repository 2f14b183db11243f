//! The command line as an operator meets it: exit codes, clear errors naming files,
//! refusal while another process uses the data, a corrupt journal, the dry-run replay.

use crate::warden;
use harness::cli::Run;
use harness::fixtures::{CLEAN, KILLED_UNDER_LOAD};
use harness::{apply, fixture_copy, snapshot, Fault};
use serde_json::json;
use std::path::Path;
use xxhash_rust::xxh3::xxh3_64;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `iggy-warden recover EXTRA... --data-dir DATA --state-dir STATE`.
fn recover(data: &Path, state: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["recover"];
    args.extend_from_slice(extra);
    args.extend(["--data-dir", s(data), "--state-dir", s(state)]);
    warden(args)
}

/// `iggy-warden restore EXTRA... --data-dir DATA --state-dir STATE`.
fn restore(data: &Path, state: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["restore"];
    args.extend_from_slice(extra);
    args.extend(["--data-dir", s(data), "--state-dir", s(state)]);
    warden(args)
}

/// XXH3-64 as `restore --json` prints it.
fn hex(xxh3: u64) -> String {
    format!("{xxh3:#018x}")
}

#[test]
fn check_of_a_missing_directory_has_nothing_to_check_and_names_it() {
    // A first start: the server creates the folder (see tests/hostile_foreign.rs).
    let run = warden(["check", "--data-dir", "/nonexistent/iggy-data"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("nothing to check") && run.stdout.contains("/nonexistent/iggy-data"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_newer_format_is_refused_with_its_version() {
    let copy = fixture_copy(CLEAN);
    let mut info = vec![5u8];
    info.extend(b"0.9.1");
    std::fs::write(copy.path().join("state/info"), info).unwrap();
    let run = warden(["check", "--data-dir", s(copy.path())]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("0.9.1") && run.stderr.contains("state/info"),
        "{}",
        run.stderr
    );
}

fn problems_of(dir: &Path, suffix: &str) -> Vec<serde_json::Value> {
    let run = warden(["check", "--json", "--data-dir", s(dir)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.json()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["path"].as_str().unwrap().ends_with(suffix))
        .cloned()
        .collect()
}

#[test]
fn garbage_in_a_segment_is_reported_with_file_and_offset() {
    let copy = fixture_copy(CLEAN);
    let rel = "streams/1/topics/0/partitions/0/00000000000000000000.log";
    let log = copy.path().join(rel);
    let original = std::fs::read(&log).unwrap();
    let len = original.len();
    // Garbage over the payload of the last message: a corrupt tail.
    let mut bytes = original.clone();
    bytes[len - 5..].copy_from_slice(&[0xAB; 5]);
    std::fs::write(&log, &bytes).unwrap();
    let found = problems_of(copy.path(), rel);
    assert_eq!(found[0]["kind"], "corrupt-tail");
    let last_start = found[0]["offset"].as_u64().unwrap();
    assert!(last_start < len as u64 - 56 && last_start > 0);
    // Garbage over the last header's lengths: it may hide data, so it is not taken
    // for a crash tail.
    let mut bytes = original.clone();
    bytes[last_start as usize + 48..last_start as usize + 56].copy_from_slice(&[0xAB; 8]);
    std::fs::write(&log, &bytes).unwrap();
    let found = problems_of(copy.path(), rel);
    assert_eq!(found[0]["kind"], "mid-file-corruption");
    assert_eq!(found[0]["offset"].as_u64(), Some(last_start));
    assert!(found[0]["detail"]
        .as_str()
        .unwrap()
        .contains("not a message header"));
    // Half a header of garbage appended: a torn tail at the old end.
    let mut bytes = original;
    bytes.extend([0xAB; 40]);
    std::fs::write(&log, &bytes).unwrap();
    let found = problems_of(copy.path(), rel);
    assert_eq!(found[0]["kind"], "torn-tail");
    assert_eq!(found[0]["offset"].as_u64(), Some(len as u64));
}

#[test]
fn recover_refuses_while_another_process_holds_a_file_and_force_overrides() {
    let copy = fixture_copy(CLEAN);
    let state = copy.tmp_root().join("state");
    let held = copy
        .path()
        .join("streams/0/topics/0/partitions/0/00000000000000000000.log");
    let mut child = std::process::Command::new("sh")
        .args(["-c", "exec sleep 30 3<\"$0\""])
        .arg(&held)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = snapshot(copy.path());
    let run = recover(copy.path(), &state, &[]);
    let forced = {
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("pid {}", child.id())),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("00000000000000000000.log"),
            "{}",
            run.stderr
        );
        assert_eq!(
            before,
            snapshot(copy.path()),
            "nothing may change while busy"
        );
        recover(copy.path(), &state, &["--force"])
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

#[test]
fn a_corrupt_journal_is_moved_aside_and_recovery_still_works() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let state = copy.tmp_root().join("state");
    let first = recover(copy.path(), &state, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // Garble every file of the journal.
    for entry in walk(&state.join("journal")) {
        let mut bytes = std::fs::read(&entry).unwrap();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b ^= (i as u8).wrapping_mul(151) | 1;
        }
        std::fs::write(&entry, bytes).unwrap();
    }
    apply(
        copy.path(),
        "streams/0/topics/0/partitions/0",
        Fault::TornLogTail,
    )
    .unwrap();
    let run = recover(copy.path(), &state, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let aside: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("journal.unusable-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the unusable journal is kept aside");
    assert_eq!(warden(["check", "--data-dir", s(copy.path())]).code, 0);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn absolute_mode_repairs_nothing_and_exits_3() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    apply(
        copy.path(),
        "streams/0/topics/0/partitions/1",
        Fault::TornLogTail,
    )
    .unwrap();
    let before = snapshot(copy.path());
    let state = copy.tmp_root().join("state");
    let run = recover(copy.path(), &state, &["--mode", "absolute"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.contains("torn-tail"), "{}", run.stdout);
    assert_eq!(before, snapshot(copy.path()));
}

#[test]
fn replay_is_a_dry_run_unless_applied_and_can_be_limited_to_a_partition() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let state = copy.tmp_root().join("state");
    apply(
        copy.path(),
        "streams/0/topics/0/partitions/0",
        Fault::ZeroTail { len: 4096 },
    )
    .unwrap();
    apply(
        copy.path(),
        "streams/0/topics/0/partitions/1",
        Fault::IndexMissing,
    )
    .unwrap();
    let before = snapshot(copy.path());
    let dry = warden([
        "replay",
        "--json",
        "--data-dir",
        s(copy.path()),
        "--state-dir",
        s(&state),
    ]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(before, snapshot(copy.path()), "a dry run changes nothing");
    let plan = dry.json()["plan"]["actions"].as_array().unwrap().len();
    assert!(
        plan >= 3,
        "truncate + index for p0, create index for p1, empty pair of p2"
    );

    let one = warden([
        "replay",
        "--apply",
        "--partition",
        "0/0/1",
        "--data-dir",
        s(copy.path()),
        "--state-dir",
        s(&state),
    ]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    let after = warden(["check", "--json", "--data-dir", s(copy.path())]).json();
    let kinds: Vec<&str> = after["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"zero-tail") && !kinds.contains(&"index-missing"),
        "{kinds:?}"
    );
}

#[test]
fn a_torn_consumer_offset_is_reported_and_quarantined_restorably() {
    let copy = fixture_copy(CLEAN);
    let state = copy.tmp_root().join("state");
    let rel = "streams/0/topics/0/partitions/0/offsets/consumers/2497150693";
    let file = copy.path().join(rel);
    std::fs::write(&file, [100u8, 0, 0]).unwrap();
    let found = problems_of(copy.path(), "2497150693");
    assert_eq!(found[0]["kind"], "bad-offset-file");
    let damaged = snapshot(copy.path());
    let run = recover(copy.path(), &state, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !file.exists(),
        "0.6.0 cannot start with a 3-byte offset file"
    );
    assert_eq!(warden(["check", "--data-dir", s(copy.path())]).code, 0);
    let list = warden([
        "restore",
        "--list",
        "--data-dir",
        s(copy.path()),
        "--state-dir",
        s(&state),
    ]);
    let ids: Vec<&str> = list
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut args = vec![
        "restore",
        "--data-dir",
        s(copy.path()),
        "--state-dir",
        s(&state),
    ];
    args.extend(ids);
    assert_eq!(warden(&args).code, 0);
    assert_eq!(damaged, snapshot(copy.path()));
}

#[test]
fn a_stray_log_file_blocks_the_start_and_is_left_to_the_operator() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let state = copy.tmp_root().join("state");
    let part = copy.path().join("streams/0/topics/0/partitions/1");
    std::fs::write(part.join("notes.log"), b"operator scratch").unwrap();
    std::fs::create_dir(part.join("old")).unwrap();
    std::fs::write(part.join("old/00000000000000000000.log"), b"x").unwrap();
    let kinds: Vec<String> = problems_of(copy.path(), ".log")
        .iter()
        .filter(|p| p["kind"] == "stray-log")
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    let before = snapshot(copy.path());
    for mode in ["tolerate-tail", "point-in-time"] {
        let run = recover(copy.path(), &state, &["--mode", mode]);
        assert_eq!(run.code, 3, "{mode}: {}", run.stdout);
        assert!(run.stdout.contains("stray .log"), "{}", run.stdout);
    }
    assert_eq!(before, snapshot(copy.path()), "strays are never touched");
    std::fs::remove_file(part.join("notes.log")).unwrap();
    std::fs::remove_dir_all(part.join("old")).unwrap();
    let run = recover(copy.path(), &state, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn directory_options_may_follow_the_journal_subcommand() {
    let copy = fixture_copy(CLEAN);
    let state = tempfile::tempdir().unwrap();
    let state = state.path().join("state");
    assert_eq!(recover(copy.path(), &state, &[]).code, 0);
    let before = warden(["journal", "--state-dir", s(&state), "verify"]);
    let after = warden(["journal", "verify", "--state-dir", s(&state)]);
    for run in [&before, &after] {
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("sound"), "{}", run.stdout);
    }
    assert_eq!(before.stdout, after.stdout);
}

#[test]
fn restore_list_json_describes_every_quarantined_repair_and_restore_json_what_came_back() {
    let copy = fixture_copy(CLEAN);
    let state = copy.tmp_root().join("state");
    let nothing = restore(copy.path(), &state, &["--list", "--json"]);
    assert_eq!(nothing.code, 0, "{}", nothing.stderr);
    assert_eq!(nothing.json()["repairs"], json!([]));
    assert_eq!(nothing.json()["bytes"], 0);

    // Besides the clean copy's empty pairs and missing offsets folders, a zero-filled
    // tail: a cut with real bytes to describe.
    let rel = "streams/1/topics/0/partitions/0/00000000000000000000.log";
    let clean_len = std::fs::metadata(copy.path().join(rel)).unwrap().len();
    apply(
        copy.path(),
        "streams/1/topics/0/partitions/0",
        Fault::ZeroTail { len: 4096 },
    )
    .unwrap();
    let damaged = snapshot(copy.path());
    let run = recover(copy.path(), &state, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let actions = run.json()["actions"].as_array().unwrap().clone();

    let listed = restore(copy.path(), &state, &["--list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let list = listed.json();
    assert_eq!(list["quarantine"], s(&state.join("quarantine")));
    let repairs = list["repairs"].as_array().unwrap();
    assert_eq!(repairs.len(), actions.len(), "{list:#}");
    for (r, a) in repairs.iter().zip(&actions) {
        let n = a["repair"].as_u64().unwrap();
        let id = format!("r{n:08}");
        assert_eq!(r["id"], id);
        assert_eq!(r["repair"], n);
        assert_eq!(r["action_detail"], a["action"]);
        assert_eq!(r["reason"], a["reason"]);
        assert_eq!(r["bytes"], a["quarantined_bytes"]);
        assert_eq!(r["data_dir"], s(copy.path()));
        // The same as the manifest on disk says: the run's one manifest, which
        // lists every repair of the run.
        let run = r["run"]
            .as_str()
            .expect("a recover saves into a run folder");
        let path = state.join("quarantine").join(run).join("manifest.json");
        let manifests: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let manifest = manifests["repairs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["repair"] == n)
            .unwrap_or_else(|| panic!("{id} in {run}: {manifests:#}"));
        assert_eq!(r["file"], manifest["file"]);
        assert_eq!(r["range"], manifest["range"]);
        assert_eq!(r["created_file"], manifest["created_file"]);
        assert_eq!(r["xxh3"], hex(manifest["xxh3"].as_u64().unwrap()));
        let range = &r["range"];
        let len = range["end"].as_u64().unwrap() - range["start"].as_u64().unwrap();
        assert_eq!(r["bytes"], len);
        // And the saved bytes are the ones described.
        let packed = std::fs::read(r["saved_at"].as_str().unwrap()).unwrap();
        let at = &r["saved_range"];
        let (from, to) = (at["start"].as_u64().unwrap(), at["end"].as_u64().unwrap());
        let saved = packed.get(from as usize..to as usize).unwrap();
        assert_eq!(saved.len() as u64, len);
        assert_eq!(r["xxh3"], hex(xxh3_64(saved)));
    }
    let find = |file: &str| {
        repairs
            .iter()
            .find(|r| r["file"] == file)
            .unwrap_or_else(|| panic!("no repair of {file}: {list:#}"))
    };
    let cut = find(rel);
    assert!(
        cut["action"].as_str().unwrap().starts_with("truncate "),
        "{cut:#}"
    );
    assert!(
        cut["reason"].as_str().unwrap().contains("zero-tail"),
        "{cut:#}"
    );
    assert_eq!(
        cut["range"],
        json!({ "start": clean_len, "end": clean_len + 4096 })
    );
    assert_eq!(cut["bytes"], 4096);
    assert_eq!(cut["xxh3"], hex(xxh3_64(&[0u8; 4096])));
    assert_eq!(cut["created_file"], false);
    let pair = find("streams/0/topics/0/partitions/0/00000000000000002886.log");
    assert!(
        pair["action_detail"]["QuarantineFile"].is_object(),
        "{pair:#}"
    );
    assert!(pair["reason"].as_str().unwrap().contains("empty-pair"));
    assert_eq!(
        (&pair["bytes"], &pair["created_file"]),
        (&json!(0), &json!(false))
    );
    assert_eq!(pair["xxh3"], hex(xxh3_64(&[])));
    let folder = find("streams/1/topics/0/partitions/0/offsets");
    assert_eq!(
        folder["action"],
        "create folder streams/1/topics/0/partitions/0/offsets"
    );
    assert_eq!(folder["created_file"], true);
    assert_eq!(list["bytes"], 4096);

    // The text listing is as it was: one line per repair, its id first.
    let text = restore(copy.path(), &state, &["--list"]);
    let ids: Vec<&str> = text
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let listed_ids: Vec<&str> = repairs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, listed_ids);
    assert!(text.stdout.contains(&format!(
        "bytes {}..{} of {rel}",
        clean_len,
        clean_len + 4096
    )));

    // Restoring them all: newest first, every byte back, the damaged copy again.
    let mut args = vec!["--json"];
    args.extend(&ids);
    let run = restore(copy.path(), &state, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let back = run.json();
    assert_eq!(back["finished"], json!([]));
    let restored = back["restored"].as_array().unwrap();
    let undone: Vec<&str> = restored
        .iter()
        .map(|r| r["restored"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().copied().collect();
    assert_eq!(undone, newest_first);
    for r in restored {
        let original = repairs.iter().find(|o| o["id"] == r["restored"]).unwrap();
        assert_eq!(r["file"], original["file"]);
        assert_eq!(r["range"], original["range"]);
        assert_eq!(r["restored_action"], original["action"]);
        assert_eq!(r["bytes"], original["bytes"]);
        let own = r["repair"].as_u64().unwrap();
        assert_eq!(r["id"], format!("r{own:08}"));
        assert!(own > actions.len() as u64, "a restore has an id of its own");
    }
    assert_eq!(back["bytes_restored"], 4096);
    assert_eq!(damaged, snapshot(copy.path()));
}

#[test]
fn the_packaged_config_recovers_in_salvage_and_the_command_line_in_tolerate_tail() {
    let packaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/config.toml");
    let text = std::fs::read_to_string(&packaged).unwrap();
    assert!(
        text.lines().any(|l| l == r#"mode = "salvage""#),
        "{} must set mode = \"salvage\"",
        packaged.display()
    );
    let copy = fixture_copy(CLEAN);
    let state = copy.tmp_root().join("state");
    // The flags override the file's data_dir and state_dir, not its mode.
    let run = recover(copy.path(), &state, &["--json", "--config", s(&packaged)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["mode"], "salvage");
    let run = recover(copy.path(), &state, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["mode"], "tolerate-tail");
    let run = recover(
        copy.path(),
        &state,
        &[
            "--json",
            "--config",
            s(&packaged),
            "--mode",
            "tolerate-tail",
        ],
    );
    assert_eq!(run.json()["mode"], "tolerate-tail", "{}", run.stderr);

    // A mode no one knows is an error naming the file, before anything is touched.
    let bad = copy.tmp_root().join("bad.toml");
    std::fs::write(&bad, "mode = \"salvaged\"\n").unwrap();
    let run = recover(copy.path(), &state, &["--config", s(&bad)]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains(s(&bad)) && run.stderr.contains("salvaged"),
        "{}",
        run.stderr
    );
    // Still recorded for the sidecar's metrics, in the state directory the flag gives.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("last-recover.json")).unwrap()).unwrap();
    assert_eq!(
        (&record["mode"], &record["exit_code"]),
        (&json!("unknown"), &json!(2))
    );
    assert!(
        record["error"].as_str().unwrap().contains("salvaged"),
        "{record}"
    );
}

/// `check` is read-only down to the inodes: under `relatime` a plain read of a file
/// written since its last access would set its access time. The fixture's files are
/// dated as the server leaves them (accessed a day before they were last written).
#[test]
fn check_leaves_every_file_s_access_time_as_it_was() {
    use std::os::unix::fs::MetadataExt;
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    let mut files = Vec::new();
    let mut dirs = vec![copy.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_times(std::fs::FileTimes::new().set_accessed(day_ago))
                    .unwrap();
                let atime = std::fs::metadata(&path).unwrap().atime();
                files.push((path, atime));
            }
        }
    }
    assert!(files
        .iter()
        .any(|(p, _)| p.extension().is_some_and(|e| e == "log")));
    let run = warden(["check", "--data-dir", s(copy.path())]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    for (path, atime) in &files {
        let now = std::fs::metadata(path).unwrap().atime();
        assert_eq!(
            now,
            *atime,
            "{} read with its access time set",
            path.display()
        );
    }
}
