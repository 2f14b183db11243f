//! The executor's phases 2 and 3 for one repair: what it must save before it acts,
//! and the act itself (a cut, a rebuilt index swapped with the old one, a file
//! moved out, a folder made), each checking the file first so that a rerun knows
//! what an earlier run already did, and again at its last step, so that bytes a
//! writer added since the plan (one the busy check missed) are never lost.

use super::error::{io_err, not_in_phases, ExecError};
use super::Executor;
use crate::fsops::{file_digest, file_len, SyncRound};
use crate::layout::OFFSET_FILE_LEN;
use crate::offset_reset::{is_offset_file, offset_digest};
use crate::quarantine::Finder;
use crate::rebuild::{rebuild_index, temp_index_path};
use crate::work_names::{work_path, SET_ASIDE, TEMPORARY};
use journal::action::STATE_LOG;
use journal::{ByteRange, Cut, RepairAction, RepairId, SegmentKey};
use std::io;
use std::path::{Path, PathBuf};

/// What a repair saves into quarantine before it acts: `range` of the file `rel`;
/// `created_file` when the repair creates `rel` (nothing is saved).
pub(super) struct ToSave {
    pub(super) rel: String,
    pub(super) range: ByteRange,
    pub(super) created_file: bool,
}

impl Executor<'_> {
    /// Phase 2 for one repair: what it will remove and must save first, or `None`
    /// when an earlier run saved it already (and maybe acted too).
    pub(super) fn to_save(
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
            RepairAction::ResetConsumerOffset {
                path: rel,
                stored,
                reset_to,
            } => match self.offset_reset_done(id, rel, *stored, *reset_to)? {
                // Reset before a crash: its old bytes were saved first.
                (_, true) if finder.verified(id)? => Ok(None),
                (path, true) => Err(self.offset_changed(id, &path, *stored)),
                (_, false) => save(rel.clone(), ByteRange::new(0, OFFSET_FILE_LEN), false),
            },
            RepairAction::DropStateLogEntries {
                original_len,
                new_len,
                new_xxh3,
                ..
            } => {
                let (path, current) = self.state_log_now()?;
                if current == Some((*new_len, *new_xxh3)) && finder.verified(id)? {
                    return Ok(None);
                }
                match current.map(|(len, _)| len) {
                    Some(len) if len == *original_len => save(
                        STATE_LOG.to_string(),
                        ByteRange::new(0, *original_len),
                        false,
                    ),
                    found => Err(self.length_changed(id, &path, Some(*original_len), found)),
                }
            }
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
    pub(super) fn act(
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
            // The round makes the new length durable; no entry of its folder changed,
            // so the folder needs no fsync.
            let found = self
                .fs
                .cut_in_round(&path, original_len, keep_len, round)
                .map_err(io_err(&path))?;
            match found {
                Some(len) if len == original_len || len == keep_len => {}
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
                    self.remove_swapped_out(&path, *original_len)?;
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
                let tmp = self.write_index(id, segment, &path, *new_len, *new_xxh3)?;
                self.replace_checked(id, &tmp, &path, current)?;
                changed_in(&path);
                Ok(saved)
            }
            RepairAction::QuarantineFile { path: rel, len } => {
                let path = self.data_dir.join(rel);
                if self.remove_saved(id, &path, *len)? {
                    // Both folders whose entries changed: an offset file's aside is in
                    // its partition folder, and must not come back after a power loss.
                    changed_in(&path);
                    changed_in(&work_path(&path, SET_ASIDE));
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
            RepairAction::ResetConsumerOffset {
                path: rel,
                stored,
                reset_to,
            } => {
                let (path, done) = self.offset_reset_done(id, rel, *stored, *reset_to)?;
                if done {
                    self.remove_swapped_out(&path, Some(OFFSET_FILE_LEN))?;
                    return Ok(OFFSET_FILE_LEN);
                }
                // In the partition folder: 0.6.0 reads every name in an offsets
                // folder as a consumer id.
                let tmp = work_path(&path, TEMPORARY);
                let bytes = reset_to.to_le_bytes();
                self.fs
                    .write_file(&tmp, &mut |w| w.write_all(&bytes))
                    .map_err(io_err(&tmp))?;
                self.replace_checked(id, &tmp, &path, Some(offset_digest(*stored)))?;
                changed_in(&path);
                changed_in(&tmp);
                Ok(OFFSET_FILE_LEN)
            }
            RepairAction::DropStateLogEntries {
                entries,
                keep_len,
                original_len,
                new_len,
                new_xxh3,
            } => {
                let (path, current) = self.state_log_now()?;
                if current == Some((*new_len, *new_xxh3)) {
                    self.remove_swapped_out(&path, Some(*original_len))?;
                    return Ok(*original_len);
                }
                let found = current.map(|(len, _)| len);
                if found != Some(*original_len) {
                    return Err(self.length_changed(id, &path, Some(*original_len), found));
                }
                let kept = ByteRange::new(0, *keep_len);
                let planned = (*new_len, *new_xxh3);
                let tmp = self.write_state_log_without(id, &path, kept, entries, planned)?;
                self.replace_checked(id, &tmp, &path, current)?;
                changed_in(&path);
                Ok(*original_len)
            }
            // Truncations are handled above.
            RepairAction::TruncateLog { .. }
            | RepairAction::TruncateIndex { .. }
            | RepairAction::TruncateStateLog { .. }
            | RepairAction::Restore { .. }
            | RepairAction::Relay { .. } => Err(not_in_phases(id, action)),
        }
    }

    /// Rebuilds the index of `segment` from its log into a temporary file (fsynced)
    /// beside `path`, checks it is the one planned, and returns the file's path.
    fn write_index(
        &self,
        id: RepairId,
        segment: &SegmentKey,
        path: &Path,
        new_len: u64,
        new_xxh3: u64,
    ) -> Result<PathBuf, ExecError> {
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
        Ok(tmp)
    }

    /// Puts the rebuilt index (or the new offset file) `tmp` in place of `path`,
    /// which the look before writing `tmp` found as `old` (length, XXH3). The two
    /// names are swapped in one step and the old file checked again where it now
    /// lies: bytes a writer added to it since the look (a process the busy check
    /// missed) were never saved, so then the swap is undone and the repair stops. A file system that cannot swap gets
    /// the rename, checked only by the look.
    fn replace_checked(
        &self,
        id: RepairId,
        tmp: &Path,
        path: &Path,
        old: Option<(u64, u64)>,
    ) -> Result<(), ExecError> {
        let Some(old) = old else {
            // No index there to lose.
            return self.fs.rename(tmp, path).map_err(io_err(path));
        };
        match self.fs.exchange(tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                return self.fs.rename(tmp, path).map_err(io_err(path));
            }
            Err(e) => return Err(io_err(path)(e)),
        }
        let found = file_digest(self.fs, tmp).map_err(io_err(tmp))?;
        if found == Some(old) {
            return self.fs.remove_file(tmp).map_err(io_err(tmp));
        }
        self.fs.exchange(tmp, path).map_err(io_err(path))?;
        if let Err(e) = self.fs.remove_file(tmp) {
            tracing::warn!("cannot remove {}: {e}", tmp.display());
        }
        Err(ExecError::Changed {
            repair: id,
            path: path.to_path_buf(),
            expected: describe_digest(Some(old)),
            found: describe_digest(found),
        })
    }

    /// `state/log`'s path, and its length and XXH3 now (`None`: no such file).
    fn state_log_now(&self) -> Result<(PathBuf, Option<(u64, u64)>), ExecError> {
        let path = self.data_dir.join(STATE_LOG);
        let current = file_digest(self.fs, &path).map_err(io_err(&path))?;
        Ok((path, current))
    }

    /// Removes the old index (or offset file) a run killed between swapping it out
    /// and removing it left under the temporary name: its bytes were saved before
    /// the swap. Only a file of the length saved; any other is left for an operator
    /// (`check` shows it as a stray).
    fn remove_swapped_out(&self, path: &Path, saved: Option<u64>) -> Result<(), ExecError> {
        let tmp = work_path(path, TEMPORARY);
        let left = file_len(self.fs, &tmp).map_err(io_err(&tmp))?;
        if left.is_some() && left == saved {
            self.fs.remove_file(&tmp).map_err(io_err(&tmp))?;
        }
        Ok(())
    }

    /// Removes `path`, whose first `len` bytes are saved; false when an earlier run
    /// removed it already. It is moved aside first (one rename) and its length
    /// checked there: bytes a writer added since the look were never saved, so then
    /// it is moved back and the repair stops. A file a killed run left aside is
    /// removed when it is the one saved, and moved back otherwise.
    pub(crate) fn remove_saved(
        &self,
        id: RepairId,
        path: &Path,
        len: u64,
    ) -> Result<bool, ExecError> {
        let aside = work_path(path, SET_ASIDE);
        let here = file_len(self.fs, path).map_err(io_err(path))?;
        let there = file_len(self.fs, &aside).map_err(io_err(&aside))?;
        match (here, there) {
            (Some(found), None) if found == len => {
                self.fs.rename(path, &aside).map_err(io_err(path))?;
            }
            (None, Some(_)) => {}
            (None, None) => return Ok(false),
            (found, None) => return Err(self.length_changed(id, path, Some(len), found)),
            (_, Some(left)) => {
                let expected = "no file left aside by an earlier run".to_string();
                return Err(self.changed(id, &aside, expected, Some(left)));
            }
        }
        let moved = file_len(self.fs, &aside).map_err(io_err(&aside))?;
        if moved == Some(len) {
            self.fs.remove_file(&aside).map_err(io_err(&aside))?;
            return Ok(true);
        }
        // Back where it was, unless something took the name meanwhile.
        if file_len(self.fs, path).map_err(io_err(path))?.is_none() {
            self.fs.rename(&aside, path).map_err(io_err(path))?;
        }
        Err(self.length_changed(id, path, Some(len), moved))
    }

    /// The offset file `rel` of a reset from `stored` to `reset_to`, and whether it
    /// holds `reset_to` already; one that holds neither changed since the plan.
    fn offset_reset_done(
        &self,
        id: RepairId,
        rel: &str,
        stored: u64,
        reset_to: u64,
    ) -> Result<(PathBuf, bool), ExecError> {
        if !is_offset_file(rel) {
            return Err(ExecError::Refused {
                repair: id,
                why: format!("asks to reset {rel:?}, which is not a consumer offset file"),
            });
        }
        let path = self.data_dir.join(rel);
        let current = file_digest(self.fs, &path).map_err(io_err(&path))?;
        if current == Some(offset_digest(reset_to)) {
            return Ok((path, true));
        }
        if current != Some(offset_digest(stored)) {
            return Err(self.offset_changed(id, &path, stored));
        }
        Ok((path, false))
    }

    /// An offset file that no longer holds the offset the plan found (its consumer
    /// committed since, or something else wrote it): left as it is.
    fn offset_changed(&self, id: RepairId, path: &Path, stored: u64) -> ExecError {
        let found = crate::fsops::read_small(path, OFFSET_FILE_LEN)
            .ok()
            .and_then(|b| b.first_chunk::<8>().map(|v| u64::from_le_bytes(*v)));
        ExecError::Changed {
            repair: id,
            path: path.to_path_buf(),
            expected: format!("an offset file holding {stored}"),
            found: found.map_or("no offset file of 8 bytes".into(), |v| {
                format!("one holding {v}")
            }),
        }
    }
}

/// A file's length and XXH3 as `ExecError::Changed` reports them.
fn describe_digest(digest: Option<(u64, u64)>) -> String {
    digest.map_or("no file".into(), |(len, xxh3)| {
        format!("{len} bytes, XXH3 {xxh3:#018x}")
    })
}
