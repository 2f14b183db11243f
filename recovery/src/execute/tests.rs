//! The executor's unit tests, one per kind of run: each repairs a small damaged
//! partition through an in-memory journal, checks the files, the quarantine and the
//! journal, then appends a message and reads the partition back (after etcd's
//! `wal/repair_test.go`).

use super::*;
use crate::fsops::StdFs;
use crate::plan::Mode;
use crate::test_support::{entry, message, timestamp, Segment, TestDir, HEADER};
use journal::SegmentFile::{Index, Log};
use journal::{ByteRange, JournalError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// The journal's repair records, in memory.
#[derive(Default)]
struct MemLog {
    intents: Mutex<BTreeMap<RepairId, (RepairAction, String)>>,
    done: Mutex<BTreeSet<RepairId>>,
    failed: Mutex<BTreeMap<RepairId, String>>,
}

impl RepairLog for MemLog {
    fn record_intents(
        &self,
        intents: &[(RepairAction, String)],
        above: Option<RepairId>,
    ) -> Result<Vec<RepairId>, JournalError> {
        let mut all = self.intents.lock().unwrap();
        let highest = all
            .keys()
            .next_back()
            .copied()
            .max(above)
            .map_or(0, |id| id.0);
        let ids: Vec<RepairId> = (1..=intents.len() as u64)
            .map(|i| RepairId(highest + i))
            .collect();
        for (id, intent) in ids.iter().zip(intents) {
            all.insert(*id, intent.clone());
        }
        Ok(ids)
    }
    fn record_done(&self, id: RepairId) -> Result<(), JournalError> {
        self.done.lock().unwrap().insert(id);
        Ok(())
    }
    fn record_failed(&self, id: RepairId, error: &str) -> Result<(), JournalError> {
        self.failed.lock().unwrap().insert(id, error.to_string());
        Ok(())
    }
    fn pending(&self) -> Result<Vec<(RepairId, RepairAction, String)>, JournalError> {
        let (done, failed) = (self.done.lock().unwrap(), self.failed.lock().unwrap());
        Ok(self
            .intents
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| !done.contains(id) && !failed.contains_key(id))
            .map(|(id, (a, r))| (*id, a.clone(), r.clone()))
            .collect())
    }
}

/// A test directory, its quarantine and journal, and an executor over them.
struct Bench {
    dir: TestDir,
    state: tempfile::TempDir,
    log: MemLog,
}

impl Bench {
    fn new(dir: TestDir) -> Self {
        Self {
            dir,
            state: tempfile::tempdir().unwrap(),
            log: MemLog::default(),
        }
    }

    fn quarantine(&self) -> Quarantine {
        Quarantine::new(self.state.path())
    }

