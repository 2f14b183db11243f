//! `state/log` faults end to end through the `iggy-warden` binary, like the segment
//! faults of `damage_table.rs`:
//! - `check` names each fault at its byte offset;
//! - `recover` cuts a crash tail under tolerate-tail, salvage and point-in-time, damage
//!   before the end only under point-in-time, nothing under absolute, and nothing in
//!   any mode when the cut would leave messages without metadata;
//! - the repaired directory is ready, its log is exactly the entries before the damage;
//! - `restore` of every repair gives back the damaged input byte for byte.
//!
//! Also: the metadata compared with the folders both ways, `state/info`, and a log
//! whose commands are encrypted.

use crate::warden;
use harness::fixtures::{copy_of, FixtureCopy, CLEAN, KILLED_UNDER_LOAD};
use harness::state_log::{
    append_delete_segments, append_encrypted_delete_segments, append_token, encode_entry,
    encrypt_entry, frame_entries, metadata_entries, StateEntry,
};
use harness::{
    apply_state, assert_same, copy_dir, fixture_copy, snapshot, state_faults, DataDirBuilder,
    PartitionSpec, Run, StateFault,
};
use std::fs;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Two partitions with messages and offsets folders; `state/log` names them, then has
/// users `alice` and `bob` and a token `ci`: its last two entries create no folder.
fn built() -> FixtureCopy {
    let tmp = tempfile::tempdir().unwrap();
    let spec = |p| {
        PartitionSpec::new(0, 0, p)
            .messages(40, 20..120, 0..30)
            .consumer_offset(1, 3)
            .group_offset(1, 2)
    };
    DataDirBuilder::new()
        .seed(13)
        .partition(spec(0))
        .partition(spec(1))
        .user("alice")
        .user("bob")
        .token("ci")
        .build(tmp.path());
    copy_of(tmp.path())
}

fn check(dir: &Path) -> Run {
    warden(["check", "--json", "--data-dir", s(dir)])
}

fn recover(dir: &Path, state: &Path, mode: &str) -> Run {
    warden([
        "recover",
        "--json",
        "--mode",
        mode,
        "--data-dir",
        s(dir),
        "--state-dir",
        s(state),
    ])
}

/// (kind, path, offset) of every problem `check` reports.
fn problems(dir: &Path) -> Vec<(String, String, Option<u64>)> {
    check(dir).json()["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_string(),
                p["path"].as_str().unwrap().to_string(),
                p["offset"].as_u64(),
            )
        })
        .collect()
}

/// Restores every repair in the quarantine, newest first.
fn restore_all(dir: &Path, state: &Path) {
    let mut ids: Vec<String> = fs::read_dir(state.join("quarantine"))
        .expect("quarantine")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids.reverse();
    let mut args = vec!["restore".to_string(), "--data-dir".into(), s(dir).into()];
    args.extend(["--state-dir".into(), s(state).into()]);
    args.extend(ids);
    let run = warden(&args);
    assert_eq!(run.code, 0, "restore\n{}{}", run.stdout, run.stderr);
}

fn expected_kind(fault: StateFault) -> &'static str {
    match fault {
        StateFault::TornTail { .. } | StateFault::ZeroTail { .. } => "state-log-torn",
        StateFault::FlipLastEntry | StateFault::FlipEarlierEntry => "state-log-corrupt",
        StateFault::IndexGap => "state-log-gap",
    }
}

