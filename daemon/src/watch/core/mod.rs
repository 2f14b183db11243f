//! The sidecar's core: one thread that owns the journal, the model and the inotify
//! watches, and turns the inbox into journal records.
//!
//! Everything that touches the journal or the data directory happens here, on one
//! thread, so there are no locks around the model and records are appended in the
//! order decisions were made. Each turn of the loop:
//!
//! 1. takes the whole inbox (events are coalesced there, see `events.rs`);
//! 2. applies structural changes at once — folders, created and removed segment files
//!    — so `SegmentOpened`, `SealIntent` and `SegmentDeleted` reach the journal within
//!    one turn (`layout_sync.rs`);
//! 3. verifies seals that are due (retrying with backoff while the server may still be
//!    finishing the index; `verify.rs`);
//! 4. every verify interval (100 ms by default), verifies the new bytes of the open
//!    segments that were written (only new bytes, see `tracker/`), and every
//!    checkpoint interval journals a `Checkpoint` for each one that advanced
//!    (`verify.rs`);
//! 5. hands the turn's records to the journal writer (`writer.rs`), which appends
//!    them in order on its own thread while the core goes on.
//!
//! Writes alone do not wake the core: they only mark a segment, and the verify tick
//! picks it up. That keeps a busy server from costing a wake-up per write.
//! Long work (full reconciliations, large scans) runs in bounded slices, beats the
//! watchdog heartbeat, and yields to commands: a stop or a journal release is never
//! stuck behind a scan.
//!
//! The loop that runs these turns is in `turn.rs`; lending the journal to `recover`
//! is in `lease.rs`. The core never writes under the data directory: it opens files
//! there read-only.

use crate::journal_open::OpenedJournal;
use crate::watch::alerts::StallWatch;
use crate::watch::coverage::Coverage;
use crate::watch::events::{max_watches_message, Shared};
use crate::watch::reconcile::{Model, Phase};
use crate::watch::stamp::StampQueue;
use crate::watch::state_log::StateLogWatch;
use crate::watch::status::Status;
use crate::watch::tracker::{verify_buffer, OpenFileCache};
use crate::watch::worklist::Worklist;
use crate::watch::writer::JournalWriter;
use anyhow::Context;
use journal::{PartitionId, Record};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use recovery::scan::ScanBuffer;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

mod turn;

/// Delays between seal verification attempts: the server writes the index after the
/// log, so a fresh predecessor can lag its successor for a moment.
pub(super) const SEAL_BACKOFF_MS: [u64; 6] = [0, 10, 50, 200, 500, 1000];

/// How long one slice of verification work may run before the core looks at its inbox.
pub(super) const WORK_SLICE: Duration = Duration::from_millis(200);

/// Records after which the journal is compacted (superseded checkpoints and deleted
/// segments dropped).
const COMPACT_EVERY: u64 = 500_000;

/// How long the core waits for a client to hand the journal back after the lease
/// ended (sled's lock release lags the client's exit a little).
pub(super) const REOPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the core tells the supervisor.
#[derive(Debug)]
pub enum CoreEvent {
    /// Start-up reconciliation is done: time for `READY=1`.
    Ready,
}

pub struct Settings {
    pub data_dir: PathBuf,
    /// Holds the journal (see `journal_open.rs`) and the control socket.
    pub state_dir: PathBuf,
    pub checkpoint_interval: Duration,
    /// How often written segments' new bytes are verified (at most
    /// `checkpoint_interval`): what decides how soon an alert follows the damage.
    pub verify_interval: Duration,
    /// How often the core proves it is alive when idle.
    pub beat_every: Duration,
    /// Checkpoint intervals a message written in part may stay so before the
    /// `stalled-write` alert.
    pub stall_checkpoints: u32,
    /// Bytes per second the coverage pass may read; 0: no limit.
    pub coverage_rate: u64,
    /// How long after its seal a segment's files are stamped (`stamp.rs`).
    pub stamp_after: Duration,
    /// How long a file must be unchanged before it is stamped.
    pub stamp_margin: Duration,
}

