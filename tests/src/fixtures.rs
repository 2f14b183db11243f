//! The real iggy-server 0.6.0 data directories in `shared/fixtures/iggy-0.6.0/`, and
//! writable copies of them.
//!
//! `shared/` sits beside the checkout (`<workspace root>/../shared`); the environment
//! variable `IGGY_WARDEN_SHARED` overrides that. The fixture files are read-only
//! (0444, folders 0555) and must never be modified: tests work on a copy made by
//! [`fixture_copy`] or [`copy_dir`], which makes every copied file and folder writable
//! by its owner.
//!
//! Good fault targets (see `faults`): `killed-under-load` partitions 0 and 1 have
//! several non-empty segments and no trailing empty pair, so every fault applies;
//! `clean` `streams/1/topics/0/partitions/0` is a single segment; `clean`
//! `streams/0/topics/0/partitions/0` ends with the empty pair the server created after
//! sealing a full segment.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Environment variable that, when set, is the path of the `shared/` folder.
pub const SHARED_ENV: &str = "IGGY_WARDEN_SHARED";
/// Fixture: a cleanly stopped server, segment size 64 KiB.
pub const CLEAN: &str = "clean";
/// Fixture: a server SIGKILLed while three partitions were being written.
pub const KILLED_UNDER_LOAD: &str = "killed-under-load";

/// The `shared/` folder: `$IGGY_WARDEN_SHARED`, else `<workspace root>/../shared`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os(SHARED_ENV) {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// Path of the read-only fixture `shared/fixtures/iggy-0.6.0/<name>`. Panics with a
/// clear message when it does not exist.
pub fn fixture(name: &str) -> PathBuf {
    let path = shared_dir().join("fixtures/iggy-0.6.0").join(name);
    assert!(
        path.is_dir(),
        "fixture {name:?} not found at {} (set {SHARED_ENV} to the shared/ folder)",
        path.display()
    );
    path
}

/// Recursively copies `src` into `dst` (created if missing). Regular files and
/// folders are copied, symlinks are recreated as symlinks; every copied file and
/// folder gets the owner-write bit so the copy can be modified and deleted.
pub fn copy_dir(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    make_owner_writable(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = dst.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
            make_owner_writable(&target)?;
        }
    }
    Ok(())
}

fn make_owner_writable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut permissions = fs::metadata(path)?.permissions();
    permissions.set_mode(permissions.mode() | 0o200);
    fs::set_permissions(path, permissions)
}

/// A writable copy of a data directory in a temporary folder, deleted on drop. The
/// data directory is a subfolder (`<tmp>/data`), so tests have room for siblings
/// such as backups.
#[derive(Debug)]
pub struct FixtureCopy {
    tmp: TempDir,
    path: PathBuf,
}

impl FixtureCopy {
    /// The copied data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary folder holding the data directory.
    pub fn tmp_root(&self) -> &Path {
        self.tmp.path()
    }
}

/// A writable copy of the fixture `name` (see [`fixture`]). Panics on I/O errors.
pub fn fixture_copy(name: &str) -> FixtureCopy {
    copy_of(&fixture(name))
}

/// A writable copy of any data directory. Panics on I/O errors.
pub fn copy_of(src: &Path) -> FixtureCopy {
    let tmp = tempfile::tempdir().expect("create a temporary folder");
    let path = tmp.path().join("data");
    copy_dir(src, &path)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), path.display()));
    FixtureCopy { tmp, path }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{assert_same, snapshot};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn fixtures_are_found() {
        assert!(shared_dir().join("iggy-format.md").is_file());
        assert!(fixture(CLEAN).join("state/info").is_file());
        assert!(fixture(KILLED_UNDER_LOAD).join("state/info").is_file());
    }

    #[test]
    #[should_panic(expected = "fixture \"nope\" not found")]
    fn missing_fixture_panics_clearly() {
        fixture("nope");
    }

    #[test]
    fn copies_are_identical_and_writable() {
        let copy = fixture_copy(CLEAN);
        assert_same(&snapshot(&fixture(CLEAN)), &snapshot(copy.path()));
        let log = copy
            .path()
            .join("streams/0/topics/0/partitions/0/00000000000000000000.log");
        assert_ne!(fs::metadata(&log).unwrap().permissions().mode() & 0o200, 0);
        fs::OpenOptions::new().append(true).open(&log).unwrap();
        let dir = copy.path().join("streams/0/topics/0/partitions/0");
        fs::write(dir.join("new-file"), b"x").unwrap();
        assert_eq!(copy.path().parent(), Some(copy.tmp_root()));
    }

    #[test]
    fn dropping_a_copy_removes_it() {
        let copy = fixture_copy(CLEAN);
        let root = copy.tmp_root().to_path_buf();
        drop(copy);
        assert!(!root.exists());
        assert!(
            fixture(CLEAN).join("state/info").is_file(),
            "the fixture itself stays"
        );
    }
}
