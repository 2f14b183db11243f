//! The server's metadata log, `state/log`: parsing and verification.
//!
//! iggy-server 0.6.0 appends one entry per metadata change (users, streams, topics,
//! partitions, tokens, consumer groups) and replays them all at start; any entry it
//! cannot read stops it (`CannotReadFile` for a torn tail, `InvalidStateEntryChecksum`,
//! `StateFileCorrupted` for an index out of sequence). Layout of an entry, all
//! little-endian (apache/iggy `server-0.6.0`, `core/server/src/state/file.rs`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | index u64 |
//! | 8..16 | term u64 |
//! | 16..20 | leader id u32 |
//! | 20..24 | version u32 (0.6.0 writes 6000) |
//! | 24..32 | flags u64 |
//! | 32..40 | timestamp u64 (µs) |
//! | 40..44 | user id u32 |
//! | 44..52 | checksum u64 |
//! | 52..56 | context length u32, then the context |
//! | then | command code u32, command length u32, then the command |
//!
//! The checksum is XXH3-64 (seed 0) of every byte of the entry except the checksum
//! field itself, with the command in plaintext (`state/entry.rs`,
//! `calculate_checksum`): with `system.encryption` on, the stored command is encrypted
//! and the checksum cannot be verified without the key, which we never read. The
//! server checks indexes from the third entry on (each must be the previous + 1).
//!
//! [`parse`] never panics on any bytes. It returns the entries before the first damage
//! and names that damage with its byte offset: a torn last entry (or a zero-filled
//! tail), a corrupt entry (checksum), an index gap. Damage is a crash tail only when no
//! valid entry can be found after it (resynchronising byte by byte). A log that looks
//! encrypted (see `looks_encrypted`) has its framing and indexes verified only.

mod frame;
mod rewrite;

pub use frame::{Entry, HEADER_LEN, MIN_ENTRY_LEN};
pub use rewrite::without_entries;

use crate::state_command::Command;
use frame::{
    collect_after, describe_torn, frames, nonzero_end, resync, torn_code, torn_need, Frame,
    CIPHER_OVERHEAD,
};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DamageKind {
    /// The last entry ends past the end of the file.
    Torn,
    /// Only zero bytes from here to the end.
    ZeroTail,
    /// A whole entry whose checksum fails.
    Corrupt,
    /// An entry whose index does not follow the previous one.
    Gap,
    /// A whole, valid entry that stops iggy-server 0.6.0 at start: it panics replaying
    /// it (it names a stream, topic, partition, consumer group or user that the
    /// entries before it do not leave), or its reader rejects the command (see
    /// [`crate::metadata`]).
    Unreplayable,
}

/// The first damage in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub kind: DamageKind,
    /// Where the damaged entry (or the zero fill) starts: the log is cut here.
    pub offset: u64,
    /// No valid entry follows: what a crash leaves at the end of the log.
    pub tail_only: bool,
    pub detail: String,
    /// What the entries at or after the damage did, as far as they decode.
    pub affected: Vec<String>,
    /// The command code of the damaged entry, when the bytes reach it.
    pub code: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateLog {
    pub len: u64,
    /// Every entry before the first damage, in order.
    pub entries: Vec<Entry>,
    pub damage: Option<Damage>,
    /// Checksums could not be verified: the commands are encrypted.
    pub encrypted: bool,
}

impl StateLog {
    /// Where a repair cuts the log: the first damage, or its end.
    pub fn valid_len(&self) -> u64 {
        self.damage.as_ref().map_or(self.len, |d| d.offset)
    }
}

/// Parses and verifies a whole `state/log`.
pub fn parse(bytes: &[u8]) -> StateLog {
    let (frames, framed_to) = frames(bytes, 0);
    parse_frames(bytes, frames, framed_to)
}

/// How far a journal says the log was verified (see [`journal::StateLogMark`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trusted {
    pub valid_len: u64,
    pub last_index: u64,
    pub last_checksum: u64,
}

impl From<journal::StateLogMark> for Trusted {
    fn from(m: journal::StateLogMark) -> Self {
        Self {
            valid_len: m.valid_len,
            last_index: m.last_index,
            last_checksum: m.last_checksum,
        }
    }
}

/// A parse that may trust what was verified before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuidedParse {
    pub log: StateLog,
    /// Bytes whose entries were taken as verified, not hashed again.
    pub bytes_trusted: u64,
    /// The log is shorter than the `valid_len` it was verified to (this length, then):
    /// whole entries were removed, which neither the server (it only appends) nor a
    /// crash within one boot does.
    pub shrunk_from: Option<u64>,
}

