//! The sidecar's model of the segments: what the journal says about every live
//! segment (open, sealing, sealed), plus the in-memory verification progress of the
//! open ones.
//!
//! It is loaded from the journal at start and after a handover, and changed only
//! together with the records that say so, so model and journal never disagree. Kept
//! apart from the reconciliation (`mod.rs`) because everything in the core reads it,
//! while only the listing and sync change its shape; and because its layout is tuned
//! for memory (boxed trackers, sorted vectors) in ways the sync need not know.

use crate::watch::tracker::Tracker;
use journal::{PartitionId, SegmentKey, SegmentPhase, SegmentState};
use std::collections::BTreeMap;
use std::time::Instant;

/// A segment the journal saw sealed-to-be, waiting for its verification.
#[derive(Clone, Debug)]
pub struct Sealing {
    pub tracker: Tracker,
    pub attempts: u32,
    pub next_try: Instant,
    /// Retries are exhausted and the anomaly was logged; a new write retries.
    pub gave_up: bool,
}

impl Sealing {
    pub fn new(tracker: Tracker) -> Self {
        Self {
            tracker,
            attempts: 0,
            next_try: Instant::now(),
            gave_up: false,
        }
    }

    /// Whether another attempt is to come (retries are not exhausted).
    pub fn pending(&self) -> bool {
        !self.gave_up
    }

    /// Whether an attempt is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.pending() && self.next_try <= now
    }
}

/// Trackers are boxed because most segments are sealed: a sealed entry then needs no
/// room for a tracker it does not have (with 10,000 partitions the segment maps were
/// 3 MiB of the sidecar's heap).
#[derive(Clone, Debug)]
pub enum Phase {
    Open(Box<Tracker>),
    Sealing(Box<Sealing>),
    Sealed { log_len: u64, index_len: u64 },
}

impl Phase {
    pub fn open(tracker: Tracker) -> Self {
        Phase::Open(Box::new(tracker))
    }

    pub fn sealing(tracker: Tracker) -> Self {
        Phase::Sealing(Box::new(Sealing::new(tracker)))
    }
}

/// The live segments of one partition, by start offset.
#[derive(Clone, Debug, Default)]
pub struct PartitionModel {
    pub segments: SegmentMap,
}

/// Segments by start offset, in a sorted vector. A partition has a handful of live
/// segments, and a `BTreeMap` node reserves room for eleven: with 10,000 partitions
/// that alone cost more than everything else the sidecar keeps.
#[derive(Clone, Debug, Default)]
pub struct SegmentMap(Vec<(u64, Phase)>);

impl SegmentMap {
    fn find(&self, start: u64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&start, |(s, _)| *s)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, start: &u64) -> Option<&Phase> {
        let i = self.find(*start).ok()?;
        self.0.get(i).map(|(_, p)| p)
    }

    pub fn get_mut(&mut self, start: &u64) -> Option<&mut Phase> {
        let i = self.find(*start).ok()?;
        self.0.get_mut(i).map(|(_, p)| p)
    }

    pub fn insert(&mut self, start: u64, phase: Phase) {
        match self.find(start) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    slot.1 = phase;
                }
            }
            Err(i) => {
                // Most partitions hold one or two segments: no spare room for four.
                if self.0.len() < 8 {
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, (start, phase));
            }
        }
    }

    pub fn remove(&mut self, start: &u64) -> Option<Phase> {
        let i = self.find(*start).ok()?;
        Some(self.0.remove(i).1)
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &u64> {
        self.0.iter().map(|(s, _)| s)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&u64, &mut Phase)> {
        self.0.iter_mut().map(|(s, p)| (&*s, p))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Model {
    pub partitions: BTreeMap<PartitionId, PartitionModel>,
}

impl Model {
    /// The model of what the journal says; deleted segments are not part of it.
    pub fn from_states(states: Vec<(SegmentKey, SegmentState)>) -> Self {
        let mut model = Model::default();
        for (key, state) in states {
            let phase = match state.phase {
                SegmentPhase::Opened => Phase::open(Tracker::resumed(key, state.checkpoint)),
                SegmentPhase::SealIntent => Phase::sealing(Tracker::resumed(key, state.checkpoint)),
                SegmentPhase::Sealed {
                    log_len, index_len, ..
                }
                | SegmentPhase::SealedStamped {
                    log_len, index_len, ..
                } => Phase::Sealed { log_len, index_len },
                SegmentPhase::Deleted => continue,
            };
            model
                .partitions
                .entry(key.partition)
                .or_default()
                .segments
                .insert(key.start_offset, phase);
        }
        model
    }

    pub fn get(&self, key: &SegmentKey) -> Option<&Phase> {
        self.partitions
            .get(&key.partition)?
            .segments
            .get(&key.start_offset)
    }

    /// The segment's seal, while it is sealing.
    pub fn sealing(&self, key: &SegmentKey) -> Option<&Sealing> {
        match self.get(key)? {
            Phase::Sealing(s) => Some(s),
            Phase::Open(_) | Phase::Sealed { .. } => None,
        }
    }

    pub fn get_mut(&mut self, key: &SegmentKey) -> Option<&mut Phase> {
        self.partitions
            .get_mut(&key.partition)?
            .segments
            .get_mut(&key.start_offset)
    }

    pub fn segment_count(&self) -> usize {
        self.partitions.values().map(|p| p.segments.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_follows_the_journal_states() {
        let key = PartitionId::new(0, 0, 0).segment(0);
        let st = |phase| SegmentState {
            phase,
            last_seq: 1,
            checkpoint: None,
        };
        let m = Model::from_states(vec![
            (key, st(SegmentPhase::SealIntent)),
            (
                PartitionId::new(0, 0, 0).segment(7),
                st(SegmentPhase::Opened),
            ),
            (
                PartitionId::new(0, 0, 1).segment(0),
                st(SegmentPhase::Deleted),
            ),
        ]);
        assert_eq!(m.segment_count(), 2);
        assert_eq!(m.partitions.len(), 1);
    }

    #[test]
    fn a_seal_is_due_until_its_retries_run_out_and_only_while_sealing() {
        let pid = PartitionId::new(2, 1, 0);
        let (open, sealing, sealed) = (pid.segment(0), pid.segment(10), pid.segment(20));
        let mut model = Model::default();
        let segments = &mut model.partitions.entry(pid).or_default().segments;
        segments.insert(0, Phase::open(Tracker::new(open)));
        segments.insert(10, Phase::sealing(Tracker::new(sealing)));
        segments.insert(
            20,
            Phase::Sealed {
                log_len: 5,
                index_len: 16,
            },
        );
        assert!(model.sealing(&open).is_none());
        assert!(model.sealing(&sealed).is_none());
        assert!(model.sealing(&pid.segment(30)).is_none());
        assert_eq!(model.segment_count(), 3);

        let now = Instant::now();
        let seal = model.sealing(&sealing).unwrap();
        assert!(seal.pending() && seal.due(now));
        // A retry later is pending but not due yet.
        if let Some(Phase::Sealing(s)) = model.get_mut(&sealing) {
            s.next_try = now + std::time::Duration::from_secs(1);
        }
        let seal = model.sealing(&sealing).unwrap();
        assert!(seal.pending() && !seal.due(now));
        // Given up: neither pending nor due, whenever it is.
        if let Some(Phase::Sealing(s)) = model.get_mut(&sealing) {
            s.gave_up = true;
            s.next_try = now;
        }
        let seal = model.sealing(&sealing).unwrap();
        assert!(!seal.pending() && !seal.due(now));
    }
}
