//! Symbolic links (and other things planted under a name iggy-warden uses) in the data
//! and state directories. The sidecar's user owns `/var/lib/iggy-warden` and the
//! server's user owns the data directory, while `recover` may run as root: nothing may
//! be read, written, renamed or removed through a link, and no link may be replaced.
//!
//! One test per case. Each asserts that nothing outside the data and state folders
//! changed (the picture of every file, folder and link beside them, with bytes,
//! owners and modes), that whatever a repair cut is in the quarantine, and the exit
//! code (for the cases driven through the library, the error that becomes exit 2).
//! The `race_*` cases plant the link between the plan and the write, through the
//! executor's [`FileOps`] seam: an attacker who wins that race.

use crate::warden;
use harness::fixtures::{CLEAN, RACE_ROTATION};
use harness::{apply, assert_same, fixture_copy, snapshot, Fault, FixtureCopy, Snapshot};
use journal::Journal;
use recovery::execute::Executor;
use recovery::fsops::hooked::{Hook, Hooked, Op, Verdict};
use recovery::fsops::{FileOps, StdFs};
use recovery::pipeline::{run, PipelineError, Quiet, RepairOutcome, Request};
use recovery::plan::Mode;
use recovery::quarantine::Quarantine;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One segment (0) of 300 messages in the clean fixture.
const P1: &str = "streams/1/topics/0/partitions/0";
const LOG1: &str = "streams/1/topics/0/partitions/0/00000000000000000000.log";
const INDEX1: &str = "streams/1/topics/0/partitions/0/00000000000000000000.index";
const INDEX1_TMP: &str =
    "streams/1/topics/0/partitions/0/.00000000000000000000.index.iggy-warden-tmp";
/// The race capture's one partition.
const RACE: &str = "streams/0/topics/0/partitions/0";
const VICTIM: &[u8] = b"not yours";

/// A fixture copy (`<tmp>/data`), its state folder (`<tmp>/state`) and a folder beside
/// them (`<tmp>/outside`) holding what planted links point at.
struct World {
    copy: FixtureCopy,
    state: PathBuf,
    outside: PathBuf,
}

impl World {
    fn new(fixture: &str) -> Self {
        let copy = fixture_copy(fixture);
        let state = copy.tmp_root().join("state");
        let outside = copy.tmp_root().join("outside");
        fs::create_dir_all(outside.join("dir")).unwrap();
        fs::write(outside.join("victim"), VICTIM).unwrap();
        fs::write(outside.join("dir/keep"), b"keep").unwrap();
        World {
            copy,
            state,
            outside,
        }
    }

    fn data(&self) -> &Path {
        self.copy.path()
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.data().join(rel)
    }

    fn cli(&self, args: &[&str]) -> harness::Run {
        self.cli_with(args, self.data(), &self.state)
    }

    fn cli_with(&self, args: &[&str], data: &Path, state: &Path) -> harness::Run {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend([
            "--data-dir".into(),
            data.to_str().unwrap().into(),
            "--state-dir".into(),
            state.to_str().unwrap().into(),
        ]);
        warden(all)
    }

    /// Every entry beside the data and state folders (and any `also` skipped).
    fn outside_picture(&self, also: &[&Path]) -> Picture {
        let mut skip = vec![self.data(), self.state.as_path()];
        skip.extend_from_slice(also);
        let mut out = Picture::new();
        picture(self.copy.tmp_root(), "", &skip, &mut out);
        out
    }

    /// The library pipeline over this world with `fs`, as `recover` runs it.
    fn repair(&self, mode: Mode, fs: &dyn FileOps) -> Result<RepairOutcome, PipelineError> {
        let journal = Journal::open(&self.state.join("journal")).unwrap();
        let quarantine = Quarantine::new(&self.state);
        let exec = Executor {
            data_dir: self.data(),
            quarantine: &quarantine,
            fs,
            log: &journal,
        };
        let known = HashMap::new();
        run(
            &exec,
            &Request {
                mode,
                known: &known,
                only: &|_| true,
                progress: &Quiet,
                state_log: None,
                offsets: None,
            },
        )
    }

