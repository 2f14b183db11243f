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

use crate::state_command::{code_name, Command};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

/// Bytes before the context: the fixed fields and the checksum.
pub const HEADER_LEN: u64 = 52;
/// The smallest entry: header, context length, code, command length.
pub const MIN_ENTRY_LEN: u64 = HEADER_LEN + 12;
const CHECKSUM_AT: u64 = 44;

/// One whole entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Byte offset in `state/log`.
    pub offset: u64,
    pub len: u64,
    pub index: u64,
    pub version: u32,
    pub timestamp: u64,
    pub user_id: u32,
    pub code: u32,
    pub command: Command,
    /// `None` when checksums cannot be verified (encrypted log); `Some(true)` too for
    /// an entry trusted from the journal without hashing it (see [`parse_guided`]).
    pub checksum_ok: Option<bool>,
    /// The checksum stored in the entry.
    pub checksum: u64,
}

impl Entry {
    /// One line: where it is and what it did.
    pub fn describe(&self) -> String {
        format!(
            "entry index {} at byte {}: {}",
            self.index, self.offset, self.command
        )
    }
}

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

/// An entry whose framing fits in the file.
struct Frame {
    entry: Entry,
    end: u64,
    command_len: u64,
}

/// What AES-256-GCM adds to an encrypted command: a 12-byte nonce and a 16-byte tag.
const CIPHER_OVERHEAD: u64 = 28;

fn u32_at(bytes: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    let raw = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(raw.try_into().ok()?))
}

fn range(bytes: &[u8], from: u64, to: u64) -> Option<&[u8]> {
    bytes.get(usize::try_from(from).ok()?..usize::try_from(to).ok()?)
}

/// Frames the entry at `at`; `None` when it runs past the end of `bytes`. An entry
/// that ends at or before `trusted_to` is not hashed: its checksum counts as right.
fn frame(bytes: &[u8], at: u64, trusted_to: u64) -> Option<Frame> {
    let context_len = u64::from(u32_at(bytes, at + HEADER_LEN)?);
    let code_at = at + HEADER_LEN + 4 + context_len;
    let code = u32_at(bytes, code_at)?;
    let command_len = u64::from(u32_at(bytes, code_at + 4)?);
    let end = code_at + 8 + command_len;
    let payload = range(bytes, code_at + 8, end)?;
    let stored = u64_at(bytes, at + CHECKSUM_AT)?;
    let checksum_ok = if end <= trusted_to {
        true
    } else {
        let mut hasher = Xxh3::new();
        hasher.update(range(bytes, at, at + CHECKSUM_AT)?);
        hasher.update(range(bytes, at + HEADER_LEN, end)?);
        hasher.digest() == stored
    };
    Some(Frame {
        entry: Entry {
            offset: at,
            len: end - at,
            index: u64_at(bytes, at)?,
            version: u32_at(bytes, at + 20)?,
            timestamp: u64_at(bytes, at + 32)?,
            user_id: u32_at(bytes, at + 40)?,
            code,
            command: Command::decode(code, payload),
            checksum_ok: Some(checksum_ok),
            checksum: stored,
        },
        end,
        command_len,
    })
}

/// The entries whose framing holds from byte 0, and where framing stops (entries
/// ending by `trusted_to` not hashed).
fn frames(bytes: &[u8], trusted_to: u64) -> (Vec<Frame>, u64) {
    let end = nonzero_end(bytes);
    let mut out = Vec::new();
    let mut at = 0;
    while at < end {
        let Some(f) = frame(bytes, at, trusted_to) else {
            break;
        };
        at = f.end;
        out.push(f);
    }
    (out, at)
}

/// Where the zero bytes the file ends with (if any) begin.
fn nonzero_end(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |p| p as u64 + 1)
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

/// What a torn entry would need to be whole, as far as its lengths can be read.
fn torn_need(bytes: &[u8], at: u64) -> String {
    let Some(context_len) = u32_at(bytes, at + HEADER_LEN) else {
        return format!("a header needs {} bytes", HEADER_LEN + 4);
    };
    let code_at = at + HEADER_LEN + 4 + u64::from(context_len);
    match u32_at(bytes, code_at + 4) {
        Some(command_len) => format!(
            "the entry needs {}",
            code_at + 8 + u64::from(command_len) - at
        ),
        None => format!("the entry needs at least {}", code_at + 8 - at),
    }
}

/// The command code of the entry at `at`, when the bytes reach it.
fn torn_code(bytes: &[u8], at: u64) -> Option<u32> {
    let context = u32_at(bytes, at + HEADER_LEN)?;
    u32_at(bytes, at + HEADER_LEN + 4 + u64::from(context))
}

/// What the start of a torn entry says about it.
fn describe_torn(bytes: &[u8], at: u64) -> String {
    let index = u64_at(bytes, at).map_or("?".to_string(), |i| i.to_string());
    let code = torn_code(bytes, at).map_or("command not reached".to_string(), |code| {
        code_name(code).map_or(format!("unknown code {code}"), |n| n.to_string())
    });
    format!("entry index {index} at byte {at} [torn]: {code}")
}

/// Descriptions of the valid entries at or after `from`: framing is followed while it
/// holds, and resynchronised past anything that is not a valid entry.
fn collect_after(
    bytes: &[u8],
    from: u64,
    expected: u64,
    version: Option<u32>,
    encrypted: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = from;
    let mut expected = expected;
    while let Some(f) = resync(bytes, at, expected, version, encrypted) {
        out.push(f.entry.describe());
        expected = f.entry.index.saturating_add(1);
        at = f.end;
    }
    out
}

/// The first plausible entry at or after `from`: its index at least `expected` (and
/// not absurdly far beyond), its framing whole, and its checksum valid (or, encrypted,
/// its version that of the log's first entry).
fn resync(
    bytes: &[u8],
    from: u64,
    expected: u64,
    version: Option<u32>,
    encrypted: bool,
) -> Option<Frame> {
    let len = bytes.len() as u64;
    let max_index = expected.saturating_add(len / MIN_ENTRY_LEN + 1);
    // An entry lying wholly in the zeros the file ends with would be all zeros.
    let end = nonzero_end(bytes);
    let mut at = from;
    while at < end && at.saturating_add(MIN_ENTRY_LEN) <= len {
        let index = u64_at(bytes, at)?;
        if (expected..=max_index).contains(&index) {
            if let Some(f) = frame(bytes, at, 0) {
                let plausible = if encrypted {
                    version.is_some_and(|v| v == f.entry.version)
                } else {
                    f.entry.checksum_ok == Some(true)
                };
                if plausible {
                    return Some(f);
                }
            }
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests;
