//! The `repairs` tree: the pending repairs, as runs of consecutive ids whose intents
//! are consecutive records.
//!
//! A plan's intents are journaled in one append: ids `first..=last` at seqs
//! `first_seq..`. Keyed one repair per entry, 20,000 intents cost 20,000 sled inserts
//! and their `RepairDone`s 20,000 removals: 90% of the journal's time in `recover`
//! (0.13–0.15 s each way, against 0.01–0.02 s without them). A run is one entry:
//! key its first id (u64 big-endian), value its last id and the seq of its first
//! intent (two u64 big-endian). Since journal format 5; before, the value was the
//! seq alone (a run of one), which is still read as such.
//!
//! A round's changes are worked out before its transaction ([`Edits`]), under the
//! writer's lock, since a sled transaction cannot look up a range: a repair done or
//! failed splits the run that holds it.

use crate::trees::parse_u64;
use std::collections::{BTreeMap, BTreeSet};

/// Repairs `first..=last` are pending; repair `first + i`'s intent is record
/// `first_seq + i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) first_seq: u64,
}

impl Run {
    /// The run an entry of the tree holds; `None` when malformed (a length that is
    /// neither format's, a last id below the first, or seqs past `u64`).
    pub(crate) fn decode(key: &[u8], value: &[u8]) -> Option<Run> {
        let first = parse_u64(key)?;
        let (last, first_seq) = match value.len() {
            8 => (first, parse_u64(value)?),
            16 => (parse_u64(value.get(..8)?)?, parse_u64(value.get(8..)?)?),
            _ => return None,
        };
        let run = Run {
            first,
            last,
            first_seq,
        };
        (last >= first && first_seq.checked_add(last - first).is_some()).then_some(run)
    }

    pub(crate) fn key(&self) -> [u8; 8] {
        self.first.to_be_bytes()
    }

    pub(crate) fn value(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.last.to_be_bytes());
        out[8..].copy_from_slice(&self.first_seq.to_be_bytes());
        out
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        (self.first..=self.last).contains(&id)
    }

    /// The pending repairs of the run, each with its intent's seq.
    pub(crate) fn repairs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        (self.first..=self.last).map(|id| (id, self.first_seq + (id - self.first)))
    }

    /// The run without `id`: none, one or two runs.
    fn without(self, id: u64) -> impl Iterator<Item = Run> {
        let below = (id > self.first).then_some(Run {
            last: id - 1,
            ..self
        });
        let above = (id < self.last).then(|| Run {
            first: id + 1,
            last: self.last,
            first_seq: self.first_seq + (id + 1 - self.first),
        });
        below.into_iter().chain(above)
    }
}

/// What a round changes in the tree: entries to remove (the keys of runs it read and
/// changed), then runs to write.
#[derive(Debug, Default)]
pub(crate) struct Edits {
    removed: BTreeSet<[u8; 8]>,
    /// The runs the round read or made, by first id: what they are now.
    runs: BTreeMap<u64, Run>,
}

