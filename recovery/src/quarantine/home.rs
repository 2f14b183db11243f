//! [`Home`]: where one repair's saved bytes and manifest are, in a folder of its own
//! or in a run's folder (a slice of its packed file, or a file of its own in a run
//! of the release before).

use super::manifest::{Manifest, PackedSlice, BYTES, MANIFEST};
use super::run::RunId;
use journal::{ByteRange, RepairId};
use std::path::{Path, PathBuf};

/// Where one repair's saved bytes and manifest are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Home {
    /// Its own folder, `r00000012/`.
    Own(PathBuf),
    /// An entry of a run folder: a slice of its packed file `bytes`, or (`packed`
    /// `None`, a run of the release before) its own `r00000012.bytes`.
    Run {
        folder: PathBuf,
        run: RunId,
        id: RepairId,
        packed: Option<PackedSlice>,
    },
}

/// A repair's saved bytes: `range` of the file `path`. Unless `packed`, they are
/// the whole file, which must be exactly that long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub path: PathBuf,
    pub range: ByteRange,
    pub packed: bool,
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

    /// The file that holds the repair's saved bytes (all of a run's, when packed).
    pub fn bytes(&self) -> PathBuf {
        match self {
            Home::Own(folder) => folder.join(BYTES),
            Home::Run {
                folder,
                packed: Some(_),
                ..
            } => folder.join(BYTES),
            Home::Run { folder, id, .. } => folder.join(RunId::bytes_name(*id)),
        }
    }

    /// Where the saved bytes `m` describes are. A slice that would end past
    /// `u64::MAX` (refused when its manifest is parsed) is cut at it, and then
    /// does not verify.
    pub fn saved(&self, m: &Manifest) -> Saved {
        let path = self.bytes();
        match self {
            Home::Run {
                packed: Some(s), ..
            } => Saved {
                path,
                range: ByteRange::new(s.offset, s.offset.saturating_add(s.len)),
                packed: true,
            },
            _ => Saved {
                path,
                range: ByteRange::new(0, m.saved_len()),
                packed: false,
            },
        }
    }

    /// The slice of the run's packed file, if it is one.
    pub fn packed(&self) -> Option<PackedSlice> {
        match self {
            Home::Own(_) => None,
            Home::Run { packed, .. } => *packed,
        }
    }

    pub fn run(&self) -> Option<RunId> {
        match self {
            Home::Own(_) => None,
            Home::Run { run, .. } => Some(*run),
        }
    }
}