#[test]
fn every_state_log_fault_is_found_cut_per_mode_and_restorable() {
    for fault in state_faults() {
        let copy = built();
        let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
        let original = fs::read(dir.join("state/log")).unwrap();
        let report = apply_state(dir, fault).unwrap();
        let damaged = snapshot(dir);
        let name = fault.name();

        let found = problems(dir);
        assert_eq!(
            found,
            [(
                expected_kind(fault).to_string(),
                s(&dir.join("state/log")).to_string(),
                Some(report.offset as u64)
            )],
            "{name}"
        );
        let mut refusing = vec!["absolute"];
        if !fault.is_tail() {
            refusing.extend(["tolerate-tail", "salvage"]);
        }
        for mode in refusing {
            let run = recover(dir, &state, mode);
            assert_eq!(run.code, 3, "{name} {mode}\n{}", run.stdout);
            assert_same(&damaged, &snapshot(dir));
        }
        let mode = if fault.is_tail() {
            "tolerate-tail"
        } else {
            "point-in-time"
        };
        let run = recover(dir, &state, mode);
        assert_eq!(run.code, 0, "{name} {mode}\n{}{}", run.stdout, run.stderr);
        let after = check(dir);
        assert_eq!(after.code, 0, "{name}: not ready\n{}", after.stdout);
        let log = fs::read(dir.join("state/log")).unwrap();
        assert_eq!(log, original[..report.offset], "{name}: kept entries");
        let again = recover(dir, &state, "tolerate-tail");
        assert_eq!(again.json()["actions"].as_array().map(Vec::len), Some(0));
        restore_all(dir, &state);
        assert_same(&damaged, &snapshot(dir));
    }
}

#[test]
fn a_tail_torn_at_every_byte_of_the_last_entry_is_found_cut_and_restored() {
    let base = built();
    let log = fs::read(base.path().join("state/log")).unwrap();
    let last = *frame_entries(&log).unwrap().last().unwrap();
    for keep in 1..last.end - last.start {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, state) = (tmp.path().join("data"), tmp.path().join("state"));
        copy_dir(base.path(), &dir).unwrap();
        apply_state(&dir, StateFault::TornTail { keep }).unwrap();
        let damaged = snapshot(&dir);
        let found = problems(&dir);
        assert_eq!(found.len(), 1, "{keep}: {found:?}");
        assert_eq!(found[0].0, "state-log-torn", "{keep}");
        assert_eq!(found[0].2, Some(last.start as u64), "{keep}");
        assert_eq!(recover(&dir, &state, "salvage").code, 0, "{keep}");
        assert_eq!(fs::read(dir.join("state/log")).unwrap(), log[..last.start]);
        restore_all(&dir, &state);
        assert_same(&damaged, &snapshot(&dir));
    }
}

#[test]
fn on_the_fixtures_a_cut_that_would_orphan_messages_is_refused_in_every_mode() {
    // The last entry of both fixtures creates the topic whose partitions hold messages
    // (clean: topic "cpu" of stream "metrics", 300 messages), the entry before it the
    // stream: cutting either would leave those messages without metadata.
    for fixture in [CLEAN, KILLED_UNDER_LOAD] {
        for fault in [
            StateFault::TornTail { keep: 0 },
            StateFault::FlipLastEntry,
            StateFault::FlipEarlierEntry,
            StateFault::IndexGap,
        ] {
            let copy = fixture_copy(fixture);
            let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
            apply_state(dir, fault).unwrap();
            let damaged = snapshot(dir);
            let kinds: Vec<String> = problems(dir).into_iter().map(|p| p.0).collect();
            assert!(kinds.contains(&expected_kind(fault).to_string()));
            assert!(
                kinds.contains(&"folder-without-metadata".to_string()),
                "{kinds:?}"
            );
            for mode in ["tolerate-tail", "salvage", "point-in-time", "absolute"] {
                let run = recover(dir, &state, mode);
                assert_eq!(run.code, 3, "{fixture} {} {mode}", fault.name());
                assert!(run.stdout.contains("without metadata"), "{}", run.stdout);
                assert_same(&damaged, &snapshot(dir));
            }
        }
        // Zeros after the last entry hide nothing: cut.
        let copy = fixture_copy(fixture);
        let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
        apply_state(dir, StateFault::ZeroTail { len: 4096 }).unwrap();
        let damaged = snapshot(dir);
        assert_eq!(recover(dir, &state, "tolerate-tail").code, 0, "{fixture}");
        assert_eq!(check(dir).code, 0, "{fixture}");
        restore_all(dir, &state);
        assert_same(&damaged, &snapshot(dir));
    }
}

