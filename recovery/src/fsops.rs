//! The one way in to files: every read and write of the data and state directories
//! goes through here, and nothing here follows a symbolic link.
//!
//! A path is opened with `openat2(RESOLVE_NO_SYMLINKS)` where the kernel has it
//! (Linux 5.6), else by walking it one component at a time with
//! `openat(O_NOFOLLOW)` from `/`: a symbolic link anywhere in it is refused, whatever
//! it points to. So callers must pass paths whose directories are real folders: the
//! commands resolve the data and state directories once at start
//! (`local_data → /mnt/ssd/…` is common) and work below the resolved paths. Renames,
//! removals, links and new folders act on an entry of a folder opened that way
//! (`renameat`, `unlinkat`, `linkat`, `mkdirat`), and none replaces or removes a
//! symbolic link. New files are created with `O_EXCL`, after removing a stale regular
//! file of the same name; a name that is anything else is refused. Files are opened
//! with `O_NONBLOCK` (a FIFO planted under a file's name cannot hang a run) and must
//! be regular files. A file cut or appended in place must have one name only: a hard
//! link to it elsewhere would change too.
//!
//! Owners and modes: `recover` runs as root before iggy-server starts, and the server
//! must still append to what it writes. A new file or folder takes the owner of its
//! folder (and, for a file, the folder's mode without execute bits); a file renamed
//! over another takes the owner and mode of the one it replaces.
//!
//! The repair executor uses these through the [`FileOps`] trait, so tests can stop it
//! between any two operations or fail any of them, reads included (as
//! tikv/raft-engine's `FileSystem` seam). Discovery and the analysis call the free
//! functions [`open_read`], [`metadata`] and [`list_dir`] directly.
//!
//! Every operation that writes also makes its result durable (fsync of the file) before
//! it returns; directory entries are made durable by an explicit [`FileOps::sync_dir`].

use journal::ByteRange;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};
use xxhash_rust::xxh3::Xxh3;

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

/// The real file system, following no symbolic link.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

