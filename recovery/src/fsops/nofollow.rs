//! Opening, listing and creating without following a symbolic link: `openat2` with
//! `RESOLVE_NO_SYMLINKS`, else a walk with `O_NOFOLLOW`, and the owner and mode rules
//! for what is created.

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

/// The error for a symbolic link in the way.
#[derive(Debug)]
pub(super) struct SymlinkRefused;

impl std::fmt::Display for SymlinkRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a symbolic link is in the way, and iggy-warden follows none")
    }
}

impl std::error::Error for SymlinkRefused {}

pub(super) fn refused_link() -> io::Error {
    io::Error::other(SymlinkRefused)
}

/// Whether `e` is the refusal to follow a symbolic link.
pub fn is_symlink_refusal(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<SymlinkRefused>())
}

pub(super) fn kind_name(st: &rfs::Stat) -> &'static str {
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

pub(super) fn is_regular(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

pub(super) fn require_regular(st: &rfs::Stat) -> io::Result<()> {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(()),
        FileType::Symlink => Err(refused_link()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}, not a regular file", kind_name(st)),
        )),
    }
}

pub(super) fn refuse_to_replace(st: &rfs::Stat) -> io::Error {
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
pub(super) static OPENAT2: AtomicBool = AtomicBool::new(true);

pub(super) fn map_errno(e: Errno) -> io::Error {
    match e {
        Errno::LOOP => refused_link(),
        e => e.into(),
    }
}

/// Opens `path` with `flags`, following no symbolic link in any component.
pub(super) fn open_nofollow(path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
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
pub(super) fn walk_open(path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
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

pub(super) fn openat_nofollow(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: OFlags,
) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOTDIR) if is_link_at(dir, name) => Err(refused_link()),
        Err(e) => Err(map_errno(e)),
    }
}

