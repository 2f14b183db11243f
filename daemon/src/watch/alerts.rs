//! Alerts: what the sidecar sees of iggy-server 0.6.0's rotation race while the
//! server runs, named for what it is, and a write that stopped in the middle of a
//! message.
//!
//! The race (a segment rotates while an earlier save is in flight; fixed upstream in
//! 0.7.0) leaves signatures in new bytes before the server panics: batches in the
//! wrong file or out of order, zero holes with messages after them, index entries
//! without their messages, sealed segments that are not whole valid messages. The
//! verification the sidecar already does (`tracker/`, on the shared scanner of
//! `recovery::scan`, whose stop reasons `check` and salvage use too) stops at each;
//! this module turns the stop into an [`AlertKind`].
//!
//! An alert is logged at error level with structured fields (`partition`, `segment`,
//! `file`, `byte`, `kind`; see `logging.rs` for journald), shown in systemd's
//! `STATUS=`, counted, and journaled ([`Record::AlertRaised`]). Alerts are
//! deduplicated per (segment, kind); after a restart they are folded back from the
//! journal (`alert_history.rs`). One is over when:
//! - a repair of its partition is journaled done (`recover`, `replay --apply`; the
//!   sidecar folds the journal again when it takes it back after a lease);
//! - its segment is deleted;
//! - (stalled writes) the write completes.
//!
//! [`AlertBoard`] is the read side for everything outside the core: the control
//! socket's `STATUS`, `iggy-warden status`, systemd's status line and metrics.

use journal::{PartitionId, SegmentKey};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// A valid message whose offset is not the one expected next in its file: a batch
    /// written into the wrong segment or out of order.
    MisplacedBatch,
    /// Zero bytes where a message should start, with data after them.
    ZeroHole,
    /// Index entries that describe no message of the log.
    GhostIndexEntries,
    /// A segment that is no longer the newest (the server rotated past it) but is
    /// not a whole number of valid messages with one index entry each.
    IncompleteSealedSegment,
    /// Bytes that are no valid message (bad checksum, impossible lengths), with data
    /// after them: damage that is not one of the race's own signatures.
    CorruptData,
    /// The newest segment ends in a message written in part (or an index behind its
    /// log) and nothing was written for the grace period.
    StalledWrite,
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        AlertKind::MisplacedBatch,
        AlertKind::ZeroHole,
        AlertKind::GhostIndexEntries,
        AlertKind::IncompleteSealedSegment,
        AlertKind::CorruptData,
        AlertKind::StalledWrite,
    ];

    /// The name in logs, the journal, `STATUS` and JSON (`check`'s names where
    /// `check` has the same signature).
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::MisplacedBatch => "misplaced-batch",
            AlertKind::ZeroHole => "zero-hole",
            AlertKind::GhostIndexEntries => "ghost-index-entries",
            AlertKind::IncompleteSealedSegment => "incomplete-sealed-segment",
            AlertKind::CorruptData => "corrupt-data",
            AlertKind::StalledWrite => "stalled-write",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// One of the signatures the 0.6.0 rotation race leaves.
    pub fn is_race_signature(self) -> bool {
        matches!(
            self,
            AlertKind::MisplacedBatch
                | AlertKind::ZeroHole
                | AlertKind::GhostIndexEntries
                | AlertKind::IncompleteSealedSegment
        )
    }

    /// What it means and what to do, for the operator.
    fn explain(self, segment: &SegmentKey) -> String {
        let salvage = "restart iggy-server so that recovery can salvage this partition";
        match self {
            AlertKind::MisplacedBatch => format!(
                "iggy-server 0.6 is writing batches out of order into segment {segment} \
                 (the 0.6.0 rotation race): messages written from now on may be unreadable; \
                 {salvage}"
            ),
            AlertKind::ZeroHole => format!(
                "iggy-server 0.6 left a hole of zero bytes followed by messages in segment \
                 {segment} (the 0.6.0 rotation race): messages after the hole may be \
                 unreadable; {salvage}"
            ),
            AlertKind::GhostIndexEntries => format!(
                "iggy-server 0.6 wrote index entries without their messages in segment \
                 {segment} (the 0.6.0 rotation race): polls of those offsets fail or return \
                 other messages; {salvage}"
            ),
            AlertKind::IncompleteSealedSegment => format!(
                "iggy-server 0.6 rotated past segment {segment}, but it is not a whole number \
                 of valid messages (the 0.6.0 rotation race rotates while a save is in \
                 flight): the server will serve it wrongly; {salvage}"
            ),
            AlertKind::CorruptData => format!(
                "segment {segment} holds bytes that are no valid message, with data after \
                 them: the partition is damaged; {salvage}"
            ),
            AlertKind::StalledWrite => format!(
                "iggy-server stopped writing segment {segment} in the middle of a message: \
                 its writer may be stuck or dead (the 0.6.0 rotation race kills a shard \
                 this way); check iggy-server, and restart it so that recovery can repair \
                 this partition"
            ),
        }
    }
}

impl std::fmt::Display for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One alert in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    pub segment: SegmentKey,
    /// The file, relative to the data directory.
    pub file: String,
    /// Byte of `file` where it was seen.
    pub byte: u64,
    pub detail: String,
    /// When it was raised (journal time, microseconds since the Unix epoch).
    pub raised_unix_micros: u64,
}

impl Alert {
    pub fn partition(&self) -> PartitionId {
        self.segment.partition
    }

    /// The operator's message: what it means, what to do, and where.
    pub fn message(&self) -> String {
        format!(
            "{} ({} at byte {}: {})",
            self.kind.explain(&self.segment),
            self.file,
            self.byte,
            self.detail
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.name(),
            "partition": self.partition().to_string(),
            "segment": self.segment.to_string(),
            "file": self.file,
            "byte": self.byte,
            "detail": self.detail,
            "raised_unix_micros": self.raised_unix_micros,
            "race_signature": self.kind.is_race_signature(),
            "message": self.message(),
        })
    }
}

