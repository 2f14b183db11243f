//! The executor: performs repair actions so that a crash at any point converges when
//! the command runs again, and no byte is lost.
//!
//! A plan runs as phases, each a constant number of durability rounds for the whole
//! plan rather than syncs per repair: every intent journaled (one flush); every byte
//! the repairs remove copied into one run folder of the quarantine, one sync round,
//! then the run's one manifest and another round; every change applied, partitions
//! in parallel (a truncation's fsync left to the round; a rebuilt index written to
//! a temporary file, fsynced, and renamed); one sync round over the files and
//! folders that changed; every repair journaled done (one flush). A round of many
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

use crate::fsops::{file_digest, file_len, FileOps, SyncRound, SYNC_THREADS};
use crate::quarantine::{Finder, Quarantine, QuarantineError, SaveRequest};
use crate::rebuild::rebuild_index;
use journal::{ByteRange, Cut, JournalError, RepairAction, RepairId, SegmentKey};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Where repairs are journaled: implemented over the sled journal, and in memory for
/// tests. Every call returns only once what it wrote is durable.
pub trait RepairLog: Sync {
    /// Allocates ids for and records the intents of a whole plan. Every id is
    /// above `above` (the highest id the quarantine holds) and never handed out again.
    fn record_intents(
        &self,
        intents: &[(RepairAction, String)],
        above: Option<RepairId>,
    ) -> Result<Vec<RepairId>, JournalError>;
    fn record_done(&self, id: RepairId) -> Result<(), JournalError>;
    /// Records that every repair in `ids` is done, durable together (one flush).
    fn record_done_all(&self, ids: &[RepairId]) -> Result<(), JournalError> {
        ids.iter().try_for_each(|id| self.record_done(*id))
    }
    fn record_failed(&self, id: RepairId, error: &str) -> Result<(), JournalError>;
    /// Intents with neither done nor failed, oldest first.
    fn pending(&self) -> Result<Vec<(RepairId, RepairAction, String)>, JournalError>;
    /// Records that `state/log` was verified whole up to `valid_len`, where the entry
    /// with index `last_index` and stored checksum `last_checksum` ends (after an
    /// operator accepted a log shorter than the one verified before). A log without
    /// such a record (the default) just verifies the whole state log every time.
    fn record_state_log_verified(
        &self,
        _valid_len: u64,
        _last_index: u64,
        _last_checksum: u64,
    ) -> Result<(), JournalError> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// A restore of a repair whose quarantine holds nothing usable.
    #[error("repair {repair} has nothing in quarantine at {dir}")]
    NotInQuarantine { repair: RepairId, dir: PathBuf },
    /// A repair this build will not carry out as journaled or described (a path
    /// outside the data directory, a manifest that contradicts itself, a restore of
    /// a restore): an operator must look.
    #[error("repair {repair} {why}")]
    Refused { repair: RepairId, why: String },
    /// An action handed to the wrong part of the executor: a bug, not the data's.
    #[error("internal: {0}")]
    Internal(String),
    #[error(transparent)]
    Quarantine(#[from] QuarantineError),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error(
        "{path} changed since repair {repair} was planned (expected {expected}, found \
         {found}): refusing to touch it"
    )]
    Changed {
        repair: RepairId,
        path: PathBuf,
        expected: String,
        found: String,
    },
}

impl ExecError {
    /// Whether running again may finish the repair: an I/O or journal failure that
    /// can pass (a full disk freed, a device error gone), after which the journaled
    /// intents converge. Not a file that changed since the plan, a quarantine that
    /// refuses, or a permission or read-only file system, which need an operator.
    pub fn is_transient(&self) -> bool {
        let io_passes = |e: &io::Error| {
            !matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            )
        };
        match self {
            ExecError::Journal(_) => true,
            ExecError::Io { cause, .. } => io_passes(cause),
            ExecError::Quarantine(QuarantineError::Io { cause, .. }) => io_passes(cause),
            ExecError::Quarantine(_)
            | ExecError::Changed { .. }
            | ExecError::NotInQuarantine { .. }
            | ExecError::Refused { .. }
            | ExecError::Internal(_) => false,
        }
    }
}