    fn victim_untouched(&self) {
        assert_eq!(fs::read(self.outside.join("victim")).unwrap(), VICTIM);
        assert_eq!(fs::read(self.outside.join("dir/keep")).unwrap(), b"keep");
        let names: BTreeSet<_> = fs::read_dir(self.outside.join("dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "files appeared outside: {names:?}");
    }
}

/// Relative path → what is there: kind, owner, mode, and the bytes of a file or the
/// target of a link.
type Picture = BTreeMap<String, (String, u32, u32, u32, Vec<u8>)>;

fn picture(dir: &Path, prefix: &str, skip: &[&Path], out: &mut Picture) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if skip.contains(&path.as_path()) {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rel = format!("{prefix}/{name}");
        let meta = fs::symlink_metadata(&path).unwrap();
        let (kind, content) = if meta.is_symlink() {
            let target = fs::read_link(&path).unwrap();
            ("link", target.to_string_lossy().as_bytes().to_vec())
        } else if meta.is_dir() {
            picture(&path, &rel, skip, out);
            ("dir", Vec::new())
        } else if meta.is_file() {
            ("file", fs::read(&path).unwrap())
        } else {
            ("other", Vec::new())
        };
        out.insert(
            rel,
            (kind.into(), meta.uid(), meta.gid(), meta.mode(), content),
        );
    }
}

/// Every byte a run took out of the data directory between `before` and `after` is
/// in the quarantine: a removed or replaced file whole, a cut file's tail.
fn assert_cuts_quarantined(before: &Snapshot, after: &Snapshot, state: &Path) {
    let quarantine = state.join("quarantine");
    let mut saved: BTreeSet<Vec<u8>> = if quarantine.is_dir() {
        snapshot(&quarantine).into_values().collect()
    } else {
        BTreeSet::new()
    };
    // A run's repairs are slices of its packed file.
    let q = Quarantine::new(state);
    for listed in q.list_each().unwrap_or_default() {
        if let Ok(m) = listed.manifest {
            let at = listed.home.saved(&m);
            if at.packed {
                let packed = fs::read(&at.path).unwrap();
                saved.insert(packed[at.range.start as usize..at.range.end as usize].to_vec());
            }
        }
    }
    for (path, bytes) in before {
        let tail: &[u8] = match after.get(path) {
            None => bytes,
            Some(now) if now == bytes => continue,
            Some(now) if bytes.starts_with(now) => &bytes[now.len()..],
            Some(_) => bytes,
        };
        // A cut keeps the tail; a file replaced whole (a re-lay) is kept whole.
        assert!(
            tail.is_empty() || saved.contains(tail) || saved.contains(bytes),
            "{} bytes of {path} are not in the quarantine",
            tail.len()
        );
    }
}

fn kinds_at(run: &harness::Run, path: &Path) -> Vec<String> {
    run.json()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["path"].as_str() == path.to_str())
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

/// `check` exits 1 and names `path` as `kind`; `recover` (in every repairing mode)
/// exits 3 and changes nothing, in the data directory or outside.
fn check_names_and_recover_refuses(w: &World, path: &Path, kind: &str, also: &[&Path]) {
    let check = warden(["check", "--json", "--data-dir", w.data().to_str().unwrap()]);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert_eq!(check.json()["ready_to_start"], false, "{}", check.stdout);
    assert!(
        kinds_at(&check, path).contains(&kind.to_string()),
        "{} not named {kind}: {}",
        path.display(),
        check.stdout
    );
    let outside = w.outside_picture(also);
    let data = snapshot(w.data());
    for mode in ["tolerate-tail", "point-in-time", "salvage"] {
        let r = w.cli(&["recover", "--mode", mode]);
        assert_eq!(r.code, 3, "{mode}: {}{}", r.stdout, r.stderr);
        assert_same(&data, &snapshot(w.data()));
        assert_eq!(w.outside_picture(also), outside, "{mode}: outside changed");
    }
    w.victim_untouched();
}

/// A run that must succeed: exit 0, ready, every cut quarantined, nothing outside changed.
fn recover_succeeds(w: &World, args: &[&str]) {
    let before = snapshot(w.data());
    let outside = w.outside_picture(&[]);
    let r = w.cli(args);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_cuts_quarantined(&before, &snapshot(w.data()), &w.state);
    assert_eq!(w.outside_picture(&[]), outside, "outside changed");
    w.victim_untouched();
}

// ---- links planted in the state directory before the run ----

#[test]
fn links_at_the_next_quarantine_bytes_names_are_never_written() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    // The ids a fresh journal hands out first, and some after them.
    for id in 1..=12 {
        let dir = w.state.join(format!("quarantine/r{id:08}"));
        fs::create_dir_all(&dir).unwrap();
        symlink(w.outside.join("victim"), dir.join("bytes")).unwrap();
    }
    // And every run folder a fresh journal's first run of up to 12 repairs may
    // name, with a link at each of its bytes names.
    for last in 1..=12 {
        let dir = w.state.join(format!("quarantine/run-r00000001-r{last:08}"));
        fs::create_dir_all(&dir).unwrap();
        for id in 1..=last {
            symlink(
                w.outside.join("victim"),
                dir.join(format!("r{id:08}.bytes")),
            )
            .unwrap();
        }
        symlink(w.outside.join("victim"), dir.join("bytes")).unwrap();
    }
    recover_succeeds(&w, &["recover"]);
    for id in 1..=12 {
        let link = w.state.join(format!("quarantine/r{id:08}/bytes"));
        assert!(fs::symlink_metadata(link).unwrap().is_symlink());
        let run = w.state.join(format!("quarantine/run-r00000001-r{id:08}"));
        let link = run.join(format!("r{id:08}.bytes"));
        assert!(fs::symlink_metadata(link).unwrap().is_symlink());
        assert!(fs::symlink_metadata(run.join("bytes"))
            .unwrap()
            .is_symlink());
    }
}

