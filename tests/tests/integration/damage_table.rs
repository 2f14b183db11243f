//! Every fault of the damage table, applied to copies of both real iggy-server 0.6.0
//! fixtures, end to end through the `iggy-warden` binary:
//! - `check` names the fault;
//! - `recover` repairs it (or, for damage before the end of a partition, changes
//!   nothing under `tolerate-tail` and cuts under `point-in-time`);
//! - afterwards `check` says healthy and ready, every message intact before the damage
//!   is kept with identical bytes, the quarantine holds exactly the bytes cut;
//! - `restore` of every repair gives back the damaged input byte for byte.

use crate::warden;
use harness::fixtures::{CLEAN, KILLED_UNDER_LOAD};
use harness::layout::list_partitions;
use harness::{
    all_faults, apply_to_first, fault_named, fixture_copy, partition_messages, snapshot, Fault,
    Snapshot,
};
use std::path::Path;

/// Problem kinds `check` must report for each fault.
fn expected_kinds(fault: Fault) -> &'static [&'static str] {
    match fault {
        Fault::TornLogTail => &["torn-tail"],
        Fault::ZeroTail { .. } => &["zero-tail"],
        Fault::LogCutIndexLonger => &["index-long"],
        Fault::FlipByteLastMessage => &["corrupt-tail"],
        Fault::IndexHalfEntryShort => &["index-half-entry"],
        Fault::TornLogAndHalfIndex => &["torn-tail", "index-half-entry"],
        Fault::IndexMissing => &["index-missing"],
        Fault::IndexZeroFilledTail { .. } => &["index-long"],
        Fault::IndexZeroedMiddle { .. } => &["index-mismatch"],
        Fault::ExtraEmptyPair => &["empty-pair"],
        Fault::SuccessorLogWithoutIndex => &["successor-without-index"],
        Fault::RotationCrash => &["torn-tail", "empty-pair"],
        Fault::LogMissing => &["log-missing"],
        Fault::OffsetGap { .. } => &["offset-gap"],
        Fault::MidFileCorruptionSealed => &["mid-file-corruption"],
        Fault::TruncatedIndexShortWhole { .. } => &["index-short"],
        Fault::Race(_) => unreachable!("race faults are not in all_faults"),
    }
}

