//! What the core still has to do for each segment: verify new bytes, journal a
//! checkpoint, or finish a seal.
//!
//! The three sets change together when a segment changes phase (it starts sealing, is
//! sealed, is deleted, or the journal is lent away and its state reloaded), and a
//! forgotten removal shows up only much later as a checkpoint for a sealed segment or a
//! seal retried forever. So the sets live here, changed only through methods named
//! after those events, each keeping the sets consistent with the others.
//!
//! The sets are hints, not the truth: the model's phase is. A stale entry (a segment
//! whose phase changed without an event here) is dropped by the core when it looks at
//! the segment and finds it in another phase.

use journal::SegmentKey;
use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub(super) struct Worklist {
    /// Open segments written since they were last verified.
    to_verify: BTreeSet<SegmentKey>,
    /// Open segments verified further than their last checkpoint.
    to_checkpoint: BTreeSet<SegmentKey>,
    /// Segments in the `Sealing` phase whose seal is not journaled yet.
    to_seal: BTreeSet<SegmentKey>,
}

impl Worklist {
    /// An open segment was written (or may have been): verify its new bytes.
    pub(super) fn written(&mut self, key: SegmentKey) {
        self.to_verify.insert(key);
    }

    pub(super) fn all_written(&mut self, keys: impl IntoIterator<Item = SegmentKey>) {
        self.to_verify.extend(keys);
    }

    /// Verification went as far as it can for now (or the segment is no longer open).
    pub(super) fn verified(&mut self, key: SegmentKey) {
        self.to_verify.remove(&key);
    }

    /// The segment's verified position moved past its journaled checkpoint.
    pub(super) fn advanced(&mut self, key: SegmentKey) {
        self.to_checkpoint.insert(key);
    }

    /// The segments to journal a checkpoint for; none are left afterwards.
    pub(super) fn take_advanced(&mut self) -> Vec<SegmentKey> {
        std::mem::take(&mut self.to_checkpoint)
            .into_iter()
            .collect()
    }

    /// The segment is to be sealed (it has a successor, or a seal is retried): it is
    /// verified by its seal check from now on, not as an open segment.
    pub(super) fn seal(&mut self, key: SegmentKey) {
        self.to_verify.remove(&key);
        self.to_seal.insert(key);
    }

    /// The seal is journaled: nothing is left to do for the segment.
    pub(super) fn sealed(&mut self, key: SegmentKey) {
        self.to_seal.remove(&key);
        self.to_checkpoint.remove(&key);
    }

    /// The segment turned out not to be sealing any more (its phase changed).
    pub(super) fn not_sealing(&mut self, key: SegmentKey) {
        self.to_seal.remove(&key);
    }

    /// The segment's files are gone.
    pub(super) fn deleted(&mut self, key: SegmentKey) {
        self.to_verify.remove(&key);
        self.to_checkpoint.remove(&key);
        self.to_seal.remove(&key);
    }

    /// The model was reloaded from the journal: what was pending refers to the old one.
    pub(super) fn forget_all(&mut self) {
        *self = Self::default();
    }

    pub(super) fn to_verify(&self) -> Vec<SegmentKey> {
        self.to_verify.iter().copied().collect()
    }

    pub(super) fn verify_backlog(&self) -> usize {
        self.to_verify.len()
    }

    pub(super) fn has_checkpoints(&self) -> bool {
        !self.to_checkpoint.is_empty()
    }

    pub(super) fn sealing(&self) -> impl Iterator<Item = &SegmentKey> {
        self.to_seal.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal::PartitionId;

    fn seg(start: u64) -> SegmentKey {
        PartitionId::new(1, 1, 1).segment(start)
    }

    fn is_verified(w: &Worklist, key: SegmentKey) -> bool {
        !w.to_verify().contains(&key)
    }

    /// The rule `seal` keeps: a segment waiting for its seal is not also waiting to be
    /// verified as an open one.
    fn sealing_is_not_verified_as_open(w: &Worklist) {
        for key in w.sealing() {
            assert!(is_verified(w, *key), "{key} is both sealing and to verify");
        }
    }

    #[test]
    fn a_segment_written_then_advanced_then_sealed() {
        let mut w = Worklist::default();
        let key = seg(0);
        w.written(key);
        assert_eq!(w.to_verify(), [key]);
        assert_eq!(w.verify_backlog(), 1);
        assert!(!w.has_checkpoints());

        // Verified past its checkpoint: done verifying, a checkpoint is due.
        w.verified(key);
        w.advanced(key);
        assert_eq!(w.verify_backlog(), 0);
        assert!(w.has_checkpoints());

        // Written again, then a successor appears: it is sealed, not verified as open.
        w.written(key);
        w.seal(key);
        sealing_is_not_verified_as_open(&w);
        assert_eq!(w.sealing().copied().collect::<Vec<_>>(), [key]);
        assert!(is_verified(&w, key));

        w.sealed(key);
        assert_eq!(w.sealing().count(), 0);
        assert!(!w.has_checkpoints(), "no checkpoint after the seal");
        assert_eq!(w.take_advanced(), []);
    }

    #[test]
    fn taking_the_checkpoints_empties_them() {
        let mut w = Worklist::default();
        w.advanced(seg(0));
        w.advanced(seg(10));
        w.advanced(seg(0));
        assert_eq!(w.take_advanced(), [seg(0), seg(10)]);
        assert!(!w.has_checkpoints());
        assert_eq!(w.take_advanced(), []);
    }

    #[test]
    fn a_deleted_segment_leaves_no_work_and_others_keep_theirs() {
        let mut w = Worklist::default();
        let (gone, kept) = (seg(0), seg(10));
        for key in [gone, kept] {
            w.written(key);
            w.advanced(key);
        }
        w.seal(gone);
        w.deleted(gone);
        assert_eq!(w.to_verify(), [kept]);
        assert_eq!(w.sealing().count(), 0);
        assert_eq!(w.take_advanced(), [kept]);

        w.all_written([gone, kept]);
        w.forget_all();
        assert_eq!(w.verify_backlog(), 0);
        assert!(!w.has_checkpoints());
        assert_eq!(w.sealing().count(), 0);
    }

    #[test]
    fn a_stale_seal_is_dropped_alone() {
        let mut w = Worklist::default();
        let key = seg(0);
        w.advanced(key);
        w.seal(key);
        w.not_sealing(key);
        assert_eq!(w.sealing().count(), 0);
        assert!(w.has_checkpoints(), "its checkpoint is still due");
    }
}
