//! The sidecar's view of the segments, and how it is brought in line with the disk.
//!
//! The [`Model`] mirrors what the journal says about every live segment (open,
//! sealing, sealed), plus the in-memory verification progress of the open ones. It
//! is loaded from the journal at start and after a handover, and changed only together
//! with the records that say so, so model and journal never disagree.
//!
//! [`sync_partition`] compares one partition's model with a listing of its folder and
//! returns the records that make the journal agree with the disk: segments gone from
//! disk are `SegmentDeleted`; segments the journal does not know (or saw deleted) are
//! `SegmentOpened`; every open segment that is no longer the partition's newest gets a
//! `SealIntent` and joins the seal queue, where it is verified before `Sealed`. A full
//! reconciliation also stats the sealed segments and re-opens those whose lengths no
//! longer match. The same function serves start-up, rescans after an overflow, and the
//! single partition an inotify event pointed at: one code path, so they cannot drift.

use crate::watch::tracker::Tracker;
use journal::{
    segment_name, PartitionId, Record, SegmentFile, SegmentKey, SegmentPhase, SegmentState,
};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
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

/// A partition folder as listed: start offset → (log length, index length) of every
/// segment whose `.log` exists; lengths only when asked for (a full reconciliation).
pub type Listing = BTreeMap<u64, Option<(u64, Option<u64>)>>;

/// Lists a partition folder; `Ok(None)` when the folder does not exist. Only regular
/// files count as segments.
pub fn list_partition(dir: &Path, with_lengths: bool) -> io::Result<Option<Listing>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Listing::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(start) = name.to_str().and_then(crate::watch::place::log_file) else {
            continue;
        };
        // A folder, symlink or special file under a segment's name is no segment
        // (the listing's file type costs no extra system call).
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let lengths = if with_lengths {
            let log_len = match entry.metadata() {
                Ok(m) if m.is_file() => m.len(),
                Ok(_) => continue,
                // Deleted between the listing and the stat.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let index = dir.join(segment_name::file_name(start, SegmentFile::Index));
            let index_len = match std::fs::metadata(&index) {
                Ok(m) => Some(m.len()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            Some((log_len, index_len))
        } else {
            None
        };
        out.insert(start, lengths);
    }
    Ok(Some(out))
}

/// What [`sync_partition`] decided.
#[derive(Debug, Default)]
pub struct PartitionChanges {
    pub records: Vec<Record>,
    /// Segments opened now: their bytes need verifying.
    pub opened: Vec<SegmentKey>,
    /// Segments that entered the seal queue.
    pub to_seal: Vec<SegmentKey>,
    pub deleted: Vec<SegmentKey>,
}

/// Brings one partition's model in line with `listing` (`None`: the folder is gone).
/// `full` also re-opens sealed segments whose lengths changed (the listing must then
/// carry lengths).
pub fn sync_partition(
    part: &mut PartitionModel,
    pid: PartitionId,
    listing: Option<&Listing>,
    full: bool,
) -> PartitionChanges {
    let empty = Listing::new();
    let present = listing.unwrap_or(&empty);
    let mut out = PartitionChanges::default();
    let gone: Vec<u64> = part
        .segments
        .keys()
        .filter(|s| !present.contains_key(s))
        .copied()
        .collect();
    for start in gone {
        part.segments.remove(&start);
        let segment = pid.segment(start);
        out.records.push(Record::SegmentDeleted { segment });
        out.deleted.push(segment);
    }
    let newest = present.keys().next_back().copied();
    for (&start, lengths) in present {
        let segment = pid.segment(start);
        let reopen = match part.segments.get(&start) {
            None => true,
            Some(Phase::Sealed { log_len, index_len }) if full => {
                lengths.is_some_and(|(l, i)| l != *log_len || i != Some(*index_len))
            }
            Some(_) => false,
        };
        if reopen {
            part.segments
                .insert(start, Phase::open(Tracker::new(segment)));
            out.records.push(Record::SegmentOpened { segment });
            out.opened.push(segment);
        }
        if Some(start) != newest {
            if let Some(phase) = part.segments.get_mut(&start) {
                if let Phase::Open(t) = phase {
                    let tracker = std::mem::replace(&mut **t, Tracker::new(segment));
                    *phase = Phase::sealing(tracker);
                    out.records.push(Record::SealIntent { segment });
                    out.to_seal.push(segment);
                } else if full {
                    if let Phase::Sealing(_) = phase {
                        out.to_seal.push(segment);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(starts: &[u64]) -> Listing {
        starts.iter().map(|&s| (s, None)).collect()
    }

    fn kinds(s: &PartitionChanges) -> Vec<String> {
        s.records
            .iter()
            .map(|r| format!("{}@{}", r.kind(), r.segment().unwrap().start_offset))
            .collect()
    }

    #[test]
    fn rotation_opens_the_new_segment_and_seals_the_old() {
        let pid = PartitionId::new(1, 1, 0);
        let mut part = PartitionModel::default();
        let s = sync_partition(&mut part, pid, Some(&listing(&[0])), false);
        assert_eq!(kinds(&s), ["segment_opened@0"]);
        let s = sync_partition(&mut part, pid, Some(&listing(&[0, 10])), false);
        assert_eq!(kinds(&s), ["seal_intent@0", "segment_opened@10"]);
        assert_eq!(s.to_seal, [pid.segment(0)]);
        // Nothing changed: nothing to say.
        let s = sync_partition(&mut part, pid, Some(&listing(&[0, 10])), false);
        assert!(s.records.is_empty());
        // Retention removed the oldest.
        let s = sync_partition(&mut part, pid, Some(&listing(&[10])), false);
        assert_eq!(kinds(&s), ["segment_deleted@0"]);
        // The partition folder is gone.
        let s = sync_partition(&mut part, pid, None, false);
        assert_eq!(kinds(&s), ["segment_deleted@10"]);
        assert!(part.segments.is_empty());
    }

    #[test]
    fn segments_created_while_away_are_opened_and_all_but_the_newest_sealed() {
        let pid = PartitionId::new(0, 0, 0);
        let mut part = PartitionModel::default();
        let s = sync_partition(&mut part, pid, Some(&listing(&[0, 5, 9])), true);
        assert_eq!(
            kinds(&s),
            [
                "segment_opened@0",
                "seal_intent@0",
                "segment_opened@5",
                "seal_intent@5",
                "segment_opened@9"
            ]
        );
        assert!(matches!(part.segments.get(&9), Some(Phase::Open(_))));
    }

    #[test]
    fn a_sealed_segment_whose_lengths_changed_is_reopened_on_full_sync() {
        let pid = PartitionId::new(0, 0, 0);
        let mut part = PartitionModel::default();
        part.segments.insert(
            0,
            Phase::Sealed {
                log_len: 100,
                index_len: 16,
            },
        );
        part.segments
            .insert(1, Phase::open(Tracker::new(pid.segment(1))));
        let mut same: Listing = BTreeMap::new();
        same.insert(0, Some((100, Some(16))));
        same.insert(1, Some((0, Some(0))));
        assert!(sync_partition(&mut part, pid, Some(&same), true)
            .records
            .is_empty());
        let mut changed = same.clone();
        changed.insert(0, Some((90, Some(16))));
        // An event-driven sync does not stat sealed segments.
        assert!(sync_partition(&mut part, pid, Some(&changed), false)
            .records
            .is_empty());
        let s = sync_partition(&mut part, pid, Some(&changed), true);
        assert_eq!(kinds(&s), ["segment_opened@0", "seal_intent@0"]);
    }

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
