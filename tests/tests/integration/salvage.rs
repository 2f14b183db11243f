//! Salvage on what the 0.6.0 rotation race really leaves (the committed race capture)
//! and on generated partitions with the race's damage: every valid message is kept,
//! `check` then says ready, and restoring every repair gives the input back byte for
//! byte.

use crate::warden;
use harness::faults::race_faults;
use harness::fixtures::{KILLED_UNDER_LOAD, RACE_ROTATION};
use harness::{apply, fixture, fixture_copy, snapshot, valid_messages};
use std::collections::BTreeSet;
use std::path::Path;

/// Every distinct valid message (offset, checksum) of every partition, found by the
/// harness's own resynchronising scanner, which shares no code with salvage.
fn independent(data: &Path) -> BTreeSet<(String, u64, u64)> {
    valid_messages(data)
        .unwrap()
        .iter()
        .flat_map(|p| {
            p.distinct_messages()
                .into_iter()
                .map(move |(offset, sum)| (p.ids(), offset, sum))
        })
        .collect()
}

fn recover(data: &Path, state: &Path, mode: &str) -> harness::Run {
    crate::warden_on(&["recover", "--json", "--mode", mode], data, state)
}

/// The kinds of problem a `check --json` report names.
fn kinds(report: &serde_json::Value) -> Vec<&str> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect()
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
    let mut args = vec!["restore"];
    args.extend(ids.iter().map(String::as_str));
    let run = crate::warden_on(&args, data, state);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn salvage_keeps_every_valid_message_of_the_race_capture_and_restores_it() {
    let copy = fixture_copy(RACE_ROTATION);
    let state = copy.tmp_root().join("state");
    let valid = independent(copy.path());
    assert_eq!(valid.len(), 18_000, "the capture's documented count");
    let before = check(copy.path());
    let modes = &before["partition_reports"][0]["modes"];
    assert_eq!(modes["salvage"], 18_000, "{modes}");
    assert_eq!(modes["point_in_time"], 300, "{modes}");
    assert!(modes["tolerate_tail"].is_null(), "tolerate-tail refuses");
    let kinds = kinds(&before);
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
    assert_eq!(
        independent(copy.path()),
        valid,
        "exactly the valid messages, no more"
    );

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

/// Each race signature, injected into a real partition: salvage keeps exactly the
/// offsets the injector says stay valid somewhere, and `restore` undoes it.
#[test]
fn salvage_repairs_every_race_signature_injected_into_real_data() {
    for fault in race_faults() {
        let copy = fixture_copy(KILLED_UNDER_LOAD);
        let state = copy.tmp_root().join("state");
        let partition = "streams/0/topics/0/partitions/0";
        let report = apply(copy.path(), partition, fault).unwrap();
        let survivors = report.survivors.clone().unwrap();
        let damaged = snapshot(copy.path());
        let before = check(copy.path());
        assert_eq!(before["ready_to_start"], false, "{fault:?}");

        let run = recover(copy.path(), &state, "salvage");
        assert_eq!(run.code, 0, "{fault:?}: {}{}", run.stdout, run.stderr);
        let after = check(copy.path());
        assert_eq!(after["ready_to_start"], true, "{fault:?}: {after}");
        let kept: Vec<u64> = valid_messages(copy.path())
            .unwrap()
            .iter()
            .find(|p| p.ids() == "0/0/0")
            .unwrap()
            .distinct_offsets();
        assert_eq!(kept, survivors.valid_offsets, "{fault:?}");
        let conflicts = valid_messages(copy.path()).unwrap()[0].conflicting_offsets();
        assert!(conflicts.is_empty(), "{fault:?}: one copy per offset");

        restore_everything(copy.path(), &state);
        harness::assert_same(&damaged, &snapshot(copy.path()));
    }
}

/// Of two different valid messages with one offset, salvage keeps the one the index
/// points to, and the other stays in quarantine.
#[test]
fn a_conflicting_duplicate_keeps_the_indexed_copy() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let state = copy.tmp_root().join("state");
    let partition = "streams/0/topics/0/partitions/0";
    let original = valid_messages(copy.path()).unwrap()[0].distinct_messages();
    let fault = harness::fault_named("duplicate-offset-conflict").unwrap();
    let report = apply(copy.path(), partition, fault).unwrap();
    let conflict = report.survivors.unwrap().conflicting_offsets;
    assert_eq!(conflict.len(), 1);
    let before = check(copy.path());
    let kinds = kinds(&before);
    assert!(kinds.contains(&"duplicate-offset"), "{kinds:?}");
    assert_eq!(recover(copy.path(), &state, "salvage").code, 0);
    let after = valid_messages(copy.path()).unwrap()[0].distinct_messages();
    assert_eq!(
        after, original,
        "the indexed original of offset {conflict:?} is kept"
    );
}

/// `check` reads its damaged partitions again in parallel for the salvage view: each
/// partition's report gets its own counts and each race signature names a file of
/// its own partition.
#[test]
fn check_gives_each_damaged_partition_its_own_salvage_view() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let faults = race_faults();
    for (p, fault) in [(0, faults[0]), (2, faults[1])] {
        apply(
            copy.path(),
            &format!("streams/0/topics/0/partitions/{p}"),
            fault,
        )
        .unwrap();
    }
    let report = check(copy.path());
    let valid = valid_messages(copy.path()).unwrap();
    let reports = report["partition_reports"].as_array().unwrap();
    let mut viewed = 0;
    for summary in reports {
        let id = summary["partition"]["partition"].as_u64().unwrap();
        let Some(salvage) = summary["modes"]["salvage"].as_u64() else {
            continue;
        };
        viewed += 1;
        let found = valid
            .iter()
            .find(|v| v.ids() == format!("0/0/{id}"))
            .unwrap();
        assert_eq!(
            salvage,
            found.distinct_offsets().len() as u64,
            "partition {id}: {summary}"
        );
    }
    assert!(
        viewed >= 2,
        "both injected partitions are damaged: {report}"
    );
    for problem in report["problems"].as_array().unwrap() {
        let kind = problem["kind"].as_str().unwrap();
        if !["misplaced-batch", "zero-hole", "ghost-index-entries"].contains(&kind) {
            continue;
        }
        let path = problem["path"].as_str().unwrap();
        let injected = ["/partitions/0/", "/partitions/2/"];
        assert!(
            injected.iter().any(|p| path.contains(p)),
            "{kind} at {path}: a partition without that damage"
        );
    }
}

/// Partitions are planned in parallel: a refusal still names the partition whose
/// damage the mode forbids, with that partition's problems.
#[test]
fn a_refusal_names_the_partition_whose_damage_the_mode_forbids() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let state = copy.tmp_root().join("state");
    apply(
        copy.path(),
        "streams/0/topics/0/partitions/2",
        race_faults()[0],
    )
    .unwrap();
    let run = crate::warden_on(&["replay", "--json"], copy.path(), &state);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let json = run.json();
    let refusals = json["plan"]["refusals"].as_array().unwrap();
    let refused: Vec<u64> = refusals
        .iter()
        .map(|r| r["partition"]["partition"].as_u64().unwrap())
        .collect();
    assert_eq!(refused, [2], "{refusals:?}");
    for problem in refusals[0]["problems"].as_array().unwrap() {
        let path = problem["path"].as_str().unwrap();
        assert!(path.contains("/partitions/2/"), "{path}");
    }
    assert!(
        refusals[0]["why"].as_str().unwrap().contains("salvage"),
        "the advice says what each mode keeps: {}",
        refusals[0]["why"]
    );
}
