//! The journal's folder is checked before sled opens it: a sparse giant, a symbolic
//! link or another user's folder is refused, moved aside (never deleted) and
//! recovery scans in full; a permission error is reported as one, naming the path,
//! and nothing is moved.

use crate::{warden, warden_measured, BIN};
use harness::fixtures::KILLED_UNDER_LOAD;
use harness::{apply, fixture_copy, snapshot, Fault};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const LIMIT: u64 = 64 << 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn dirs_args<'a>(cmd: &[&'a str], data: &'a Path, state: &'a Path) -> Vec<&'a str> {
    let mut args = cmd.to_vec();
    args.extend(["--data-dir", s(data), "--state-dir", s(state)]);
    args
}

/// The folders `journal.unusable-*` beside the journal.
fn moved_aside(state: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("journal.unusable-"))
        })
        .collect();
    out.sort();
    out
}

fn manifests(state: &Path) -> Vec<recovery::quarantine::Manifest> {
    recovery::quarantine::Quarantine::new(state).list().unwrap()
}

/// A data directory recovered once (so it has a journal), then given a torn tail.
/// Returns the copy, its state directory and the torn file's path.
fn recovered_then_torn() -> (harness::FixtureCopy, PathBuf, PathBuf) {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let state = copy.tmp_root().join("state");
    let first = warden(dirs_args(&["recover"], copy.path(), &state));
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(state.join("journal/db").is_file());
    let tail = apply(
        copy.path(),
        "streams/0/topics/0/partitions/0",
        Fault::TornLogTail,
    )
    .unwrap();
    (copy, state, tail.path)
}

