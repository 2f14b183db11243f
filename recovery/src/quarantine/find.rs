//! Reading the quarantine: finding a repair's manifest (in its own folder or a run's),
//! checking its saved bytes, listing everything. Nothing here writes.

use super::home::{Home, Saved};
use super::manifest::{
    check_paths, io_err, read_manifest, same_repair, Manifest, QuarantineError, MANIFEST,
};
use super::paths::Quarantine;
use super::run::{RunId, RunManifest};
use crate::fsops::{file_digest, file_len, list_dir, range_digest, StdFs};
use journal::{RepairAction, RepairId};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

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
                    packed: m.packed,
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
    pub(super) fn load_own(&self, id: RepairId) -> Result<Option<Manifest>, QuarantineError> {
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
        if manifest.packed.is_some() {
            return Err(QuarantineError::BadManifest {
                path,
                detail: "it names a slice of a packed file, which only runs have".into(),
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
        let entries = match list_dir(self.dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(self.dir())(e)),
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
    /// describes: a file of their own whole, or their slice of a run's packed file.
    pub fn verify(&self, home: &Home, m: &Manifest) -> Result<(), QuarantineError> {
        verify_saved(&home.saved(m), m)?;
        for f in &m.files {
            let path = home.folder().join(&f.saved_as);
            let found = file_digest(&StdFs, &path).map_err(io_err(&path))?;
            if found != Some((f.len, f.xxh3)) {
                return Err(QuarantineError::BytesChanged {
                    path,
                    expected_len: f.len,
                    expected: f.xxh3,
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
            let home = |id, packed| Home::Run {
                folder: folder.clone(),
                run,
                id,
                packed,
            };
            match self.load_run(run) {
                Ok(Some(m)) => out.extend(m.repairs.into_iter().map(|m| Listed {
                    id: m.repair,
                    home: home(m.repair, m.packed),
                    manifest: Ok(m),
                })),
                Ok(None) => {}
                Err(e) => out.push(Listed {
                    id: run.first,
                    home: home(run.first, None),
                    manifest: Err(e),
                }),
            }
        }
        out.sort_by_key(|l| l.id);
        Ok(out)
    }
}

/// Checks the saved bytes `saved` of `m` (a zero run's are empty: the zeros are only
/// described). A slice is checked against the packed file's length first, so that a
/// crafted offset is named as such.
pub(super) fn verify_saved(saved: &Saved, m: &Manifest) -> Result<(), QuarantineError> {
    let Saved {
        path,
        range,
        packed,
    } = saved;
    let len = m.saved_len();
    let changed = || QuarantineError::BytesChanged {
        path: path.clone(),
        expected_len: len,
        expected: m.xxh3,
    };
    if !packed {
        let found = file_digest(&StdFs, path).map_err(io_err(path))?;
        return if found == Some((len, m.xxh3)) {
            Ok(())
        } else {
            Err(changed())
        };
    }
    let bad = |why: String| QuarantineError::BadSlice {
        path: path.clone(),
        repair: m.repair,
        offset: range.start,
        len,
        why,
    };
    if range.len() != len {
        return Err(bad("ends past the largest offset".into()));
    }
    let Some(packed_len) = file_len(&StdFs, path).map_err(io_err(path))? else {
        return Err(changed());
    };
    if range.end > packed_len {
        return Err(bad(format!(
            "ends past the packed file's {packed_len} bytes"
        )));
    }
    match range_digest(&StdFs, path, *range).map_err(io_err(path))? {
        Some(found) if found == m.xxh3 => Ok(()),
        _ => Err(bad(format!("do not match their XXH3 {:#018x}", m.xxh3))),
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

/// The repair id a folder of its own is named after (`r00000012`).
fn parse_folder_name(name: &str) -> Option<RepairId> {
    name.strip_prefix('r')?.parse().ok().map(RepairId)
}
