//! What the commands print survives hostile names and files: a name that is not
//! UTF-8 or holds a newline is shown escaped and losslessly, on one line, in text and
//! JSON alike; one malformed manifest does not hide the rest of the quarantine.

use crate::warden;
use crate::watch_common::Sidecar;
use harness::fixture_copy;
use harness::fixtures::{CLEAN, KILLED_UNDER_LOAD};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const PART: &str = "streams/0/topics/0/partitions/0";

#[test]
fn names_that_are_not_utf8_or_hold_a_newline_print_escaped_on_one_line() {
    let copy = fixture_copy(CLEAN);
    let part = copy.path().join(PART);
    std::fs::write(part.join(OsStr::from_bytes(b"bad\xffname")), b"x").unwrap();
    std::fs::write(part.join(OsStr::from_bytes(b"bad\xfename")), b"x").unwrap();
    std::fs::write(part.join("new\nline.log"), b"x").unwrap();

    let text = warden(["check", "--data-dir", s(copy.path())]);
    assert_eq!(text.code, 1, "{}", text.stderr);
    // Two names Path::display shows alike are told apart.
    assert!(text.stdout.contains("/bad\\xffname: "), "{}", text.stdout);
    assert!(text.stdout.contains("/bad\\xfename: "), "{}", text.stdout);
    assert!(!text.stdout.contains('\u{fffd}'), "{}", text.stdout);
    // The newline does not split the report: no line starts inside a name.
    assert!(
        text.stdout.contains("/new\\x0aline.log: "),
        "{}",
        text.stdout
    );
    assert!(
        !text.stdout.lines().any(|l| l.starts_with("line.log")),
        "{}",
        text.stdout
    );
    // As a stray, and as a stray *.log the server would load.
    let stray_log = text
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("stray-log: "))
        .unwrap_or_else(|| panic!("{}", text.stdout));
    assert!(stray_log.contains("new\\x0aline.log"), "{stray_log}");

    let json = warden(["check", "--data-dir", s(copy.path()), "--json"]);
    assert_eq!(json.code, 1, "{}", json.stderr);
    let report = json.json();
    let strays: Vec<&str> = report["strays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    let part_dir = copy.path().join(PART);
    for name in ["bad\\xffname", "bad\\xfename", "new\\x0aline.log"] {
        let expected = format!("{}/{name}", part_dir.display());
        assert!(
            strays.contains(&expected.as_str()),
            "{expected}: {strays:?}"
        );
    }
    let problems = report["problems"].as_array().unwrap();
    assert!(problems
        .iter()
        .any(|p| p["kind"] == "stray-log"
            && p["path"].as_str().unwrap().ends_with("new\\x0aline.log")));

    // recover and replay refuse (a stray *.log) and print the same escaped name.
    let state = copy.tmp_root().join("state");
    for cmd in ["recover", "replay"] {
        let run = warden([cmd, "--data-dir", s(copy.path()), "--state-dir", s(&state)]);
        assert_eq!(run.code, 3, "{cmd}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("new\\x0aline.log"),
            "{cmd}: {}",
            run.stdout
        );
        assert!(
            !run.stdout.lines().any(|l| l.starts_with("line.log")),
            "{cmd}: {}",
            run.stdout
        );
    }
    let run = warden([
        "recover",
        "--json",
        "--data-dir",
        s(copy.path()),
        "--state-dir",
        s(&state),
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.contains("new\\\\x0aline.log"), "{}", run.stdout);
}

#[test]
fn one_malformed_manifest_does_not_hide_the_rest_of_the_quarantine() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let state = copy.tmp_root().join("state");
    let dirs = ["--data-dir", s(copy.path()), "--state-dir", s(&state)];
    let run = warden(["recover"].iter().chain(&dirs));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let q = recovery::quarantine::Quarantine::new(&state);
    let first_run = q.list().unwrap();
    assert!(first_run.len() >= 2, "{}", first_run.len());
    // A second run, in a run folder of its own.
    harness::apply(
        copy.path(),
        "streams/0/topics/0/partitions/1",
        harness::Fault::TornLogTail,
    )
    .unwrap();
    let run = warden(["recover"].iter().chain(&dirs));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = q.list().unwrap();
    let second_run: Vec<_> = all.iter().skip(first_run.len()).collect();
    assert!(!second_run.is_empty());

    // The first run's manifest is cut short: every repair of that run is unreadable.
    let bad = first_run[0].repair;
    let (home, _) = q.find(bad).unwrap().unwrap();
    let bad_manifest = home.manifest();
    assert!(home.run().is_some(), "{home:?}");
    std::fs::write(&bad_manifest, b"{\"version\": 1, \"run\":").unwrap();
    // A repair folder whose manifest says it is another repair is as bad.
    let other = journal::RepairId(4000);
    let mut moved = second_run[0].clone();
    moved.repair = journal::RepairId(4242);
    std::fs::create_dir_all(q.repair_dir(other)).unwrap();
    let other_manifest = q.repair_dir(other).join("manifest.json");
    std::fs::write(&other_manifest, serde_json::to_vec(&moved).unwrap()).unwrap();

    let run = warden(["restore", "--list"].iter().chain(&dirs));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.lines().count(),
        second_run.len(),
        "{}",
        run.stdout
    );
    for m in &all {
        let listed = run.stdout.contains(&format!("{}  ", m.repair));
        let in_first = first_run.iter().any(|f| f.repair == m.repair);
        assert_eq!(listed, !in_first, "{}", run.stdout);
    }
    for (id, path) in [(bad, &bad_manifest), (other, &other_manifest)] {
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(&format!("{id} cannot be listed")))
            .unwrap_or_else(|| panic!("{id}: {}", run.stderr));
        assert!(line.contains(s(path)), "names the file: {line}");
    }

    let run = warden(["restore", "--list", "--json"].iter().chain(&dirs));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["repairs"].as_array().unwrap().len(), second_run.len());
    let unreadable = j["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 2, "{j:#}");
    assert_eq!(unreadable[0]["id"], bad.to_string());
    assert_eq!(unreadable[0]["path"], s(&bad_manifest));
    assert_eq!(unreadable[0]["run"], home.run().unwrap().to_string());
    assert!(unreadable[1]["error"]
        .as_str()
        .unwrap()
        .contains("describes repair r00004242"));
}

/// `check | head`, `replay | less` quit early: the reader gone before the report is
/// written is no crash, and the exit code is the one the full report gets.
/// Runs `iggy-warden ARGS` twice: read whole, and with the read end of its stdout
/// closed before it writes. The second ends with the first's exit code, no panic.
fn closed_reader(args: &[&str]) {
    use std::process::{Command, Stdio};
    let read = warden(args);
    assert!(!read.stdout.is_empty(), "{args:?}: {}", read.stderr);
    let mut child = Command::new(crate::BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closes the only read end before the report is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(read.code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn the_sidecars_status_whose_reader_is_gone_ends_with_the_same_exit_code() {
    let copy = fixture_copy(CLEAN);
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("sidecar.log");
    let mut sidecar = Sidecar::spawn(copy.path(), state.path(), &log, &[]);
    sidecar.wait_watching(Duration::from_secs(30));
    closed_reader(&["status", "--state-dir", s(state.path())]);
    closed_reader(&["status", "--state-dir", s(state.path()), "--json"]);
    assert!(
        sidecar.terminate().success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn a_report_whose_reader_is_gone_ends_with_the_same_exit_code() {
    for fixture in [CLEAN, KILLED_UNDER_LOAD] {
        let copy = fixture_copy(fixture);
        let state = tempfile::tempdir().unwrap();
        let data = ["--data-dir", s(copy.path())];
        let dirs = [data[0], data[1], "--state-dir", s(state.path())];
        closed_reader(&[&["check"][..], &data].concat());
        closed_reader(&[&["check", "--json"][..], &data].concat());
        closed_reader(&[&["replay"][..], &dirs].concat());
        closed_reader(&[&["replay", "--json"][..], &dirs].concat());
        if fixture == KILLED_UNDER_LOAD {
            // A quarantine to list.
            let recover = warden([&["recover"][..], &dirs].concat());
            assert_eq!(recover.code, 0, "{}", recover.stdout);
            closed_reader(&[&["restore", "--list"][..], &dirs].concat());
            closed_reader(&[&["restore", "--list", "--json"][..], &dirs].concat());
            let journal = ["journal", "--state-dir", s(state.path()), "show"];
            closed_reader(&journal);
            closed_reader(&[&journal[..], &["--json"]].concat());
        }
    }
}
