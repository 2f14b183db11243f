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
//! would panic (an entry naming a stream or topic that does not exist) replay skips
//! the entry and counts it in [`Metadata::unresolved`].

use crate::state_command::{Command, Ident};
use journal::PartitionId;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TopicMeta {
    pub name: String,
    pub partitions: BTreeSet<u32>,
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
    /// Entries naming a stream, topic or user that did not exist (the server panics).
    pub unresolved: usize,
}

impl Metadata {
    /// The metadata after `commands`, in order.
    pub fn replay<'a>(commands: impl IntoIterator<Item = &'a Command>) -> Self {
        let mut m = Metadata::default();
        for c in commands {
            if m.apply(c).is_none() {
                m.unresolved += 1;
            }
        }
        m
    }

    fn stream_id(&self, ident: &Ident) -> Option<u32> {
        match ident {
            Ident::Id(id) => self.streams.contains_key(id).then_some(*id),
            Ident::Name(name) => self
                .streams
                .iter()
                .find(|(_, s)| s.name == *name)
                .map(|(id, _)| *id),
        }
    }

    fn topic_mut(&mut self, stream: &Ident, topic: &Ident) -> Option<&mut TopicMeta> {
        let s = self.stream_id(stream)?;
        let topics = &mut self.streams.get_mut(&s)?.topics;
        let t = match topic {
            Ident::Id(id) => *id,
            Ident::Name(name) => *topics.iter().find(|(_, t)| t.name == *name)?.0,
        };
        topics.get_mut(&t)
    }

    /// Applies one command; `None` when it names something that does not exist.
    fn apply(&mut self, c: &Command) -> Option<()> {
        match c {
            Command::CreateStream { stream, name } => {
                self.streams.insert(
                    *stream,
                    StreamMeta {
                        name: name.clone(),
                        topics: BTreeMap::new(),
                    },
                );
            }
            Command::UpdateStream { stream, name } => {
                let id = self.stream_id(stream)?;
                self.streams.get_mut(&id)?.name = name.clone();
            }
            Command::DeleteStream { stream } => {
                let id = self.stream_id(stream)?;
                self.streams.remove(&id);
            }
            Command::CreateTopic {
                stream,
                topic,
                partitions,
                name,
            } => {
                let id = self.stream_id(stream)?;
                let topic_meta = TopicMeta {
                    name: name.clone(),
                    partitions: (0..*partitions).collect(),
                };
                self.streams.get_mut(&id)?.topics.insert(*topic, topic_meta);
            }
            Command::UpdateTopic {
                stream,
                topic,
                name,
            } => self.topic_mut(stream, topic)?.name = name.clone(),
            Command::DeleteTopic { stream, topic } => {
                let s = self.stream_id(stream)?;
                let topics = &mut self.streams.get_mut(&s)?.topics;
                let t = match topic {
                    Ident::Id(id) => *id,
                    Ident::Name(name) => *topics.iter().find(|(_, t)| t.name == *name)?.0,
                };
                topics.remove(&t)?;
            }
            Command::CreatePartitions {
                stream,
                topic,
                count,
            } => {
                let t = self.topic_mut(stream, topic)?;
                let last = t.partitions.last().copied().unwrap_or(0);
                for i in 1..=*count {
                    t.partitions.insert(last.checked_add(i)?);
                }
            }
            Command::DeletePartitions {
                stream,
                topic,
                count,
            } => {
                let t = self.topic_mut(stream, topic)?;
                if let Some(last) = t.partitions.last().copied() {
                    for i in 0..*count {
                        t.partitions.remove(&last.checked_sub(i)?);
                    }
                }
            }
            Command::CreateUser { user, username } => {
                self.users.insert(*user, username.clone());
            }
            Command::DeleteUser { user } => {
                let id = match user {
                    Ident::Id(id) => *id,
                    Ident::Name(name) => *self.users.iter().find(|(_, u)| *u == name)?.0,
                };
                self.users.remove(&id)?;
            }
            _ => {}
        }
        Some(())
    }

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
mod tests {
    use super::*;

    fn id(name: &str) -> Ident {
        Ident::Name(name.into())
    }

    #[test]
    fn replay_follows_the_servers_numbering_and_compare_finds_both_directions() {
        let commands = [
            Command::CreateStream {
                stream: 0,
                name: "orders".into(),
            },
            Command::CreateTopic {
                stream: id("orders"),
                topic: 0,
                partitions: 2,
                name: "events".into(),
            },
            Command::CreateTopic {
                stream: Ident::Id(0),
                topic: 1,
                partitions: 0,
                name: "empty".into(),
            },
            // From 1 in a topic without partitions, as 0.6.0 numbers them.
            Command::CreatePartitions {
                stream: Ident::Id(0),
                topic: id("empty"),
                count: 2,
            },
            Command::DeletePartitions {
                stream: Ident::Id(0),
                topic: Ident::Id(1),
                count: 1,
            },
            Command::DeleteStream { stream: id("gone") },
        ];
        let meta = Metadata::replay(&commands);
        let parts: Vec<_> = meta.partitions().map(|p| p.rel_dir()).collect();
        assert_eq!(
            parts,
            [
                "streams/0/topics/0/partitions/0",
                "streams/0/topics/0/partitions/1",
                "streams/0/topics/1/partitions/1"
            ]
        );
        assert_eq!(meta.unresolved, 1);
        let folders = [
            (PartitionId::new(0, 0, 0), 100),
            (PartitionId::new(0, 1, 1), 0),
            (PartitionId::new(1, 0, 0), 300),
            (PartitionId::new(1, 0, 1), 5),
        ];
        let found = compare(&meta, &folders);
        assert_eq!(
            found,
            [
                Mismatch::Unnamed {
                    rel: "streams/1".into(),
                    partitions: 2,
                    log_bytes: 305
                },
                Mismatch::Missing {
                    rel: "streams/0/topics/0/partitions/1".into(),
                    what: "partition 1 of topic 0 \"events\" of stream 0 \"orders\"".into()
                }
            ]
        );
    }
}
