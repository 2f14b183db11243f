//! Identity of partitions and segments, shared by the journal and the recovery code.
//!
//! Iggy 0.6 numbers streams, topics and partitions from 0 and names a segment by the
//! offset of its first message, so these four numbers identify a segment for good.

use crate::segment_name::{self, SegmentFile};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One partition: `streams/<stream>/topics/<topic>/partitions/<partition>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionId {
    pub stream: u32,
    pub topic: u32,
    pub partition: u32,
}

impl PartitionId {
    pub fn new(stream: u32, topic: u32, partition: u32) -> Self {
        Self {
            stream,
            topic,
            partition,
        }
    }

    /// Path of the partition folder relative to the data directory.
    pub fn rel_dir(&self) -> String {
        format!(
            "streams/{}/topics/{}/partitions/{}",
            self.stream, self.topic, self.partition
        )
    }

    pub fn segment(&self, start_offset: u64) -> SegmentKey {
        SegmentKey {
            partition: *self,
            start_offset,
        }
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.stream, self.topic, self.partition)
    }
}

/// One segment: the `.log`/`.index` pair named by its start offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SegmentKey {
    pub partition: PartitionId,
    pub start_offset: u64,
}

impl SegmentKey {
    /// File stem Iggy 0.6 uses: the start offset zero-padded to 20 digits.
    pub fn file_stem(&self) -> String {
        segment_name::stem(self.start_offset)
    }

    /// The name of one of the segment's files.
    pub fn file_name(&self, kind: SegmentFile) -> String {
        segment_name::file_name(self.start_offset, kind)
    }

    /// The path of one of the segment's files in its partition folder `dir`.
    pub fn path_in(&self, dir: &std::path::Path, kind: SegmentFile) -> std::path::PathBuf {
        dir.join(self.file_name(kind))
    }

    pub fn rel_log(&self) -> String {
        format!(
            "{}/{}",
            self.partition.rel_dir(),
            self.file_name(SegmentFile::Log)
        )
    }

    pub fn rel_index(&self) -> String {
        format!(
            "{}/{}",
            self.partition.rel_dir(),
            self.file_name(SegmentFile::Index)
        )
    }

    /// Big-endian bytes, so that keys sort by partition, then start offset.
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[0..4].copy_from_slice(&self.partition.stream.to_be_bytes());
        out[4..8].copy_from_slice(&self.partition.topic.to_be_bytes());
        out[8..12].copy_from_slice(&self.partition.partition.to_be_bytes());
        out[12..20].copy_from_slice(&self.start_offset.to_be_bytes());
        out
    }

    /// Inverse of [`SegmentKey::to_bytes`]; `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: &[u8; 20] = bytes.try_into().ok()?;
        let u32_at = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&arr[i..i + 4]);
            u32::from_be_bytes(b)
        };
        let mut off = [0u8; 8];
        off.copy_from_slice(&arr[12..20]);
        Some(Self {
            partition: PartitionId::new(u32_at(0), u32_at(4), u32_at(8)),
            start_offset: u64::from_be_bytes(off),
        })
    }
}

impl fmt::Display for SegmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.partition, self.start_offset)
    }
}

/// Error of parsing a [`SegmentKey`] from text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSegmentKeyError(pub String);

impl fmt::Display for ParseSegmentKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid segment {:?}: expected stream/topic/partition@start_offset, e.g. 1/1/0@0",
            self.0
        )
    }
}

impl std::error::Error for ParseSegmentKeyError {}

/// Parses the [`fmt::Display`] form, `stream/topic/partition@start_offset`.
impl FromStr for SegmentKey {
    type Err = ParseSegmentKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseSegmentKeyError(s.to_string());
        let (partition, offset) = s.split_once('@').ok_or_else(err)?;
        let mut parts = partition.split('/').map(|p| p.trim().parse::<u32>());
        let (Some(Ok(stream)), Some(Ok(topic)), Some(Ok(partition)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        let start_offset = offset.trim().parse().map_err(|_| err())?;
        Ok(PartitionId::new(stream, topic, partition).segment(start_offset))
    }
}

/// A half-open range of bytes `[start, end)` inside one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_key_bytes_round_trip_and_sort() {
        let a = PartitionId::new(1, 2, 3).segment(7);
        let b = PartitionId::new(1, 2, 3).segment(300);
        assert_eq!(SegmentKey::from_bytes(&a.to_bytes()), Some(a));
        assert!(a.to_bytes() < b.to_bytes());
        assert_eq!(SegmentKey::from_bytes(&[0u8; 3]), None);
        assert_eq!(b.to_string().parse::<SegmentKey>(), Ok(b));
        assert!("1/2@3".parse::<SegmentKey>().is_err());
        assert!("1/2/3/4@3".parse::<SegmentKey>().is_err());
        assert!("1/2/3@x".parse::<SegmentKey>().is_err());
        assert_eq!(
            a.rel_log(),
            "streams/1/topics/2/partitions/3/00000000000000000007.log"
        );
    }
}
