//! The state log in the journal: the sidecar journals how far it verified `state/log`,
//! a guided `recover` then verifies only the entries appended since, and a log
//! shorter than that length is damage, not trusted.

use crate::warden;
use crate::watch_common;

use harness::state_log::frame_entries;
use harness::{assert_same, snapshot, DataDirBuilder, PartitionSpec};
use journal::{Journal, Record};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use watch_common::*;

/// Two partitions with messages, ready to start; `state/log` names them, then creates users `alice`
/// and `bob` and a token `ci`: its last three entries create no folder.
fn build(dir: &Path) {
    let spec = |p| {
        PartitionSpec::new(0, 0, p)
            .messages(20, 20..80, 0)
            .consumer_offset(1, 3)
            .group_offset(1, 2)
            .trailing_empty_pair(false)
    };
    DataDirBuilder::new()
        .seed(16)
        .partition(spec(0))
        .partition(spec(1))
        .user("alice")
        .user("bob")
        .token("ci")
        .build(dir);
}

struct Dirs {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    state: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let (data, state) = (tmp.path().join("data"), tmp.path().join("state"));
    build(&data);
    Dirs {
        _tmp: tmp,
        data,
        state,
    }
}

fn recover(d: &Dirs, mode: &str) -> harness::Run {
    warden([
        "recover",
        "--json",
        "--mode",
        mode,
        "--data-dir",
        s(&d.data),
        "--state-dir",
        s(&d.state),
    ])
}

/// (bytes trusted, bytes verified) of `state/log` in a recover's JSON.
fn state_log_bytes(run: &harness::Run) -> (u64, u64) {
    let g = &run.json()["guided"];
    (
        g["state_log_bytes_trusted"].as_u64().expect("trusted"),
        g["state_log_bytes_verified"].as_u64().expect("verified"),
    )
}

fn problem_kinds(run: &harness::Run) -> Vec<String> {
    run.json()["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["kind"].as_str().map(str::to_string))
        .collect()
}

/// The lengths of every `state_log_verified` record, as `journal show` lists them
/// (through the running sidecar's handover).
fn journaled_lens(state: &Path) -> Vec<u64> {
    let run = warden(["journal", "show", "--json", "--state-dir", s(state)]);
    assert_eq!(run.code, 0, "journal show: {}", run.stderr);
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "state_log_verified")
        .filter_map(|v| v["valid_len"].as_u64())
        .collect()
}

fn mark_len(state: &Path) -> Option<u64> {
    let j = Journal::open(&state.join("journal")).unwrap();
    j.state_log_mark().unwrap().map(|m| m.valid_len)
}

/// Journals a mark for the first `n` entries of `log`, as the sidecar would.
fn journal_mark(state: &Path, log: &[u8], n: usize) {
    let entries = frame_entries(log).unwrap();
    let last = entries[n - 1];
    let checksum = u64::from_le_bytes(log[last.start + 44..last.start + 52].try_into().unwrap());
    fs::create_dir_all(state).unwrap();
    let j = Journal::open(&state.join("journal")).unwrap();
    j.append(Record::StateLogVerified {
        valid_len: last.end as u64,
        last_index: last.index,
        last_checksum: checksum,
    })
    .unwrap();
}

