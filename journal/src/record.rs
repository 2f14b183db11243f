//! What the journal records, and the entry each record is stored in.
//!
//! Records describe events, not states: the current state of a segment is folded from
//! them (see [`crate::state`]).
//!
//! The stored format is bincode's, which numbers enum variants by position: a new
//! variant of [`Record`] or of [`crate::RepairAction`] may only be added at the end,
//! and any other change (reordering, changing fields) needs a new envelope version.

use crate::action::{RepairAction, RepairId};
use crate::key::{PartitionId, SegmentKey};
use crate::stamp::FileStamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// iggy-server created the segment's files and is appending to it.
    SegmentOpened {
        segment: SegmentKey,
    },
    /// The segment is about to be sealed; a crash from here on can leave it half-sealed.
    SealIntent {
        segment: SegmentKey,
    },
    /// The segment is sealed with these final sizes and its last message: its offset,
    /// checksum and the byte where it starts (recovery checks it with one read).
    Sealed {
        segment: SegmentKey,
        log_len: u64,
        index_len: u64,
        last_offset: Option<u64>,
        last_checksum: Option<u64>,
        last_start: Option<u64>,
    },
    SegmentDeleted {
        segment: SegmentKey,
    },
    /// The open segment was validated up to byte `valid_len`; the next message expected
    /// has offset `next_offset`. Recovery only needs to check bytes after `valid_len`.
    Checkpoint {
        segment: SegmentKey,
        valid_len: u64,
        next_offset: u64,
    },
    /// A repair is about to change the data directory.
    RepairIntent {
        repair: RepairId,
        action: RepairAction,
        reason: String,
    },
    RepairDone {
        repair: RepairId,
    },
    RepairFailed {
        repair: RepairId,
        error: String,
    },
    /// `state/log` (the server's metadata log) was verified, every entry whole with its
    /// checksum right and its index following the previous one, up to byte
    /// `valid_len`, where the entry with index `last_index` and stored checksum
    /// `last_checksum` ends. Recovery only needs to verify entries after it. Added
    /// after the others: bincode numbers variants by position.
    StateLogVerified {
        valid_len: u64,
        last_index: u64,
        last_checksum: u64,
    },
    /// The sidecar raised an alert on `segment`: a signature of iggy-server 0.6.0's
    /// rotation race in new bytes, or a write stopped in the middle of a message.
    /// `kind` names it (`misplaced-batch`, `zero-hole`, ...), `file` is the file's path
    /// relative to the data directory and `byte` the position in it. Deduplicated
    /// per segment and kind: raised again only after it was cleared. New variants go
    /// last: bincode numbers variants by position.
    AlertRaised {
        segment: SegmentKey,
        kind: String,
        file: String,
        byte: u64,
        detail: String,
        /// When the sidecar raised it (microseconds since the Unix epoch).
        raised_unix_micros: u64,
    },
    /// Alerts of `partition` are over: those of `segment` (all of the partition when
    /// `None`) and of `kind` (every kind when `None`). A repair of the partition
    /// (`RepairDone`) clears its alerts too, without this record.
    AlertsCleared {
        partition: PartitionId,
        segment: Option<SegmentKey>,
        kind: Option<String>,
        reason: String,
    },
    /// The sealed segment's files, verified again once they had settled, have these
    /// stamps (see [`crate::stamp`]): while both still match, the segment is as its
    /// `Sealed` record says, and recovery trusts it without reading it. Added last:
    /// bincode numbers variants by position.
    Stamped {
        segment: SegmentKey,
        log: FileStamp,
        index: FileStamp,
    },
}

