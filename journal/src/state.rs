//! The state of one segment, folded from its records.
//!
//! The store keeps the folded state per segment so queries need no replay, and
//! `verify` replays the log to check that the stored states agree with it. The fold is
//! chosen so that compaction does not change its result: dropping a segment's
//! superseded checkpoints leaves the same state behind.

use crate::record::Record;
use crate::stamp::FileStamp;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SegmentPhase {
    Opened,
    SealIntent,
    Sealed {
        log_len: u64,
        index_len: u64,
        last_offset: Option<u64>,
        last_checksum: Option<u64>,
        last_start: Option<u64>,
    },
    Deleted,
    /// Sealed as above, and its files' stamps journaled since (`Record::Stamped`).
    /// Added last: bincode numbers variants by position.
    SealedStamped {
        log_len: u64,
        index_len: u64,
        last_offset: Option<u64>,
        last_checksum: Option<u64>,
        last_start: Option<u64>,
        log: FileStamp,
        index: FileStamp,
    },
}

/// The newest checkpoint of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Sequence number of the `Checkpoint` record.
    pub seq: u64,
    pub valid_len: u64,
    pub next_offset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentState {
    pub phase: SegmentPhase,
    /// Sequence number of the newest record about this segment.
    pub last_seq: u64,
    /// Newest checkpoint since the segment was (re)opened.
    pub checkpoint: Option<CheckpointState>,
}

impl SegmentState {
    /// True while the segment may still be written to, or was caught mid-seal: the
    /// segments recovery has to look at.
    pub fn is_unsealed(&self) -> bool {
        matches!(self.phase, SegmentPhase::Opened | SegmentPhase::SealIntent)
    }

    /// The state after `record` (numbered `seq`) given the state before it. Returns
    /// `None` only for records that are not about a segment.
    pub fn apply(prev: Option<&SegmentState>, seq: u64, record: &Record) -> Option<SegmentState> {
        let kept_checkpoint = prev.and_then(|p| p.checkpoint);
        let (phase, checkpoint) = match record {
            // A reopened key is a new incarnation: its old checkpoint says nothing.
            Record::SegmentOpened { .. } => (SegmentPhase::Opened, None),
            Record::SealIntent { .. } => (SegmentPhase::SealIntent, kept_checkpoint),
            Record::Sealed {
                log_len,
                index_len,
                last_offset,
                last_checksum,
                last_start,
                ..
            } => (
                SegmentPhase::Sealed {
                    log_len: *log_len,
                    index_len: *index_len,
                    last_offset: *last_offset,
                    last_checksum: *last_checksum,
                    last_start: *last_start,
                },
                kept_checkpoint,
            ),
            Record::SegmentDeleted { .. } => (SegmentPhase::Deleted, kept_checkpoint),
            Record::Checkpoint {
                valid_len,
                next_offset,
                ..
            } => (
                // A checkpoint implies the segment is open, even if its `SegmentOpened`
                // predates the journal.
                prev.map_or(SegmentPhase::Opened, |p| p.phase.clone()),
                Some(CheckpointState {
                    seq,
                    valid_len: *valid_len,
                    next_offset: *next_offset,
                }),
            ),
            Record::Stamped { log, index, .. } => {
                let prev = prev?;
                (stamped(&prev.phase, *log, *index), kept_checkpoint)
            }
            Record::RepairIntent { .. }
            | Record::RepairDone { .. }
            | Record::RepairFailed { .. }
            | Record::StateLogVerified { .. }
            | Record::AlertRaised { .. }
            | Record::AlertsCleared { .. } => return None,
        };
        Some(SegmentState {
            phase,
            last_seq: seq,
            checkpoint,
        })
    }
}

/// The state of a segment still being written, as the journal writer caches it: the
/// fields [`SegmentState`] holds in those two phases, in a quarter of its size (the
/// sealed phases carry offsets and two file stamps, and each cached entry paid for
/// them: 6.9 MB of the sidecar's 35 MB with 10,000 open segments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UnsealedState {
    seal_intent: bool,
    last_seq: u64,
    checkpoint: Option<CheckpointState>,
}

impl UnsealedState {
    /// `state` if it is unsealed (see [`SegmentState::is_unsealed`]).
    pub(crate) fn of(state: &SegmentState) -> Option<Self> {
        let seal_intent = match state.phase {
            SegmentPhase::Opened => false,
            SegmentPhase::SealIntent => true,
            _ => return None,
        };
        Some(Self {
            seal_intent,
            last_seq: state.last_seq,
            checkpoint: state.checkpoint,
        })
    }

