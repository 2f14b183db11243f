//! Errors of the journal, each naming the journal's path.
//!
//! The journal is an accelerator: its callers mostly need one decision from an error,
//! "use the journal" or "fall back to a full scan". [`JournalError::is_unusable`] gives
//! that decision; the variants keep enough detail for the operator's log line.

use crate::envelope::EnvelopeError;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another process has the journal open (sled holds an exclusive file lock).
    #[error(
        "journal at {path} is locked by another process (is another iggy-warden running?): {detail}"
    )]
    Locked { path: PathBuf, detail: String },

    /// The journal's bytes cannot be trusted: sled reported corruption, a record's
    /// envelope is damaged, or the trees disagree.
    #[error("journal at {path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    /// A record is in a format this build does not read: written by a newer
    /// iggy-warden, or by one from before format 2 (one `log` value per commit round).
    #[error(
        "journal at {path} holds a record in format version {found}; this build reads versions {oldest} to {supported} (use the iggy-warden that wrote it, or move the journal aside)",
        oldest = crate::envelope::OLDEST_READABLE
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u16,
        supported: u16,
    },

    /// A read, write or flush failed at the operating system (disk full included).
    #[error("I/O error on journal at {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },

    /// An earlier flush failed, so what is on disk is unknown; like PostgreSQL after a
    /// failed fsync, the journal refuses further writes until it is reopened.
    #[error("journal at {path} refuses writes after an earlier failed flush: {detail}")]
    Poisoned { path: PathBuf, detail: String },

    /// The journal's folder is not one sled may be given (see [`crate::folder`]): a
    /// symbolic link, another user's, a sparse giant, ... Unusable: it is moved aside.
    #[error("journal at {path} is refused before opening it: {detail}")]
    Refused { path: PathBuf, detail: String },

    /// This user may not read or write a file of the journal. Not "unusable": moving
    /// another user's journal aside would lose it for them; run as its owner.
    #[error("{}", permission_text(.path, .file))]
    PermissionDenied { path: PathBuf, file: PathBuf },
}

fn permission_text(journal: &Path, file: &Path) -> String {
    let what = if file == journal {
        format!("the journal at {}", journal.display())
    } else {
        format!("{} (journal at {})", file.display(), journal.display())
    };
    format!(
        "permission denied on {what}: run iggy-warden as the user that owns the state directory"
    )
}

impl JournalError {
    /// True when the caller should stop trusting the journal and fall back to a full
    /// scan of the data directory.
    ///
    /// `Locked` is deliberately not "unusable": it means another live process owns the
    /// journal, and scanning or repairing behind its back would be the wrong reaction.
    /// Check [`JournalError::is_locked`] for that case.
    pub fn is_unusable(&self) -> bool {
        !self.is_locked() && !self.is_permission_denied()
    }

    pub fn is_locked(&self) -> bool {
        matches!(self, JournalError::Locked { .. })
    }

