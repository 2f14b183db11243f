//! `state/log`, the server's metadata log, as iggy-server 0.6.0 writes it: written
//! here independently of the product crates (from apache/iggy `server-0.6.0`,
//! `core/server/src/state/`), for data directories whose metadata names exactly their
//! folders, and for the state-log fault injectors.
//!
//! An entry: index u64, term u64, leader id u32, version u32 (6000 for 0.6.0), flags
//! u64, timestamp u64, user id u32, checksum u64, context length u32 and context (empty
//! here), command code u32, command length u32 and command; little-endian. The
//! checksum is XXH3-64 of the entry without its checksum field. The commands written:
//! create user (code 33), create personal access token (42), create stream (202),
//! create topic (302), create partitions (402), delete segments (503), with the
//! layouts of `state/models.rs` and the `iggy_common` commands.

use xxhash_rust::xxh3::xxh3_64;

/// The `version` field 0.6.0 writes.
pub const VERSION_0_6_0: u32 = 6000;
/// Bytes before the context length: the fixed fields and the checksum.
pub const ENTRY_HEADER: usize = 52;
const CHECKSUM_AT: usize = 44;

pub const CREATE_USER: u32 = 33;
pub const CREATE_PERSONAL_ACCESS_TOKEN: u32 = 42;
pub const CREATE_STREAM: u32 = 202;
pub const CREATE_TOPIC: u32 = 302;
pub const CREATE_PARTITIONS: u32 = 402;
pub const DELETE_SEGMENTS: u32 = 503;

/// One entry before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    pub index: u64,
    pub timestamp: u64,
    pub user_id: u32,
    pub code: u32,
    pub command: Vec<u8>,
}

/// The bytes of one entry, checksum included.
pub fn encode_entry(e: &StateEntry) -> Vec<u8> {
    let mut b = Vec::with_capacity(ENTRY_HEADER + 12 + e.command.len());
    b.extend_from_slice(&e.index.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // term
    b.extend_from_slice(&0u32.to_le_bytes()); // leader id
    b.extend_from_slice(&VERSION_0_6_0.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // flags
    b.extend_from_slice(&e.timestamp.to_le_bytes());
    b.extend_from_slice(&e.user_id.to_le_bytes());
    b.extend_from_slice(&[0; 8]); // checksum, below
    b.extend_from_slice(&0u32.to_le_bytes()); // empty context
    b.extend_from_slice(&e.code.to_le_bytes());
    b.extend_from_slice(&(e.command.len() as u32).to_le_bytes());
    b.extend_from_slice(&e.command);
    reseal(&mut b);
    b
}

/// Recomputes the checksum of the whole entry `b` after a change.
pub fn reseal(b: &mut [u8]) {
    let mut covered = b[..CHECKSUM_AT].to_vec();
    covered.extend_from_slice(&b[ENTRY_HEADER..]);
    let sum = xxh3_64(&covered).to_le_bytes();
    b[CHECKSUM_AT..ENTRY_HEADER].copy_from_slice(&sum);
}

/// The bytes 0.6.0 writes for `e` with `system.encryption` on: the checksum of the
/// plaintext entry, and the command replaced by a 12-byte nonce, the ciphertext and
/// a 16-byte tag (AES-256-GCM). The cipher here is a stand-in (XOR): only the layout
/// matters to a tool that never holds the key.
pub fn encrypt_entry(e: &StateEntry) -> Vec<u8> {
    let plain = encode_entry(e);
    let mut b = plain[..ENTRY_HEADER + 8].to_vec();
    b.extend_from_slice(&(e.command.len() as u32 + 28).to_le_bytes());
    b.extend((0..12u8).map(|i| i.wrapping_mul(31).wrapping_add(7)));
    b.extend(e.command.iter().map(|c| c ^ 0xa5));
    b.extend((0..16u8).map(|i| i.wrapping_mul(17).wrapping_add(3)));
    b
}

/// The bytes of a whole log.
pub fn encode_log(entries: &[StateEntry]) -> Vec<u8> {
    entries.iter().flat_map(encode_entry).collect()
}

/// An entry found by following the framing of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramedEntry {
    pub start: usize,
    pub end: usize,
    pub index: u64,
    pub code: u32,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Every entry of a log whose framing is whole to its end; an error otherwise.
pub fn frame_entries(bytes: &[u8]) -> Result<Vec<FramedEntry>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let bad = || format!("state/log: entry at byte {at} runs past the end");
        let context = u32_at(bytes, at + ENTRY_HEADER).ok_or_else(bad)? as usize;
        let code_at = at + ENTRY_HEADER + 4 + context;
        let code = u32_at(bytes, code_at).ok_or_else(bad)?;
        let len = u32_at(bytes, code_at + 4).ok_or_else(bad)? as usize;
        let end = code_at + 8 + len;
        if end > bytes.len() {
            return Err(bad());
        }
        let index = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        out.push(FramedEntry {
            start: at,
            end,
            index,
            code,
        });
        at = end;
    }
    Ok(out)
}

