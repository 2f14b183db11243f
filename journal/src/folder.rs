//! What the journal's folder must be before sled is let near it.
//!
//! sled 0.34 trusts its files: a `db` file extended to 50 GiB with a hole makes it
//! allocate its apparent size in memory, even for `journal verify`, and a symbolic
//! link in place of the folder or of a file would have sled write wherever it points.
//! So before sled opens the journal, the folder is checked: a real folder (not a
//! link), owned by this user, by root or by the owner of the state directory around
//! it, holding only folders and regular files of the same owners, none with large
//! holes (allocated blocks must roughly match the apparent size) and none of a size
//! compaction never lets the journal reach. A folder that fails is refused
//! ([`JournalError::Refused`]); callers treat that like any unusable journal: moved
//! aside, never deleted, and a full scan.

use crate::error::JournalError;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes a journal file may have beyond the blocks it occupies. sled writes its
/// segments whole and compaction keeps the journal near 10 MiB, so a hole this large
/// is a sparse-extended file, not sled's doing; file systems that compress (or store
/// zero blocks as holes) stay well within it at the journal's size.
pub const MAX_HOLE: u64 = 64 << 20;

/// Largest journal file accepted, holes or not (the journal stays near 10 MiB).
pub const MAX_FILE: u64 = 1 << 30;

/// Who may own the journal's folder and files: this process's user, root, and the
/// owner of the folder around it (the state directory).
fn allowed_owners(dir: &Path) -> Vec<u32> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let mut owners = vec![unsafe { libc::geteuid() }, 0];
    if let Some(parent) = dir.parent().and_then(|p| fs::metadata(p).ok()) {
        owners.push(parent.uid());
    }
    owners
}

/// The two size limits, apart so tests can lower them.
#[derive(Clone, Copy)]
struct Limits {
    hole: u64,
    file: u64,
}

/// Checks the journal folder `dir` (which exists); see the module docs.
pub(crate) fn check(dir: &Path) -> Result<(), JournalError> {
    check_limited(
        dir,
        Limits {
            hole: MAX_HOLE,
            file: MAX_FILE,
        },
    )
}

fn check_limited(dir: &Path, limits: Limits) -> Result<(), JournalError> {
    let refuse = |what: &Path, why: String| JournalError::Refused {
        path: dir.to_path_buf(),
        detail: if what == dir {
            why
        } else {
            format!("{}: {why}", what.display())
        },
    };
    let owners = allowed_owners(dir);
    let meta = fs::symlink_metadata(dir).map_err(|e| io_error(dir, dir, e))?;
    if meta.file_type().is_symlink() {
        return Err(refuse(dir, "is a symbolic link, not a folder".into()));
    }
    if !meta.is_dir() {
        return Err(refuse(dir, "is not a folder".into()));
    }
    check_owner(&meta, &owners).map_err(|why| refuse(dir, why))?;
    check_entries(dir, &owners, limits, 0).map_err(|(path, why)| match why {
        Why::Io(e) => io_error(dir, &path, e),
        Why::Refused(why) => refuse(&path, why),
    })
}

/// An I/O error on `file` of the journal at `dir`, naming the file.
fn io_error(dir: &Path, file: &Path, e: io::Error) -> JournalError {
    if e.kind() == io::ErrorKind::PermissionDenied {
        return JournalError::permission(dir, file);
    }
    JournalError::io(
        dir,
        io::Error::new(e.kind(), format!("{}: {e}", file.display())),
    )
}

/// The first file or folder of the journal at `dir` this user may not read or write,
/// to name in a permission error sled reported without a path.
pub(crate) fn denied_file(dir: &Path) -> Option<std::path::PathBuf> {
    let denied = |e: &io::Error| e.kind() == io::ErrorKind::PermissionDenied;
    let items = match fs::read_dir(dir) {
        Err(e) if denied(&e) => return Some(dir.to_path_buf()),
        Err(_) => return None,
        Ok(items) => items,
    };
    for item in items.flatten() {
        let path = item.path();
        let is_file = item.file_type().is_ok_and(|t| t.is_file());
        if is_file {
            let opened = fs::OpenOptions::new().read(true).write(true).open(&path);
            if opened.as_ref().is_err_and(denied) {
                return Some(path);
            }
        } else if item.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(found) = denied_file(&path) {
                return Some(found);
            }
        }
    }
    None
}

enum Why {
    Io(io::Error),
    Refused(String),
}

fn check_owner(meta: &fs::Metadata, owners: &[u32]) -> Result<(), String> {
    if owners.contains(&meta.uid()) {
        return Ok(());
    }
    Err(format!(
        "owned by uid {}, not by this user (uid {}), root or the state directory's owner",
        meta.uid(),
        owners.first().copied().unwrap_or(0)
    ))
}

