//! The file operations a repair performs, behind a trait so tests can stop the
//! executor between any two of them (as tikv/raft-engine injects file faults).
//!
//! Every operation that writes also makes its result durable (fsync of the file) before
//! it returns; directory entries are made durable by an explicit [`FileOps::sync_dir`].

use journal::ByteRange;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use xxhash_rust::xxh3::Xxh3;

pub trait FileOps {
    /// Copies `range` of `src` into a new file `dst` (replacing it), fsyncs `dst`, and
    /// returns the XXH3-64 of the bytes copied. Fails if `src` is shorter than `range`.
    /// Holes of `src` stay holes in `dst`.
    fn copy_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<u64>;
    /// Appends all of `src` to `dst` and fsyncs `dst`.
    fn append_file(&self, src: &Path, dst: &Path) -> io::Result<()>;
    /// Creates `dst` (replacing it) with a copy of `src`, then fsyncs it.
    fn append_into_new(&self, src: &Path, dst: &Path) -> io::Result<()> {
        self.write_file(dst, &mut |w| {
            let mut input = File::open(src)?;
            io::copy(&mut input, w).map(|_| ())
        })
    }
    /// Creates `dst` (replacing it) with what `fill` writes, then fsyncs it.
    fn write_file(
        &self,
        dst: &Path,
        fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()>;
    /// Sets `path`'s length to `len` and fsyncs it: cuts it, or (restoring a zero run)
    /// extends it with zero bytes, as a hole.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// A second name `dst` for the file `src` (same file system only), then fsyncs
    /// the file: its bytes may not have been durable before.
    fn hard_link(&self, src: &Path, dst: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty folder.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Marks a point between steps that are not file operations (journal writes), so
    /// fault injection can stop there too.
    fn step(&self, _what: &str) {}
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

impl FileOps for StdFs {
    fn copy_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<u64> {
        use std::os::unix::fs::FileExt;
        let input = File::open(src)?;
        let out = File::create(dst)?;
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
        let mut input = File::open(src)?;
        let mut out = OpenOptions::new().append(true).open(dst)?;
        io::copy(&mut input, &mut out)?;
        out.sync_all()
    }

    fn write_file(
        &self,
        dst: &Path,
        fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let file = File::create(dst)?;
        let mut out = io::BufWriter::with_capacity(1 << 16, file);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn hard_link(&self, src: &Path, dst: &Path) -> io::Result<()> {
        fs::hard_link(src, dst)?;
        File::open(dst)?.sync_all()
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
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
    let Some(file) = open_existing(path)? else {
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

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Length and XXH3-64 of a whole file, `None` when it does not exist.
pub fn file_digest(path: &Path) -> io::Result<Option<(u64, u64)>> {
    let Some(file) = open_existing(path)? else {
        return Ok(None);
    };
    hash_all(file, |_| Ok(())).map(Some)
}

/// XXH3-64 of `range` of a file; `None` when the file is missing or shorter.
pub fn range_digest(path: &Path, range: ByteRange) -> io::Result<Option<u64>> {
    let Some(mut file) = open_existing(path)? else {
        return Ok(None);
    };
    file.seek(SeekFrom::Start(range.start))?;
    let (len, digest) = hash_all(file.take(range.len()), |_| Ok(()))?;
    Ok((len == range.len()).then_some(digest))
}

/// Length of a file, `None` when it does not exist.
pub fn file_len(path: &Path) -> io::Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            file_digest(&copy).unwrap(),
            Some(((8 << 20) - 1000, digest))
        );
        assert_eq!(
            range_digest(&path, ByteRange::new(1000, 8 << 20)).unwrap(),
            Some(digest)
        );
        use std::os::unix::fs::MetadataExt;
        assert!(fs::metadata(&copy).unwrap().blocks() * 512 < 1 << 20);
        assert!(StdFs
            .copy_range(&path, ByteRange::new(0, 9 << 20), &copy)
            .is_err());
    }
}
