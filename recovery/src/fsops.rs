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
    /// Cuts `path` to `len` bytes and fsyncs it.
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
        let mut input = File::open(src)?;
        input.seek(SeekFrom::Start(range.start))?;
        let mut out = File::create(dst)?;
        let (copied, digest) = hash_all(input.take(range.len()), |chunk| out.write_all(chunk))?;
        if copied != range.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ends at byte {}, before the end of range {}",
                    src.display(),
                    range.start + copied,
                    range
                ),
            ));
        }
        out.sync_all()?;
        Ok(digest)
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
