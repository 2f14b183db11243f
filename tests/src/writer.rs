//! Writes Iggy 0.6 data directories laid out the way iggy-server 0.6.0 lays them out,
//! with any number of partitions, messages and segments, deterministically from a seed.
//!
//! What gets written under the data directory:
//! - `state/info`: the 27 bytes iggy-server 0.6.0 writes (version "0.6.0", its hash,
//!   no migrations), identical to the fixtures' file;
//! - `state/log`: the entries 0.6.0 would have written for the partitions (root user,
//!   streams, topics with their partition counts; see `state_log::metadata_entries`)
//!   plus the extra users and tokens asked for, unless [`DataDirBuilder::state_log`]
//!   gives other bytes;
//! - per partition, `streams/<s>/topics/<t>/partitions/<p>/` with `<start:020>.log`
//!   and `.index` pairs, plus `offsets/consumers/<id>` and `offsets/groups/<id>` (u64
//!   little-endian) when asked for.
//!
//! Messages get unique ids, partition-wide consecutive offsets from 0, strictly
//! increasing timestamps (microseconds), pseudo-random payload bytes and user headers
//! that are a valid Iggy header map of string values (see [`user_headers`]).
//! A segment is sealed as soon as its `.log` reaches or passes the segment size, right
//! after the message that crossed it; the next segment starts at the next offset.
//! A partition without messages has the empty pair 0, as a new partition does.

use crate::format::{encode_message, index_entry, Message};
use crate::layout::{partition_rel_dir, segment_file_name};
use std::fs;
use std::io;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

/// The server's default segment size: 1 GiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 1 << 30;
/// First message timestamp of every partition (µs since the epoch, mid 2025), plus a
/// little seeded jitter.
const BASE_TIMESTAMP: u64 = 1_750_000_000_000_000;

/// `state/info` as iggy-server 0.6.0 writes it: length-prefixed version string,
/// length-prefixed version hash, then an empty list of migrations.
pub fn state_info_bytes() -> Vec<u8> {
    let mut bytes = Vec::new();
    for field in ["0.6.0", "3476900567878811119"] {
        bytes.push(u8::try_from(field.len()).expect("short field"));
        bytes.extend_from_slice(field.as_bytes());
    }
    bytes.push(0);
    bytes
}

/// Lengths accepted by [`PartitionSpec::messages`]: a fixed `usize`, `a..b` or `a..=b`.
pub trait LenRange {
    /// Inclusive bounds.
    fn bounds(self) -> RangeInclusive<usize>;
}

impl LenRange for usize {
    fn bounds(self) -> RangeInclusive<usize> {
        self..=self
    }
}

impl LenRange for Range<usize> {
    fn bounds(self) -> RangeInclusive<usize> {
        assert!(self.start < self.end, "empty length range {self:?}");
        self.start..=self.end - 1
    }
}

impl LenRange for RangeInclusive<usize> {
    fn bounds(self) -> RangeInclusive<usize> {
        assert!(self.start() <= self.end(), "empty length range {self:?}");
        self
    }
}

/// `count` messages whose payload and user-headers lengths are drawn uniformly from
/// the ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageShape {
    pub count: usize,
    pub payload_len: RangeInclusive<usize>,
    pub headers_len: RangeInclusive<usize>,
}

/// What to write for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    pub stream: u32,
    pub topic: u32,
    pub partition: u32,
    /// Messages in order, as groups of shapes.
    pub messages: Vec<MessageShape>,
    /// Seal a segment once its `.log` holds at least this many bytes.
    pub segment_size: u64,
    /// When the last segment is full (sealed), write the empty successor pair the
    /// server creates right after sealing.
    pub trailing_empty_pair: bool,
    /// `offsets/consumers/<id>` files: (consumer id, offset).
    pub consumer_offsets: Vec<(u32, u64)>,
    /// `offsets/groups/<id>` files: (group id, offset).
    pub group_offsets: Vec<(u32, u64)>,
}

impl PartitionSpec {
    /// No messages, 1 GiB segments, trailing empty pair on.
    pub fn new(stream: u32, topic: u32, partition: u32) -> Self {
        Self {
            stream,
            topic,
            partition,
            messages: Vec::new(),
            segment_size: DEFAULT_SEGMENT_SIZE,
            trailing_empty_pair: true,
            consumer_offsets: Vec::new(),
            group_offsets: Vec::new(),
        }
    }

