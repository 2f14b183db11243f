//! An independent resynchronising scanner: every valid message anywhere in a
//! partition's `.log`s, wherever it lies and whatever precedes it.
//!
//! Why: the 0.6.0 rotation race (fixture `race-rotation`) leaves batches in the wrong
//! segment file and out of order, zero-filled holes with valid messages after them, and
//! indexes that lie. A reader that stops at the first bad byte (`layout::scan_partition`)
//! cannot say what a salvage should keep; this one is the harness's yardstick for it. It
//! trusts nothing but message bytes and checksums: no index, no file name, no offset
//! order. It shares no code with the product's scanners so that the two can be compared.
//!
//! At each byte position a frame counts when its 56-byte header declares
//! `payload_len <= MAX_PAYLOAD_LEN` and `headers_len <= MAX_HEADERS_LEN`, the whole
//! frame fits in the file and its XXH3-64 checksum holds; the scan then jumps past the
//! frame, so a message nested inside another valid message's payload is never found.
//! Otherwise it moves on by one byte, except over zeros: a frame whose 8 checksum bytes
//! are all zero would need XXH3 of the rest to be 0 (probability 2^-64), so from a
//! position whose next 8 bytes are zero the scan resumes 7 bytes before the next
//! non-zero byte (a frame may start inside the last 7 bytes of a zero run). That keeps
//! long zero runs linear.

use crate::format::MESSAGE_HEADER_SIZE;
use crate::layout::{list_partitions, list_segments};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use xxhash_rust::xxh3::xxh3_64;

/// Largest payload a frame may declare to be taken for a message.
pub const MAX_PAYLOAD_LEN: u32 = 64_000_000;
/// Largest user headers length a frame may declare to be taken for a message.
pub const MAX_HEADERS_LEN: u32 = 100_000;

/// A valid message found in a `.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMessage {
    /// File name of the `.log` (`00000000000000001500.log`), not a path.
    pub file: String,
    /// Byte position of its first byte in the `.log`.
    pub start: u64,
    /// Byte position just after its last byte.
    pub end: u64,
    pub offset: u64,
    pub timestamp: u64,
    pub checksum: u64,
}

/// Every valid message of one partition folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMessages {
    /// Relative folder, e.g. `streams/0/topics/0/partitions/0`.
    pub partition: String,
    /// Every message found, in file order: `.log`s by start offset (name), then by byte
    /// position. Copies of one offset (exact or not) each appear.
    pub messages: Vec<FoundMessage>,
}

impl PartitionMessages {
    /// `stream/topic/partition` ids, e.g. `0/0/0`.
    pub fn ids(&self) -> String {
        let parts: Vec<&str> = self.partition.split('/').collect();
        match parts.as_slice() {
            ["streams", s, "topics", t, "partitions", p] => format!("{s}/{t}/{p}"),
            _ => self.partition.clone(),
        }
    }

    /// Distinct `(offset, checksum)` pairs: exact duplicates of a message count once,
    /// two different valid messages with one offset twice.
    pub fn distinct_messages(&self) -> BTreeSet<(u64, u64)> {
        self.messages
            .iter()
            .map(|m| (m.offset, m.checksum))
            .collect()
    }

    /// Every offset with at least one valid message, ascending, each once.
    pub fn distinct_offsets(&self) -> Vec<u64> {
        let offsets: BTreeSet<u64> = self.messages.iter().map(|m| m.offset).collect();
        offsets.into_iter().collect()
    }

    /// Offsets held by two or more valid messages with different checksums, ascending.
    pub fn conflicting_offsets(&self) -> Vec<u64> {
        let mut per_offset: BTreeMap<u64, usize> = BTreeMap::new();
        for (offset, _) in self.distinct_messages() {
            *per_offset.entry(offset).or_default() += 1;
        }
        per_offset
            .into_iter()
            .filter(|&(_, n)| n > 1)
            .map(|(offset, _)| offset)
            .collect()
    }

    /// Maximal runs `(first, last)` of consecutive distinct offsets.
    pub fn runs(&self) -> Vec<(u64, u64)> {
        runs(&self.distinct_offsets())
    }
}

