//! The quarantine: where every byte a repair removes is kept, with a manifest that
//! says where it came from, so `restore` can put it back exactly.
//!
//! Layout, under `<state dir>/quarantine/`:
//! - a run folder per executor run (`run-r00000012-r00000020/`, see [`run`]): one
//!   packed file `bytes` holding every repair's removed bytes (see [`packed`]), and
//!   one `manifest.json` listing every repair of the run with its slice of `bytes`
//!   (runs of the release before have a file per repair, `r00000012.bytes`: read
//!   too);
//! - a folder per repair (`r00000012/`: `bytes`, whole files `file-0` …, and its
//!   `manifest.json`) for what runs alone (a restore's own save, a salvage re-lay)
//!   and for everything releases before run folders wrote. Both are read.
//!
//! A manifest takes its name last, through a temporary file that is fsynced and
//! renamed once the bytes it describes are durable: a manifest that exists always
//! describes bytes already on disk, and a folder without one holds nothing relied
//! upon.

mod find;
mod home;
mod manifest;
mod packed;
#[cfg(test)]
mod packed_tests;
mod paths;
mod run;
#[cfg(test)]
mod tests;

pub use find::{Finder, Listed};
pub use home::{Home, Saved};
pub use manifest::{
    action_paths_are_plain, check_paths, is_plain_relative, whole_file_name, Manifest, PackedSlice,
    QuarantineError, SaveRequest, SavedFile, BYTES, MANIFEST, ZERO_RUN_MIN,
};
pub use paths::Quarantine;
pub use run::{RunId, RunManifest};

use crate::fsops::{file_digest, FileOps, SyncRound, SYNC_THREADS};
use journal::{ByteRange, RelayOriginal, RepairAction, RepairId};
use manifest::{io_err, same_repair, MANIFEST_VERSION};
use std::io;
use std::path::{Path, PathBuf};

impl Quarantine {
    /// Saves `range` of `data_dir/file` for repair `id` in its own folder and returns
    /// its manifest, durable with its folder. When a complete copy exists already (a
    /// rerun after a crash) it is kept as it is.
    #[allow(clippy::too_many_arguments)]
    pub fn save(
        &self,
        fs: &dyn FileOps,
        id: RepairId,
        action: &RepairAction,
        reason: &str,
        data_dir: &Path,
        file: &str,
        range: ByteRange,
        created_file: bool,
    ) -> Result<Manifest, QuarantineError> {
        if let Some(m) = self.load_same(id, action, file)? {
            return Ok(m);
        }
        let dir = self.repair_dir(id);
        fs.create_dir_all(&dir).map_err(io_err(&dir))?;
        let request = SaveRequest {
            id,
            action,
            reason,
            data_dir,
            file,
            range,
            created_file,
        };
        let manifest = save_bytes(fs, &request, &dir.join(BYTES))?;
        self.write_own_manifest(fs, &manifest)?;
        Ok(manifest)
    }

