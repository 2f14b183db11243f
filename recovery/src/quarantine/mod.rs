//! The quarantine: where every byte a repair removes is kept, with a manifest that
//! says where it came from, so `restore` can put it back exactly.
//!
//! Layout, under `<state dir>/quarantine/`:
//! - a run folder per executor run (`run-r00000012-r00000020/`, see [`run`]): each
//!   repair's removed bytes in `r00000012.bytes`, and one `manifest.json` listing
//!   every repair of the run;
//! - a folder per repair (`r00000012/`: `bytes`, whole files `file-0` …, and its
//!   `manifest.json`) for what runs alone (a restore's own save, a salvage re-lay)
//!   and for everything releases before run folders wrote. Both are read.
//!
//! A manifest is written last, through a temporary file that is fsynced and renamed,
//! after the bytes it describes are durable: a manifest that exists always describes
//! bytes already on disk, and a folder without one holds nothing relied upon.

mod manifest;
mod run;
#[cfg(test)]
mod tests;

pub use manifest::{
    action_paths_are_plain, check_paths, is_plain_relative, whole_file_name, Manifest,
    QuarantineError, SaveRequest, SavedFile, BYTES, MANIFEST, ZERO_RUN_MIN,
};
pub use run::{RunId, RunManifest};

use crate::fsops::{file_digest, list_dir, FileOps, StdFs, SyncRound, SYNC_THREADS};
use journal::{ByteRange, RelayOriginal, RepairAction, RepairId};
use manifest::{io_err, read_manifest, MANIFEST_VERSION};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The quarantine folder inside a state directory.
#[derive(Clone, Debug)]
pub struct Quarantine {
    dir: PathBuf,
}

/// Where one repair's saved bytes and manifest are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Home {
    /// Its own folder, `r00000012/`.
    Own(PathBuf),
    /// An entry of a run folder.
    Run {
        folder: PathBuf,
        run: RunId,
        id: RepairId,
    },
}

impl Home {
    pub fn folder(&self) -> &Path {
        match self {
            Home::Own(folder) | Home::Run { folder, .. } => folder,
        }
    }

    /// The manifest that describes the repair (a run's one manifest for a run entry).
    pub fn manifest(&self) -> PathBuf {
        self.folder().join(MANIFEST)
    }

    /// The repair's saved bytes.
    pub fn bytes(&self) -> PathBuf {
        match self {
            Home::Own(folder) => folder.join(BYTES),
            Home::Run { folder, id, .. } => folder.join(RunId::bytes_name(*id)),
        }
    }

    pub fn run(&self) -> Option<RunId> {
        match self {
            Home::Own(_) => None,
            Home::Run { run, .. } => Some(*run),
        }
    }
}

/// One listing of the quarantine folder: which repairs have their own folder, and
/// which runs have one.
#[derive(Debug, Default)]
struct Catalog {
    own: BTreeSet<RepairId>,
    runs: Vec<RunId>,
}

/// Finds repairs' manifests against one listing, reading each run's manifest once
/// (a run of thousands of repairs is looked up thousands of times in one phase).
pub struct Finder<'q> {
    quarantine: &'q Quarantine,
    catalog: Catalog,
    runs: Mutex<BTreeMap<RunId, Arc<RunManifest>>>,
}