    /// Appends `count` messages with payload and user-headers lengths drawn from the
    /// given lengths (`0` for no headers).
    pub fn messages(
        mut self,
        count: usize,
        payload_len: impl LenRange,
        headers_len: impl LenRange,
    ) -> Self {
        self.messages.push(MessageShape {
            count,
            payload_len: payload_len.bounds(),
            headers_len: headers_len.bounds(),
        });
        self
    }

    pub fn segment_size(mut self, bytes: u64) -> Self {
        assert!(bytes > 0, "segment size must be positive");
        self.segment_size = bytes;
        self
    }

    pub fn trailing_empty_pair(mut self, enabled: bool) -> Self {
        self.trailing_empty_pair = enabled;
        self
    }

    pub fn consumer_offset(mut self, consumer: u32, offset: u64) -> Self {
        self.consumer_offsets.push((consumer, offset));
        self
    }

    pub fn group_offset(mut self, group: u32, offset: u64) -> Self {
        self.group_offsets.push((group, offset));
        self
    }

    /// Total number of messages.
    pub fn message_count(&self) -> usize {
        self.messages.iter().map(|s| s.count).sum()
    }

    /// `streams/<s>/topics/<t>/partitions/<p>`.
    pub fn rel_dir(&self) -> String {
        partition_rel_dir(self.stream, self.topic, self.partition)
    }
}

/// One written message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltMessage {
    pub offset: u64,
    pub timestamp: u64,
    /// Byte range in its segment's `.log`.
    pub start: u64,
    pub end: u64,
    pub bytes: Vec<u8>,
}

/// One written segment (both files always exist; an empty pair has no messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltSegment {
    pub start_offset: u64,
    pub log_path: PathBuf,
    pub index_path: PathBuf,
    pub messages: Vec<BuiltMessage>,
}

impl BuiltSegment {
    pub fn log_len(&self) -> u64 {
        self.messages.last().map_or(0, |m| m.end)
    }
}

/// One written partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPartition {
    pub stream: u32,
    pub topic: u32,
    pub partition: u32,
    pub rel_dir: String,
    pub dir: PathBuf,
    pub segments: Vec<BuiltSegment>,
}

impl BuiltPartition {
    /// All messages, in offset order.
    pub fn messages(&self) -> impl Iterator<Item = &BuiltMessage> {
        self.segments.iter().flat_map(|s| &s.messages)
    }

    /// Encoded bytes of all messages, in offset order (compare with
    /// `snapshot::partition_messages`).
    pub fn message_bytes(&self) -> Vec<Vec<u8>> {
        self.messages().map(|m| m.bytes.clone()).collect()
    }

    pub fn message_count(&self) -> usize {
        self.segments.iter().map(|s| s.messages.len()).sum()
    }
}

/// What [`DataDirBuilder::build`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltDir {
    pub root: PathBuf,
    pub partitions: Vec<BuiltPartition>,
}

impl BuiltDir {
    /// The partition `stream/topic/partition`; panics when it was not built.
    pub fn partition(&self, stream: u32, topic: u32, partition: u32) -> &BuiltPartition {
        self.partitions
            .iter()
            .find(|p| (p.stream, p.topic, p.partition) == (stream, topic, partition))
            .unwrap_or_else(|| panic!("partition {stream}/{topic}/{partition} was not built"))
    }
}

/// Builds a data directory from partition specs.
#[derive(Debug, Clone, Default)]
pub struct DataDirBuilder {
    seed: u64,
    partitions: Vec<PartitionSpec>,
    state_log: Option<Vec<u8>>,
    users: Vec<String>,
    tokens: Vec<String>,
}