/// sled keeps its files at the top and blobs one folder down; deeper is not sled's.
const MAX_DEPTH: usize = 2;

fn check_entries(
    dir: &Path,
    owners: &[u32],
    limits: Limits,
    depth: usize,
) -> Result<(), (std::path::PathBuf, Why)> {
    let items = fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), Why::Io(e)))?;
    for item in items {
        let item = item.map_err(|e| (dir.to_path_buf(), Why::Io(e)))?;
        let path = item.path();
        let refused = |why: String| (path.clone(), Why::Refused(why));
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            // sled's threads remove old snapshot files at any moment.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err((path, Why::Io(e))),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(refused("is a symbolic link".into()));
        }
        check_owner(&meta, owners).map_err(refused)?;
        if kind.is_dir() {
            if depth + 1 >= MAX_DEPTH {
                return Err(refused("is a folder deeper than sled makes".into()));
            }
            check_entries(&path, owners, limits, depth + 1)?;
            continue;
        }
        if !kind.is_file() {
            return Err(refused("is neither a regular file nor a folder".into()));
        }
        let size = meta.len();
        let allocated = meta.blocks().saturating_mul(512);
        if size.saturating_sub(allocated) > limits.hole {
            return Err(refused(format!(
                "is sparse: {size} bytes long but only {allocated} bytes allocated \
                 (sled would allocate its whole length in memory)"
            )));
        }
        if size > limits.file {
            return Err(refused(format!(
                "is {size} bytes, more than the {} a journal file may have",
                limits.file
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_dir() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("conf"), b"segment_size: 524288\n").unwrap();
        (tmp, dir)
    }

    fn refused(r: Result<(), JournalError>) -> String {
        match r {
            Err(e @ JournalError::Refused { .. }) => {
                assert!(e.is_unusable());
                e.to_string()
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_folder_of_regular_files_passes() {
        let (_tmp, dir) = journal_dir();
        fs::create_dir(dir.join("blobs")).unwrap();
        fs::write(dir.join("blobs/1"), vec![7u8; 10_000]).unwrap();
        fs::write(dir.join("db"), vec![1u8; 3 << 20]).unwrap();
        check(&dir).unwrap();
    }

    #[test]
    fn a_sparse_giant_is_refused_naming_it() {
        let (_tmp, dir) = journal_dir();
        let db = fs::File::create(dir.join("db")).unwrap();
        db.set_len(MAX_HOLE * 2).unwrap();
        let text = refused(check(&dir));
        assert!(text.contains("db") && text.contains("sparse"), "{text}");
    }

    #[test]
    fn a_huge_file_is_refused_even_if_dense() {
        let (_tmp, dir) = journal_dir();
        fs::write(dir.join("db"), vec![1u8; 3 << 20]).unwrap();
        let limits = Limits {
            hole: 1 << 20,
            file: 2 << 20,
        };
        let text = refused(check_limited(&dir, limits));
        assert!(text.contains("more than"), "{text}");
    }

    #[test]
    fn links_fifos_and_deep_folders_are_refused() {
        let (tmp, dir) = journal_dir();
        let outside = tmp.path().join("outside");
        fs::write(&outside, b"x").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("db")).unwrap();
        assert!(refused(check(&dir)).contains("symbolic link"));
        fs::remove_file(dir.join("db")).unwrap();

        let fifo = std::ffi::CString::new(dir.join("db").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(refused(check(&dir)).contains("neither"));
        fs::remove_file(dir.join("db")).unwrap();

        fs::create_dir_all(dir.join("blobs/deeper")).unwrap();
        assert!(refused(check(&dir)).contains("deeper"));
        fs::remove_dir_all(dir.join("blobs")).unwrap();

        let linked = tmp.path().join("linked");
        std::os::unix::fs::symlink(&dir, &linked).unwrap();
        assert!(refused(check(&linked)).contains("symbolic link, not a folder"));
        check(&dir).unwrap();
    }

    #[test]
    fn owners_are_this_user_root_or_the_state_directorys() {
        let (tmp, dir) = journal_dir();
        let owners = allowed_owners(&dir);
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let parent = fs::metadata(tmp.path()).unwrap().uid();
        assert_eq!(owners, vec![me, 0, parent]);
        let meta = fs::metadata(&dir).unwrap();
        assert!(check_owner(&meta, &owners).is_ok());
        let other = meta.uid().wrapping_add(1).max(1);
        let why = check_owner(&meta, &[other]).unwrap_err();
        assert!(why.contains(&format!("uid {}", meta.uid())), "{why}");
    }
}
