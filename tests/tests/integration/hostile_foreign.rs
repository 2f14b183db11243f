//! A first start and folders that are not Iggy data directories: a missing or empty
//! data directory has nothing to check (exit 0, so the server can start and create
//! it), and nothing is written for it; a folder with data but no `state/info` is not
//! an Iggy 0.6 data directory (exit 2), never "0 partitions … ready".

use crate::warden;
use harness::fixtures::CLEAN;
use harness::{fixture_copy, snapshot, Run};
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `check`, `recover`, `replay` and `replay --apply` on `data`, with `state` as the
/// state directory, text and JSON.
fn every_command(data: &Path, state: &Path) -> Vec<(String, Run)> {
    let mut out = Vec::new();
    for json in [false, true] {
        let j: &[&str] = if json { &["--json"] } else { &[] };
        let mut runs = [
            (vec!["check", "--data-dir", s(data)], "check"),
            (
                vec!["recover", "--data-dir", s(data), "--state-dir", s(state)],
                "recover",
            ),
            (
                vec!["replay", "--data-dir", s(data), "--state-dir", s(state)],
                "replay",
            ),
            (
                vec![
                    "replay",
                    "--apply",
                    "--data-dir",
                    s(data),
                    "--state-dir",
                    s(state),
                ],
                "replay --apply",
            ),
        ];
        for (args, name) in runs.iter_mut() {
            args.extend(j);
            out.push((format!("{name} json={json}"), warden(args.iter())));
        }
    }
    out
}

fn assert_nothing_to_check(data: &Path, state: &Path, why: &str) {
    for (what, run) in every_command(data, state) {
        assert_eq!(run.code, 0, "{what}: {}{}", run.stdout, run.stderr);
        if what.ends_with("json=true") {
            let v = run.json();
            assert!(
                v["nothing_to_check"]
                    .as_str()
                    .is_some_and(|w| w.contains(why)),
                "{what}: {}",
                run.stdout
            );
        } else {
            assert!(
                run.stdout.contains("nothing to check") && run.stdout.contains(why),
                "{what}: {}",
                run.stdout
            );
        }
        assert!(!state.exists(), "{what}: the state directory was created");
    }
}

#[test]
fn a_missing_data_directory_is_a_first_start_with_nothing_to_check() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("local_data");
    let state = tmp.path().join("state");
    assert_nothing_to_check(&data, &state, "does not exist");
    assert!(!data.exists(), "nothing creates the data directory");
}

#[test]
fn an_empty_data_directory_is_a_first_start_with_nothing_to_check() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("local_data");
    std::fs::create_dir(&data).unwrap();
    let state = tmp.path().join("state");
    assert_nothing_to_check(&data, &state, "is empty");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
}

#[test]
fn the_folders_a_starting_server_makes_before_state_info_are_a_first_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("local_data");
    for dir in ["logs", "runtime", "state", "streams"] {
        std::fs::create_dir_all(data.join(dir)).unwrap();
    }
    std::fs::write(data.join("logs/iggy-server.log"), b"starting\n").unwrap();
    let state = tmp.path().join("state");
    let before = snapshot(&data);
    assert_nothing_to_check(&data, &state, "only folders iggy-server creates");
    assert_eq!(snapshot(&data), before);
}

/// Every command exits 2 naming the folder as not an Iggy 0.6 data directory, and
/// nothing is changed in it.
fn assert_not_iggy(data: &Path, state: &Path) {
    let before = snapshot(data);
    for (what, run) in every_command(data, state) {
        assert_eq!(run.code, 2, "{what}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("not an Iggy 0.6 data directory") && run.stderr.contains(s(data)),
            "{what}: {}",
            run.stderr
        );
        assert!(!run.stdout.contains("ready"), "{what}: {}", run.stdout);
    }
    assert_eq!(snapshot(data), before);
}

#[test]
fn an_unrelated_folder_is_not_an_iggy_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("home");
    std::fs::create_dir_all(data.join("projects/src")).unwrap();
    std::fs::write(data.join("notes.txt"), b"hello").unwrap();
    std::fs::write(data.join("projects/src/main.rs"), b"fn main() {}").unwrap();
    assert_not_iggy(&data, &tmp.path().join("state"));
}

#[test]
fn a_data_directory_that_lost_its_state_files_is_not_taken_for_one() {
    // With its state/log still there it stays the server's (a repair quarantines a
    // cut-short state/info, and the server writes a new one); without either it is
    // not recognisable as an Iggy data directory.
    let copy = fixture_copy(CLEAN);
    std::fs::remove_file(copy.path().join("state/info")).unwrap();
    std::fs::remove_file(copy.path().join("state/log")).unwrap();
    assert_not_iggy(copy.path(), &copy.tmp_root().join("state"));
}

#[test]
fn the_root_folder_is_never_zero_partitions_ready() {
    let run = warden(["check", "--data-dir", "/"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("/ is not an Iggy 0.6 data directory"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("ready"), "{}", run.stdout);
    let tmp = tempfile::tempdir().unwrap();
    let run = warden([
        "recover",
        "--data-dir",
        "/",
        "--state-dir",
        s(&tmp.path().join("state")),
    ]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("ready"), "{}", run.stdout);
}

#[test]
fn a_state_info_that_is_a_device_or_a_fifo_is_refused_without_reading_it() {
    for kind in ["dev-zero", "fifo"] {
        let copy = fixture_copy(CLEAN);
        let info = copy.path().join("state/info");
        std::fs::remove_file(&info).unwrap();
        match kind {
            "dev-zero" => std::os::unix::fs::symlink("/dev/zero", &info).unwrap(),
            _ => {
                let c = std::ffi::CString::new(s(&info)).unwrap();
                // SAFETY: a valid NUL-terminated path.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            }
        }
        for cmd in ["check", "recover"] {
            let state = copy.tmp_root().join("state");
            let mut args = vec![cmd, "--data-dir", s(copy.path())];
            if cmd == "recover" {
                args.extend(["--state-dir", s(&state)]);
            }
            let run = warden(args);
            assert_eq!(run.code, 2, "{kind} {cmd}: {}{}", run.stdout, run.stderr);
            // A link is refused before anything looks at what it names.
            let why = match kind {
                "dev-zero" => "symbolic link",
                _ => "not a regular file",
            };
            assert!(
                run.stderr.contains("state/info") && run.stderr.contains(why),
                "{kind} {cmd}: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn a_data_directory_linked_to_nowhere_is_not_a_first_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("local_data");
    std::os::unix::fs::symlink(tmp.path().join("mnt/ssd/local_data"), &data).unwrap();
    let state = tmp.path().join("state");
    for (what, run) in every_command(&data, &state) {
        assert_eq!(run.code, 2, "{what}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("symbolic link") && run.stderr.contains("mnt/ssd/local_data"),
            "{what}: {}",
            run.stderr
        );
        assert!(!state.exists(), "{what}");
    }
}
