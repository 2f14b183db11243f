//! Crash safety of the executor: a repair killed at every step of every action (file
//! operations and journal writes; a write in progress is left torn) converges, when run
//! again, to exactly the directory an uninterrupted run produces, and restoring every
//! repair afterwards gives back the damaged input: nothing is lost at any crash point.

use harness::{apply, snapshot, DataDirBuilder, Fault, PartitionSpec, Snapshot};
use journal::{Journal, RepairAction, RepairId};
use recovery::execute::Executor;
use recovery::fsops::hooked::{Hook, Hooked, Op, Verdict};
use recovery::fsops::{FileOps, StdFs};
use recovery::pipeline::{run, Request};
use recovery::plan::Mode;
use recovery::quarantine::Quarantine;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The panic payload of a simulated crash.
struct Crash;

/// Where [`CrashAt`] died inside the save of a run's packed file (noted with the
/// named steps, so that a test knows it crashed there too).
const CREATE_PACKED: &str = "create the packed bytes";
const FILL_PACKED: &str = "fill the packed bytes";

/// The real file system (as [`Hooked`]), until step `at`: that step is torn (half
/// done, where it writes) and the process "dies" (panics with [`Crash`]). The
/// executor runs steps on several threads: once dead, every later step of any
/// thread dies at once, doing nothing, as in a killed process.
struct CrashAt {
    at: usize,
    steps: AtomicUsize,
    /// The named step (a phase boundary or journal write) it died at, if any.
    died_at: Mutex<Option<String>>,
    /// Files written with their fsync left to a round that has not run yet, each with
    /// what it held before (`None`: it did not exist): what a power loss takes back.
    unsynced: Mutex<std::collections::BTreeMap<std::path::PathBuf, Option<Vec<u8>>>>,
    /// The quarantine is on another file system: no hard link into it.
    no_hard_links: bool,
}

impl CrashAt {
    fn new(at: usize, no_hard_links: bool) -> Self {
        Self {
            at,
            steps: AtomicUsize::new(0),
            died_at: Mutex::new(None),
            unsynced: Mutex::default(),
            no_hard_links,
        }
    }

    /// Notes what `path` holds before a write whose fsync is left to a round.
    fn before_unsynced(&self, path: &Path) {
        let mut unsynced = self.unsynced.lock().unwrap();
        if !unsynced.contains_key(path) {
            unsynced.insert(path.to_path_buf(), fs::read(path).ok());
        }
    }

    /// A power loss after the crash: every write no sync made durable is lost. A new
    /// file keeps its name but not its bytes (its folder entry may have been written
    /// back); a changed one is back to what it held.
    fn lose_unsynced_writes(&self) {
        for (path, before) in std::mem::take(&mut *self.unsynced.lock().unwrap()) {
            fs::write(&path, before.unwrap_or_default()).expect("power loss");
        }
    }

    /// True when this step is the one that crashes; a step after it never returns.
    fn crashing(&self) -> bool {
        let n = self.steps.fetch_add(1, Ordering::SeqCst);
        if n > self.at {
            self.die();
        }
        n == self.at
    }

    fn die(&self) -> ! {
        std::panic::panic_any(Crash)
    }
}

