//! Stored consumer offsets past a partition's end (a crash, or a cut, took messages
//! a consumer had seen): iggy-server 0.6.0 serves that consumer from the offset
//! after its stored one, so it skips as many new messages. `check` and `recover`
//! name each such file and the count, and leave the files and the verdict alone;
//! asked to (`--reset-offsets-ahead`), `recover` moves them back to the last message.

use crate::{warden, warden_on};
use harness::{apply, DataDirBuilder, Fault, PartitionSpec};
use journal::Journal;
use recovery::analyze::analyze;
use recovery::execute::{ExecError, Executor};
use recovery::fsops::hooked::{Hook, Hooked, Op, Verdict};
use recovery::layout::discover;
use recovery::offset_reset;
use recovery::offsets_ahead::offsets_ahead;
use recovery::quarantine::Quarantine;
use serde_json::Value;
use std::io;
use std::path::{Path, PathBuf};

const P0: &str = "streams/0/topics/0/partitions/0";

/// One partition of 30 messages (offsets 0 to 29): consumer 1 stored the last one,
/// consumer 2 offset 35 (ahead), group 3 offset 10.
fn with_offsets(data: &Path) {
    DataDirBuilder::new()
        .seed(5)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(30, 20..120, 0)
                .consumer_offset(1, 29)
                .consumer_offset(2, 35)
                .group_offset(3, 10),
        )
        .build(data);
}

/// `(file name, stored, next offset, skipped)` of each offset ahead in `json`.
fn ahead(json: &Value) -> Vec<(String, u64, u64, u64)> {
    let list = json["offsets_ahead"].as_array().expect("a list");
    list.iter()
        .map(|a| {
            let path = a["path"].as_str().unwrap();
            let name = Path::new(path).file_name().unwrap().to_string_lossy();
            let (stored, next) = (
                a["stored"].as_u64().unwrap(),
                a["next_offset"].as_u64().unwrap(),
            );
            (name.into_owned(), stored, next, stored - next + 1)
        })
        .collect()
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).expect("JSON")
}

#[test]
fn an_offset_past_the_end_is_named_with_the_messages_its_consumer_would_skip() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    with_offsets(&data);
    let check = |args: &[&str]| {
        let mut all = vec!["check", "--data-dir", data.to_str().unwrap()];
        all.extend_from_slice(args);
        warden(all)
    };
    let run = check(&["--json"]);
    assert_eq!(run.code, 0, "not damage: {}", run.stdout);
    assert_eq!(ahead(&json(&run.stdout)), [("2".into(), 35, 30, 6)]);
    let text = check(&[]);
    assert!(
        text.stdout.contains(&format!(
            "warning: {}: consumer offset 35 stored, past the end of partition 0/0/0 (its \
             next message gets offset 30): that consumer will not see the next 6 message(s) \
             produced",
            data.join(P0).join("offsets/consumers/2").display()
        )),
        "{}",
        text.stdout
    );

    // A torn last message: once it is cut, consumer 1 is one message ahead too.
    apply(&data, P0, Fault::TornLogTail).unwrap();
    let before = std::fs::read(data.join(P0).join("offsets/consumers/1")).unwrap();
    let state = tmp.path().join("state");
    let run = warden_on(&["recover", "--json"], &data, &state);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcome = json(&run.stdout);
    assert_eq!(outcome["ready_to_start"], true);
    assert_eq!(
        ahead(&outcome),
        [("1".into(), 29, 29, 1), ("2".into(), 35, 29, 7)]
    );
    // Recorded for the sidecar's metrics (`last_recover_consumer_offsets_ahead`).
    let record = std::fs::read_to_string(state.join("last-recover.json")).unwrap();
    assert_eq!(json(&record)["consumer_offsets_ahead"], 2);
    let after = std::fs::read(data.join(P0).join("offsets/consumers/1")).unwrap();
    assert_eq!(
        before, after,
        "offsets are the consumers' own: left as they are"
    );
    let text = warden_on(&["recover"], &data, &state);
    assert_eq!(text.code, 0);
    assert_eq!(
        text.stdout.matches("warning: ").count(),
        2,
        "{}",
        text.stdout
    );
}

/// The offset each file of `P0`'s consumers folder holds.
fn stored(data: &Path, consumer: &str) -> u64 {
    stored_in(&data.join(P0).join("offsets/consumers").join(consumer))
}

