//! The metadata `state/log` records (streams, topics, partitions, users), replayed the
//! way iggy-server 0.6.0 replays it at start (`state/system.rs`, `SystemState::init`),
//! and compared with the folders under `streams/`.
//!
//! The server loads only what the metadata names: a partition folder no entry names is
//! ignored (its messages are unreachable, and a stream or topic created later with
//! the same id would take its old segments), and a partition the metadata names
//! without a folder stops the server at start (`CannotReadPartitions`, from walking a
//! folder that is not there). Replay mirrors the server's quirks: `create-partitions`
//! numbers new partitions from the highest existing id + 1, so from 1 in a topic
//! without partitions; `delete-partitions` removes the highest ids. Where the server
//! panics (an entry naming a stream, topic, partition, consumer group or user that
//! the entries before it do not leave) replay skips the entry and lists it in
//! [`Metadata::unreplayable`] (see `replay.rs`).

mod replay;

use journal::PartitionId;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TopicMeta {
    pub name: String,
    pub partitions: BTreeSet<u32>,
    /// Consumer groups by id, with their names.
    pub consumer_groups: BTreeMap<u32, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamMeta {
    pub name: String,
    pub topics: BTreeMap<u32, TopicMeta>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub streams: BTreeMap<u32, StreamMeta>,
    pub users: BTreeMap<u32, String>,
    /// Entries iggy-server 0.6.0 cannot replay: it stops at start on the first one
    /// (its reader rejects the entry, or its replay panics).
    pub unreplayable: Vec<Unreplayable>,
}

/// An entry of `state/log` that stops iggy-server 0.6.0 at start: its reader rejects
/// it (`EntryCommand::from_bytes`), or it panics replaying it (`SystemState::init`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreplayable {
    /// The entry's index, and its byte offset in `state/log`.
    pub index: u64,
    pub offset: u64,
    /// What it asks, as a report reads it (`create topic 0 "events" in stream 3 …`).
    pub command: String,
    /// Why it cannot be replayed: `stream 3 does not exist`.
    pub why: String,
    /// A delete-segments entry: the reader rejects it, but replaying it would change
    /// nothing, so the log without it is the same metadata (salvage drops it).
    pub droppable: bool,
}

impl fmt::Display for Unreplayable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {} ({}): {}", self.index, self.command, self.why)
    }
}

impl Metadata {
    /// Every partition the metadata names.
    pub fn partitions(&self) -> impl Iterator<Item = PartitionId> + '_ {
        self.streams.iter().flat_map(|(s, stream)| {
            stream.topics.iter().flat_map(move |(t, topic)| {
                topic
                    .partitions
                    .iter()
                    .map(move |p| PartitionId::new(*s, *t, *p))
            })
        })
    }

    /// Streams, topics and partitions.
    pub fn counts(&self) -> (usize, usize, usize) {
        let topics = self.streams.values().map(|s| s.topics.len()).sum();
        (self.streams.len(), topics, self.partitions().count())
    }

    /// `partition 1 of topic 0 "cpu" of stream 1 "metrics"`.
    fn describe(&self, p: PartitionId) -> String {
        let stream = self.streams.get(&p.stream);
        let topic = stream.and_then(|s| s.topics.get(&p.topic));
        format!(
            "partition {} of topic {} {:?} of stream {} {:?}",
            p.partition,
            p.topic,
            topic.map_or("", |t| t.name.as_str()),
            p.stream,
            stream.map_or("", |s| s.name.as_str())
        )
    }
}

/// A disagreement between the metadata and the folders under `streams/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Mismatch {
    /// A stream, topic or partition folder no entry names (the highest such level),
    /// with the bytes of messages in the partitions below it.
    Unnamed {
        rel: String,
        partitions: usize,
        log_bytes: u64,
    },
    /// A partition the metadata names whose folder is missing.
    Missing { rel: String, what: String },
}

impl Mismatch {
    pub fn rel(&self) -> &str {
        match self {
            Mismatch::Unnamed { rel, .. } | Mismatch::Missing { rel, .. } => rel,
        }
    }
}

/// Compares the metadata with the partition folders found (each with the bytes of its
/// `.log` files).
pub fn compare(meta: &Metadata, folders: &[(PartitionId, u64)]) -> Vec<Mismatch> {
    let mut unnamed: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for (id, bytes) in folders {
        let stream = meta.streams.get(&id.stream);
        let topic = stream.and_then(|s| s.topics.get(&id.topic));
        let rel = match (stream, topic) {
            (None, _) => format!("streams/{}", id.stream),
            (Some(_), None) => format!("streams/{}/topics/{}", id.stream, id.topic),
            (Some(_), Some(t)) if !t.partitions.contains(&id.partition) => id.rel_dir(),
            _ => continue,
        };
        let e = unnamed.entry(rel).or_default();
        e.0 += 1;
        e.1 += bytes;
    }
    let present: BTreeSet<PartitionId> = folders.iter().map(|(id, _)| *id).collect();
    let missing = meta
        .partitions()
        .filter(|p| !present.contains(p))
        .map(|p| Mismatch::Missing {
            rel: p.rel_dir(),
            what: meta.describe(p),
        });
    unnamed
        .into_iter()
        .map(|(rel, (partitions, log_bytes))| Mismatch::Unnamed {
            rel,
            partitions,
            log_bytes,
        })
        .chain(missing)
        .collect()
}

#[cfg(test)]
mod tests;