impl Hook for CrashAt {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        let crashing = self.crashing();
        let inside_packed = match op {
            Op::CreateSized { .. } => Some(CREATE_PACKED),
            Op::CopyRangeAt { .. } => Some(FILL_PACKED),
            _ => None,
        };
        if let Some(step) = inside_packed.filter(|_| crashing) {
            *self.died_at.lock().unwrap() = Some(step.into());
        }
        // Writes whose fsync is left to a round, torn or not.
        if matches!(
            op,
            Op::CopyRange { in_round: true, .. }
                | Op::Truncate { in_round: true, .. }
                | Op::CreateSized { .. }
                | Op::CopyRangeAt { .. }
        ) {
            self.before_unsynced(op.path());
        }
        if self.no_hard_links && !crashing && matches!(op, Op::HardLink { .. }) {
            return Err(io::Error::other(CROSS_DEVICE));
        }
        Ok(if crashing {
            Verdict::Tear
        } else {
            Verdict::Run
        })
    }
    fn torn(&self, _op: Op<'_>) {
        self.die();
    }
    fn after(&self, op: Op<'_>) {
        match op {
            Op::SyncFile { path } => {
                self.unsynced.lock().unwrap().remove(path);
            }
            // One file system here: everything written is durable.
            Op::SyncFs { .. } => self.unsynced.lock().unwrap().clear(),
            _ => {}
        }
    }
    fn step(&self, what: &str) {
        if self.crashing() {
            *self.died_at.lock().unwrap() = Some(what.to_string());
            self.die();
        }
    }
}

/// How a run repairs: its mode, whether it then resets consumer offsets left past
/// their partition's end (`recover --reset-offsets-ahead`), and whether its
/// quarantine is on another file system (it saves copies, not hard links).
#[derive(Clone, Copy)]
struct How {
    mode: Mode,
    reset_offsets: bool,
    copies: bool,
}

impl From<Mode> for How {
    fn from(mode: Mode) -> Self {
        Self {
            mode,
            reset_offsets: false,
            copies: false,
        }
    }
}

const CROSS_DEVICE: &str = "Invalid cross-device link";

/// The real file system, with the quarantine on another one.
struct NoHardLinks;

impl Hook for NoHardLinks {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        match op {
            Op::HardLink { .. } => Err(io::Error::other(CROSS_DEVICE)),
            _ => Ok(Verdict::Run),
        }
    }
}

/// The file system an uninterrupted run or a rerun of `how` uses.
fn plain_fs(how: How) -> Box<dyn FileOps> {
    if how.copies {
        Box::new(Hooked(NoHardLinks))
    } else {
        Box::new(StdFs)
    }
}

/// Runs the repair pipeline over `data` with state in `state`; returns whether the
/// directory ended ready to start.
fn repair(data: &Path, state: &Path, fs: &dyn FileOps, how: impl Into<How>) -> bool {
    let how = how.into();
    let journal = Journal::open(&state.join("journal")).expect("journal opens");
    let quarantine = Quarantine::new(state);
    let exec = Executor {
        data_dir: data,
        quarantine: &quarantine,
        fs,
        log: &journal,
    };
    let known = HashMap::new();
    let outcome = run(
        &exec,
        &Request {
            mode: how.mode,
            known: &known,
            state_log: None,
            offsets: None,
            only: &|_| true,
            progress: &recovery::pipeline::Quiet,
        },
    )
    .expect("repair runs");
    if how.reset_offsets && outcome.ready_to_start {
        recovery::offset_reset::reset(&exec, outcome.offsets_ahead).expect("reset runs");
    }
    outcome.ready_to_start
}

/// Restores every repair (newest first) that is not itself a restore.
fn restore_all(data: &Path, state: &Path) {
    restore_all_with(data, state, &StdFs)
}

/// [`restore_all`] through `fs`.
fn restore_all_with(data: &Path, state: &Path, fs: &dyn FileOps) {
    let journal = Journal::open(&state.join("journal")).expect("journal opens");
    let quarantine = Quarantine::new(state);
    let exec = Executor {
        data_dir: data,
        quarantine: &quarantine,
        fs,
        log: &journal,
    };
    let mut ids: Vec<RepairId> = quarantine
        .list()
        .expect("quarantine lists")
        .into_iter()
        .filter(|m| !matches!(m.action, RepairAction::Restore { .. }))
        .map(|m| m.repair)
        .collect();
    ids.reverse();
    let plan = ids
        .into_iter()
        .map(|id| (RepairAction::Restore { repair: id }, "test".to_string()))
        .collect();
    exec.execute(plan).expect("restore runs");
}

