//! What a quarantine holds, as data: the manifest of one repair, what a save asks
//! for, the errors, and the checks a manifest read from disk must pass (it may have
//! been crafted).

use journal::{ByteRange, RepairAction, RepairId};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
pub const BYTES: &str = "bytes";
pub(crate) const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("quarantine {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error("quarantine manifest {path} is unreadable: {detail}")]
    BadManifest { path: PathBuf, detail: String },
    #[error(
        "quarantine folder {path} already holds another repair ({found}); refusing to \
         save {wanted} there, nothing was changed"
    )]
    IdTaken {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("quarantine manifest {path} names {file:?}: {why}; refusing to restore it")]
    UnsafePath {
        path: PathBuf,
        file: String,
        why: &'static str,
    },
    #[error(
        "quarantined bytes {path} do not match their manifest (expected {expected_len} bytes \
         with XXH3 {expected:#018x})"
    )]
    BytesChanged {
        path: PathBuf,
        expected_len: u64,
        expected: u64,
    },
    #[error(
        "quarantine {path}: the bytes of repair {repair} at offset {offset} ({len} bytes) \
         {why}"
    )]
    BadSlice {
        path: PathBuf,
        repair: RepairId,
        offset: u64,
        len: u64,
        why: String,
    },
}

/// Shortest zero tail described as a zero run rather than copied: shorter ones cost
/// little either way.
pub const ZERO_RUN_MIN: u64 = 1 << 20;

/// Largest manifest read: a salvage of thousands of segments writes a few MiB.
const MAX_MANIFEST: u64 = 64 << 20;

/// A manifest's bytes, read only from a regular file and at most [`MAX_MANIFEST`]
/// of them (the state directory may be another user's: a sparse or endless
/// `manifest.json` must not take the memory). Too long or not a file is
/// `InvalidData`.
pub(crate) fn read_manifest(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    // No link is followed, and only a regular file is opened (a FIFO would block).
    let file = crate::fsops::open_read(path).map_err(|e| {
        if crate::fsops::is_symlink_refusal(&e) || e.kind() == io::ErrorKind::InvalidInput {
            invalid(e.to_string())
        } else {
            e
        }
    })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > MAX_MANIFEST {
        return Err(invalid(format!(
            "{} bytes, more than the {MAX_MANIFEST} a manifest may have",
            meta.len()
        )));
    }
    let mut text = Vec::new();
    file.take(MAX_MANIFEST + 1).read_to_end(&mut text)?;
    if text.len() as u64 > MAX_MANIFEST {
        return Err(invalid(format!(
            "more than the {MAX_MANIFEST} bytes a manifest may have"
        )));
    }
    Ok(text)
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> QuarantineError + '_ {
    move |cause| QuarantineError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// What one repair removed, and from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub repair: RepairId,
    pub action: RepairAction,
    pub reason: String,
    /// The data directory the repair ran on.
    pub data_dir: PathBuf,
    /// The file the bytes came from, relative to `data_dir`.
    pub file: String,
    /// Where the saved bytes sat in `file`; empty when the repair removed nothing
    /// (it created `file`).
    pub range: ByteRange,
    /// XXH3-64 of the saved bytes (for a zero run, of the empty `bytes` file).
    pub xxh3: u64,
    /// The cut range was `range.len()` zero bytes, described here instead of copied:
    /// `bytes` is empty, and restoring extends the file with that many zeros (a
    /// hole). Only for a truncation's tail of at least [`ZERO_RUN_MIN`] bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zero_run: bool,
    /// The file did not exist before the repair: restoring removes it.
    pub created_file: bool,
    /// Whole files saved by a repair that replaces several (a salvage re-lay); then
    /// `file` is their folder and `range` is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SavedFile>,
    /// Where its saved bytes are in its run's packed file (a run manifest of
    /// version 2); absent where they are a file of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed: Option<PackedSlice>,
}

impl Manifest {
    /// How many bytes were saved: a zero run's are only described.
    pub fn saved_len(&self) -> u64 {
        if self.zero_run {
            0
        } else {
            self.range.len()
        }
    }
}

/// A repair's bytes inside its run's packed file: `len` bytes from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedSlice {
    pub offset: u64,
    pub len: u64,
}

impl PackedSlice {
    /// The bytes of the packed file it covers; `None` when they would end past
    /// `u64::MAX` (a crafted manifest).
    pub fn range(&self) -> Option<ByteRange> {
        Some(ByteRange::new(
            self.offset,
            self.offset.checked_add(self.len)?,
        ))
    }
}

