//! The quarantine: where every byte a repair removes is kept, with a manifest that
//! says where it came from, so `restore` can put it back exactly.
//!
//! Layout: `<state dir>/quarantine/<repair id>/bytes` holds the removed bytes and
//! `manifest.json` describes them. The manifest is written last, through a temporary
//! file and a rename, so a manifest that exists always describes bytes already on disk.

use crate::fsops::{file_digest, list_dir, FileOps, StdFs, SyncRound};
use journal::{ByteRange, RelayOriginal, RepairAction, RepairId};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
pub const BYTES: &str = "bytes";
const MANIFEST_VERSION: u32 = 1;
/// No manifest iggy-warden writes comes near this (a re-lay of thousands of files
/// is a few hundred KiB); a larger one was not written by it.

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("quarantine {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error("quarantine manifest {path} is unreadable: {detail}")]
    BadManifest { path: PathBuf, detail: String },
    #[error(
        "quarantine folder {path} already holds another repair ({found}); refusing to \
         save {wanted} there, nothing was changed"
    )]
    IdTaken {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("quarantine manifest {path} names {file:?}: {why}; refusing to restore it")]
    UnsafePath {
        path: PathBuf,
        file: String,
        why: &'static str,
    },
    #[error(
        "quarantined bytes {path} do not match their manifest (expected {expected_len} bytes \
         with XXH3 {expected:#018x})"
    )]
    BytesChanged {
        path: PathBuf,
        expected_len: u64,
        expected: u64,
    },
}

/// Shortest zero tail described as a zero run rather than copied: shorter ones cost
/// little either way.
pub const ZERO_RUN_MIN: u64 = 1 << 20;

/// Largest manifest read: a salvage of thousands of segments writes a few MiB.
const MAX_MANIFEST: u64 = 64 << 20;

/// A manifest's bytes, read only from a regular file and at most [`MAX_MANIFEST`]
/// of them (the state directory may be another user's: a sparse or endless
/// `manifest.json` must not take the memory). Too long or not a file is
/// `InvalidData`.
fn read_manifest(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    // No link is followed, and only a regular file is opened (a FIFO would block).
    let file = crate::fsops::open_read(path).map_err(|e| {
        if crate::fsops::is_symlink_refusal(&e) || e.kind() == io::ErrorKind::InvalidInput {
            invalid(e.to_string())
        } else {
            e
        }
    })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > MAX_MANIFEST {
        return Err(invalid(format!(
            "{} bytes, more than the {MAX_MANIFEST} a manifest may have",
            meta.len()
        )));
    }
    let mut text = Vec::new();
    file.take(MAX_MANIFEST + 1).read_to_end(&mut text)?;
    if text.len() as u64 > MAX_MANIFEST {
        return Err(invalid(format!(
            "more than the {MAX_MANIFEST} bytes a manifest may have"
        )));
    }
    Ok(text)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> QuarantineError + '_ {
    move |cause| QuarantineError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// What one repair removed, and from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub repair: RepairId,
    pub action: RepairAction,
    pub reason: String,
    /// The data directory the repair ran on.
    pub data_dir: PathBuf,
    /// The file the bytes came from, relative to `data_dir`.
    pub file: String,
    /// Where the saved bytes sat in `file`; empty when the repair removed nothing
    /// (it created `file`).
    pub range: ByteRange,
    /// XXH3-64 of the saved bytes (for a zero run, of the empty `bytes` file).
    pub xxh3: u64,
    /// The cut range was `range.len()` zero bytes, described here instead of copied:
    /// `bytes` is empty, and restoring extends the file with that many zeros (a
    /// hole). Only for a truncation's tail of at least [`ZERO_RUN_MIN`] bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zero_run: bool,
    /// The file did not exist before the repair: restoring removes it.
    pub created_file: bool,
    /// Whole files saved by a repair that replaces several (a salvage re-lay); then
    /// `file` is their folder and `range` is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SavedFile>,
}