/// What happens to the state directory between the crash and the rerun.
#[derive(Clone, Copy, PartialEq)]
enum AfterCrash {
    /// Nothing: the rerun finishes what the journal says was begun.
    KeepJournal,
    /// The power is lost too: every write whose fsync was left to a sync round that
    /// had not run is undone. The rerun must converge as after a plain crash.
    LosePower,
    /// The journal is lost (deleted): the rerun sees only the disk and the quarantine.
    /// `same_messages`: whether the rerun must still serve every message the
    /// uninterrupted run serves (see the salvage case for why not always).
    LoseJournal { same_messages: bool },
}

fn crash_everywhere(name: &str, damaged: &Path, how: impl Into<How>) {
    crash_everywhere_then(name, damaged, how, AfterCrash::KeepJournal);
}

fn crash_everywhere_then(name: &str, damaged: &Path, how: impl Into<How>, after: AfterCrash) {
    let how = how.into();
    let reference = tempfile::tempdir().expect("tmp");
    let ref_data = reference.path().join("data");
    harness::copy_dir(damaged, &ref_data).expect("copy");
    let plain = plain_fs(how);
    assert!(
        repair(&ref_data, &reference.path().join("state"), &*plain, how),
        "{name}: reference run"
    );
    let packs_bytes = Quarantine::new(&reference.path().join("state"))
        .list()
        .expect("quarantine lists")
        .iter()
        .any(|m| m.packed.is_some_and(|slice| slice.len > 0));
    let expected: Snapshot = snapshot(&ref_data);
    let input = snapshot(damaged);
    assert_ne!(expected, input, "{name}: the case must need repairs");

    let mut crashes = 0;
    let mut boundaries = BTreeSet::new();
    for at in 0.. {
        let tmp = tempfile::tempdir().expect("tmp");
        let data = tmp.path().join("data");
        let state = tmp.path().join("state");
        harness::copy_dir(damaged, &data).expect("copy");
        let crashing = CrashAt::new(at, how.copies);
        let hooked = Hooked(&crashing);
        let first = catch_unwind(AssertUnwindSafe(|| repair(&data, &state, &hooked, how)));
        match first {
            Ok(ready) => {
                assert!(ready, "{name}: uninterrupted run");
                assert_eq!(snapshot(&data), expected, "{name}: run without crash");
                break;
            }
            Err(payload) => {
                assert!(payload.is::<Crash>(), "{name}: a real panic at step {at}");
                crashes += 1;
                boundaries.extend(crashing.died_at.lock().unwrap().take());
                if after == AfterCrash::LosePower {
                    crashing.lose_unsynced_writes();
                }
            }
        }
        if matches!(after, AfterCrash::LoseJournal { .. }) {
            let journal = state.join("journal");
            if journal.exists() {
                fs::remove_dir_all(&journal).expect("journal removed");
            }
        }
        assert!(
            repair(&data, &state, &*plain, how),
            "{name}: rerun after crash at step {at}"
        );
        match after {
            AfterCrash::KeepJournal | AfterCrash::LosePower => {
                if let Some(d) = harness::snapshot::diff(&expected, &snapshot(&data)) {
                    panic!("{name}: crash at step {at} converged elsewhere:\n{d}");
                }
            }
            // Without the journal the rerun cannot know what the crashed run had
            // planned, so the bytes may be laid out otherwise (a re-lay's temporary
            // files stay as strays). What must hold: the same valid messages are
            // served, and the next run has nothing left to do.
            AfterCrash::LoseJournal { same_messages } => {
                if same_messages {
                    assert_eq!(
                        served(&data),
                        served(&ref_data),
                        "{name}: crash at step {at}, then journal lost: other messages served"
                    );
                }
                let settled = snapshot(&data);
                assert!(repair(&data, &state, &*plain, how), "{name}: third run");
                if let Some(d) = harness::snapshot::diff(&settled, &snapshot(&data)) {
                    panic!("{name}: crash at step {at}, journal lost: not settled:\n{d}");
                }
            }
        }
        restore_all(&data, &state);
        let mut restored = snapshot(&data);
        if after
            == (AfterCrash::LoseJournal {
                same_messages: false,
            })
        {
            // The abandoned re-lay's temporary files stay: copies, nothing lost.
            restored.retain(|name, _| !name.ends_with(".iggy-warden-tmp"));
        }
        if matches!(after, AfterCrash::LoseJournal { .. }) {
            // So does a file moved aside to be removed, its bytes saved: with the
            // journal gone, no run knows that it may remove it.
            restored.retain(|name, _| !name.ends_with(".iggy-warden-removed"));
        }
        if let Some(d) = harness::snapshot::diff(&input, &restored) {
            panic!("{name}: crash at step {at}, restore does not give the input back:\n{d}");
        }
    }
    assert!(
        crashes >= 10,
        "{name}: only {crashes} crash points exercised"
    );
    // Killed between every two phases of the executor, not only inside them.
    let phases = [
        "journal intents",
        "save to quarantine",
        "sync quarantine",
        "apply changes",
        "sync changes",
        "journal done",
    ];
    let batched = boundaries.contains("save to quarantine");
    assert!(
        !batched || phases.iter().all(|p| boundaries.contains(*p)),
        "{name}: crashed only at {boundaries:?}"
    );
    // And inside the packed write: creating the file and, where the run saves
    // bytes (a salvage's phased repairs only create folders), filling a slice.
    let packed_writes = if packs_bytes {
        &[CREATE_PACKED, FILL_PACKED][..]
    } else {
        &[CREATE_PACKED][..]
    };
    assert!(
        !batched || packed_writes.iter().all(|p| boundaries.contains(*p)),
        "{name}: never crashed inside the packed write: {boundaries:?}"
    );
}