#[test]
fn links_at_the_next_quarantine_folder_names_are_never_written_into() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    fs::create_dir_all(w.state.join("quarantine")).unwrap();
    for id in 1..=12 {
        symlink(
            w.outside.join("dir"),
            w.state.join(format!("quarantine/r{id:08}")),
        )
        .unwrap();
        symlink(
            w.outside.join("dir"),
            w.state.join(format!("quarantine/run-r00000001-r{id:08}")),
        )
        .unwrap();
    }
    recover_succeeds(&w, &["recover"]);
}

#[test]
fn a_quarantine_folder_that_is_a_link_is_refused() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    fs::create_dir_all(&w.state).unwrap();
    symlink(w.outside.join("dir"), w.state.join("quarantine")).unwrap();
    let data = snapshot(w.data());
    let outside = w.outside_picture(&[]);
    let r = w.cli(&["recover"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_same(&data, &snapshot(w.data()));
    assert_eq!(w.outside_picture(&[]), outside);
    w.victim_untouched();
}

// ---- links planted in the data directory ----

#[test]
fn a_link_at_the_temporary_index_name_is_named_and_nothing_is_written_through_it() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::IndexZeroedMiddle { entries: 2 }).unwrap();
    symlink(w.outside.join("victim"), w.at(INDEX1_TMP)).unwrap();
    check_names_and_recover_refuses(&w, &w.at(INDEX1_TMP), "symlink", &[]);
    assert!(fs::symlink_metadata(w.at(INDEX1_TMP)).unwrap().is_symlink());
}

