//! The [`FileOps`] seam and the sync rounds that make a whole phase's changes
//! durable together.

use super::nofollow::{metadata, open_nofollow, open_read};
use journal::ByteRange;
use rustix::fs::{self as rfs, OFlags};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// `Sync`: the executor runs file operations and sync rounds on several threads.
pub trait FileOps: Sync {
    /// Opens a regular file for reading.
    fn open_read(&self, path: &Path) -> io::Result<File> {
        open_read(path)
    }
    /// What `path` itself is (a symbolic link is reported as one, not followed);
    /// `None` when nothing is there.
    fn metadata(&self, path: &Path) -> io::Result<Option<fs::Metadata>> {
        metadata(path)
    }
    /// Copies `range` of `src` into a new file `dst` (replacing a regular file of
    /// that name), fsyncs `dst`, and returns the XXH3-64 of the bytes copied. Fails if
    /// `src` is shorter than `range`. Holes of `src` stay holes in `dst`.
    fn copy_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<u64>;
    /// Appends all of `src` to `dst` and fsyncs `dst`.
    fn append_file(&self, src: &Path, dst: &Path) -> io::Result<()>;
    /// Creates `dst` (replacing a regular file of that name) with a copy of `src`,
    /// then fsyncs it.
    fn append_into_new(&self, src: &Path, dst: &Path) -> io::Result<()> {
        let mut input = self.open_read(src)?;
        self.write_file(dst, &mut |w| io::copy(&mut input, w).map(|_| ()))
    }
    /// Creates `dst` (replacing a regular file of that name) with what `fill`
    /// writes, then fsyncs it.
    fn write_file(
        &self,
        dst: &Path,
        fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()>;
    /// Sets `path`'s length to `len` and fsyncs it: cuts it, or (restoring a zero run)
    /// extends it with zero bytes, as a hole.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Renames the regular file `from` to `to`, which must be missing or a regular
    /// file; it takes the owner and mode of the file it replaces.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// A second name `dst` for the regular file `src` (same file system only), then
    /// fsyncs the file: its bytes may not have been durable before.
    fn hard_link(&self, src: &Path, dst: &Path) -> io::Result<()>;
    /// Removes a regular file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates a folder and the missing folders above it, each owned like its parent.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty folder.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Makes everything written to the file system that holds the folder `dir`
    /// durable (`syncfs`): one call instead of a folder fsync each, for a large round
    /// (see [`SyncRound`]). Since Linux 5.8 it reports a write-back error of any file
    /// there, as an fsync of that file would.
    fn sync_fs(&self, dir: &Path) -> io::Result<()> {
        let fd = open_nofollow(dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
        rfs::syncfs(&fd).map_err(io::Error::from)
    }
    /// Marks a point between steps that are not file operations (journal writes), so
    /// fault injection can stop there too.
    fn step(&self, _what: &str) {}
}

/// Threads of a sync round, and of the executor's parallel phases: a fixed pool, so
/// that many fsyncs are in flight at once (a device queues them, and on a slow disk
/// their waits overlap) without a thread per repair.
pub const SYNC_THREADS: usize = 16;

/// Rounds of more folders than this are made durable with one `syncfs` per file
/// system: the data files were fsynced as they were written, so little is left to
/// write back, and a slow disk pays one wait instead of one per folder.
pub const SYNCFS_FROM: usize = 4 * SYNC_THREADS;

/// Folders whose entries changed, to make durable together: one fsync each, run on
/// [`SYNC_THREADS`] threads, however many repairs changed them; above
/// [`SYNCFS_FROM`] folders, one `syncfs` per file system instead.
#[derive(Debug, Default)]
pub struct SyncRound(std::sync::Mutex<std::collections::BTreeSet<std::path::PathBuf>>);

impl SyncRound {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a folder to the round (once, however often it is added).
    pub fn add(&self, dir: &Path) {
        let mut dirs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !dirs.contains(dir) {
            dirs.insert(dir.to_path_buf());
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every folder added durable and empties the round. On an error, the
    /// folder that failed and why (the first one, in path order).
    pub fn run(&self, fs: &dyn FileOps) -> Result<(), (std::path::PathBuf, io::Error)> {
        let dirs: Vec<std::path::PathBuf> =
            std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect();
        if dirs.len() > SYNCFS_FROM {
            use std::os::unix::fs::MetadataExt;
            // One folder stands for each file system.
            let mut by_device = std::collections::BTreeMap::new();
            for dir in &dirs {
                let meta = fs.metadata(dir).map_err(|e| (dir.clone(), e))?;
                let Some(meta) = meta else {
                    return Err((dir.clone(), io::Error::from(io::ErrorKind::NotFound)));
                };
                by_device.entry(meta.dev()).or_insert(dir);
            }
            return by_device
                .values()
                .try_for_each(|dir| fs.sync_fs(dir).map_err(|e| ((*dir).clone(), e)));
        }
        crate::parallel::map_ordered(&dirs, SYNC_THREADS, |dir| {
            fs.sync_dir(dir).map_err(|e| (dir.clone(), e))
        })
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsops::StdFs;
    use std::fs;
    use std::sync::atomic::Ordering;

    /// The real file system, counting folder fsyncs and file system syncs.
    #[derive(Default)]
    struct CountingSyncs {
        dirs: std::sync::atomic::AtomicUsize,
        filesystems: std::sync::atomic::AtomicUsize,
    }

    impl FileOps for CountingSyncs {
        fn copy_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<u64> {
            StdFs.copy_range(src, range, dst)
        }
        fn append_file(&self, src: &Path, dst: &Path) -> io::Result<()> {
            StdFs.append_file(src, dst)
        }
        fn write_file(
            &self,
            dst: &Path,
            fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
        ) -> io::Result<()> {
            StdFs.write_file(dst, fill)
        }
        fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
            StdFs.truncate(path, len)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            StdFs.rename(from, to)
        }
        fn hard_link(&self, src: &Path, dst: &Path) -> io::Result<()> {
            StdFs.hard_link(src, dst)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            StdFs.remove_file(path)
        }
        fn create_dir_all(&self, path: &Path) -> io::Result<()> {
            StdFs.create_dir_all(path)
        }
        fn remove_dir(&self, path: &Path) -> io::Result<()> {
            StdFs.remove_dir(path)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            self.dirs.fetch_add(1, Ordering::Relaxed);
            StdFs.sync_dir(dir)
        }
        fn sync_fs(&self, dir: &Path) -> io::Result<()> {
            self.filesystems.fetch_add(1, Ordering::Relaxed);
            StdFs.sync_fs(dir)
        }
    }

    #[test]
    fn a_small_round_fsyncs_each_folder_and_a_large_one_syncs_the_file_system_once() {
        let tmp = tempfile::tempdir().unwrap();
        let round = SyncRound::new();
        for i in 0..=SYNCFS_FROM {
            let dir = tmp.path().join(format!("p{i}"));
            fs::create_dir(&dir).unwrap();
            round.add(&dir);
            // Added twice, synced once.
            round.add(&dir);
        }
        let counting = CountingSyncs::default();
        round.run(&counting).unwrap();
        assert!(round.is_empty());
        let counts = |c: &CountingSyncs| {
            (
                c.dirs.load(Ordering::Relaxed),
                c.filesystems.load(Ordering::Relaxed),
            )
        };
        assert_eq!(
            counts(&counting),
            (0, 1),
            "{} folders on one file system",
            SYNCFS_FROM + 1
        );

        for i in 0..SYNCFS_FROM {
            round.add(&tmp.path().join(format!("p{i}")));
        }
        let counting = CountingSyncs::default();
        round.run(&counting).unwrap();
        assert_eq!(counts(&counting), (SYNCFS_FROM, 0));

        // A folder that is gone fails the round, naming it, either way.
        round.add(&tmp.path().join("gone"));
        let (path, _) = round.run(&counting).unwrap_err();
        assert!(path.ends_with("gone"));
        for i in 0..=SYNCFS_FROM {
            round.add(&tmp.path().join(format!("p{i}")));
        }
        round.add(&tmp.path().join("gone"));
        let (path, e) = round.run(&counting).unwrap_err();
        assert!(path.ends_with("gone") && e.kind() == io::ErrorKind::NotFound);
    }
}