/// Parses `bytes` like [`parse`], but with `trusted` the entries up to
/// `trusted.valid_len` are framed (their commands are needed for the metadata) and not
/// hashed, provided an entry still ends exactly there with the trusted index and
/// stored checksum. Otherwise (the log was rewritten) the whole log is verified. A log
/// shorter than `trusted.valid_len` is verified whole and reported as shrunk.
pub fn parse_guided(bytes: &[u8], trusted: Option<Trusted>) -> GuidedParse {
    let len = bytes.len() as u64;
    let whole = |shrunk_from| GuidedParse {
        log: parse(bytes),
        bytes_trusted: 0,
        shrunk_from,
    };
    let Some(t) = trusted.filter(|t| t.valid_len > 0) else {
        return whole(None);
    };
    if len < t.valid_len {
        return whole(Some(t.valid_len));
    }
    let (frames, framed_to) = frames(bytes, t.valid_len);
    let boundary = frames.iter().find(|f| f.end >= t.valid_len);
    let holds = boundary.is_some_and(|f| {
        f.end == t.valid_len && f.entry.index == t.last_index && f.entry.checksum == t.last_checksum
    });
    if !holds {
        return whole(None);
    }
    GuidedParse {
        log: parse_frames(bytes, frames, framed_to),
        bytes_trusted: t.valid_len,
        shrunk_from: None,
    }
}

/// Judges framed entries: the first damage, and what follows it.
fn parse_frames(bytes: &[u8], mut frames: Vec<Frame>, framed_to: u64) -> StateLog {
    let len = bytes.len() as u64;
    let encrypted = looks_encrypted(bytes, &frames, framed_to);
    if encrypted {
        for f in &mut frames {
            f.entry.checksum_ok = None;
        }
    }
    let version = frames.first().map(|f| f.entry.version);
    let mut entries: Vec<Entry> = Vec::new();
    let mut damage = None;
    let mut frames = frames.into_iter();
    for f in frames.by_ref() {
        let prev = entries.last().map(|e| e.index);
        let kind = if f.entry.checksum_ok == Some(false) {
            DamageKind::Corrupt
        } else if entries.len() >= 2 && prev.and_then(|p| p.checked_add(1)) != Some(f.entry.index) {
            DamageKind::Gap
        } else {
            entries.push(f.entry);
            continue;
        };
        let expected = prev.map_or(0, |p| p.saturating_add(1));
        let detail = match kind {
            DamageKind::Corrupt => format!(
                "entry index {} ({} bytes) fails its checksum",
                f.entry.index, f.entry.len
            ),
            _ => format!(
                "entry index {} follows index {}: expected {expected}",
                f.entry.index,
                prev.unwrap_or(0)
            ),
        };
        let mut affected = vec![format!("{} [damaged]", f.entry.describe())];
        affected.extend(collect_after(bytes, f.end, expected, version, encrypted));
        let tail_only = kind == DamageKind::Corrupt
            && resync(bytes, f.entry.offset + 1, expected, version, encrypted).is_none();
        damage = Some(Damage {
            kind,
            offset: f.entry.offset,
            tail_only,
            detail,
            affected,
            code: Some(f.entry.code),
        });
        break;
    }
    if damage.is_none() && framed_to < len {
        let expected = entries.last().map_or(0, |e| e.index.saturating_add(1));
        let (kind, detail, mut affected) = if framed_to >= nonzero_end(bytes) {
            let n = len - framed_to;
            let detail = format!("{n} zero bytes after the last whole entry");
            (DamageKind::ZeroTail, detail, Vec::new())
        } else {
            let detail = format!(
                "the last entry is cut short: {} bytes where {}",
                len - framed_to,
                torn_need(bytes, framed_to)
            );
            (
                DamageKind::Torn,
                detail,
                vec![describe_torn(bytes, framed_to)],
            )
        };
        let later = collect_after(bytes, framed_to + 1, expected, version, encrypted);
        let tail_only = later.is_empty();
        affected.extend(later);
        damage = Some(Damage {
            kind,
            offset: framed_to,
            tail_only,
            detail,
            affected,
            code: torn_code(bytes, framed_to),
        });
    }
    StateLog {
        len,
        entries,
        damage,
        encrypted,
    }
}

/// Whether the whole entries look like those of a log written with
/// `system.encryption` on: every checksum fails (it covers the plaintext), every
/// command is long enough to hold a nonce and a tag, some command does not decode,
/// and yet the framing, the indexes and the version field are all consistent, and no
/// entry hides after a torn end. A corrupt plaintext log fails some of these: its
/// valid entries pass their checksums, and a broken length misframes what follows.
fn looks_encrypted(bytes: &[u8], frames: &[Frame], framed_to: u64) -> bool {
    let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
        return false;
    };
    let consistent = frames.iter().enumerate().all(|(i, f)| {
        f.entry.checksum_ok == Some(false)
            && f.command_len >= CIPHER_OVERHEAD
            && f.entry.version == first.entry.version
            && (i < 2
                || frames
                    .get(i - 1)
                    .is_some_and(|p| p.entry.index.checked_add(1) == Some(f.entry.index)))
    });
    consistent
        && frames
            .iter()
            .any(|f| matches!(f.entry.command, Command::Undecoded { .. }))
        && (framed_to >= nonzero_end(bytes)
            || resync(
                bytes,
                framed_to + 1,
                last.entry.index.saturating_add(1),
                Some(first.entry.version),
                true,
            )
            .is_none())
}

#[cfg(test)]
mod tests;
