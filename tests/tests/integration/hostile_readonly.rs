//! Inspection never writes: `check`, `replay` without `--apply`, `restore --list`,
//! `journal show` and `journal verify` leave the state directory (and the data
//! directory) exactly as they found them — with a healthy journal, a corrupt one
//! (garbage in sled's `db`), none at all, and no state directory — and each says
//! the right thing with the right exit code. An unusable journal is reported as
//! unusable, never moved aside or replaced, and replay's dry run still plans from a
//! full scan.

use crate::warden;
use harness::fixtures::KILLED_UNDER_LOAD;
use harness::{apply, fixture_copy, Fault, Run};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// What a folder holds, as precisely as a test can see it: every entry at any depth
/// with its kind and permission bits, a file's bytes and a symlink's target.
type Tree = BTreeMap<String, String>;

fn tree(dir: &Path) -> Tree {
    let mut out = Tree::new();
    if fs::symlink_metadata(dir).is_err() {
        return out;
    }
    collect(dir, "", &mut out);
    out
}

fn collect(dir: &Path, prefix: &str, out: &mut Tree) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let rel = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            out.insert(rel.clone(), format!("dir {mode:o}"));
            collect(&entry.path(), &rel, out);
        } else if meta.is_symlink() {
            let target = fs::read_link(entry.path()).unwrap();
            out.insert(rel, format!("symlink -> {}", target.display()));
        } else {
            let bytes = fs::read(entry.path()).unwrap();
            let digest = xxhash_rust::xxh3::xxh3_64(&bytes);
            out.insert(
                rel,
                format!("file {mode:o} {} bytes {digest:016x}", bytes.len()),
            );
        }
    }
}

/// Asserts that nothing changed, naming what did.
fn assert_unchanged(before: &Tree, after: &Tree, what: &str) {
    if before == after {
        return;
    }
    let mut diff = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => diff.push(format!("gone: {k} ({v})")),
            Some(w) if w != v => diff.push(format!("changed: {k}: {v} -> {w}")),
            _ => {}
        }
    }
    for (k, v) in after {
        if !before.contains_key(k) {
            diff.push(format!("new: {k} ({v})"));
        }
    }
    panic!("{what} changed the directory:\n{}", diff.join("\n"));
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Journal {
    Healthy,
    Corrupt,
    Missing,
    NoStateDir,
}

/// A data directory recovered once (a journal and a quarantine), then damaged again
/// (a torn tail) so that a dry run has something to plan, and the journal put in
/// the state asked for.
struct Setup {
    copy: harness::FixtureCopy,
    state: std::path::PathBuf,
}

fn setup(journal: Journal) -> Setup {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let state = copy.tmp_root().join("state");
    if journal != Journal::NoStateDir {
        let first = run_with(&["recover"], copy.path(), &state);
        assert_eq!(first.code, 0, "{}", first.stderr);
    }
    apply(
        copy.path(),
        "streams/0/topics/0/partitions/0",
        Fault::TornLogTail,
    )
    .unwrap();
    match journal {
        Journal::Healthy | Journal::NoStateDir => {}
        Journal::Corrupt => {
            let db = state.join("journal").join("db");
            let len = fs::metadata(&db).unwrap().len().max(4096) as usize;
            let noise: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
            fs::write(&db, noise).unwrap();
        }
        Journal::Missing => fs::remove_dir_all(state.join("journal")).unwrap(),
    }
    Setup { copy, state }
}

fn run_with(args: &[&str], data: &Path, state: &Path) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--data-dir", s(data), "--state-dir", s(state)]);
    warden(all)
}

/// Runs `args` and asserts that neither the state directory nor the data directory
/// (nor the folder holding both) changed.
fn inspect(setup: &Setup, args: &[&str], with_dirs: bool) -> Run {
    let root = setup.copy.tmp_root();
    let before = tree(root);
    let run = if with_dirs {
        run_with(args, setup.copy.path(), &setup.state)
    } else {
        warden(args)
    };
    assert_unchanged(&before, &tree(root), &args.join(" "));
    run
}

const CASES: [Journal; 4] = [
    Journal::Healthy,
    Journal::Corrupt,
    Journal::Missing,
    Journal::NoStateDir,
];

#[test]
fn check_changes_nothing() {
    for journal in CASES {
        let setup = setup(journal);
        let data = s(setup.copy.path()).to_string();
        for json in [false, true] {
            let mut args = vec!["check", "--data-dir", &data];
            if json {
                args.push("--json");
            }
            let run = inspect(&setup, &args, false);
            assert_eq!(run.code, 1, "{journal:?}: {}{}", run.stdout, run.stderr);
            if json {
                assert_eq!(run.json()["ready_to_start"], false);
            } else {
                assert!(run.stdout.contains("torn-tail"), "{}", run.stdout);
            }
        }
    }
}

