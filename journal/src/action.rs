//! Repair actions as they are written into the journal.
//!
//! A `RepairIntent` record carries one of these, with enough detail that a rerun can
//! tell whether the action already happened (redo) and that `restore` can undo it.
//! Paths are relative to the data directory so a moved data directory stays valid.

use crate::key::{ByteRange, PartitionId, SegmentKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifier of one repair: also the name of its folder under `quarantine/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RepairId(pub u64);

impl fmt::Display for RepairId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{:08}", self.0)
    }
}

/// One change to the data directory. Every variant first copies what it removes into
/// quarantine, so no variant destroys bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepairAction {
    /// Cut `segment`'s `.log` from `original_len` down to `keep_len` bytes (the end of
    /// its last whole valid message).
    TruncateLog {
        segment: SegmentKey,
        keep_len: u64,
        original_len: u64,
    },
    /// Cut `segment`'s `.index` from `original_len` down to `keep_len` bytes: its
    /// entries up to there match the log, only entries for messages that are gone (or
    /// half an entry) follow. Shrinking leaves no zeroed entries, unlike a rewrite.
    TruncateIndex {
        segment: SegmentKey,
        keep_len: u64,
        original_len: u64,
    },
    /// Replace `segment`'s `.index` (or create it, when `original_len` is `None`) with
    /// the index rebuilt from the `.log`: `new_len` bytes whose XXH3-64 is `new_xxh3`.
    RewriteIndex {
        segment: SegmentKey,
        original_len: Option<u64>,
        new_len: u64,
        new_xxh3: u64,
    },
    /// Move a whole file (`path` relative to the data directory, `len` bytes) into
    /// quarantine: an orphan, half of a broken pair, an empty newest pair, or a segment
    /// after a point-in-time cut.
    QuarantineFile { path: String, len: u64 },
    /// Put back what repair `repair` took out (an operator's `restore`).
    Restore { repair: RepairId },
    /// Create an empty folder (`path` relative to the data directory) the server
    /// needs: iggy-server 0.6.0 refuses to start without a partition's
    /// `offsets/consumers` and `offsets/groups`. New variants go last: bincode
    /// numbers variants by position.
    CreateDir { path: String },
    /// Salvage: replace the files `originals` of `partition` (each quarantined whole
    /// first) with `segments`, new segments laid out from the valid messages found in
    /// them. The new files are written under temporary names and renamed into place.
    Relay {
        partition: PartitionId,
        originals: Vec<RelayOriginal>,
        segments: Vec<RelaySegment>,
    },
    /// Cut the server's metadata log `state/log` from `original_len` down to
    /// `keep_len` bytes (the end of its last whole valid entry).
    TruncateStateLog { keep_len: u64, original_len: u64 },
    /// Replace the consumer or group offset file `path` (relative to the data
    /// directory, 8 bytes), which holds `stored`, an offset past its partition's last
    /// message, with one holding `reset_to`, that last message's offset: iggy-server
    /// 0.6.0 serves a consumer from the offset after the stored one, so it would skip
    /// as many new messages. Asked for by the operator (`--reset-offsets-ahead`).
    ResetConsumerOffset {
        path: String,
        stored: u64,
        reset_to: u64,
    },
    /// Replace `state/log` (`original_len` bytes) with its first `keep_len` bytes
    /// (its whole entries: a crash tail after them is cut too) without the entries
    /// starting at the byte offsets `entries`, the later ones renumbered and resealed:
    /// `new_len` bytes whose XXH3-64 is `new_xxh3`. For entries iggy-server 0.6.0
    /// writes but cannot read back (`delete-segments`), whose replay changes nothing.
    DropStateLogEntries {
        entries: Vec<u64>,
        keep_len: u64,
        original_len: u64,
        new_len: u64,
        new_xxh3: u64,
    },
}

/// The server's metadata log, relative to the data directory.
pub const STATE_LOG: &str = "state/log";

/// A file a relay replaces, as the planner found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayOriginal {
    /// Path relative to the data directory.
    pub path: String,
    pub len: u64,
    pub xxh3: u64,
}

/// A segment a relay writes: its log is the concatenation of `pieces`, its index is
/// rebuilt from that log and has one entry per message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaySegment {
    pub start_offset: u64,
    pub messages: u64,
    pub log_len: u64,
    pub pieces: Vec<RelayPiece>,
}

/// Bytes of one original file (an index into the relay's `originals`) copied as they
/// are: one or more whole messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPiece {
    pub source: u32,
    pub range: ByteRange,
}

/// What a truncation keeps of a file: the three cuts (log, index, state log) are
/// saved, applied and costed alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    pub keep_len: u64,
    pub original_len: u64,
}

impl RepairAction {
    /// The lengths of a truncation; `None` for every other action.
    pub fn cut(&self) -> Option<Cut> {
        match *self {
            RepairAction::TruncateLog {
                keep_len,
                original_len,
                ..
            }
            | RepairAction::TruncateIndex {
                keep_len,
                original_len,
                ..
            }
            | RepairAction::TruncateStateLog {
                keep_len,
                original_len,
            } => Some(Cut {
                keep_len,
                original_len,
            }),
            _ => None,
        }
    }

    /// The file this action changes, relative to the data directory.
    pub fn rel_path(&self) -> String {
        match self {
            RepairAction::TruncateLog { segment, .. } => segment.rel_log(),
            RepairAction::TruncateIndex { segment, .. } => segment.rel_index(),
            RepairAction::RewriteIndex { segment, .. } => segment.rel_index(),
            RepairAction::QuarantineFile { path, .. }
            | RepairAction::ResetConsumerOffset { path, .. } => path.clone(),
            RepairAction::Restore { repair } => format!("(files of repair {repair})"),
            RepairAction::CreateDir { path } => path.clone(),
            RepairAction::Relay { partition, .. } => partition.rel_dir(),
            RepairAction::TruncateStateLog { .. } | RepairAction::DropStateLogEntries { .. } => {
                STATE_LOG.to_string()
            }
        }
    }
}

impl fmt::Display for RepairAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepairAction::TruncateLog {
                segment,
                keep_len,
                original_len,
            } => write!(
                f,
                "truncate {} from {} to {} bytes",
                segment.rel_log(),
                original_len,
                keep_len
            ),
            RepairAction::TruncateIndex {
                segment,
                keep_len,
                original_len,
            } => write!(
                f,
                "truncate {} from {} to {} bytes",
                segment.rel_index(),
                original_len,
                keep_len
            ),
            RepairAction::RewriteIndex {
                segment,
                original_len,
                new_len,
                ..
            } => match original_len {
                Some(old) => write!(
                    f,
                    "rewrite {} ({} -> {} bytes)",
                    segment.rel_index(),
                    old,
                    new_len
                ),
                None => write!(f, "create {} ({} bytes)", segment.rel_index(), new_len),
            },
            RepairAction::QuarantineFile { path, len } => {
                write!(f, "quarantine {} ({} bytes)", path, len)
            }
            RepairAction::Restore { repair } => write!(f, "restore what repair {repair} took out"),
            RepairAction::CreateDir { path } => write!(f, "create folder {path}"),
            RepairAction::Relay {
                partition,
                originals,
                segments,
            } => write!(
                f,
                "re-lay {}: {} files ({} bytes) replaced by {} segments of {} messages",
                partition.rel_dir(),
                originals.len(),
                originals.iter().map(|o| o.len).sum::<u64>(),
                segments.len(),
                segments.iter().map(|s| s.messages).sum::<u64>()
            ),
            RepairAction::TruncateStateLog {
                keep_len,
                original_len,
            } => write!(
                f,
                "truncate {STATE_LOG} from {original_len} to {keep_len} bytes"
            ),
            RepairAction::ResetConsumerOffset {
                path,
                stored,
                reset_to,
            } => write!(f, "reset {path} from offset {stored} to {reset_to}"),
            RepairAction::DropStateLogEntries {
                entries,
                keep_len,
                original_len,
                new_len,
                ..
            } => write!(
                f,
                "drop {} entr{} of {STATE_LOG} that iggy-server 0.6.0 cannot read back \
                 (at byte{} {}){}, renumbering the later ones: from {original_len} to \
                 {new_len} bytes",
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" },
                if entries.len() == 1 { "" } else { "s" },
                listed(entries),
                if keep_len < original_len {
                    format!(" and cut its crash tail at byte {keep_len}")
                } else {
                    String::new()
                }
            ),
        }
    }
}

/// The byte offsets of dropped entries as a report lists them: the first few, then
/// how many more (a log can hold thousands).
fn listed(offsets: &[u64]) -> String {
    const SHOWN: usize = 8;
    let mut text: Vec<String> = offsets.iter().take(SHOWN).map(u64::to_string).collect();
    if offsets.len() > SHOWN {
        text.push(format!("and {} more", offsets.len() - SHOWN));
    }
    text.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_of_many_entries_lists_the_first_few_and_says_when_a_tail_goes_too() {
        let drop = |keep_len| RepairAction::DropStateLogEntries {
            entries: (0..20).map(|i| i * 100).collect(),
            keep_len,
            original_len: 2000,
            new_len: 0,
            new_xxh3: 0,
        };
        let text = drop(2000).to_string();
        assert!(text.starts_with("drop 20 entries"), "{text}");
        assert!(
            text.contains("bytes 0, 100, 200") && text.contains("and 12 more"),
            "{text}"
        );
        assert!(
            !text.contains("1900") && !text.contains("crash tail"),
            "{text}"
        );
        assert!(drop(1990)
            .to_string()
            .contains("cut its crash tail at byte 1990"));
    }
}
