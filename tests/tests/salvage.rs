//! Salvage on what the 0.6.0 rotation race really leaves (the committed race capture)
//! and on generated partitions with the race's damage: every valid message is kept,
//! `check` then says ready, and restoring every repair gives the input back byte for
//! byte.

use harness::fixtures::RACE_ROTATION;
use harness::{fixture, fixture_copy, snapshot, warden};
use std::path::Path;

fn recover(data: &Path, state: &Path, mode: &str) -> harness::Run {
    warden([
        "recover",
        "--json",
        "--mode",
        mode,
        "--data-dir",
        data.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ])
}

fn check(data: &Path) -> serde_json::Value {
    let run = warden(["check", "--json", "--data-dir", data.to_str().unwrap()]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    run.json()
}

/// Every repair id in the quarantine, newest first, as `restore` takes them.
fn restore_everything(data: &Path, state: &Path) {
    let quarantine = recovery::quarantine::Quarantine::new(state);
    let mut ids: Vec<String> = quarantine
        .list()
        .unwrap()
        .iter()
        .map(|m| m.repair.to_string())
        .collect();
    ids.reverse();
    let mut args = vec![
        "restore".to_string(),
        "--data-dir".into(),
        data.to_str().unwrap().into(),
        "--state-dir".into(),
        state.to_str().unwrap().into(),
    ];
    args.extend(ids);
    let run = warden(args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn salvage_keeps_every_valid_message_of_the_race_capture_and_restores_it() {
    let copy = fixture_copy(RACE_ROTATION);
    let state = copy.tmp_root().join("state");
    let before = check(copy.path());
    let modes = &before["partition_reports"][0]["modes"];
    assert_eq!(modes["salvage"], 18_000, "{modes}");
    assert_eq!(modes["point_in_time"], 300, "{modes}");
    assert!(modes["tolerate_tail"].is_null(), "tolerate-tail refuses");
    let kinds: Vec<&str> = before["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    for race_kind in ["misplaced-batch", "zero-hole", "ghost-index-entries"] {
        assert!(kinds.contains(&race_kind), "{race_kind} in {kinds:?}");
    }

    let refused = recover(copy.path(), &state, "tolerate-tail");
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stdout.contains("--mode salvage"),
        "a refusal names the mode that keeps every valid message: {}",
        refused.stdout
    );
    assert_eq!(snapshot(copy.path()), snapshot(&fixture(RACE_ROTATION)));

    let run = recover(copy.path(), &state, "salvage");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let after = check(copy.path());
    assert_eq!(after["ready_to_start"], true, "{after}");
    assert_eq!(after["messages"], 18_000);
    assert!(after["problems"].as_array().unwrap().is_empty());

    restore_everything(copy.path(), &state);
    harness::assert_same(&snapshot(&fixture(RACE_ROTATION)), &snapshot(copy.path()));
}

#[test]
fn salvage_is_idempotent_and_a_second_run_changes_nothing() {
    let copy = fixture_copy(RACE_ROTATION);
    let state = copy.tmp_root().join("state");
    assert_eq!(recover(copy.path(), &state, "salvage").code, 0);
    let once = snapshot(copy.path());
    let again = recover(copy.path(), &state, "salvage");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["actions"].as_array().unwrap().len(), 0);
    assert_eq!(snapshot(copy.path()), once);
}
