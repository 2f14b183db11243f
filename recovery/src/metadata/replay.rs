//! `state/log` replayed as iggy-server 0.6.0 replays it at start
//! (`state/system.rs`, `SystemState::init`), with its panics.
//!
//! The server looks a stream, topic, consumer group or user up by name with a
//! `find_*_id` that panics when no such name exists, and by number as it is; then
//! most commands fetch what they act on and panic when it is not there. Deletes by
//! number are the exception: removing what is not there is no error. Those rules are
//! what decides whether the directory starts, so they are mirrored here one command
//! at a time; an entry that would panic is skipped and listed, and the replay goes on
//! (the report names every such entry, the server would stop at the first).
//!
//! Before any replay the server reads every entry back, and its reader rejects the
//! codes it has no case for, `delete-segments` among them although the server writes
//! those: such an entry is listed too, as the server would stop there as well.

use super::{Metadata, StreamMeta, TopicMeta, Unreplayable};
use crate::state_command::{reader_rejects, Command, Ident, DELETE_SEGMENTS};
use crate::state_log::Entry;
use std::collections::BTreeMap;

/// The most partitions 0.6.0 accepts in one command (`MAX_PARTITIONS_COUNT`): a log
/// asking for more was not written by it, and replaying it would take the memory of
/// billions of partitions.
const MAX_PARTITIONS_PER_COMMAND: u32 = 1000;

/// The user iggy-server creates at its first start (`DEFAULT_ROOT_USER_ID`).
const ROOT_USER: u32 = 0;

impl Metadata {
    /// The metadata after `entries`, in order.
    pub fn replay<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Self {
        let mut m = Metadata::default();
        for e in entries {
            if let Some(u) = unreadable(e) {
                m.unreplayable.push(u);
            } else if let Err(why) = m.apply(&e.command, e.user_id) {
                m.unreplayable.push(Unreplayable {
                    index: e.index,
                    offset: e.offset,
                    command: e.command.to_string(),
                    why,
                    droppable: false,
                });
            }
        }
        m
    }

    /// The entries 0.6.0's reader rejects, by their command codes alone: what can be
    /// told of an encrypted log, whose codes are stored in the clear.
    pub fn unreadable<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Unreplayable> {
        entries.into_iter().filter_map(unreadable).collect()
    }

    /// Applies one command of an entry written on behalf of `user_id`; `Err` with
    /// why where 0.6.0 panics.
    fn apply(&mut self, c: &Command, user_id: u32) -> Result<(), String> {
        match c {
            Command::CreateStream { stream, name } => {
                let meta = StreamMeta {
                    name: name.clone(),
                    ..StreamMeta::default()
                };
                self.streams.insert(*stream, meta);
            }
            Command::UpdateStream { stream, name } => self.stream_mut(stream)?.name = name.clone(),
            Command::DeleteStream { stream } => {
                let id = self.stream_id(stream)?;
                self.streams.remove(&id);
            }
            Command::PurgeStream { stream } => {
                self.stream_mut(stream)?;
            }
            Command::CreateTopic {
                stream,
                topic,
                partitions,
                name,
            } => {
                let partitions = plausible(*partitions)?;
                let meta = TopicMeta {
                    name: name.clone(),
                    partitions: (0..partitions).collect(),
                    ..TopicMeta::default()
                };
                self.stream_mut(stream)?.topics.insert(*topic, meta);
            }
            Command::UpdateTopic {
                stream,
                topic,
                name,
            } => self.topic_mut(stream, topic)?.name = name.clone(),
            Command::DeleteTopic { stream, topic } => {
                let s = self.stream_mut(stream)?;
                let t = topic_id(s, topic)?;
                s.topics.remove(&t);
            }
            Command::PurgeTopic { stream, topic } => {
                self.topic_mut(stream, topic)?;
            }
            Command::CreatePartitions {
                stream,
                topic,
                count,
            } => {
                let count = plausible(*count)?;
                let t = self.topic_mut(stream, topic)?;
                let last = t.partitions.last().copied().unwrap_or(0);
                // The server adds without a check; its release build wraps.
                t.partitions
                    .extend((1..=count).map(|i| last.wrapping_add(i)));
            }
            Command::DeletePartitions {
                stream,
                topic,
                count,
            } => {
                let t = self.topic_mut(stream, topic)?;
                // The server removes `last - i` for i below `count`: every id within
                // `count` of the highest (the ones it wraps to are above it, so none).
                if let Some(last) = t.partitions.last().copied() {
                    t.partitions.retain(|p| last - p >= *count);
                }
            }
            // Never replayed: the reader rejects the entry first (see `unreadable`).
            Command::DeleteSegments { .. } => {}
            Command::CreateConsumerGroup {
                stream,
                topic,
                group,
                name,
            } => {
                let t = self.topic_mut(stream, topic)?;
                t.consumer_groups.insert(*group, name.clone());
            }
            Command::DeleteConsumerGroup {
                stream,
                topic,
                group,
            } => {
                let t = self.topic_mut(stream, topic)?;
                let id = id_of(&t.consumer_groups, group, |g| g)
                    .ok_or_else(|| format!("consumer group {group} does not exist"))?;
                t.consumer_groups.remove(&id);
            }
            Command::CreateUser { user, username } => {
                self.users.insert(*user, username.clone());
            }
            Command::UpdateUser { user, username } => {
                let id = self.user_id(user)?;
                let name = self.existing_user(id)?;
                if let Some(new) = username {
                    name.clone_from(new);
                }
            }
            Command::DeleteUser { user } => {
                let id = self.user_id(user)?;
                self.users.remove(&id);
            }
            Command::ChangePassword { user } | Command::UpdatePermissions { user } => {
                let id = self.user_id(user)?;
                self.existing_user(id)?;
            }
            // Tokens belong to the user who wrote the entry.
            Command::CreatePersonalAccessToken { .. }
            | Command::DeletePersonalAccessToken { .. } => {
                self.existing_user(user_id)?;
            }
            // Nothing this replay can follow: an encrypted log's commands (whose
            // metadata is not judged at all), or a code the reader rejects first.
            Command::Undecoded { .. } | Command::Unknown { .. } => {}
        }
        Ok(())
    }

