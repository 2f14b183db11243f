//! Listing a folder of the layout: entries with their kind, never following a link.
//! Shared by the root's classification and the walk below `streams/`.

use super::error::LayoutError;
use crate::fsops::{self, EntryKind};
use std::path::{Path, PathBuf};

/// One entry of a listed folder, with its kind as the listing gave it.
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) kind: EntryKind,
    /// A regular file's stamp.
    pub(super) stamp: Option<journal::FileStamp>,
}

impl Entry {
    pub(super) fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }

    pub(super) fn is_symlink(&self) -> bool {
        self.kind == EntryKind::Symlink
    }

    /// The length of a regular file.
    pub(super) fn file_len(&self) -> Option<u64> {
        match self.kind {
            EntryKind::File(len) => Some(len),
            _ => None,
        }
    }

    pub(super) fn kind_name(&self) -> &'static str {
        match self.kind {
            EntryKind::File(_) => "a regular file",
            EntryKind::Dir => "a folder",
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Other => "a FIFO, socket or device",
        }
    }

    /// A stray's reason, saying so when it is a link (never followed).
    pub(super) fn stray_reason(&self, why: &str) -> String {
        if self.is_symlink() {
            format!("{why} (a symbolic link, not followed)")
        } else {
            why.to_string()
        }
    }
}

/// Lists a folder without following symbolic links (none on the way to it either),
/// sorted by name. Only regular files are stat'ed (for their length): the kind of the
/// others comes with the listing, which saves a system call per entry on the start-up
/// path.
pub(super) fn list(dir: &Path) -> Result<Vec<Entry>, LayoutError> {
    let mut out: Vec<Entry> = fsops::list_dir(dir)
        .map_err(|e| LayoutError::io(dir, e))?
        .into_iter()
        .map(|e| Entry {
            path: dir.join(&e.name),
            name: e.name.to_string_lossy().into_owned(),
            kind: e.kind,
            stamp: e.stamp,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Folder names of streams, topics and partitions: decimal numbers.
pub(super) fn numeric_name(entry: &Entry) -> Option<u32> {
    if entry.name.is_empty() || !entry.name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    entry.name.parse().ok()
}
