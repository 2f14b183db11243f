//! Why a data directory cannot be listed. Its own module so that the parts of
//! discovery (the root's classification, the listing of folders, the walk) can share
//! it without depending on one another.

use crate::names::escaped;
use crate::state_inspect::StateReadError;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("data directory {} does not exist", escaped(.path))]
    NotFound { path: PathBuf },
    #[error("{} is not a directory", escaped(.path))]
    NotADirectory { path: PathBuf },
    #[error("cannot read {}: {cause}", escaped(.path))]
    Io { path: PathBuf, cause: io::Error },
    #[error(
        "{} says version {version:?}: only the Iggy 0.6 on-disk format is supported",
        escaped(.path)
    )]
    UnsupportedVersion { path: PathBuf, version: String },
    #[error(
        "{} is not an Iggy 0.6 data directory: it has no state/info, and it holds {found}",
        escaped(.path)
    )]
    NotIggy { path: PathBuf, found: String },
    #[error(
        "data directory {path} is a symbolic link to {target}, which does not exist (an unmounted disk?)"
    )]
    DanglingLink { path: PathBuf, target: PathBuf },
}

impl From<StateReadError> for LayoutError {
    fn from(e: StateReadError) -> Self {
        LayoutError::Io {
            path: e.path,
            cause: e.cause,
        }
    }
}

impl LayoutError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            LayoutError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            LayoutError::Io {
                path: path.to_path_buf(),
                cause: source,
            }
        }
    }
}
