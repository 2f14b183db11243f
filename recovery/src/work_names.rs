//! The names iggy-warden gives files in the data directory while it changes them: a
//! rebuilt index or a re-laid segment before its rename, a file put back by
//! `restore` before its rename, a file moved aside before its removal.
//!
//! Each is hidden and ends in neither `.log` nor `.index`, so iggy-server 0.6.0,
//! which loads only `*.log` from a partition folder, ignores one a killed run left
//! there. An offset folder is different: the server takes every name in
//! `offsets/consumers` and `offsets/groups` for a consumer id and panics on any
//! other, so the working name of an offset file lies in its partition folder
//! (renames between the two stay on one file system).

use std::path::{Path, PathBuf};

/// A file written under this name is renamed into place once complete.
pub const TEMPORARY: &str = "iggy-warden-tmp";
/// A file renamed to this name is removed once checked.
pub const SET_ASIDE: &str = "iggy-warden-removed";

/// The working name of `path` for `purpose` ([`TEMPORARY`] or [`SET_ASIDE`]):
/// `.<name>.<purpose>` beside it, or `.offsets-<folder>-<name>.<purpose>` in the
/// partition folder for a file of an offsets folder.
pub fn work_path(path: &Path, purpose: &str) -> PathBuf {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let folder = path.parent().unwrap_or(path);
    let partition = folder
        .parent()
        .filter(|offsets| name(offsets) == "offsets")
        .and_then(Path::parent);
    match partition {
        Some(partition) => partition.join(format!(
            ".offsets-{}-{}.{purpose}",
            name(folder),
            name(path)
        )),
        None => path.with_file_name(format!(".{}.{purpose}", name(path))),
    }
}

/// Whether `name`, an entry of a partition folder, is a working name.
pub fn is_work_name(name: &str) -> bool {
    name.starts_with('.')
        && [TEMPORARY, SET_ASIDE]
            .iter()
            .any(|purpose| name.strip_suffix(purpose).is_some_and(|n| n.ends_with('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_file_works_in_its_partition_folder_a_segment_file_beside_itself() {
        let p = Path::new("/d/streams/1/topics/2/partitions/3");
        assert_eq!(
            work_path(&p.join("offsets/consumers/7"), SET_ASIDE),
            p.join(".offsets-consumers-7.iggy-warden-removed")
        );
        assert_eq!(
            work_path(&p.join("offsets/groups/9"), TEMPORARY),
            p.join(".offsets-groups-9.iggy-warden-tmp")
        );
        assert_eq!(
            work_path(&p.join("00000000000000000042.log"), SET_ASIDE),
            p.join(".00000000000000000042.log.iggy-warden-removed")
        );
        assert_eq!(
            work_path(&p.join("00000000000000000042.index"), TEMPORARY),
            p.join(".00000000000000000042.index.iggy-warden-tmp")
        );
        assert!(is_work_name(".00000000000000000042.index.iggy-warden-tmp"));
        assert!(is_work_name(".offsets-consumers-7.iggy-warden-removed"));
        assert!(!is_work_name("00000000000000000042.index.iggy-warden-tmp"));
        assert!(!is_work_name(".notes-iggy-warden-tmp"));
    }
}