impl Record {
    /// The segment whose state this record changes; `None` for repair records.
    pub fn segment(&self) -> Option<SegmentKey> {
        match self {
            Record::SegmentOpened { segment }
            | Record::SealIntent { segment }
            | Record::Sealed { segment, .. }
            | Record::SegmentDeleted { segment }
            | Record::Checkpoint { segment, .. }
            | Record::Stamped { segment, .. } => Some(*segment),
            // Alerts are not segment states: they neither change a segment's phase nor
            // go with it when compaction forgets a deleted segment.
            Record::RepairIntent { .. }
            | Record::RepairDone { .. }
            | Record::RepairFailed { .. }
            | Record::StateLogVerified { .. }
            | Record::AlertRaised { .. }
            | Record::AlertsCleared { .. } => None,
        }
    }

    /// The repair this record is about; `None` for segment records.
    pub fn repair(&self) -> Option<RepairId> {
        match self {
            Record::RepairIntent { repair, .. }
            | Record::RepairDone { repair }
            | Record::RepairFailed { repair, .. } => Some(*repair),
            _ => None,
        }
    }

    /// Short lowercase name of the variant, for logs and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::SegmentOpened { .. } => "segment_opened",
            Record::SealIntent { .. } => "seal_intent",
            Record::Sealed { .. } => "sealed",
            Record::SegmentDeleted { .. } => "segment_deleted",
            Record::Checkpoint { .. } => "checkpoint",
            Record::RepairIntent { .. } => "repair_intent",
            Record::RepairDone { .. } => "repair_done",
            Record::RepairFailed { .. } => "repair_failed",
            Record::StateLogVerified { .. } => "state_log_verified",
            Record::AlertRaised { .. } => "alert_raised",
            Record::AlertsCleared { .. } => "alerts_cleared",
            Record::Stamped { .. } => "stamped",
        }
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::SegmentOpened { segment } => write!(f, "segment {segment} opened"),
            Record::SealIntent { segment } => write!(f, "segment {segment} about to be sealed"),
            Record::Sealed {
                segment,
                log_len,
                index_len,
                last_offset,
                last_checksum,
                last_start,
            } => write!(
                f,
                "segment {segment} sealed: log {log_len} bytes, index {index_len} bytes, \
                 last offset {} at byte {}, last checksum {}",
                opt(*last_offset),
                opt(*last_start),
                last_checksum.map_or_else(|| "none".to_string(), |c| format!("{c:#x}"))
            ),
            Record::SegmentDeleted { segment } => write!(f, "segment {segment} deleted"),
            Record::Checkpoint {
                segment,
                valid_len,
                next_offset,
            } => write!(
                f,
                "segment {segment} valid up to byte {valid_len}, next offset {next_offset}"
            ),
            Record::RepairIntent {
                repair,
                action,
                reason,
            } => write!(f, "repair {repair} intended: {action} (because: {reason})"),
            Record::RepairDone { repair } => write!(f, "repair {repair} done"),
            Record::RepairFailed { repair, error } => write!(f, "repair {repair} failed: {error}"),
            Record::StateLogVerified {
                valid_len,
                last_index,
                last_checksum,
            } => write!(
                f,
                "state/log valid up to byte {valid_len}, last entry index {last_index}, \
                 checksum {last_checksum:#x}"
            ),
            Record::AlertRaised {
                segment,
                kind,
                file,
                byte,
                detail,
                ..
            } => write!(
                f,
                "alert {kind} on segment {segment}: {file} byte {byte}: {detail}"
            ),
            Record::AlertsCleared {
                partition,
                segment,
                kind,
                reason,
            } => write!(
                f,
                "alerts {} of {} cleared: {reason}",
                kind.as_deref().unwrap_or("(all kinds)"),
                segment.map_or_else(
                    || format!("partition {partition}"),
                    |s| format!("segment {s}")
                )
            ),
            Record::Stamped {
                segment,
                log,
                index,
            } => write!(
                f,
                "segment {segment} stamped: log inode {} {} bytes changed {}.{:09}, index \
                 inode {} {} bytes changed {}.{:09}",
                log.ino,
                log.len,
                log.ctime_sec,
                log.ctime_nsec,
                index.ino,
                index.len,
                index.ctime_sec,
                index.ctime_nsec
            ),
        }
    }
}