fn name(b: &mut Vec<u8>, s: &str) {
    b.push(u8::try_from(s.len()).expect("names under 256 bytes"));
    b.extend_from_slice(s.as_bytes());
}

/// `…WithId` wrapper: id u32, then the inner command with its u32 length.
fn with_id(id: u32, inner: &[u8]) -> Vec<u8> {
    let mut b = id.to_le_bytes().to_vec();
    b.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    b.extend_from_slice(inner);
    b
}

/// Create-user command: `username`, a password hash, active, no permissions.
pub fn create_user(id: u32, username: &str) -> Vec<u8> {
    let mut inner = Vec::new();
    name(&mut inner, username);
    name(&mut inner, "$argon2id$v=19$m=19456,t=2,p=1$harness$harness");
    inner.extend_from_slice(&[1, 0]); // status active, no permissions
    with_id(id, &inner)
}

pub fn create_stream(id: u32, stream_name: &str) -> Vec<u8> {
    let mut inner = Vec::new();
    name(&mut inner, stream_name);
    with_id(id, &inner)
}

/// Create-topic command in the stream with numeric id `stream`.
pub fn create_topic(stream: u32, id: u32, partitions: u32, topic_name: &str) -> Vec<u8> {
    let mut inner = vec![1, 4];
    inner.extend_from_slice(&stream.to_le_bytes());
    inner.extend_from_slice(&partitions.to_le_bytes());
    inner.push(1); // compression: none
    inner.extend_from_slice(&u64::MAX.to_le_bytes()); // never expire
    inner.extend_from_slice(&u64::MAX.to_le_bytes()); // unlimited size
    inner.push(1); // replication factor
    name(&mut inner, topic_name);
    with_id(id, &inner)
}