impl FileOps for StdFs {
    fn copy_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<u64> {
        use std::os::unix::fs::FileExt;
        let input = open_read(src)?;
        let out = create_new(dst)?;
        let short = |at: u64| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ends at byte {at}, before the end of range {range}",
                    src.display(),
                ),
            )
        };
        let len = input.metadata()?.len();
        if len < range.end {
            return Err(short(len));
        }
        // Only the data is read and written: holes are hashed as the zeros they read
        // as, and stay holes in the copy.
        let mut hasher = Xxh3::new();
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut pos = range.start;
        while pos < range.end {
            let data = next_data(&input, pos)?.unwrap_or(range.end).min(range.end);
            if data > pos {
                hash_zeros(&mut hasher, data - pos);
                pos = data;
                continue;
            }
            let hole = next_hole(&input, pos)?.min(range.end);
            while pos < hole {
                let want = usize::try_from(hole - pos)
                    .unwrap_or(COPY_CHUNK)
                    .min(COPY_CHUNK);
                let piece = buf.get_mut(..want).unwrap_or(&mut []);
                let n = match input.read_at(piece, pos) {
                    Ok(0) => return Err(short(pos)),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                let chunk = piece.get(..n).unwrap_or(&[]);
                hasher.update(chunk);
                out.write_all_at(chunk, pos - range.start)?;
                pos += n as u64;
            }
        }
        out.set_len(range.len())?;
        out.sync_all()?;
        Ok(hasher.digest())
    }

    fn append_file(&self, src: &Path, dst: &Path) -> io::Result<()> {
        let mut input = open_read(src)?;
        let Some(mut out) = open_in_place(dst, OFlags::WRONLY | OFlags::APPEND)? else {
            return self.unshare(dst, &mut |copy| {
                io::copy(&mut input, copy)?;
                Ok(())
            });
        };
        io::copy(&mut input, &mut out)?;
        out.sync_all()
    }

    fn write_file(
        &self,
        dst: &Path,
        fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let file = create_new(dst)?;
        let mut out = io::BufWriter::with_capacity(1 << 16, file);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let Some(file) = open_in_place(path, OFlags::WRONLY)? else {
            return self.unshare(path, &mut |copy| copy.set_len(len));
        };
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = open_parent(from)?;
        let (to_dir, to_name) = open_parent(to)?;
        let moved = File::from(openat_nofollow(
            from_dir.as_fd(),
            from_name,
            OFlags::RDONLY | OFlags::NONBLOCK,
        )?);
        require_regular(&rfs::fstat(&moved)?)?;
        match lstat_at(to_dir.as_fd(), to_name)? {
            None => {}
            Some(st) if is_regular(&st) => {
                adopt_owner(&moved, from, st.st_uid, st.st_gid, st.st_mode & 0o7777)?
            }
            Some(st) => return Err(refuse_to_replace(&st)),
        }
        rfs::renameat(&from_dir, from_name, &to_dir, to_name)?;
        Ok(())
    }

    fn hard_link(&self, src: &Path, dst: &Path) -> io::Result<()> {
        let (src_dir, src_name) = open_parent(src)?;
        match lstat_at(src_dir.as_fd(), src_name)? {
            Some(st) => require_regular(&st)?,
            None => return Err(io::ErrorKind::NotFound.into()),
        }
        let (dst_dir, dst_name) = open_parent(dst)?;
        rfs::linkat(&src_dir, src_name, &dst_dir, dst_name, AtFlags::empty())?;
        open_read(dst)?.sync_all()
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = open_parent(path)?;
        match lstat_at(dir.as_fd(), name)? {
            None => Err(io::ErrorKind::NotFound.into()),
            Some(st) if is_regular(&st) => Ok(rfs::unlinkat(&dir, name, AtFlags::empty())?),
            Some(st) => Err(refuse_to_replace(&st)),
        }
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        create_dir_all(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = open_parent(path)?;
        match rfs::unlinkat(&dir, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(()),
            Err(Errno::NOTDIR) if is_link_at(dir.as_fd(), name) => Err(refused_link()),
            Err(e) => Err(e.into()),
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::from(open_nofollow(dir, OFlags::RDONLY | OFlags::DIRECTORY)?).sync_all()
    }
}

/// Read size of copies.
const COPY_CHUNK: usize = 1 << 20;

/// Feeds `n` zero bytes to `hasher`.
fn hash_zeros(hasher: &mut Xxh3, mut n: u64) {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    while n > 0 {
        let step = usize::try_from(n).unwrap_or(ZEROS.len()).min(ZEROS.len());
        hasher.update(ZEROS.get(..step).unwrap_or(&[]));
        n -= step as u64;
    }
}

/// The first byte at or after `pos` that is data, not a hole; `None` when only holes
/// follow. Where the file system cannot say, `pos` (everything counts as data).
fn next_data(file: &File, pos: u64) -> io::Result<Option<u64>> {
    seek_kind(file, pos, libc::SEEK_DATA)
}

/// The first hole at or after `pos` (the end of the file counts as one). Where the
/// file system cannot say, the end of the file.
fn next_hole(file: &File, pos: u64) -> io::Result<u64> {
    match seek_kind(file, pos, libc::SEEK_HOLE)? {
        Some(at) => Ok(at),
        None => file.metadata().map(|m| m.len()),
    }
}

fn seek_kind(file: &File, pos: u64, whence: i32) -> io::Result<Option<u64>> {
    use std::os::unix::io::AsRawFd;
    let Ok(at) = libc::off_t::try_from(pos) else {
        return Ok(None);
    };
    // SAFETY: lseek on a descriptor we own; it only moves that file's offset, which
    // nothing here relies on (reads are positional).
    let found = unsafe { libc::lseek(file.as_raw_fd(), at, whence) };
    if found >= 0 {
        return Ok(u64::try_from(found).ok());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // No data (or hole) at or after `pos`.
        Some(libc::ENXIO) => Ok(None),
        // The file system does not know holes: all data, no hole before the end.
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) if whence == libc::SEEK_DATA => Ok(Some(pos)),
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok(None),
        _ => Err(err),
    }
}

