//! Performs and undoes a salvage re-lay, crash-safely.
//!
//! Performing: (1) every replaced file goes whole into the repair's quarantine
//! folder (hard links on the same file system) with its manifest; (2) each new log is
//! written under a temporary name from the quarantined copies and its index is built
//! from it, both fsynced; (3) every name about to be replaced is checked to hold the
//! original or the finished result, before anything is renamed, and the originals
//! saved as copies (not hard links) are moved aside, checked again there and removed;
//! (4) temporaries are renamed into place, replaced files that are not reused are
//! removed, and the folder is fsynced. A rerun starts over at (2) from the
//! quarantine, so a crash anywhere converges to the same files.
//!
//! Undoing (`restore`) saves the re-laid files under the restore's own id, puts every
//! original back through a temporary name, and removes new names the originals did
//! not have.

use crate::execute::{io_err, ExecError, Executor};
use crate::fsops::{file_digest, file_len};
use crate::index::ENTRY_LEN;
use crate::quarantine::{whole_file_name, Manifest};
use crate::rebuild::rebuild_index;
use crate::rebuild::temp_index_path;
use crate::work_names::{work_path, SET_ASIDE};
use journal::{PartitionId, RelayOriginal, RelaySegment, RepairAction, RepairId};
use std::collections::BTreeSet;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The files a relay writes, relative to the data directory: log and index of each
/// new segment.
fn target_names(partition: PartitionId, segments: &[RelaySegment]) -> Vec<(String, String)> {
    segments
        .iter()
        .map(|s| {
            let key = partition.segment(s.start_offset);
            (key.rel_log(), key.rel_index())
        })
        .collect()
}