impl Edits {
    pub(crate) fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.runs.is_empty()
    }

    /// Repair `id`'s intent, at `seq`: appended to the run the round made last when
    /// it follows it in ids and seqs (the intents of one plan), else a run of its own.
    pub(crate) fn intent(&mut self, id: u64, seq: u64) {
        if let Some((_, run)) = self.runs.range_mut(..id).next_back() {
            let follows = run.last.checked_add(1) == Some(id)
                && run.first_seq.checked_add(id - run.first) == Some(seq);
            if follows {
                run.last = id;
                return;
            }
        }
        self.runs.insert(
            id,
            Run {
                first: id,
                last: id,
                first_seq: seq,
            },
        );
    }

    /// Repair `id` is done or failed: out of the run that holds it, if one does.
    /// `stored` finds the tree's run that may hold `id` (the one with the greatest
    /// first id at or below it).
    pub(crate) fn finished<E>(
        &mut self,
        id: u64,
        stored: impl FnOnce(u64) -> Result<Option<Run>, E>,
    ) -> Result<(), E> {
        let held = self
            .runs
            .range(..=id)
            .next_back()
            .map(|(_, run)| *run)
            .filter(|run| run.contains(id));
        let run = match held {
            Some(run) => run,
            None => match stored(id)? {
                // A run read before is superseded by what `runs` holds of it.
                Some(run) if run.contains(id) && !self.removed.contains(&run.key()) => {
                    self.removed.insert(run.key());
                    run
                }
                _ => return Ok(()),
            },
        };
        self.runs.remove(&run.first);
        for rest in run.without(id) {
            self.runs.insert(rest.first, rest);
        }
        Ok(())
    }

    /// Keys to remove, then runs to write, in that order.
    pub(crate) fn removed(&self) -> impl Iterator<Item = &[u8; 8]> {
        self.removed.iter()
    }

    pub(crate) fn runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: u64, last: u64, first_seq: u64) -> Run {
        Run {
            first,
            last,
            first_seq,
        }
    }

    #[test]
    fn both_formats_decode_and_malformed_entries_do_not() {
        let r = run(5, 9, 100);
        assert_eq!(Run::decode(&r.key(), &r.value()), Some(r));
        // Formats 2 to 4: one repair, the value its intent's seq.
        assert_eq!(
            Run::decode(&7u64.to_be_bytes(), &42u64.to_be_bytes()),
            Some(run(7, 7, 42))
        );
        assert_eq!(Run::decode(&[1, 2], &42u64.to_be_bytes()), None);
        assert_eq!(Run::decode(&7u64.to_be_bytes(), &[0; 12]), None);
        assert_eq!(
            Run::decode(&run(9, 5, 1).key(), &run(9, 5, 1).value()),
            None
        );
        let past = run(1, 3, u64::MAX - 1);
        assert_eq!(Run::decode(&past.key(), &past.value()), None);
        assert_eq!(
            r.repairs().collect::<Vec<_>>(),
            [(5, 100), (6, 101), (7, 102), (8, 103), (9, 104)]
        );
    }

    #[test]
    fn a_plan_s_intents_make_one_run_and_others_their_own() {
        let mut e = Edits::default();
        for (id, seq) in [(10, 50), (11, 51), (12, 52), (14, 53), (15, 60)] {
            e.intent(id, seq);
        }
        let runs: Vec<Run> = e.runs().copied().collect();
        assert_eq!(runs, [run(10, 12, 50), run(14, 14, 53), run(15, 15, 60)]);
    }

    #[test]
    fn finishing_splits_the_run_that_holds_the_repair() {
        let stored = [run(1, 10, 100), run(20, 20, 300)];
        let find = |id: u64| Ok::<_, ()>(stored.iter().rev().find(|r| r.first <= id).copied());
        let mut e = Edits::default();
        for id in [5, 1, 10, 7, 15, 20, 99] {
            e.finished(id, find).unwrap();
        }
        assert_eq!(
            e.removed().copied().collect::<Vec<_>>(),
            [1u64.to_be_bytes(), 20u64.to_be_bytes()]
        );
        let left: Vec<(u64, u64)> = e.runs().flat_map(|r| r.repairs()).collect();
        assert_eq!(
            left,
            [(2, 101), (3, 102), (4, 103), (6, 105), (8, 107), (9, 108)]
        );
        // A run read and changed before is not read again.
        e.finished(3, |_| Ok::<_, ()>(Some(run(1, 10, 100))))
            .unwrap();
        let left: Vec<u64> = e
            .runs()
            .flat_map(|r| r.repairs())
            .map(|(id, _)| id)
            .collect();
        assert_eq!(left, [2, 4, 6, 8, 9]);
        e.finished(5, |_| Ok::<_, ()>(Some(run(1, 10, 100))))
            .unwrap();
        let again: Vec<u64> = e
            .runs()
            .flat_map(|r| r.repairs())
            .map(|(id, _)| id)
            .collect();
        assert_eq!(again, left, "5 was done already: nothing changes");
    }

    #[test]
    fn a_run_journaled_and_finished_in_one_round_leaves_nothing() {
        let mut e = Edits::default();
        e.intent(3, 30);
        e.intent(4, 31);
        let none = |_| Ok::<_, ()>(None);
        e.finished(3, none).unwrap();
        e.finished(4, none).unwrap();
        assert!(e.runs().next().is_none());
        assert!(e.removed().next().is_none());
    }
}