#[test]
fn asked_to_reset_recover_moves_offsets_ahead_to_the_last_message_and_restore_undoes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    with_offsets(&data);
    apply(&data, P0, Fault::TornLogTail).unwrap();
    let state = tmp.path().join("state");
    let run = warden_on(
        &["recover", "--json", "--reset-offsets-ahead"],
        &data,
        &state,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outcome = json(&run.stdout);
    assert_eq!(outcome["ready_to_start"], true);
    assert!(ahead(&outcome).is_empty(), "{}", run.stdout);
    // The torn message 29 is cut: 28 is the last one, and both consumers that had
    // stored 29 and 35 get message 29 next, whatever is produced.
    assert_eq!((stored(&data, "1"), stored(&data, "2")), (28, 28));
    let actions = outcome["actions"].as_array().unwrap();
    let resets: Vec<&Value> = actions
        .iter()
        .filter(|a| a["action"].get("ResetConsumerOffset").is_some())
        .collect();
    assert_eq!(resets.len(), 2, "{}", run.stdout);
    assert!(resets.iter().all(|r| r["quarantined_bytes"] == 8));
    // Nothing left in the offsets folders but the consumers' own files.
    let names = |folder: &str| {
        let mut n: Vec<String> = std::fs::read_dir(data.join(P0).join(folder))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names("offsets/consumers"), ["1", "2"]);
    assert_eq!(names("offsets/groups"), ["3"]);
    let record = std::fs::read_to_string(state.join("last-recover.json")).unwrap();
    assert_eq!(json(&record)["consumer_offsets_ahead"], 0);
    let check = warden(["check", "--json", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(check.code, 0);
    assert!(ahead(&json(&check.stdout)).is_empty());

    // A rerun changes nothing more.
    let again = warden_on(&["recover", "--reset-offsets-ahead"], &data, &state);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(!again.stdout.contains("reset "), "{}", again.stdout);
    assert!(!again.stdout.contains("warning: "), "{}", again.stdout);

    // `restore` puts the stored offsets back, each from its own repair.
    for r in resets {
        let id = r["repair"].as_u64().unwrap().to_string();
        let back = warden_on(&["restore", &id], &data, &state);
        assert_eq!(back.code, 0, "{}", back.stderr);
    }
    assert_eq!((stored(&data, "1"), stored(&data, "2")), (29, 35));
}

/// Writes offset 31 into `file` just before the first swap: a consumer committing
/// between the executor's look at its offset file and the reset.
struct Committer(PathBuf);

impl Hook for Committer {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        if matches!(op, Op::Exchange { .. }) && stored_in(&self.0) != 31 {
            std::fs::write(&self.0, 31u64.to_le_bytes())?;
        }
        Ok(Verdict::Run)
    }
}

fn stored_in(file: &Path) -> u64 {
    let bytes = std::fs::read(file).unwrap();
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

#[test]
fn a_consumer_that_commits_between_the_look_and_the_reset_keeps_its_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, state) = (tmp.path().join("data"), tmp.path().join("state"));
    with_offsets(&data);
    let file = data.join(P0).join("offsets/consumers/2");
    let analysis = analyze(&discover(&data).unwrap(), &|_| {}).unwrap();
    let ahead = offsets_ahead(&analysis.partitions[0]);
    assert_eq!(ahead.len(), 1);
    let journal = Journal::open(&state.join("journal")).unwrap();
    let quarantine = Quarantine::new(&state);
    let hooked = Hooked(Committer(file.clone()));
    let exec = Executor {
        data_dir: &data,
        quarantine: &quarantine,
        fs: &hooked,
        log: &journal,
    };
    match offset_reset::reset(&exec, ahead) {
        Err(ExecError::Changed { path, .. }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
    assert_eq!(stored_in(&file), 31, "the consumer's own commit stays");
    let left: Vec<_> = std::fs::read_dir(data.join(P0))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_dry_run_shows_the_resets_it_would_make_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    with_offsets(&data);
    let state = tmp.path().join("state");
    let before = harness::snapshot(&data);
    let plain = warden_on(&["replay"], &data, &state);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(
        plain.stdout.contains("warning: ") && plain.stdout.contains("consumer offset 35 stored"),
        "{}",
        plain.stdout
    );
    let asked = warden_on(&["replay", "--reset-offsets-ahead"], &data, &state);
    assert_eq!(asked.code, 0, "{}", asked.stderr);
    assert!(
        asked.stdout.contains(&format!(
            "would reset {P0}/offsets/consumers/2 from offset 35 to 29"
        )),
        "{}",
        asked.stdout
    );
    assert!(asked.stdout.contains("dry run: nothing changed"));
    let asked = warden_on(
        &["replay", "--reset-offsets-ahead", "--json"],
        &data,
        &state,
    );
    let out = json(&asked.stdout);
    assert_eq!(out["offset_resets"].as_array().unwrap().len(), 1);
    assert_eq!(ahead(&out), [("2".into(), 35, 30, 6)]);
    assert_eq!(
        harness::snapshot(&data),
        before,
        "a dry run changes nothing"
    );
}

#[test]
fn a_reset_of_a_file_that_is_no_offset_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, state) = (tmp.path().join("data"), tmp.path().join("state"));
    with_offsets(&data);
    // Eight bytes where a forged journal would point a reset.
    let index = format!("{P0}/00000000000000000000.index");
    let before = std::fs::read(data.join(&index)).unwrap();
    let stored = u64::from_le_bytes(before[..8].try_into().unwrap());
    let journal = Journal::open(&state.join("journal")).unwrap();
    let quarantine = Quarantine::new(&state);
    let exec = Executor {
        data_dir: &data,
        quarantine: &quarantine,
        fs: &recovery::fsops::StdFs,
        log: &journal,
    };
    let forged = journal::RepairAction::ResetConsumerOffset {
        path: index.clone(),
        stored,
        reset_to: 0,
    };
    match exec.execute(vec![(forged, "forged".into())]) {
        Err(ExecError::Refused { why, .. }) => assert!(why.contains("not a consumer offset file")),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(data.join(&index)).unwrap(), before);
}

