//! `recover` after N torn partitions: wall time, the fsyncs it makes and the ratio to
//! the dry run's analysis, in one run; then the same with every fsync slowed to 1 ms.
//!
//! Generates a data directory of N partitions (one segment, 40 messages of 100-300
//! bytes each, and the offsets folders), tears the tail of every log
//! (`Fault::TornLogTail`: each partition needs its log and its index cut), and for
//! each N:
//! - times the dry run (`pipeline::analyze` + `plan`, what `replay` without
//!   `--apply` runs, with no journal: a full scan) on the page-cached directory;
//!   the copies below are written back (`sync`) before they are repaired, as after a
//!   reboot, so that a sync round pays only for what the repair writes;
//! - times `pipeline::run` (the whole `recover`) on a copy, through a `FileOps` that
//!   counts every fsync (each file operation that writes fsyncs its file; each
//!   `sync_dir` is one, and so is each `sync_fs`, which a large round makes instead
//!   of its folder fsyncs) and a `RepairLog` that counts journal flushes; it prints
//!   the time of each executor phase and of each `syncfs` (the last one runs
//!   beside the check after the repair, so the phases alone do not show it);
//! - times `pipeline::run` again on another copy, with a `FileOps` that sleeps 1 ms
//!   before every fsync and every journal flush (a slow disk). The executor's sync
//!   pool has `fsops::SYNC_THREADS` threads.
//!
//! `RECOVER_BENCH_N` is a comma-separated list of N (default `100,1000`);
//! `RECOVER_BENCH_MESSAGES` the messages per partition (default 40: the cost per
//! partition shows; 13,000 in 384 partitions is 1 GiB, the directory, where
//! the cost per byte shows).
//! Run: `cargo bench -p iggy-warden-recovery --bench recover_rounds`

use harness::{apply, DataDirBuilder, Fault, PartitionSpec};
use journal::{Journal, JournalError, RepairAction, RepairId};
use recovery::execute::{Executor, RepairLog};
use recovery::fsops::hooked::{Hook, Hooked, Op, Verdict};
use recovery::fsops::SYNC_THREADS;
use recovery::pipeline::{analyze, run, Quiet, Request};
use recovery::plan::{plan, Mode};
use recovery::quarantine::Quarantine;
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts the fsyncs of the real file system (as [`Hooked`]); with `delay`, each
/// fsync waits that long first.
struct Counting {
    file_syncs: AtomicU64,
    dir_syncs: AtomicU64,
    delay: Option<Duration>,
    /// When the executor reached each of its named steps (phase boundaries).
    steps: std::sync::Mutex<Vec<(String, Instant)>>,
    /// When the `syncfs` under way started, and how long each took: the last one
    /// overlaps the check after the repair, so the phases alone do not show it.
    syncfs: std::sync::Mutex<(Option<Instant>, Vec<f64>)>,
}

impl Counting {
    fn new(delay: Option<Duration>) -> Self {
        Self {
            file_syncs: AtomicU64::new(0),
            dir_syncs: AtomicU64::new(0),
            delay,
            steps: Default::default(),
            syncfs: Default::default(),
        }
    }
}

impl Hook for Counting {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        if op.syncs() {
            // A syncfs is counted with the folder syncs: it stands for a whole
            // round of them.
            let count = match op {
                Op::SyncDir { .. } | Op::SyncFs { .. } => &self.dir_syncs,
                _ => &self.file_syncs,
            };
            count.fetch_add(1, Ordering::Relaxed);
            if let Some(d) = self.delay {
                std::thread::sleep(d);
            }
        }
        if let Op::SyncFs { .. } = op {
            self.syncfs.lock().unwrap_or_else(|e| e.into_inner()).0 = Some(Instant::now());
        }
        Ok(Verdict::Run)
    }
    fn after(&self, op: Op<'_>) {
        if let Op::SyncFs { .. } = op {
            let mut syncfs = self.syncfs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(started) = syncfs.0.take() {
                syncfs.1.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    fn step(&self, what: &str) {
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        steps.push((what.to_string(), Instant::now()));
    }
}

/// The journal, counting its flushes (every call that writes flushes once); with
/// `delay`, each waits that long first.
struct CountingLog<'a> {
    journal: &'a Journal,
    flushes: AtomicU64,
    delay: Option<Duration>,
}

impl CountingLog<'_> {
    fn flush(&self) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = self.delay {
            std::thread::sleep(d);
        }
    }
}

impl RepairLog for CountingLog<'_> {
    fn record_intents(
        &self,
        intents: &[(RepairAction, String)],
        above: Option<RepairId>,
    ) -> Result<Vec<RepairId>, JournalError> {
        self.flush();
        self.journal.record_intents(intents, above)
    }
    fn record_done(&self, id: RepairId) -> Result<(), JournalError> {
        self.flush();
        self.journal.record_done(id)
    }
    fn record_done_all(&self, ids: &[RepairId]) -> Result<(), JournalError> {
        if !ids.is_empty() {
            self.flush();
        }
        self.journal.record_done_all(ids)
    }
    fn record_failed(&self, id: RepairId, error: &str) -> Result<(), JournalError> {
        self.flush();
        self.journal.record_failed(id, error)
    }
    fn pending(&self) -> Result<Vec<(RepairId, RepairAction, String)>, JournalError> {
        self.journal.pending()
    }
}

struct Measured {
    secs: f64,
    /// Milliseconds in the analysis and plan, then in each executor phase.
    phases: Vec<(String, f64)>,
    /// Milliseconds of each `syncfs`, in order.
    syncfs_ms: Vec<f64>,
    file_syncs: u64,
    dir_syncs: u64,
    flushes: u64,
    repairs: usize,
}