    pub(crate) fn state(self) -> SegmentState {
        SegmentState {
            phase: if self.seal_intent {
                SegmentPhase::SealIntent
            } else {
                SegmentPhase::Opened
            },
            last_seq: self.last_seq,
            checkpoint: self.checkpoint,
        }
    }
}

/// The phase after a stamp: sealed with its stamps when the stamps have the lengths
/// the seal journaled; any other phase (a stamp journaled before the segment was
/// reopened or deleted) stays as it is.
fn stamped(phase: &SegmentPhase, log: FileStamp, index: FileStamp) -> SegmentPhase {
    match *phase {
        SegmentPhase::Sealed {
            log_len,
            index_len,
            last_offset,
            last_checksum,
            last_start,
        }
        | SegmentPhase::SealedStamped {
            log_len,
            index_len,
            last_offset,
            last_checksum,
            last_start,
            ..
        } if log.len == log_len && index.len == index_len => SegmentPhase::SealedStamped {
            log_len,
            index_len,
            last_offset,
            last_checksum,
            last_start,
            log,
            index,
        },
        _ => phase.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PartitionId;

    #[test]
    fn fold_follows_the_lifecycle() {
        let segment = PartitionId::new(0, 0, 0).segment(0);
        let steps = [
            Record::SegmentOpened { segment },
            Record::Checkpoint {
                segment,
                valid_len: 10,
                next_offset: 3,
            },
            Record::SealIntent { segment },
            Record::Sealed {
                segment,
                log_len: 20,
                index_len: 16,
                last_offset: Some(4),
                last_checksum: None,
                last_start: None,
            },
        ];
        let mut state = None;
        for (i, r) in steps.iter().enumerate() {
            state = SegmentState::apply(state.as_ref(), i as u64 + 1, r);
        }
        let state = state.unwrap();
        assert!(matches!(
            state.phase,
            SegmentPhase::Sealed { log_len: 20, .. }
        ));
        assert_eq!(state.last_seq, 4);
        assert_eq!(state.checkpoint.map(|c| c.seq), Some(2));
        assert!(!state.is_unsealed());

        let stamp = |len| crate::stamp::FileStamp {
            len,
            ..crate::stamp::tests::stamp(0)
        };
        let stamped = Record::Stamped {
            segment,
            log: stamp(20),
            index: stamp(16),
        };
        let state = SegmentState::apply(Some(&state), 5, &stamped).unwrap();
        assert!(matches!(
            state.phase,
            SegmentPhase::SealedStamped {
                log_len: 20,
                last_offset: Some(4),
                ..
            }
        ));
        assert_eq!(state.checkpoint.map(|c| c.seq), Some(2));
        // A stamp of other lengths, or of a segment the journal does not know, changes
        // nothing but the sequence number.
        let other = Record::Stamped {
            segment,
            log: stamp(21),
            index: stamp(16),
        };
        let unchanged = SegmentState::apply(Some(&state), 6, &other).unwrap();
        assert_eq!(unchanged.phase, state.phase);
        assert_eq!(SegmentState::apply(None, 6, &stamped), None);
        let sealed_again = SegmentState::apply(Some(&state), 7, &steps[3]).unwrap();
        assert!(matches!(sealed_again.phase, SegmentPhase::Sealed { .. }));

        let reopened = SegmentState::apply(Some(&state), 5, &Record::SegmentOpened { segment });
        assert_eq!(reopened.as_ref().and_then(|s| s.checkpoint), None);
        let repair = Record::RepairDone {
            repair: crate::RepairId(1),
        };
        assert_eq!(SegmentState::apply(reopened.as_ref(), 6, &repair), None);
    }

    #[test]
    fn an_unsealed_state_is_cached_whole_and_a_sealed_one_not_at_all() {
        let checkpoint = Some(CheckpointState {
            seq: 3,
            valid_len: 40,
            next_offset: 2,
        });
        for phase in [SegmentPhase::Opened, SegmentPhase::SealIntent] {
            let state = SegmentState {
                phase,
                last_seq: 7,
                checkpoint,
            };
            assert_eq!(
                UnsealedState::of(&state).map(UnsealedState::state),
                Some(state)
            );
        }
        let sealed = SegmentPhase::Sealed {
            log_len: 40,
            index_len: 32,
            last_offset: Some(1),
            last_checksum: Some(9),
            last_start: Some(20),
        };
        for phase in [sealed, SegmentPhase::Deleted] {
            let state = SegmentState {
                phase,
                last_seq: 7,
                checkpoint,
            };
            assert_eq!(UnsealedState::of(&state), None);
        }
        assert!(
            std::mem::size_of::<UnsealedState>() * 3 < std::mem::size_of::<SegmentState>(),
            "the cache's entry stays small"
        );
    }
}