#[test]
fn metadata_and_folders_are_compared_both_ways() {
    // A partition the metadata names, without its folder: the server cannot start.
    let copy = built();
    let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
    fs::remove_dir_all(dir.join("streams/0/topics/0/partitions/1")).unwrap();
    let found = problems(dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "metadata-without-folder");
    assert!(found[0].1.ends_with("streams/0/topics/0/partitions/1"));
    for mode in ["tolerate-tail", "salvage", "point-in-time"] {
        assert_eq!(recover(dir, &state, mode).code, 3, "{mode}");
    }

    // A stream folder with messages that no entry names.
    let copy = built();
    let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
    let orphan = dir.join("streams/3/topics/0/partitions/0");
    copy_dir(&dir.join("streams/0/topics/0/partitions/0"), &orphan).unwrap();
    let found = problems(dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "folder-without-metadata");
    assert!(found[0].1.ends_with("streams/3"));
    let before = snapshot(dir);
    for mode in ["tolerate-tail", "salvage", "point-in-time"] {
        assert_eq!(recover(dir, &state, mode).code, 3, "{mode}");
        assert_same(&before, &snapshot(dir));
    }

    // Without messages it is only listed: the server ignores it, nothing is lost.
    for name in ["00000000000000000000.log", "00000000000000000000.index"] {
        fs::write(orphan.join(name), b"").unwrap();
    }
    let run = check(dir);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let strays = run.json()["strays"].to_string();
    assert!(strays.contains("streams/3") && strays.contains("no state/log entry"));
}

#[test]
fn an_entry_the_server_cannot_replay_is_named_and_cut_only_by_point_in_time() {
    let copy = built();
    let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
    let log = dir.join("state/log");
    let kept = fs::read(&log).unwrap();
    // A token recorded for user 9, whom no entry creates: 0.6.0 panics replaying it
    // ("User: 9 not found"), though the entry itself is whole and valid. A valid
    // entry after it does not make it a tail.
    append_token(dir, 9, "token-0").unwrap();
    append_token(dir, 0, "token-1").unwrap();
    let found = problems(dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "state-log-unreplayable");
    assert!(found[0].1.ends_with("state/log"));
    assert_eq!(found[0].2, Some(kept.len() as u64));
    let text = warden(["check", "--data-dir", s(dir)]);
    assert_ne!(text.code, 0);
    assert!(
        text.stdout.contains("user 9 does not exist") && text.stdout.contains("token-1"),
        "{}",
        text.stdout
    );
    let before = snapshot(dir);
    for mode in ["tolerate-tail", "salvage", "absolute"] {
        let run = recover(dir, &state, mode);
        assert_eq!(run.code, 3, "{mode}: {}", run.stdout);
        assert!(
            mode == "absolute" || run.stdout.contains("`--mode point-in-time` cuts state/log"),
            "{mode}: {}",
            run.stdout
        );
        assert_same(&before, &snapshot(dir));
    }
    // Point-in-time cuts the log before it: the tokens go, no folder loses its entry.
    let run = recover(dir, &state, "point-in-time");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(fs::read(&log).unwrap(), kept);
    assert_eq!(check(dir).code, 0);
    restore_all(dir, &state);
    assert_same(&before, &snapshot(dir));
}

#[test]
fn a_cut_before_an_unreplayable_entry_that_would_orphan_messages_is_refused() {
    let copy = built();
    let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
    append_token(dir, 9, "orphan").unwrap();
    // Then stream 5 is created, and its partition holds messages.
    harness::state_log::append_partition(dir, &[(0, 0, 0), (0, 0, 1)], (5, 0, 0)).unwrap();
    copy_dir(
        &dir.join("streams/0/topics/0/partitions/0"),
        &dir.join("streams/5/topics/0/partitions/0"),
    )
    .unwrap();
    let before = snapshot(dir);
    let run = recover(dir, &state, "point-in-time");
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(run.stdout.contains("streams/5"), "{}", run.stdout);
    assert_same(&before, &snapshot(dir));
}