#[test]
fn a_dangling_index_link_is_named_and_never_replaced() {
    let w = World::new(CLEAN);
    fs::remove_file(w.at(INDEX1)).unwrap();
    symlink(w.outside.join("nothing"), w.at(INDEX1)).unwrap();
    check_names_and_recover_refuses(&w, &w.at(INDEX1), "symlink", &[]);
    assert!(fs::symlink_metadata(w.at(INDEX1)).unwrap().is_symlink());
    assert!(!w.outside.join("nothing").exists());
}

#[test]
fn a_link_at_a_salvage_log_temporary_name_is_named_and_salvage_refuses() {
    let w = World::new(RACE_ROTATION);
    let tmp = w.at(RACE).join(".00000000000000000000.log.iggy-warden-tmp");
    symlink(w.outside.join("victim"), &tmp).unwrap();
    check_names_and_recover_refuses(&w, &tmp, "symlink", &[]);
}

#[test]
fn a_log_that_is_a_link_is_named_and_never_cut() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    fs::rename(w.at(LOG1), w.outside.join("log")).unwrap();
    symlink(w.outside.join("log"), w.at(LOG1)).unwrap();
    check_names_and_recover_refuses(&w, &w.at(LOG1), "symlink", &[]);
}

#[test]
fn a_symlinked_partition_folder_is_named_and_nothing_in_it_changes() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    fs::rename(w.at(P1), w.outside.join("p")).unwrap();
    symlink(w.outside.join("p"), w.at(P1)).unwrap();
    check_names_and_recover_refuses(&w, &w.at(P1), "symlink", &[]);
}

#[test]
fn a_symlinked_streams_folder_is_named_and_nothing_in_it_changes() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    fs::rename(w.at("streams"), w.outside.join("streams")).unwrap();
    symlink(w.outside.join("streams"), w.at("streams")).unwrap();
    check_names_and_recover_refuses(&w, &w.at("streams"), "symlink", &[]);
}

#[test]
fn an_offsets_folder_that_is_a_link_is_named_and_nothing_is_created_through_it() {
    let w = World::new(CLEAN);
    let offsets = w.at(P1).join("offsets");
    fs::create_dir_all(w.outside.join("offsets")).unwrap();
    symlink(w.outside.join("offsets"), &offsets).unwrap();
    check_names_and_recover_refuses(&w, &offsets, "symlink", &[]);
    assert_eq!(fs::read_dir(w.outside.join("offsets")).unwrap().count(), 0);
}

#[test]
fn an_offsets_folder_that_is_a_file_is_named() {
    let w = World::new(CLEAN);
    let offsets = w.at(P1).join("offsets");
    fs::write(&offsets, b"x").unwrap();
    check_names_and_recover_refuses(&w, &offsets, "not-a-folder", &[]);
}

#[test]
fn a_partition_folder_that_is_a_file_is_named() {
    let w = World::new(CLEAN);
    fs::remove_dir_all(w.at(P1)).unwrap();
    fs::write(w.at(P1), b"x").unwrap();
    check_names_and_recover_refuses(&w, &w.at(P1), "not-a-folder", &[]);
}

#[test]
fn an_offset_file_linked_elsewhere_is_named_and_left_alone() {
    let w = World::new(CLEAN);
    let consumers = w.at(P1).join("offsets/consumers");
    fs::create_dir_all(&consumers).unwrap();
    fs::create_dir_all(w.at(P1).join("offsets/groups")).unwrap();
    // Three bytes: as a file, a repair would take it out.
    fs::write(w.outside.join("short-offset"), b"abc").unwrap();
    symlink(w.outside.join("short-offset"), consumers.join("7")).unwrap();
    check_names_and_recover_refuses(&w, &consumers.join("7"), "symlink", &[]);
    assert_eq!(fs::read(w.outside.join("short-offset")).unwrap(), b"abc");
}

