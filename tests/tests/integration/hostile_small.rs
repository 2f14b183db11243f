//! The smaller findings: a relative state directory inside the data directory,
//! causes printed twice, "rerun" where a rerun cannot help.

use crate::BIN;
use harness::fixtures::{CLEAN, KILLED_UNDER_LOAD};
use harness::{apply, fixture_copy, snapshot, Fault, Run};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `iggy-warden ARGS` run from `cwd`, as `nobody` when `as_nobody`.
fn run_in(cwd: &Path, args: &[&str], as_nobody: bool) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("STATE_DIRECTORY")
        .env("IGGY_WARDEN_LOG", "warn");
    if as_nobody {
        std::os::unix::process::CommandExt::uid(&mut cmd, NOBODY);
        std::os::unix::process::CommandExt::gid(&mut cmd, NOBODY);
    }
    cmd.output().expect("run iggy-warden").into()
}

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_relative_state_dir_inside_the_data_dir_is_refused() {
    let copy = fixture_copy(CLEAN);
    let tmp = copy.tmp_root();
    let before = snapshot(copy.path());
    let cases: [(&Path, &str, &str); 4] = [
        (tmp, "data", "data/warden"),
        (tmp, "data", "./data/../data/.warden"),
        (copy.path(), ".", "warden"),
        (copy.path(), s(copy.path()), "streams/../warden"),
    ];
    for (cwd, data, state) in cases {
        for cmd in ["recover", "replay", "restore"] {
            let run = run_in(cwd, &[cmd, "--data-dir", data, "--state-dir", state], false);
            assert_eq!(
                run.code, 2,
                "{cmd} {data} {state}: {}{}",
                run.stdout, run.stderr
            );
            assert!(
                run.stderr.contains("inside the data directory"),
                "{cmd} {data} {state}: {}",
                run.stderr
            );
        }
    }
    assert_eq!(snapshot(copy.path()), before, "nothing created or changed");
    // Beside it, relative, is fine.
    let run = run_in(
        tmp,
        &[
            "recover",
            "--data-dir",
            "data",
            "--state-dir",
            "data.warden",
        ],
        false,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Makes `path` unreadable to the run: root runs as `nobody` on a folder only root
/// may enter; anyone else closes the folder to themselves.
fn close(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
}

#[test]
fn a_cause_is_printed_once() {
    let copy = fixture_copy(CLEAN);
    std::fs::set_permissions(copy.tmp_root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let folder = copy.path().join("streams/0");
    close(&folder);
    let run = run_in(
        copy.tmp_root(),
        &["check", "--data-dir", s(copy.path())],
        is_root(),
    );
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(s(&folder)), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("Permission denied").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn a_repair_a_rerun_cannot_finish_does_not_say_rerun() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let tmp = copy.tmp_root();
    let data = copy.path();
    let torn = apply(data, "streams/0/topics/0/partitions/0", Fault::TornLogTail).unwrap();
    let state = tmp.join("state");
    std::fs::create_dir(&state).unwrap();
    let as_nobody = is_root();
    if as_nobody {
        // nobody may read the data and write the state directory, not the data.
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = std::ffi::CString::new(s(&state)).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) }, 0);
    }
    // The torn log and its folder may not be written.
    let partition = torn.path.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&torn.path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&partition, std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = snapshot(data);
    let run = run_in(
        tmp,
        &["recover", "--data-dir", s(data), "--state-dir", s(&state)],
        as_nobody,
    );
    std::fs::set_permissions(&partition, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("repair failed") && run.stderr.contains("Permission denied"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("rerun"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("Permission denied").count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(snapshot(data), before, "nothing changed");
}
