//! [`StdFs`]: the real file system behind [`FileOps`], following no symbolic link.

use super::digest::open_existing;
use super::nofollow::*;
use super::ops::{FileOps, SyncRound};
use journal::ByteRange;
use rustix::fs::{self as rfs, AtFlags, OFlags, RenameFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use xxhash_rust::xxh3::Xxh3;

/// The real file system, following no symbolic link.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

impl FileOps for StdFs {
    fn copy_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<u64> {
        let (digest, out) = Self::copy_unsynced(src, range, dst)?;
        out.sync_all()?;
        Ok(digest)
    }

    fn copy_range_in_round(
        &self,
        src: &Path,
        range: ByteRange,
        dst: &Path,
        round: &SyncRound,
    ) -> io::Result<u64> {
        let (digest, out) = Self::copy_unsynced(src, range, dst)?;
        round.add_file(dst, out.metadata()?.dev());
        Ok(digest)
    }

    fn append_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let input = open_read(src)?;
        let len = input.metadata()?.len();
        if len < range.end {
            return Err(short_source(src, range, len));
        }
        let mut append = |out: &mut File| {
            let mut from = &input;
            from.seek(SeekFrom::Start(range.start))?;
            let n = io::copy(&mut from.take(range.len()), out)?;
            if n != range.len() {
                return Err(short_source(src, range, range.start + n));
            }
            Ok(())
        };
        let Some(mut out) = open_in_place(dst, OFlags::WRONLY | OFlags::APPEND)? else {
            return self.unshare(dst, &mut append);
        };
        append(&mut out)?;
        out.sync_all()
    }

    fn create_sized_in_round(&self, dst: &Path, len: u64, round: &SyncRound) -> io::Result<()> {
        let file = create_new(dst)?;
        file.set_len(len)?;
        round.add_file(dst, file.metadata()?.dev());
        Ok(())
    }

    fn copy_range_at_in_round(
        &self,
        src: &Path,
        range: ByteRange,
        dst: &Path,
        at: u64,
        round: &SyncRound,
    ) -> io::Result<u64> {
        // One of these per repair of a large run: each file's `stat` is the one its
        // open checked it with.
        let (input, src_len) = open_source(src)?;
        // A second name would see the slice change too; the packed file is new.
        let Some((out, out_st)) = open_in_place_stat(dst, OFlags::WRONLY)? else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has other names (hard links)", dst.display()),
            ));
        };
        let sized = u64::try_from(out_st.st_size).unwrap_or(0);
        if at.checked_add(range.len()).is_none_or(|end| end > sized) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a slice of {} bytes at offset {at} does not fit in {} ({sized} bytes)",
                    range.len(),
                    dst.display()
                ),
            ));
        }
        let digest = copy_into(&input, src, src_len, range, &out, at)?;
        round.add_file(dst, out_st.st_dev);
        Ok(digest)
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

    fn cut_in_round(
        &self,
        path: &Path,
        from: u64,
        to: u64,
        round: &SyncRound,
    ) -> io::Result<Option<u64>> {
        let flags = OFlags::WRONLY | OFlags::NONBLOCK;
        let file = match open_nofollow(path, flags) {
            Ok(fd) => File::from(fd),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let st = rfs::fstat(&file)?;
        require_regular(&st)?;
        let len = u64::try_from(st.st_size).unwrap_or(0);
        if len != from {
            return Ok(Some(len));
        }
        if st.st_nlink > 1 {
            // A file with other names is replaced by a copy, made durable at once.
            drop(file);
            self.unshare(path, &mut |copy| copy.set_len(to))?;
        } else {
            file.set_len(to)?;
            round.add_file(path, st.st_dev);
        }
        Ok(Some(from))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let m = Move::prepare(from, to)?;
        rfs::renameat(&m.from_dir, m.from_name, &m.to_dir, m.to_name)?;
        Ok(())
    }

    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
        let m = Move::prepare(a, b)?;
        if !m.replaces {
            return Err(io::ErrorKind::NotFound.into());
        }
        match rfs::renameat_with(
            &m.from_dir,
            m.from_name,
            &m.to_dir,
            m.to_name,
            RenameFlags::EXCHANGE,
        ) {
            Ok(()) => Ok(()),
            // What a file system without the flag answers (Linux < 3.15 answers ENOSYS).
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the file system of {} cannot swap two names", b.display()),
            )),
            Err(e) => Err(e.into()),
        }
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

/// Feeds `n` zero bytes to `hasher`.
pub(super) fn hash_zeros(hasher: &mut Xxh3, mut n: u64) {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    while n > 0 {
        let step = usize::try_from(n).unwrap_or(ZEROS.len()).min(ZEROS.len());
        hasher.update(ZEROS.get(..step).unwrap_or(&[]));
        n -= step as u64;
    }
}

/// The first byte at or after `pos` that is data, not a hole; `None` when only holes
/// follow. Where the file system cannot say, `pos` (everything counts as data).
pub(super) fn next_data(file: &File, pos: u64) -> io::Result<Option<u64>> {
    seek_kind(file, pos, libc::SEEK_DATA)
}

/// The first hole at or after `pos` (the end of the file counts as one). Where the
/// file system cannot say, the end of the file.
pub(super) fn next_hole(file: &File, pos: u64) -> io::Result<u64> {
    match seek_kind(file, pos, libc::SEEK_HOLE)? {
        Some(at) => Ok(at),
        None => file.metadata().map(|m| m.len()),
    }
}