impl Finder<'_> {
    /// The manifest of repair `id` and where it is, `None` when nothing describes it
    /// (a folder without a manifest is a save a crash interrupted).
    pub fn find(&self, id: RepairId) -> Result<Option<(Home, Manifest)>, QuarantineError> {
        if self.catalog.own.contains(&id) {
            if let Some(m) = self.quarantine.load_own(id)? {
                return Ok(Some((Home::Own(self.quarantine.repair_dir(id)), m)));
            }
        }
        for run in self.catalog.runs.iter().filter(|r| r.contains(id)) {
            let Some(manifest) = self.run_manifest(*run)? else {
                continue;
            };
            if let Some(m) = manifest.get(id) {
                let home = Home::Run {
                    folder: self.quarantine.run_dir(*run),
                    run: *run,
                    id,
                };
                return Ok(Some((home, m.clone())));
            }
        }
        Ok(None)
    }

    /// Whether repair `id` saved `file` for `action` completely before (a rerun after
    /// a crash). A manifest of another repair under the same id (ids reused after
    /// the journal was lost) is `IdTaken`, and saved bytes that no longer match
    /// their manifest are `BytesChanged`: either may be the only copy.
    pub fn saved_before(
        &self,
        id: RepairId,
        action: &RepairAction,
        file: &str,
    ) -> Result<bool, QuarantineError> {
        let Some((home, m)) = self.find(id)? else {
            return Ok(false);
        };
        same_repair(home.folder(), &m, action, file)?;
        self.quarantine.verify(&home, &m)?;
        Ok(true)
    }

    /// Whether repair `id` has a manifest whose saved bytes are complete and
    /// unchanged; bytes that changed are an error.
    pub fn verified(&self, id: RepairId) -> Result<bool, QuarantineError> {
        let Some((home, m)) = self.find(id)? else {
            return Ok(false);
        };
        self.quarantine.verify(&home, &m)?;
        Ok(true)
    }

    fn run_manifest(&self, run: RunId) -> Result<Option<Arc<RunManifest>>, QuarantineError> {
        let cached = |runs: &BTreeMap<RunId, Arc<RunManifest>>| runs.get(&run).cloned();
        if let Some(m) = cached(&self.runs.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(Some(m));
        }
        let Some(m) = self.quarantine.load_run(run)? else {
            return Ok(None);
        };
        let m = Arc::new(m);
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Some(runs.entry(run).or_insert(m).clone()))
    }
}

/// What [`Quarantine::list_each`] finds for one repair.
#[derive(Debug)]
pub struct Listed {
    pub id: RepairId,
    pub home: Home,
    /// Its manifest, or why it cannot be read (for a run, the whole run's manifest:
    /// then `id` is the run's first).
    pub manifest: Result<Manifest, QuarantineError>,
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

    /// The folder of a repair saved on its own (see the module's layout).
    pub fn repair_dir(&self, id: RepairId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    pub fn run_dir(&self, run: RunId) -> PathBuf {
        self.dir.join(run.to_string())
    }

    /// Where whole file `m` of re-lay `id` is saved.
    pub fn saved_file(&self, id: RepairId, m: &SavedFile) -> PathBuf {
        self.repair_dir(id).join(&m.saved_as)
    }

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
        let manifest = save_bytes(fs, &request, &dir.join(BYTES), None)?;
        self.write_own_manifest(fs, &manifest)?;
        Ok(manifest)
    }

