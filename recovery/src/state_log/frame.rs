//! Reading `state/log` entries out of bytes: the framing, the checksum, the
//! resynchronising search for the next valid entry, what a torn entry's first bytes
//! say. No judgment: the parent module decides what the entries and the damage mean.
//! Apart so that the judging reads without the byte arithmetic.

use crate::state_command::{code_name, Command};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

/// Bytes before the context: the fixed fields and the checksum.
pub const HEADER_LEN: u64 = 52;
/// The smallest entry: header, context length, code, command length.
pub const MIN_ENTRY_LEN: u64 = HEADER_LEN + 12;
pub(super) const CHECKSUM_AT: u64 = 44;

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
    /// an entry trusted from the journal without hashing it (see [`parse_guided`](super::parse_guided)).
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

/// An entry whose framing fits in the file.
pub(super) struct Frame {
    pub(super) entry: Entry,
    pub(super) end: u64,
    pub(super) command_len: u64,
}

/// What AES-256-GCM adds to an encrypted command: a 12-byte nonce and a 16-byte tag.
pub(super) const CIPHER_OVERHEAD: u64 = 28;

pub(super) fn u32_at(bytes: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

pub(super) fn u64_at(bytes: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    let raw = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(raw.try_into().ok()?))
}

pub(super) fn range(bytes: &[u8], from: u64, to: u64) -> Option<&[u8]> {
    bytes.get(usize::try_from(from).ok()?..usize::try_from(to).ok()?)
}

/// Frames the entry at `at`; `None` when it runs past the end of `bytes`. An entry
/// that ends at or before `trusted_to` is not hashed: its checksum counts as right.
pub(super) fn frame(bytes: &[u8], at: u64, trusted_to: u64) -> Option<Frame> {
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
pub(super) fn frames(bytes: &[u8], trusted_to: u64) -> (Vec<Frame>, u64) {
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
pub(super) fn nonzero_end(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |p| p as u64 + 1)
}

/// What a torn entry would need to be whole, as far as its lengths can be read.
pub(super) fn torn_need(bytes: &[u8], at: u64) -> String {
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
pub(super) fn torn_code(bytes: &[u8], at: u64) -> Option<u32> {
    let context = u32_at(bytes, at + HEADER_LEN)?;
    u32_at(bytes, at + HEADER_LEN + 4 + u64::from(context))
}

/// What the start of a torn entry says about it.
pub(super) fn describe_torn(bytes: &[u8], at: u64) -> String {
    let index = u64_at(bytes, at).map_or("?".to_string(), |i| i.to_string());
    let code = torn_code(bytes, at).map_or("command not reached".to_string(), |code| {
        code_name(code).map_or(format!("unknown code {code}"), |n| n.to_string())
    });
    format!("entry index {index} at byte {at} [torn]: {code}")
}

/// Descriptions of the valid entries at or after `from`: framing is followed while it
/// holds, and resynchronised past anything that is not a valid entry.
pub(super) fn collect_after(
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
pub(super) fn resync(
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
