//! How an entry's command reads in a report: `create topic 0 "cpu" in stream 1 …`.

use super::{code_name, Command};
use std::fmt;

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Command::*;
        match self {
            CreateStream { stream, name } => write!(f, "create stream {stream} {name:?}"),
            UpdateStream { stream, name } => write!(f, "rename stream {stream} to {name:?}"),
            DeleteStream { stream } => write!(f, "delete stream {stream}"),
            PurgeStream { stream } => write!(f, "purge stream {stream}"),
            CreateTopic {
                stream,
                topic,
                partitions,
                name,
            } => write!(
                f,
                "create topic {topic} {name:?} in stream {stream} with {partitions} partition{}",
                if *partitions == 1 { "" } else { "s" }
            ),
            UpdateTopic {
                stream,
                topic,
                name,
            } => write!(f, "update topic {topic} of stream {stream} (name {name:?})"),
            DeleteTopic { stream, topic } => write!(f, "delete topic {topic} of stream {stream}"),
            PurgeTopic { stream, topic } => write!(f, "purge topic {topic} of stream {stream}"),
            CreatePartitions {
                stream,
                topic,
                count,
            } => write!(
                f,
                "create {count} partitions in topic {topic} of stream {stream}"
            ),
            DeletePartitions {
                stream,
                topic,
                count,
            } => write!(
                f,
                "delete {count} partitions of topic {topic} of stream {stream}"
            ),
            DeleteSegments {
                stream,
                topic,
                partition,
                count,
            } => write!(
                f,
                "delete {count} segments of partition {partition}, topic {topic}, stream {stream}"
            ),
            CreateConsumerGroup {
                stream,
                topic,
                group,
                name,
            } => write!(
                f,
                "create consumer group {group} {name:?} in topic {topic} of stream {stream}"
            ),
            DeleteConsumerGroup {
                stream,
                topic,
                group,
            } => write!(
                f,
                "delete consumer group {group} of topic {topic} of stream {stream}"
            ),
            CreateUser { user, username } => write!(f, "create user {user} {username:?}"),
            UpdateUser {
                user,
                username: Some(name),
            } => write!(f, "update user {user}, renaming it {name:?}"),
            UpdateUser { user, .. } => write!(f, "update user {user}"),
            DeleteUser { user } => write!(f, "delete user {user}"),
            ChangePassword { user } => write!(f, "change the password of user {user}"),
            UpdatePermissions { user } => write!(f, "update the permissions of user {user}"),
            CreatePersonalAccessToken { name } => {
                write!(f, "create personal access token {name:?}")
            }
            DeletePersonalAccessToken { name } => {
                write!(f, "delete personal access token {name:?}")
            }
            Undecoded { code } => write!(
                f,
                "{} (payload not decoded: damaged or encrypted)",
                code_name(*code).unwrap_or("?")
            ),
            Unknown { code } => write!(f, "unknown command code {code}"),
        }
    }
}