    /// This user may not use the journal's files: an error to report, not a journal to
    /// move aside (see [`JournalError::PermissionDenied`]).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, JournalError::PermissionDenied { .. })
    }

    /// Path of the journal the error is about.
    pub fn path(&self) -> &Path {
        match self {
            JournalError::Locked { path, .. }
            | JournalError::Corrupt { path, .. }
            | JournalError::UnsupportedVersion { path, .. }
            | JournalError::Io { path, .. }
            | JournalError::Poisoned { path, .. }
            | JournalError::Refused { path, .. }
            | JournalError::PermissionDenied { path, .. } => path,
        }
    }

    /// A copy for the other waiters of a failed group-commit round (`io::Error` is
    /// not `Clone`, so an I/O error is rebuilt from its kind and text).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            JournalError::Locked { path, detail } => JournalError::Locked {
                path: path.clone(),
                detail: detail.clone(),
            },
            JournalError::Corrupt { path, detail } => JournalError::Corrupt {
                path: path.clone(),
                detail: detail.clone(),
            },
            JournalError::UnsupportedVersion {
                path,
                found,
                supported,
            } => JournalError::UnsupportedVersion {
                path: path.clone(),
                found: *found,
                supported: *supported,
            },
            JournalError::Io { path, cause } => JournalError::Io {
                path: path.clone(),
                cause: io::Error::new(cause.kind(), cause.to_string()),
            },
            JournalError::Poisoned { path, detail } => JournalError::Poisoned {
                path: path.clone(),
                detail: detail.clone(),
            },
            JournalError::Refused { path, detail } => JournalError::Refused {
                path: path.clone(),
                detail: detail.clone(),
            },
            JournalError::PermissionDenied { path, file } => JournalError::PermissionDenied {
                path: path.clone(),
                file: file.clone(),
            },
        }
    }

    pub(crate) fn corrupt(path: &Path, detail: impl Into<String>) -> Self {
        JournalError::Corrupt {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// An I/O error on the journal at `path`; a permission error becomes
    /// [`JournalError::PermissionDenied`] naming `path`.
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::PermissionDenied {
            return JournalError::PermissionDenied {
                path: path.to_path_buf(),
                file: path.to_path_buf(),
            };
        }
        JournalError::Io {
            path: path.to_path_buf(),
            cause: source,
        }
    }

    /// The journal at `journal` could not be used because of a permission error on
    /// `file`.
    pub(crate) fn permission(journal: &Path, file: &Path) -> Self {
        JournalError::PermissionDenied {
            path: journal.to_path_buf(),
            file: file.to_path_buf(),
        }
    }

    /// Maps a sled error. sled 0.34 reports a held lock only as an `Io` error of kind
    /// `Other` whose text starts "could not acquire lock", so the text is what we match.
    pub(crate) fn from_sled(path: &Path, err: sled::Error) -> Self {
        match err {
            sled::Error::Io(e) if e.to_string().contains("could not acquire lock") => {
                JournalError::Locked {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                }
            }
            sled::Error::Io(e) => JournalError::io(path, e),
            sled::Error::Corruption { at, .. } => {
                JournalError::corrupt(path, format!("sled reported corruption at {at:?}"))
            }
            other => JournalError::corrupt(path, format!("sled: {other}")),
        }
    }

    /// Maps a damaged envelope found at `what` (e.g. "log record 17").
    pub(crate) fn from_envelope(path: &Path, what: &str, err: EnvelopeError) -> Self {
        match err {
            EnvelopeError::UnsupportedVersion { found, supported } => {
                JournalError::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found,
                    supported,
                }
            }
            other => JournalError::corrupt(path, format!("{what}: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_lock_error_becomes_locked_and_others_are_unusable() {
        let path = Path::new("/state/journal");
        // The text sled 0.34 produces in `Config::try_lock`.
        let lock = io::Error::other("could not acquire lock on \"/state/journal/db\": WouldBlock");
        let err = JournalError::from_sled(path, sled::Error::Io(lock));
        assert!(err.is_locked() && !err.is_unusable());
        assert!(err.to_string().contains("/state/journal"));

        let full = io::Error::from_raw_os_error(28); // ENOSPC
        let err = JournalError::from_sled(path, sled::Error::Io(full));
        assert!(matches!(err, JournalError::Io { .. }) && err.is_unusable());
        let copy = err.duplicate();
        assert_eq!(copy.to_string(), err.to_string());

        let err = JournalError::from_sled(path, sled::Error::Unsupported("old".into()));
        assert!(matches!(err, JournalError::Corrupt { .. }) && err.is_unusable());
        let err = JournalError::from_envelope(
            path,
            "log record 3",
            EnvelopeError::UnsupportedVersion {
                found: 9,
                supported: 1,
            },
        );
        assert!(matches!(
            err,
            JournalError::UnsupportedVersion { found: 9, .. }
        ));
        assert_eq!(err.path(), path);
    }
}
