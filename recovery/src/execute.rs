//! The executor: performs repair actions so that a crash at any point converges when
//! the command runs again, and no byte is lost.
//!
//! For a plan: every intent is journaled (and flushed) before any file is touched.
//! Then for each action: save what it removes into quarantine (fsync file and folder),
//! act (truncate, or write a temporary file and rename it; fsync file and folder), and
//! journal that it is done. A rerun first executes the intents that have no `done`:
//! each action looks at the file and knows whether it happened, is half-way (its
//! quarantine copy is complete or not) or faces a file changed by someone else, in
//! which case it stops with an error rather than guess.

use crate::fsops::{file_digest, file_len, FileOps};
use crate::quarantine::{Quarantine, QuarantineError};
use crate::rebuild::rebuild_index;
use journal::{ByteRange, RepairAction, RepairId, SegmentKey};
use std::io;
use std::path::{Path, PathBuf};

/// Where repairs are journaled: implemented over the sled journal, and in memory for
/// tests. Every call returns only once what it wrote is durable.
pub trait RepairLog {
    /// Allocates ids for and records the intents of a whole plan. Every id is
    /// above `above` (the highest id the quarantine holds) and never handed out again.
    fn record_intents(
        &self,
        intents: &[(RepairAction, String)],
        above: Option<RepairId>,
    ) -> Result<Vec<RepairId>, String>;
    fn record_done(&self, id: RepairId) -> Result<(), String>;
    fn record_failed(&self, id: RepairId, error: &str) -> Result<(), String>;
    /// Intents with neither done nor failed, oldest first.
    fn pending(&self) -> Result<Vec<(RepairId, RepairAction, String)>, String>;
    /// Records that `state/log` was verified whole up to `valid_len`, where the entry
    /// with index `last_index` and stored checksum `last_checksum` ends (after an
    /// operator accepted a log shorter than the one verified before). A log without
    /// such a record (the default) just verifies the whole state log every time.
    fn record_state_log_verified(
        &self,
        _valid_len: u64,
        _last_index: u64,
        _last_checksum: u64,
    ) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("journal: {0}")]
    Journal(String),
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
            ExecError::Quarantine(_) | ExecError::Changed { .. } => false,
        }
    }
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