/// The distinct valid messages of every partition, as the server would find them.
fn served(data: &Path) -> Vec<(String, std::collections::BTreeSet<(u64, u64)>)> {
    harness::salvage::valid_messages(data)
        .expect("scan")
        .into_iter()
        .map(|p| (p.partition.clone(), p.distinct_messages()))
        .collect()
}

fn generated(tmp: &Path) -> std::path::PathBuf {
    let data = tmp.join("gen");
    DataDirBuilder::new()
        .seed(7)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(300, 20..200, 0..40)
                .segment_size(8 * 1024),
        )
        .partition(
            PartitionSpec::new(0, 0, 1)
                .messages(120, 10..60, 0)
                .segment_size(4 * 1024),
        )
        .build(&data);
    data
}

fn silence_crash_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<Crash>() {
            default(info);
        }
    }));
}

const P0: &str = "streams/0/topics/0/partitions/0";
const P1: &str = "streams/0/topics/0/partitions/1";

/// The generated data directory with `faults` applied, each to its partition.
fn generated_with(tmp: &Path, faults: &[(&str, Fault)]) -> std::path::PathBuf {
    let data = generated(tmp);
    for (partition, fault) in faults {
        apply(&data, partition, *fault).expect("fault");
    }
    data
}

/// Several actions of every kind: a rotation crash (truncate, index rewrite, half
/// pair out) in one partition, a missing index in the other.
const TAIL_FAULTS: [(&str, Fault); 2] = [(P0, Fault::RotationCrash), (P1, Fault::IndexMissing)];

#[test]
fn a_repair_killed_at_any_step_converges_and_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated_with(tmp.path(), &TAIL_FAULTS);
    crash_everywhere("tolerate-tail", &data, Mode::TolerateTail);
}

/// An index rebuilt and swapped in for the old one, then the old one removed; a file
/// moved aside, checked there, then removed.
const SWAP_FAULTS: [(&str, Fault); 2] = [
    (P0, Fault::IndexZeroedMiddle { entries: 2 }),
    (P1, Fault::SuccessorLogWithoutIndex),
];

#[test]
fn an_index_swap_and_a_removal_killed_at_any_step_converge_and_lose_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated_with(tmp.path(), &SWAP_FAULTS);
    crash_everywhere("swap and removal", &data, Mode::TolerateTail);
}