/// What [`Quarantine::save_run`] saves: `range` of `data_dir/file` for repair
/// `id`; `created_file` when the repair creates `file` (nothing is saved).
#[derive(Clone, Copy, Debug)]
pub struct SaveRequest<'a> {
    pub id: RepairId,
    pub action: &'a RepairAction,
    pub reason: &'a str,
    pub data_dir: &'a Path,
    pub file: &'a str,
    pub range: ByteRange,
    pub created_file: bool,
}

impl SaveRequest<'_> {
    /// The manifest of what this request saved: bytes with that XXH3, or (a zero
    /// run) only described; `packed` when they are a slice of a run's packed file.
    pub(crate) fn manifest(
        &self,
        xxh3: u64,
        zero_run: bool,
        packed: Option<PackedSlice>,
    ) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            repair: self.id,
            action: self.action.clone(),
            reason: self.reason.to_string(),
            data_dir: self.data_dir.to_path_buf(),
            file: self.file.to_string(),
            range: self.range,
            xxh3,
            zero_run,
            created_file: self.created_file,
            files: Vec::new(),
            packed,
        }
    }
}

/// The name of whole file number `i` in a repair's quarantine folder.
pub fn whole_file_name(i: usize) -> String {
    format!("file-{i}")
}

/// One whole file in a repair's quarantine folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFile {
    /// Where it was, relative to the data directory.
    pub file: String,
    pub len: u64,
    pub xxh3: u64,
    /// Its name inside the repair's quarantine folder.
    pub saved_as: String,
}

/// Checks that every path `m` names stays inside the data directory and is the one
/// its action names: a manifest is data on disk, and may have been crafted.
/// `manifest_path` is where it was read, for the error.
pub fn check_paths(manifest_path: &Path, m: &Manifest) -> Result<(), QuarantineError> {
    let path = manifest_path.to_path_buf();
    let bad = |file: &str, why| QuarantineError::UnsafePath {
        path: path.clone(),
        file: file.to_string(),
        why,
    };
    let named: Vec<&str> = match &m.action {
        // What a restore saved is checked when it is itself restored: never
        // (restoring a restore is refused), so only its paths' form matters.
        RepairAction::Restore { .. } => m.files.iter().map(|f| f.file.as_str()).collect(),
        RepairAction::Relay { originals, .. } => {
            if m.files.len() != originals.len()
                || m.files.iter().zip(originals).any(|(f, o)| f.file != o.path)
            {
                return Err(bad(
                    &m.file,
                    "its saved files are not the ones its action replaced",
                ));
            }
            originals.iter().map(|o| o.path.as_str()).collect()
        }
        _ if !m.files.is_empty() => {
            return Err(bad(&m.file, "whole saved files belong only to a re-lay"))
        }
        _ => Vec::new(),
    };
    if m.zero_run
        && !matches!(
            m.action,
            RepairAction::TruncateLog { .. } | RepairAction::TruncateIndex { .. }
        )
    {
        return Err(bad(&m.file, "a zero run belongs only to a truncation"));
    }
    let is_restore = matches!(m.action, RepairAction::Restore { .. });
    if !is_restore && m.file != m.action.rel_path() {
        return Err(bad(&m.file, "not the file its action names"));
    }
    for file in std::iter::once(m.file.as_str()).chain(named) {
        if !is_plain_relative(file) {
            return Err(bad(file, "not a plain path relative to the data directory"));
        }
    }
    for f in &m.files {
        if !is_plain_relative(&f.saved_as) || f.saved_as.contains('/') {
            return Err(bad(
                &f.saved_as,
                "not a file name inside its quarantine folder",
            ));
        }
    }
    Ok(())
}

/// Every path `action` names is relative to the data directory and made of plain
/// names: an action read back from the journal may have been crafted.
pub fn action_paths_are_plain(action: &RepairAction) -> bool {
    match action {
        RepairAction::Relay { originals, .. } => {
            originals.iter().all(|o| is_plain_relative(&o.path))
        }
        RepairAction::Restore { .. } => true,
        other => is_plain_relative(&other.rel_path()),
    }
}

/// Relative, and made only of plain names: no root, no `.` or `..`, not empty.
pub fn is_plain_relative(path: &str) -> bool {
    use std::path::Component;
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// `m`, found under the id a repair is about to save with, is that repair's.
pub(crate) fn same_repair(
    folder: &Path,
    m: &Manifest,
    action: &RepairAction,
    file: &str,
) -> Result<(), QuarantineError> {
    if m.action != *action || m.file != file {
        return Err(QuarantineError::IdTaken {
            path: folder.to_path_buf(),
            found: m.action.to_string(),
            wanted: action.to_string(),
        });
    }
    Ok(())
}
