//! The executor: performs repair actions so that a crash at any point converges when
//! the command runs again, and no byte is lost.
//!
//! A plan runs as phases, each a constant number of durability rounds for the whole
//! plan rather than syncs per repair: every intent journaled (one flush); every byte
//! the repairs remove copied into one run folder of the quarantine, one sync round
//! (the run's one manifest written meanwhile, and named after it), then another
//! round; every change applied, partitions in parallel (a truncation's fsync left to
//! the round; a rebuilt index written to a temporary file, fsynced, and renamed);
//! one sync round over the files and folders that changed, the check after the
//! repair running meanwhile; every repair journaled done (one flush). A round of many
//! paths is one `syncfs` per file system, so a slow disk's wait grows with the
//! rounds, not with the repairs.
//!
//! A rerun first executes the intents that have no `done`: each action looks at the
//! file and knows whether it happened, is half-way (its quarantine copy is complete
//! or not) or faces a file changed by someone else, in which case it stops with an
//! error rather than guess. What a power loss takes back is what no round made
//! durable yet: a copy with no manifest (written again), or a cut not yet durable
//! (made again, its bytes already saved). A restore and a salvage re-lay still run
//! one action at a time, each with its own syncs.

mod drop_entries;
mod error;
mod log;
mod phases;

pub(crate) use error::io_err;
pub use error::ExecError;
use error::{describe_len, sync_err};
pub use log::RepairLog;

use crate::fsops::{FileOps, SyncRound, SYNC_THREADS};
use crate::quarantine::{Quarantine, SaveRequest};
use journal::{RepairAction, RepairId};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// One executed action, for reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Executed {
    pub repair: RepairId,
    pub action: RepairAction,
    pub reason: String,
    /// Bytes moved into quarantine.
    pub quarantined_bytes: u64,
}

pub struct Executor<'a> {
    pub data_dir: &'a Path,
    pub quarantine: &'a Quarantine,
    pub fs: &'a dyn FileOps,
    pub log: &'a dyn RepairLog,
}

/// One journaled repair: its id, what it does and why.
type Item = (RepairId, RepairAction, String);

/// Whether the executor runs `action` in plan-wide phases. A restore and a salvage
/// re-lay save and sync as they go, one action at a time.
fn batched(action: &RepairAction) -> bool {
    !matches!(
        action,
        RepairAction::Restore { .. } | RepairAction::Relay { .. }
    )
}

/// The partition folder `action` works in (`streams/S/topics/T/partitions/P`), or
/// `""` for anything outside one (the state files): the repairs of one partition
/// run in plan order, different partitions in parallel.
fn partition_key(action: &RepairAction) -> String {
    let rel = action.rel_path();
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["streams", s, "topics", t, "partitions", p, ..] => {
            format!("streams/{s}/topics/{t}/partitions/{p}")
        }
        _ => String::new(),
    }
}