#[test]
fn an_index_swap_and_a_removal_killed_at_any_step_then_the_journal_lost_lose_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated_with(tmp.path(), &SWAP_FAULTS);
    crash_everywhere_then(
        "swap and removal, journal lost",
        &data,
        Mode::TolerateTail,
        AfterCrash::LoseJournal {
            same_messages: true,
        },
    );
}

/// A torn tail cut in P0, whose consumer 5 had stored an offset far past its end:
/// then reset, in a second batch.
fn with_offset_ahead(tmp: &Path) -> std::path::PathBuf {
    let data = generated_with(tmp, &[(P0, Fault::TornLogTail)]);
    consumer_offset(&data, "5", &10_000u64.to_le_bytes());
    data
}

/// Writes `bytes` as consumer `id`'s offset file in P0; returns its folder.
fn consumer_offset(data: &Path, id: &str, bytes: &[u8]) -> std::path::PathBuf {
    let consumers = data.join(P0).join("offsets/consumers");
    fs::create_dir_all(&consumers).expect("offsets folder");
    fs::write(consumers.join(id), bytes).expect("offset file");
    consumers
}

const RESET: How = How {
    mode: Mode::TolerateTail,
    reset_offsets: true,
    copies: false,
};

#[test]
fn an_offset_reset_killed_at_any_step_converges_and_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = with_offset_ahead(tmp.path());
    let plain = tmp.path().join("plain");
    harness::copy_dir(&data, &plain.join("data")).expect("copy");
    assert!(repair(
        &plain.join("data"),
        &plain.join("state"),
        &StdFs,
        RESET
    ));
    let file = plain.join("data").join(P0).join("offsets/consumers/5");
    let reset = u64::from_le_bytes(fs::read(file).expect("offset").try_into().expect("8"));
    assert!(reset < 300, "reset to the last message kept, not {reset}");
    crash_everywhere("offset reset", &data, RESET);
    crash_everywhere_then(
        "offset reset, power lost",
        &data,
        RESET,
        AfterCrash::LosePower,
    );
}

#[test]
fn an_offset_reset_killed_at_any_step_then_the_journal_lost_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = with_offset_ahead(tmp.path());
    crash_everywhere_then(
        "offset reset, journal lost",
        &data,
        RESET,
        AfterCrash::LoseJournal {
            same_messages: true,
        },
    );
}

#[test]
fn a_repair_killed_by_a_power_loss_at_any_step_converges_and_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated_with(
        tmp.path(),
        &[(P0, Fault::TornLogTail), (P1, Fault::TornLogAndHalfIndex)],
    );
    crash_everywhere_then(
        "power loss",
        &data,
        Mode::TolerateTail,
        AfterCrash::LosePower,
    );
}

#[test]
fn a_point_in_time_cut_killed_at_any_step_converges_and_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated_with(tmp.path(), &[(P0, Fault::MidFileCorruptionSealed)]);
    crash_everywhere("point-in-time", &data, Mode::PointInTime);
}

#[test]
fn a_salvage_relay_killed_at_any_step_converges_and_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    // A corrupt message inside a sealed segment, with data after it: tolerate-tail
    // refuses, salvage re-lays the partition from that segment on.
    let data = generated_with(
        tmp.path(),
        &[
            (P0, Fault::MidFileCorruptionSealed),
            (P1, Fault::OffsetGap { gap: 5 }),
        ],
    );
    crash_everywhere("salvage", &data, Mode::Salvage);
}

#[test]
fn a_salvage_relay_saving_copies_killed_at_any_step_converges_and_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated_with(tmp.path(), &[(P0, Fault::MidFileCorruptionSealed)]);
    let copies = How {
        copies: true,
        ..How::from(Mode::Salvage)
    };
    crash_everywhere("salvage saving copies", &data, copies);
    crash_everywhere_then(
        "salvage saving copies, power lost",
        &data,
        copies,
        AfterCrash::LosePower,
    );
}

