//! The [`FileOps`] seam and the sync rounds that make a whole phase's changes
//! durable together.

use super::nofollow::{metadata, open_nofollow, open_read};
use journal::ByteRange;
use rustix::fs::{self as rfs, OFlags};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    /// Appends `range` of `src` to `dst` and fsyncs `dst`. Fails, appending nothing,
    /// if `src` is shorter than `range`. A restore appends a slice of a run's packed
    /// file, or all of a repair's own one.
    fn append_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<()>;
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
    /// [`FileOps::copy_range`], leaving the fsync of `dst` to `round`. By default the
    /// copy is fsynced at once (durable earlier than asked, never later).
    fn copy_range_in_round(
        &self,
        src: &Path,
        range: ByteRange,
        dst: &Path,
        _round: &SyncRound,
    ) -> io::Result<u64> {
        self.copy_range(src, range, dst)
    }
    /// Creates `dst` (replacing a regular file of that name) `len` bytes long, all
    /// of it a hole, leaving its fsync to `round`: a run's packed file, sized up
    /// front so that its slices can be filled at once, in any order, by
    /// [`FileOps::copy_range_at_in_round`].
    fn create_sized_in_round(&self, dst: &Path, len: u64, round: &SyncRound) -> io::Result<()>;
    /// Copies `range` of `src` into the existing file `dst` at offset `at`, with
    /// positioned writes (many copies fill one file at once), leaving the fsync of
    /// `dst` to `round`; returns the XXH3-64 of the bytes copied. Fails if `src` is
    /// shorter than `range`, or `dst` shorter than `at + range.len()` (a slice never
    /// grows the file past what was sized for it). Holes of `src` stay holes.
    fn copy_range_at_in_round(
        &self,
        src: &Path,
        range: ByteRange,
        dst: &Path,
        at: u64,
        round: &SyncRound,
    ) -> io::Result<u64>;
    /// Cuts `path` from `from` bytes to `to`, leaving the fsync to `round`, if and only
    /// if it is `from` bytes long, as seen on the handle that cuts it (no other file
    /// can take its name in between). Returns the length found (`None`: no file);
    /// any other length leaves the file as it is, for the caller to judge. A file
    /// with other names (hard links) is replaced by a cut copy, made durable at once,
    /// so that the other names keep their bytes.
    fn cut_in_round(
        &self,
        path: &Path,
        from: u64,
        to: u64,
        round: &SyncRound,
    ) -> io::Result<Option<u64>>;
    /// Makes a regular file's bytes and length durable (a round's deferred writes).
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.open_read(path)?.sync_all()
    }
    /// Renames the regular file `from` to `to`, which must be missing or a regular
    /// file; it takes the owner and mode of the file it replaces.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Swaps the names of the regular files `a` and `b` in one step
    /// (`RENAME_EXCHANGE`), so that neither name is ever missing and the file that
    /// leaves `b` can still be read under `a`; the one that comes to `b` takes the
    /// owner and mode of the one it replaces. `Unsupported` where the file system
    /// cannot swap.
    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()>;
    /// A second name `dst` for the regular file `src` (same file system only), then
    /// fsyncs the file: its bytes may not have been durable before.
    fn hard_link(&self, src: &Path, dst: &Path) -> io::Result<()>;
    /// Removes a regular file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates a folder and the missing folders above it, each owned like its parent.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty folder.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Makes a folder's entries durable.
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

/// Rounds of more paths (files and folders) than this are made durable with one
/// `syncfs` per file system: a slow disk then pays one wait instead of one per path.
/// A file filled by many writes left to the round (a run's packed file, one slice
/// per repair) counts once per write: it holds what as many small files held, and
/// is synced as they were.
pub const SYNCFS_FROM: usize = 4 * SYNC_THREADS;