impl Executor<'_> {
    /// Finishes every journaled repair that has not completed.
    pub fn replay_pending(&self) -> Result<Vec<Executed>, ExecError> {
        let pending = self.log.pending()?;
        self.run_all(pending, || ()).map(|(executed, ())| executed)
    }

    /// Journals all intents (one flush), then performs them in phases (see
    /// [`Executor::run_phases`]).
    pub fn execute(&self, plan: Vec<(RepairAction, String)>) -> Result<Vec<Executed>, ExecError> {
        self.execute_alongside(plan, || ())
            .map(|(executed, ())| executed)
    }

    /// [`Executor::execute`], running `alongside` once the changes are applied: while
    /// the last sync round writes them back, when the plan runs in phases. It may
    /// read what the repairs wrote (`recover` checks the repaired partitions there),
    /// never change it. It does not run when a repair fails.
    pub fn execute_alongside<T>(
        &self,
        plan: Vec<(RepairAction, String)>,
        alongside: impl FnOnce() -> T,
    ) -> Result<(Vec<Executed>, T), ExecError> {
        if plan.is_empty() {
            return Ok((Vec::new(), alongside()));
        }
        self.fs.step("journal intents");
        let above = self.quarantine.highest_id()?;
        let ids = self.log.record_intents(&plan, above)?;
        let items = ids
            .into_iter()
            .zip(plan)
            .map(|(id, (action, reason))| (id, action, reason))
            .collect();
        self.run_all(items, alongside)
    }

    fn run_all<T>(
        &self,
        items: Vec<Item>,
        alongside: impl FnOnce() -> T,
    ) -> Result<(Vec<Executed>, T), ExecError> {
        if items.iter().all(|(_, action, _)| batched(action)) {
            return self.run_phases(items, alongside);
        }
        // A plan with restores or re-lays keeps its order, one action at a time.
        let mut out = Vec::with_capacity(items.len());
        for (id, action, reason) in items {
            if batched(&action) {
                out.extend(self.run_phases(vec![(id, action, reason)], || ())?.0);
            } else {
                out.push(self.run_one(id, action, reason)?);
            }
        }
        Ok((out, alongside()))
    }

    /// Runs journaled repairs as plan-wide phases, each a durability round:
    /// 1. (done by the caller) every intent journaled, one flush;
    /// 2. every byte the repairs remove copied into one run folder of the quarantine
    ///    and synced in one round, the run's manifest written meanwhile (fsynced) and
    ///    renamed into place after it, its folder synced in a second round;
    /// 3. every change applied, partitions in parallel on [`SYNC_THREADS`] threads,
    ///    each partition's repairs in plan order;
    /// 4. one sync round over the files and folders that changed, `alongside`
    ///    running meanwhile (the round mostly waits for the disk) unless a change
    ///    failed;
    /// 5. every repair journaled done, one flush.
    ///
    /// Nothing is cut before its bytes and their manifest are durable (phase 3 starts
    /// after the rounds of phase 2), nothing is journaled done before its change is,
    /// and every phase looks at the files first, so a run killed anywhere converges
    /// when the pending intents run again.
    fn run_phases<T>(
        &self,
        items: Vec<Item>,
        alongside: impl FnOnce() -> T,
    ) -> Result<(Vec<Executed>, T), ExecError> {
        if items.is_empty() {
            return Ok((Vec::new(), alongside()));
        }
        for (id, action, _) in &items {
            if !crate::quarantine::action_paths_are_plain(action) {
                let e = ExecError::Refused {
                    repair: *id,
                    why: format!(
                        "names a path outside the data directory ({}); refusing it",
                        action.rel_path()
                    ),
                };
                return Err(self.failed(*id, e));
            }
        }
        let round = SyncRound::new();
        self.fs.step("save to quarantine");
        let finder = match self.quarantine.finder() {
            Ok(f) => f,
            Err(e) => {
                let id = items.first().map_or(RepairId(0), |(id, _, _)| *id);
                return Err(self.failed(id, e.into()));
            }
        };
        // What each repair still has to save: a rerun finds the earlier saves.
        let to_save = crate::parallel::map_ordered(&items, SYNC_THREADS, |(id, action, _)| {
            self.to_save(*id, action, &finder).map_err(|e| (*id, e))
        });
        let to_save = match to_save {
            Ok(t) => t,
            Err((id, e)) => return Err(self.failed(id, e)),
        };
        let requests: Vec<SaveRequest<'_>> = items
            .iter()
            .zip(&to_save)
            .filter_map(|((id, action, reason), save)| {
                save.as_ref().map(|s| SaveRequest {
                    id: *id,
                    action,
                    reason,
                    data_dir: self.data_dir,
                    file: &s.rel,
                    range: s.range,
                    created_file: s.created_file,
                })
            })
            .collect();
        if let Err((id, e)) = self.quarantine.save_run(self.fs, &requests, &round) {
            // What was saved stays: a rerun writes the run folder again.
            let _ = round.run(self.fs);
            return Err(self.failed(id, e.into()));
        }
        self.fs.step("sync quarantine");
        round.run(self.fs).map_err(sync_err)?;

        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_of: std::collections::HashMap<String, usize> = Default::default();
        for (i, (_, action, _)) in items.iter().enumerate() {
            let next = groups.len();
            let g = *group_of.entry(partition_key(action)).or_insert(next);
            match groups.get_mut(g) {
                Some(group) => group.push(i),
                None => groups.push(vec![i]),
            }
        }
        self.fs.step("apply changes");
        let stop = AtomicBool::new(false);
        let acted = crate::parallel::map_ordered(&groups, SYNC_THREADS, |group| {
            let mut out = Vec::with_capacity(group.len());
            for &i in group {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Some((id, action, _)) = items.get(i) else {
                    continue;
                };
                let result = self.act(*id, action, &round);
                if result.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                out.push((i, result));
            }
            Ok::<_, std::convert::Infallible>(out)
        })
        .unwrap_or_else(|never| match never {});
        let mut quarantined = vec![None; items.len()];
        let mut failure = None;
        for (i, result) in acted.into_iter().flatten() {
            match result {
                Ok(bytes) => {
                    if let Some(slot) = quarantined.get_mut(i) {
                        *slot = Some(bytes);
                    }
                }
                Err(e) => {
                    let id = items.get(i).map(|(id, _, _)| *id);
                    match (&failure, id) {
                        (None, Some(id)) => failure = Some((id, e)),
                        // Another partition's failure in the same phase: journaled too.
                        (Some(_), Some(id)) => {
                            let _ = self.log.record_failed(id, &e.to_string());
                        }
                        (_, None) => {}
                    }
                }
            }
        }
        let done: Vec<RepairId> = items
            .iter()
            .zip(&quarantined)
            .filter(|(_, q)| q.is_some())
            .map(|((id, _, _), _)| *id)
            .collect();
        // What changed is made durable even when a repair failed: those that
        // finished are then done. Nothing runs beside that round: the run fails.
        self.fs.step("sync changes");
        if let Some((id, e)) = failure {
            round.run(self.fs).map_err(sync_err)?;
            self.fs.step("journal done");
            self.log.record_done_all(&done)?;
            return Err(self.failed(id, e));
        }
        let (synced, beside) = round.run_beside(self.fs, alongside);
        synced.map_err(sync_err)?;
        self.fs.step("journal done");
        self.log.record_done_all(&done)?;
        let executed = items
            .into_iter()
            .zip(quarantined)
            .filter_map(|((repair, action, reason), q)| {
                q.map(|quarantined_bytes| Executed {
                    repair,
                    action,
                    reason,
                    quarantined_bytes,
                })
            })
            .collect();
        Ok((executed, beside))
    }

    /// Journals that repair `id` failed (best effort: failing to journal the
    /// failure must not hide the failure itself) and returns the error.
    fn failed(&self, id: RepairId, e: ExecError) -> ExecError {
        let _ = self.log.record_failed(id, &e.to_string());
        e
    }

    /// A restore or a re-lay, which saves, acts and syncs on its own, then is
    /// journaled done.
    fn run_one(
        &self,
        id: RepairId,
        action: RepairAction,
        reason: String,
    ) -> Result<Executed, ExecError> {
        let result = if !crate::quarantine::action_paths_are_plain(&action) {
            Err(ExecError::Refused {
                repair: id,
                why: format!(
                    "names a path outside the data directory ({}); refusing it",
                    action.rel_path()
                ),
            })
        } else {
            match &action {
                RepairAction::Restore { repair } => self.restore(id, *repair),
                RepairAction::Relay { .. } => self.relay(id, &action, &reason),
                _ => Err(ExecError::Internal(format!(
                    "repair {id} ({action}) belongs in a phased run"
                ))),
            }
        };
        match result {
            Ok(quarantined_bytes) => {
                self.fs.step("journal done");
                self.log.record_done(id)?;
                Ok(Executed {
                    repair: id,
                    action,
                    reason,
                    quarantined_bytes,
                })
            }
            Err(e) => Err(self.failed(id, e)),
        }
    }

    pub(crate) fn changed(
        &self,
        id: RepairId,
        path: &Path,
        expected: String,
        found: Option<u64>,
    ) -> ExecError {
        ExecError::Changed {
            repair: id,
            path: path.to_path_buf(),
            expected,
            found: describe_len(found),
        }
    }

    /// [`Executor::changed`] for a file that no longer has the length the plan saw
    /// (`None`: no file).
    pub(crate) fn length_changed(
        &self,
        id: RepairId,
        path: &Path,
        expected: Option<u64>,
        found: Option<u64>,
    ) -> ExecError {
        self.changed(id, path, describe_len(expected), found)
    }
}

#[cfg(test)]
mod tests;
