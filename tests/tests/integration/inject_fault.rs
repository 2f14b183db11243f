//! The `inject-fault` command (the harness's injectors for by-hand and real-server
//! runs): it damages the partition it names, as `check` then confirms, and changes
//! nothing when it refuses.

use crate::warden;
use harness::commands::Outcome;
use harness::fixtures::{CLEAN, KILLED_UNDER_LOAD};
use harness::state_log::frame_entries;
use harness::{
    all_faults, assert_same, fixture_copy, race_faults, snapshot, state_faults, valid_messages,
};
use std::fs;

fn inject(args: &[&str]) -> Outcome {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    harness::commands::inject_fault::run(&args)
}

#[test]
fn lists_every_fault_by_name() {
    let out = inject(&["--list"]);
    assert_eq!(out.code, 0);
    let names: Vec<String> = out.stdout.lines().map(str::to_string).collect();
    let mut expected: Vec<String> = all_faults()
        .iter()
        .chain(&race_faults())
        .map(|f| f.name().to_string())
        .collect();
    expected.extend(state_faults().iter().map(|f| f.name().to_string()));
    assert_eq!(names, expected);
    for state in [
        "state-log-torn-tail",
        "state-log-zero-tail",
        "state-log-flip-last-entry",
        "state-log-flip-earlier-entry",
        "state-log-index-gap",
    ] {
        assert!(names.iter().any(|n| n == state), "{state}");
    }
    for race in [
        "misplaced-batch",
        "zero-hole-sealed",
        "ghost-index-entries",
        "duplicate-offset-conflict",
    ] {
        assert!(names.iter().any(|n| n == race), "{race}");
    }
}