fn sync_err((path, cause): (PathBuf, io::Error)) -> ExecError {
    ExecError::Io { path, cause }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExecError + '_ {
    move |cause| ExecError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

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

/// What a repair saves into quarantine before it acts: `range` of the file `rel`;
/// `created_file` when the repair creates `rel` (nothing is saved).
struct ToSave {
    rel: String,
    range: ByteRange,
    created_file: bool,
}

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
        self.run_all(pending)
    }

    /// Journals all intents (one flush), then performs them in phases (see
    /// [`Executor::run_phases`]).
    pub fn execute(&self, plan: Vec<(RepairAction, String)>) -> Result<Vec<Executed>, ExecError> {
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        self.fs.step("journal intents");
        let above = self.quarantine.highest_id()?;
        let ids = self.log.record_intents(&plan, above)?;
        let items = ids
            .into_iter()
            .zip(plan)
            .map(|(id, (action, reason))| (id, action, reason))
            .collect();
        self.run_all(items)
    }

    fn run_all(&self, items: Vec<Item>) -> Result<Vec<Executed>, ExecError> {
        if items.iter().all(|(_, action, _)| batched(action)) {
            return self.run_phases(items);
        }
        // A plan with restores or re-lays keeps its order, one action at a time.
        let mut out = Vec::with_capacity(items.len());
        for (id, action, reason) in items {
            if batched(&action) {
                out.extend(self.run_phases(vec![(id, action, reason)])?);
            } else {
                out.push(self.run_one(id, action, reason)?);
            }
        }
        Ok(out)
    }

    /// Runs journaled repairs as plan-wide phases, each a durability round:
    /// 1. (done by the caller) every intent journaled, one flush;
    /// 2. every byte the repairs remove copied into one run folder of the quarantine
    ///    and synced in one round, then the run's manifest written (fsynced, renamed)
    ///    and its folder synced in a second round;
    /// 3. every change applied, partitions in parallel on [`SYNC_THREADS`] threads,
    ///    each partition's repairs in plan order;
    /// 4. one sync round over the files and folders that changed;
    /// 5. every repair journaled done, one flush.
    ///
    /// Nothing is cut before its bytes and their manifest are durable (phase 3 starts
    /// after the rounds of phase 2), nothing is journaled done before its change is,
    /// and every phase looks at the files first, so a run killed anywhere converges
    /// when the pending intents run again.
    fn run_phases(&self, items: Vec<Item>) -> Result<Vec<Executed>, ExecError> {
        if items.is_empty() {
            return Ok(Vec::new());
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
        // What changed is made durable even when a repair failed: those that
        // finished are then done.
        self.fs.step("sync changes");
        round.run(self.fs).map_err(sync_err)?;
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
        self.fs.step("journal done");
        self.log.record_done_all(&done)?;
        if let Some((id, e)) = failure {
            return Err(self.failed(id, e));
        }
        Ok(items
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
            .collect())
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

    /// Phase 2 for one repair: what it will remove and must save first, or `None`
    /// when an earlier run saved it already (and maybe acted too).
    fn to_save(
        &self,
        id: RepairId,
        action: &RepairAction,
        finder: &Finder<'_>,
    ) -> Result<Option<ToSave>, ExecError> {
        let save = |rel: String, range: ByteRange, created_file: bool| {
            if finder.saved_before(id, action, &rel)? {
                return Ok(None);
            }
            Ok(Some(ToSave {
                rel,
                range,
                created_file,
            }))
        };
        if let Some(Cut {
            keep_len,
            original_len,
        }) = action.cut()
        {
            // `rel_path` names the log, the index or the state log, as the action says.
            let rel = action.rel_path();
            let path = self.data_dir.join(&rel);
            return match file_len(self.fs, &path).map_err(io_err(&path))? {
                Some(len) if len == original_len => {
                    save(rel, ByteRange::new(keep_len, original_len), false)
                }
                // Cut before a crash: its bytes were saved first, so they must be there.
                Some(len) if len == keep_len && finder.verified(id)? => Ok(None),
                found => Err(self.length_changed(id, &path, Some(original_len), found)),
            };
        }
        match action {
            RepairAction::RewriteIndex {
                segment,
                original_len,
                new_len,
                new_xxh3,
            } => {
                let rel = segment.rel_index();
                let path = self.data_dir.join(&rel);
                let current = file_digest(self.fs, &path).map_err(io_err(&path))?;
                if current == Some((*new_len, *new_xxh3)) && finder.verified(id)? {
                    return Ok(None);
                }
                if current.map(|(len, _)| len) != *original_len {
                    return Err(self.length_changed(
                        id,
                        &path,
                        *original_len,
                        current.map(|(len, _)| len),
                    ));
                }
                let range = ByteRange::new(0, original_len.unwrap_or(0));
                save(rel, range, original_len.is_none())
            }
            RepairAction::QuarantineFile { path: rel, len } => {
                let path = self.data_dir.join(rel);
                match file_len(self.fs, &path).map_err(io_err(&path))? {
                    Some(found) if found == *len => {
                        save(rel.clone(), ByteRange::new(0, *len), false)
                    }
                    None if finder.verified(id)? => Ok(None),
                    found => Err(self.length_changed(id, &path, Some(*len), found)),
                }
            }
            // Nothing saved, `created_file`: `restore` removes the folder again.
            RepairAction::CreateDir { path: rel } => save(rel.clone(), ByteRange::new(0, 0), true),
            // Truncations are handled above.
            RepairAction::TruncateLog { .. }
            | RepairAction::TruncateIndex { .. }
            | RepairAction::TruncateStateLog { .. }
            | RepairAction::Restore { .. }
            | RepairAction::Relay { .. } => Err(not_in_phases(id, action)),
        }
    }

    /// Phase 3 for one repair, once its save is durable: changes the file and adds
    /// what the change leaves to sync (the cut file, or the folder whose entries
    /// changed) to `round`; returns the bytes it put in quarantine. A file already
    /// changed by an earlier run is left as it is.
    fn act(
        &self,
        id: RepairId,
        action: &RepairAction,
        round: &SyncRound,
    ) -> Result<u64, ExecError> {
        let changed_in = |path: &Path| round.add_dir(path.parent().unwrap_or(self.data_dir));
        if let Some(Cut {
            keep_len,
            original_len,
        }) = action.cut()
        {
            let path = self.data_dir.join(action.rel_path());
            match file_len(self.fs, &path).map_err(io_err(&path))? {
                Some(len) if len == original_len => {
                    // The round makes the new length durable; no entry of its folder
                    // changed, so the folder needs no fsync.
                    self.fs
                        .truncate_in_round(&path, keep_len, round)
                        .map_err(io_err(&path))?;
                }
                Some(len) if len == keep_len => {}
                found => return Err(self.length_changed(id, &path, Some(original_len), found)),
            }
            return Ok(ByteRange::new(keep_len, original_len).len());
        }
        match action {
            RepairAction::RewriteIndex {
                segment,
                original_len,
                new_len,
                new_xxh3,
            } => {
                let saved = original_len.unwrap_or(0);
                let path = self.data_dir.join(segment.rel_index());
                let current = file_digest(self.fs, &path).map_err(io_err(&path))?;
                if current == Some((*new_len, *new_xxh3)) {
                    return Ok(saved);
                }
                if current.map(|(len, _)| len) != *original_len {
                    return Err(self.length_changed(
                        id,
                        &path,
                        *original_len,
                        current.map(|(len, _)| len),
                    ));
                }
                self.write_index(id, segment, &path, *new_len, *new_xxh3)?;
                changed_in(&path);
                Ok(saved)
            }
            RepairAction::QuarantineFile { path: rel, len } => {
                let path = self.data_dir.join(rel);
                match file_len(self.fs, &path).map_err(io_err(&path))? {
                    Some(found) if found == *len => {
                        self.fs.remove_file(&path).map_err(io_err(&path))?;
                        changed_in(&path);
                    }
                    None => {}
                    found => return Err(self.length_changed(id, &path, Some(*len), found)),
                }
                Ok(*len)
            }
            RepairAction::CreateDir { path: rel } => {
                let path = self.data_dir.join(rel);
                let is_dir = self.fs.metadata(&path).map_err(io_err(&path))?;
                if !is_dir.is_some_and(|m| m.is_dir()) {
                    self.fs.create_dir_all(&path).map_err(io_err(&path))?;
                    changed_in(&path);
                }
                Ok(0)
            }
            // Truncations are handled above.
            RepairAction::TruncateLog { .. }
            | RepairAction::TruncateIndex { .. }
            | RepairAction::TruncateStateLog { .. }
            | RepairAction::Restore { .. }
            | RepairAction::Relay { .. } => Err(not_in_phases(id, action)),
        }
    }

    /// Rebuilds the index of `segment` from its log into a temporary file (fsynced),
    /// checks it is the one planned, and renames it over `path`.
    fn write_index(
        &self,
        id: RepairId,
        segment: &SegmentKey,
        path: &Path,
        new_len: u64,
        new_xxh3: u64,
    ) -> Result<(), ExecError> {
        let log = self.data_dir.join(segment.rel_log());
        let log_len = file_len(self.fs, &log)
            .map_err(io_err(&log))?
            .ok_or_else(|| self.changed(id, &log, "a log to index".into(), None))?;
        let tmp = temp_index_path(path);
        let source = self.fs.open_read(&log).map_err(io_err(&log))?;
        let mut digest = None;
        let mut source = Some(source);
        self.fs
            .write_file(&tmp, &mut |w| {
                let src = source
                    .take()
                    .ok_or_else(|| io::Error::other("index written twice"))?;
                digest = Some(rebuild_index(src, &log, segment.start_offset, log_len, w)?);
                Ok(())
            })
            .map_err(io_err(&tmp))?;
        if digest.map(|d| (d.len, d.xxh3)) != Some((new_len, new_xxh3)) {
            let _ = self.fs.remove_file(&tmp);
            return Err(ExecError::Changed {
                repair: id,
                path: log,
                expected: format!("a log whose index has {new_len} bytes, XXH3 {new_xxh3:#018x}"),
                found: format!("{log_len} bytes indexing differently"),
            });
        }
        self.fs.rename(&tmp, path).map_err(io_err(path))
    }
}

/// Temporary name for a rebuilt index: hidden, and not ending in `.log` or `.index`,
/// which the server would try to load.
pub fn temp_index_path(index: &Path) -> PathBuf {
    let name = index
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    index.with_file_name(format!(".{name}.iggy-warden-tmp"))
}
/// A file length as `ExecError::Changed` reports it.
fn describe_len(len: Option<u64>) -> String {
    len.map_or("no file".into(), |n| format!("{n} bytes"))
}

/// An action handed to a phase that does not run it (truncations are handled before
/// the phases' matches; restores and re-lays run alone): a bug.
fn not_in_phases(id: RepairId, action: &RepairAction) -> ExecError {
    ExecError::Internal(format!("repair {id} ({action}) does not run in phases"))
}

#[cfg(test)]
mod tests;