/// Whether `range` of the file at `path` is all zero bytes, reading only its data
/// (holes are zeros); `None` when the file is missing or shorter than the range.
pub fn is_zero_range(path: &Path, range: ByteRange) -> io::Result<Option<bool>> {
    use std::os::unix::fs::FileExt;
    let Some(file) = open_existing(&StdFs, path)? else {
        return Ok(None);
    };
    if file.metadata()?.len() < range.end {
        return Ok(None);
    }
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut pos = range.start;
    while pos < range.end {
        let Some(data) = next_data(&file, pos)?.filter(|d| *d < range.end) else {
            break;
        };
        let hole = next_hole(&file, data)?.min(range.end);
        pos = data;
        while pos < hole {
            let want = usize::try_from(hole - pos)
                .unwrap_or(COPY_CHUNK)
                .min(COPY_CHUNK);
            let piece = buf.get_mut(..want).unwrap_or(&mut []);
            let n = match file.read_at(piece, pos) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if piece.get(..n).is_some_and(|p| p.iter().any(|&b| b != 0)) {
                return Ok(Some(false));
            }
            pos += n as u64;
        }
    }
    Ok(Some(true))
}

impl StdFs {
    /// Changes a file that has other names (a hard link: `cp -al`, or the quarantine's
    /// copy of an original a crashed re-lay left) without changing it under those
    /// names: `path` is copied to a temporary name beside it, `change` applied to the
    /// copy, and the copy renamed over `path` and made durable with its folder. The
    /// other names keep the old bytes.
    fn unshare(
        &self,
        path: &Path,
        change: &mut dyn FnMut(&mut File) -> io::Result<()>,
    ) -> io::Result<()> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(".iggy-warden-unshare");
        let tmp = path.with_file_name(tmp_name);
        let len = open_read(path)?.metadata()?.len();
        self.copy_range(path, ByteRange::new(0, len), &tmp)?;
        let Some(mut copy) = open_in_place(&tmp, OFlags::WRONLY | OFlags::APPEND)? else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} gained a second name while it was written",
                    tmp.display()
                ),
            ));
        };
        change(&mut copy)?;
        copy.sync_all()?;
        self.rename(&tmp, path)?;
        match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => self.sync_dir(dir),
            None => self.sync_dir(Path::new(".")),
        }
    }
}

/// The error for a symbolic link in the way.
#[derive(Debug)]
struct SymlinkRefused;

impl std::fmt::Display for SymlinkRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a symbolic link is in the way, and iggy-warden follows none")
    }
}

impl std::error::Error for SymlinkRefused {}

fn refused_link() -> io::Error {
    io::Error::other(SymlinkRefused)
}

/// Whether `e` is the refusal to follow a symbolic link.
pub fn is_symlink_refusal(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<SymlinkRefused>())
}

fn kind_name(st: &rfs::Stat) -> &'static str {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Unknown => "of an unknown kind",
    }
}

fn is_regular(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

fn require_regular(st: &rfs::Stat) -> io::Result<()> {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(()),
        FileType::Symlink => Err(refused_link()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", kind_name(st)),
        )),
    }
}

fn refuse_to_replace(st: &rfs::Stat) -> io::Error {
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        return refused_link();
    }
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} is there, not a regular file: refusing to replace it",
            kind_name(st)
        ),
    )
}

/// Whether `openat2` is worth trying: cleared once it says the kernel lacks it.
static OPENAT2: AtomicBool = AtomicBool::new(true);

fn map_errno(e: Errno) -> io::Error {
    match e {
        Errno::LOOP => refused_link(),
        e => e.into(),
    }
}

