//! [`Home`]: where one repair's saved bytes and manifest are, in a folder of its own
//! or in a run's folder.

use super::manifest::{BYTES, MANIFEST};
use super::run::RunId;
use journal::RepairId;
use std::path::{Path, PathBuf};

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
