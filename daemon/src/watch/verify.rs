//! The sidecar's verification work, run by the core on its own thread: seals that
//! are due (scan the predecessor, compare its index, journal `Sealed` or an anomaly)
//! and the new bytes of written open segments, then their checkpoints. Verifying
//! runs in bounded slices so that commands and the watchdog are never kept waiting.

use crate::watch::alerts::{AlertKind, Finding};
use crate::watch::core::{Core, SEAL_BACKOFF_MS, WORK_SLICE};
use crate::watch::coverage;
use crate::watch::reconcile::Phase;
use crate::watch::stamp::{self, Taken};
use crate::watch::status::Status;
use crate::watch::tracker::{log_path, Advance, SealCheck, SCAN_BUDGET};
use journal::{PartitionId, Record, SegmentKey};
use std::time::{Duration, Instant};

/// One step of a segment's verification.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// The budget ended the read: there is more to verify now.
    more: bool,
}

/// Why a seal check gives up on a log that is not there (the segment was deleted:
/// not an alert).
const GONE: &str = "the log is gone";

impl Core {
    /// Verifies due seals; journals `Sealed`, or logs the anomaly once retries run out.
    pub(super) fn seal_due(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let now = Instant::now();
        let due: Vec<SegmentKey> = self
            .work
            .sealing()
            .filter(|k| self.model.sealing(k).is_some_and(|s| s.due(now)))
            .copied()
            .collect();
        for key in due {
            if started.elapsed() > WORK_SLICE {
                break;
            }
            self.status.beat();
            let dir = self.partition_dir(key.partition);
            let Some(Phase::Sealing(s)) = self.model.get_mut(&key) else {
                self.work.not_sealing(key);
                continue;
            };
            let check = match s.tracker.seal_check(&dir, &mut self.scan_buffer) {
                Ok(c) => c,
                Err(e) => SealCheck::NotYet(format!("cannot read it: {e}")),
            };
            match check {
                SealCheck::Complete(facts) => {
                    let record = Record::Sealed {
                        segment: key,
                        log_len: facts.log_len,
                        index_len: facts.index_len,
                        last_offset: facts.last.map(|l| l.offset),
                        last_checksum: facts.last.map(|l| l.checksum),
                        last_start: facts.last.map(|l| l.start),
                    };
                    tracing::debug!(segment = %key, "{record}");
                    let due = stamp::due(&dir, key, Instant::now(), self.settings.stamp_after);
                    self.stamps.push(due, (key, facts));
                    if let Some(phase) = self.model.get_mut(&key) {
                        *phase = Phase::Sealed {
                            log_len: facts.log_len,
                            index_len: facts.index_len,
                        };
                    }
                    self.outbox.push(record);
                    self.work.sealed(key);
                    self.note_settled(key, "the segment was sealed whole");
                    // Its last save landed after the retries ran out: whole after all.
                    self.clear_alerts(
                        key,
                        Some(AlertKind::IncompleteSealedSegment),
                        "the segment was sealed whole",
                    );
                }
                SealCheck::Partial => {
                    // More to scan; next turn continues without delay.
                    s.next_try = Instant::now();
                }
                SealCheck::NotYet(why) => {
                    // Damage found in its bytes does not heal: alerted at once. Anything
                    // else (a tail or an index still being written) gets the retries.
                    let found = s.tracker.finding;
                    let pos = s.tracker.pos;
                    if found.is_none() {
                        s.attempts += 1;
                    }
                    let retry = match found {
                        Some(_) => None,
                        None => SEAL_BACKOFF_MS.get(s.attempts as usize),
                    };
                    match retry {
                        Some(ms) => {
                            s.next_try = Instant::now() + Duration::from_millis(*ms);
                        }
                        None => {
                            let first = !s.gave_up;
                            s.gave_up = true;
                            if first {
                                Status::add(&self.status.anomalies, 1);
                            }
                            self.forget_pending(key);
                            if why == GONE {
                                continue;
                            }
                            let finding = found.unwrap_or(Finding {
                                kind: AlertKind::IncompleteSealedSegment,
                                byte: pos,
                                in_index: false,
                            });
                            self.raise(
                                key,
                                finding,
                                &format!(
                                    "cannot seal it: {why}; it stays unsealed in the journal and \
                                     recovery will check it"
                                ),
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Stamps the sealed segments that are due (`stamp.rs`), within the turn's work
    /// slice. Not while the journal is lent: `recover` refuses files another process
    /// holds open.
    pub(super) fn stamp_due(&mut self) {
        if self.journal.is_none() {
            return;
        }
        let now = Instant::now();
        // Tried again at a later turn, not in this one.
        let mut retries = Vec::new();
        while now.elapsed() <= WORK_SLICE {
            let Some((attempts, (key, facts))) = self.stamps.next_due(now) else {
                break;
            };
            self.status.beat();
            // Still the sealed segment this sidecar verified?
            match self.model.get(&key) {
                Some(Phase::Sealed { log_len, index_len })
                    if *log_len == facts.log_len && *index_len == facts.index_len => {}
                _ => continue,
            }
            let dir = self.partition_dir(key.partition);
            match stamp::take(&dir, key, &facts, self.settings.stamp_margin) {
                Ok(Taken::Stamps { log, index }) => self.outbox.push(Record::Stamped {
                    segment: key,
                    log,
                    index,
                }),
                // Again once the files have been unchanged for the margin, and not
                // before the server's writes to them are due to be written back.
                Ok(Taken::NotSettled) => {
                    let due = stamp::due(&dir, key, now, self.settings.stamp_after)
                        .max(now + self.settings.stamp_margin);
                    retries.push((due, attempts, (key, facts)));
                }
                Ok(Taken::Changed(why)) => {
                    tracing::debug!(segment = %key, "not stamped: {why}");
                }
                Err(e) => tracing::debug!(segment = %key, "not stamped: {e}"),
            }
        }
        for (due, attempts, sealed) in retries {
            self.stamps.retry(due, attempts, sealed);
        }
    }

    /// Verifies the new bytes of written open segments, a bounded slice at a time;
    /// true when work is left over (the next turn continues it at once).
    pub(super) fn verify_dirty(&mut self) -> bool {
        let started = Instant::now();
        let keys = self.work.to_verify();
        let mut backlog = false;
        for key in keys {
            if started.elapsed() > WORK_SLICE {
                return true;
            }
            if let Some(step) = self.verify_segment(key, SCAN_BUDGET, true) {
                backlog |= step.more;
            }
        }
        backlog
    }

    /// Steps the background coverage pass while the rate allows, for at most one
    /// slice (`coverage.rs`). Bytes it reads that were not cached are dropped from
    /// the page cache again.
    pub(super) fn cover(&mut self) {
        let started = Instant::now();
        while started.elapsed() < WORK_SLICE {
            let Some(key) = self.coverage.next(Instant::now()) else {
                return;
            };
            self.status.beat();
            let before = match self.model.get_mut(&key) {
                Some(Phase::Open(t)) if t.anomaly.is_none() => t.resumes_at(),
                _ => {
                    self.coverage.stepped(key, 0, true, &self.status.coverage);
                    continue;
                }
            };
            let log =
                recovery::fsops::open_read(&log_path(&self.partition_dir(key.partition), &key))
                    .ok();
            let cold = log.as_ref().is_some_and(|f| !coverage::cached(f, before));
            // Not kept open: the pass goes once over segments that are mostly not written,
            // which would fill the room the written ones need.
            let step = self.verify_segment(key, coverage::STEP, false);
            let after = match self.model.get_mut(&key) {
                Some(Phase::Open(t)) => t.pos,
                _ => before,
            };
            if let (Some(f), true) = (&log, cold && after > before) {
                coverage::drop_cached(f, before, after);
            }
            let done = step.is_none_or(|s| !s.more);
            self.coverage.stepped(
                key,
                after.saturating_sub(before),
                done,
                &self.status.coverage,
            );
        }
    }

    /// Verifies one open segment a step further, reading at most `budget` log bytes;
    /// `None` when it is not open (any more) or cannot be read now. `keep_open`: its
    /// files stay open for the next look (`OpenFileCache`).
    fn verify_segment(&mut self, key: SegmentKey, budget: u64, keep_open: bool) -> Option<Step> {
        self.status.beat();
        let dir = self.partition_dir(key.partition);
        let Some(Phase::Open(t)) = self.model.get_mut(&key) else {
            self.work.verified(key);
            return None;
        };
        let before = t.pos;
        let mut files = self.open_files.take(key);
        let advanced = t.advance_within(&dir, &mut files, &mut self.scan_buffer, budget);
        if keep_open
            && advanced.as_ref().is_ok_and(|o| {
                !matches!(
                    o.advance,
                    Advance::Gone | Advance::Anomaly(_) | Advance::Stalled
                )
            })
        {
            self.open_files.put(key, files);
        }
        let outcome = match advanced {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(segment = %key, error = %e, "cannot verify {key} yet: {e}");
                return None;
            }
        };
        let (pos, finding) = (t.pos, t.finding);
        let moved = t.pos != before || outcome.restarted;
        let needs_checkpoint = t.needs_checkpoint();
        if outcome.restarted {
            // The journaled checkpoint did not fit the files: a new incarnation,
            // so recovery does not trust the stale one.
            t.checkpointed = 0;
            tracing::info!(
                segment = %key,
                "segment {key}: journaled checkpoint does not fit the files; verifying from \
                 its start"
            );
            self.outbox.push(Record::SegmentOpened { segment: key });
        }
        let mut more = false;
        match outcome.advance {
            Advance::Partial => {
                // Keep it dirty: there is more to verify.
                more = true;
            }
            Advance::Anomaly(why) => {
                self.work.verified(key);
                self.forget_pending(key);
                Status::add(&self.status.anomalies, 1);
                let finding = finding.unwrap_or(Finding {
                    kind: AlertKind::CorruptData,
                    byte: pos,
                    in_index: false,
                });
                self.raise(
                    key,
                    finding,
                    &format!("{why}; verification stops there and recovery will check it"),
                );
            }
            Advance::Gone => {
                self.work.verified(key);
                self.forget_pending(key);
                let pid: PartitionId = key.partition;
                self.shared.post(|i| {
                    i.partitions.insert(pid);
                });
            }
            Advance::Waiting(why) => {
                self.work.verified(key);
                self.note_waiting(key, pos, outcome.log_len, outcome.index_len, &why);
            }
            Advance::UpToDate => {
                self.work.verified(key);
                self.note_settled(key, "the write completed");
            }
            Advance::Stalled => {
                self.work.verified(key);
            }
        }
        if moved || needs_checkpoint {
            self.work.advanced(key);
        }
        Some(Step { more })
    }

    /// Starts the coverage pass over the open segments, with what each has on disk
    /// beyond its journaled checkpoint.
    pub(super) fn start_coverage(&mut self) {
        let mut segments = Vec::new();
        for (pid, part) in self.model.partitions.iter_mut() {
            let dir = self.settings.data_dir.join(pid.rel_dir());
            for (start, phase) in part.segments.iter_mut() {
                if let Phase::Open(t) = phase {
                    let key = pid.segment(*start);
                    let on_disk = std::fs::metadata(log_path(&dir, &key)).map_or(0, |m| m.len());
                    segments.push((key, on_disk.saturating_sub(t.checkpointed)));
                }
            }
        }
        self.coverage.start(segments, &self.status.coverage);
    }

    /// One checkpoint interval's work, now (the control socket's `TICK`): the known
    /// partitions listed again (events may lag the writes), every open segment
    /// verified to the end of what is written, one attempt for each seal waiting for
    /// its retry, the pass counted for stalled writes, checkpoints, and everything
    /// flushed to the journal.
    pub(super) fn tick_now(&mut self) -> anyhow::Result<()> {
        let pids: Vec<PartitionId> = self.model.partitions.keys().copied().collect();
        for pid in pids {
            self.sync_one(pid, false)?;
        }
        let now = Instant::now();
        for (pid, part) in self.model.partitions.iter_mut() {
            for (start, phase) in part.segments.iter_mut() {
                let key = pid.segment(*start);
                match phase {
                    Phase::Open(_) => {
                        self.work.written(key);
                    }
                    Phase::Sealing(s) if !s.gave_up => {
                        s.next_try = now;
                        self.work.seal(key);
                    }
                    _ => {}
                }
            }
        }
        // Seals first, as a turn of the loop does; a seal that needs more scanning
        // is continued at once.
        loop {
            self.seal_due()?;
            let now = Instant::now();
            let more = self
                .work
                .sealing()
                .any(|k| self.model.sealing(k).is_some_and(|s| s.due(now)));
            if !more {
                break;
            }
        }
        self.end_verify_pass();
        self.begin_verify_pass(true);
        while self.verify_dirty() {}
        self.end_verify_pass();
        self.checkpoint_all();
        let now = Instant::now();
        self.next_verify = now + self.settings.verify_interval;
        self.next_stall_count = now + self.settings.checkpoint_interval;
        self.next_checkpoint = self.next_stall_count;
        self.sync()
    }

    /// Journals a checkpoint for every open segment verified past its last one.
    pub(super) fn checkpoint_all(&mut self) {
        let keys = self.work.take_advanced();
        for key in keys {
            let Some(Phase::Open(t)) = self.model.get_mut(&key) else {
                continue;
            };
            if !t.needs_checkpoint() {
                continue;
            }
            t.checkpointed = t.pos;
            self.outbox.push(Record::Checkpoint {
                segment: key,
                valid_len: t.pos,
                next_offset: t.next_offset,
            });
        }
    }
}

impl Core {
    /// Journals how far `state/log` is verified, when that moved on.
    pub(super) fn check_state_log(&mut self) {
        if let Some(record) = self.state_log.check(&self.settings.data_dir) {
            self.outbox.push(record);
        }
        let unreplayable = self.state_log.unreplayable().is_some();
        self.status
            .state_log_unreplayable
            .store(unreplayable, std::sync::atomic::Ordering::Relaxed);
    }

    /// Takes the journal's mark again (after a handover it may be gone), then checks.
    pub(super) fn reload_state_log(&mut self) -> anyhow::Result<()> {
        self.sync()?;
        if let Some(writer) = &self.journal {
            self.state_log.reload(writer.journal());
        }
        self.check_state_log();
        Ok(())
    }
}