    /// Saves what every request asks for into one new run folder: the slices of its
    /// packed file laid out, the file created at its full length, the slices copied
    /// in parallel, leaving the fsync to `round`; runs `round` (the bytes, the folder
    /// and the folders above it durable) while it writes the run's manifest under a
    /// temporary name (fsynced), renames it into place once both are done, and adds
    /// its folder to `round`, which the caller runs before it cuts anything. A
    /// folder of that name without a manifest (a save a crash interrupted) is
    /// written over; one with a manifest is refused. An error names the request it
    /// is about.
    pub fn save_run(
        &self,
        fs: &dyn FileOps,
        requests: &[SaveRequest<'_>],
        round: &SyncRound,
    ) -> Result<Vec<Manifest>, (RepairId, QuarantineError)> {
        let Some(run) = RunId::of(requests.iter().map(|r| r.id)) else {
            return Ok(Vec::new());
        };
        let first = run.first;
        let dir = self.run_dir(run);
        match self.load_run(run) {
            Ok(None) => {}
            Ok(Some(m)) => {
                let found = m.repairs.iter().map(|r| r.repair.to_string());
                return Err((
                    first,
                    QuarantineError::IdTaken {
                        path: dir,
                        found: found.collect::<Vec<_>>().join(", "),
                        wanted: format!("{} repairs of {run}", requests.len()),
                    },
                ));
            }
            Err(e) => return Err((first, e)),
        }
        fs.create_dir_all(&dir)
            .map_err(|e| (first, io_err(&dir)(e)))?;
        let zero_runs = crate::parallel::map_ordered(requests, SYNC_THREADS, |r| {
            packed::is_zero_run(r).map_err(|e| (r.id, e))
        })?;
        let bytes = dir.join(BYTES);
        let (slices, total) =
            packed::layout(&bytes, requests, &zero_runs).map_err(|e| (first, e))?;
        fs.create_sized_in_round(&bytes, total, round)
            .map_err(|e| (first, io_err(&bytes)(e)))?;
        let work: Vec<_> = requests.iter().zip(zero_runs).zip(slices).collect();
        let manifests =
            crate::parallel::map_ordered(&work, SYNC_THREADS, |((r, zero_run), slice)| {
                packed::save_slice(fs, r, *zero_run, &bytes, *slice, round).map_err(|e| (r.id, e))
            })?;
        round.add_dir(&dir);
        round.add_dir(self.dir());
        if let Some(state) = self.dir().parent() {
            round.add_dir(state);
        }
        fs.step("sync saved bytes");
        let manifest = RunManifest::new(run, manifests);
        // The manifest (1 KB a repair) is written while the saved bytes are synced,
        // and takes its name only once both are durable: a manifest that exists
        // always describes bytes that are.
        let (synced, written) = round.run_beside(fs, || write_manifest_aside(fs, &dir, &manifest));
        synced.map_err(|(path, cause)| (first, QuarantineError::Io { path, cause }))?;
        let aside = written.map_err(|e| (first, e))?;
        let path = dir.join(MANIFEST);
        fs.rename(&aside, &path)
            .map_err(|e| (first, io_err(&path)(e)))?;
        round.add_dir(&dir);
        Ok(manifest.repairs)
    }

    /// Saves whole files of `data_dir` for repair `id` (a hard link where the file
    /// system allows, else a copy) and returns the manifest. Each must still have the
    /// length and XXH3 the plan recorded; a complete earlier save is kept as it is.
    #[allow(clippy::too_many_arguments)]
    pub fn save_files(
        &self,
        fs: &dyn FileOps,
        id: RepairId,
        action: &RepairAction,
        reason: &str,
        data_dir: &Path,
        folder: &str,
        files: &[RelayOriginal],
    ) -> Result<Manifest, QuarantineError> {
        if let Some(m) = self.load_same(id, action, folder)? {
            return Ok(m);
        }
        let dir = self.repair_dir(id);
        fs.create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut saved = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            let name = whole_file_name(i);
            let dst = dir.join(&name);
            let expected = Some((f.len, f.xxh3));
            if file_digest(fs, &dst).map_err(io_err(&dst))? != expected {
                let src = data_dir.join(&f.path);
                let _ = fs.remove_file(&dst);
                // A hard link is the file itself: what the plan hashed moments ago
                // while the data directory was not in use, so its length suffices.
                // A copy is hashed as it is made.
                let saved = match fs.hard_link(&src, &dst) {
                    Ok(()) => fs
                        .metadata(&dst)
                        .map(|m| m.filter(|m| m.len() == f.len).map(|_| (f.len, f.xxh3)))
                        .map_err(io_err(&dst))?,
                    Err(_) => fs
                        .copy_range(&src, ByteRange::new(0, f.len), &dst)
                        .map(|xxh3| Some((f.len, xxh3)))
                        .map_err(io_err(&src))?,
                };
                if saved != expected {
                    return Err(QuarantineError::BytesChanged {
                        path: src,
                        expected_len: f.len,
                        expected: f.xxh3,
                    });
                }
            }
            saved.push(SavedFile {
                file: f.path.clone(),
                len: f.len,
                xxh3: f.xxh3,
                saved_as: name,
            });
        }
        let bytes = dir.join(BYTES);
        fs.write_file(&bytes, &mut |_| Ok(()))
            .map_err(io_err(&bytes))?;
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            repair: id,
            action: action.clone(),
            reason: reason.to_string(),
            data_dir: data_dir.to_path_buf(),
            file: folder.to_string(),
            range: ByteRange::new(0, 0),
            xxh3: xxhash_rust::xxh3::xxh3_64(&[]),
            zero_run: false,
            created_file: false,
            files: saved,
            packed: None,
        };
        self.write_own_manifest(fs, &manifest)?;
        Ok(manifest)
    }

    /// Writes the manifest of a repair saved in its own folder, and syncs the folder
    /// and the quarantine folder.
    fn write_own_manifest(
        &self,
        fs: &dyn FileOps,
        manifest: &Manifest,
    ) -> Result<(), QuarantineError> {
        let dir = self.repair_dir(manifest.repair);
        write_manifest(fs, &dir, manifest)?;
        fs.sync_dir(&dir).map_err(io_err(&dir))?;
        fs.sync_dir(self.dir()).map_err(io_err(self.dir()))
    }

    /// The complete earlier save of this very repair in its own folder (a rerun after
    /// a crash), or `None`. A manifest of another repair under the same id (ids
    /// reused after the journal was lost) is an error: its bytes may be the only copy.
    fn load_same(
        &self,
        id: RepairId,
        action: &RepairAction,
        file: &str,
    ) -> Result<Option<Manifest>, QuarantineError> {
        let Some(m) = self.load_own(id)? else {
            return Ok(None);
        };
        same_repair(&self.repair_dir(id), &m, action, file)?;
        self.verify(&Home::Own(self.repair_dir(id)), &m)?;
        Ok(Some(m))
    }
}

