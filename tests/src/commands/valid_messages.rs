//! `valid-messages`: the harness's resynchronising scanner as a command, to measure
//! what a salvage must keep in any data directory (a damaged one by hand, or one the
//! real iggy-server left) without trusting the product's own scanners.
//!
//! `valid-messages DATA_DIR` prints one JSON object:
//! `{"partitions":[{"partition":"0/0/0","messages":N,"runs":[[first,last],...]}]}`,
//! one entry per partition folder in stream/topic/partition order: `partition` is
//! `stream/topic/partition`, `messages` the number of distinct offsets with a valid
//! message anywhere in the partition's `.log`s, `runs` the maximal runs of consecutive
//! such offsets. Exit 2, saying why, when the arguments are wrong or the directory
//! cannot be read.

use super::Outcome;
use crate::salvage::valid_messages;
use std::path::Path;

/// Runs `valid-messages ARGS...` (the arguments after the command's name).
pub fn run(args: &[String]) -> Outcome {
    let [dir] = args else {
        return Outcome::refused("usage: valid-messages DATA_DIR\n".into());
    };
    match report(Path::new(dir)) {
        Ok(json) => Outcome::success(format!("{json}\n")),
        Err(e) => Outcome::refused(format!("valid-messages: {e}\n")),
    }
}

fn report(dir: &Path) -> Result<String, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let partitions: Vec<serde_json::Value> = valid_messages(dir)?
        .iter()
        .map(|p| {
            let runs: Vec<[u64; 2]> = p.runs().into_iter().map(|(a, b)| [a, b]).collect();
            serde_json::json!({
                "partition": p.ids(),
                "messages": p.distinct_offsets().len(),
                "runs": runs,
            })
        })
        .collect();
    Ok(serde_json::json!({ "partitions": partitions }).to_string())
}
