//! Run folders: the quarantine of one executor run, one folder and one manifest for
//! all its repairs (`run-r00000012-r00000020/`). A run of a thousand repairs then
//! writes and syncs one manifest and one folder, not a thousand of each; every
//! repair keeps its own id, so `restore` still takes one repair, or the whole run.
//!
//! Two forms, both read:
//! - version 2 (packed): every repair's bytes in one file, `bytes`, at an offset its
//!   entry records. Creating and filling thousands of small files cost more than
//!   the rest of a large `recover`; one file sized up front is filled in parallel.
//! - version 1 (the release before): a file per repair, `r00000012.bytes` ….
//!
//! A manifest is data on disk another user may have crafted: [`RunManifest::parse`]
//! refuses slices that overflow or overlap, or that do not hold what the entry
//! says was saved; slices past the end of the packed file are refused when read.

use crate::quarantine::manifest::{Manifest, PackedSlice, QuarantineError};
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
/// A file per repair, as the release before packed runs wrote.
const RUN_MANIFEST_V1: u32 = 1;
/// One packed file, `bytes`, for the whole run.
const RUN_MANIFEST_PACKED: u32 = 2;

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

    /// Where repair `id` of a version 1 run kept its bytes, inside the run folder.
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
    /// The manifest of a packed run: every repair's `packed` slice is set.
    pub fn new(run: RunId, mut repairs: Vec<Manifest>) -> Self {
        repairs.sort_by_key(|m| m.repair);
        Self {
            version: RUN_MANIFEST_PACKED,
            run: run.to_string(),
            repairs,
        }
    }

    /// Whether the run's bytes are in one packed file (else a file per repair).
    pub fn is_packed(&self) -> bool {
        self.version == RUN_MANIFEST_PACKED
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
        if m.version != RUN_MANIFEST_V1 && m.version != RUN_MANIFEST_PACKED {
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
        m.check_slices(path)?;
        Ok(m)
    }

    /// A version 1 run names no slice; in a packed one, every repair's slice holds
    /// exactly what it saved, ends before `u64::MAX` and overlaps no other (a
    /// restore of one must not read another's bytes).
    fn check_slices(&self, path: &Path) -> Result<(), QuarantineError> {
        let packed = self.is_packed();
        let bad = |m: &Manifest, s: PackedSlice, why: String| QuarantineError::BadSlice {
            path: path.to_path_buf(),
            repair: m.repair,
            offset: s.offset,
            len: s.len,
            why,
        };
        let mut slices = Vec::with_capacity(self.repairs.len());
        for m in &self.repairs {
            let slice = match (packed, m.packed) {
                (true, Some(s)) => s,
                (false, None) => continue,
                (false, Some(s)) => {
                    return Err(bad(m, s, "is a slice in a run of a file per repair".into()))
                }
                (true, None) => {
                    return Err(QuarantineError::BadManifest {
                        path: path.to_path_buf(),
                        detail: format!("{} has no slice of the packed file", m.repair),
                    })
                }
            };
            if slice.len != m.saved_len() {
                let why = format!("is not the {} bytes it saved", m.saved_len());
                return Err(bad(m, slice, why));
            }
            let range = slice
                .range()
                .ok_or_else(|| bad(m, slice, "ends past the largest offset".into()))?;
            if !range.is_empty() {
                slices.push((range, m));
            }
        }
        slices.sort_by_key(|(r, _)| (r.start, r.end));
        for pair in slices.windows(2) {
            if let [(before, a), (after, m)] = pair {
                if after.start < before.end {
                    let slice = PackedSlice {
                        offset: after.start,
                        len: after.len(),
                    };
                    let why = format!("overlaps the bytes of repair {}", a.repair);
                    return Err(bad(m, slice, why));
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, id: RepairId) -> Option<&Manifest> {
        self.repairs
            .binary_search_by_key(&id, |m| m.repair)
            .ok()
            .and_then(|i| self.repairs.get(i))
    }
}