/// Saves what `request` asks for into `bytes` (a new file, fsynced) and returns its
/// manifest. A zero run is described, not copied (see [`packed::is_zero_run`]).
fn save_bytes(
    fs: &dyn FileOps,
    request: &SaveRequest<'_>,
    bytes: &Path,
) -> Result<Manifest, QuarantineError> {
    let zero_run = packed::is_zero_run(request)?;
    let xxh3 = if request.range.is_empty() || zero_run {
        fs.write_file(bytes, &mut |_| Ok(()))
            .map_err(io_err(bytes))?;
        xxhash_rust::xxh3::xxh3_64(&[])
    } else {
        let src = request.data_dir.join(request.file);
        fs.copy_range(&src, request.range, bytes)
            .map_err(io_err(&src))?
    };
    Ok(request.manifest(xxh3, zero_run, None))
}

/// Writes `folder/manifest.json` through a temporary file, fsynced, and a rename: a
/// manifest that exists is always whole. The folder's entry is not synced here.
fn write_manifest(
    fs: &dyn FileOps,
    folder: &Path,
    manifest: &impl serde::Serialize,
) -> Result<(), QuarantineError> {
    let tmp = write_manifest_aside(fs, folder, manifest)?;
    let path = folder.join(MANIFEST);
    fs.rename(&tmp, &path).map_err(io_err(&path))
}

/// The first half of [`write_manifest`]: the manifest written and fsynced under a
/// temporary name in `folder`, which it returns.
fn write_manifest_aside(
    fs: &dyn FileOps,
    folder: &Path,
    manifest: &impl serde::Serialize,
) -> Result<PathBuf, QuarantineError> {
    let tmp = folder.join("manifest.json.tmp");
    // Streamed through the file's buffer: a run's manifest is 1 KB a repair, and a
    // 20 MB `Vec` grown by doubling cost a large run more than writing it.
    let mut not_serialized = None;
    let written = fs.write_file(&tmp, &mut |w| {
        serde_json::to_writer_pretty(&mut *w, manifest).map_err(|e| {
            if e.is_io() {
                io::Error::from(e)
            } else {
                not_serialized = Some(e.to_string());
                io::Error::other("the manifest cannot be serialized")
            }
        })
    });
    if let Some(detail) = not_serialized {
        return Err(QuarantineError::BadManifest {
            path: folder.join(MANIFEST),
            detail,
        });
    }
    written.map_err(io_err(&tmp))?;
    Ok(tmp)
}