/// Maximal runs `(first, last)` of consecutive values in an ascending list without
/// repeats.
pub fn runs(sorted_offsets: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &offset in sorted_offsets {
        match out.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(offset) => *last = offset,
            _ => out.push((offset, offset)),
        }
    }
    out
}

/// Scans every `<20 digits>.log` of every partition folder
/// (`streams/*/topics/*/partitions/*`) of `data_dir`; partitions in stream, topic,
/// partition order.
pub fn valid_messages(data_dir: &Path) -> Result<Vec<PartitionMessages>, String> {
    let partitions =
        list_partitions(data_dir).map_err(|e| format!("list {}: {e}", data_dir.display()))?;
    partitions
        .iter()
        .map(|rel| partition_valid_messages(data_dir, rel))
        .collect()
}

/// Scans every `<20 digits>.log` of one partition folder (`partition_rel_dir` relative
/// to `data_dir`).
pub fn partition_valid_messages(
    data_dir: &Path,
    partition_rel_dir: &str,
) -> Result<PartitionMessages, String> {
    Ok(PartitionMessages {
        partition: partition_rel_dir.to_string(),
        messages: scan_partition_dir(&data_dir.join(partition_rel_dir))?,
    })
}

/// Every valid message of the `<20 digits>.log`s of the partition folder `dir`, in
/// file order.
pub fn scan_partition_dir(dir: &Path) -> Result<Vec<FoundMessage>, String> {
    let segments = list_segments(dir).map_err(|e| format!("list {}: {e}", dir.display()))?;
    let mut messages = Vec::new();
    for log in segments.iter().filter_map(|s| s.log.as_ref()) {
        let bytes = fs::read(log).map_err(|e| format!("read {}: {e}", log.display()))?;
        let file = log
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        messages.extend(scan_frames(&bytes).into_iter().map(|f| FoundMessage {
            file: file.clone(),
            start: f.start as u64,
            end: f.end as u64,
            offset: f.offset,
            timestamp: f.timestamp,
            checksum: f.checksum,
        }));
    }
    Ok(messages)
}

/// A valid frame inside a byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub start: usize,
    pub end: usize,
    pub offset: u64,
    pub timestamp: u64,
    pub checksum: u64,
}

/// Every valid frame of `bytes`, resynchronising past bad bytes (see the module notes).
pub fn scan_frames(bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos + MESSAGE_HEADER_SIZE <= bytes.len() {
        if bytes[pos..pos + 8].iter().all(|&b| b == 0) {
            // Bytes pos..pos+8 are zero, so the next non-zero byte is at pos+8 or later
            // and resuming 7 bytes before it always moves forward.
            let non_zero = bytes[pos + 8..]
                .iter()
                .position(|&b| b != 0)
                .map_or(bytes.len(), |i| pos + 8 + i);
            pos = non_zero - 7;
            continue;
        }
        match frame_at(bytes, pos) {
            Some(frame) => {
                pos = frame.end;
                frames.push(frame);
            }
            None => pos += 1,
        }
    }
    frames
}

/// The valid frame starting at `pos`, if there is one.
fn frame_at(bytes: &[u8], pos: usize) -> Option<Frame> {
    let header = bytes.get(pos..pos + MESSAGE_HEADER_SIZE)?;
    let headers_len = le_u32(&header[48..52]);
    let payload_len = le_u32(&header[52..56]);
    if payload_len > MAX_PAYLOAD_LEN || headers_len > MAX_HEADERS_LEN {
        return None;
    }
    let end = pos + MESSAGE_HEADER_SIZE + payload_len as usize + headers_len as usize;
    let frame = bytes.get(pos..end)?;
    let checksum = le_u64(&frame[0..8]);
    if xxh3_64(&frame[8..]) != checksum {
        return None;
    }
    Some(Frame {
        start: pos,
        end,
        offset: le_u64(&frame[24..32]),
        timestamp: le_u64(&frame[32..40]),
        checksum,
    })
}

fn le_u32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u32::from(b))
}

fn le_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests;
