//! How `iggy-warden journal show` selects and presents records: the `--segment`
//! filter, one record as JSON, and the time format of both outputs.
//!
//! Apart from the command itself (`mod.rs`) because this is the part that knows every
//! record variant and must change with the journal's format, while opening and
//! reading the journal does not; and it is pure, so its tests need no journal.

use journal::{Entry, Record, RepairAction, RepairId, SegmentKey};
use serde_json::{json, Value};
use std::collections::HashSet;

/// Selects the records about one segment, and the outcomes of repairs whose intent
/// touched it (those records name only the repair).
pub(super) struct SegmentFilter {
    segment: SegmentKey,
    repairs: HashSet<RepairId>,
}

impl SegmentFilter {
    pub(super) fn new(segment: SegmentKey) -> Self {
        Self {
            segment,
            repairs: HashSet::new(),
        }
    }

    pub(super) fn matches(&mut self, record: &Record) -> bool {
        match record {
            Record::RepairIntent { repair, action, .. } => {
                let touches = match action {
                    RepairAction::TruncateLog { segment, .. }
                    | RepairAction::TruncateIndex { segment, .. }
                    | RepairAction::RewriteIndex { segment, .. } => *segment == self.segment,
                    RepairAction::QuarantineFile { path, .. } => {
                        *path == self.segment.rel_log() || *path == self.segment.rel_index()
                    }
                    // Undoing a repair of this segment is about this segment too.
                    RepairAction::Restore { repair: undone } => self.repairs.contains(undone),
                    RepairAction::CreateDir { .. }
                    | RepairAction::TruncateStateLog { .. }
                    | RepairAction::DropStateLogEntries { .. }
                    | RepairAction::ResetConsumerOffset { .. } => false,
                    RepairAction::Relay {
                        originals,
                        segments,
                        ..
                    } => {
                        originals.iter().any(|o| {
                            o.path == self.segment.rel_log() || o.path == self.segment.rel_index()
                        }) || segments
                            .iter()
                            .any(|s| self.segment.partition.segment(s.start_offset) == self.segment)
                    }
                };
                if touches {
                    self.repairs.insert(*repair);
                }
                touches
            }
            Record::RepairDone { repair } | Record::RepairFailed { repair, .. } => {
                self.repairs.contains(repair)
            }
            Record::AlertRaised { segment, .. } => *segment == self.segment,
            Record::AlertsCleared {
                partition, segment, ..
            } => *partition == self.segment.partition && segment.is_none_or(|s| s == self.segment),
            other => other.segment() == Some(self.segment),
        }
    }
}

/// One record as `journal show --json` prints it: the entry's own fields, then the
/// record's, flat.
pub(super) fn entry_json(entry: &Entry) -> Value {
    let mut obj = json!({
        "seq": entry.seq,
        "unix_micros": entry.unix_micros,
        "time": format_micros(entry.unix_micros),
        "kind": entry.record.kind(),
    });
    let fields = match &entry.record {
        Record::SegmentOpened { segment }
        | Record::SealIntent { segment }
        | Record::SegmentDeleted { segment } => json!({ "segment": segment.to_string() }),
        Record::Sealed {
            segment,
            log_len,
            index_len,
            last_offset,
            last_checksum,
            last_start,
        } => json!({
            "segment": segment.to_string(),
            "log_len": log_len,
            "index_len": index_len,
            "last_offset": last_offset,
            "last_checksum": last_checksum,
            "last_start": last_start,
        }),
        Record::Checkpoint {
            segment,
            valid_len,
            next_offset,
        } => json!({
            "segment": segment.to_string(),
            "valid_len": valid_len,
            "next_offset": next_offset,
        }),
        Record::RepairIntent {
            repair,
            action,
            reason,
        } => json!({
            "repair": repair.to_string(),
            "action": action.to_string(),
            "action_detail": action,
            "path": action.rel_path(),
            "reason": reason,
        }),
        Record::RepairDone { repair } => json!({ "repair": repair.to_string() }),
        Record::RepairFailed { repair, error } => {
            json!({ "repair": repair.to_string(), "error": error })
        }
        Record::StateLogVerified {
            valid_len,
            last_index,
            last_checksum,
        } => json!({
            "valid_len": valid_len,
            "last_index": last_index,
            "last_checksum": last_checksum,
        }),
        Record::AlertRaised {
            segment,
            kind,
            file,
            byte,
            detail,
            raised_unix_micros,
        } => json!({
            "segment": segment.to_string(),
            "alert": kind,
            "path": file,
            "byte": byte,
            "detail": detail,
            "raised_unix_micros": raised_unix_micros,
        }),
        Record::AlertsCleared {
            partition,
            segment,
            kind,
            reason,
        } => json!({
            "partition": partition.to_string(),
            "segment": segment.map(|s| s.to_string()),
            "alert": kind,
            "reason": reason,
        }),
        Record::Stamped {
            segment,
            log,
            index,
        } => json!({
            "segment": segment.to_string(),
            "log_stamp": log,
            "index_stamp": index,
        }),
    };
    if let (Some(obj), Value::Object(fields)) = (obj.as_object_mut(), fields) {
        obj.extend(fields);
    }
    obj
}

/// UTC time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, without a date-time dependency.
pub(super) fn format_micros(unix_micros: u64) -> String {
    let secs = unix_micros / 1_000_000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        day_secs / 3600,
        day_secs % 3600 / 60,
        day_secs % 60,
        unix_micros % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_micros(951_782_400_000_001),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            format_micros(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    #[test]
    fn segment_filter_follows_repairs_of_the_segment() {
        let key: SegmentKey = "1/2/3@100".parse().unwrap();
        let other: SegmentKey = "1/2/3@200".parse().unwrap();
        let mut f = SegmentFilter::new(key);
        assert!(f.matches(&Record::SegmentOpened { segment: key }));
        assert!(!f.matches(&Record::SegmentOpened { segment: other }));
        let intent = |id, path: String| Record::RepairIntent {
            repair: RepairId(id),
            action: RepairAction::QuarantineFile { path, len: 1 },
            reason: String::new(),
        };
        assert!(f.matches(&intent(1, key.rel_index())));
        assert!(!f.matches(&intent(2, other.rel_log())));
        assert!(f.matches(&Record::RepairDone {
            repair: RepairId(1)
        }));
        assert!(!f.matches(&Record::RepairDone {
            repair: RepairId(2)
        }));
        let restore = |id, undone| Record::RepairIntent {
            repair: RepairId(id),
            action: RepairAction::Restore {
                repair: RepairId(undone),
            },
            reason: String::new(),
        };
        assert!(f.matches(&restore(3, 1)));
        assert!(!f.matches(&restore(4, 2)));
        assert!(f.matches(&Record::RepairFailed {
            repair: RepairId(3),
            error: String::new()
        }));
    }
}
