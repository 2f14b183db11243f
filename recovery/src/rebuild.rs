//! Builds the `.index` of a log prefix exactly as iggy-server 0.6.0 writes it.
//!
//! The planner runs it into a sink to learn the new index's length and XXH3 (so the
//! journal intent names the exact result); the executor runs it into a temporary file.

use crate::index::IndexBuilder;
use crate::scan::{scan_log, ScanStart, Scanned, StopReason};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Length and XXH3-64 of an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexDigest {
    pub len: u64,
    pub xxh3: u64,
}

/// Writes into `out` the index of the first `log_len` bytes of `src`, the log `log`
/// opened for reading, which must be whole valid messages of a segment starting at
/// `segment_start`.
pub fn rebuild_index(
    src: File,
    log: &Path,
    segment_start: u64,
    log_len: u64,
    out: &mut dyn Write,
) -> io::Result<IndexDigest> {
    let src = src.take(log_len);
    let mut builder = IndexBuilder::new(out, segment_start);
    let Scanned::Ended(scan) = scan_log(src, ScanStart::segment(segment_start), &mut builder)?
    else {
        // The builder accepts every message it can index; one it cannot is an error.
        return Err(io::Error::other(format!(
            "{}: the scan stopped before the end of the log",
            log.display()
        )));
    };
    if scan.stop != StopReason::EndOfFile || scan.valid_len != log_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: expected {log_len} bytes of whole valid messages, found {} ({})",
                log.display(),
                scan.valid_len,
                scan.stop.describe()
            ),
        ));
    }
    let (_, len, xxh3) = builder.finish()?;
    Ok(IndexDigest { len, xxh3 })
}

/// The digest of the index `rebuild_index` would write, without writing it.
pub fn index_digest(log: &Path, segment_start: u64, log_len: u64) -> io::Result<IndexDigest> {
    let src = crate::fsops::open_read(log)?;
    rebuild_index(src, log, segment_start, log_len, &mut io::sink())
}

/// Temporary name for a rebuilt index or a re-laid segment file (see
/// [`crate::work_names`]).
pub fn temp_index_path(index: &Path) -> PathBuf {
    crate::work_names::work_path(index, crate::work_names::TEMPORARY)
}