/// The alerts in force, one per (segment, kind).
pub(super) type Active = BTreeMap<(SegmentKey, AlertKind), Alert>;

#[derive(Debug, Default)]
struct Board {
    active: Active,
    /// Alerts raised by this process, by kind (those folded back from the journal at
    /// start are active but not counted again).
    raised: BTreeMap<AlertKind, u64>,
}

/// The alerts in force and the counts, shared by the core (which writes) and
/// everyone else (who reads). The API other parts of the sidecar use, metrics
/// included.
#[derive(Debug, Default)]
pub struct AlertBoard {
    inner: Mutex<Board>,
}

impl AlertBoard {
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Alerts in force, oldest first.
    pub fn active(&self) -> Vec<Alert> {
        let mut all: Vec<Alert> = self.lock().active.values().cloned().collect();
        all.sort_by_key(|a| (a.raised_unix_micros, a.segment, a.kind));
        all
    }

    pub fn active_count(&self) -> usize {
        self.lock().active.len()
    }

    /// Alerts in force by kind, every kind listed (0 when none).
    pub fn active_by_kind(&self) -> BTreeMap<AlertKind, u64> {
        let board = self.lock();
        let mut out: BTreeMap<AlertKind, u64> = AlertKind::ALL.iter().map(|k| (*k, 0)).collect();
        for (_, kind) in board.active.keys() {
            *out.entry(*kind).or_default() += 1;
        }
        out
    }

    /// Alerts raised since this sidecar started, by kind, every kind listed: a
    /// counter that only grows.
    pub fn raised_by_kind(&self) -> BTreeMap<AlertKind, u64> {
        let board = self.lock();
        AlertKind::ALL
            .iter()
            .map(|k| (*k, board.raised.get(k).copied().unwrap_or(0)))
            .collect()
    }

    pub fn raised_total(&self) -> u64 {
        self.lock().raised.values().sum()
    }

    /// The most recently raised alert in force.
    pub fn newest(&self) -> Option<Alert> {
        self.lock()
            .active
            .values()
            .max_by_key(|a| (a.raised_unix_micros, a.segment, a.kind))
            .cloned()
    }

    pub fn is_active(&self, segment: SegmentKey, kind: AlertKind) -> bool {
        self.lock().active.contains_key(&(segment, kind))
    }

    /// Adds a newly raised alert and counts it; false when one of its segment and kind
    /// is in force already.
    pub(super) fn insert(&self, alert: Alert) -> bool {
        let mut board = self.lock();
        let key = (alert.segment, alert.kind);
        if board.active.contains_key(&key) {
            return false;
        }
        *board.raised.entry(alert.kind).or_default() += 1;
        board.active.insert(key, alert);
        true
    }

    /// Removes and returns the alerts `clears` picks.
    pub(super) fn remove(&self, clears: impl Fn(&Alert) -> bool) -> Vec<Alert> {
        let mut board = self.lock();
        let gone: Vec<(SegmentKey, AlertKind)> = board
            .active
            .iter()
            .filter(|(_, a)| clears(a))
            .map(|(k, _)| *k)
            .collect();
        gone.into_iter()
            .filter_map(|k| board.active.remove(&k))
            .collect()
    }

    /// The alerts in force become `active` (folded from the journal); counts stay.
    pub(super) fn replace(&self, active: Active) {
        self.lock().active = active;
    }
}

/// What a tracker stopped at, for an alert: the kind, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: AlertKind,
    pub byte: u64,
    /// In the `.index` rather than the `.log`.
    pub in_index: bool,
}

/// A segment whose last verification stopped before the end of what was written:
/// a message written in part, or an index behind (or ahead of) its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pending {
    pub(super) pos: u64,
    pub(super) log_len: u64,
    pub(super) index_len: Option<u64>,
    /// Counted verification passes (one per checkpoint interval) in a row that
    /// found it unchanged.
    pub(super) passes: u32,
}

/// The core's side of stalled-write detection.
#[derive(Debug, Default)]
pub struct StallWatch {
    /// Counted passes (one per checkpoint interval) a segment may stay unchanged with
    /// a message written in part.
    pub grace: u32,
    pub(super) pending: BTreeMap<SegmentKey, Pending>,
    /// A verification pass is under way (it may take several turns with a backlog).
    pub(super) in_pass: bool,
    /// The pass under way counts toward [`StallWatch::grace`].
    pub(super) counting: bool,
}

impl StallWatch {
    pub fn new(grace: u32) -> Self {
        Self {
            grace,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::parse(k.name()), Some(k));
        }
        assert_eq!(AlertKind::parse("nope"), None);
    }

    #[test]
    fn the_board_counts_what_it_raises_and_lists_every_kind() {
        let board = AlertBoard::default();
        let seg = PartitionId::new(0, 0, 0).segment(0);
        let alert = Alert {
            kind: AlertKind::ZeroHole,
            segment: seg,
            file: seg.rel_log(),
            byte: 1,
            detail: String::new(),
            raised_unix_micros: 1,
        };
        assert!(board.insert(alert.clone()));
        assert!(!board.insert(alert));
        assert_eq!(board.raised_total(), 1);
        assert_eq!(board.active_by_kind().len(), AlertKind::ALL.len());
        assert_eq!(board.active_by_kind()[&AlertKind::ZeroHole], 1);
        assert_eq!(board.remove(|a| a.segment == seg).len(), 1);
        assert_eq!(board.active_count(), 0);
        assert_eq!(board.raised_by_kind()[&AlertKind::ZeroHole], 1);
    }
}