/// Files written and folders whose entries changed, to make durable together: one
/// fsync each, run on [`SYNC_THREADS`] threads, however many repairs changed them;
/// above [`SYNCFS_FROM`] paths, one `syncfs` per file system instead. Writes that
/// leave their fsync to a round ([`FileOps::copy_range_in_round`],
/// [`FileOps::cut_in_round`]) are durable only once the round has run.
#[derive(Debug, Default)]
pub struct SyncRound(Mutex<RoundPaths>);

#[derive(Debug, Default)]
struct RoundPaths {
    /// Each with the file system (device) it is on, as the write that left it to
    /// the round found it. Hashed, not ordered: a round of 20,000 paths compared
    /// component by component cost more than the writes that added them.
    files: HashMap<PathBuf, u64>,
    dirs: HashSet<PathBuf>,
    /// Writes left to the round, a file added twice counting twice.
    writes: usize,
}

impl SyncRound {
    pub fn new() -> Self {
        Self::default()
    }

    fn paths(&self) -> std::sync::MutexGuard<'_, RoundPaths> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a folder whose entries changed (once, however often it is added).
    pub fn add_dir(&self, dir: &Path) {
        let mut paths = self.paths();
        if !paths.dirs.contains(dir) {
            paths.dirs.insert(dir.to_path_buf());
        }
    }

    /// Adds a file whose bytes or length changed and were not fsynced, on the file
    /// system `device` (its `st_dev`), once however often it is added; each addition
    /// counts toward [`SYNCFS_FROM`].
    pub fn add_file(&self, file: &Path, device: u64) {
        let mut paths = self.paths();
        paths.writes += 1;
        if !paths.files.contains_key(file) {
            paths.files.insert(file.to_path_buf(), device);
        }
    }

    /// Files and folders waiting for the round.
    pub fn len(&self) -> usize {
        let paths = self.paths();
        paths.files.len() + paths.dirs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`SyncRound::run`] on a thread of its own while `beside` runs on this one:
    /// work that needs no durability, done while the round mostly waits for the
    /// disk. Returns both results; a panic in either is resumed here.
    pub fn run_beside<T>(
        &self,
        fs: &dyn FileOps,
        beside: impl FnOnce() -> T,
    ) -> (Result<(), (PathBuf, io::Error)>, T) {
        std::thread::scope(|scope| {
            let sync = scope.spawn(|| self.run(fs));
            let beside = beside();
            let synced = sync
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (synced, beside)
        })
    }

    /// Makes every file and folder added durable and empties the round. On an error,
    /// the path that failed and why (the first one, files before folders, each in
    /// path order).
    pub fn run(&self, fs: &dyn FileOps) -> Result<(), (PathBuf, io::Error)> {
        let RoundPaths {
            files,
            dirs,
            writes,
        } = std::mem::take(&mut *self.paths());
        let mut files: Vec<(PathBuf, u64)> = files.into_iter().collect();
        files.sort_unstable_by(|(a, _), (b, _)| a.as_os_str().cmp(b.as_os_str()));
        let mut dirs: Vec<PathBuf> = dirs.into_iter().collect();
        dirs.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        if writes.max(files.len()) + dirs.len() > SYNCFS_FROM {
            return sync_file_systems(fs, &files, &dirs);
        }
        let all: Vec<(PathBuf, bool)> = files
            .into_iter()
            .map(|(f, _)| (f, true))
            .chain(dirs.into_iter().map(|d| (d, false)))
            .collect();
        crate::parallel::map_ordered(&all, SYNC_THREADS, |(path, is_file)| {
            let synced = if *is_file {
                fs.sync_file(path)
            } else {
                fs.sync_dir(path)
            };
            synced.map_err(|e| (path.clone(), e))
        })
        .map(drop)
    }
}