/// Opens `path` with `flags`, following no symbolic link in any component.
fn open_nofollow(path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if OPENAT2.load(Ordering::Relaxed) {
        let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rfs::openat2(CWD, path, flags, Mode::empty(), resolve) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOSYS) => OPENAT2.store(false, Ordering::Relaxed),
            // Filtered by a seccomp profile, a flag this kernel lacks, or a rename
            // race: the walk below gives the same answer one step at a time.
            Err(Errno::PERM | Errno::INVAL | Errno::AGAIN) => {}
            // O_DIRECTORY on a link to a folder.
            Err(Errno::NOTDIR) if fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) => {
                return Err(refused_link())
            }
            Err(e) => return Err(map_errno(e)),
        }
    }
    walk_open(path, flags)
}

/// [`open_nofollow`] without `openat2`: one `openat(O_NOFOLLOW)` per component.
fn walk_open(path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let mut absolute = false;
    let mut names: Vec<&OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => absolute = true,
            Component::CurDir => {}
            Component::ParentDir => names.push(OsStr::new("..")),
            Component::Normal(n) => names.push(n),
            Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a path prefix that Unix does not have",
                ))
            }
        }
    }
    let start = if absolute { "/" } else { "." };
    let Some((last, dirs)) = names.split_last() else {
        return Ok(rfs::openat(CWD, start, flags, Mode::empty())?);
    };
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY;
    let mut dir = rfs::openat(CWD, start, dir_flags | OFlags::CLOEXEC, Mode::empty())?;
    for name in dirs {
        let next = openat_nofollow(dir.as_fd(), name, dir_flags)?;
        // O_PATH with O_NOFOLLOW would open a link itself: never walk on from one.
        if FileType::from_raw_mode(rfs::fstat(&next)?.st_mode) != FileType::Directory {
            return Err(refused_link());
        }
        dir = next;
    }
    openat_nofollow(dir.as_fd(), last, flags)
}

fn openat_nofollow(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlags) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOTDIR) if is_link_at(dir, name) => Err(refused_link()),
        Err(e) => Err(map_errno(e)),
    }
}