    /// Saves what every request asks for into one new run folder, in parallel,
    /// leaving the copies' fsyncs to `round`; runs `round` (the bytes, the folder and
    /// the folders above it durable), then writes the run's manifest (fsynced and
    /// renamed) and adds its folder to `round`, which the caller runs before it cuts
    /// anything. A folder of that name without a manifest (a save a crash
    /// interrupted) is written over; one with a manifest is refused. An error names
    /// the request it is about.
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
        let manifests = crate::parallel::map_ordered(requests, SYNC_THREADS, |r| {
            let bytes = dir.join(RunId::bytes_name(r.id));
            save_bytes(fs, r, &bytes, Some(round)).map_err(|e| (r.id, e))
        })?;
        round.add_dir(&dir);
        round.add_dir(&self.dir);
        if let Some(state) = self.dir.parent() {
            round.add_dir(state);
        }
        fs.step("sync saved bytes");
        round
            .run(fs)
            .map_err(|(path, cause)| (first, QuarantineError::Io { path, cause }))?;
        let manifest = RunManifest::new(run, manifests);
        write_manifest(fs, &dir, &manifest).map_err(|e| (first, e))?;
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
        fs.sync_dir(&self.dir).map_err(io_err(&self.dir))
    }

    /// A finder against the quarantine as it is now.
    pub fn finder(&self) -> Result<Finder<'_>, QuarantineError> {
        Ok(Finder {
            quarantine: self,
            catalog: self.catalog()?,
            runs: Mutex::default(),
        })
    }

    /// The manifest of repair `id` and where it is; `None` when there is none yet.
    pub fn find(&self, id: RepairId) -> Result<Option<(Home, Manifest)>, QuarantineError> {
        self.finder()?.find(id)
    }

    /// The manifest of repair `id`, `None` when there is none yet.
    pub fn load(&self, id: RepairId) -> Result<Option<Manifest>, QuarantineError> {
        Ok(self.find(id)?.map(|(_, m)| m))
    }

    /// The manifest in repair `id`'s own folder, `None` when there is none.
    fn load_own(&self, id: RepairId) -> Result<Option<Manifest>, QuarantineError> {
        let path = self.repair_dir(id).join(MANIFEST);
        let Some(text) = read_if_there(&path)? else {
            return Ok(None);
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

    /// The manifest of run folder `run`, `None` when it has none.
    pub fn load_run(&self, run: RunId) -> Result<Option<RunManifest>, QuarantineError> {
        let path = self.run_dir(run).join(MANIFEST);
        match read_if_there(&path)? {
            None => Ok(None),
            Some(text) => RunManifest::parse(&path, run, &text).map(Some),
        }
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

    /// Checks the paths `m` names (see [`check_paths`]).
    pub fn check_paths(&self, home: &Home, m: &Manifest) -> Result<(), QuarantineError> {
        check_paths(&home.manifest(), m)
    }

    /// The highest repair id the quarantine has a folder for, its own or in a run's
    /// span.
    pub fn highest_id(&self) -> Result<Option<RepairId>, QuarantineError> {
        let catalog = self.catalog()?;
        let own = catalog.own.last().copied();
        Ok(own.max(catalog.runs.iter().map(|r| r.last).max()))
    }

    /// Everything in the quarantine folder, whatever its kind: a name taken by a
    /// symbolic link is taken too.
    fn catalog(&self) -> Result<Catalog, QuarantineError> {
        let entries = match list_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut catalog = Catalog::default();
        for entry in entries {
            let name = entry.name.to_string_lossy();
            if let Some(id) = parse_folder_name(&name) {
                catalog.own.insert(id);
            } else if let Some(run) = RunId::parse(&name) {
                catalog.runs.push(run);
            }
        }
        catalog.runs.sort();
        Ok(catalog)
    }

    /// The manifest of repair `id` when its saved bytes are complete and unchanged,
    /// and where it is.
    pub fn load_verified(&self, id: RepairId) -> Result<Option<(Home, Manifest)>, QuarantineError> {
        let Some((home, m)) = self.find(id)? else {
            return Ok(None);
        };
        self.verify(&home, &m)?;
        Ok(Some((home, m)))
    }

    /// Checks that the saved bytes of `m`, kept at `home`, are the ones its manifest
    /// describes.
    pub fn verify(&self, home: &Home, m: &Manifest) -> Result<(), QuarantineError> {
        let whole = m
            .files
            .iter()
            .map(|f| (home.folder().join(&f.saved_as), f.len, f.xxh3));
        // A zero run's bytes are empty: the zeros are only described.
        let saved_len = if m.zero_run { 0 } else { m.range.len() };
        for (path, len, xxh3) in std::iter::once((home.bytes(), saved_len, m.xxh3)).chain(whole) {
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

    /// Every manifest in the quarantine, oldest repair first; the first unreadable
    /// one is an error.
    pub fn list(&self) -> Result<Vec<Manifest>, QuarantineError> {
        self.list_each()?.into_iter().map(|l| l.manifest).collect()
    }

    /// Every repair in the quarantine, oldest first, each with its manifest or the
    /// error that names why it cannot be read: one bad manifest does not hide the
    /// others. A folder without a manifest (a save a crash interrupted) is left out.
    /// `Err` only when the quarantine folder itself cannot be listed.
    pub fn list_each(&self) -> Result<Vec<Listed>, QuarantineError> {
        let catalog = self.catalog()?;
        let mut out = Vec::new();
        for &id in &catalog.own {
            let home = Home::Own(self.repair_dir(id));
            match self.load_own(id) {
                Ok(Some(m)) => out.push(Listed {
                    id,
                    home,
                    manifest: Ok(m),
                }),
                Ok(None) => {}
                Err(e) => out.push(Listed {
                    id,
                    home,
                    manifest: Err(e),
                }),
            }
        }
        for &run in &catalog.runs {
            let folder = self.run_dir(run);
            let home = |id| Home::Run {
                folder: folder.clone(),
                run,
                id,
            };
            match self.load_run(run) {
                Ok(Some(m)) => out.extend(m.repairs.into_iter().map(|m| Listed {
                    id: m.repair,
                    home: home(m.repair),
                    manifest: Ok(m),
                })),
                Ok(None) => {}
                Err(e) => out.push(Listed {
                    id: run.first,
                    home: home(run.first),
                    manifest: Err(e),
                }),
            }
        }
        out.sort_by_key(|l| l.id);
        Ok(out)
    }
}

/// A manifest's text, `None` when there is no manifest; unreadable (too large, not a
/// regular file, a link) is `BadManifest`.
fn read_if_there(path: &Path) -> Result<Option<Vec<u8>>, QuarantineError> {
    match read_manifest(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(QuarantineError::BadManifest {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// `m`, found under the id a repair is about to save with, is that repair's.
fn same_repair(
    folder: &Path,
    m: &Manifest,
    action: &RepairAction,
    file: &str,
) -> Result<(), QuarantineError> {
    if m.action != *action || m.file != file {
        return Err(QuarantineError::IdTaken {
            path: folder.to_path_buf(),
            found: m.action.to_string(),
            wanted: action.to_string(),
        });
    }
    Ok(())
}

/// Saves what `request` asks for into `bytes` (a new file) and returns its manifest.
/// With a `round`, the copy's fsync is left to it. A long zero tail of a truncation
/// (a file extended but never written, or zero-filled after a power loss) is
/// described, not copied: it may be gigabytes of holes.
fn save_bytes(
    fs: &dyn FileOps,
    request: &SaveRequest<'_>,
    bytes: &Path,
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
    } = *request;
    let src = data_dir.join(file);
    let truncation = matches!(
        action,
        RepairAction::TruncateLog { .. } | RepairAction::TruncateIndex { .. }
    );
    let zero_run = truncation
        && range.len() >= ZERO_RUN_MIN
        && crate::fsops::is_zero_range(&src, range).map_err(io_err(&src))? == Some(true);
    let xxh3 = if range.is_empty() || zero_run {
        fs.write_file(bytes, &mut |_| Ok(()))
            .map_err(io_err(bytes))?;
        xxhash_rust::xxh3::xxh3_64(&[])
    } else {
        match round {
            Some(round) => fs.copy_range_in_round(&src, range, bytes, round),
            None => fs.copy_range(&src, range, bytes),
        }
        .map_err(io_err(&src))?
    };
    Ok(Manifest {
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
    })
}

/// Writes `folder/manifest.json` through a temporary file, fsynced, and a rename: a
/// manifest that exists is always whole. The folder's entry is not synced here.
fn write_manifest(
    fs: &dyn FileOps,
    folder: &Path,
    manifest: &impl serde::Serialize,
) -> Result<(), QuarantineError> {
    let path = folder.join(MANIFEST);
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| QuarantineError::BadManifest {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    let tmp = folder.join("manifest.json.tmp");
    fs.write_file(&tmp, &mut |w| w.write_all(&json))
        .map_err(io_err(&tmp))?;
    fs.rename(&tmp, &path).map_err(io_err(&path))
}

/// The repair id a folder of its own is named after (`r00000012`).
fn parse_folder_name(name: &str) -> Option<RepairId> {
    name.strip_prefix('r')?.parse().ok().map(RepairId)
}