pub(super) fn seek_kind(file: &File, pos: u64, whence: i32) -> io::Result<Option<u64>> {
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
    let mut buf = vec![0u8; super::digest::buffer_len(range.len())];
    let mut pos = range.start;
    while pos < range.end {
        let Some(data) = next_data(&file, pos)?.filter(|d| *d < range.end) else {
            break;
        };
        let hole = next_hole(&file, data)?.min(range.end);
        pos = data;
        while pos < hole {
            let want = usize::try_from(hole - pos)
                .unwrap_or(buf.len())
                .min(buf.len());
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

/// `src` ends at byte `at`, before the end of `range`.
fn short_source(src: &Path, range: ByteRange, at: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "{} ends at byte {at}, before the end of range {range}",
            src.display(),
        ),
    )
}

/// The source of a copy, opened as [`open_read`] opens it, and its length then (the
/// `stat` the open checked it with: no second one).
fn open_source(src: &Path) -> io::Result<(File, u64)> {
    let (input, st) = open_read_stat(src)?;
    Ok((input, u64::try_from(st.st_size).unwrap_or(0)))
}

/// Copies `range` of `input` (the file `src`, named in errors, `len` bytes long when
/// opened) into `out` at offset `at`, and returns the XXH3-64 of the range. Holes
/// are hashed as the zeros they read as and stay holes in `out` (a new file, or a
/// slice of one sized as a hole); a range of at most [`SMALL_COPY`] bytes is read
/// and written whole instead.
fn copy_into(
    input: &File,
    src: &Path,
    len: u64,
    range: ByteRange,
    out: &File,
    at: u64,
) -> io::Result<u64> {
    if len < range.end {
        return Err(short_source(src, range, len));
    }
    let mut copy = RangeCopy {
        input,
        src,
        range,
        out,
        at,
        hasher: Xxh3::new(),
        buf: vec![0u8; super::digest::buffer_len(range.len())],
    };
    if range.len() <= SMALL_COPY {
        // A torn tail or a few index entries: looking for holes would cost two
        // system calls more than the copy, to keep at most a few blocks sparse.
        copy.data(range.start, range.end)?;
        return Ok(copy.hasher.digest());
    }
    let mut pos = range.start;
    while pos < range.end {
        let data = next_data(input, pos)?.unwrap_or(range.end).min(range.end);
        if data > pos {
            hash_zeros(&mut copy.hasher, data - pos);
            pos = data;
            continue;
        }
        let hole = next_hole(input, pos)?.min(range.end);
        copy.data(pos, hole)?;
        pos = hole;
    }
    Ok(copy.hasher.digest())
}

/// Ranges of at most this many bytes are copied without looking for holes.
const SMALL_COPY: u64 = 64 << 10;

/// A copy of `range` of `input` (the file `src`) to `out` at `at` under way, and the
/// hash of what it copied so far.
struct RangeCopy<'a> {
    input: &'a File,
    src: &'a Path,
    range: ByteRange,
    out: &'a File,
    at: u64,
    hasher: Xxh3,
    buf: Vec<u8>,
}

impl RangeCopy<'_> {
    /// Copies and hashes bytes `pos..end` of the range.
    fn data(&mut self, mut pos: u64, end: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        while pos < end {
            let want = usize::try_from(end - pos)
                .unwrap_or(self.buf.len())
                .min(self.buf.len());
            let piece = self.buf.get_mut(..want).unwrap_or(&mut []);
            let n = match self.input.read_at(piece, pos) {
                Ok(0) => return Err(short_source(self.src, self.range, pos)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = piece.get(..n).unwrap_or(&[]);
            self.hasher.update(chunk);
            let offset = self.at + (pos - self.range.start);
            self.out.write_all_at(chunk, offset)?;
            pos += n as u64;
        }
        Ok(())
    }
}

/// A rename of the regular file `from` to `to`, ready to run: both folders opened
/// without following a link, and `from` given the owner and mode of the regular file
/// at `to` it will replace (`replaces`); anything else at `to` is refused.
struct Move<'a> {
    from_dir: OwnedFd,
    from_name: &'a OsStr,
    to_dir: OwnedFd,
    to_name: &'a OsStr,
    replaces: bool,
}

impl<'a> Move<'a> {
    fn prepare(from: &'a Path, to: &'a Path) -> io::Result<Self> {
        let (from_dir, from_name) = open_parent(from)?;
        let (to_dir, to_name) = open_parent(to)?;
        let moving = File::from(openat_nofollow(
            from_dir.as_fd(),
            from_name,
            OFlags::RDONLY | OFlags::NONBLOCK,
        )?);
        require_regular(&rfs::fstat(&moving)?)?;
        let replaces = match lstat_at(to_dir.as_fd(), to_name)? {
            None => false,
            Some(st) if is_regular(&st) => {
                adopt_owner(&moving, from, st.st_uid, st.st_gid, st.st_mode & 0o7777)?;
                true
            }
            Some(st) => return Err(refuse_to_replace(&st)),
        };
        Ok(Self {
            from_dir,
            from_name,
            to_dir,
            to_name,
            replaces,
        })
    }
}

impl StdFs {
    /// Copies `range` of `src` into a new file `dst`, not yet fsynced.
    fn copy_unsynced(src: &Path, range: ByteRange, dst: &Path) -> io::Result<(u64, File)> {
        let (input, src_len) = open_source(src)?;
        let out = create_new(dst)?;
        let digest = copy_into(&input, src, src_len, range, &out, 0)?;
        out.set_len(range.len())?;
        Ok((digest, out))
    }

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