#[test]
fn delete_segments_entries_the_server_cannot_read_back_are_dropped_and_the_rest_renumbered() {
    let copy = built();
    let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
    let log = dir.join("state/log");
    let kept = fs::read(&log).unwrap();
    // 0.6.0 writes one per delete-segments request, and its reader rejects it at
    // the next start (`InvalidCommand`); entries after it are metadata to keep.
    let at = append_delete_segments(dir, (0, 0, 1), 1).unwrap();
    append_token(dir, 0, "after").unwrap();
    append_delete_segments(dir, (0, 0, 0), 0).unwrap();
    let found = problems(dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "state-log-unreplayable");
    assert_eq!(found[0].2, Some(at));
    let state_line = check(dir).json()["state"].to_string();
    assert!(state_line.contains("of which 2 to drop"), "{state_line}");
    let text = warden(["check", "--data-dir", s(dir)]);
    assert_ne!(text.code, 0);
    assert!(
        text.stdout.contains("InvalidCommand")
            && text.stdout.contains("2 such entries")
            && !text.stdout.contains("folder-without-metadata"),
        "{}",
        text.stdout
    );
    let before = snapshot(dir);
    for mode in ["tolerate-tail", "absolute"] {
        let run = recover(dir, &state, mode);
        assert_eq!(run.code, 3, "{mode}: {}", run.stdout);
        assert!(
            mode == "absolute" || run.stdout.contains("`--mode salvage`"),
            "{}",
            run.stdout
        );
        assert_same(&before, &snapshot(dir));
    }
    // The log 0.6.0 would have written without them: the token is entry n, resealed.
    let next = frame_entries(&kept).unwrap().last().unwrap().index + 1;
    let mut expected = kept.clone();
    expected.extend(encode_entry(&StateEntry {
        index: next,
        timestamp: 1_760_000_000_000_000 + next + 1,
        user_id: 0,
        code: harness::state_log::CREATE_PERSONAL_ACCESS_TOKEN,
        command: harness::state_log::create_personal_access_token("after"),
    }));
    for mode in ["salvage", "point-in-time"] {
        let run = recover(dir, &state, mode);
        assert_eq!(run.code, 0, "{mode}: {}", run.stdout);
        assert_eq!(fs::read(&log).unwrap(), expected, "{mode}");
        assert_eq!(check(dir).code, 0, "{mode}");
        restore_all(dir, &state);
        assert_same(&before, &snapshot(dir));
        fs::remove_dir_all(state.join("quarantine")).unwrap();
    }
    // A crash then tore the last entry (the second delete-segments one): the drop
    // cuts that tail too, in one run, to the same log.
    apply_state(dir, StateFault::TornTail { keep: 0 }).unwrap();
    let torn = snapshot(dir);
    let text = check(dir).stdout;
    assert!(text.contains("[cut]"), "{text}");
    assert_eq!(recover(dir, &state, "tolerate-tail").code, 3);
    for mode in ["salvage", "point-in-time"] {
        let run = recover(dir, &state, mode);
        assert_eq!(run.code, 0, "{mode}: {}", run.stdout);
        let drop = &run.json()["actions"][0]["action"]["DropStateLogEntries"];
        let (keep, original) = (drop["keep_len"].as_u64(), drop["original_len"].as_u64());
        assert!(keep < original && keep.is_some(), "{}", run.stdout);
        assert_eq!(fs::read(&log).unwrap(), expected, "{mode}, torn");
        assert_eq!(check(dir).code, 0, "{mode}, torn");
        restore_all(dir, &state);
        assert_same(&torn, &snapshot(dir));
        fs::remove_dir_all(state.join("quarantine")).unwrap();
    }
}