/// After the journal was refused: recover moved it aside, scanned in full, cut the
/// torn tail into the quarantine, and `check` says ready.
fn assert_recovered_without_the_journal(
    data: &Path,
    state: &Path,
    torn: &Path,
    before: &[recovery::quarantine::Manifest],
    why: &str,
) -> PathBuf {
    let (run, peak) = warden_measured(dirs_args(&["recover"], data, state));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(peak < LIMIT, "recover peaked at {} MiB", peak >> 20);
    assert!(
        run.stderr.contains("refused before opening it") && run.stderr.contains(why),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("journal gave nothing to skip"),
        "a full scan: {}",
        run.stdout
    );
    let aside = moved_aside(state);
    assert_eq!(aside.len(), 1, "moved aside, never deleted: {aside:?}");
    assert!(state.join("journal").is_dir() && !state.join("journal").is_symlink());
    let after = manifests(state);
    let new: Vec<_> = after.iter().filter(|m| !before.contains(m)).collect();
    assert!(
        new.iter()
            .any(|m| torn.ends_with(&m.file) && !m.range.is_empty()),
        "the torn bytes are quarantined: {new:?}"
    );
    let check = warden(["check", "--data-dir", s(data)]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    aside.into_iter().next().unwrap()
}

#[test]
fn a_sparse_journal_db_is_refused_moved_aside_and_recovery_scans_in_full() {
    let (copy, state, torn) = recovered_then_torn();
    let before = manifests(&state);
    let db = state.join("journal/db");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(50 << 30)
        .unwrap();
    let aside = assert_recovered_without_the_journal(copy.path(), &state, &torn, &before, "sparse");
    assert_eq!(std::fs::metadata(aside.join("db")).unwrap().len(), 50 << 30);

    // Inspection refuses it too, without reading it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(state.join("journal/db"))
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let (run, peak) = warden_measured(["journal", "verify", "--state-dir", s(&state)]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(peak < LIMIT, "journal verify peaked at {} MiB", peak >> 20);
    assert!(
        run.stderr.contains("journal/db") && run.stderr.contains("sparse"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_symlinked_journal_folder_is_refused_and_its_target_left_alone() {
    let (copy, state, torn) = recovered_then_torn();
    let before = manifests(&state);
    let elsewhere = copy.tmp_root().join("elsewhere");
    std::fs::rename(state.join("journal"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, state.join("journal")).unwrap();
    let target = snapshot(&elsewhere);
    let aside =
        assert_recovered_without_the_journal(copy.path(), &state, &torn, &before, "symbolic link");
    assert!(aside.is_symlink(), "the link itself was moved aside");
    assert_eq!(
        snapshot(&elsewhere),
        target,
        "nothing written through the link"
    );
}

#[test]
fn a_link_or_fifo_inside_the_journal_folder_is_refused() {
    for kind in ["link", "fifo"] {
        let (copy, state, torn) = recovered_then_torn();
        let before = manifests(&state);
        let conf = state.join("journal/conf");
        std::fs::remove_file(&conf).unwrap();
        let outside = copy.tmp_root().join("outside");
        std::fs::write(&outside, b"not sled's").unwrap();
        if kind == "link" {
            std::os::unix::fs::symlink(&outside, &conf).unwrap();
        } else {
            let c = std::ffi::CString::new(s(&conf)).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
        let why = if kind == "link" {
            "symbolic link"
        } else {
            "neither"
        };
        assert_recovered_without_the_journal(copy.path(), &state, &torn, &before, why);
        assert_eq!(std::fs::read(&outside).unwrap(), b"not sled's", "{kind}");
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `nobody` on Debian and most distributions.
const NOBODY: u32 = 65534;

fn chown_all(path: &Path, uid: u32) {
    let c = std::ffi::CString::new(s(path)).unwrap();
    // SAFETY: a valid NUL-terminated path; -1 keeps the group.
    assert_eq!(unsafe { libc::lchown(c.as_ptr(), uid, u32::MAX) }, 0);
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_all(&e.unwrap().path(), uid);
        }
    }
}

#[test]
fn a_journal_folder_of_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: only root can give a folder to another user");
        return;
    }
    let (copy, state, torn) = recovered_then_torn();
    let before = manifests(&state);
    chown_all(&state.join("journal"), NOBODY);
    let aside =
        assert_recovered_without_the_journal(copy.path(), &state, &torn, &before, "owned by uid");
    assert_eq!(std::fs::metadata(aside).unwrap().uid(), NOBODY);
}

#[test]
fn a_permission_error_on_the_journal_is_reported_as_one_and_moves_nothing() {
    let (copy, state, _) = recovered_then_torn();
    let journal = state.join("journal");
    let data = copy.path();
    let as_other_user = is_root();
    // Root reads anything: then the commands run as `nobody`, on a state directory
    // `nobody` owns, with a journal only root may open. Otherwise the journal's
    // folder is simply closed to its owner.
    if as_other_user {
        for p in [copy.tmp_root(), data] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        chown_all(&state, NOBODY);
        chown_all(&journal, 0);
        std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o700)).unwrap();
    } else {
        std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let journal_before = std::fs::metadata(&journal).unwrap().ino();
    let data_before = snapshot(data);
    let run = |args: Vec<&str>| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(args)
            .env_remove("STATE_DIRECTORY")
            .env("IGGY_WARDEN_LOG", "warn");
        if as_other_user {
            std::os::unix::process::CommandExt::uid(&mut cmd, NOBODY);
            std::os::unix::process::CommandExt::gid(&mut cmd, NOBODY);
        }
        harness::measured(cmd).0
    };
    for cmd in [&["recover"][..], &["replay"], &["journal", "verify"]] {
        let out = run(dirs_args(cmd, data, &state));
        assert_eq!(out.code, 2, "{cmd:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("permission denied on") && out.stderr.contains(s(&journal)),
            "{cmd:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("corrupt") && !out.stderr.contains("unusable"),
            "{cmd:?}: {}",
            out.stderr
        );
        assert!(
            moved_aside(&state).is_empty(),
            "{cmd:?}: nothing moved aside"
        );
        assert_eq!(std::fs::metadata(&journal).unwrap().ino(), journal_before);
    }
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(snapshot(data), data_before, "nothing repaired");
}