impl DataDirBuilder {
    /// Seed 0, no partitions, a `state/log` naming the partitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything random (lengths, ids, payloads, headers, timestamps) derives from it.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn partition(mut self, spec: PartitionSpec) -> Self {
        self.partitions.push(spec);
        self
    }

    /// Bytes of `state/log` (e.g. a fixture's) instead of the generated entries.
    pub fn state_log(mut self, bytes: Vec<u8>) -> Self {
        self.state_log = Some(bytes);
        self
    }

    /// A create-user entry after the generated streams and topics.
    pub fn user(mut self, name: &str) -> Self {
        self.users.push(name.to_string());
        self
    }

    /// A create-personal-access-token entry after the generated users.
    pub fn token(mut self, name: &str) -> Self {
        self.tokens.push(name.to_string());
        self
    }

    /// The `state/log` bytes [`DataDirBuilder::build`] writes.
    pub fn state_log_bytes(&self) -> Vec<u8> {
        if let Some(bytes) = &self.state_log {
            return bytes.clone();
        }
        let ids: Vec<_> = self
            .partitions
            .iter()
            .map(|p| (p.stream, p.topic, p.partition))
            .collect();
        let entries = crate::state_log::metadata_entries(
            &ids,
            &self.users,
            &self.tokens,
            BASE_TIMESTAMP - 1_000_000,
        );
        crate::state_log::encode_log(&entries)
    }

    /// Writes the data directory into `dir` (created if missing). Panics on errors.
    pub fn build(&self, dir: &Path) -> BuiltDir {
        self.try_build(dir)
            .unwrap_or_else(|e| panic!("build data directory {}: {e}", dir.display()))
    }

    /// Writes the data directory into `dir` (created if missing).
    pub fn try_build(&self, dir: &Path) -> io::Result<BuiltDir> {
        fs::create_dir_all(dir.join("state"))?;
        fs::write(dir.join("state/info"), state_info_bytes())?;
        fs::write(dir.join("state/log"), self.state_log_bytes())?;
        let mut ids = IdSource::default();
        let mut partitions: Vec<BuiltPartition> = Vec::new();
        for spec in &self.partitions {
            if partitions.iter().any(|p| p.rel_dir == spec.rel_dir()) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} given twice", spec.rel_dir()),
                ));
            }
            partitions.push(write_partition(dir, spec, self.seed, &mut ids)?);
        }
        Ok(BuiltDir {
            root: dir.to_path_buf(),
            partitions,
        })
    }
}

fn write_partition(
    root: &Path,
    spec: &PartitionSpec,
    seed: u64,
    ids: &mut IdSource,
) -> io::Result<BuiltPartition> {
    let rel_dir = spec.rel_dir();
    let dir = root.join(&rel_dir);
    fs::create_dir_all(&dir)?;
    let mut rng =
        Rng::new(seed ^ mix(&[spec.stream.into(), spec.topic.into(), spec.partition.into()]));
    let messages = generate_messages(spec, &mut rng, ids);

    let mut segments = Vec::new();
    let mut current = SegmentBuf::new(0);
    for message in &messages {
        current.push(message);
        if current.log.len() as u64 >= spec.segment_size {
            let next = SegmentBuf::new(message.offset + 1);
            segments.push(std::mem::replace(&mut current, next));
        }
    }
    let last_was_sealed = current.messages.is_empty() && !segments.is_empty();
    if !last_was_sealed || spec.trailing_empty_pair {
        segments.push(current);
    }

    let mut built = Vec::new();
    for segment in segments {
        built.push(segment.write(&dir)?);
    }
    for (kind, entries) in [
        ("consumers", &spec.consumer_offsets),
        ("groups", &spec.group_offsets),
    ] {
        for (id, offset) in entries {
            let offsets_dir = dir.join("offsets").join(kind);
            fs::create_dir_all(&offsets_dir)?;
            fs::write(offsets_dir.join(id.to_string()), offset.to_le_bytes())?;
        }
    }
    Ok(BuiltPartition {
        stream: spec.stream,
        topic: spec.topic,
        partition: spec.partition,
        rel_dir,
        dir,
        segments: built,
    })
}

fn generate_messages(spec: &PartitionSpec, rng: &mut Rng, ids: &mut IdSource) -> Vec<Message> {
    let mut timestamp = BASE_TIMESTAMP + rng.below(1_000_000);
    let mut messages = Vec::with_capacity(spec.message_count());
    for shape in &spec.messages {
        for _ in 0..shape.count {
            timestamp += 1 + rng.below(100);
            let payload_len = rng.in_range(&shape.payload_len);
            let headers_len = rng.in_range(&shape.headers_len);
            let mut payload = vec![0; payload_len];
            rng.fill(&mut payload);
            messages.push(Message {
                id: ids.next(rng),
                offset: messages.len() as u64,
                timestamp,
                origin_timestamp: timestamp - 1 - rng.below(500),
                payload,
                headers: user_headers(headers_len, rng),
            });
        }
    }
    messages
}