#[test]
fn replay_dry_run_changes_nothing_and_reads_an_unusable_journal_as_unusable() {
    for journal in CASES {
        let setup = setup(journal);
        let run = inspect(&setup, &["replay"], true);
        let out = format!("{journal:?}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(run.code, 0, "{out}");
        // The torn tail is found whatever the journal: a full scan without one.
        assert!(run.stdout.contains("problem: torn-tail"), "{out}");
        assert!(run.stdout.contains("would truncate"), "{out}");
        assert!(run.stdout.contains("dry run: nothing changed"), "{out}");
        let journal_dir = setup.state.join("journal");
        match journal {
            Journal::Healthy => {
                assert!(!run.stdout.contains("unusable"), "{out}");
                assert!(!run.stdout.contains("no journal"), "{out}");
            }
            Journal::Corrupt => {
                let line = format!("journal {} is unusable (", journal_dir.display());
                assert!(run.stdout.contains(&line), "{out}");
                assert!(run.stdout.contains("left as it is"), "{out}");
                assert!(
                    run.stdout.contains("every segment scanned in full"),
                    "{out}"
                );
                assert!(!out.contains(".inspect-"), "names the copy: {out}");
            }
            Journal::Missing | Journal::NoStateDir => {
                let line = format!("no journal at {}", journal_dir.display());
                assert!(run.stdout.contains(&line), "{out}");
            }
        }

        let run = inspect(&setup, &["replay", "--json"], true);
        assert_eq!(run.code, 0, "{journal:?}: {}", run.stderr);
        let j = run.json();
        assert_eq!(j["dry_run"], true);
        let expected = match journal {
            Journal::Healthy => "usable",
            Journal::Corrupt => "unusable",
            Journal::Missing | Journal::NoStateDir => "missing",
        };
        assert_eq!(j["journal"]["state"], expected, "{j:#}");
        assert_eq!(j["journal"]["path"], s(&journal_dir));
        assert_eq!(
            j["journal"]["why"].is_string(),
            journal == Journal::Corrupt,
            "{j:#}"
        );
        assert!(!j["plan"]["actions"].as_array().unwrap().is_empty());
    }
}

#[test]
fn restore_list_changes_nothing_whatever_the_journal() {
    for journal in CASES {
        let setup = setup(journal);
        let listed = recovery::quarantine::Quarantine::new(&setup.state)
            .list()
            .unwrap();
        assert_eq!(listed.is_empty(), journal == Journal::NoStateDir);
        let run = inspect(&setup, &["restore", "--list"], true);
        assert_eq!(run.code, 0, "{journal:?}: {}", run.stderr);
        assert_eq!(run.stdout.lines().count(), listed.len(), "{}", run.stdout);
        for m in &listed {
            assert!(
                run.stdout.contains(&format!("{}  ", m.repair)),
                "{journal:?}: {} not listed:\n{}",
                m.repair,
                run.stdout
            );
        }
        let run = inspect(&setup, &["restore", "--list", "--json"], true);
        assert_eq!(run.code, 0, "{journal:?}: {}", run.stderr);
        let repairs = run.json()["repairs"].as_array().unwrap().len();
        assert_eq!(repairs, listed.len());
    }
}

#[test]
fn journal_show_changes_nothing_and_refuses_an_unusable_journal() {
    for journal in CASES {
        let setup = setup(journal);
        let state = s(&setup.state).to_string();
        for json in [false, true] {
            let mut args = vec!["journal", "--state-dir", &state, "show"];
            if json {
                args.push("--json");
            }
            let run = inspect(&setup, &args, false);
            let out = format!("{journal:?}: {}\n{}", run.stdout, run.stderr);
            let journal_dir = setup.state.join("journal");
            match journal {
                Journal::Healthy => {
                    assert_eq!(run.code, 0, "{out}");
                    assert!(run.stdout.lines().count() > 0, "{out}");
                    if json {
                        let kinds: Vec<String> = run
                            .stdout
                            .lines()
                            .map(|l| {
                                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                                v["kind"].as_str().unwrap().to_string()
                            })
                            .collect();
                        assert!(kinds.iter().any(|k| k == "repair_intent"), "{kinds:?}");
                    }
                }
                Journal::Corrupt => {
                    assert_eq!(run.code, 2, "{out}");
                    assert!(run.stdout.is_empty(), "{out}");
                    let line = format!("journal {} is unusable (", journal_dir.display());
                    assert!(run.stderr.contains(&line), "{out}");
                    assert!(!out.contains(".inspect-"), "names the copy: {out}");
                }
                Journal::Missing | Journal::NoStateDir => {
                    assert_eq!(run.code, 2, "{out}");
                    let line = format!("no journal at {}", journal_dir.display());
                    assert!(run.stderr.contains(&line), "{out}");
                }
            }
        }
    }
}

#[test]
fn journal_verify_changes_nothing_and_says_unreadable() {
    for journal in CASES {
        let setup = setup(journal);
        let state = s(&setup.state).to_string();
        let run = inspect(&setup, &["journal", "--state-dir", &state, "verify"], false);
        let out = format!("{journal:?}: {}\n{}", run.stdout, run.stderr);
        let journal_dir = setup.state.join("journal");
        match journal {
            Journal::Healthy => {
                assert_eq!(run.code, 0, "{out}");
                assert!(run.stdout.contains("sound"), "{out}");
            }
            Journal::Corrupt => {
                assert_eq!(run.code, 2, "{out}");
                let line = format!("journal {} is unusable (", journal_dir.display());
                assert!(run.stderr.contains(&line), "{out}");
                assert!(run.stderr.contains("full scan"), "{out}");
                assert!(!out.contains(".inspect-"), "names the copy: {out}");
            }
            Journal::Missing | Journal::NoStateDir => {
                assert_eq!(run.code, 2, "{out}");
                let line = format!("no journal at {}", journal_dir.display());
                assert!(run.stderr.contains(&line), "{out}");
            }
        }
    }
}

/// The writers still follow the rule: the journal replay's dry run left alone is
/// moved aside by `replay --apply`, which repairs from a full scan.
#[test]
fn replay_apply_moves_the_unusable_journal_aside_that_the_dry_run_left() {
    let setup = setup(Journal::Corrupt);
    assert_eq!(inspect(&setup, &["replay"], true).code, 0);
    let run = run_with(&["replay", "--apply"], setup.copy.path(), &setup.state);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("truncate"), "{}", run.stdout);
    let aside: Vec<_> = fs::read_dir(&setup.state)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("journal.unusable-")
        })
        .collect();
    // Kept, not deleted (sled's failed open may have rewritten parts of it).
    assert_eq!(aside.len(), 1);
    assert!(aside[0].path().join("db").is_file());
    let check = warden(["check", "--data-dir", s(setup.copy.path())]);
    assert_eq!(check.code, 0, "{}", check.stdout);
}

