//! The quarantine's folders: where it is, and where a repair's own folder or a
//! run's folder is in it.

use super::manifest::SavedFile;
use super::run::RunId;
use journal::RepairId;
use std::path::{Path, PathBuf};

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
}