/// The resets in a `replay` or `recover` JSON output, as `(file, stored, reset to)`.
fn resets_in(list: &Value) -> Vec<(String, u64, u64)> {
    let mut resets: Vec<(String, u64, u64)> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| a.get("action").unwrap_or(a))
        .filter_map(|a| a.get("ResetConsumerOffset"))
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["stored"].as_u64().unwrap(),
                r["reset_to"].as_u64().unwrap(),
            )
        })
        .collect();
    resets.sort();
    resets
}

#[test]
fn a_dry_run_foretells_the_offsets_a_cut_leaves_ahead_as_recover_then_finds_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, state) = (tmp.path().join("data"), tmp.path().join("state"));
    with_offsets(&data);
    // The torn message 29 is cut: consumer 1, which stored 29, is then ahead too.
    apply(&data, P0, Fault::TornLogTail).unwrap();
    let plain = warden_on(&["replay", "--json"], &data, &state);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let mut foretold = ahead(&json(&plain.stdout));
    foretold.sort();
    assert_eq!(
        foretold,
        [("1".into(), 29, 29, 1), ("2".into(), 35, 29, 7)],
        "{}",
        plain.stdout
    );
    let text = warden_on(&["replay", "--reset-offsets-ahead"], &data, &state);
    assert!(
        text.stdout.contains(&format!(
            "would reset {P0}/offsets/consumers/1 from offset 29 to 28"
        )),
        "{}",
        text.stdout
    );
    let asked = warden_on(
        &["replay", "--reset-offsets-ahead", "--json"],
        &data,
        &state,
    );
    let would = resets_in(&json(&asked.stdout)["offset_resets"]);
    assert_eq!(would.len(), 2, "{}", asked.stdout);

    let run = warden_on(
        &["recover", "--json", "--reset-offsets-ahead"],
        &data,
        &state,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(resets_in(&json(&run.stdout)["actions"]), would);
}

/// One partition of 60 messages (offsets 0 to 59) in segments of 2 KiB: consumer 1
/// stored the last one, consumer 2 offset 70 (ahead), group 3 offset 10.
fn in_segments(data: &Path) {
    DataDirBuilder::new()
        .seed(9)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(60, 20..120, 0)
                .segment_size(2 * 1024)
                .trailing_empty_pair(false)
                .consumer_offset(1, 59)
                .consumer_offset(2, 70)
                .group_offset(3, 10),
        )
        .build(data);
}

#[test]
fn a_dry_run_leaves_the_offsets_of_a_partition_it_re_lays_to_after_the_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, state) = (tmp.path().join("data"), tmp.path().join("state"));
    in_segments(&data);
    apply(&data, P0, Fault::MidFileCorruptionSealed).unwrap();
    let salvage = ["--mode", "salvage", "--reset-offsets-ahead"];
    let text = warden_on(&[&["replay"][..], &salvage].concat(), &data, &state);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("partition 0/0/0: its consumer offsets are judged after its repair"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("would reset"), "{}", text.stdout);
    let out = json(&warden_on(&["replay", "--json", "--mode", "salvage"], &data, &state).stdout);
    assert!(ahead(&out).is_empty());
    assert_eq!(
        out["offsets_judged_after_repair"].as_array().unwrap().len(),
        1
    );
    // The repair then finds consumer 2's offset ahead, and resets it.
    let run = warden_on(
        &[&["recover", "--json"][..], &salvage].concat(),
        &data,
        &state,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        resets_in(&json(&run.stdout)["actions"]),
        [(format!("{P0}/offsets/consumers/2"), 70, 59)]
    );
}

#[test]
fn for_every_kind_of_damage_and_mode_the_offsets_a_dry_run_foretells_are_those_recover_finds() {
    let (mut foretold_some, mut judged_later) = (0, 0);
    for mode in ["tolerate-tail", "point-in-time", "salvage"] {
        for fault in harness::all_faults() {
            let tmp = tempfile::tempdir().unwrap();
            let (data, state) = (tmp.path().join("data"), tmp.path().join("state"));
            in_segments(&data);
            if apply(&data, P0, fault).is_err() {
                continue;
            }
            let dry = warden_on(&["replay", "--json", "--mode", mode], &data, &state);
            let dry = json(&dry.stdout);
            let run = warden_on(&["recover", "--json", "--mode", mode], &data, &state);
            let found = ahead(&json(&run.stdout));
            if dry["offsets_judged_after_repair"] != serde_json::json!([]) {
                judged_later += 1;
                continue;
            }
            let (mut foretold, mut found) = (ahead(&dry), found);
            foretold.sort();
            found.sort();
            assert_eq!(foretold, found, "{} in {mode}", fault.name());
            foretold_some += 1;
        }
    }
    // Only a salvage re-lay is left to the repair.
    assert!(foretold_some >= 40, "{foretold_some}");
    assert!(judged_later >= 1, "{judged_later}");
}