#[test]
fn a_fifo_at_the_temporary_index_name_is_refused_without_hanging() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::IndexZeroedMiddle { entries: 2 }).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(w.at(INDEX1_TMP))
        .status()
        .unwrap();
    assert!(made.success());
    let data = snapshot(w.data());
    let outside = w.outside_picture(&[]);
    let r = w.cli(&["recover"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("FIFO"), "{}", r.stderr);
    // Repairs planned before this one ran; the index is as it was.
    let after = snapshot(w.data());
    assert_eq!(after.get(INDEX1), data.get(INDEX1));
    assert_cuts_quarantined(&data, &after, &w.state);
    assert_eq!(w.outside_picture(&[]), outside);
}

#[test]
fn a_log_hard_linked_to_an_outside_file_is_cut_under_its_own_name_only() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    fs::hard_link(w.at(LOG1), w.outside.join("log-link")).unwrap();
    let data = snapshot(w.data());
    let outside = w.outside_picture(&[]);
    let r = w.cli(&["recover"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let after = snapshot(w.data());
    assert!(
        after.get(LOG1).map(Vec::len) < data.get(LOG1).map(Vec::len),
        "the torn tail is cut"
    );
    assert_cuts_quarantined(&data, &after, &w.state);
    // The outside name keeps every byte it had: the cut went to a copy.
    assert_eq!(w.outside_picture(&[]), outside);
}

#[test]
fn restore_never_appends_to_a_log_swapped_for_a_link() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    assert_eq!(w.cli(&["recover"]).code, 0);
    let id = Quarantine::new(&w.state)
        .list()
        .unwrap()
        .into_iter()
        .find(|m| m.file == LOG1)
        .unwrap()
        .repair;
    // The outside file has the cut log's length, so an append would look right.
    fs::rename(w.at(LOG1), w.outside.join("victim")).unwrap();
    symlink(w.outside.join("victim"), w.at(LOG1)).unwrap();
    let victim = fs::read(w.outside.join("victim")).unwrap();
    let r = w.cli(&["restore", &id.to_string()]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(fs::read(w.outside.join("victim")).unwrap(), victim);
}

// ---- the data and state directories themselves may be links ----

#[test]
fn a_data_directory_that_is_a_link_is_resolved_once_and_repaired() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    let link = w.copy.tmp_root().join("local_data");
    symlink(w.data(), &link).unwrap();
    let before = snapshot(w.data());
    let outside = w.outside_picture(&[&link]);
    let r = w.cli_with(&["recover"], &link, &w.state);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_cuts_quarantined(&before, &snapshot(w.data()), &w.state);
    assert_eq!(w.outside_picture(&[&link]), outside);
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    let check = warden(["check", "--data-dir", link.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{}", check.stdout);
}

#[test]
fn a_state_directory_that_is_a_link_is_resolved_once() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    fs::create_dir_all(&w.state).unwrap();
    let link = w.copy.tmp_root().join("state-link");
    symlink(&w.state, &link).unwrap();
    let before = snapshot(w.data());
    let outside = w.outside_picture(&[&link]);
    let r = w.cli_with(&["recover"], w.data(), &link);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_cuts_quarantined(&before, &snapshot(w.data()), &w.state);
    assert_eq!(w.outside_picture(&[&link]), outside);
}

// ---- links planted between the plan and the write (the executor's seam) ----

/// The real file system (as [`Hooked`]), but just before one of the operations `ops`
/// (named as [`Op::name`] names them) on a path `matches` accepts, a link to `target`
/// is put there (whatever was there is moved aside, for [`Plant::undo`]): an
/// attacker who wins the race between the plan and the write.
struct Plant {
    ops: &'static [&'static str],
    matches: fn(&Path) -> bool,
    target: PathBuf,
    planted: AtomicBool,
    at: Mutex<Option<PathBuf>>,
}