impl Executor<'_> {
    pub(crate) fn relay(
        &self,
        id: RepairId,
        action: &RepairAction,
        reason: &str,
    ) -> Result<u64, ExecError> {
        let RepairAction::Relay {
            partition,
            originals,
            segments,
        } = action
        else {
            return Ok(0);
        };
        let folder = partition.rel_dir();
        let manifest = self.quarantine.save_files(
            self.fs,
            id,
            action,
            reason,
            self.data_dir,
            &folder,
            originals,
        )?;
        let saved: Vec<PathBuf> = manifest
            .files
            .iter()
            .map(|f| self.quarantine.saved_file(id, f))
            .collect();
        let mut renames = Vec::new();
        for (seg, (log_rel, index_rel)) in segments.iter().zip(target_names(*partition, segments)) {
            let log = self.data_dir.join(&log_rel);
            let index = self.data_dir.join(&index_rel);
            let (log_tmp, index_tmp) = (temp_index_path(&log), temp_index_path(&index));
            self.write_log(id, seg, &saved, &log_tmp)?;
            let mut built = None;
            let mut source = Some(self.fs.open_read(&log_tmp).map_err(io_err(&log_tmp))?);
            self.fs
                .write_file(&index_tmp, &mut |w| {
                    let src = source
                        .take()
                        .ok_or_else(|| io::Error::other("index written twice"))?;
                    built = Some(rebuild_index(
                        src,
                        &log_tmp,
                        seg.start_offset,
                        seg.log_len,
                        w,
                    )?);
                    Ok(())
                })
                .map_err(io_err(&index_tmp))?;
            if built.map(|d| d.len) != Some(seg.messages * ENTRY_LEN as u64) {
                return Err(ExecError::Changed {
                    repair: id,
                    path: log_tmp,
                    expected: format!("{} messages", seg.messages),
                    found: format!("an index of {:?} bytes", built.map(|d| d.len)),
                });
            }
            renames.push((log_tmp, log_rel));
            renames.push((index_tmp, index_rel));
        }
        let dir = self.data_dir.join(&folder);
        self.fs.sync_dir(&dir).map_err(io_err(&dir))?;
        let mut still_original = BTreeSet::new();
        for (tmp, rel) in &renames {
            if self.check_replaceable(id, tmp, rel, originals)? {
                still_original.insert(rel.as_str());
            }
        }
        let written: BTreeSet<&str> = renames.iter().map(|(_, rel)| rel.as_str()).collect();
        self.remove_copied_originals(id, originals, &written, &still_original)?;
        for (tmp, rel) in &renames {
            let dst = self.data_dir.join(rel);
            self.fs.rename(tmp, &dst).map_err(io_err(&dst))?;
        }
        // The originals saved as hard links and not renamed over: the quarantine's
        // link keeps the file.
        for (i, o) in originals.iter().enumerate() {
            let path = self.data_dir.join(&o.path);
            if !written.contains(o.path.as_str()) && self.is_saved_copy(id, i, &path) {
                self.fs.remove_file(&path).map_err(io_err(&path))?;
            }
        }
        self.fs.sync_dir(&dir).map_err(io_err(&dir))?;
        Ok(originals.iter().map(|o| o.len).sum())
    }

    /// Removes each original saved as a copy (the quarantine on another file system)
    /// before any new file takes a name: unlike a hard link, a copy does not follow
    /// the file, so bytes a writer appended since the look would go with it. Each is
    /// moved aside and its length checked there, as a file taken out is; one that
    /// grew is moved back and the repair stops. A file an earlier run left aside is
    /// finished the same way. A name a new file takes was looked at by
    /// `check_replaceable` (`still_original`); any other is looked at here, and one
    /// that is neither gone nor the original stops the repair.
    fn remove_copied_originals(
        &self,
        id: RepairId,
        originals: &[RelayOriginal],
        written: &BTreeSet<&str>,
        still_original: &BTreeSet<&str>,
    ) -> Result<(), ExecError> {
        for (i, o) in originals.iter().enumerate() {
            let path = self.data_dir.join(&o.path);
            if self.is_saved_copy(id, i, &path) {
                continue;
            }
            let original_here = if written.contains(o.path.as_str()) {
                still_original.contains(o.path.as_str())
            } else {
                match file_digest(self.fs, &path).map_err(io_err(&path))? {
                    None => false,
                    Some(d) if d == (o.len, o.xxh3) => true,
                    Some((len, _)) => {
                        return Err(self.length_changed(id, &path, Some(o.len), Some(len)))
                    }
                }
            };
            let aside = work_path(&path, SET_ASIDE);
            let left_aside = || -> Result<bool, ExecError> {
                let gone = file_len(self.fs, &path).map_err(io_err(&path))?.is_none();
                Ok(gone && file_len(self.fs, &aside).map_err(io_err(&aside))?.is_some())
            };
            if original_here || left_aside()? {
                self.remove_saved(id, &path, o.len)?;
            }
        }
        Ok(())
    }

    /// Writes the new log `dst` from the pieces of the quarantined originals.
    fn write_log(
        &self,
        id: RepairId,
        seg: &RelaySegment,
        saved: &[PathBuf],
        dst: &Path,
    ) -> Result<(), ExecError> {
        let mut written = 0u64;
        self.fs
            .write_file(dst, &mut |w| {
                for piece in &seg.pieces {
                    let src = saved.get(piece.source as usize).ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("repair {id} names original file {}", piece.source),
                        )
                    })?;
                    let mut f = self.fs.open_read(src)?;
                    f.seek(SeekFrom::Start(piece.range.start))?;
                    written += io::copy(&mut f.take(piece.range.len()), w)?;
                }
                Ok(())
            })
            .map_err(io_err(dst))?;
        if written != seg.log_len {
            return Err(self.length_changed(id, dst, Some(seg.log_len), Some(written)));
        }
        Ok(())
    }

    /// Whether `path` is the very file (same inode) saved as original `i` of repair
    /// `id`: the hard link made by `save_files`, so certainly unchanged.
    fn is_saved_copy(&self, id: RepairId, i: usize, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let saved = self.quarantine.repair_dir(id).join(whole_file_name(i));
        match (self.fs.metadata(path), self.fs.metadata(&saved)) {
            (Ok(Some(a)), Ok(Some(b))) => a.is_file() && (a.dev(), a.ino()) == (b.dev(), b.ino()),
            _ => false,
        }
    }

    /// The file at `rel` may be replaced by `tmp` only if it is missing, still the
    /// original the plan saw, or already the finished result of an earlier run;
    /// true when it is the original, saved as a copy (a hard link needs no look).
    fn check_replaceable(
        &self,
        id: RepairId,
        tmp: &Path,
        rel: &str,
        originals: &[RelayOriginal],
    ) -> Result<bool, ExecError> {
        let dst = self.data_dir.join(rel);
        let saved = originals.iter().position(|o| o.path == rel);
        if saved.is_some_and(|i| self.is_saved_copy(id, i, &dst)) {
            return Ok(false);
        }
        let Some(current) = file_digest(self.fs, &dst).map_err(io_err(&dst))? else {
            return Ok(false);
        };
        let original = saved
            .and_then(|i| originals.get(i))
            .map(|o| (o.len, o.xxh3));
        if Some(current) == original {
            return Ok(true);
        }
        if Some(current) == file_digest(self.fs, tmp).map_err(io_err(tmp))? {
            return Ok(false);
        }
        let expected = original.map_or("no file".into(), |o| format!("{} bytes", o.0));
        Err(self.changed(id, &dst, expected, Some(current.0)))
    }

    /// Undoes relay `manifest` (repair `target`) as restore `id`.
    pub(crate) fn restore_relay(
        &self,
        id: RepairId,
        target: RepairId,
        manifest: &Manifest,
    ) -> Result<u64, ExecError> {
        let RepairAction::Relay {
            partition,
            segments,
            ..
        } = &manifest.action
        else {
            return Ok(0);
        };
        let originals: BTreeSet<&str> = manifest.files.iter().map(|f| f.file.as_str()).collect();
        // What the relay wrote and is still there, except names already restored.
        let mut current = Vec::new();
        for (seg, (log, index)) in segments.iter().zip(target_names(*partition, segments)) {
            for (rel, len) in [(log, seg.log_len), (index, seg.messages * ENTRY_LEN as u64)] {
                let path = self.data_dir.join(&rel);
                let Some((found, xxh3)) = file_digest(self.fs, &path).map_err(io_err(&path))?
                else {
                    continue;
                };
                let restored = manifest
                    .files
                    .iter()
                    .any(|f| f.file == rel && (f.len, f.xxh3) == (found, xxh3));
                if restored {
                    continue;
                }
                if found != len {
                    return Err(ExecError::Changed {
                        repair: id,
                        path,
                        expected: format!(
                            "the {len} bytes repair {target} wrote (the file has changed since; \
                             restoring would overwrite newer data)"
                        ),
                        found: format!("{found} bytes"),
                    });
                }
                current.push(RelayOriginal {
                    path: rel,
                    len: found,
                    xxh3,
                });
            }
        }
        let undo = RepairAction::Restore { repair: target };
        let why = format!("restore of repair {target}");
        self.quarantine.save_files(
            self.fs,
            id,
            &undo,
            &why,
            self.data_dir,
            &manifest.file,
            &current,
        )?;
        for f in &manifest.files {
            let dst = self.data_dir.join(&f.file);
            if file_digest(self.fs, &dst).map_err(io_err(&dst))? == Some((f.len, f.xxh3)) {
                continue;
            }
            let tmp = temp_index_path(&dst);
            let src = self.quarantine.saved_file(target, f);
            self.fs.append_into_new(&src, &tmp).map_err(io_err(&tmp))?;
            self.fs.rename(&tmp, &dst).map_err(io_err(&dst))?;
        }
        for (log, index) in target_names(*partition, segments) {
            for rel in [log, index] {
                let path = self.data_dir.join(&rel);
                let exists = self.fs.metadata(&path).map_err(io_err(&path))?.is_some();
                if !originals.contains(rel.as_str()) && exists {
                    self.fs.remove_file(&path).map_err(io_err(&path))?;
                }
            }
        }
        let dir = self.data_dir.join(&manifest.file);
        self.fs.sync_dir(&dir).map_err(io_err(&dir))?;
        Ok(manifest.files.iter().map(|f| f.len).sum())
    }
}
