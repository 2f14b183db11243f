//! The commands stored in `state/log` entries by iggy-server 0.6.0: their codes, their
//! names, and a decoder of the fields that say what an entry did (which stream, topic,
//! partitions, user, token or consumer group it created, changed or deleted).
//!
//! Codes and layouts are those of apache/iggy at tag `server-0.6.0`
//! (`core/server/src/state/command.rs` and `models.rs`, the commands in
//! `core/common/src/commands/`). All integers are little-endian. An identifier (of a
//! stream, topic, group or user) is a kind byte (1 numeric, 2 name), a length byte and
//! the value: a u32 for a numeric one, UTF-8 for a name. Decoding reads only what it
//! needs, never panics, and gives [`Command::Undecoded`] when the payload does not
//! decode (damaged, or encrypted by `system.encryption`).

use serde::Serialize;
use std::fmt;

/// Codes the 0.6.0 server writes into `state/log`, with their names.
pub const CODES: [(u32, &str); 20] = [
    (33, "create-user"),
    (34, "delete-user"),
    (35, "update-user"),
    (36, "update-permissions"),
    (37, "change-password"),
    (42, "create-personal-access-token"),
    (43, "delete-personal-access-token"),
    (202, "create-stream"),
    (203, "delete-stream"),
    (204, "update-stream"),
    (205, "purge-stream"),
    (302, "create-topic"),
    (303, "delete-topic"),
    (304, "update-topic"),
    (305, "purge-topic"),
    (402, "create-partitions"),
    (403, "delete-partitions"),
    (503, "delete-segments"),
    (602, "create-consumer-group"),
    (603, "delete-consumer-group"),
];

/// The name of a state command code, `None` for a code 0.6.0 does not store.
pub fn code_name(code: u32) -> Option<&'static str> {
    CODES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// Why iggy-server 0.6.0's reader of `state/log` (`EntryCommand::from_bytes`, run on
/// every entry before any is replayed) rejects an entry with this code, which stops
/// the server at start with `Error: SdkError(InvalidCommand)`; `None` when it reads it.
/// It has no case for `delete-segments`, although it writes such an entry for every
/// delete-segments request of its binary protocol.
pub fn reader_rejects(code: u32) -> Option<String> {
    const STOPS: &str = "iggy-server 0.6.0 stops at start with `Error: SdkError(InvalidCommand)`";
    match code {
        DELETE_SEGMENTS => Some(format!(
            "0.6.0 records delete-segments entries but its reader has no case for them: {STOPS}"
        )),
        _ if code_name(code).is_none() => Some(format!(
            "command code {code} is none that 0.6.0's reader knows: {STOPS}"
        )),
        _ => None,
    }
}

/// The code of `delete-segments`: entries 0.6.0 writes and cannot read back. Replaying
/// one changes no metadata (`SystemState::init`: "State is not affected by the
/// delete segments"), so dropping it from the log loses nothing the server uses.
pub const DELETE_SEGMENTS: u32 = 503;

/// Whether an entry with this code changes which streams, topics or partitions exist,
/// and so which folders the server expects under `streams/`.
pub fn changes_folders(code: u32) -> bool {
    matches!(code, 202 | 203 | 302 | 303 | 402 | 403)
}

/// A stream, topic, group or user named by number or by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Ident {
    Id(u32),
    Name(String),
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ident::Id(id) => write!(f, "{id}"),
            Ident::Name(name) => write!(f, "{name:?}"),
        }
    }
}

/// What one entry did, as far as it decodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "command")]
pub enum Command {
    CreateStream {
        stream: u32,
        name: String,
    },
    UpdateStream {
        stream: Ident,
        name: String,
    },
    DeleteStream {
        stream: Ident,
    },
    PurgeStream {
        stream: Ident,
    },
    CreateTopic {
        stream: Ident,
        topic: u32,
        partitions: u32,
        name: String,
    },
    UpdateTopic {
        stream: Ident,
        topic: Ident,
        name: String,
    },
    DeleteTopic {
        stream: Ident,
        topic: Ident,
    },
    PurgeTopic {
        stream: Ident,
        topic: Ident,
    },
    CreatePartitions {
        stream: Ident,
        topic: Ident,
        count: u32,
    },
    DeletePartitions {
        stream: Ident,
        topic: Ident,
        count: u32,
    },
    DeleteSegments {
        stream: Ident,
        topic: Ident,
        partition: u32,
        count: u32,
    },
    CreateConsumerGroup {
        stream: Ident,
        topic: Ident,
        group: u32,
        name: String,
    },
    DeleteConsumerGroup {
        stream: Ident,
        topic: Ident,
        group: Ident,
    },
    CreateUser {
        user: u32,
        username: String,
    },
    UpdateUser {
        user: Ident,
        /// The user's new name, when the update renames it.
        username: Option<String>,
    },
    DeleteUser {
        user: Ident,
    },
    ChangePassword {
        user: Ident,
    },
    UpdatePermissions {
        user: Ident,
    },
    CreatePersonalAccessToken {
        name: String,
    },
    DeletePersonalAccessToken {
        name: String,
    },
    /// A known code whose payload does not decode: damaged, or encrypted.
    Undecoded {
        code: u32,
    },
    /// A code 0.6.0 never stores.
    Unknown {
        code: u32,
    },
}