impl Plant {
    fn new(ops: &'static [&'static str], matches: fn(&Path) -> bool, target: PathBuf) -> Self {
        Self {
            ops,
            matches,
            target,
            planted: AtomicBool::new(false),
            at: Mutex::new(None),
        }
    }

    fn plant(&self, op: &str, path: &Path) {
        if self.ops.contains(&op)
            && (self.matches)(path)
            && !self.planted.swap(true, Ordering::SeqCst)
        {
            if fs::symlink_metadata(path).is_ok() {
                fs::rename(path, aside(path)).unwrap();
            }
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            symlink(&self.target, path).unwrap();
            *self.at.lock().unwrap() = Some(path.to_path_buf());
        }
    }

    /// What the operator does: removes the link and puts back what it replaced.
    fn undo(&self) {
        let Some(path) = self.at.lock().unwrap().take() else {
            return;
        };
        fs::remove_file(&path).unwrap();
        if fs::symlink_metadata(aside(&path)).is_ok() {
            fs::rename(aside(&path), &path).unwrap();
        }
    }

    fn was_planted(&self) -> bool {
        self.planted.load(Ordering::SeqCst)
    }
}

impl Hook for Plant {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        self.plant(op.name(), op.path());
        Ok(Verdict::Run)
    }
}

fn aside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(".aside");
    path.with_file_name(name)
}

fn named(path: &Path, name: &str) -> bool {
    path.file_name().is_some_and(|n| n == name)
}

fn name_starts(path: &Path, head: &str) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(head))
}

fn name_ends(path: &Path, tail: &str) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(tail))
}

/// Runs `mode` with `plant`: the run must stop with an error naming the link, having
/// written nothing outside and quarantined every byte it cut; after the link is gone,
/// a plain rerun must finish the repair.
fn race(w: &World, mode: Mode, plant: Plant) {
    let before = snapshot(w.data());
    let outside = w.outside_picture(&[]);
    let result = w.repair(mode, &Hooked(&plant));
    assert!(plant.was_planted(), "the planted operation never ran");
    let Err(err) = result else {
        panic!("the run must refuse the link")
    };
    assert!(
        err.to_string().contains("symbolic link"),
        "the error names no link: {err}"
    );
    assert_eq!(w.outside_picture(&[]), outside, "outside changed");
    w.victim_untouched();
    // The operator removes the link; a plain run then converges.
    plant.undo();
    assert_cuts_quarantined(&before, &snapshot(w.data()), &w.state);
    let outcome = w.repair(mode, &StdFs).unwrap();
    assert!(outcome.ready_to_start, "{:?}", outcome.refusals);
    eprintln!(
        "{:#?}",
        outcome
            .actions
            .iter()
            .map(|a| a.action.to_string())
            .collect::<Vec<_>>()
    );
    eprintln!(
        "{:#?}",
        outcome
            .replayed
            .iter()
            .map(|a| a.action.to_string())
            .collect::<Vec<_>>()
    );
    assert_cuts_quarantined(&before, &snapshot(w.data()), &w.state);
}

fn in_quarantine(path: &Path) -> bool {
    path.parent().is_some_and(|p| named(p, "quarantine"))
}

#[test]
fn race_a_link_at_the_allocated_quarantine_folder() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    let plant = Plant::new(&["create_dir_all"], in_quarantine, w.outside.join("dir"));
    race(&w, Mode::TolerateTail, plant);
}

#[test]
fn race_a_link_at_the_allocated_quarantine_bytes() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    let plant = Plant::new(
        &[
            "copy_range",
            "create_sized_in_round",
            "copy_range_at_in_round",
        ],
        // A run folder's packed `bytes`, or a repair's own.
        |p| named(p, "bytes") || name_ends(p, ".bytes"),
        w.outside.join("victim"),
    );
    race(&w, Mode::TolerateTail, plant);
}

#[test]
fn race_a_link_swapped_in_for_the_packed_bytes_while_they_are_filled() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    let plant = Plant::new(
        &["copy_range_at_in_round"],
        |p| named(p, "bytes"),
        w.outside.join("victim"),
    );
    race(&w, Mode::TolerateTail, plant);
}

