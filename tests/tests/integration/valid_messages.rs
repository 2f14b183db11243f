//! The `valid-messages` command (the harness's resynchronising scanner): what it
//! counts in the real race-rotation fixture, and how it refuses.

use harness::commands::Outcome;
use harness::fixture_copy;
use harness::fixtures::{CLEAN, RACE_ROTATION};

fn valid_messages(args: &[&str]) -> Outcome {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    harness::commands::valid_messages::run(&args)
}

fn json_of(out: &Outcome) -> serde_json::Value {
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.matches('\n').count(), 1, "one line");
    serde_json::from_str(&out.stdout).expect("one JSON object")
}

#[test]
fn counts_the_race_rotation_fixtures_18000_messages() {
    let copy = fixture_copy(RACE_ROTATION);
    let json = json_of(&valid_messages(&[copy
        .path()
        .to_str()
        .expect("utf-8 path")]));
    let partitions = json["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 1);
    let p = &partitions[0];
    assert_eq!(p["partition"], "0/0/0");
    assert_eq!(p["messages"], 18_000);
    let runs = p["runs"].as_array().expect("runs");
    assert_eq!(runs[0], serde_json::json!([0, 299]));
    assert_eq!(runs.last(), Some(&serde_json::json!([22_800, 23_399])));
    let covered: u64 = runs
        .iter()
        .map(|r| r[1].as_u64().expect("last") - r[0].as_u64().expect("first") + 1)
        .sum();
    assert_eq!(covered, 18_000);
}

#[test]
fn reports_every_partition_of_the_clean_fixture() {
    let copy = fixture_copy(CLEAN);
    let json = json_of(&valid_messages(&[copy
        .path()
        .to_str()
        .expect("utf-8 path")]));
    assert_eq!(
        json,
        serde_json::json!({"partitions": [
            {"partition": "0/0/0", "messages": 2886, "runs": [[0, 2885]]},
            {"partition": "0/0/1", "messages": 1200, "runs": [[0, 1199]]},
            {"partition": "1/0/0", "messages": 300, "runs": [[0, 299]]},
        ]})
    );
}

#[test]
fn refuses_bad_arguments_with_exit_2() {
    let copy = fixture_copy(CLEAN);
    let missing = copy.path().join("nope");
    for args in [
        vec![],
        vec![missing.to_str().expect("utf-8 path")],
        vec!["a", "b"],
    ] {
        let out = valid_messages(&args);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: says why");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