/// Runs `recover` (tolerate-tail, no journal history) on `data`.
fn recover(data: &Path, state: &Path, delay: Option<Duration>) -> Measured {
    let journal = Journal::open(&state.join("journal")).expect("journal");
    let counting = Counting::new(delay);
    let fs = Hooked(&counting);
    let log = CountingLog {
        journal: &journal,
        flushes: AtomicU64::new(0),
        delay,
    };
    let quarantine = Quarantine::new(state);
    let exec = Executor {
        data_dir: data,
        quarantine: &quarantine,
        fs: &fs,
        log: &log,
    };
    let known = HashMap::new();
    let started = Instant::now();
    let outcome = run(
        &exec,
        &Request {
            mode: Mode::TolerateTail,
            known: &known,
            state_log: None,
            offsets: None,
            only: &|_| true,
            progress: &Quiet,
        },
    )
    .expect("recover");
    let ended = Instant::now();
    let secs = (ended - started).as_secs_f64();
    assert!(outcome.ready_to_start);
    let steps = counting
        .steps
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut phases = Vec::new();
    let mut from = ("analysis and plan".to_string(), started);
    for (name, at) in steps.into_iter().chain([("end".to_string(), ended)]) {
        phases.push((from.0, (at - from.1).as_secs_f64() * 1e3));
        from = (name, at);
    }
    let syncfs_ms = counting
        .syncfs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .1
        .clone();
    Measured {
        secs,
        phases,
        syncfs_ms,
        file_syncs: counting.file_syncs.load(Ordering::Relaxed),
        dir_syncs: counting.dir_syncs.load(Ordering::Relaxed),
        flushes: log.flushes.load(Ordering::Relaxed),
        repairs: outcome.actions.len(),
    }
}

fn main() {
    let ns: Vec<u32> = std::env::var("RECOVER_BENCH_N")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let messages: usize = std::env::var("RECOVER_BENCH_MESSAGES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(40);
    let tmp = tempfile::tempdir_in(std::env::var_os("RECOVER_BENCH_DIR").unwrap_or(".".into()))
        .expect("tmp");
    println!("sync pool: {SYNC_THREADS} threads; slow disk: 1 ms per fsync and per journal flush");
    for n in ns {
        let source = tmp.path().join(format!("source-{n}"));
        let mut builder = DataDirBuilder::new().seed(u64::from(n));
        for p in 0..n {
            builder = builder.partition(
                PartitionSpec::new(0, p / 1000, p % 1000)
                    .messages(messages, 100..300, 0)
                    .segment_size(1 << 20),
            );
        }
        builder.build(&source);
        for p in 0..n {
            let rel = format!("streams/0/topics/{}/partitions/{}", p / 1000, p % 1000);
            // As the server leaves them: without the offsets folders, recover would
            // create them, three repairs more per partition.
            for sub in ["offsets/consumers", "offsets/groups"] {
                std::fs::create_dir_all(source.join(&rel).join(sub)).expect("offsets");
            }
            apply(&source, &rel, Fault::TornLogTail).expect("fault");
        }
        let copy = |name: &str| {
            let data = tmp.path().join(format!("{name}-{n}"));
            harness::copy_dir(&source, &data).expect("copy");
            data
        };
        let (fast, slow) = (copy("fast"), copy("slow"));
        // After a crash nothing is waiting to be written back: the copies must not
        // be either, or the first sync round would pay for writing them.
        std::process::Command::new("sync").status().expect("sync");

        // The dry run, twice (the first warms the cache), on the source.
        let mut dry = f64::MAX;
        let mut repairs = 0;
        for _ in 0..2 {
            let started = Instant::now();
            let (analysis, _) =
                analyze(&source, &HashMap::new(), None, None, &|_| true, &Quiet).expect("analysis");
            let planned = plan(&analysis, Mode::TolerateTail).expect("plan");
            dry = dry.min(started.elapsed().as_secs_f64());
            repairs = planned.actions.len();
            assert!(
                repairs >= n as usize,
                "{repairs} repairs for {n} torn partitions"
            );
        }
        let m = recover(&fast, &tmp.path().join(format!("state-fast-{n}")), None);
        let s = recover(
            &slow,
            &tmp.path().join(format!("state-slow-{n}")),
            Some(Duration::from_millis(1)),
        );
        assert_eq!((m.repairs, s.repairs), (repairs, repairs));
        println!(
            "N={n} ({repairs} repairs): dry run {:.1} ms; recover {:.1} ms = {:.2}x the dry run; \
             {} file fsyncs + {} folder fsyncs + {} journal flushes \
             ({:.2} per partition); slow disk: recover {:.1} ms ({:.1} ms more), \
             {} fsyncs + flushes that one at a time would take {:.0} ms",
            dry * 1e3,
            m.secs * 1e3,
            m.secs / dry,
            m.file_syncs,
            m.dir_syncs,
            m.flushes,
            (m.file_syncs + m.dir_syncs + m.flushes) as f64 / n as f64,
            s.secs * 1e3,
            (s.secs - m.secs) * 1e3,
            s.file_syncs + s.dir_syncs + s.flushes,
            (s.file_syncs + s.dir_syncs + s.flushes) as f64,
        );
        let phases: Vec<String> = m
            .phases
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.1}"))
            .collect();
        println!("  where recover's time went (ms): {}", phases.join(", "));
        let syncfs: Vec<String> = m.syncfs_ms.iter().map(|ms| format!("{ms:.1}")).collect();
        println!("  each syncfs, in order (ms): {}", syncfs.join(", "));
    }
}