#[test]
fn a_state_log_cut_killed_at_any_step_converges_and_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("gen");
    // The log ends with two users, so cutting its torn last entry orphans nothing.
    DataDirBuilder::new()
        .seed(9)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(60, 20..200, 0)
                .segment_size(4 * 1024),
        )
        .user("alice")
        .user("bob")
        .build(&data);
    harness::apply_state(&data, harness::StateFault::TornTail { keep: 0 }).expect("fault");
    apply(&data, P0, Fault::TornLogTail).expect("fault");
    crash_everywhere("state-log cut", &data, Mode::TolerateTail);
}

/// A log with a delete-segments entry before a token's (salvage drops it and
/// renumbers the token's), then a torn last entry, which the drop cuts; and a torn
/// log tail.
fn with_delete_segments(tmp: &Path) -> std::path::PathBuf {
    let data = tmp.join("gen");
    DataDirBuilder::new()
        .seed(11)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(60, 20..200, 0)
                .segment_size(4 * 1024),
        )
        .user("alice")
        .build(&data);
    harness::state_log::append_delete_segments(&data, (0, 0, 0), 1).expect("entry");
    harness::state_log::append_token(&data, 0, "after").expect("entry");
    harness::state_log::append_token(&data, 0, "torn").expect("entry");
    harness::apply_state(&data, harness::StateFault::TornTail { keep: 0 }).expect("fault");
    apply(&data, P0, Fault::TornLogTail).expect("fault");
    data
}

#[test]
fn a_drop_of_state_log_entries_killed_at_any_step_converges_and_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = with_delete_segments(tmp.path());
    crash_everywhere("state-log drop", &data, Mode::Salvage);
    crash_everywhere_then(
        "state-log drop, power lost",
        &data,
        Mode::Salvage,
        AfterCrash::LosePower,
    );
    crash_everywhere_then(
        "state-log drop, journal lost",
        &data,
        Mode::Salvage,
        AfterCrash::LoseJournal {
            same_messages: true,
        },
    );
}

#[test]
fn a_repair_killed_at_any_step_then_its_journal_lost_converges_and_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated_with(tmp.path(), &TAIL_FAULTS);
    crash_everywhere_then(
        "tolerate-tail, journal lost",
        &data,
        Mode::TolerateTail,
        AfterCrash::LoseJournal {
            same_messages: true,
        },
    );
}

/// A re-lay killed after some of its renames and then robbed of its journal cannot
/// be finished: nothing says which new files under temporary names belong to it. The
/// rerun salvages what the partition holds; the messages only in those files are not
/// served, but nothing is lost: the originals are whole in the quarantine, and
/// `restore` gives the input back byte for byte (asserted below for every step).
#[test]
fn a_salvage_relay_killed_at_any_step_then_its_journal_lost_loses_nothing() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated_with(tmp.path(), &[(P0, Fault::MidFileCorruptionSealed)]);
    crash_everywhere_then(
        "salvage, journal lost",
        &data,
        Mode::Salvage,
        AfterCrash::LoseJournal {
            same_messages: false,
        },
    );
}

/// Dies just before the first removal of a file moved aside.
struct CrashBeforeRemovingAside;

impl Hook for CrashBeforeRemovingAside {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        if let Op::RemoveFile { path } = op {
            if path.to_string_lossy().ends_with(".iggy-warden-removed") {
                std::panic::panic_any(Crash);
            }
        }
        Ok(Verdict::Run)
    }
}