pub struct Core {
    pub(super) settings: Settings,
    pub(super) shared: Arc<Shared>,
    pub(super) status: Arc<Status>,
    events: UnboundedSender<CoreEvent>,
    watcher: RecommendedWatcher,
    /// `None` while another process holds the journal.
    pub(super) journal: Option<JournalWriter>,
    pub(super) model: Model,
    pub(super) outbox: Vec<Record>,
    /// Segments to verify, checkpoint or seal (`worklist.rs`).
    pub(super) work: Worklist,
    /// When written segments are verified next (at once while there is a backlog).
    pub(super) next_verify: Instant,
    /// When the next verification pass counts toward the stalled-write grace, which
    /// is stated in checkpoint intervals however often bytes are verified.
    pub(super) next_stall_count: Instant,
    /// When checkpoints are journaled next: at most once per interval.
    pub(super) next_checkpoint: Instant,
    since_compaction: u64,
    /// Records since freed memory was last given back (see [`release_freed_memory`]).
    since_trim: u64,
    /// A full reconciliation completed since start: `READY=1` may be sent.
    reconciled: bool,
    /// The one read buffer all verification goes through.
    pub(super) scan_buffer: ScanBuffer,
    /// Files of written segments kept open between verifications.
    pub(super) open_files: OpenFileCache,
    /// How far `state/log` is verified (`state_log.rs`).
    pub(super) state_log: StateLogWatch,
    /// Segments whose verification waits on a write in part (`alerts.rs`).
    pub(super) stalls: StallWatch,
    /// Open segments still to verify in the background, and the rate (`coverage.rs`).
    pub(super) coverage: Coverage,
    /// Sealed segments whose files are stamped later (`stamp.rs`).
    pub(super) stamps: StampQueue,
}

impl Core {
    pub fn new(
        settings: Settings,
        mut opened: OpenedJournal,
        shared: Arc<Shared>,
        status: Arc<Status>,
        events: UnboundedSender<CoreEvent>,
    ) -> anyhow::Result<Self> {
        let handler = crate::watch::events::Handler::new(settings.data_dir.clone(), shared.clone());
        let watcher = RecommendedWatcher::new(handler, notify::Config::default())
            .context("cannot start the inotify watcher")?;
        let model = Model::from_states(opened.load_states()?);
        let Some(journal) = opened.take() else {
            anyhow::bail!("internal: the sidecar's journal was not opened");
        };
        let settings_stall = settings.stall_checkpoints;
        let coverage_rate = settings.coverage_rate;
        let journal = JournalWriter::start(journal, status.clone())?;
        let mut core = Self {
            next_verify: Instant::now() + settings.verify_interval,
            next_stall_count: Instant::now() + settings.checkpoint_interval,
            next_checkpoint: Instant::now() + settings.checkpoint_interval,
            settings,
            shared,
            status,
            events,
            watcher,
            journal: Some(journal),
            model,
            outbox: Vec::new(),
            work: Worklist::default(),
            since_compaction: 0,
            since_trim: 0,
            reconciled: false,
            scan_buffer: verify_buffer(),
            open_files: OpenFileCache::default(),
            state_log: StateLogWatch::default(),
            stalls: StallWatch::new(settings_stall),
            coverage: Coverage::new(coverage_rate),
            stamps: StampQueue::default(),
        };
        core.load_alerts();
        Ok(core)
    }

    fn sealing_pending(&self) -> usize {
        self.work
            .sealing()
            .filter(|k| self.model.sealing(k).is_some_and(|s| s.pending()))
            .count()
    }

    pub(super) fn partition_dir(&self, pid: PartitionId) -> PathBuf {
        self.settings.data_dir.join(pid.rel_dir())
    }

    /// Forgets the watch on `dir` (gone, or no longer a folder), so that a new folder
    /// there is watched again; a watch that is already gone is no error.
    pub(super) fn unwatch_dir(&mut self, dir: &Path) {
        let _ = self.watcher.unwatch(dir);
    }