impl Command {
    /// Decodes the payload of a command with this code.
    pub fn decode(code: u32, payload: &[u8]) -> Command {
        if code_name(code).is_none() {
            return Command::Unknown { code };
        }
        let mut r = Reader { bytes: payload };
        decode(code, &mut r).unwrap_or(Command::Undecoded { code })
    }
}

fn decode(code: u32, r: &mut Reader<'_>) -> Option<Command> {
    Some(match code {
        202 => {
            let stream = r.u32()?;
            let mut inner = r.nested()?;
            let name = inner.name()?;
            Command::CreateStream { stream, name }
        }
        204 => Command::UpdateStream {
            stream: r.ident()?,
            name: r.name()?,
        },
        203 => Command::DeleteStream { stream: r.ident()? },
        205 => Command::PurgeStream { stream: r.ident()? },
        302 => {
            let topic = r.u32()?;
            let mut inner = r.nested()?;
            let stream = inner.ident()?;
            let partitions = inner.u32()?;
            // compression u8, message expiry u64, max size u64, replication factor u8
            inner.skip(1 + 8 + 8 + 1)?;
            let name = inner.name()?;
            Command::CreateTopic {
                stream,
                topic,
                partitions,
                name,
            }
        }
        304 => {
            let (stream, topic) = (r.ident()?, r.ident()?);
            r.skip(1 + 8 + 8 + 1)?;
            Command::UpdateTopic {
                stream,
                topic,
                name: r.name()?,
            }
        }
        303 => Command::DeleteTopic {
            stream: r.ident()?,
            topic: r.ident()?,
        },
        305 => Command::PurgeTopic {
            stream: r.ident()?,
            topic: r.ident()?,
        },
        402 => Command::CreatePartitions {
            stream: r.ident()?,
            topic: r.ident()?,
            count: r.u32()?,
        },
        403 => Command::DeletePartitions {
            stream: r.ident()?,
            topic: r.ident()?,
            count: r.u32()?,
        },
        DELETE_SEGMENTS => Command::DeleteSegments {
            stream: r.ident()?,
            topic: r.ident()?,
            partition: r.u32()?,
            count: r.u32()?,
        },
        602 => {
            let group = r.u32()?;
            let mut inner = r.nested()?;
            Command::CreateConsumerGroup {
                stream: inner.ident()?,
                topic: inner.ident()?,
                group,
                name: inner.name()?,
            }
        }
        603 => Command::DeleteConsumerGroup {
            stream: r.ident()?,
            topic: r.ident()?,
            group: r.ident()?,
        },
        33 => {
            let user = r.u32()?;
            let mut inner = r.nested()?;
            Command::CreateUser {
                user,
                username: inner.name()?,
            }
        }
        35 => Command::UpdateUser {
            user: r.ident()?,
            // A flag, then the new name when it is 1 (0.6.0's `UpdateUser::to_bytes`).
            username: match r.u8()? {
                0 => None,
                1 => Some(r.name()?),
                _ => return None,
            },
        },
        34 => Command::DeleteUser { user: r.ident()? },
        37 => Command::ChangePassword { user: r.ident()? },
        36 => Command::UpdatePermissions { user: r.ident()? },
        42 => {
            let hash_len = r.u32()?;
            r.skip(usize::try_from(hash_len).ok()?)?;
            let mut inner = r.nested()?;
            Command::CreatePersonalAccessToken {
                name: inner.name()?,
            }
        }
        43 => Command::DeletePersonalAccessToken { name: r.name()? },
        _ => return None,
    })
}

/// A cursor over untrusted bytes: every read checks its bounds.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A u8-length-prefixed UTF-8 name.
    fn name(&mut self) -> Option<String> {
        let len = self.u8()?;
        let raw = self.take(usize::from(len))?;
        std::str::from_utf8(raw).ok().map(str::to_string)
    }

    /// A u32-length-prefixed inner command (the `…WithId` wrappers).
    fn nested(&mut self) -> Option<Reader<'a>> {
        let len = usize::try_from(self.u32()?).ok()?;
        Some(Reader {
            bytes: self.take(len)?,
        })
    }

    fn ident(&mut self) -> Option<Ident> {
        let kind = self.u8()?;
        let len = self.u8()?;
        let raw = self.take(usize::from(len))?;
        match kind {
            1 => Some(Ident::Id(u32::from_le_bytes(raw.try_into().ok()?))),
            2 if len > 0 => std::str::from_utf8(raw)
                .ok()
                .map(|s| Ident::Name(s.to_string())),
            _ => None,
        }
    }
}

mod display;

#[cfg(test)]
mod tests;
