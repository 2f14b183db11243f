//! Stored consumer offsets past a partition's end (a crash, or a cut, took messages
//! a consumer had seen): iggy-server 0.6.0 serves that consumer from the offset
//! after its stored one, so it skips as many new messages. `check` and `recover`
//! name each such file and the count, and leave the files and the verdict alone.

use crate::{warden, warden_on};
use harness::{apply, DataDirBuilder, Fault, PartitionSpec};
use serde_json::Value;
use std::path::Path;

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