/// iggy-server 0.6.0 takes every name in an offsets folder for a consumer id and
/// panics on any other: a short offset file taken out is set aside in the partition
/// folder, so a run killed before the removal leaves nothing in the offsets folder.
#[test]
fn a_removal_of_an_offset_file_killed_leaves_nothing_in_the_offsets_folder() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated(tmp.path());
    // Three bytes: short of an offset, taken out by the repair.
    let consumers = consumer_offset(&data, "7", &[1, 2, 3]);
    let state = tmp.path().join("state");
    let crashing = Hooked(CrashBeforeRemovingAside);
    let first = catch_unwind(AssertUnwindSafe(|| {
        repair(&data, &state, &crashing, Mode::TolerateTail)
    }));
    assert!(first.is_err_and(|p| p.is::<Crash>()), "the run dies");
    let names: Vec<_> = fs::read_dir(&consumers).unwrap().collect();
    assert!(names.is_empty(), "{names:?}");
    let aside = data
        .join(P0)
        .join(".offsets-consumers-7.iggy-warden-removed");
    assert_eq!(fs::read(&aside).unwrap(), [1, 2, 3]);
    assert!(repair(&data, &state, &StdFs, Mode::TolerateTail), "rerun");
    assert!(!aside.exists(), "the rerun finishes the removal");
}

/// Notes the folders a run fsyncs.
#[derive(Default)]
struct SyncedDirs(Mutex<Vec<std::path::PathBuf>>);

impl Hook for SyncedDirs {
    fn after(&self, op: Op<'_>) {
        if let Op::SyncDir { dir } = op {
            self.0.lock().unwrap().push(dir.to_path_buf());
        }
    }
}

/// The removal of an offset file changes two folders: the offsets folder it leaves
/// and the partition folder its aside passed through. Both are synced, so that the
/// aside does not come back after a power loss.
#[test]
fn a_removed_offset_file_s_folders_are_both_synced() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated(tmp.path());
    // Three bytes: short of an offset, taken out by the repair.
    let consumers = consumer_offset(&data, "7", &[1, 2, 3]);
    let synced = SyncedDirs::default();
    let state = tmp.path().join("state");
    assert!(repair(&data, &state, &Hooked(&synced), Mode::TolerateTail));
    let dirs = synced.0.lock().unwrap().clone();
    assert!(dirs.contains(&consumers), "{dirs:?}");
    assert!(dirs.contains(&data.join(P0)), "{dirs:?}");
}

/// Dies just before the first rename into an offsets folder.
struct CrashBeforeRenamingIntoOffsets;

impl Hook for CrashBeforeRenamingIntoOffsets {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        if let Op::Rename { to, .. } = op {
            if to
                .parent()
                .and_then(Path::parent)
                .is_some_and(|p| p.ends_with("offsets"))
            {
                std::panic::panic_any(Crash);
            }
        }
        Ok(Verdict::Run)
    }
}

/// A restore puts an offset file back through a temporary file in the partition
/// folder, not in the offsets folder, where a restore killed before its rename
/// would leave a name that stops iggy-server 0.6.0.
#[test]
fn a_restore_of_an_offset_file_killed_leaves_nothing_in_the_offsets_folder() {
    silence_crash_panics();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = generated(tmp.path());
    // Three bytes: short of an offset, taken out by the repair.
    let consumers = consumer_offset(&data, "7", &[1, 2, 3]);
    let state = tmp.path().join("state");
    assert!(repair(&data, &state, &StdFs, Mode::TolerateTail));
    assert!(!consumers.join("7").exists(), "taken out");
    let crashing = Hooked(CrashBeforeRenamingIntoOffsets);
    let died = catch_unwind(AssertUnwindSafe(|| {
        restore_all_with(&data, &state, &crashing)
    }));
    assert!(died.is_err_and(|p| p.is::<Crash>()), "the restore dies");
    let names: Vec<_> = fs::read_dir(&consumers).unwrap().collect();
    assert!(names.is_empty(), "{names:?}");
    let tmp_name = data.join(P0).join(".offsets-consumers-7.iggy-warden-tmp");
    assert_eq!(fs::read(&tmp_name).unwrap(), [1, 2, 3]);
    restore_all(&data, &state);
    assert_eq!(fs::read(consumers.join("7")).unwrap(), [1, 2, 3]);
}
