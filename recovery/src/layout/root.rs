//! What a data directory path is before any of it is listed: a first start, an Iggy
//! 0.6 data directory (and its version), or something the commands must refuse. Apart
//! from the walk because `check`, `recover` and `replay` decide on it first, and the
//! sidecar checks only the folder and its version.

use super::entry::{list, Entry};
use super::error::LayoutError;
use crate::fsops;
use crate::state_info::Info;
use std::fs;
use std::io;
use std::path::Path;

/// What a data directory path holds, judged before any segment is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    /// Nothing iggy-server wrote yet, a first start: the path does not exist, or is
    /// an empty folder, or holds nothing but what the server creates before it writes
    /// `state/info` (its `logs/` and `runtime/` folders, empty `state/`, `streams/`
    /// or `backup/` folders). `why` says which.
    Fresh { why: String },
    /// An Iggy 0.6 data directory: `state/info` names this version, or `state/info`
    /// does not decode or only `state/log` is there (`None`: the state files' check
    /// judges them).
    Iggy { version: Option<String> },
}

/// Classifies `root` for the commands that judge a whole data directory (`check`,
/// `recover`, `replay`): a first start has nothing to check, a folder with data but
/// no `state/info` is not an Iggy 0.6 data directory ([`LayoutError::NotIggy`]),
/// and a `state/info` of another version is refused.
pub fn classify_root(root: &Path) -> Result<Root, LayoutError> {
    match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A link to nowhere is not a first start: the folder it names is missing
            // (a disk not mounted), and the server could not create it there.
            if let Ok(target) = fs::read_link(root) {
                return Err(LayoutError::DanglingLink {
                    path: root.to_path_buf(),
                    target,
                });
            }
            return Ok(Root::Fresh {
                why: format!("{} does not exist", root.display()),
            });
        }
        Err(e) => return Err(LayoutError::io(root, e)),
        Ok(meta) if !meta.is_dir() => {
            return Err(LayoutError::NotADirectory {
                path: root.to_path_buf(),
            })
        }
        Ok(_) => {}
    }
    if let Some(version) = read_version(root)? {
        return Ok(Root::Iggy {
            version: Some(version),
        });
    }
    // A state/info that does not decode, or only a state/log (a repair quarantined a
    // cut-short state/info: the server writes a new one), is still the server's.
    let state_file = |rel| fs::symlink_metadata(root.join(rel)).is_ok();
    if state_file(crate::state_inspect::INFO_REL) || state_file(crate::state_inspect::LOG_REL) {
        return Ok(Root::Iggy { version: None });
    }
    let entries = list(root)?;
    let mut others = Vec::new();
    for entry in &entries {
        if !made_before_state_info(entry)? {
            others.push(entry.name.as_str());
        }
    }
    if others.is_empty() {
        let why = if entries.is_empty() {
            format!("{} is empty", root.display())
        } else {
            format!(
                "{} holds only folders iggy-server creates before state/info",
                root.display()
            )
        };
        return Ok(Root::Fresh { why });
    }
    const SHOWN: usize = 5;
    let mut found = others
        .iter()
        .take(SHOWN)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if others.len() > SHOWN {
        found.push_str(&format!(" and {} more", others.len() - SHOWN));
    }
    Err(LayoutError::NotIggy {
        path: root.to_path_buf(),
        found,
    })
}

/// Whether a top-level entry is one iggy-server makes on its first start before it
/// writes `state/info`: its log and runtime folders, or an empty data folder.
fn made_before_state_info(entry: &Entry) -> Result<bool, LayoutError> {
    if !entry.is_dir() {
        return Ok(false);
    }
    match entry.name.as_str() {
        "logs" | "runtime" => Ok(true),
        "state" | "streams" | "backup" => {
            let items =
                fsops::list_dir(&entry.path).map_err(|e| LayoutError::io(&entry.path, e))?;
            Ok(items.is_empty())
        }
        _ => Ok(false),
    }
}

/// Checks that `root` is a folder and, when it says which, of format 0.6; returns
/// the version string. The part of [`discover`] that lists nothing.
pub fn check_root(root: &Path) -> Result<Option<String>, LayoutError> {
    let meta = fsops::metadata(root)
        .map_err(|e| LayoutError::io(root, e))?
        .ok_or_else(|| LayoutError::NotFound {
            path: root.to_path_buf(),
        })?;
    if !meta.is_dir() {
        return Err(LayoutError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    read_version(root)
}

/// Refuses a `state/info` that names any version but 0.6.x; returns the version. A
/// record that does not decode is judged with the state files (`state_check`).
fn read_version(root: &Path) -> Result<Option<String>, LayoutError> {
    let path = root.join(crate::state_inspect::INFO_REL);
    let bytes = match read_head(&path, INFO_READ) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LayoutError::io(&path, e)),
    };
    let version = match crate::state_info::judge(&bytes) {
        Info::Sound { version } => version,
        // A record of another format may not decode as 0.6's: its version says.
        Info::Bad {
            version: Some(version),
            ..
        } if crate::state_info::is_version(&version) => version,
        _ => return Ok(None),
    };
    if !version.starts_with("0.6.") {
        return Err(LayoutError::UnsupportedVersion { path, version });
    }
    Ok(Some(version))
}

/// Bytes of `state/info` read at most: the record is tens of bytes; a larger file is
/// judged (and refused) on its first 64 KiB rather than read whole.
const INFO_READ: u64 = 64 << 10;

/// The first `max` bytes of the regular file at `path`, whatever its size; anything
/// but a regular file is refused (a device would read forever; a FIFO is opened
/// without waiting for a writer, then refused).
fn read_head(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    // No link followed; only a regular file opened (a FIFO would block).
    let file = fsops::open_read(path)?;
    let mut out = Vec::new();
    file.take(max).read_to_end(&mut out)?;
    Ok(out)
}