#[test]
fn race_a_link_at_the_temporary_manifest() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    let plant = Plant::new(
        &["write_file"],
        |p| named(p, "manifest.json.tmp"),
        w.outside.join("victim"),
    );
    race(&w, Mode::TolerateTail, plant);
}

#[test]
fn race_a_link_at_the_temporary_index() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::IndexZeroedMiddle { entries: 2 }).unwrap();
    let plant = Plant::new(
        &["write_file"],
        |p| name_ends(p, ".index.iggy-warden-tmp"),
        w.outside.join("victim"),
    );
    race(&w, Mode::TolerateTail, plant);
}

#[test]
fn race_a_link_swapped_in_for_the_index_before_the_swap() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::IndexZeroedMiddle { entries: 2 }).unwrap();
    let plant = Plant::new(
        &["exchange"],
        |p| name_ends(p, ".index"),
        w.outside.join("victim"),
    );
    race(&w, Mode::TolerateTail, plant);
}

#[test]
fn race_a_link_planted_where_a_file_is_moved_aside_to_be_removed() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::SuccessorLogWithoutIndex).unwrap();
    let plant = Plant::new(
        &["rename"],
        |p| name_ends(p, ".iggy-warden-removed"),
        w.outside.join("victim"),
    );
    race(&w, Mode::TolerateTail, plant);
}

#[test]
fn race_a_link_swapped_in_for_the_log_before_the_cut() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::TornLogTail).unwrap();
    let plant = Plant::new(
        &["cut_in_round"],
        |p| name_ends(p, ".log"),
        w.outside.join("victim"),
    );
    race(&w, Mode::TolerateTail, plant);
}

#[test]
fn race_a_link_at_a_salvage_log_temporary_name() {
    let w = World::new(RACE_ROTATION);
    let plant = Plant::new(
        &["write_file"],
        |p| name_ends(p, ".log.iggy-warden-tmp"),
        w.outside.join("victim"),
    );
    race(&w, Mode::Salvage, plant);
}

#[test]
fn race_a_link_at_a_salvage_quarantine_file_name() {
    let w = World::new(RACE_ROTATION);
    let plant = Plant::new(
        &["hard_link"],
        |p| name_ends(p, "file-0"),
        w.outside.join("victim"),
    );
    race(&w, Mode::Salvage, plant);
}

// ---- owners and modes: what recover writes as root stays the server's ----

const UID: u32 = 4242;
const GID: u32 = 4343;

/// Gives every file and folder below `dir` (and `dir`) to UID:GID; false when not root.
fn give_away(dir: &Path) -> bool {
    if let Err(e) = std::os::unix::fs::lchown(dir, Some(UID), Some(GID)) {
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        eprintln!("not root: owners are not tested");
        return false;
    }
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            give_away(&path);
        } else {
            std::os::unix::fs::lchown(&path, Some(UID), Some(GID)).unwrap();
        }
    }
    true
}

/// Every entry below `dir` belongs to UID:GID.
fn assert_all_given_away(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (UID, GID),
            "{} kept no owner",
            path.display()
        );
        if meta.is_dir() {
            assert_all_given_away(&path);
        }
    }
}

#[test]
fn a_rebuilt_index_keeps_the_owner_and_mode_of_the_one_it_replaces() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::IndexZeroedMiddle { entries: 2 }).unwrap();
    if !give_away(w.data()) {
        return;
    }
    fs::set_permissions(w.at(INDEX1), fs::Permissions::from_mode(0o604)).unwrap();
    let before = fs::read(w.at(INDEX1)).unwrap();
    recover_succeeds(&w, &["recover"]);
    assert_ne!(fs::read(w.at(INDEX1)).unwrap(), before, "rebuilt");
    let meta = fs::metadata(w.at(INDEX1)).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (UID, GID, 0o604)
    );
    assert_all_given_away(w.data());
}