    fn run<T>(&self, f: impl FnOnce(&Executor<'_>) -> T) -> T {
        let quarantine = self.quarantine();
        f(&Executor {
            data_dir: self.dir.data_dir(),
            quarantine: &quarantine,
            fs: &StdFs,
            log: &self.log,
        })
    }

    fn plan(&self, mode: Mode) -> Vec<(RepairAction, String)> {
        let plan = self.dir.plan(mode);
        assert!(!plan.needs_operator(), "{:#?}", plan.refusals);
        plan.actions
            .into_iter()
            .map(|a| (a.action, a.reason))
            .collect()
    }

    fn read(&self, start: u64, kind: journal::SegmentFile) -> Vec<u8> {
        std::fs::read(self.dir.data_dir().join(self.dir.rel(start, kind))).unwrap()
    }

    /// Appends message `offset` to segment `start` as the server would, and checks
    /// that the partition then holds `offset + 1` valid messages and needs nothing.
    fn append_and_read_back(&self, start: u64, offset: u64) {
        use std::io::Write;
        let path = |kind| self.dir.data_dir().join(self.dir.rel(start, kind));
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(path(Log))
            .unwrap();
        log.write_all(&message(offset, b"appended")).unwrap();
        let end = log.metadata().unwrap().len() as u32;
        let mut index = std::fs::OpenOptions::new()
            .append(true)
            .open(path(Index))
            .unwrap();
        index
            .write_all(&entry((offset - start) as u32, end, timestamp(offset)))
            .unwrap();
        let analysis = self.dir.analysis();
        assert_eq!(analysis.valid_messages(), offset + 1);
        assert!(self.dir.plan(Mode::Absolute).actions.is_empty());
    }
}

/// Three whole messages and half of a fourth's header: a torn tail.
fn torn() -> (TestDir, Vec<u8>) {
    let mut seg = Segment::whole(0, 3);
    let whole = seg.log_mut().clone();
    seg.log_mut().extend(&message(3, b"torn")[..HEADER / 2]);
    (TestDir::new(&[seg]), whole)
}

#[test]
fn a_torn_tail_is_saved_then_cut_and_journaled_done() {
    let (dir, whole) = torn();
    let bench = Bench::new(dir);
    let damaged = bench.read(0, Log);
    let done = bench
        .run(|e| e.execute(bench.plan(Mode::TolerateTail)))
        .unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(bench.read(0, Log), whole);
    // The cut bytes are in the run's folder, under the repair's own id.
    let (home, m) = bench
        .quarantine()
        .load_verified(done[0].repair)
        .unwrap()
        .unwrap();
    assert!(home.run().is_some(), "{home:?}");
    assert_eq!(read_saved(&home, &m), &damaged[whole.len()..]);
    assert_eq!(
        m.range,
        ByteRange::new(whole.len() as u64, damaged.len() as u64)
    );
    assert_eq!(
        *bench.log.done.lock().unwrap(),
        BTreeSet::from([done[0].repair])
    );
    assert!(bench.log.pending().unwrap().is_empty());
    bench.append_and_read_back(0, 3);
}

#[test]
fn a_run_killed_after_its_intents_finishes_when_the_pending_intents_replay() {
    let (dir, whole) = torn();
    let bench = Bench::new(dir);
    let ids = bench
        .log
        .record_intents(&bench.plan(Mode::TolerateTail), None)
        .unwrap();
    assert_eq!(bench.read(0, Log).len(), whole.len() + HEADER / 2);
    let done = bench.run(|e| e.replay_pending()).unwrap();
    assert_eq!(done.iter().map(|d| d.repair).collect::<Vec<_>>(), ids);
    assert_eq!(bench.read(0, Log), whole);
    // Again: nothing is left to do, and nothing changes.
    assert!(bench.run(|e| e.replay_pending()).unwrap().is_empty());
    assert_eq!(bench.read(0, Log), whole);
    bench.append_and_read_back(0, 3);
}

#[test]
fn a_file_changed_since_the_plan_is_left_alone_and_the_repair_journaled_failed() {
    let (dir, _) = torn();
    let bench = Bench::new(dir);
    let plan = bench.plan(Mode::TolerateTail);
    // The server appended after the plan was made.
    let path = bench.dir.data_dir().join(bench.dir.rel(0, Log));
    let mut grown = bench.read(0, Log);
    grown.extend(b"more");
    std::fs::write(&path, &grown).unwrap();
    let err = bench.run(|e| e.execute(plan)).unwrap_err();
    assert!(matches!(err, ExecError::Changed { .. }), "{err}");
    assert!(!err.is_transient());
    assert_eq!(bench.read(0, Log), grown);
    let failed = bench.log.failed.lock().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(bench.quarantine().list().unwrap().is_empty());
}

#[test]
fn an_index_out_of_step_is_rebuilt_under_its_name_and_the_original_saved() {
    let mut seg = Segment::whole(0, 4);
    let good_index = seg.index_mut().clone();
    // The middle entries zeroed, as a crash before write-back leaves them.
    seg.index_mut()[16..48].fill(0);
    let bad_index = seg.index_mut().clone();
    let bench = Bench::new(TestDir::new(&[seg]));
    let done = bench
        .run(|e| e.execute(bench.plan(Mode::TolerateTail)))
        .unwrap();
    assert!(
        done.iter()
            .any(|d| matches!(d.action, RepairAction::RewriteIndex { .. })),
        "{done:?}"
    );
    assert_eq!(bench.read(0, Index), good_index);
    let saved: Vec<Vec<u8>> = done
        .iter()
        .map(|d| {
            let (home, m) = bench.quarantine().find(d.repair).unwrap().unwrap();
            read_saved(&home, &m)
        })
        .collect();
    assert!(saved.contains(&bad_index), "the damaged index is kept");
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(bench.dir.partition_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("iggy-warden-tmp")),
        "{names:?}"
    );
    bench.append_and_read_back(0, 4);
}

#[test]
fn restoring_a_run_newest_first_gives_the_damaged_files_back() {
    let mut seg = Segment::whole(0, 3);
    seg.log_mut().extend(&message(3, b"torn")[..HEADER + 1]);
    seg.index_mut().extend([7u8; 9]);
    let bench = Bench::new(TestDir::new(&[seg]));
    let (log, index) = (bench.read(0, Log), bench.read(0, Index));
    let done = bench
        .run(|e| e.execute(bench.plan(Mode::TolerateTail)))
        .unwrap();
    assert!(done.len() >= 2, "{done:?}");
    assert_ne!(
        (bench.read(0, Log), bench.read(0, Index)),
        (log.clone(), index.clone())
    );
    let undo = done
        .iter()
        .rev()
        .map(|d| (RepairAction::Restore { repair: d.repair }, "test".into()))
        .collect();
    bench.run(|e| e.execute(undo)).unwrap();
    assert_eq!((bench.read(0, Log), bench.read(0, Index)), (log, index));
}

/// The saved bytes of `m`: its slice of the run's packed file.
fn read_saved(home: &crate::quarantine::Home, m: &crate::quarantine::Manifest) -> Vec<u8> {
    let saved = home.saved(m);
    let bytes = std::fs::read(&saved.path).unwrap();
    bytes[saved.range.start as usize..saved.range.end as usize].to_vec()
}