#[test]
fn after_the_sidecar_journaled_the_state_log_recover_verifies_only_what_was_appended() {
    let d = dirs();
    let path = d.data.join("state/log");
    let full = fs::read(&path).unwrap();
    let entries = frame_entries(&full).unwrap();
    let (bob, ci) = (entries[entries.len() - 2], entries[entries.len() - 1]);
    // The sidecar starts before the server wrote bob and the token.
    fs::write(&path, &full[..bob.start]).unwrap();
    let log = d.state.parent().unwrap().join("sidecar.log");
    let mut sidecar = Sidecar::spawn(&d.data, &d.state, &log, &[]);
    sidecar.wait_watching(Duration::from_secs(20));
    sidecar.wait_idle(Duration::from_secs(20));
    assert_eq!(journaled_lens(&d.state), [bob.start as u64], "at start-up");
    // The server writes bob's entry: on its checkpoint tick (100 ms) the sidecar
    // verifies it. (`journal show` copies the journal before the sidecar, taking it
    // back, reconciles: the record below comes from the tick.)
    fs::write(&path, &full[..ci.start]).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        journaled_lens(&d.state),
        [bob.start as u64, ci.start as u64],
        "after bob's entry"
    );
    assert!(sidecar.terminate().success());
    assert_eq!(
        mark_len(&d.state),
        Some(ci.start as u64),
        "the sidecar's mark"
    );

    // Then the token is appended, and a byte of bob's entry, before the mark, rots
    // (its stored checksum, which the mark names, stays).
    fs::write(&path, &full).unwrap();
    let mut rotten = full.clone();
    let at = bob.start + (bob.end - bob.start) * 3 / 4;
    rotten[at] ^= 0xff;
    fs::write(&path, &rotten).unwrap();

    let run = recover(&d, "tolerate-tail");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // Only the appended entry was hashed: the rot below the mark was not re-read.
    assert_eq!(
        state_log_bytes(&run),
        (ci.start as u64, (ci.end - ci.start) as u64)
    );
    assert_eq!(
        run.json()["actions"].as_array().map(Vec::len),
        Some(0),
        "{}",
        run.stdout
    );
    assert_eq!(fs::read(&path).unwrap(), rotten);
    // A full check (no journal) reads it all and finds the rot.
    let check = warden(["check", "--json", "--data-dir", s(&d.data)]);
    assert_eq!(check.code, 1);
    let corrupt: Vec<u64> = check.json()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "state-log-corrupt")
        .filter_map(|p| p["offset"].as_u64())
        .collect();
    assert_eq!(corrupt, [bob.start as u64]);

    // Damage in the appended part is verified, found and cut as a crash tail.
    let mut torn = full.clone();
    torn.truncate(ci.end - 3);
    fs::write(&path, &torn).unwrap();
    let run = recover(&d, "tolerate-tail");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        state_log_bytes(&run),
        (ci.start as u64, (ci.end - 3 - ci.start) as u64)
    );
    assert_eq!(fs::read(&path).unwrap(), &full[..ci.start]);
    // The repair's intent took the mark away: the next run verifies the whole log.
    assert_eq!(mark_len(&d.state), None);
    let run = recover(&d, "tolerate-tail");
    assert_eq!(run.code, 0);
    assert_eq!(state_log_bytes(&run), (0, ci.start as u64));
}

#[test]
fn a_state_log_shorter_than_its_mark_is_damage_not_trusted() {
    let d = dirs();
    let path = d.data.join("state/log");
    let full = fs::read(&path).unwrap();
    let entries = frame_entries(&full).unwrap();
    journal_mark(&d.state, &full, entries.len());
    let ci = entries[entries.len() - 1];

    // With the log as verified, the whole of it is trusted.
    let run = recover(&d, "tolerate-tail");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(state_log_bytes(&run), (full.len() as u64, 0));

    // The last whole entry removed behind the server's back: the log frames whole and
    // a full check finds nothing, but the journal knows better.
    fs::write(&path, &full[..ci.start]).unwrap();
    let check = warden(["check", "--data-dir", s(&d.data)]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    let before = snapshot(&d.data);
    for mode in ["tolerate-tail", "salvage", "absolute"] {
        let run = recover(&d, mode);
        assert_eq!(run.code, 3, "{mode}: {}", run.stdout);
        assert!(
            problem_kinds(&run).contains(&"state-log-shrunk".to_string()),
            "{mode}: {}",
            run.stdout
        );
        assert_same(&before, &snapshot(&d.data));
    }
    let text = warden([
        "recover",
        "--data-dir",
        s(&d.data),
        "--state-dir",
        s(&d.state),
    ]);
    assert_eq!(text.code, 3);
    assert!(
        text.stdout.contains(&format!(
            "state/log is {} bytes, shorter than the {} bytes",
            ci.start,
            full.len()
        )),
        "{}",
        text.stdout
    );

    // An operator accepts the shorter log: nothing is cut, the new length is journaled.
    let run = recover(&d, "point-in-time");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_same(&before, &snapshot(&d.data));
    assert_eq!(mark_len(&d.state), Some(ci.start as u64));
    let run = recover(&d, "tolerate-tail");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(state_log_bytes(&run), (ci.start as u64, 0));
}

#[test]
fn a_mark_the_log_no_longer_matches_is_not_trusted() {
    let d = dirs();
    let path = d.data.join("state/log");
    let full = fs::read(&path).unwrap();
    let entries = frame_entries(&full).unwrap();
    journal_mark(&d.state, &full, entries.len() - 1);
    // The entry at the mark now has another stored checksum: the log was rewritten.
    let bob = entries[entries.len() - 2];
    let mut rewritten = full.clone();
    rewritten[bob.start + 44] ^= 0x01;
    fs::write(&path, &rewritten).unwrap();
    let run = recover(&d, "point-in-time");
    // Verified whole: bob's entry fails its checksum and is cut with what follows.
    assert_eq!(state_log_bytes(&run).0, 0, "{}", run.stdout);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(fs::read(&path).unwrap(), &full[..bob.start]);
}