#[test]
fn a_new_index_and_new_offsets_folders_take_their_folders_owner() {
    let w = World::new(CLEAN);
    apply(w.data(), P1, Fault::IndexMissing).unwrap();
    if !give_away(w.data()) {
        return;
    }
    fs::set_permissions(w.at(P1), fs::Permissions::from_mode(0o750)).unwrap();
    recover_succeeds(&w, &["recover"]);
    let meta = fs::metadata(w.at(INDEX1)).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (UID, GID, 0o640)
    );
    let consumers = fs::metadata(w.at(P1).join("offsets/consumers")).unwrap();
    assert_eq!((consumers.uid(), consumers.gid()), (UID, GID));
    assert_all_given_away(w.data());
}

#[test]
fn salvage_relaid_segments_and_restored_files_keep_the_owner_of_what_they_replace() {
    let w = World::new(RACE_ROTATION);
    if !give_away(w.data()) {
        return;
    }
    let original = snapshot(w.data());
    recover_succeeds(&w, &["recover", "--mode", "salvage"]);
    assert_ne!(snapshot(w.data()), original, "re-laid");
    assert_all_given_away(w.data());
    let mut ids: Vec<String> = Quarantine::new(&w.state)
        .list()
        .unwrap()
        .iter()
        .map(|m| m.repair.to_string())
        .collect();
    ids.reverse();
    let mut args = vec!["restore"];
    args.extend(ids.iter().map(String::as_str));
    let r = w.cli(&args);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(snapshot(w.data()), original);
    assert_all_given_away(w.data());
}

/// Consumer 7 of `P1` (300 messages) stores offset 400: `--reset-offsets-ahead`
/// moves it back to 299. Runs the reset through `plant`: it must stop naming the
/// link, write nothing outside and leave the offset as it was; once the link is
/// gone, a plain run resets it.
fn reset_race(plant: fn(&World) -> Plant) {
    let w = World::new(CLEAN);
    let consumers = w.at(P1).join("offsets/consumers");
    fs::create_dir_all(&consumers).unwrap();
    fs::write(consumers.join("7"), 400u64.to_le_bytes()).unwrap();
    let reset = |fs: &dyn FileOps| {
        let ahead = w.repair(Mode::TolerateTail, &StdFs).unwrap().offsets_ahead;
        assert_eq!(ahead.len(), 1);
        let journal = Journal::open(&w.state.join("journal")).unwrap();
        let quarantine = Quarantine::new(&w.state);
        let exec = Executor {
            data_dir: w.data(),
            quarantine: &quarantine,
            fs,
            log: &journal,
        };
        recovery::offset_reset::reset(&exec, ahead).map(|(done, _)| done.len())
    };
    let stored = || u64::from_le_bytes(fs::read(consumers.join("7")).unwrap().try_into().unwrap());
    let outside = w.outside_picture(&[]);
    let plant = plant(&w);
    let err = reset(&Hooked(&plant)).unwrap_err();
    assert!(plant.was_planted(), "the planted operation never ran");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(w.outside_picture(&[]), outside, "outside changed");
    w.victim_untouched();
    plant.undo();
    assert_eq!(stored(), 400);
    assert_eq!(reset(&StdFs).unwrap(), 1);
    assert_eq!(stored(), 299);
}

#[test]
fn race_a_link_at_the_temporary_offset_file() {
    reset_race(|w| {
        Plant::new(
            &["write_file"],
            |p| name_ends(p, ".iggy-warden-tmp") && name_starts(p, ".offsets-consumers-7."),
            w.outside.join("victim"),
        )
    });
}

#[test]
fn race_a_link_swapped_in_for_the_offset_file_before_the_swap() {
    reset_race(|w| Plant::new(&["exchange"], |p| named(p, "7"), w.outside.join("victim")));
}