    /// The server's `find_stream_id`.
    fn stream_id(&self, ident: &Ident) -> Result<u32, String> {
        id_of(&self.streams, ident, |s| &s.name)
            .ok_or_else(|| format!("stream {ident} does not exist"))
    }

    fn stream_mut(&mut self, ident: &Ident) -> Result<&mut StreamMeta, String> {
        let id = self.stream_id(ident)?;
        self.streams
            .get_mut(&id)
            .ok_or_else(|| format!("stream {id} does not exist"))
    }

    fn topic_mut(&mut self, stream: &Ident, topic: &Ident) -> Result<&mut TopicMeta, String> {
        let s = self.stream_mut(stream)?;
        let t = topic_id(s, topic)?;
        s.topics
            .get_mut(&t)
            .ok_or_else(|| format!("topic {t} of stream {stream} does not exist"))
    }

    /// The server's `find_user_id`.
    fn user_id(&self, ident: &Ident) -> Result<u32, String> {
        id_of(&self.users, ident, |u| u).ok_or_else(|| format!("user {ident} does not exist"))
    }

    fn existing_user(&mut self, id: u32) -> Result<&mut String, String> {
        let root = if id == ROOT_USER {
            " (the root user: its creating entry is not before this one)"
        } else {
            ""
        };
        self.users
            .get_mut(&id)
            .ok_or_else(|| format!("user {id} does not exist{root}"))
    }
}

/// The server's `find_topic_id` in `stream`.
fn topic_id(stream: &StreamMeta, ident: &Ident) -> Result<u32, String> {
    id_of(&stream.topics, ident, |t| &t.name)
        .ok_or_else(|| format!("topic {ident} of stream {:?} does not exist", stream.name))
}

/// The server's `find_*_id` over `map`: a number as it is (whether or not it exists),
/// a name only when an entry of `map` has it (the lowest id first, as the server's
/// ordered maps give it).
fn id_of<V>(map: &BTreeMap<u32, V>, ident: &Ident, name: impl Fn(&V) -> &String) -> Option<u32> {
    match ident {
        Ident::Id(id) => Some(*id),
        Ident::Name(wanted) => map
            .iter()
            .find(|(_, v)| name(v) == wanted)
            .map(|(id, _)| *id),
    }
}

fn plausible(count: u32) -> Result<u32, String> {
    if count > MAX_PARTITIONS_PER_COMMAND {
        return Err(format!(
            "{count} partitions in one command, more than the {MAX_PARTITIONS_PER_COMMAND} \
             iggy-server 0.6.0 accepts: not an entry it wrote"
        ));
    }
    Ok(count)
}

/// `e` as an entry 0.6.0's reader rejects, if it does.
fn unreadable(e: &Entry) -> Option<Unreplayable> {
    let why = reader_rejects(e.code)?;
    Some(Unreplayable {
        index: e.index,
        offset: e.offset,
        command: e.command.to_string(),
        why,
        droppable: e.code == DELETE_SEGMENTS,
    })
}
