//! The partition a fault aims at: its segments as listed on disk, and the segments
//! faults act on (newest non-empty, newest sealed) with their valid messages.

use crate::format::{scan_log, LoggedMessage};
use crate::layout::{segment_file_name, SegmentFiles};
use std::fs;
use std::path::PathBuf;

pub(super) struct Target {
    pub(super) dir: PathBuf,
    pub(super) segments: Vec<SegmentFiles>,
}

/// A segment with a non-empty `.log`, and the valid messages of that `.log`
/// (at least one).
pub(super) struct Loaded<'a> {
    pub(super) files: &'a SegmentFiles,
    pub(super) log: PathBuf,
    pub(super) log_len: u64,
    pub(super) messages: Vec<LoggedMessage>,
}

impl Loaded<'_> {
    pub(super) fn last(&self) -> &LoggedMessage {
        self.messages.last().expect("loaded segments have messages")
    }

    /// Offset after the last valid message: where a successor segment starts.
    pub(super) fn next_offset(&self) -> u64 {
        self.last().message.offset + 1
    }

    pub(super) fn index(&self) -> Result<PathBuf, String> {
        self.files
            .index
            .clone()
            .ok_or_else(|| format!("segment {} has no .index", self.files.start_offset))
    }

    fn load(files: &SegmentFiles) -> Result<Loaded<'_>, String> {
        let log = files.log.clone().expect("non-empty segments have a .log");
        let bytes = fs::read(&log).map_err(|e| format!("read {}: {e}", log.display()))?;
        let messages = scan_log(&bytes).messages;
        if messages.is_empty() {
            return Err(format!("{} holds no valid message", log.display()));
        }
        Ok(Loaded {
            files,
            log,
            log_len: bytes.len() as u64,
            messages,
        })
    }
}

impl Target {
    pub(super) fn new(dir: PathBuf, segments: Vec<SegmentFiles>) -> Self {
        Self { dir, segments }
    }

    fn non_empty(&self) -> Vec<&SegmentFiles> {
        self.segments.iter().filter(|s| s.log_len() > 0).collect()
    }

    /// The newest non-empty segment.
    pub(super) fn newest(&self) -> Result<Loaded<'_>, String> {
        let non_empty = self.non_empty();
        let newest = non_empty
            .last()
            .ok_or_else(|| format!("{} has no non-empty segment", self.dir.display()))?;
        Loaded::load(newest)
    }

    /// The newest sealed segment: the non-empty segment before the newest one.
    pub(super) fn sealed(&self) -> Result<Loaded<'_>, String> {
        let non_empty = self.non_empty();
        if non_empty.len() < 2 {
            let n = non_empty.len();
            return Err(format!(
                "{} has {n} non-empty segment(s); 2 needed",
                self.dir.display()
            ));
        }
        Loaded::load(non_empty[non_empty.len() - 2])
    }

    pub(super) fn segment_path(&self, start_offset: u64, extension: &str) -> PathBuf {
        self.dir.join(segment_file_name(start_offset, extension))
    }

    pub(super) fn segment_at(&self, start_offset: u64) -> Option<&SegmentFiles> {
        self.segments
            .iter()
            .find(|s| s.start_offset == start_offset)
    }

    /// Whether an empty pair (both files, both empty) starts at `start_offset`; an
    /// error when some other segment does.
    pub(super) fn empty_pair_at(&self, start_offset: u64) -> Result<bool, String> {
        match self.segment_at(start_offset) {
            None => Ok(false),
            Some(s)
                if s.log.is_some()
                    && s.index.is_some()
                    && s.log_len() == 0
                    && s.index_len() == 0 =>
            {
                Ok(true)
            }
            Some(_) => Err(format!(
                "segment {start_offset} exists and is not an empty pair"
            )),
        }
    }
}
