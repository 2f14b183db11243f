//! The alerts in force, folded back from the journal: after a restart, and after a
//! lease, when `recover` or `replay --apply` may have repaired partitions meanwhile.
//!
//! The journal holds every alert raised and every clearing, and the repairs: an
//! alert is in force from its raising until it is cleared, its segment is deleted, or
//! a repair of its partition is journaled done (a failed repair clears nothing).

use crate::watch::alerts::{Active, Alert, AlertKind};
use journal::{Entry, Journal, PartitionId, Record, RepairAction, RepairId};
use std::collections::HashMap;
use std::path::{Component, Path};

/// The partition a path relative to the data directory lies in, if any.
fn partition_of(rel: &str) -> Option<PartitionId> {
    let parts: Vec<&str> = Path::new(rel)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        ["streams", s, "topics", t, "partitions", p, ..] => Some(PartitionId::new(
            s.parse().ok()?,
            t.parse().ok()?,
            p.parse().ok()?,
        )),
        _ => None,
    }
}

/// The partitions a repair action changes (none for a restore: putting bytes back
/// repairs nothing, nor for the state log).
fn repaired_partitions(action: &RepairAction) -> Vec<PartitionId> {
    match action {
        RepairAction::TruncateLog { segment, .. }
        | RepairAction::TruncateIndex { segment, .. }
        | RepairAction::RewriteIndex { segment, .. } => vec![segment.partition],
        RepairAction::Relay { partition, .. } => vec![*partition],
        RepairAction::QuarantineFile { path, .. } | RepairAction::CreateDir { path } => {
            partition_of(path).into_iter().collect()
        }
        // A consumer's position: the partition's data was not damaged by it.
        RepairAction::ResetConsumerOffset { .. } => Vec::new(),
        RepairAction::Restore { .. }
        | RepairAction::TruncateStateLog { .. }
        | RepairAction::DropStateLogEntries { .. } => Vec::new(),
    }
}

/// The alerts in force after `entries`, in journal order: raised ones, less those
/// cleared, less those of partitions a repair was journaled done for since.
pub fn fold<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Active {
    let mut active = Active::new();
    let mut intents: HashMap<RepairId, Vec<PartitionId>> = HashMap::new();
    for entry in entries {
        match &entry.record {
            Record::AlertRaised {
                segment,
                kind,
                file,
                byte,
                detail,
                raised_unix_micros,
            } => {
                // A kind this version does not know (a newer sidecar wrote it) is
                // skipped rather than misnamed.
                let Some(kind) = AlertKind::parse(kind) else {
                    continue;
                };
                active.entry((*segment, kind)).or_insert_with(|| Alert {
                    kind,
                    segment: *segment,
                    file: file.clone(),
                    byte: *byte,
                    detail: detail.clone(),
                    raised_unix_micros: *raised_unix_micros,
                });
            }
            Record::AlertsCleared {
                partition,
                segment,
                kind,
                ..
            } => {
                let kind = kind.as_deref().map(AlertKind::parse);
                active.retain(|(s, k), _| {
                    !(s.partition == *partition
                        && segment.is_none_or(|x| x == *s)
                        && kind.is_none_or(|x| x == Some(*k)))
                });
            }
            Record::RepairIntent { repair, action, .. } => {
                intents.insert(*repair, repaired_partitions(action));
            }
            Record::RepairDone { repair } => {
                if let Some(parts) = intents.remove(repair) {
                    active.retain(|(s, _), _| !parts.contains(&s.partition));
                }
            }
            Record::RepairFailed { repair, .. } => {
                intents.remove(repair);
            }
            _ => {}
        }
    }
    active
}

/// Reads the whole journal and folds its alerts.
pub fn load(journal: &Journal) -> Result<Active, journal::JournalError> {
    let entries = journal
        .records_since(0)
        .filter(|e| {
            e.as_ref().map_or(true, |e| {
                matches!(
                    e.record,
                    Record::AlertRaised { .. }
                        | Record::AlertsCleared { .. }
                        | Record::RepairIntent { .. }
                        | Record::RepairDone { .. }
                        | Record::RepairFailed { .. }
                )
            })
        })
        .collect::<Result<Vec<Entry>, _>>()?;
    Ok(fold(&entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal::{RelayOriginal, SegmentKey};

    fn entry(seq: u64, record: Record) -> Entry {
        Entry {
            seq,
            unix_micros: seq * 10,
            record,
        }
    }

    fn raised(segment: SegmentKey, kind: AlertKind) -> Record {
        Record::AlertRaised {
            segment,
            kind: kind.name().to_string(),
            file: segment.rel_log(),
            byte: 7,
            detail: "x".into(),
            raised_unix_micros: 10,
        }
    }

    #[test]
    fn paths_name_their_partition() {
        assert_eq!(
            partition_of("streams/1/topics/2/partitions/3/00000000000000000000.log"),
            Some(PartitionId::new(1, 2, 3))
        );
        assert_eq!(
            partition_of("streams/1/topics/2/partitions/3/offsets/consumers"),
            Some(PartitionId::new(1, 2, 3))
        );
        assert_eq!(partition_of("state/log"), None);
        assert_eq!(partition_of("streams/x/topics/2/partitions/3"), None);
    }

    #[test]
    fn the_fold_dedupes_clears_and_forgets_repaired_partitions() {
        let p0 = PartitionId::new(0, 0, 0);
        let p1 = PartitionId::new(0, 0, 1);
        let (a, b, c) = (p0.segment(0), p0.segment(100), p1.segment(0));
        let entries = vec![
            entry(1, raised(a, AlertKind::MisplacedBatch)),
            // A second raise of one segment and kind keeps the first.
            entry(2, raised(a, AlertKind::MisplacedBatch)),
            entry(3, raised(b, AlertKind::StalledWrite)),
            entry(4, raised(c, AlertKind::ZeroHole)),
            entry(
                5,
                Record::AlertsCleared {
                    partition: p0,
                    segment: Some(b),
                    kind: Some("stalled-write".into()),
                    reason: "done".into(),
                },
            ),
            entry(
                6,
                Record::RepairIntent {
                    repair: RepairId(9),
                    action: RepairAction::Relay {
                        partition: p1,
                        originals: vec![RelayOriginal {
                            path: c.rel_log(),
                            len: 1,
                            xxh3: 0,
                        }],
                        segments: Vec::new(),
                    },
                    reason: String::new(),
                },
            ),
        ];
        let active = fold(&entries);
        assert_eq!(active.len(), 2, "{active:?}");
        let first = &active[&(a, AlertKind::MisplacedBatch)];
        assert_eq!(first.raised_unix_micros, 10);
        assert_eq!(first.byte, 7);
        // The intent alone clears nothing; its completion does.
        let mut more = entries.clone();
        more.push(entry(
            7,
            Record::RepairDone {
                repair: RepairId(9),
            },
        ));
        let active = fold(&more);
        assert_eq!(
            active.keys().copied().collect::<Vec<_>>(),
            vec![(a, AlertKind::MisplacedBatch)]
        );
        // A failed repair clears nothing.
        let mut failed = entries;
        failed.push(entry(
            7,
            Record::RepairFailed {
                repair: RepairId(9),
                error: String::new(),
            },
        ));
        assert_eq!(fold(&failed).len(), 2);
    }
}