/// One `syncfs` per file system that `files` (each with its device) and `dirs` are
/// on, through a folder on it: each folder is stat'ed, a file's folder only for a
/// device no folder stood for yet (and used only when it is on the file's device:
/// a file mounted on its own is fsynced instead).
fn sync_file_systems(
    fs: &dyn FileOps,
    files: &[(PathBuf, u64)],
    dirs: &[PathBuf],
) -> Result<(), (PathBuf, io::Error)> {
    use std::os::unix::fs::MetadataExt;
    let device_of = |dir: &Path| {
        let not_found = || io::Error::from(io::ErrorKind::NotFound);
        let meta = fs.metadata(dir).map_err(|e| (dir.to_path_buf(), e))?;
        let meta = meta.ok_or_else(|| (dir.to_path_buf(), not_found()))?;
        Ok::<_, (PathBuf, io::Error)>(meta.dev())
    };
    let mut by_device: BTreeMap<u64, &Path> = BTreeMap::new();
    let mut alone = Vec::new();
    for (file, device) in files {
        if by_device.contains_key(device) {
            continue;
        }
        match file.parent() {
            Some(dir) if device_of(dir)? == *device => {
                by_device.insert(*device, dir);
            }
            _ => alone.push(file),
        }
    }
    for dir in dirs {
        let device = device_of(dir)?;
        by_device.entry(device).or_insert(dir);
    }
    for file in alone {
        fs.sync_file(file).map_err(|e| (file.clone(), e))?;
    }
    by_device
        .values()
        .try_for_each(|dir| fs.sync_fs(dir).map_err(|e| (dir.to_path_buf(), e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsops::hooked::{Hook, Hooked, Op, Verdict};
    use crate::fsops::StdFs;
    use std::fs;
    use std::sync::atomic::Ordering;

    /// Counts the real file system's file and folder fsyncs and file system syncs.
    #[derive(Default)]
    struct CountingSyncs {
        files: std::sync::atomic::AtomicUsize,
        dirs: std::sync::atomic::AtomicUsize,
        filesystems: std::sync::atomic::AtomicUsize,
    }

    impl Hook for CountingSyncs {
        fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
            let count = match op {
                Op::SyncFile { .. } => &self.files,
                Op::SyncDir { .. } => &self.dirs,
                Op::SyncFs { .. } => &self.filesystems,
                _ => return Ok(Verdict::Run),
            };
            count.fetch_add(1, Ordering::Relaxed);
            Ok(Verdict::Run)
        }
    }

    #[test]
    fn a_small_round_fsyncs_each_folder_and_a_large_one_syncs_the_file_system_once() {
        let tmp = tempfile::tempdir().unwrap();
        let round = SyncRound::new();
        for i in 0..=SYNCFS_FROM {
            let dir = tmp.path().join(format!("p{i}"));
            fs::create_dir(&dir).unwrap();
            round.add_dir(&dir);
            // Added twice, synced once.
            round.add_dir(&dir);
        }
        let counting = CountingSyncs::default();
        round.run(&Hooked(&counting)).unwrap();
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
            round.add_dir(&tmp.path().join(format!("p{i}")));
        }
        let counting = CountingSyncs::default();
        round.run(&Hooked(&counting)).unwrap();
        assert_eq!(counts(&counting), (SYNCFS_FROM, 0));

        // A folder that is gone fails the round, naming it, either way.
        round.add_dir(&tmp.path().join("gone"));
        let (path, _) = round.run(&Hooked(&counting)).unwrap_err();
        assert!(path.ends_with("gone"));
        for i in 0..=SYNCFS_FROM {
            round.add_dir(&tmp.path().join(format!("p{i}")));
        }
        round.add_dir(&tmp.path().join("gone"));
        let (path, e) = round.run(&Hooked(&counting)).unwrap_err();
        assert!(path.ends_with("gone") && e.kind() == io::ErrorKind::NotFound);
    }

    #[test]
    fn writes_left_to_a_round_are_synced_by_it_one_file_each_or_one_syncfs() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::write(&src, b"0123456789").unwrap();
        let round = SyncRound::new();
        let copy = tmp.path().join("copy");
        let digest = StdFs
            .copy_range_in_round(&src, ByteRange::new(2, 6), &copy, &round)
            .unwrap();
        assert_eq!(digest, xxhash_rust::xxh3::xxh3_64(b"2345"));
        assert_eq!(fs::read(&copy).unwrap(), b"2345");
        assert_eq!(StdFs.cut_in_round(&src, 10, 3, &round).unwrap(), Some(10));
        assert_eq!(fs::read(&src).unwrap(), b"012");
        round.add_dir(tmp.path());
        assert_eq!(round.len(), 3);
        let counting = CountingSyncs::default();
        round.run(&Hooked(&counting)).unwrap();
        let counts = |c: &CountingSyncs| {
            (
                c.files.load(Ordering::Relaxed),
                c.dirs.load(Ordering::Relaxed),
                c.filesystems.load(Ordering::Relaxed),
            )
        };
        assert_eq!(counts(&counting), (2, 1, 0));

        // Many files: one syncfs for all of them.
        for i in 0..=SYNCFS_FROM {
            let dst = tmp.path().join(format!("c{i}"));
            StdFs
                .copy_range_in_round(&src, ByteRange::new(0, 3), &dst, &round)
                .unwrap();
        }
        let counting = CountingSyncs::default();
        round.run(&Hooked(&counting)).unwrap();
        assert_eq!(counts(&counting), (0, 0, 1));
        assert!(round.is_empty());

        // One file filled by as many writes (a packed run): one syncfs too.
        let packed = tmp.path().join("packed");
        let slices = SYNCFS_FROM as u64;
        StdFs
            .create_sized_in_round(&packed, 3 * slices, &round)
            .unwrap();
        for i in 0..slices {
            StdFs
                .copy_range_at_in_round(&src, ByteRange::new(0, 3), &packed, 3 * i, &round)
                .unwrap();
        }
        assert_eq!(round.len(), 1);
        let counting = CountingSyncs::default();
        round.run(&Hooked(&counting)).unwrap();
        assert_eq!(counts(&counting), (0, 0, 1));
        assert_eq!(fs::read(&packed).unwrap(), b"012".repeat(SYNCFS_FROM));
    }

    #[test]
    fn a_large_round_of_files_looks_at_one_folder_per_file_system_not_one_per_file() {
        let tmp = tempfile::tempdir().unwrap();
        let round = SyncRound::new();
        let mut folders = Vec::new();
        for i in 0..=SYNCFS_FROM {
            let dir = tmp.path().join(format!("p{i:03}"));
            fs::create_dir(&dir).unwrap();
            let file = dir.join("00000000000000000000.log");
            fs::write(&file, b"0123456789").unwrap();
            assert_eq!(StdFs.cut_in_round(&file, 10, 4, &round).unwrap(), Some(10));
            folders.push(dir);
        }
        // Each file came with its device: only the first file's folder is looked at
        // (the others could be gone, and the round would not notice).
        for dir in folders.iter().skip(1) {
            let moved = dir.with_extension("moved");
            fs::rename(dir, &moved).unwrap();
        }
        let counting = CountingSyncs::default();
        round.run(&Hooked(&counting)).unwrap();
        assert_eq!(counting.filesystems.load(Ordering::Relaxed), 1);
        assert_eq!(counting.files.load(Ordering::Relaxed), 0);
        assert!(round.is_empty());

        // A folder added to the round is looked at, whatever the files said.
        let file = folders[0].join("00000000000000000000.log");
        fs::write(&file, b"0123456789").unwrap();
        StdFs.cut_in_round(&file, 10, 4, &round).unwrap();
        for i in 0..=SYNCFS_FROM {
            round.add_dir(&tmp.path().join(format!("p{i:03}")));
        }
        let (path, e) = round.run(&Hooked(&counting)).unwrap_err();
        assert!(
            path.ends_with("p001") && e.kind() == io::ErrorKind::NotFound,
            "{path:?}: {e}"
        );
    }
}
