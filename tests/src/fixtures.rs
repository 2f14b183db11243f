//! The real iggy-server 0.6.0 data directories committed in `fixtures/iggy-0.6.0/`
//! (see its README), and writable copies of them.
//!
//! The fixtures live inside the repository, so a clone stands on its own.
//! `$IGGY_WARDEN_SHARED/fixtures/iggy-0.6.0/` may add more, but only for names the
//! repository does not hold: nothing depends on it. `SHA256SUMS` beside them lists
//! every committed file, and [`verify_manifest`] checks it. Tests never modify a
//! fixture in place: they work on a copy made by [`fixture_copy`] or [`copy_dir`],
//! which makes every copied file and folder writable by its owner.
//!
//! Git keeps no empty folders, so the `offsets/consumers` and `offsets/groups`
//! folders the server creates in every partition are missing from the committed
//! copies (except where a consumer offset file lives). `check` reports them as
//! `missing-offsets-dir`; tests that need a directory the server would accept let
//! `recover` create them in their copy.
//!
//! Good fault targets (see `faults`): `killed-under-load` partitions 0 and 1 have
//! several non-empty segments and no trailing empty pair, so every fault applies;
//! `clean` `streams/1/topics/0/partitions/0` is a single segment; `clean`
//! `streams/0/topics/0/partitions/0` ends with the empty pair the server created after
//! sealing a full segment. `race-rotation` is what the 0.6.0 rotation race leaves.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Environment variable naming a `shared/` folder whose `fixtures/iggy-0.6.0/` may
/// hold fixtures the repository does not.
pub const SHARED_ENV: &str = "IGGY_WARDEN_SHARED";
/// Fixture: a cleanly stopped server, segment size 64 KiB.
pub const CLEAN: &str = "clean";
/// Fixture: a server SIGKILLed while three partitions were being written.
pub const KILLED_UNDER_LOAD: &str = "killed-under-load";
/// Fixture: what the 0.6.0 rotation race leaves in one partition.
pub const RACE_ROTATION: &str = "race-rotation";
/// Every committed fixture.
pub const ALL: [&str; 3] = [CLEAN, KILLED_UNDER_LOAD, RACE_ROTATION];

/// The committed fixtures: `<workspace root>/fixtures/iggy-0.6.0`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/iggy-0.6.0")
}

/// Path of the read-only fixture `name`: the committed one, else one under
/// `$IGGY_WARDEN_SHARED/fixtures/iggy-0.6.0`. Panics with a clear message when
/// neither exists.
pub fn fixture(name: &str) -> PathBuf {
    let committed = fixtures_dir().join(name);
    if committed.is_dir() {
        return committed;
    }
    let extra = std::env::var_os(SHARED_ENV)
        .map(|shared| PathBuf::from(shared).join("fixtures/iggy-0.6.0").join(name));
    match extra {
        Some(path) if path.is_dir() => path,
        _ => panic!(
            "fixture {name:?} not found in {} (nor under ${SHARED_ENV}/fixtures/iggy-0.6.0)",
            fixtures_dir().display()
        ),
    }
}

/// Checks every line of `fixtures/iggy-0.6.0/SHA256SUMS` (`<hex>  <relative path>`)
/// against the file it names, and that every file under the fixtures is listed.
/// Returns the number of files checked, or what differs.
pub fn verify_manifest() -> Result<usize, String> {
    use sha2::{Digest, Sha256};
    let root = fixtures_dir();
    let manifest = fs::read_to_string(root.join("SHA256SUMS"))
        .map_err(|e| format!("{}: {e}", root.join("SHA256SUMS").display()))?;
    let mut listed = std::collections::BTreeSet::new();
    for (n, line) in manifest.lines().enumerate() {
        let (hex, rel) = line
            .split_once("  ")
            .ok_or_else(|| format!("SHA256SUMS line {}: not `<hex>  <path>`", n + 1))?;
        let bytes = fs::read(root.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
        let actual: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if actual != hex {
            return Err(format!("{rel}: sha256 {actual}, manifest says {hex}"));
        }
        listed.insert(PathBuf::from(rel));
    }
    let mut on_disk = Vec::new();
    for name in ALL {
        list_files(&root, Path::new(name), &mut on_disk).map_err(|e| e.to_string())?;
    }
    let unlisted: Vec<_> = on_disk.iter().filter(|p| !listed.contains(*p)).collect();
    if !unlisted.is_empty() {
        return Err(format!("files not in SHA256SUMS: {unlisted:?}"));
    }
    Ok(listed.len())
}

fn list_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let child = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            list_files(root, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
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
    fn fixtures_are_found_inside_the_repository() {
        for name in ALL {
            let path = fixture(name);
            assert!(path.join("state/info").is_file(), "{name}");
            assert!(path.starts_with(fixtures_dir()), "{}", path.display());
        }
    }

    #[test]
    fn every_committed_fixture_file_matches_its_checksum() {
        assert_eq!(verify_manifest(), Ok(95));
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
