use super::*;
use crate::state_command::{Command, Ident};
use crate::state_log::Entry;

fn id(name: &str) -> Ident {
    Ident::Name(name.into())
}

/// `commands` as entries 0, 1, … written by the root user.
fn entries(commands: &[Command]) -> Vec<Entry> {
    entries_by(0, commands)
}

fn entries_by(user_id: u32, commands: &[Command]) -> Vec<Entry> {
    (0u64..)
        .zip(commands)
        .map(|(i, c)| Entry {
            offset: i * 100,
            len: 100,
            index: i,
            version: 1,
            timestamp: 0,
            user_id,
            code: code_of(c),
            command: c.clone(),
            checksum_ok: Some(true),
            checksum: 0,
        })
        .collect()
}

/// The code 0.6.0 stores `c` under (its name is the command's tag).
fn code_of(c: &Command) -> u32 {
    match c {
        Command::Undecoded { code } | Command::Unknown { code } => *code,
        _ => {
            let tag = serde_json::to_value(c).expect("a command serializes");
            let name = tag["command"].as_str().expect("tagged by name");
            crate::state_command::CODES
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(code, _)| *code)
                .expect("a code of 0.6.0")
        }
    }
}

fn stream(n: u32, name: &str) -> Command {
    Command::CreateStream {
        stream: n,
        name: name.into(),
    }
}

fn topic(stream: Ident, n: u32, partitions: u32) -> Command {
    Command::CreateTopic {
        stream,
        topic: n,
        partitions,
        name: format!("t{n}"),
    }
}

