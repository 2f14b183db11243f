//! Lengths and XXH3-64 digests of files and ranges, read through [`FileOps`] so that
//! tests can fail the reads too.

use super::nofollow::refused_link;
use super::ops::FileOps;
use journal::ByteRange;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use xxhash_rust::xxh3::Xxh3;

/// Reads `input` to its end in large chunks, handing each to `sink`; returns the
/// bytes read and their XXH3-64.
pub(super) fn hash_all(
    mut input: impl Read,
    expected_len: u64,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<(u64, u64)> {
    let mut hasher = Xxh3::new();
    // Sized to the input: most files hashed are small, and zeroing a 1 MiB buffer
    // for each of thousands of them cost more than reading them.
    let mut buf = vec![0u8; buffer_len(expected_len)];
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

pub(super) fn open_existing(fs: &dyn FileOps, path: &Path) -> io::Result<Option<File>> {
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
    let len = file.metadata()?.len();
    hash_all(file, len, |_| Ok(())).map(Some)
}

/// XXH3-64 of `range` of a file; `None` when the file is missing or shorter.
pub fn range_digest(fs: &dyn FileOps, path: &Path, range: ByteRange) -> io::Result<Option<u64>> {
    let Some(mut file) = open_existing(fs, path)? else {
        return Ok(None);
    };
    file.seek(SeekFrom::Start(range.start))?;
    let (len, digest) = hash_all(file.take(range.len()), range.len(), |_| Ok(()))?;
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

/// A read buffer for `len` bytes: at most 1 MiB, at least one page (a file may have
/// grown since its length was read).
pub(super) fn buffer_len(len: u64) -> usize {
    usize::try_from(len)
        .unwrap_or(usize::MAX)
        .clamp(4096, 1 << 20)
}