/// What [`Quarantine::save_deferred`] saves: `range` of `data_dir/file` for repair
/// `id`; `created_file` when the repair creates `file` (nothing is saved).
#[derive(Clone, Copy, Debug)]
pub struct SaveRequest<'a> {
    pub id: RepairId,
    pub action: &'a RepairAction,
    pub reason: &'a str,
    pub data_dir: &'a Path,
    pub file: &'a str,
    pub range: ByteRange,
    pub created_file: bool,
}

/// The name of whole file number `i` in a repair's quarantine folder.
pub fn whole_file_name(i: usize) -> String {
    format!("file-{i}")
}

/// One whole file in a repair's quarantine folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFile {
    /// Where it was, relative to the data directory.
    pub file: String,
    pub len: u64,
    pub xxh3: u64,
    /// Its name inside the repair's quarantine folder.
    pub saved_as: String,
}

/// The quarantine folder inside a state directory.
#[derive(Clone, Debug)]
pub struct Quarantine {
    dir: PathBuf,
}

impl Quarantine {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("quarantine"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn repair_dir(&self, id: RepairId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    pub fn bytes_path(&self, id: RepairId) -> PathBuf {
        self.repair_dir(id).join(BYTES)
    }

    /// Saves `range` of `data_dir/file` for repair `id` and returns its manifest. When
    /// a complete copy exists already (a rerun after a crash) it is kept as it is.
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
        let saved = SaveRequest {
            id,
            action,
            reason,
            data_dir,
            file,
            range,
            created_file,
        };
        self.save_in_round(fs, &saved, None)
    }

    /// [`Quarantine::save`], except that the folders whose entries changed (the
    /// repair's folder, the quarantine folder and the state directory) are added to
    /// `round` instead of synced here: the caller runs the round, once for a whole
    /// plan, before it cuts anything. The saved files themselves are fsynced here.
    pub fn save_deferred(
        &self,
        fs: &dyn FileOps,
        saved: &SaveRequest<'_>,
        round: &SyncRound,
    ) -> Result<Manifest, QuarantineError> {
        self.save_in_round(fs, saved, Some(round))
    }

    fn save_in_round(
        &self,
        fs: &dyn FileOps,
        saved: &SaveRequest<'_>,
        round: Option<&SyncRound>,
    ) -> Result<Manifest, QuarantineError> {
        let SaveRequest {
            id,
            action,
            reason,
            data_dir,
            file,
            range,
            created_file,
        } = *saved;
        if let Some(m) = self.load_same(id, action, file)? {
            return Ok(m);
        }
        let dir = self.repair_dir(id);
        fs.create_dir_all(&dir).map_err(io_err(&dir))?;
        let bytes = dir.join(BYTES);
        let src = data_dir.join(file);
        let truncation = matches!(
            action,
            RepairAction::TruncateLog { .. } | RepairAction::TruncateIndex { .. }
        );
        // A long zero tail (a file extended but never written, or zero-filled after a
        // power loss) is described, not copied: it may be gigabytes of holes.
        let zero_run = truncation
            && range.len() >= ZERO_RUN_MIN
            && crate::fsops::is_zero_range(&src, range).map_err(io_err(&src))? == Some(true);
        let xxh3 = if range.is_empty() || zero_run {
            fs.write_file(&bytes, &mut |_| Ok(()))
                .map_err(io_err(&bytes))?;
            xxhash_rust::xxh3::xxh3_64(&[])
        } else {
            fs.copy_range(&src, range, &bytes).map_err(io_err(&src))?
        };
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            repair: id,
            action: action.clone(),
            reason: reason.to_string(),
            data_dir: data_dir.to_path_buf(),
            file: file.to_string(),
            range,
            xxh3,
            zero_run,
            created_file,
            files: Vec::new(),
        };
        self.write_manifest(fs, &manifest, round)?;
        Ok(manifest)
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
        };
        self.write_manifest(fs, &manifest, None)?;
        Ok(manifest)
    }

    /// Writes `manifest.json` last, through a temporary file and a rename, so a
    /// manifest always describes bytes already on disk.
    /// With a `round`, the folders are added to it instead of synced here.
    fn write_manifest(
        &self,
        fs: &dyn FileOps,
        manifest: &Manifest,
        round: Option<&SyncRound>,
    ) -> Result<(), QuarantineError> {
        let dir = self.repair_dir(manifest.repair);
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| QuarantineError::BadManifest {
                path: dir.join(MANIFEST),
                detail: e.to_string(),
            })?;
        let tmp = dir.join("manifest.json.tmp");
        fs.write_file(&tmp, &mut |w| w.write_all(&json))
            .map_err(io_err(&tmp))?;
        let path = dir.join(MANIFEST);
        fs.rename(&tmp, &path).map_err(io_err(&path))?;
        if let Some(round) = round {
            round.add(&dir);
            round.add(&self.dir);
            // The quarantine folder may be new: its own entry counts too.
            if let Some(state) = self.dir.parent() {
                round.add(state);
            }
            return Ok(());
        }
        fs.sync_dir(&dir).map_err(io_err(&dir))?;
        fs.sync_dir(&self.dir).map_err(io_err(&self.dir))
    }

    /// The manifest of repair `id`, `None` when there is none yet.
    pub fn load(&self, id: RepairId) -> Result<Option<Manifest>, QuarantineError> {
        let path = self.repair_dir(id).join(MANIFEST);
        let text = match read_manifest(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(QuarantineError::BadManifest {
                    path,
                    detail: e.to_string(),
                })
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| QuarantineError::BadManifest {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if manifest.repair != id {
            return Err(QuarantineError::BadManifest {
                path,
                detail: format!("it describes repair {}, not {id}", manifest.repair),
            });
        }
        Ok(Some(manifest))
    }

    /// The complete earlier save of this very repair (a rerun after a crash), or
    /// `None`. A manifest of another repair under the same id (ids reused after the
    /// journal was lost) is an error: its bytes may be the only copy.
    fn load_same(
        &self,
        id: RepairId,
        action: &RepairAction,
        file: &str,
    ) -> Result<Option<Manifest>, QuarantineError> {
        let Some(m) = self.load(id)? else {
            return Ok(None);
        };
        if m.action != *action || m.file != file {
            return Err(QuarantineError::IdTaken {
                path: self.repair_dir(id),
                found: m.action.to_string(),
                wanted: action.to_string(),
            });
        }
        self.verify(&m)?;
        Ok(Some(m))
    }

    /// Checks that every path `m` names stays inside the data directory and is the
    /// one its action names: a manifest is data on disk, and may have been crafted.
    pub fn check_paths(&self, m: &Manifest) -> Result<(), QuarantineError> {
        let path = self.repair_dir(m.repair).join(MANIFEST);
        let bad = |file: &str, why| QuarantineError::UnsafePath {
            path: path.clone(),
            file: file.to_string(),
            why,
        };
        let named: Vec<&str> = match &m.action {
            // What a restore saved is checked when it is itself restored: never
            // (restoring a restore is refused), so only its paths' form matters.
            RepairAction::Restore { .. } => m.files.iter().map(|f| f.file.as_str()).collect(),
            RepairAction::Relay { originals, .. } => {
                if m.files.len() != originals.len()
                    || m.files.iter().zip(originals).any(|(f, o)| f.file != o.path)
                {
                    return Err(bad(
                        &m.file,
                        "its saved files are not the ones its action replaced",
                    ));
                }
                originals.iter().map(|o| o.path.as_str()).collect()
            }
            _ if !m.files.is_empty() => {
                return Err(bad(&m.file, "whole saved files belong only to a re-lay"))
            }
            _ => Vec::new(),
        };
        if m.zero_run
            && !matches!(
                m.action,
                RepairAction::TruncateLog { .. } | RepairAction::TruncateIndex { .. }
            )
        {
            return Err(bad(&m.file, "a zero run belongs only to a truncation"));
        }
        let is_restore = matches!(m.action, RepairAction::Restore { .. });
        if !is_restore && m.file != m.action.rel_path() {
            return Err(bad(&m.file, "not the file its action names"));
        }
        for file in std::iter::once(m.file.as_str()).chain(named) {
            if !is_plain_relative(file) {
                return Err(bad(file, "not a plain path relative to the data directory"));
            }
        }
        for f in &m.files {
            if !is_plain_relative(&f.saved_as) || f.saved_as.contains('/') {
                return Err(bad(
                    &f.saved_as,
                    "not a file name inside its quarantine folder",
                ));
            }
        }
        Ok(())
    }

    /// The highest repair id that has a folder in the quarantine.
    pub fn highest_id(&self) -> Result<Option<RepairId>, QuarantineError> {
        let mut highest = None;
        for entry in self.entries()? {
            if let Some(id) = parse_folder_name(&entry.name.to_string_lossy()) {
                highest = highest.max(Some(id));
            }
        }
        Ok(highest)
    }

    /// Everything in the quarantine folder, whatever its kind: a name taken by a
    /// symbolic link is taken too.
    fn entries(&self) -> Result<Vec<crate::fsops::DirEntry>, QuarantineError> {
        match list_dir(&self.dir) {
            Ok(e) => Ok(e),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err(&self.dir)(e)),
        }
    }

    /// The manifest of repair `id` when its saved bytes are complete and unchanged.
    pub fn load_verified(&self, id: RepairId) -> Result<Option<Manifest>, QuarantineError> {
        let Some(m) = self.load(id)? else {
            return Ok(None);
        };
        self.verify(&m)?;
        Ok(Some(m))
    }

    /// Checks that the saved bytes of `m` are the ones its manifest describes.
    pub fn verify(&self, m: &Manifest) -> Result<(), QuarantineError> {
        let whole = m
            .files
            .iter()
            .map(|f| (self.repair_dir(m.repair).join(&f.saved_as), f.len, f.xxh3));
        // A zero run's `bytes` is empty: the zeros are only described.
        let saved_len = if m.zero_run { 0 } else { m.range.len() };
        for (path, len, xxh3) in
            std::iter::once((self.bytes_path(m.repair), saved_len, m.xxh3)).chain(whole)
        {
            let found = file_digest(&StdFs, &path).map_err(io_err(&path))?;
            if found != Some((len, xxh3)) {
                return Err(QuarantineError::BytesChanged {
                    path,
                    expected_len: len,
                    expected: xxh3,
                });
            }
        }
        Ok(())
    }

    /// Where whole file number `i` of repair `id` is saved.
    pub fn saved_file(&self, id: RepairId, m: &SavedFile) -> PathBuf {
        self.repair_dir(id).join(&m.saved_as)
    }

    /// Every manifest in the quarantine, oldest repair first; the first unreadable
    /// one is an error.
    pub fn list(&self) -> Result<Vec<Manifest>, QuarantineError> {
        self.list_each()?.into_iter().map(|(_, m)| m).collect()
    }

    /// Every repair folder in the quarantine, oldest first, each with its manifest or
    /// the error that names why it cannot be read: one bad manifest does not hide the
    /// others. A folder without a manifest (a save a crash interrupted) is left out.
    /// `Err` only when the quarantine folder itself cannot be listed.
    #[allow(clippy::type_complexity)]
    pub fn list_each(
        &self,
    ) -> Result<Vec<(RepairId, Result<Manifest, QuarantineError>)>, QuarantineError> {
        let mut out = Vec::new();
        for entry in self.entries()? {
            let Some(id) = parse_folder_name(&entry.name.to_string_lossy()) else {
                continue;
            };
            match self.load(id) {
                Ok(Some(m)) => out.push((id, Ok(m))),
                Ok(None) => {}
                Err(e) => out.push((id, Err(e))),
            }
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }
}

/// Every path `action` names is relative to the data directory and made of plain
/// names: an action read back from the journal may have been crafted.
pub fn action_paths_are_plain(action: &RepairAction) -> bool {
    match action {
        RepairAction::Relay { originals, .. } => {
            originals.iter().all(|o| is_plain_relative(&o.path))
        }
        RepairAction::Restore { .. } => true,
        other => is_plain_relative(&other.rel_path()),
    }
}

/// Relative, and made only of plain names: no root, no `.` or `..`, not empty.
pub fn is_plain_relative(path: &str) -> bool {
    use std::path::Component;
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// The repair id a quarantine folder is named after (`r00000012`).
fn parse_folder_name(name: &str) -> Option<RepairId> {
    name.strip_prefix('r')?.parse().ok().map(RepairId)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_long_zero_tail_is_described_and_only_a_truncation_may_say_so() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let seg = journal::PartitionId::new(0, 0, 0).segment(0);
        let rel = seg.rel_log();
        let path = data.join(&rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"kept").unwrap();
        let len = 4 + 2 * ZERO_RUN_MIN;
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
        let q = Quarantine::new(&tmp.path().join("state"));
        let action = RepairAction::TruncateLog {
            segment: seg,
            keep_len: 4,
            original_len: len,
        };
        let range = ByteRange::new(4, len);
        let m = q
            .save(
                &StdFs,
                RepairId(1),
                &action,
                "zeros",
                &data,
                &rel,
                range,
                false,
            )
            .unwrap();
        assert!(m.zero_run);
        assert_eq!(fs::metadata(q.bytes_path(m.repair)).unwrap().len(), 0);
        assert_eq!(q.load_verified(m.repair).unwrap(), Some(m.clone()));
        q.check_paths(&m).unwrap();
        // A crafted manifest may not claim zeros for another kind of repair.
        let mut crafted = m.clone();
        crafted.action = RepairAction::QuarantineFile {
            path: rel.clone(),
            len,
        };
        let err = q.check_paths(&crafted).unwrap_err();
        assert!(err.to_string().contains("zero run"), "{err}");
        // Written zeros count too; a short zero tail is still copied.
        fs::write(&path, vec![0u8; 100]).unwrap();
        let small = RepairAction::TruncateLog {
            segment: seg,
            keep_len: 0,
            original_len: 100,
        };
        let m = q
            .save(
                &StdFs,
                RepairId(2),
                &small,
                "short",
                &data,
                &rel,
                ByteRange::new(0, 100),
                false,
            )
            .unwrap();
        assert!(!m.zero_run);
        assert_eq!(fs::read(q.bytes_path(m.repair)).unwrap(), vec![0u8; 100]);
    }

    #[test]
    fn a_giant_or_unreadable_manifest_is_bad_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let q = Quarantine::new(tmp.path());
        let id = RepairId(7);
        fs::create_dir_all(q.repair_dir(id)).unwrap();
        let path = q.repair_dir(id).join(MANIFEST);
        fs::File::create(&path).unwrap().set_len(50 << 30).unwrap();
        let err = q.load(id).unwrap_err();
        assert!(
            matches!(err, QuarantineError::BadManifest { .. })
                && err.to_string().contains("more than"),
            "{err}"
        );
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let err = q.load(id).unwrap_err();
        assert!(
            matches!(err, QuarantineError::BadManifest { .. })
                && err.to_string().contains("symbolic link"),
            "{err}"
        );
    }

    #[test]
    fn saving_under_an_id_that_holds_another_repair_is_refused_and_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("a.log"), b"0123456789").unwrap();
        fs::write(data.join("b.log"), b"abcdefghij").unwrap();
        let q = Quarantine::new(&tmp.path().join("state"));
        let id = RepairId(1);
        let cut = |file: &str| RepairAction::QuarantineFile {
            path: file.into(),
            len: 10,
        };
        let range = ByteRange::new(4, 10);
        let save = |file: &str| q.save(&StdFs, id, &cut(file), "r", &data, file, range, false);
        save("a.log").unwrap();
        let saved = fs::read(q.bytes_path(id)).unwrap();
        // The same repair again (a rerun) finds its complete save.
        save("a.log").unwrap();
        let other = save("b.log");
        assert!(
            matches!(other, Err(QuarantineError::IdTaken { .. })),
            "{other:?}"
        );
        assert_eq!(fs::read(q.bytes_path(id)).unwrap(), saved);
        assert_eq!(q.load(id).unwrap().unwrap().file, "a.log");
        assert_eq!(q.highest_id().unwrap(), Some(id));
    }
}
