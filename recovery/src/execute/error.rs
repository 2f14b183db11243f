//! What can stop a repair, and whether running again may finish it.

use crate::quarantine::QuarantineError;
use journal::{JournalError, RepairAction, RepairId};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// A restore of a repair whose quarantine holds nothing usable.
    #[error("repair {repair} has nothing in quarantine at {dir}")]
    NotInQuarantine { repair: RepairId, dir: PathBuf },
    /// A repair this build will not carry out as journaled or described (a path
    /// outside the data directory, a manifest that contradicts itself, a restore of
    /// a restore): an operator must look.
    #[error("repair {repair} {why}")]
    Refused { repair: RepairId, why: String },
    /// An action handed to the wrong part of the executor: a bug, not the data's.
    #[error("internal: {0}")]
    Internal(String),
    #[error(transparent)]
    Quarantine(#[from] QuarantineError),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error(
        "{path} changed since repair {repair} was planned (expected {expected}, found \
         {found}): refusing to touch it"
    )]
    Changed {
        repair: RepairId,
        path: PathBuf,
        expected: String,
        found: String,
    },
}

impl ExecError {
    /// Whether running again may finish the repair: an I/O or journal failure that
    /// can pass (a full disk freed, a device error gone), after which the journaled
    /// intents converge. Not a file that changed since the plan, a quarantine that
    /// refuses, or a permission or read-only file system, which need an operator.
    pub fn is_transient(&self) -> bool {
        let io_passes = |e: &io::Error| {
            !matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            )
        };
        match self {
            ExecError::Journal(_) => true,
            ExecError::Io { cause, .. } => io_passes(cause),
            ExecError::Quarantine(QuarantineError::Io { cause, .. }) => io_passes(cause),
            ExecError::Quarantine(_)
            | ExecError::Changed { .. }
            | ExecError::NotInQuarantine { .. }
            | ExecError::Refused { .. }
            | ExecError::Internal(_) => false,
        }
    }
}

pub(super) fn sync_err((path, cause): (PathBuf, io::Error)) -> ExecError {
    ExecError::Io { path, cause }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExecError + '_ {
    move |cause| ExecError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// A file length as `ExecError::Changed` reports it.
pub(crate) fn describe_len(len: Option<u64>) -> String {
    len.map_or("no file".into(), |n| format!("{n} bytes"))
}

/// An action handed to a phase that does not run it (truncations are handled before
/// the phases' matches; restores and re-lays run alone): a bug.
pub(crate) fn not_in_phases(id: RepairId, action: &RepairAction) -> ExecError {
    ExecError::Internal(format!("repair {id} ({action}) does not run in phases"))
}
