//! Whether a plan's new files and quarantine copies fit on disk, checked before
//! anything is written: a repair that runs out of space half-way helps nobody, and a
//! salvage re-lay writes a whole partition's worth of new segments.

use crate::layout::OFFSET_FILE_LEN;
use journal::RepairAction;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes a plan writes: into the data directory, and into the quarantine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceNeeded {
    pub data: u64,
    pub quarantine: u64,
}

/// What `actions` write. Whole files saved by a re-lay are hard links, and cost
/// nothing, when the quarantine is on the data directory's file system.
pub fn space_needed<'a>(
    actions: impl IntoIterator<Item = &'a RepairAction>,
    same_fs: bool,
) -> SpaceNeeded {
    let mut n = SpaceNeeded::default();
    for a in actions {
        let (data, quarantine) = match a {
            RepairAction::TruncateLog { .. }
            | RepairAction::TruncateIndex { .. }
            | RepairAction::TruncateStateLog { .. } => (
                0,
                a.cut()
                    .map_or(0, |c| c.original_len.saturating_sub(c.keep_len)),
            ),
            RepairAction::RewriteIndex {
                original_len,
                new_len,
                ..
            } => (*new_len, original_len.unwrap_or(0)),
            RepairAction::QuarantineFile { len, .. } => (0, *len),
            RepairAction::DropStateLogEntries {
                original_len,
                new_len,
                ..
            } => (*new_len, *original_len),
            // The new file beside the old until the swap; the old one saved whole.
            RepairAction::ResetConsumerOffset { .. } => (OFFSET_FILE_LEN, OFFSET_FILE_LEN),
            RepairAction::Relay {
                originals,
                segments,
                ..
            } => (
                segments
                    .iter()
                    .map(|s| s.log_len + s.messages * crate::index::ENTRY_LEN as u64)
                    .sum(),
                if same_fs {
                    0
                } else {
                    originals.iter().map(|o| o.len).sum()
                },
            ),
            RepairAction::Restore { .. } | RepairAction::CreateDir { .. } => (0, 0),
        };
        n.data += data;
        n.quarantine += quarantine;
    }
    n
}

#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error("cannot measure free space at {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    #[error(
        "not enough free space at {path}: the repair needs {needed} bytes there, {available} \
         are free; nothing was changed"
    )]
    Short {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
}

/// The nearest existing folder at or above `path` (the quarantine may not exist yet).
fn existing(path: &Path) -> &Path {
    path.ancestors().find(|p| p.exists()).unwrap_or(path)
}

/// Checks that the plan's writes fit, with a margin for metadata.
pub fn check_space(
    data_dir: &Path,
    quarantine_dir: &Path,
    actions: &[&RepairAction],
) -> Result<(), SpaceError> {
    check_space_with(data_dir, quarantine_dir, actions, &|p| {
        fs4::available_space(p)
    })
}

fn check_space_with(
    data_dir: &Path,
    quarantine_dir: &Path,
    actions: &[&RepairAction],
    free: &dyn Fn(&Path) -> io::Result<u64>,
) -> Result<(), SpaceError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| SpaceError::Io { path, cause }
    };
    let q = existing(quarantine_dir);
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).map_err(io_err(p));
    let same_fs = dev(data_dir)? == dev(q)?;
    let counted = space_needed(actions.iter().copied(), same_fs);
    let margin = |n: u64| if n == 0 { 0 } else { n + n / 100 + (1 << 20) };
    let short = |need: SpaceNeeded| -> Result<Option<SpaceError>, SpaceError> {
        let wants: Vec<(&Path, u64)> = if same_fs {
            vec![(data_dir, margin(need.data + need.quarantine))]
        } else {
            vec![(data_dir, margin(need.data)), (q, margin(need.quarantine))]
        };
        for (path, needed) in wants.into_iter().filter(|(_, n)| *n > 0) {
            let available = free(path).map_err(io_err(path))?;
            if available < needed {
                return Ok(Some(SpaceError::Short {
                    path: path.to_path_buf(),
                    needed,
                    available,
                }));
            }
        }
        Ok(None)
    };
    if short(counted)?.is_none() {
        return Ok(());
    }
    // It does not fit as counted. A truncation copies at most the data the file
    // holds: a long zero tail is only described, and holes stay holes in a copy. So
    // a sparse giant's tail costs its allocated blocks at most, not its length: look
    // (a `stat` per cut file, which a plan that fits as counted does without).
    let mut need = counted;
    for a in actions {
        if let Some(c) = a.cut() {
            let cut = c.original_len.saturating_sub(c.keep_len);
            let path = data_dir.join(a.rel_path());
            if let Ok(Some(meta)) = crate::fsops::metadata(&path) {
                let allocated = meta.blocks().saturating_mul(512);
                need.quarantine = need
                    .quarantine
                    .saturating_sub(cut.saturating_sub(allocated));
            }
        }
    }
    match short(need)? {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal::{ByteRange, PartitionId, RelayOriginal, RelayPiece, RelaySegment};

    fn relay() -> RepairAction {
        RepairAction::Relay {
            partition: PartitionId::new(0, 0, 0),
            originals: vec![RelayOriginal {
                path: "a".into(),
                len: 5_000_000,
                xxh3: 0,
            }],
            segments: vec![RelaySegment {
                start_offset: 0,
                messages: 1000,
                log_len: 4_000_000,
                pieces: vec![RelayPiece {
                    source: 0,
                    range: ByteRange::new(0, 4_000_000),
                }],
            }],
        }
    }

    #[test]
    fn a_relay_needs_its_new_files_and_copies_only_across_file_systems() {
        let a = relay();
        assert_eq!(
            space_needed([&a], true),
            SpaceNeeded {
                data: 4_016_000,
                quarantine: 0
            }
        );
        assert_eq!(space_needed([&a], false).quarantine, 5_000_000);
    }

    #[test]
    fn a_plan_that_does_not_fit_is_refused_naming_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let a = relay();
        let q = dir.path().join("state/quarantine");
        let short = check_space_with(dir.path(), &q, &[&a], &|_| Ok(4_000_000));
        match short {
            Err(SpaceError::Short { path, needed, .. }) => {
                assert_eq!(path, dir.path());
                assert!(needed > 4_016_000);
            }
            other => panic!("{other:?}"),
        }
        check_space_with(dir.path(), &q, &[&a], &|_| Ok(10_000_000)).unwrap();
    }

    /// A cut of a sparse giant's tail is counted by the blocks the file holds, once
    /// its length alone does not fit.
    #[test]
    fn a_sparse_tail_that_does_not_fit_by_length_is_counted_by_its_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let segment = PartitionId::new(0, 0, 0).segment(0);
        let cut = RepairAction::TruncateLog {
            segment,
            keep_len: 4096,
            original_len: 1 << 30,
        };
        let path = dir.path().join(cut.rel_path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut &file, &[7u8; 4096]).unwrap();
        file.set_len(1 << 30).unwrap();
        let q = dir.path().join("state/quarantine");
        check_space_with(dir.path(), &q, &[&cut], &|_| Ok(16 << 20)).unwrap();
        // A file that really holds its length still needs it.
        std::fs::write(&path, vec![1u8; 8 << 20]).unwrap();
        let dense = RepairAction::TruncateLog {
            segment,
            keep_len: 4096,
            original_len: 8 << 20,
        };
        let short = check_space_with(dir.path(), &q, &[&dense], &|_| Ok(4 << 20));
        assert!(matches!(short, Err(SpaceError::Short { .. })), "{short:?}");
    }
}
