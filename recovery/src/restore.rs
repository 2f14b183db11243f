//! Undoing a repair: puts the bytes a repair quarantined back where they were, so an
//! operator who disagrees with a repair gets the directory exactly as it was.
//!
//! A restore is journaled and executed like any repair, so it is idempotent too; what
//! it replaces (a rebuilt index) goes into quarantine under the restore's own id.

use crate::execute::{ExecError, Executor};
use crate::fsops::{file_digest, file_len};
use crate::offset_reset::offset_digest;
use crate::quarantine::{Manifest, QuarantineError, Saved};
use crate::work_names::{work_path, TEMPORARY};
use journal::{ByteRange, RepairAction, RepairId};
use std::path::Path;

impl Executor<'_> {
    /// Reverses repair `target`; `id` is the restore's own repair id. Returns the bytes
    /// put back.
    pub(crate) fn restore(&self, id: RepairId, target: RepairId) -> Result<u64, ExecError> {
        let (home, manifest) =
            self.quarantine
                .load_verified(target)?
                .ok_or_else(|| ExecError::NotInQuarantine {
                    repair: target,
                    dir: self.quarantine.dir().to_path_buf(),
                })?;
        self.quarantine.check_paths(&home, &manifest)?;
        if manifest.range.start > manifest.range.end {
            return Err(ExecError::Refused {
                repair: target,
                why: format!(
                    "has a manifest naming the range {}, which ends before it starts",
                    manifest.range
                ),
            });
        }
        if let RepairAction::Relay { .. } = manifest.action {
            return self.restore_relay(id, target, &manifest);
        }
        let path = self.data_dir.join(&manifest.file);
        // Verified above: a file of its own whole, or its slice of a packed file.
        let saved = home.saved(&manifest);
        let restore_action = RepairAction::Restore { repair: target };
        let why = format!("restore of repair {target}");
        match &manifest.action {
            RepairAction::TruncateLog { .. }
            | RepairAction::TruncateIndex { .. }
            | RepairAction::TruncateStateLog { .. }
                if manifest.zero_run =>
            {
                // The cut bytes were zeros, only described: extend the file with them
                // (a hole). Setting the length is one step, idempotent.
                let range = manifest.range;
                let current = file_len(self.fs, &path).map_err(io(&path))?;
                let tail_is_zeros = |len: u64| {
                    crate::fsops::is_zero_range(&path, ByteRange::new(range.start, len))
                        .map(|z| z == Some(true))
                        .map_err(io(&path))
                };
                match current {
                    Some(len) if len == range.end && tail_is_zeros(len)? => {
                        return Ok(range.len());
                    }
                    Some(len) if len == range.start => {}
                    Some(len) if len > range.start && len < range.end && tail_is_zeros(len)? => {}
                    _ => return Err(self.changed_for_restore(id, &path, &manifest, current)),
                }
                self.fs.truncate(&path, range.end).map_err(io(&path))?;
            }
            RepairAction::TruncateLog { .. }
            | RepairAction::TruncateIndex { .. }
            | RepairAction::TruncateStateLog { .. } => {
                let current = file_len(self.fs, &path).map_err(io(&path))?;
                if current == Some(manifest.range.end) && self.tail_matches(&path, &manifest)? {
                    return Ok(manifest.range.len());
                }
                match current {
                    Some(len) if len == manifest.range.start => {}
                    // An append cut short by a crash: those bytes are a prefix of the
                    // saved ones (still in quarantine), so cut them and append again.
                    Some(len)
                        if len > manifest.range.start
                            && len < manifest.range.end
                            && self.partial_append(&path, &saved, manifest.range.start, len)? =>
                    {
                        self.fs
                            .truncate(&path, manifest.range.start)
                            .map_err(io(&path))?;
                    }
                    _ => return Err(self.changed_for_restore(id, &path, &manifest, current)),
                }
                self.fs
                    .append_range(&saved.path, saved.range, &path)
                    .map_err(io(&path))?;
            }
            RepairAction::RewriteIndex { .. }
            | RepairAction::ResetConsumerOffset { .. }
            | RepairAction::DropStateLogEntries { .. } => {
                // What the repair wrote: the file must still be that to be put back.
                let (new_len, new_xxh3) = match &manifest.action {
                    RepairAction::ResetConsumerOffset { reset_to, .. } => offset_digest(*reset_to),
                    RepairAction::RewriteIndex {
                        new_len, new_xxh3, ..
                    }
                    | RepairAction::DropStateLogEntries {
                        new_len, new_xxh3, ..
                    } => (*new_len, *new_xxh3),
                    other => {
                        let why = format!("repair {target} ({other}) replaced no file");
                        return Err(ExecError::Internal(why));
                    }
                };
                let current = file_digest(self.fs, &path).map_err(io(&path))?;
                let original =
                    (!manifest.created_file).then_some((manifest.range.len(), manifest.xxh3));
                if current == original {
                    return Ok(manifest.range.len());
                }
                if current != Some((new_len, new_xxh3)) {
                    return Err(self.changed_for_restore(
                        id,
                        &path,
                        &manifest,
                        current.map(|c| c.0),
                    ));
                }
                let range = ByteRange::new(0, new_len);
                self.quarantine.save(
                    self.fs,
                    id,
                    &restore_action,
                    &why,
                    self.data_dir,
                    &manifest.file,
                    range,
                    false,
                )?;
                if manifest.created_file {
                    self.fs.remove_file(&path).map_err(io(&path))?;
                } else {
                    // Beside the file, or in the partition folder for an offset file.
                    let tmp = work_path(&path, TEMPORARY);
                    let _ = self.fs.remove_file(&tmp);
                    self.copy_saved(&saved, &manifest, &tmp)?;
                    self.fs.rename(&tmp, &path).map_err(io(&path))?;
                }
            }
            RepairAction::QuarantineFile { .. } => {
                let current = file_digest(self.fs, &path).map_err(io(&path))?;
                if current == Some((manifest.range.len(), manifest.xxh3)) {
                    return Ok(manifest.range.len());
                }
                if current.is_some() {
                    return Err(self.changed_for_restore(
                        id,
                        &path,
                        &manifest,
                        current.map(|c| c.0),
                    ));
                }
                // Beside the file, or in the partition folder for an offset file.
                let tmp = work_path(&path, TEMPORARY);
                if let Some(parent) = path.parent() {
                    self.fs.create_dir_all(parent).map_err(io(parent))?;
                }
                self.copy_saved(&saved, &manifest, &tmp)?;
                self.fs.rename(&tmp, &path).map_err(io(&path))?;
            }
            RepairAction::CreateDir { .. } => {
                let found = self.fs.metadata(&path).map_err(io(&path))?;
                if found.is_none() {
                    // Never made (a run killed between its quarantine and its changes)
                    // or removed already: nothing to undo, and its parent may be gone
                    // too, so there is no folder to sync either.
                    return Ok(manifest.range.len());
                }
                if found.is_some_and(|m| m.is_dir()) {
                    self.fs.remove_dir(&path).map_err(|e| ExecError::Changed {
                        repair: id,
                        path: path.clone(),
                        expected: format!("the empty folder repair {target} created ({e})"),
                        found: "a folder that is not empty".into(),
                    })?;
                }
            }
            RepairAction::Relay { .. } => return self.restore_relay(id, target, &manifest),
            RepairAction::Restore { .. } => {
                return Err(ExecError::Refused {
                    repair: target,
                    why: "is itself a restore; restore the repair it undid instead".into(),
                })
            }
        }
        let dir = path.parent().unwrap_or(self.data_dir);
        self.fs.sync_dir(dir).map_err(io(dir))?;
        Ok(manifest.range.len())
    }

    /// Whether the bytes after the kept part of a truncated file are the quarantined ones.
    fn tail_matches(&self, path: &Path, m: &Manifest) -> Result<bool, ExecError> {
        let digest = crate::fsops::range_digest(self.fs, path, m.range).map_err(io(path))?;
        Ok(digest == Some(m.xxh3))
    }

    /// Whether `path[start..len)` is the start of the saved bytes.
    fn partial_append(
        &self,
        path: &Path,
        saved: &Saved,
        start: u64,
        len: u64,
    ) -> Result<bool, ExecError> {
        let appended = crate::fsops::range_digest(self.fs, path, ByteRange::new(start, len))
            .map_err(io(path))?;
        let from = saved.range.start;
        let prefix = ByteRange::new(from, from.saturating_add(len - start).min(saved.range.end));
        let prefix =
            crate::fsops::range_digest(self.fs, &saved.path, prefix).map_err(io(&saved.path))?;
        Ok(appended.is_some() && appended == prefix)
    }

    /// Copies the saved bytes into the new file `tmp` (fsynced), checking their XXH3
    /// as they are copied: they are put back only as they were saved, even if the
    /// quarantine changed since it was verified.
    fn copy_saved(&self, saved: &Saved, m: &Manifest, tmp: &Path) -> Result<(), ExecError> {
        let digest = self
            .fs
            .copy_range(&saved.path, saved.range, tmp)
            .map_err(io(&saved.path))?;
        if digest != m.xxh3 {
            let _ = self.fs.remove_file(tmp);
            return Err(QuarantineError::BytesChanged {
                path: saved.path.clone(),
                expected_len: saved.range.len(),
                expected: m.xxh3,
            }
            .into());
        }
        Ok(())
    }

    fn changed_for_restore(
        &self,
        id: RepairId,
        path: &Path,
        m: &Manifest,
        found: Option<u64>,
    ) -> ExecError {
        ExecError::Changed {
            repair: id,
            path: path.to_path_buf(),
            expected: format!(
                "the state repair {} left (the file has changed since; restoring would \
                 overwrite newer data)",
                m.repair
            ),
            found: found.map_or("no file".into(), |n| format!("{n} bytes")),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExecError + '_ {
    move |cause| ExecError::Io {
        path: path.to_path_buf(),
        cause,
    }
}