/// Damage a crash cannot leave at a partition's end: tolerate-tail must refuse it.
fn needs_operator(fault: Fault) -> bool {
    matches!(
        fault,
        Fault::OffsetGap { .. } | Fault::MidFileCorruptionSealed
    )
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn all_messages(dir: &Path) -> Vec<(String, Vec<Vec<u8>>)> {
    list_partitions(dir)
        .expect("list partitions")
        .into_iter()
        .map(|rel| {
            let msgs = partition_messages(dir, &rel);
            (rel, msgs)
        })
        .collect()
}

/// Checks every manifest's saved bytes against the damaged input; returns the repair
/// ids (not restores), newest first.
fn check_quarantine(state: &Path, damaged: &Snapshot) -> Vec<String> {
    let mut ids = Vec::new();
    let qdir = state.join("quarantine");
    for entry in std::fs::read_dir(&qdir).expect("quarantine folder exists") {
        let dir = entry.expect("entry").path();
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read(dir.join("manifest.json")).expect("manifest");
        let m: serde_json::Value = serde_json::from_slice(&text).expect("manifest is JSON");
        // A run folder lists its repairs in one manifest, each with its slice of the
        // packed file `bytes`; a folder of its own holds one repair's manifest and
        // `bytes`, all of it saved.
        let repairs: Vec<(String, serde_json::Value, Vec<u8>)> = if name.starts_with("run-") {
            assert_eq!(m["run"].as_str(), Some(name.as_str()));
            assert_eq!(m["version"], 2, "a packed run");
            let packed = std::fs::read(dir.join("bytes")).expect("packed bytes");
            m["repairs"]
                .as_array()
                .expect("a run's repairs")
                .iter()
                .map(|r| {
                    let id = format!("r{:08}", r["repair"].as_u64().expect("id"));
                    let at = r["packed"]["offset"].as_u64().expect("offset") as usize;
                    let len = r["packed"]["len"].as_u64().expect("len") as usize;
                    (id, r.clone(), packed[at..at + len].to_vec())
                })
                .collect()
        } else {
            let saved = std::fs::read(dir.join("bytes")).expect("saved bytes");
            vec![(name.clone(), m, saved)]
        };
        for (id, m, saved) in repairs {
            if m["action"].get("Restore").is_some() {
                continue;
            }
            let file = m["file"].as_str().expect("file");
            let start = m["range"]["start"].as_u64().expect("start") as usize;
            let end = m["range"]["end"].as_u64().expect("end") as usize;
            if m["created_file"].as_bool() == Some(true) {
                assert!(saved.is_empty());
            } else {
                let original = damaged
                    .get(file)
                    .unwrap_or_else(|| panic!("{file} was in the input"));
                assert_eq!(
                    saved,
                    original[start..end],
                    "quarantined bytes of {file} {start}..{end}"
                );
            }
            ids.push(id);
        }
    }
    ids.sort();
    ids.reverse();
    ids
}

fn run_case(fixture: &str, fault: Fault) -> bool {
    let copy = fixture_copy(fixture);
    let dir = copy.path();
    let state = copy.tmp_root().join("state");
    let before = all_messages(dir);
    let Ok((rel, report)) = apply_to_first(dir, fault) else {
        return false;
    };
    let ctx = format!("{fixture} {rel} {}", fault.name());
    let damaged = snapshot(dir);

    let check = warden(["check", "--json", "--data-dir", arg(dir)]);
    assert_eq!(check.code, 1, "{ctx}: check exit\n{}", check.stderr);
    let found: Vec<String> = check.json()["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["path"].as_str().is_some_and(|path| path.contains(&rel)))
        .map(|p| p["kind"].as_str().expect("kind").to_string())
        .collect();
    for kind in expected_kinds(fault) {
        assert!(
            found.iter().any(|k| k == kind),
            "{ctx}: check found {found:?}, not {kind}"
        );
    }

    let recover = |mode: &str| {
        warden([
            "recover",
            "--json",
            "--mode",
            mode,
            "--data-dir",
            arg(dir),
            "--state-dir",
            arg(&state),
        ])
    };
    if needs_operator(fault) {
        let refused = recover("tolerate-tail");
        assert_eq!(
            refused.code, 3,
            "{ctx}: tolerate-tail must refuse\n{}",
            refused.stderr
        );
        harness::assert_same(&damaged, &snapshot(dir));
        let cut = recover("point-in-time");
        assert_eq!(
            cut.code, 0,
            "{ctx}: point-in-time\n{}{}",
            cut.stdout, cut.stderr
        );
    } else {
        let fixed = recover("tolerate-tail");
        assert_eq!(
            fixed.code, 0,
            "{ctx}: recover\n{}{}",
            fixed.stdout, fixed.stderr
        );
    }
    let after = warden(["check", "--json", "--data-dir", arg(dir)]);
    assert_eq!(
        after.code, 0,
        "{ctx}: not healthy after recover:\n{}",
        after.stdout
    );
    let again = recover("tolerate-tail");
    assert_eq!(again.code, 0, "{ctx}: second recover");
    assert_eq!(
        again.json()["actions"].as_array().map(Vec::len),
        Some(0),
        "{ctx}: rerun repairs nothing"
    );

    for ((prel, orig), (_, kept)) in before.iter().zip(all_messages(dir)) {
        assert!(
            kept.len() <= orig.len() && kept[..] == orig[..kept.len()],
            "{ctx}: {prel} kept messages differ"
        );
        if *prel == rel {
            assert!(
                kept.len() as u64 >= report.intact_messages_before,
                "{ctx}: lost intact messages"
            );
            if report.affected_offsets.is_empty() && !needs_operator(fault) {
                assert_eq!(
                    kept.len(),
                    orig.len(),
                    "{ctx}: no message was damaged, none may go"
                );
            }
        } else {
            assert_eq!(kept.len(), orig.len(), "{ctx}: {prel} was not damaged");
        }
    }

    let ids = check_quarantine(&state, &damaged);
    assert!(!ids.is_empty(), "{ctx}: repairs leave manifests");
    let mut args = vec![
        "restore".to_string(),
        "--data-dir".into(),
        arg(dir).into(),
        "--state-dir".into(),
        arg(&state).into(),
    ];
    args.extend(ids);
    let restored = warden(&args);
    assert_eq!(restored.code, 0, "{ctx}: restore\n{}", restored.stderr);
    harness::assert_same(&damaged, &snapshot(dir));
    true
}

/// One case: the fault (named as `inject-fault` names it, with the harness's
/// parameters) must apply to the fixture, and everything above must hold.
fn case(fixture: &str, name: &str) {
    let fault = fault_named(name).unwrap_or_else(|| panic!("no fault named {name}"));
    assert!(
        run_case(fixture, fault),
        "{fixture}: {} applies to no partition",
        fault.name()
    );
}

/// One `#[test]` per (fixture, fault), so that each runs and fails on its own
/// (`cargo test --test damage_table clean::zero_tail`), after ripgrep's `rgtest!`.
macro_rules! damage_table {
    ($($name:ident => $fault:literal;)*) => {
        mod clean {
            use super::*;
            $(#[test]
            fn $name() {
                case(CLEAN, $fault);
            })*
        }
        mod killed_under_load {
            use super::*;
            $(#[test]
            fn $name() {
                case(KILLED_UNDER_LOAD, $fault);
            })*
        }
        /// The table names every fault of the harness, once.
        #[test]
        fn the_table_has_a_case_for_every_fault() {
            let mut listed: Vec<String> = vec![$($fault.to_string()),*];
            let mut all: Vec<String> = all_faults().iter().map(|f| f.name().to_string()).collect();
            listed.sort();
            all.sort();
            assert_eq!(listed, all);
        }
    };
}

damage_table! {
    torn_log_tail => "torn-log-tail";
    zero_tail => "zero-tail";
    log_cut_index_longer => "log-cut-index-longer";
    flip_byte_last_message => "flip-byte-last-message";
    index_half_entry_short => "index-half-entry-short";
    torn_log_and_half_index => "torn-log-and-half-index";
    index_missing => "index-missing";
    index_zero_filled_tail => "index-zero-filled-tail";
    index_zeroed_middle => "index-zeroed-middle";
    extra_empty_pair => "extra-empty-pair";
    successor_log_without_index => "successor-log-without-index";
    rotation_crash => "rotation-crash";
    log_missing => "log-missing";
    offset_gap => "offset-gap";
    mid_file_corruption_sealed => "mid-file-corruption-sealed";
    truncated_index_short_whole => "truncated-index-short-whole";
}
