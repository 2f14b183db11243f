//! The executor's phases 2 and 3 for one repair: what it must save before it acts,
//! and the act itself (a cut, a rebuilt index renamed over the old one, a file
//! moved out, a folder made), each checking the file first so that a rerun knows
//! what an earlier run already did.

use super::error::{io_err, not_in_phases, ExecError};
use super::Executor;
use crate::fsops::{file_digest, file_len, SyncRound};
use crate::quarantine::Finder;
use crate::rebuild::{rebuild_index, temp_index_path};
use journal::{ByteRange, Cut, RepairAction, RepairId, SegmentKey};
use std::io;
use std::path::Path;

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