#[test]
fn race_faults_report_what_a_salvage_still_finds() {
    let p0 = "streams/0/topics/0/partitions/0";
    for (fault, lost, conflicting) in [
        ("misplaced-batch", 0, 0),
        ("zero-hole-sealed", 3, 0),
        ("ghost-index-entries", 0, 0),
        ("duplicate-offset-conflict", 0, 1),
    ] {
        let copy = fixture_copy(KILLED_UNDER_LOAD);
        let dir = copy.path().to_str().expect("utf-8 temp path");
        let out = inject(&[dir, fault, p0]);
        assert_eq!(out.code, 0, "{fault}: {}", out.stderr);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        let survivors = &report["survivors"];
        assert_eq!(survivors["messages"], 16_540 - lost, "{fault}");
        assert_eq!(
            survivors["lost_offsets"].as_array().map(Vec::len),
            Some(lost as usize),
            "{fault}"
        );
        assert_eq!(
            survivors["conflicting_offsets"].as_array().map(Vec::len),
            Some(conflicting),
            "{fault}"
        );
        let found = valid_messages(copy.path()).expect("scan");
        assert_eq!(found[0].distinct_offsets().len() as u64, 16_540 - lost);
    }
    // The damage table's faults say nothing about survivors.
    let copy = fixture_copy(CLEAN);
    let dir = copy.path().to_str().expect("utf-8 temp path");
    let out = inject(&[dir, "torn-log-tail"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert!(report.get("survivors").is_none());
}

#[test]
fn damages_the_first_partition_that_takes_the_fault() {
    let copy = fixture_copy(CLEAN);
    let dir = copy.path().to_str().expect("utf-8 temp path");
    let out = inject(&[dir, "torn-log-tail"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON line");
    assert_eq!(report["partition"], "streams/0/topics/0/partitions/0");
    assert_eq!(report["intact_messages_before"], 2885);
    assert_eq!(report["affected_offsets"], serde_json::json!([2885]));

    let check = warden(["check", "--json", "--data-dir", dir]);
    let json = check.json();
    let torn: Vec<&str> = json["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["kind"] == "torn-tail")
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert_eq!(torn.len(), 1, "{torn:?}");
    assert!(
        torn[0].contains("streams/0/topics/0/partitions/0/"),
        "{torn:?}"
    );
}

#[test]
fn refuses_without_changing_anything() {
    let copy = fixture_copy(CLEAN);
    let dir = copy.path().to_str().expect("utf-8 temp path");
    let before = snapshot(copy.path());
    for args in [
        vec![dir, "no-such-fault"],
        // Needs two non-empty segments; this partition has one.
        vec![dir, "offset-gap", "streams/1/topics/0/partitions/0"],
        vec![dir],
    ] {
        let out = inject(&args);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: says why");
    }
    assert_same(&before, &snapshot(copy.path()));
}

/// (kind, offset) of the problems `check` reports on `state/log`.
fn state_log_problems(dir: &str) -> Vec<(String, Option<u64>)> {
    warden(["check", "--json", "--data-dir", dir]).json()["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["path"].as_str().is_some_and(|p| p.ends_with("state/log")))
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or("").to_string(),
                p["offset"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn damages_the_state_log_as_each_state_fault_says() {
    let fixture = fixture_copy(CLEAN);
    let original = fs::read(fixture.path().join("state/log")).expect("state/log");
    let entries = frame_entries(&original).expect("whole framing");
    let (last, before) = (entries[entries.len() - 1], entries[entries.len() - 2]);
    let last_len = last.end - last.start;
    let cases: Vec<(Vec<String>, &str, usize, usize)> = vec![
        // (arguments after DATA_DIR, problem, offset, length of the damaged log)
        (
            vec!["state-log-torn-tail".into()],
            "state-log-torn",
            last.start,
            last.start + last_len / 2,
        ),
        (
            vec!["state-log-torn-tail".into(), "1".into()],
            "state-log-torn",
            last.start,
            last.start + 1,
        ),
        (
            vec!["state-log-torn-tail".into(), (last_len - 1).to_string()],
            "state-log-torn",
            last.start,
            last.end - 1,
        ),
        (
            vec!["state-log-zero-tail".into()],
            "state-log-torn",
            original.len(),
            original.len() + 4096,
        ),
        (
            vec!["state-log-zero-tail".into(), "7".into()],
            "state-log-torn",
            original.len(),
            original.len() + 7,
        ),
        (
            vec!["state-log-flip-last-entry".into()],
            "state-log-corrupt",
            last.start,
            original.len(),
        ),
        (
            vec!["state-log-flip-earlier-entry".into()],
            "state-log-corrupt",
            before.start,
            original.len(),
        ),
        (
            vec!["state-log-index-gap".into()],
            "state-log-gap",
            last.start,
            original.len(),
        ),
    ];
    for (args, kind, offset, len) in cases {
        let copy = fixture_copy(CLEAN);
        let dir = copy.path().to_str().expect("utf-8 temp path");
        let mut argv = vec![dir];
        argv.extend(args.iter().map(String::as_str));
        let out = inject(&argv);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(report["fault"], args[0].as_str(), "{args:?}");
        assert_eq!(report["file"], "state/log", "{args:?}");
        assert_eq!(report["offset"], offset, "{args:?}");
        assert_eq!(report["original_len"], original.len(), "{args:?}");
        let damaged = fs::read(copy.path().join("state/log")).expect("state/log");
        assert_eq!(damaged.len(), len, "{args:?}");
        // The entries before the damaged one are untouched.
        assert_eq!(damaged[..offset], original[..offset], "{args:?}");
        let found = state_log_problems(dir);
        assert_eq!(found, [(kind.to_string(), Some(offset as u64))], "{args:?}");
    }
}

#[test]
fn refuses_a_state_fault_it_cannot_apply_without_changing_anything() {
    let copy = fixture_copy(CLEAN);
    let dir = copy.path().to_str().expect("utf-8 temp path");
    let log = fs::read(copy.path().join("state/log")).expect("state/log");
    let last = *frame_entries(&log)
        .expect("framing")
        .last()
        .expect("entries");
    let whole = (last.end - last.start).to_string();
    let before = snapshot(copy.path());
    for args in [
        vec![dir, "state-log-torn-tail", whole.as_str()],
        vec![dir, "state-log-torn-tail", "0"],
        vec![dir, "state-log-torn-tail", "half"],
        vec![dir, "state-log-zero-tail", "-1"],
        vec![dir, "state-log-flip-last-entry", "3"],
        vec![
            dir,
            "state-log-index-gap",
            "streams/0/topics/0/partitions/0",
        ],
    ] {
        let out = inject(&args);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: says why");
    }
    assert_same(&before, &snapshot(copy.path()));
}
