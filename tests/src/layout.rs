//! Where things live in an Iggy 0.6 data directory, and reading a partition back.
//!
//! - Partition folders: `streams/<stream>/topics/<topic>/partitions/<partition>`.
//! - Segments: `<start_offset:020>.log` + `<start_offset:020>.index` in a partition
//!   folder. [`list_segments`] finds them by listing the folder, so it sees half pairs
//!   and renamed files exactly as they are on disk.
//! - [`scan_partition`] walks all segments of a partition in offset order and returns
//!   the partition's valid prefix of messages, the way a reader that trusts nothing but
//!   the `.log` bytes would.

use crate::format::scan_log;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Relative path of a partition folder inside a data directory.
pub fn partition_rel_dir(stream: u32, topic: u32, partition: u32) -> String {
    format!("streams/{stream}/topics/{topic}/partitions/{partition}")
}

/// Every partition folder of a data directory, as relative paths, sorted.
pub fn list_partitions(data_dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for stream in numbered_subdirs(&data_dir.join("streams"))? {
        let topics = data_dir.join(format!("streams/{stream}/topics"));
        for topic in numbered_subdirs(&topics)? {
            let partitions = topics.join(format!("{topic}/partitions"));
            for partition in numbered_subdirs(&partitions)? {
                out.push(partition_rel_dir(stream, topic, partition));
            }
        }
    }
    Ok(out)
}

fn numbered_subdirs(dir: &Path) -> io::Result<Vec<u32>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// File name of a segment file: `segment_file_name(1332, "log")` is
/// `00000000000000001332.log`.
pub fn segment_file_name(start_offset: u64, extension: &str) -> String {
    format!("{start_offset:020}.{extension}")
}

/// The files of one segment as found on disk; either may be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFiles {
    pub start_offset: u64,
    pub log: Option<PathBuf>,
    pub index: Option<PathBuf>,
}

impl SegmentFiles {
    /// Length of the `.log` (0 when it is missing).
    pub fn log_len(&self) -> u64 {
        file_len(self.log.as_deref())
    }

    /// Length of the `.index` (0 when it is missing).
    pub fn index_len(&self) -> u64 {
        file_len(self.index.as_deref())
    }
}

fn file_len(path: Option<&Path>) -> u64 {
    path.and_then(|p| fs::metadata(p).ok())
        .map_or(0, |m| m.len())
}

/// The segments of a partition folder, by start offset. Only names made of exactly 20
/// digits plus `.log` or `.index` count; everything else is ignored.
pub fn list_segments(partition_dir: &Path) -> io::Result<Vec<SegmentFiles>> {
    let mut segments: Vec<SegmentFiles> = Vec::new();
    for entry in fs::read_dir(partition_dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let Some((start_offset, is_log)) = entry.file_name().to_str().and_then(parse_segment_name)
        else {
            continue;
        };
        let position = match segments.iter().position(|s| s.start_offset == start_offset) {
            Some(p) => p,
            None => {
                segments.push(SegmentFiles {
                    start_offset,
                    log: None,
                    index: None,
                });
                segments.len() - 1
            }
        };
        let slot = &mut segments[position];
        if is_log {
            slot.log = Some(entry.path());
        } else {
            slot.index = Some(entry.path());
        }
    }
    segments.sort_by_key(|s| s.start_offset);
    Ok(segments)
}

/// `Some((start_offset, is_log))` for a segment file name.
fn parse_segment_name(name: &str) -> Option<(u64, bool)> {
    let (stem, extension) = name.split_once('.')?;
    let is_log = match extension {
        "log" => true,
        "index" => false,
        _ => return None,
    };
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, is_log))
}

/// A message of a partition's valid prefix and where it lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedMessage {
    pub offset: u64,
    pub timestamp: u64,
    /// Start offset of the segment holding it.
    pub segment_start: u64,
    pub log_path: PathBuf,
    /// Byte range in the `.log`.
    pub start: u64,
    pub end: u64,
    pub bytes: Vec<u8>,
}

/// The valid prefix of a partition (see [`scan_partition`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionScan {
    pub segments: Vec<SegmentFiles>,
    pub messages: Vec<ScannedMessage>,
    /// Why the scan stopped before the end of the last segment's `.log`, if it did.
    pub stopped: Option<String>,
}