impl Executor<'_> {
    /// Finishes every journaled repair that has not completed.
    pub fn replay_pending(&self) -> Result<Vec<Executed>, ExecError> {
        let pending = self.log.pending().map_err(ExecError::Journal)?;
        pending
            .into_iter()
            .map(|(id, action, reason)| self.run_one(id, action, reason))
            .collect()
    }

    /// Journals all intents, then performs them in order.
    pub fn execute(&self, plan: Vec<(RepairAction, String)>) -> Result<Vec<Executed>, ExecError> {
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        self.fs.step("journal intents");
        let above = self.quarantine.highest_id()?;
        let ids = self
            .log
            .record_intents(&plan, above)
            .map_err(ExecError::Journal)?;
        ids.into_iter()
            .zip(plan)
            .map(|(id, (action, reason))| self.run_one(id, action, reason))
            .collect()
    }

    fn run_one(
        &self,
        id: RepairId,
        action: RepairAction,
        reason: String,
    ) -> Result<Executed, ExecError> {
        match self.apply(id, &action, &reason) {
            Ok(quarantined_bytes) => {
                self.fs.step("journal done");
                self.log.record_done(id).map_err(ExecError::Journal)?;
                Ok(Executed {
                    repair: id,
                    action,
                    reason,
                    quarantined_bytes,
                })
            }
            Err(e) => {
                // Failing to journal the failure must not hide the failure itself.
                let _ = self.log.record_failed(id, &e.to_string());
                Err(e)
            }
        }
    }

    fn apply(&self, id: RepairId, action: &RepairAction, reason: &str) -> Result<u64, ExecError> {
        if !crate::quarantine::action_paths_are_plain(action) {
            return Err(ExecError::Journal(format!(
                "repair {id} names a path outside the data directory ({}); refusing it",
                action.rel_path()
            )));
        }
        match action {
            // `rel_path` names the log or the index, as the action says.
            RepairAction::TruncateLog {
                keep_len,
                original_len,
                ..
            }
            | RepairAction::TruncateIndex {
                keep_len,
                original_len,
                ..
            }
            | RepairAction::TruncateStateLog {
                keep_len,
                original_len,
            } => self.truncate(
                id,
                action,
                reason,
                &action.rel_path(),
                *keep_len,
                *original_len,
            ),
            RepairAction::RewriteIndex {
                segment,
                original_len,
                new_len,
                new_xxh3,
            } => self.rewrite_index(
                id,
                action,
                reason,
                segment,
                *original_len,
                *new_len,
                *new_xxh3,
            ),
            RepairAction::QuarantineFile { path, len } => {
                self.quarantine_file(id, action, reason, path, *len)
            }
            RepairAction::Restore { repair } => self.restore(id, *repair),
            RepairAction::CreateDir { path } => self.create_dir(id, action, reason, path),
            RepairAction::Relay { .. } => self.relay(id, action, reason),
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
            found: found.map_or("no file".into(), |n| format!("{n} bytes")),
        }
    }

    /// Cuts `rel` to `keep_len` bytes after saving the rest.
    fn truncate(
        &self,
        id: RepairId,
        action: &RepairAction,
        reason: &str,
        rel: &str,
        keep_len: u64,
        original_len: u64,
    ) -> Result<u64, ExecError> {
        let path = self.data_dir.join(rel);
        let range = ByteRange::new(keep_len, original_len);
        match file_len(self.fs, &path).map_err(io_err(&path))? {
            Some(len) if len == original_len => {
                self.quarantine.save(
                    self.fs,
                    id,
                    action,
                    reason,
                    self.data_dir,
                    rel,
                    range,
                    false,
                )?;
                self.fs.truncate(&path, keep_len).map_err(io_err(&path))?;
                self.sync_parent(&path)?;
            }
            // Truncated before a crash: its bytes were saved first, so they must be there.
            Some(len) if len == keep_len && self.quarantine.load_verified(id)?.is_some() => {}
            found => {
                return Err(self.changed(id, &path, format!("{original_len} bytes"), found));
            }
        }
        Ok(range.len())
    }

    #[allow(clippy::too_many_arguments)]
    fn rewrite_index(
        &self,
        id: RepairId,
        action: &RepairAction,
        reason: &str,
        segment: &SegmentKey,
        original_len: Option<u64>,
        new_len: u64,
        new_xxh3: u64,
    ) -> Result<u64, ExecError> {
        let rel = segment.rel_index();
        let path = self.data_dir.join(&rel);
        let current = file_digest(self.fs, &path).map_err(io_err(&path))?;
        if current == Some((new_len, new_xxh3)) && self.quarantine.load_verified(id)?.is_some() {
            return Ok(original_len.unwrap_or(0));
        }
        if current.map(|(len, _)| len) != original_len {
            return Err(self.changed(
                id,
                &path,
                original_len.map_or("no file".into(), |n| format!("{n} bytes")),
                current.map(|(len, _)| len),
            ));
        }
        let range = ByteRange::new(0, original_len.unwrap_or(0));
        self.quarantine.save(
            self.fs,
            id,
            action,
            reason,
            self.data_dir,
            &rel,
            range,
            original_len.is_none(),
        )?;
        let log = self.data_dir.join(segment.rel_log());
        let log_len = file_len(self.fs, &log)
            .map_err(io_err(&log))?
            .ok_or_else(|| self.changed(id, &log, "a log to index".into(), None))?;
        let tmp = temp_index_path(&path);
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
        self.fs.rename(&tmp, &path).map_err(io_err(&path))?;
        self.sync_parent(&path)?;
        Ok(range.len())
    }

    fn quarantine_file(
        &self,
        id: RepairId,
        action: &RepairAction,
        reason: &str,
        rel: &str,
        len: u64,
    ) -> Result<u64, ExecError> {
        let path = self.data_dir.join(rel);
        match file_len(self.fs, &path).map_err(io_err(&path))? {
            Some(found) if found == len => {
                let range = ByteRange::new(0, len);
                self.quarantine.save(
                    self.fs,
                    id,
                    action,
                    reason,
                    self.data_dir,
                    rel,
                    range,
                    false,
                )?;
                self.fs.remove_file(&path).map_err(io_err(&path))?;
                self.sync_parent(&path)?;
            }
            None if self.quarantine.load_verified(id)?.is_some() => {}
            found => return Err(self.changed(id, &path, format!("{len} bytes"), found)),
        }
        Ok(len)
    }

    /// Creates a folder; the manifest (nothing saved, `created_file`) lets `restore`
    /// remove it again.
    fn create_dir(
        &self,
        id: RepairId,
        action: &RepairAction,
        reason: &str,
        rel: &str,
    ) -> Result<u64, ExecError> {
        let path = self.data_dir.join(rel);
        let range = ByteRange::new(0, 0);
        self.quarantine
            .save(self.fs, id, action, reason, self.data_dir, rel, range, true)?;
        let is_dir = self.fs.metadata(&path).map_err(io_err(&path))?;
        if !is_dir.is_some_and(|m| m.is_dir()) {
            self.fs.create_dir_all(&path).map_err(io_err(&path))?;
            self.sync_parent(&path)?;
        }
        Ok(0)
    }

    fn sync_parent(&self, path: &Path) -> Result<(), ExecError> {
        let dir = path.parent().unwrap_or(self.data_dir);
        self.fs.sync_dir(dir).map_err(io_err(dir))
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
