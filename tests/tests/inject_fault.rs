//! The `inject-fault` command (the harness's injectors for by-hand and real-server
//! runs): it damages the partition it names, as `check` then confirms, and changes
//! nothing when it refuses.

use harness::fixtures::{CLEAN, KILLED_UNDER_LOAD};
use harness::{
    all_faults, assert_same, fixture_copy, race_faults, snapshot, valid_messages, warden,
};
use std::process::Command;

fn inject(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_inject-fault"))
        .args(args)
        .output()
        .expect("run inject-fault")
}

#[test]
fn lists_every_fault_by_name() {
    let out = inject(&["--list"]);
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = all_faults()
        .iter()
        .chain(&race_faults())
        .map(|f| f.name().to_string())
        .collect();
    assert_eq!(names, expected);
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
        assert!(
            out.status.success(),
            "{fault}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
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
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(report.get("survivors").is_none());
}

#[test]
fn damages_the_first_partition_that_takes_the_fault() {
    let copy = fixture_copy(CLEAN);
    let dir = copy.path().to_str().expect("utf-8 temp path");
    let out = inject(&[dir, "torn-log-tail"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
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
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: says why");
    }
    assert_same(&before, &snapshot(copy.path()));
}