/// The `why` of each entry the replay of `commands` lists, by index.
fn unreplayable(commands: &[Command]) -> Vec<(u64, String)> {
    let meta = Metadata::replay(&entries(commands));
    meta.unreplayable
        .into_iter()
        .map(|u| (u.index, u.why))
        .collect()
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
    let meta = Metadata::replay(&entries(&commands));
    let parts: Vec<_> = meta.partitions().map(|p| p.rel_dir()).collect();
    assert_eq!(
        parts,
        [
            "streams/0/topics/0/partitions/0",
            "streams/0/topics/0/partitions/1",
            "streams/0/topics/1/partitions/1"
        ]
    );
    // A stream deleted by a name no stream has: the server panics in its lookup.
    assert_eq!(meta.unreplayable.len(), 1);
    assert_eq!(meta.unreplayable[0].index, 5);
    assert_eq!(meta.unreplayable[0].why, "stream \"gone\" does not exist");
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

#[test]
fn deletes_by_number_of_what_is_not_there_are_no_error_as_in_the_server() {
    let commands = [
        stream(1, "s"),
        Command::DeleteStream {
            stream: Ident::Id(7),
        },
        Command::DeleteTopic {
            stream: Ident::Id(1),
            topic: Ident::Id(9),
        },
        Command::DeleteUser { user: Ident::Id(4) },
        Command::DeleteConsumerGroup {
            stream: Ident::Id(1),
            topic: Ident::Id(0),
            group: Ident::Id(2),
        },
    ];
    // Only the group's topic is looked up with a panic.
    assert_eq!(
        unreplayable(&commands),
        [(4, "topic 0 of stream 1 does not exist".to_string())]
    );
}

#[test]
fn entries_the_servers_reader_rejects_are_listed_and_only_delete_segments_is_droppable() {
    let delete_segments = Command::DeleteSegments {
        stream: Ident::Id(1),
        topic: Ident::Id(0),
        partition: 0,
        count: 0,
    };
    let commands = [
        stream(1, "s"),
        topic(Ident::Id(1), 0, 1),
        // 2: of a partition that exists, and yet the reader rejects it.
        delete_segments.clone(),
        // 3: a code 0.6.0 never stores.
        Command::Unknown { code: 999 },
        topic(Ident::Id(1), 1, 1),
    ];
    let meta = Metadata::replay(&entries(&commands));
    let listed: Vec<(u64, bool)> = meta
        .unreplayable
        .iter()
        .map(|u| (u.index, u.droppable))
        .collect();
    assert_eq!(listed, [(2, true), (3, false)]);
    assert!(meta.unreplayable[0].why.contains("InvalidCommand"));
    assert!(meta.unreplayable[1].why.contains("command code 999"));
    // Neither changes the metadata: the topic after them is there.
    assert_eq!(meta.counts(), (1, 2, 2));
    // By their codes alone, as for an encrypted log: the same two.
    let mut encrypted = entries(&commands);
    for e in &mut encrypted {
        e.command = Command::Undecoded { code: e.code };
    }
    let by_code: Vec<u64> = Metadata::unreadable(&encrypted)
        .iter()
        .map(|u| u.index)
        .collect();
    assert_eq!(by_code, [2, 3]);
}

#[test]
fn every_lookup_the_server_panics_on_is_listed_with_its_entry() {
    let commands = [
        stream(1, "s"),
        topic(Ident::Id(1), 0, 2),
        // 2: a topic in a stream that does not exist.
        topic(Ident::Id(5), 0, 1),
        // 3: partitions of a topic by a name the stream lacks.
        Command::CreatePartitions {
            stream: Ident::Id(1),
            topic: id("nope"),
            count: 1,
        },
        // 4: segments deleted: the reader rejects every such entry.
        Command::DeleteSegments {
            stream: Ident::Id(1),
            topic: Ident::Id(0),
            partition: 9,
            count: 1,
        },
        // 5: a group by a name that was never created.
        Command::DeleteConsumerGroup {
            stream: Ident::Id(1),
            topic: Ident::Id(0),
            group: id("g"),
        },
        // 6: a user that was never created.
        Command::ChangePassword { user: Ident::Id(3) },
        // 7: purging a stream that does not exist.
        Command::PurgeStream {
            stream: Ident::Id(2),
        },
        // 8: more partitions than the server accepts.
        Command::CreatePartitions {
            stream: Ident::Id(1),
            topic: Ident::Id(0),
            count: u32::MAX,
        },
    ];
    let found: Vec<u64> = unreplayable(&commands).iter().map(|u| u.0).collect();
    assert_eq!(found, [2, 3, 4, 5, 6, 7, 8]);
    let meta = Metadata::replay(&entries(&commands));
    // The entries that did replay: partitions 0 and 1 only.
    assert_eq!(meta.counts(), (1, 1, 2));
    assert!(meta.unreplayable[0]
        .to_string()
        .contains("stream 5 does not exist"));
}

#[test]
fn users_are_found_by_the_name_an_update_gave_them_and_tokens_by_their_writer() {
    let commands = [
        Command::CreateUser {
            user: 0,
            username: "iggy".into(),
        },
        Command::CreateUser {
            user: 1,
            username: "ann".into(),
        },
        Command::UpdateUser {
            user: id("ann"),
            username: Some("bea".into()),
        },
        Command::UpdatePermissions { user: id("bea") },
        // 4: the old name is gone.
        Command::ChangePassword { user: id("ann") },
        Command::CreatePersonalAccessToken { name: "t".into() },
    ];
    assert_eq!(
        unreplayable(&commands),
        [(4, "user \"ann\" does not exist".to_string())]
    );
    // A token written on behalf of a user the log never created.
    let token = [Command::CreatePersonalAccessToken { name: "t".into() }];
    let meta = Metadata::replay(&entries_by(7, &token));
    assert_eq!(meta.unreplayable[0].why, "user 7 does not exist");
}

#[test]
fn partitions_are_numbered_and_removed_as_the_server_does_past_its_edges() {
    let commands = [
        stream(1, "s"),
        topic(Ident::Id(1), 0, 3),
        // Removes 2, 1, 0; the wrapped ids it then removes are not there.
        Command::DeletePartitions {
            stream: Ident::Id(1),
            topic: Ident::Id(0),
            count: 10,
        },
        Command::CreatePartitions {
            stream: Ident::Id(1),
            topic: Ident::Id(0),
            count: 2,
        },
        Command::CreateConsumerGroup {
            stream: Ident::Id(1),
            topic: Ident::Id(0),
            group: 4,
            name: "g".into(),
        },
        Command::DeleteConsumerGroup {
            stream: Ident::Id(1),
            topic: Ident::Id(0),
            group: id("g"),
        },
    ];
    let meta = Metadata::replay(&entries(&commands));
    assert!(meta.unreplayable.is_empty(), "{:?}", meta.unreplayable);
    let parts: Vec<u32> = meta.partitions().map(|p| p.partition).collect();
    assert_eq!(parts, [1, 2]);
    assert!(meta.streams[&1].topics[&0].consumer_groups.is_empty());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Small ids and a few names, so that lookups both hit and miss.
    fn ident() -> impl Strategy<Value = Ident> {
        prop_oneof![
            (0u32..4).prop_map(Ident::Id),
            prop::sample::select(vec!["a", "b", "c"]).prop_map(|n| Ident::Name(n.into())),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from)
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            (0u32..4, name()).prop_map(|(stream, name)| Command::CreateStream { stream, name }),
            ident().prop_map(|stream| Command::DeleteStream { stream }),
            (ident(), 0u32..4, 0u32..4, name()).prop_map(|(stream, topic, partitions, name)| {
                Command::CreateTopic {
                    stream,
                    topic,
                    partitions,
                    name,
                }
            }),
            (ident(), ident()).prop_map(|(stream, topic)| Command::DeleteTopic { stream, topic }),
            (ident(), ident(), any::<u32>()).prop_map(|(stream, topic, count)| {
                Command::CreatePartitions {
                    stream,
                    topic,
                    count,
                }
            }),
            (ident(), ident(), any::<u32>()).prop_map(|(stream, topic, count)| {
                Command::DeletePartitions {
                    stream,
                    topic,
                    count,
                }
            }),
            (ident(), ident(), 0u32..6).prop_map(|(stream, topic, partition)| {
                Command::DeleteSegments {
                    stream,
                    topic,
                    partition,
                    count: 1,
                }
            }),
            (ident(), ident(), 0u32..4, name()).prop_map(|(stream, topic, group, name)| {
                Command::CreateConsumerGroup {
                    stream,
                    topic,
                    group,
                    name,
                }
            }),
            (ident(), ident(), ident()).prop_map(|(stream, topic, group)| {
                Command::DeleteConsumerGroup {
                    stream,
                    topic,
                    group,
                }
            }),
            (0u32..4, name()).prop_map(|(user, username)| Command::CreateUser { user, username }),
            (ident(), prop::option::of(name()))
                .prop_map(|(user, username)| Command::UpdateUser { user, username }),
            ident().prop_map(|user| Command::DeleteUser { user }),
            ident().prop_map(|user| Command::ChangePassword { user }),
            name().prop_map(|name| Command::CreatePersonalAccessToken { name }),
        ]
    }

    proptest! {
        /// Replay never panics, holds no more than 1,000 partitions per command, and
        /// the entries before the first one it cannot replay replay whole: where the
        /// server stops is where a cut leaves a log it starts from.
        #[test]
        fn the_entries_before_the_first_unreplayable_one_replay_whole(
            commands in prop::collection::vec(command(), 0..24),
            writer in 0u32..4,
        ) {
            let entries = entries_by(writer, &commands);
            let meta = Metadata::replay(&entries);
            for t in meta.streams.values().flat_map(|s| s.topics.values()) {
                prop_assert!(t.partitions.len() <= 1000 * commands.len());
            }
            if let Some(first) = meta.unreplayable.first() {
                let kept = usize::try_from(first.index).unwrap();
                let prefix = Metadata::replay(&entries[..kept]);
                prop_assert!(prefix.unreplayable.is_empty(), "{:?}", prefix.unreplayable);
            }
        }
    }
}