#[test]
fn an_encrypted_logs_delete_segments_entry_is_named_by_its_code_and_left_to_an_operator() {
    let copy = built();
    let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
    let mut bytes = encrypted_log(false);
    let at = append_encrypted_delete_segments(&mut bytes).unwrap();
    fs::write(dir.join("state/log"), bytes).unwrap();
    let found = problems(dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].2),
        ("state-log-unreplayable", Some(at))
    );
    let before = snapshot(dir);
    for mode in ["tolerate-tail", "salvage", "point-in-time"] {
        let run = recover(dir, &state, mode);
        assert_eq!(run.code, 3, "{mode}: {}", run.stdout);
        assert_same(&before, &snapshot(dir));
    }
}

#[test]
fn a_state_info_cut_short_is_quarantined_and_a_foreign_one_left_to_an_operator() {
    let copy = built();
    let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
    let info = dir.join("state/info");
    let whole = fs::read(&info).unwrap();
    fs::write(&info, &whole[..10]).unwrap();
    let damaged = snapshot(dir);
    let found = problems(dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "state-info-bad");
    assert_eq!(recover(dir, &state, "absolute").code, 3);
    assert_eq!(recover(dir, &state, "tolerate-tail").code, 0);
    assert!(!info.exists(), "the server writes a new one");
    assert_eq!(check(dir).code, 0);
    restore_all(dir, &state);
    assert_same(&damaged, &snapshot(dir));

    fs::write(&info, [0xfe, 0xff, 1, 2]).unwrap();
    assert_eq!(problems(dir)[0].0, "state-info-bad");
    assert_eq!(recover(dir, &state, "salvage").code, 3);
}

/// A log as 0.6.0 writes it with `system.encryption` on (`encrypt_entry`).
fn encrypted_log(last_is_topic: bool) -> Vec<u8> {
    let users: Vec<String> = if last_is_topic {
        Vec::new()
    } else {
        vec!["alice".into()]
    };
    let entries = metadata_entries(&[(0, 0, 0), (0, 0, 1)], &users, &[], 1);
    entries.iter().flat_map(encrypt_entry).collect()
}

#[test]
fn an_encrypted_log_is_checked_by_framing_and_never_cut_on_checksums() {
    let copy = built();
    let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
    let log = dir.join("state/log");
    fs::write(&log, encrypted_log(false)).unwrap();
    let run = check(dir);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.json()["state"]
        .as_str()
        .unwrap()
        .contains("unverifiable"));
    // A flipped byte cannot be told from ciphertext: nothing to cut.
    apply_state(dir, StateFault::FlipLastEntry).unwrap();
    assert_eq!(check(dir).code, 0);
    // A torn tail is framing: cut, when its code creates no folder (a user).
    fs::write(&log, encrypted_log(false)).unwrap();
    apply_state(dir, StateFault::TornTail { keep: 0 }).unwrap();
    assert_eq!(problems(dir)[0].0, "state-log-torn");
    assert_eq!(recover(dir, &state, "tolerate-tail").code, 0);
    // When it creates a topic, the folders cannot be compared: an operator decides.
    fs::write(&log, encrypted_log(true)).unwrap();
    apply_state(dir, StateFault::TornTail { keep: 0 }).unwrap();
    assert_eq!(recover(dir, &state, "point-in-time").code, 3);
}

#[test]
fn an_offset_file_not_named_by_a_number_is_left_to_an_operator() {
    // 0.6.0 parses every name in offsets/consumers and offsets/groups as a u32 and
    // panics on any other.
    let copy = built();
    let (dir, state) = (copy.path(), copy.tmp_root().join("state"));
    let odd = dir.join("streams/0/topics/0/partitions/1/offsets/groups/backup");
    fs::write(&odd, 7u64.to_le_bytes()).unwrap();
    let found = problems(dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "bad-offset-file");
    assert_eq!(found[0].1, s(&odd));
    let before = snapshot(dir);
    for mode in ["tolerate-tail", "salvage", "point-in-time", "absolute"] {
        assert_eq!(recover(dir, &state, mode).code, 3, "{mode}");
        assert_same(&before, &snapshot(dir));
    }
}