    /// Adds an inotify watch on `dir`; `Ok(false)` when it does not exist (any more)
    /// or cannot be watched (a layout anomaly: noted, never fatal). Only running out of
    /// inotify watches, a system limit, stops the sidecar.
    pub(super) fn watch_dir(&mut self, dir: &Path) -> anyhow::Result<bool> {
        match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => Ok(true),
            Err(e) => match &e.kind {
                notify::ErrorKind::MaxFilesWatch => anyhow::bail!(max_watches_message(Some(dir))),
                notify::ErrorKind::PathNotFound => Ok(false),
                notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound => Ok(false),
                _ => {
                    self.layout_anomaly(dir, "unwatchable", &e);
                    Ok(false)
                }
            },
        }
    }

    /// Compares the whole data directory with the journal (through the model) and
    /// journals every difference. Re-adds every watch first, so a lost watch is
    /// restored. `Ok(false)` when a command interrupted it.
    pub(super) fn full_reconcile(&mut self, why: &str) -> anyhow::Result<bool> {
        let started = Instant::now();
        // Events from here on are handled after this pass; the ones before are covered.
        self.shared.lock().clear_fs_work();
        // Files may have been replaced under their names while events were lost.
        self.open_files.clear();
        let root = self.settings.data_dir.clone();
        if !root.is_dir() {
            // Nothing to compare with: the journal keeps what it knew, and a RESCAN
            // once the directory is back brings it up to date.
            self.layout_anomaly(&root, "missing", &"the data directory is gone");
            self.reconciled = true;
            self.publish();
            return Ok(true);
        }
        self.layout_ok(&root);
        let mut found = Vec::new();
        self.watch_tree(&root, &mut found)?;
        let mut all: BTreeSet<PartitionId> = found.into_iter().collect();
        all.extend(self.model.partitions.keys().copied());
        for (n, pid) in all.into_iter().enumerate() {
            if n % 256 == 0 {
                self.status.beat();
                if self.shared.interrupted() {
                    self.flush()?;
                    return Ok(false);
                }
            }
            self.sync_one(pid, true)?;
            if self.outbox.len() >= crate::watch::writer::MESSAGE {
                self.flush()?;
            }
        }
        // Open segments resume from their checkpoints: the coverage pass verifies
        // what they have beyond it at its rate, or at once when the rate is unlimited
        // (recovery should not have to scan what a restart already saw). Sealing ones
        // are retried.
        let throttled = self.coverage.throttled();
        if throttled {
            self.start_coverage();
        }
        let model = &mut self.model;
        for (pid, part) in &mut model.partitions {
            for (start, phase) in part.segments.iter_mut() {
                let key = pid.segment(*start);
                match phase {
                    Phase::Open(_) if throttled => {
                        // Segments new to the journal too: a write marks them again.
                        self.work.verified(key);
                    }
                    Phase::Open(_) => {
                        self.work.written(key);
                    }
                    Phase::Sealing(s) => {
                        s.gave_up = false;
                        s.attempts = 0;
                        s.next_try = Instant::now();
                        self.work.seal(key);
                    }
                    Phase::Sealed { .. } => {}
                }
            }
        }
        self.next_verify = Instant::now();
        self.reload_state_log()?;
        self.flush()?;
        self.reconciled = true;
        Status::add(&self.status.reconciliations, 1);
        tracing::info!(
            reason = why,
            duration_ms = started.elapsed().as_millis() as u64,
            partitions = self.model.partitions.len(),
            segments = self.model.segment_count(),
            "reconciled journal and disk ({why}) in {} ms: {} partitions, {} segments",
            started.elapsed().as_millis(),
            self.model.partitions.len(),
            self.model.segment_count()
        );
        self.publish();
        Ok(true)
    }

    /// Hands the records decided so far to the journal writer.
    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let Some(journal) = &self.journal else {
            anyhow::bail!("internal: records to journal while the journal is released");
        };
        let records = std::mem::take(&mut self.outbox);
        self.since_compaction += records.len() as u64;
        self.since_trim += records.len() as u64;
        journal.send(records)
    }

    /// Flushes and waits until the journal holds everything decided so far.
    pub(super) fn sync(&mut self) -> anyhow::Result<()> {
        self.flush()?;
        match &self.journal {
            Some(j) => j.sync(),
            None => Ok(()),
        }
    }

    fn maybe_compact(&mut self) {
        if self.since_compaction < COMPACT_EVERY {
            return;
        }
        self.since_compaction = 0;
        if let Err(e) = self.sync() {
            tracing::warn!("journal compaction skipped: {e:#}");
            return;
        }
        if let Some(journal) = &self.journal {
            match journal.journal().compact() {
                Ok(r) => tracing::info!(
                    records_dropped = r.records_dropped,
                    "journal compacted: {} records dropped, {} remain",
                    r.records_dropped,
                    r.records_before.saturating_sub(r.records_dropped)
                ),
                Err(e) => tracing::warn!("journal compaction failed: {e}"),
            }
        }
    }

    fn publish(&mut self) {
        Status::set(&self.status.partitions, self.model.partitions.len() as u64);
        Status::set(&self.status.segments, self.model.segment_count() as u64);
        let pending = self.sealing_pending() as u64;
        Status::set(&self.status.sealing, pending);
        Status::set(&self.status.dirty, self.work.verify_backlog() as u64);
    }
}

#[cfg(test)]
mod tests;