pub(super) fn is_link_at(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// What the entry `name` of `dir` itself is; `None` when there is none.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The folder holding `path`, opened without following links, and `path`'s name in it.
pub(super) fn open_parent(path: &Path) -> io::Result<(OwnedFd, &OsStr)> {
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

/// Opens a regular file for reading, following no symbolic link, and leaving the
/// file's access time as it is where the kernel allows.
///
/// Under `relatime`, the default mount option, the first read of a file modified
/// since its access time was last set updates that time, which dirties the inode:
/// a read-only `check` wrote to every segment's inode it read, and `recover`'s first
/// sync round wrote back the inodes of every segment the server had written since
/// (20,000 files read after being written made a `sync` on ext4 here take 26 ms
/// instead of 8). In the sidecar, each look at a segment being written did the same
/// (`touch_atime` was 3% of its CPU on ext4). `O_NOATIME` is allowed to the file's
/// owner (the sidecar and `recover` run as the server's user) and to a process with
/// `CAP_FOWNER`; anyone else gets `EPERM`, and from then on this process opens
/// files without it (the files of one data directory share an owner).
pub fn open_read(path: &Path) -> io::Result<File> {
    open_read_stat(path).map(|(file, _)| file)
}

/// [`open_read`], with the `stat` it checked the file with.
pub(super) fn open_read_stat(path: &Path) -> io::Result<(File, rfs::Stat)> {
    static REFUSED: AtomicBool = AtomicBool::new(false);
    let plain = OFlags::RDONLY | OFlags::NONBLOCK;
    if REFUSED.load(Ordering::Relaxed) {
        return open_regular_stat(path, plain);
    }
    match open_regular_stat(path, plain | OFlags::NOATIME) {
        Err(e) if e.raw_os_error() == Some(Errno::PERM.raw_os_error()) => {
            REFUSED.store(true, Ordering::Relaxed);
            open_regular_stat(path, plain)
        }
        opened => opened,
    }
}

fn open_regular_stat(path: &Path, flags: OFlags) -> io::Result<(File, rfs::Stat)> {
    let file = File::from(open_nofollow(path, flags)?);
    let st = rfs::fstat(&file)?;
    require_regular(&st)?;
    Ok((file, st))
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
    /// What `stat` said of a regular file: its stamp, to compare with one journaled.
    pub stamp: Option<journal::FileStamp>,
}

/// The entries of folder `dir` (without `.` and `..`), unsorted. Only regular files
/// are stat'ed (for their length); the kind of the others comes with the listing.
/// The entries are read straight from the opened folder (`getdents64` into one
/// buffer): `rustix::fs::Dir` would open the folder a second time to read it, three
/// more system calls for each of the several folders of every partition.
pub fn list_dir(dir: &Path) -> io::Result<Vec<DirEntry>> {
    let fd = open_nofollow(dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
    let mut buf = Vec::with_capacity(LIST_BUFFER);
    let mut listing = rfs::RawDir::new(fd.as_fd(), buf.spare_capacity_mut());
    let mut out = Vec::new();
    while let Some(entry) = listing.next() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let mut kind = entry.file_type();
        let mut len = 0;
        let mut stamp = None;
        if matches!(kind, FileType::RegularFile | FileType::Unknown) {
            match lstat_at(fd.as_fd(), name)? {
                Some(st) => {
                    kind = FileType::from_raw_mode(st.st_mode);
                    len = u64::try_from(st.st_size).unwrap_or(0);
                    stamp = Some(stamp_of(&st));
                }
                // Removed since the listing.
                None => continue,
            }
        }
        let kind = entry_kind(kind, len);
        out.push(DirEntry {
            name: name.to_os_string(),
            stamp: stamp.filter(|_| matches!(kind, EntryKind::File(_))),
            kind,
        });
    }
    Ok(out)
}

/// Bytes of a folder listing's buffer: about 200 entries of a partition folder per
/// `getdents64`, and room for the longest name (an entry never exceeds 280 bytes).
const LIST_BUFFER: usize = 8 << 10;

/// An entry's kind, with a regular file's length `len`.
fn entry_kind(kind: FileType, len: u64) -> EntryKind {
    match kind {
        FileType::RegularFile => EntryKind::File(len),
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

/// What [`folder_stamps`] says of one entry: its kind and stamp, `None` when it is
/// not there.
pub type EntryStamp = Option<(EntryKind, journal::FileStamp)>;

/// Folder `dir`'s own stamp and, for each of `names`, what that entry of it is (not
/// followed; `None` when it is not there): what a guided listing compares with a
/// journaled one instead of reading the folder. No link is followed on the way.
pub fn folder_stamps(
    dir: &Path,
    names: &[&str],
) -> io::Result<(journal::FileStamp, Vec<EntryStamp>)> {
    let fd = open_nofollow(dir, OFlags::PATH | OFlags::DIRECTORY)?;
    let own = stamp_of(&rfs::fstat(&fd)?);
    let entries = names
        .iter()
        .map(|name| {
            Ok(lstat_at(fd.as_fd(), OsStr::new(name))?.map(|st| {
                let len = u64::try_from(st.st_size).unwrap_or(0);
                (
                    entry_kind(FileType::from_raw_mode(st.st_mode), len),
                    stamp_of(&st),
                )
            }))
        })
        .collect::<io::Result<_>>()?;
    Ok((own, entries))
}

/// The stamp (`journal::FileStamp`) of a file from its `stat`.
fn stamp_of(st: &rfs::Stat) -> journal::FileStamp {
    journal::FileStamp {
        ino: st.st_ino,
        len: u64::try_from(st.st_size).unwrap_or(0),
        mtime_sec: st.st_mtime,
        mtime_nsec: u32::try_from(st.st_mtime_nsec).unwrap_or(0),
        ctime_sec: st.st_ctime,
        ctime_nsec: u32::try_from(st.st_ctime_nsec).unwrap_or(0),
    }
}

/// Opens a regular file to change it in place; `None` when it has other names (hard
/// links), which changing it in place would change too.
pub(super) fn open_in_place(path: &Path, flags: OFlags) -> io::Result<Option<File>> {
    Ok(open_in_place_stat(path, flags)?.map(|(file, _)| file))
}

/// [`open_in_place`], with the `stat` it checked the file with.
pub(super) fn open_in_place_stat(
    path: &Path,
    flags: OFlags,
) -> io::Result<Option<(File, rfs::Stat)>> {
    let file = File::from(open_nofollow(path, flags | OFlags::NONBLOCK)?);
    let st = rfs::fstat(&file)?;
    require_regular(&st)?;
    if st.st_nlink > 1 {
        return Ok(None);
    }
    Ok(Some((file, st)))
}

/// Creates `path` with `O_EXCL`, after removing a stale regular file of that name;
/// anything else there (a symbolic link above all) is refused. The new file takes
/// its folder's owner, and its mode without execute bits.
pub(super) fn create_new(path: &Path) -> io::Result<File> {
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
pub(super) fn create_dir_all(path: &Path) -> io::Result<()> {
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
pub(super) fn adopt_owner(
    file: &File,
    path: &Path,
    uid: u32,
    gid: u32,
    mode: u32,
) -> io::Result<()> {
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