/// User headers of exactly `len` bytes. For `len` 0 or at least 15 they are a valid
/// Iggy header map: entries `key_len u32, key, kind u8 (2 = string), value_len u32,
/// value` with keys `k0000`, `k0001`, … and 1–255 lowercase letters per value. For
/// `len` 1–14 (too short for one entry) they are raw pseudo-random bytes, which the
/// server stores but could not decode.
pub fn user_headers(len: usize, rng: &mut Rng) -> Vec<u8> {
    const OVERHEAD: usize = 4 + 5 + 1 + 4;
    const MIN_ENTRY: usize = OVERHEAD + 1;
    const MAX_ENTRY: usize = OVERHEAD + 255;
    let mut bytes = Vec::with_capacity(len);
    if (1..MIN_ENTRY).contains(&len) {
        bytes.resize(len, 0);
        rng.fill(&mut bytes);
        return bytes;
    }
    let mut remaining = len;
    let mut key = 0;
    while remaining > 0 {
        let entry = if remaining <= MAX_ENTRY {
            remaining
        } else {
            MAX_ENTRY.min(remaining - MIN_ENTRY)
        };
        let value_len = entry - OVERHEAD;
        bytes.extend_from_slice(&5u32.to_le_bytes());
        bytes.extend_from_slice(format!("k{:04}", key % 10_000).as_bytes());
        bytes.push(2);
        bytes.extend_from_slice(&(value_len as u32).to_le_bytes());
        bytes.extend((0..value_len).map(|_| b'a' + rng.below(26) as u8));
        remaining -= entry;
        key += 1;
    }
    bytes
}

struct SegmentBuf {
    start_offset: u64,
    log: Vec<u8>,
    index: Vec<u8>,
    messages: Vec<BuiltMessage>,
}

impl SegmentBuf {
    fn new(start_offset: u64) -> Self {
        Self {
            start_offset,
            log: Vec::new(),
            index: Vec::new(),
            messages: Vec::new(),
        }
    }

    fn push(&mut self, message: &Message) {
        let bytes = encode_message(message);
        let start = self.log.len() as u64;
        self.log.extend_from_slice(&bytes);
        let end = self.log.len() as u64;
        let relative =
            u32::try_from(message.offset - self.start_offset).expect("relative offset fits u32");
        let end_u32 = u32::try_from(end).expect("segment .log under 4 GiB");
        self.index
            .extend_from_slice(&index_entry(relative, end_u32, message.timestamp));
        self.messages.push(BuiltMessage {
            offset: message.offset,
            timestamp: message.timestamp,
            start,
            end,
            bytes,
        });
    }

    fn write(self, dir: &Path) -> io::Result<BuiltSegment> {
        let log_path = dir.join(segment_file_name(self.start_offset, "log"));
        let index_path = dir.join(segment_file_name(self.start_offset, "index"));
        fs::write(&log_path, &self.log)?;
        fs::write(&index_path, &self.index)?;
        Ok(BuiltSegment {
            start_offset: self.start_offset,
            log_path,
            index_path,
            messages: self.messages,
        })
    }
}

/// Message ids: 64 random high bits over a counter shared by the whole builder, so
/// they are unique.
#[derive(Default)]
struct IdSource {
    counter: u64,
}

impl IdSource {
    fn next(&mut self, rng: &mut Rng) -> u128 {
        self.counter += 1;
        (u128::from(rng.next_u64()) << 64) | u128::from(self.counter)
    }
}

/// SplitMix64: small, fast, deterministic; quality is ample for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn in_range(&mut self, range: &RangeInclusive<usize>) -> usize {
        let span = (range.end() - range.start()) as u64 + 1;
        range.start() + self.below(span) as usize
    }

    pub fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let random = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&random[..chunk.len()]);
        }
    }
}

fn mix(values: &[u64]) -> u64 {
    let mut rng = Rng::new(0x1991_0600);
    values.iter().fold(0, |acc, &v| {
        rng.0 ^= v;
        acc ^ rng.next_u64()
    })
}

#[cfg(test)]
mod tests;