/// One stored record: its sequence number, when it was appended, and the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// Microseconds since the Unix epoch, from the appender's wall clock.
    pub unix_micros: u64,
    pub record: Record,
}

/// Wall-clock time in microseconds since the Unix epoch; 0 if the clock is before it.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PartitionId;

    fn payload(record: Record) -> Vec<u8> {
        let entry = Entry {
            seq: 1,
            unix_micros: 1,
            record,
        };
        let bytes = crate::envelope::encode(&entry).unwrap();
        bytes[crate::envelope::HEADER_LEN..].to_vec()
    }

    /// Pins bincode's variant numbers: a failure here means a variant was inserted or
    /// moved, which silently changes how existing journals decode (see module docs).
    #[test]
    fn variant_numbers_are_stable() {
        let segment = PartitionId::new(0, 0, 0).segment(0);
        let repair = RepairId(1);
        let records = [
            Record::SegmentOpened { segment },
            Record::SealIntent { segment },
            Record::Sealed {
                segment,
                log_len: 0,
                index_len: 0,
                last_offset: None,
                last_checksum: None,
                last_start: None,
            },
            Record::SegmentDeleted { segment },
            Record::Checkpoint {
                segment,
                valid_len: 0,
                next_offset: 0,
            },
            Record::RepairIntent {
                repair,
                action: RepairAction::Restore { repair },
                reason: String::new(),
            },
            Record::RepairDone { repair },
            Record::RepairFailed {
                repair,
                error: String::new(),
            },
            Record::StateLogVerified {
                valid_len: 0,
                last_index: 0,
                last_checksum: 0,
            },
            Record::AlertRaised {
                segment,
                kind: String::new(),
                file: String::new(),
                byte: 0,
                detail: String::new(),
                raised_unix_micros: 0,
            },
            Record::AlertsCleared {
                partition: segment.partition,
                segment: None,
                kind: None,
                reason: String::new(),
            },
            Record::Stamped {
                segment,
                log: crate::stamp::tests::stamp(0),
                index: crate::stamp::tests::stamp(0),
            },
        ];
        for (n, record) in records.into_iter().enumerate() {
            // Payload: seq (1 byte), unix_micros (1 byte), then the variant number.
            assert_eq!(payload(record.clone())[2] as usize, n, "{record:?}");
        }
        let actions = [
            (
                RepairAction::TruncateLog {
                    segment,
                    keep_len: 0,
                    original_len: 0,
                },
                0,
            ),
            (
                RepairAction::TruncateIndex {
                    segment,
                    keep_len: 0,
                    original_len: 0,
                },
                1,
            ),
            (
                RepairAction::RewriteIndex {
                    segment,
                    original_len: None,
                    new_len: 0,
                    new_xxh3: 0,
                },
                2,
            ),
            (
                RepairAction::QuarantineFile {
                    path: String::new(),
                    len: 0,
                },
                3,
            ),
            (RepairAction::Restore { repair }, 4),
            (
                RepairAction::CreateDir {
                    path: String::new(),
                },
                5,
            ),
            (
                RepairAction::Relay {
                    partition: segment.partition,
                    originals: Vec::new(),
                    segments: Vec::new(),
                },
                6,
            ),
            (
                RepairAction::TruncateStateLog {
                    keep_len: 0,
                    original_len: 0,
                },
                7,
            ),
            (
                RepairAction::ResetConsumerOffset {
                    path: String::new(),
                    stored: 0,
                    reset_to: 0,
                },
                8,
            ),
            (
                RepairAction::DropStateLogEntries {
                    entries: Vec::new(),
                    keep_len: 0,
                    original_len: 0,
                    new_len: 0,
                    new_xxh3: 0,
                },
                9,
            ),
        ];
        for (action, n) in actions {
            let p = payload(Record::RepairIntent {
                repair,
                action: action.clone(),
                reason: String::new(),
            });
            // ... then the repair id (1 byte), then the action's variant number.
            assert_eq!(p[4], n, "{action:?}");
        }
    }
}