/// Reads the `.log`s of a partition in segment order and keeps messages while they are
/// whole, pass their checksum and carry the expected offset: the first segment's start
/// offset, then one more each message; every later segment must start at the offset
/// following the previous segment's messages. A segment without a `.log` contributes
/// no messages. Stops for good at the first violation. `.index` files are not read.
pub fn scan_partition(partition_dir: &Path) -> io::Result<PartitionScan> {
    let segments = list_segments(partition_dir)?;
    let mut messages = Vec::new();
    let mut expected: Option<u64> = None;
    let mut stopped = None;
    'segments: for segment in &segments {
        if let Some(e) = expected.filter(|&e| e != segment.start_offset) {
            stopped = Some(format!(
                "segment {} does not start at offset {e}",
                segment.start_offset
            ));
            break;
        }
        let mut next = segment.start_offset;
        if let Some(log_path) = &segment.log {
            let log = fs::read(log_path)?;
            let scan = scan_log(&log);
            for m in scan.messages {
                if m.message.offset != next {
                    stopped = Some(format!(
                        "{} byte {}: offset {} where {next} was expected",
                        log_path.display(),
                        m.start,
                        m.message.offset
                    ));
                    break 'segments;
                }
                messages.push(ScannedMessage {
                    offset: next,
                    timestamp: m.message.timestamp,
                    segment_start: segment.start_offset,
                    log_path: log_path.clone(),
                    start: m.start as u64,
                    end: m.end as u64,
                    bytes: log[m.start..m.end].to_vec(),
                });
                next += 1;
            }
            if let Some((at, error)) = scan.stopped {
                stopped = Some(format!("{} byte {at}: {error:?}", log_path.display()));
                break;
            }
        }
        expected = Some(next);
    }
    Ok(PartitionScan {
        segments,
        messages,
        stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{fixture, CLEAN, KILLED_UNDER_LOAD};

    #[test]
    fn segment_names_are_twenty_digits() {
        assert_eq!(segment_file_name(1332, "log"), "00000000000000001332.log");
        assert_eq!(
            parse_segment_name("00000000000000001332.index"),
            Some((1332, false))
        );
        assert_eq!(
            parse_segment_name("00000000000000001332.log"),
            Some((1332, true))
        );
        assert_eq!(parse_segment_name("0000000000000001332.log"), None);
        assert_eq!(parse_segment_name("00000000000000001332.log.bak"), None);
        assert_eq!(parse_segment_name("0000000000000000133a.log"), None);
    }

    #[test]
    fn lists_fixture_partitions_and_segments() {
        let clean = fixture(CLEAN);
        assert_eq!(
            list_partitions(&clean).unwrap(),
            [
                "streams/0/topics/0/partitions/0",
                "streams/0/topics/0/partitions/1",
                "streams/1/topics/0/partitions/0"
            ]
        );
        let p0 = clean.join("streams/0/topics/0/partitions/0");
        let segments = list_segments(&p0).unwrap();
        let starts: Vec<u64> = segments.iter().map(|s| s.start_offset).collect();
        assert_eq!(starts, [0, 1332, 2886]);
        assert!(segments
            .iter()
            .all(|s| s.log.is_some() && s.index.is_some()));
        assert_eq!(segments[2].log_len(), 0);
        assert_eq!(segments[1].index_len(), 1554 * 16);
    }

    #[test]
    fn scans_fixture_partitions_completely() {
        let clean = fixture(CLEAN);
        let counts: Vec<usize> = list_partitions(&clean)
            .unwrap()
            .iter()
            .map(|p| scan_partition(&clean.join(p)).unwrap())
            .inspect(|scan| assert_eq!(scan.stopped, None))
            .map(|scan| scan.messages.len())
            .collect();
        assert_eq!(counts, [2886, 1200, 300]);

        let killed = fixture(KILLED_UNDER_LOAD);
        let mut total = 0;
        for p in list_partitions(&killed).unwrap() {
            let scan = scan_partition(&killed.join(&p)).unwrap();
            assert_eq!(scan.stopped, None, "{p}");
            total += scan.messages.len();
        }
        assert_eq!(total, 48_650);
    }
}