use crate::watch_common;

/// With the sidecar running, inspection borrows the journal just for its copy: it
/// reads the sidecar's records, leaves no copy behind, and the sidecar takes its
/// journal back and keeps watching.
#[test]
fn inspection_copies_the_journal_of_a_running_sidecar_which_then_resumes() {
    use harness::{DataDirBuilder, PartitionSpec};
    use std::time::Duration;
    use watch_common::{wait_for, Sidecar};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    DataDirBuilder::new()
        .seed(5)
        .partition(PartitionSpec::new(0, 0, 0).messages(5, 50..200, 0))
        .build(&data);
    let mut sidecar = Sidecar::spawn(&data, &state, &tmp.path().join("sidecar.log"), &[]);
    sidecar.wait_watching(Duration::from_secs(30));
    sidecar.wait_idle(Duration::from_secs(30));
    let reconciled = sidecar.counter("reconciliations");

    let show = warden(["journal", "--state-dir", s(&state), "show"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout.contains("segment 0/0/0@0 opened"),
        "{}",
        show.stdout
    );
    let replay = run_with(&["replay"], &data, &state);
    assert_eq!(replay.code, 0, "{}{}", replay.stdout, replay.stderr);
    assert!(
        replay.stdout.contains("would create folder"),
        "{}",
        replay.stdout
    );
    let verify = warden(["journal", "--state-dir", s(&state), "verify"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);

    wait_for(
        Duration::from_secs(30),
        "the sidecar to take the journal back",
        || {
            let st = sidecar.status()?;
            (st.get("state").map(String::as_str) == Some("watching")
                && sidecar.counter("reconciliations") >= reconciled + 3)
                .then_some(())
        },
    );
    let left: Vec<_> = fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".inspect-") || n.starts_with("journal.unusable-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let status = sidecar.terminate();
    assert!(status.success(), "{status}");
}
