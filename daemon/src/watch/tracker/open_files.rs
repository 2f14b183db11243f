//! A segment's `.log` and `.index`, kept open from one verification to the next.
//!
//! The sidecar verifies written segments every verify interval (100 ms by default):
//! opening both files by path each time cost a path walk, an open and a close per
//! file, and an `IN_OPEN` event that inotify queues for the sidecar's own watch,
//! about a fifth of its CPU at that rate. Kept open, a look costs two `fstat`s.
//!
//! A handle must still name the file the server writes: a segment deleted or
//! replaced under its name (a file renamed over it) leaves the handle on an inode
//! with no name (`st_nlink == 0`), which is reopened by path. A replaced file that
//! keeps another name (a hard link into quarantine, made by `recover` while it holds
//! the journal) is not caught here: the core drops every handle when it lends the
//! journal, and a partition's handles whenever its folder changes.

use journal::{PartitionId, SegmentKey};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The open files of one segment; the index is `None` until the server creates it.
#[derive(Debug)]
pub struct OpenFiles {
    pub(super) log: File,
    pub(super) index: Option<File>,
}

/// What a look at the files found: their lengths, and the files to read.
pub(super) struct Looked<'a> {
    pub(super) files: &'a OpenFiles,
    pub(super) log_len: u64,
    pub(super) index_len: Option<u64>,
}

impl OpenFiles {
    /// The files in `slot` (opened now if it holds none, or reopened if the held ones
    /// lost their names), with their lengths; `None` when the log does not exist.
    pub(super) fn look<'a>(
        slot: &'a mut Option<OpenFiles>,
        log_path: &Path,
        index_path: &Path,
    ) -> io::Result<Option<Looked<'a>>> {
        let mut log_len = None;
        if let Some(files) = slot.as_ref() {
            let meta = files.log.metadata()?;
            if meta.nlink() == 0 {
                *slot = None;
            } else {
                log_len = Some(meta.len());
            }
        }
        let (log_len, files) = match (log_len, slot) {
            (Some(len), Some(files)) => (len, files),
            (_, slot) => {
                let Some(log) = open_optional(log_path)? else {
                    *slot = None;
                    return Ok(None);
                };
                let len = log.metadata()?.len();
                let files = slot.insert(OpenFiles { log, index: None });
                (len, files)
            }
        };
        let index_len = match &files.index {
            Some(index) => {
                let meta = index.metadata()?;
                (meta.nlink() > 0).then_some(meta.len())
            }
            None => None,
        };
        let index_len = match index_len {
            Some(len) => Some(len),
            None => {
                files.index = open_optional(index_path)?;
                match &files.index {
                    Some(index) => Some(index.metadata()?.len()),
                    None => None,
                }
            }
        };
        Ok(Some(Looked {
            files,
            log_len,
            index_len,
        }))
    }

    /// The log's length now, through the handle (the same file as `look` found).
    pub(super) fn log_len_now(&self) -> Option<u64> {
        self.log.metadata().ok().map(|m| m.len())
    }
}

/// Segments whose files stay open between verifications. Bounded, so that a data
/// directory of thousands of written partitions stays within the descriptor limit
/// (1,024 by default under systemd): past the bound, a segment's files are opened
/// for each look, as they all were before.
#[derive(Debug, Default)]
pub struct OpenFileCache {
    held: HashMap<SegmentKey, OpenFiles>,
}

/// Segments held open at most: two descriptors each.
const HELD_SEGMENTS: usize = 256;

impl OpenFileCache {
    /// The held files of `key`, taken out (`None` if there are none): put them back
    /// with [`OpenFileCache::put`] after use.
    pub fn take(&mut self, key: SegmentKey) -> Option<OpenFiles> {
        self.held.remove(&key)
    }

    /// Keeps `files` for `key`'s next look, if there is room.
    pub fn put(&mut self, key: SegmentKey, files: Option<OpenFiles>) {
        if let Some(files) = files {
            if self.held.len() < HELD_SEGMENTS {
                self.held.insert(key, files);
            }
        }
    }

    /// Closes the files of `pid`'s segments: its folder changed (a segment created,
    /// deleted or renamed), so the next look opens them by name again.
    pub fn forget_partition(&mut self, pid: PartitionId) {
        self.held.retain(|k, _| k.partition != pid);
    }

    /// Closes every held file: before the journal is lent to `recover` (which
    /// refuses to touch files another process holds open) and at a reconciliation.
    pub fn clear(&mut self) {
        self.held = HashMap::new();
    }
}

pub(super) fn open_optional(path: &Path) -> io::Result<Option<File>> {
    match recovery::fsops::open_read(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
