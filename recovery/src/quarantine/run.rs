//! Run folders: the quarantine of one executor run, one folder and one manifest for
//! all its repairs (`run-r00000012-r00000020/`, with `r00000012.bytes` … and
//! `manifest.json`). A run of a thousand repairs then writes and syncs one manifest
//! and one folder, not a thousand of each; every repair keeps its own id, so
//! `restore` still takes one repair, or the whole run.

use crate::quarantine::manifest::{Manifest, QuarantineError};
use journal::{RepairAction, RepairId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// A run's repairs span `first..=last`; the folder is named after both, so a repair
/// is found by listing the quarantine, without reading every manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId {
    pub first: RepairId,
    pub last: RepairId,
}

const PREFIX: &str = "run-";
const RUN_MANIFEST_VERSION: u32 = 1;

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}-{}", self.first, self.last)
    }
}

impl RunId {
    /// The run that saves the repairs `ids` (not empty).
    pub fn of(ids: impl IntoIterator<Item = RepairId>) -> Option<Self> {
        let mut ids = ids.into_iter();
        let first = ids.next()?;
        let (first, last) = ids.fold((first, first), |(lo, hi), id| (lo.min(id), hi.max(id)));
        Some(Self { first, last })
    }

    /// The run a folder is named after (`run-r00000012-r00000020`), as [`RunId`]'s
    /// `Display` writes it; anything else is not a run folder.
    pub fn parse(name: &str) -> Option<Self> {
        let (first, last) = name.strip_prefix(PREFIX)?.split_once('-')?;
        let id = |s: &str| s.strip_prefix('r')?.parse().ok().map(RepairId);
        let run = Self {
            first: id(first)?,
            last: id(last)?,
        };
        // Only the form `Display` writes: one name per run.
        (run.first <= run.last && run.to_string() == name).then_some(run)
    }

    pub fn contains(&self, id: RepairId) -> bool {
        self.first <= id && id <= self.last
    }

    /// Where repair `id` of this run keeps its bytes, inside the run folder.
    pub fn bytes_name(id: RepairId) -> String {
        format!("{id}.bytes")
    }
}

/// The one manifest of a run folder: each repair's own manifest, in id order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunManifest {
    pub version: u32,
    /// The folder's name, repeated: a manifest copied into another folder is refused.
    pub run: String,
    pub repairs: Vec<Manifest>,
}

impl RunManifest {
    pub fn new(run: RunId, mut repairs: Vec<Manifest>) -> Self {
        repairs.sort_by_key(|m| m.repair);
        Self {
            version: RUN_MANIFEST_VERSION,
            run: run.to_string(),
            repairs,
        }
    }

    /// Parses the manifest of the run folder `run`, read from `path`, and checks that
    /// it describes that run: its name, and repairs with distinct ids inside the
    /// run's span that save byte ranges only (restores and re-lays, which save whole
    /// files, have folders of their own). Each repair's paths are checked when it is
    /// restored.
    pub fn parse(path: &Path, run: RunId, text: &[u8]) -> Result<Self, QuarantineError> {
        let bad = |detail: String| QuarantineError::BadManifest {
            path: path.to_path_buf(),
            detail,
        };
        let m: Self = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
        if m.version != RUN_MANIFEST_VERSION {
            return Err(bad(format!("run manifest version {}", m.version)));
        }
        if m.run != run.to_string() {
            return Err(bad(format!("it describes {:?}, not {run}", m.run)));
        }
        let mut previous = None;
        for r in &m.repairs {
            if !run.contains(r.repair) {
                return Err(bad(format!("it lists {}, outside {run}", r.repair)));
            }
            if previous.is_some_and(|p| p >= r.repair) {
                return Err(bad(format!("it lists {} twice or out of order", r.repair)));
            }
            if !r.files.is_empty() {
                return Err(bad(format!(
                    "{} saves whole files in a run folder",
                    r.repair
                )));
            }
            // Restores and re-lays run alone, each in a folder of its own.
            if matches!(
                r.action,
                RepairAction::Restore { .. } | RepairAction::Relay { .. }
            ) {
                return Err(bad(format!(
                    "{} is a {} in a run folder",
                    r.repair, r.action
                )));
            }
            previous = Some(r.repair);
        }
        Ok(m)
    }

    pub fn get(&self, id: RepairId) -> Option<&Manifest> {
        self.repairs
            .binary_search_by_key(&id, |m| m.repair)
            .ok()
            .and_then(|i| self.repairs.get(i))
    }
}