/// Create-partitions command: `count` partitions more in a topic (numeric ids). The
/// server numbers them from the topic's highest partition id + 1.
pub fn create_partitions(stream: u32, topic: u32, count: u32) -> Vec<u8> {
    let mut b = vec![1, 4];
    b.extend_from_slice(&stream.to_le_bytes());
    b.extend_from_slice(&[1, 4]);
    b.extend_from_slice(&topic.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    b
}

pub fn create_personal_access_token(token_name: &str) -> Vec<u8> {
    let hash = "0123456789abcdef0123456789abcdef";
    let mut b = (hash.len() as u32).to_le_bytes().to_vec();
    b.extend_from_slice(hash.as_bytes());
    let mut inner = Vec::new();
    name(&mut inner, token_name);
    inner.extend_from_slice(&u64::MAX.to_le_bytes());
    b.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    b.extend_from_slice(&inner);
    b
}

/// The entries 0.6.0 would have written for these partitions (stream, topic,
/// partition): the root user, each stream, each topic with as many partitions as its
/// highest partition id + 1, then one create-user entry per extra user and one
/// personal access token per name. Indexes from 0, one microsecond apart.
pub fn metadata_entries(
    partitions: &[(u32, u32, u32)],
    users: &[String],
    tokens: &[String],
    base_timestamp: u64,
) -> Vec<StateEntry> {
    let mut commands = vec![(CREATE_USER, create_user(0, "iggy"))];
    let mut streams: Vec<u32> = partitions.iter().map(|p| p.0).collect();
    streams.sort_unstable();
    streams.dedup();
    for s in streams {
        commands.push((CREATE_STREAM, create_stream(s, &format!("stream-{s}"))));
        let mut topics: Vec<u32> = partitions
            .iter()
            .filter(|p| p.0 == s)
            .map(|p| p.1)
            .collect();
        topics.sort_unstable();
        topics.dedup();
        for t in topics {
            let count = partitions
                .iter()
                .filter(|p| (p.0, p.1) == (s, t))
                .map(|p| p.2 + 1)
                .max()
                .unwrap_or(0);
            commands.push((
                CREATE_TOPIC,
                create_topic(s, t, count, &format!("topic-{t}")),
            ));
        }
    }
    for (i, u) in users.iter().enumerate() {
        commands.push((CREATE_USER, create_user(i as u32 + 1, u)));
    }
    for t in tokens {
        commands.push((
            CREATE_PERSONAL_ACCESS_TOKEN,
            create_personal_access_token(t),
        ));
    }
    commands
        .into_iter()
        .enumerate()
        .map(|(i, (code, command))| StateEntry {
            index: i as u64,
            timestamp: base_timestamp + i as u64,
            user_id: 0,
            code,
            command,
        })
        .collect()
}

/// Appends to `data_dir/state/log` the entries the server writes when partition
/// `new` is created next to the partitions `existing` (stream, topic, partition): a
/// stream and a topic when they are new, else the partitions up to `new`.
pub fn append_partition(
    data_dir: &std::path::Path,
    existing: &[(u32, u32, u32)],
    new: (u32, u32, u32),
) -> std::io::Result<()> {
    let path = data_dir.join("state/log");
    let mut bytes = std::fs::read(&path)?;
    let next = frame_entries(&bytes)
        .map_err(std::io::Error::other)?
        .last()
        .map_or(0, |e| e.index + 1);
    let (s, t, p) = new;
    let mut commands = Vec::new();
    if !existing.iter().any(|e| e.0 == s) {
        commands.push((CREATE_STREAM, create_stream(s, &format!("stream-{s}"))));
    }
    match existing
        .iter()
        .filter(|e| (e.0, e.1) == (s, t))
        .map(|e| e.2)
        .max()
    {
        None => commands.push((
            CREATE_TOPIC,
            create_topic(s, t, p + 1, &format!("topic-{t}")),
        )),
        Some(last) if p > last => {
            commands.push((CREATE_PARTITIONS, create_partitions(s, t, p - last)));
        }
        Some(_) => {}
    }
    for (i, (code, command)) in commands.into_iter().enumerate() {
        bytes.extend(encode_entry(&StateEntry {
            index: next + i as u64,
            timestamp: 1_760_000_000_000_000 + next + i as u64,
            user_id: 0,
            code,
            command,
        }));
    }
    std::fs::write(&path, bytes)
}

/// Appends to `data_dir/state/log` a personal access token entry recorded for
/// `user_id`, the way 0.6.0 records a token under its writer's number; for a user
/// no entry creates, the server panics replaying it at start. Returns the entry's
/// byte offset.
pub fn append_token(
    data_dir: &std::path::Path,
    user_id: u32,
    token_name: &str,
) -> std::io::Result<u64> {
    let command = create_personal_access_token(token_name);
    append_entry(data_dir, user_id, CREATE_PERSONAL_ACCESS_TOKEN, command)
}

/// Appends to `data_dir/state/log` the entry 0.6.0 writes for a delete-segments
/// request (numeric ids), which its own reader rejects at the next start. Returns
/// the entry's byte offset.
pub fn append_delete_segments(
    data_dir: &std::path::Path,
    partition: (u32, u32, u32),
    count: u32,
) -> std::io::Result<u64> {
    append_entry(
        data_dir,
        0,
        DELETE_SEGMENTS,
        delete_segments(partition, count),
    )
}

/// Delete-segments command: `count` segments of a partition (numeric ids).
pub fn delete_segments((stream, topic, partition): (u32, u32, u32), count: u32) -> Vec<u8> {
    let mut command = vec![1, 4];
    command.extend_from_slice(&stream.to_le_bytes());
    command.extend_from_slice(&[1, 4]);
    command.extend_from_slice(&topic.to_le_bytes());
    command.extend_from_slice(&partition.to_le_bytes());
    command.extend_from_slice(&count.to_le_bytes());
    command
}

/// Appends to the encrypted log `bytes` (entries of `encrypt_entry`) a
/// delete-segments entry of partition 0/0/0, encrypted the same way; returns its
/// byte offset.
pub fn append_encrypted_delete_segments(bytes: &mut Vec<u8>) -> Result<u64, String> {
    let offset = bytes.len() as u64;
    let next = frame_entries(bytes)?.last().map_or(0, |e| e.index + 1);
    bytes.extend(encrypt_entry(&StateEntry {
        index: next,
        timestamp: 1_760_000_000_000_000 + next,
        user_id: 0,
        code: DELETE_SEGMENTS,
        command: delete_segments((0, 0, 0), 1),
    }));
    Ok(offset)
}

/// Appends one entry, numbered after the last, written on behalf of `user_id`.
fn append_entry(
    data_dir: &std::path::Path,
    user_id: u32,
    code: u32,
    command: Vec<u8>,
) -> std::io::Result<u64> {
    let path = data_dir.join("state/log");
    let mut bytes = std::fs::read(&path)?;
    let offset = bytes.len() as u64;
    let next = frame_entries(&bytes)
        .map_err(std::io::Error::other)?
        .last()
        .map_or(0, |e| e.index + 1);
    bytes.extend(encode_entry(&StateEntry {
        index: next,
        timestamp: 1_760_000_000_000_000 + next,
        user_id,
        code,
        command,
    }));
    std::fs::write(&path, bytes)?;
    Ok(offset)
}