fn is_link_at(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// What the entry `name` of `dir` itself is; `None` when there is none.
fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The folder holding `path`, opened without following links, and `path`'s name in it.
fn open_parent(path: &Path) -> io::Result<(OwnedFd, &OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = open_nofollow(parent, OFlags::PATH | OFlags::DIRECTORY)?;
    Ok((dir, name))
}

/// Opens a regular file for reading, following no symbolic link.
pub fn open_read(path: &Path) -> io::Result<File> {
    let file = File::from(open_nofollow(path, OFlags::RDONLY | OFlags::NONBLOCK)?);
    require_regular(&rfs::fstat(&file)?)?;
    Ok(file)
}

/// Reads a whole regular file of at most `limit` bytes.
pub fn read_small(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_read(path)?;
    let mut out = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// What `path` itself is, a symbolic link reported as one; `None` when nothing is
/// there. No link is followed on the way.
pub fn metadata(path: &Path) -> io::Result<Option<fs::Metadata>> {
    match open_nofollow(path, OFlags::PATH) {
        Ok(fd) => File::from(fd).metadata().map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a listing says of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file, with its length.
    File(u64),
    Dir,
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

/// One entry of a folder.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: OsString,
    pub kind: EntryKind,
}

/// The entries of folder `dir` (without `.` and `..`), unsorted. Only regular files
/// are stat'ed (for their length); the kind of the others comes with the listing.
pub fn list_dir(dir: &Path) -> io::Result<Vec<DirEntry>> {
    let fd = open_nofollow(dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
    let listing = rfs::Dir::read_from(&fd)?;
    let mut out = Vec::new();
    for entry in listing {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let mut kind = entry.file_type();
        let mut len = 0;
        if matches!(kind, FileType::RegularFile | FileType::Unknown) {
            match lstat_at(fd.as_fd(), name)? {
                Some(st) => {
                    kind = FileType::from_raw_mode(st.st_mode);
                    len = u64::try_from(st.st_size).unwrap_or(0);
                }
                // Removed since the listing.
                None => continue,
            }
        }
        let kind = match kind {
            FileType::RegularFile => EntryKind::File(len),
            FileType::Directory => EntryKind::Dir,
            FileType::Symlink => EntryKind::Symlink,
            _ => EntryKind::Other,
        };
        out.push(DirEntry {
            name: name.to_os_string(),
            kind,
        });
    }
    Ok(out)
}

/// Opens a regular file to change it in place; `None` when it has other names (hard
/// links), which changing it in place would change too.
fn open_in_place(path: &Path, flags: OFlags) -> io::Result<Option<File>> {
    let file = File::from(open_nofollow(path, flags | OFlags::NONBLOCK)?);
    let st = rfs::fstat(&file)?;
    require_regular(&st)?;
    if st.st_nlink > 1 {
        return Ok(None);
    }
    Ok(Some(file))
}

/// Creates `path` with `O_EXCL`, after removing a stale regular file of that name;
/// anything else there (a symbolic link above all) is refused. The new file takes
/// its folder's owner, and its mode without execute bits.
fn create_new(path: &Path) -> io::Result<File> {
    let (dir, name) = open_parent(path)?;
    match lstat_at(dir.as_fd(), name)? {
        None => {}
        Some(st) if is_regular(&st) => rfs::unlinkat(&dir, name, AtFlags::empty())?,
        Some(st) => return Err(refuse_to_replace(&st)),
    }
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
    let fd = rfs::openat(
        &dir,
        name,
        flags | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(map_errno)?;
    let file = File::from(fd);
    let folder = rfs::fstat(&dir)?;
    adopt_owner(
        &file,
        path,
        folder.st_uid,
        folder.st_gid,
        folder.st_mode & 0o666,
    )?;
    Ok(file)
}

/// Creates `path` and the folders missing above it; each new folder takes the owner
/// and mode of the folder it is made in.
fn create_dir_all(path: &Path) -> io::Result<()> {
    match open_nofollow(path, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    let (dir, name) = open_parent(path)?;
    match rfs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => {}
        // Made by someone else meanwhile: fine if it is a real folder.
        Err(Errno::EXIST) => {
            return open_nofollow(path, OFlags::PATH | OFlags::DIRECTORY).map(|_| ())
        }
        Err(e) => return Err(e.into()),
    }
    let parent = rfs::fstat(&dir)?;
    let made = File::from(openat_nofollow(
        dir.as_fd(),
        name,
        OFlags::RDONLY | OFlags::DIRECTORY,
    )?);
    adopt_owner(
        &made,
        path,
        parent.st_uid,
        parent.st_gid,
        parent.st_mode & 0o7777,
    )
}

/// Gives `file` this owner and mode. Changing the owner needs root: without it, a
/// file stays the caller's (with a warning), which is all an unprivileged caller
/// can write anyway.
fn adopt_owner(file: &File, path: &Path, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    let st = rfs::fstat(file)?;
    if (st.st_uid, st.st_gid) != (uid, gid) {
        let owner = (st.st_uid != uid).then(|| rfs::Uid::from_raw(uid));
        let group = (st.st_gid != gid).then(|| rfs::Gid::from_raw(gid));
        match rfs::fchown(file, owner, group) {
            Ok(()) => {}
            Err(Errno::PERM) => tracing::warn!(
                path = %path.display(),
                uid,
                gid,
                "cannot give the new file its folder's or predecessor's owner (not root)"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    if st.st_mode & 0o7777 != mode {
        rfs::fchmod(file, Mode::from_raw_mode(mode))?;
    }
    Ok(())
}

/// Reads `input` to its end in large chunks, handing each to `sink`; returns the
/// bytes read and their XXH3-64.
fn hash_all(
    mut input: impl Read,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<(u64, u64)> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or(&[]);
        hasher.update(chunk);
        sink(chunk)?;
        len += n as u64;
    }
    Ok((len, hasher.digest()))
}

fn open_existing(fs: &dyn FileOps, path: &Path) -> io::Result<Option<File>> {
    match fs.open_read(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Length and XXH3-64 of a whole file, `None` when it does not exist.
pub fn file_digest(fs: &dyn FileOps, path: &Path) -> io::Result<Option<(u64, u64)>> {
    let Some(file) = open_existing(fs, path)? else {
        return Ok(None);
    };
    hash_all(file, |_| Ok(())).map(Some)
}

/// XXH3-64 of `range` of a file; `None` when the file is missing or shorter.
pub fn range_digest(fs: &dyn FileOps, path: &Path, range: ByteRange) -> io::Result<Option<u64>> {
    let Some(mut file) = open_existing(fs, path)? else {
        return Ok(None);
    };
    file.seek(SeekFrom::Start(range.start))?;
    let (len, digest) = hash_all(file.take(range.len()), |_| Ok(()))?;
    Ok((len == range.len()).then_some(digest))
}

/// Length of a regular file, `None` when nothing is there; anything else (a symbolic
/// link, a folder) is an error.
pub fn file_len(fs: &dyn FileOps, path: &Path) -> io::Result<Option<u64>> {
    match fs.metadata(path)? {
        None => Ok(None),
        Some(m) if m.is_file() => Ok(Some(m.len())),
        Some(m) if m.is_symlink() => Err(refused_link()),
        Some(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

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

    /// Every opener, with `openat2` and with the walk.
    fn both_ways(check: impl Fn()) {
        check();
        OPENAT2.store(false, Ordering::Relaxed);
        check();
        OPENAT2.store(true, Ordering::Relaxed);
    }

    #[test]
    fn no_opener_follows_a_link_in_any_component() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("real")).unwrap();
        fs::write(root.join("real/f"), b"secret").unwrap();
        symlink(root.join("real"), root.join("dir-link")).unwrap();
        symlink(root.join("real/f"), root.join("file-link")).unwrap();
        both_ways(|| {
            assert_eq!(read_small(&root.join("real/f"), 100).unwrap(), b"secret");
            for path in [root.join("dir-link/f"), root.join("file-link")] {
                let e = open_read(&path).unwrap_err();
                assert!(is_symlink_refusal(&e), "{}: {e}", path.display());
            }
            let e = list_dir(&root.join("dir-link")).unwrap_err();
            assert!(is_symlink_refusal(&e), "{e}");
            assert!(metadata(&root.join("file-link"))
                .unwrap()
                .unwrap()
                .is_symlink());
            assert!(metadata(&root.join("dir-link/f")).is_err());
            assert!(metadata(&root.join("missing")).unwrap().is_none());
        });
    }

    #[test]
    fn writes_refuse_links_and_leave_their_targets_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let outside = root.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("target"), b"keep me").unwrap();
        fs::create_dir(root.join("d")).unwrap();
        symlink(outside.join("target"), root.join("d/link")).unwrap();
        symlink(&outside, root.join("d/dir-link")).unwrap();
        fs::write(root.join("d/src"), b"0123456789").unwrap();
        both_ways(|| {
            let link = root.join("d/link");
            let fs = StdFs;
            let refused = |r: io::Result<()>| {
                let e = r.unwrap_err();
                assert!(is_symlink_refusal(&e), "{e}");
            };
            refused(fs.write_file(&link, &mut |w| w.write_all(b"x")));
            refused(fs.truncate(&link, 0));
            refused(fs.append_file(&root.join("d/src"), &link));
            refused(fs.remove_file(&link));
            refused(
                fs.copy_range(&root.join("d/src"), ByteRange::new(0, 4), &link)
                    .map(|_| ()),
            );
            refused(fs.write_file(&root.join("d/dir-link/new"), &mut |_| Ok(())));
            refused(fs.create_dir_all(&root.join("d/dir-link/sub")));
            refused(fs.rename(&root.join("d/src"), &link));
            refused(fs.rename(&link, &root.join("d/other")));
            refused(fs.hard_link(&link, &root.join("d/other")));
            refused(fs.remove_dir(&root.join("d/dir-link")));
            assert_eq!(fs::read(outside.join("target")).unwrap(), b"keep me");
            assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
            assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        });
    }

    #[test]
    fn a_stale_regular_temp_is_replaced_and_a_hard_linked_file_is_changed_under_its_own_name_only()
    {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("tmp"), b"stale").unwrap();
        StdFs
            .write_file(&root.join("tmp"), &mut |w| w.write_all(b"new"))
            .unwrap();
        assert_eq!(fs::read(root.join("tmp")).unwrap(), b"new");
        fs::hard_link(root.join("tmp"), root.join("other-name")).unwrap();
        StdFs.truncate(&root.join("tmp"), 1).unwrap();
        assert_eq!(fs::read(root.join("tmp")).unwrap(), b"n");
        assert_eq!(fs::read(root.join("other-name")).unwrap(), b"new");
        fs::hard_link(root.join("tmp"), root.join("third-name")).unwrap();
        fs::write(root.join("more"), b"ew").unwrap();
        StdFs
            .append_file(&root.join("more"), &root.join("tmp"))
            .unwrap();
        assert_eq!(fs::read(root.join("tmp")).unwrap(), b"new");
        assert_eq!(fs::read(root.join("third-name")).unwrap(), b"n");
        // Only the changed name and its old siblings: no temporary copy left.
        let mut names: Vec<_> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["more", "other-name", "third-name", "tmp"]);
    }

    #[test]
    fn new_files_and_folders_take_their_folders_mode_and_replacements_their_predecessors() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::set_permissions(root, fs::Permissions::from_mode(0o750)).unwrap();
        StdFs.create_dir_all(&root.join("a/b")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&root.join("a")), 0o750);
        assert_eq!(mode(&root.join("a/b")), 0o750);
        StdFs
            .write_file(&root.join("a/new"), &mut |w| w.write_all(b"x"))
            .unwrap();
        assert_eq!(mode(&root.join("a/new")), 0o640);
        fs::write(root.join("a/old"), b"old").unwrap();
        fs::set_permissions(root.join("a/old"), fs::Permissions::from_mode(0o604)).unwrap();
        StdFs
            .rename(&root.join("a/new"), &root.join("a/old"))
            .unwrap();
        assert_eq!(mode(&root.join("a/old")), 0o604);
        assert_eq!(fs::read(root.join("a/old")).unwrap(), b"x");
    }

    #[test]
    fn zero_ranges_are_found_through_holes_and_data() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let file = File::create(&path).unwrap();
        file.set_len(8 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[0u8; 4096], 1 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, b"x", 5 << 20).unwrap();
        let zero = |a, b| is_zero_range(&path, ByteRange::new(a, b)).unwrap();
        assert_eq!(zero(0, 5 << 20), Some(true), "holes and written zeros");
        assert_eq!(zero(0, 8 << 20), Some(false));
        assert_eq!(zero((5 << 20) + 1, 8 << 20), Some(true));
        assert_eq!(zero(0, 9 << 20), None, "past the end");
        assert_eq!(
            is_zero_range(&tmp.path().join("none"), ByteRange::new(0, 1)).unwrap(),
            None
        );

        // A copy keeps the bytes, and the holes.
        let copy = tmp.path().join("copy");
        let digest = StdFs
            .copy_range(&path, ByteRange::new(1000, 8 << 20), &copy)
            .unwrap();
        assert_eq!(
            file_digest(&StdFs, &copy).unwrap(),
            Some(((8 << 20) - 1000, digest))
        );
        assert_eq!(
            range_digest(&StdFs, &path, ByteRange::new(1000, 8 << 20)).unwrap(),
            Some(digest)
        );
        use std::os::unix::fs::MetadataExt;
        assert!(fs::metadata(&copy).unwrap().blocks() * 512 < 1 << 20);
        assert!(StdFs
            .copy_range(&path, ByteRange::new(0, 9 << 20), &copy)
            .is_err());
    }
}
