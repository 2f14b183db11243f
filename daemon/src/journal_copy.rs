//! Inspection's copy of the journal: a private scratch folder, and a copy of the
//! journal's files made under a shared lock on sled's `db`.
//!
//! Inspection cannot open the journal itself (sled writes whenever it opens a
//! database), so `journal_open.rs` opens a copy made here. The copy refuses what
//! sled never writes and what could fill the disk (symbolic links, special files,
//! sparse files), and the scratch folder goes when its owner is dropped, or, left by a
//! process that died, at the next inspection.

use anyhow::Context;
use recovery::names::escaped;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Prefix of the scratch folders inspection copies the journal into.
pub const SCRATCH_PREFIX: &str = ".inspect-";

/// How long inspection waits for another process to let go of the journal's lock
/// (sled releases it from background threads a moment after it is closed).
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// A journal file whose apparent size exceeds its allocated blocks by more than this
/// is sparse: sled never writes one, and copying or opening it could fill the disk or
/// memory with zeros.
const SPARSE_SLACK: u64 = 1 << 20;

/// `text` with the inspection copy at `copy` named as the journal at `real`: errors
/// name the copy, the operator knows the journal by its real path. (The journal's
/// errors print paths with `Path::display`, ours escaped: both forms are replaced.)
pub(crate) fn rename_copy(text: String, copy: &Path, real: &Path) -> String {
    text.replace(&escaped(copy).to_string(), &escaped(real).to_string())
        .replace(
            &copy.as_os_str().to_string_lossy().into_owned(),
            &real.as_os_str().to_string_lossy(),
        )
}

/// Copies the journal at `from` to `to` while holding a shared lock on its `db`, so no
/// sled process writes it meanwhile. `Ok(Err(why))` when the journal is unusable as
/// it is (a symlink or special file inside, a sparse file, unreadable files).
pub(crate) fn copy_locked(from: &Path, to: &Path) -> anyhow::Result<Result<(), String>> {
    let db = from.join("db");
    let _lock = match fs::File::open(&db) {
        Ok(file) => {
            let deadline = Instant::now() + LOCK_WAIT;
            loop {
                // SAFETY: flock on a descriptor we own; it only changes advisory lock
                // state, and the file outlives the call (and the lock, until dropped).
                if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
                    break Some(file);
                }
                if Instant::now() >= deadline {
                    anyhow::bail!(
                        "another process holds the journal {} (a recover, replay --apply or \
                         restore in progress, or a sidecar that did not hand it over); try \
                         again when it is done",
                        escaped(from)
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // sled would start an empty database: the copy shows that.
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // Another user's journal: an error to report, not an unusable journal.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => anyhow::bail!(
            "permission denied on {} ({e}): run as the user that owns the journal",
            escaped(&db)
        ),
        Err(e) => return Ok(Err(format!("cannot read {}: {e}", escaped(&db)))),
    };
    copy_tree(from, to)
}

/// Copies regular files and folders; anything else makes the journal unusable.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<Result<(), String>> {
    fs::create_dir(to).with_context(|| format!("cannot create {}", escaped(to)))?;
    let entries = match fs::read_dir(from) {
        Ok(e) => e,
        Err(e) => return Ok(Err(format!("cannot list {}: {e}", escaped(from)))),
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return Ok(Err(format!("cannot list {}: {e}", escaped(from)))),
        };
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = match fs::symlink_metadata(&src) {
            Ok(m) => m,
            Err(e) => return Ok(Err(format!("cannot read {}: {e}", escaped(&src)))),
        };
        if meta.is_dir() {
            if let Err(why) = copy_tree(&src, &dst)? {
                return Ok(Err(why));
            }
        } else if meta.is_file() {
            let allocated = meta.blocks().saturating_mul(512);
            if meta.len() > allocated.saturating_add(SPARSE_SLACK) {
                return Ok(Err(format!(
                    "{} is sparse ({} bytes, {allocated} allocated): not written by sled",
                    escaped(&src),
                    meta.len()
                )));
            }
            match fs::copy(&src, &dst) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::StorageFull => {
                    return Err(e).with_context(|| {
                        format!("no room to copy {} for inspection", escaped(&src))
                    })
                }
                Err(e) => {
                    return Ok(Err(format!(
                        "cannot copy {} for inspection: {e}",
                        escaped(&src)
                    )))
                }
            }
        } else {
            return Ok(Err(format!(
                "{} is not a regular file or folder: not written by sled",
                escaped(&src)
            )));
        }
    }
    Ok(Ok(()))
}

/// A private scratch folder, removed with everything in it when dropped.
pub(crate) struct Scratch {
    pub(crate) dir: PathBuf,
}

impl Scratch {
    /// In the state directory (same file system, same owner), or in the system's
    /// temporary folder when the state directory is not writable.
    pub(crate) fn create(state_dir: &Path) -> anyhow::Result<Self> {
        match Self::create_in(state_dir) {
            Ok(s) => Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied
                        | io::ErrorKind::ReadOnlyFilesystem
                        | io::ErrorKind::NotFound
                ) =>
            {
                let tmp = std::env::temp_dir();
                tracing::debug!(
                    "cannot copy the journal into {} ({e}); using {}",
                    escaped(state_dir),
                    escaped(&tmp)
                );
                Self::create_in(&tmp)
                    .with_context(|| format!("cannot create a scratch folder in {}", escaped(&tmp)))
            }
            Err(e) => Err(e).with_context(|| {
                format!("cannot create a scratch folder in {}", escaped(state_dir))
            }),
        }
    }

    fn create_in(parent: &Path) -> io::Result<Self> {
        let mut attempt = 0u32;
        loop {
            let name = format!(
                "{SCRATCH_PREFIX}{}-{}",
                std::process::id(),
                journal::record::now_micros().wrapping_add(u64::from(attempt))
            );
            let dir = parent.join(name);
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self { dir }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // sled's background threads may still touch the copy a moment after it is
        // closed; a file they create meanwhile makes the removal fail once.
        for _ in 0..50 {
            match fs::remove_dir_all(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        tracing::warn!(
            "cannot remove the journal copy {}; remove it by hand",
            escaped(&self.dir)
        );
    }
}

/// Removes scratch folders left by inspections that died (their process is gone).
/// Only writers call it: inspection itself never removes what it did not create.
pub(crate) fn remove_stale_scratch(state_dir: &Path) {
    let Ok(entries) = fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
