//! The durable write path: appends and repair-id allocation, through group commit.
//!
//! Every operation goes through the commit queue ([`crate::group`]). The round's
//! leader holds the writer lock, numbers the queued records, writes them as one `log`
//! value (see `block.rs`) together with the derived `state`/`repairs`/`meta` entries
//! in ONE sled transaction, then flushes once and only then answers. So:
//! - the derived trees never disagree with the log (one transaction);
//! - seqs are gapless in commit order: a crash loses a suffix of unflushed records,
//!   never one in the middle;
//! - an acknowledged record is durable (the flush covered it).

use crate::action::RepairId;
use crate::block;
use crate::envelope;
use crate::error::JournalError;
use crate::pending::{Edits, Run};
use crate::record::{now_micros, Entry, Record};
use crate::state::{SegmentState, UnsealedState};
use crate::store::{Journal, Op, StateLogMark, Writer};
use crate::trees::{decode_state, seq_key, shielded, META_NEXT_REPAIR, META_STATE_LOG};
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::Transactional;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

type Outcome = Result<Vec<u64>, JournalError>;

/// Bound of the writer's cache of segment states (about 72 bytes each). The cache
/// saves the read of the previous state from sled on the hot path; only the writer
/// changes the `state` tree, under the writer lock, so the cache cannot go stale.
const STATE_CACHE_ENTRIES: usize = 65_536;

impl Journal {
    /// Appends one record; returns its seq once a flush covers it.
    pub fn append(&self, record: Record) -> Result<u64, JournalError> {
        let seqs = self.append_batch(vec![record])?;
        seqs.first()
            .copied()
            .ok_or_else(|| JournalError::corrupt(&self.path, "append wrote no record"))
    }

    /// Appends records atomically (all or none) and durably; returns their seqs, which
    /// are consecutive.
    pub fn append_batch(&self, records: Vec<Record>) -> Result<Vec<u64>, JournalError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(Op::Append(records))
    }

    /// Hands out a fresh repair id; it is durable before it is returned, so a crash
    /// cannot make two repairs share a quarantine folder.
    pub fn next_repair_id(&self) -> Result<RepairId, JournalError> {
        let ids = self.submit(Op::AllocRepairId)?;
        ids.first()
            .map(|id| RepairId(*id))
            .ok_or_else(|| JournalError::corrupt(&self.path, "no repair id allocated"))
    }

    fn submit(&self, op: Op) -> Outcome {
        self.queue
            .submit(op, |ops| self.commit_round(ops))
            .map_err(|_| self.poisoned("the commit queue was broken by a panic".to_string()))?
    }

    /// Runs one round for the queued `ops`: all succeed together or all fail.
    fn commit_round(&self, ops: Vec<Op>) -> Vec<Outcome> {
        let n = ops.len();
        let result = shielded(&self.path, "append", || {
            let mut w = self.lock_writer()?;
            if let Some(why) = &w.poisoned {
                return Err(self.poisoned(why.clone()));
            }
            let started = Instant::now();
            let outs = self.write_ops(&mut w, ops)?;
            w.write_time += started.elapsed();
            self.flush_locked(&mut w)?;
            Ok(outs)
        });
        match result {
            Ok(outs) => outs.into_iter().map(Ok).collect(),
            Err(e) => {
                let mut outs: Vec<Outcome> = (1..n).map(|_| Err(e.duplicate())).collect();
                outs.push(Err(e));
                outs
            }
        }
    }

    /// Flushes everything written so far. The caller holds the writer lock (`w`).
    pub(crate) fn flush_locked(&self, w: &mut Writer) -> Result<(), JournalError> {
        let started = Instant::now();
        let result = shielded(&self.path, "flush", || {
            self.db.flush().map(drop).map_err(|e| self.sled_err(e))
        });
        w.flushes += 1;
        w.flush_time += started.elapsed();
        match result {
            Ok(()) => {
                // A failed marker write only weakens the lost-records check; the records
                // themselves are durable, so the append still succeeds.
                if let Err(e) = self.acked.record(w.next_seq.saturating_sub(1)) {
                    tracing::warn!(path = %self.path.display(), error = %e,
                        "cannot update the acknowledged-seq marker");
                }
                Ok(())
            }
            Err(e) => {
                w.poisoned = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Numbers and writes `ops` in one transaction; `w` changes only if it commits.
    fn write_ops(&self, w: &mut Writer, ops: Vec<Op>) -> Result<Vec<Vec<u64>>, JournalError> {
        let path = self.path.as_path();
        let unix_micros = now_micros();
        let mut next_seq = w.next_seq;
        let mut next_repair_id = w.next_repair_id;
        let mut entries = Vec::new();
        let mut outs = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Append(records) => {
                    let first = next_seq;
                    for record in records {
                        if let Record::RepairIntent { repair, .. } = &record {
                            // An id chosen elsewhere must never be handed out again.
                            next_repair_id = next_repair_id.max(repair.0.saturating_add(1));
                        }
                        entries.push(Entry {
                            seq: next_seq,
                            unix_micros,
                            record,
                        });
                        next_seq += 1;
                    }
                    outs.push((first..next_seq).collect());
                }
                Op::AllocRepairId => {
                    outs.push(vec![next_repair_id]);
                    next_repair_id += 1;
                }
            }
        }
        let mut blocks = Vec::new();
        for chunk in entries.chunks(block::MAX_ENTRIES) {
            let bytes = block::encode(chunk)
                .map_err(|e| JournalError::corrupt(path, format!("cannot encode records: {e}")))?;
            blocks.push((chunk.first().map_or(0, |e| e.seq), bytes));
        }
        let pending = self.pending_edits(&entries)?;
        let round = Round {
            path,
            entries: &entries,
            blocks: &blocks,
            cache: &w.states,
            pending: &pending,
            bump_repair_id: (next_repair_id != w.next_repair_id).then_some(next_repair_id),
        };
        // A transaction costs more per tree it spans (measured: 4 trees about twice
        // 2 trees), and most rounds touch neither `repairs` nor `meta`.
        let result = if round.touches_repairs() {
            (&self.log, &self.state, &self.repairs, &self.meta).transaction(
                |(log, state, repairs, meta)| round.write(log, state, Some((repairs, meta))),
            )
        } else {
            (&self.log, &self.state).transaction(|(log, state)| round.write(log, state, None))
        };
        let folded = match result {
            Ok(folded) => folded,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(self.sled_err(e)),
        };
        if w.states.len() + folded.len() > STATE_CACHE_ENTRIES {
            w.states.clear();
        }
        // Only segments still being written get more records soon; a sealed or deleted
        // one rarely does, and caching it too doubled the cache's memory in the sidecar.
        for (key, state) in folded {
            match UnsealedState::of(&state) {
                Some(unsealed) => w.states.insert(key, unsealed),
                None => w.states.remove(&key),
            };
        }
        w.next_seq = next_seq;
        w.next_repair_id = next_repair_id;
        w.appended += entries.len() as u64;
        Ok(outs)
    }

    /// What `entries` change in the `repairs` tree (see `pending.rs`). The caller
    /// holds the writer's lock, so the tree read here is what the round's
    /// transaction will change.
    fn pending_edits(&self, entries: &[Entry]) -> Result<Edits, JournalError> {
        let mut edits = Edits::default();
        let stored = |id: u64| -> Result<Option<Run>, JournalError> {
            let found = self.repairs.range(..=id.to_be_bytes()).next_back();
            let entry = found.transpose().map_err(|e| self.sled_err(e))?;
            // A malformed entry holds no run: `verify` reports it.
            Ok(entry.and_then(|(k, v)| Run::decode(&k, &v)))
        };
        for entry in entries {
            match &entry.record {
                Record::RepairIntent { repair, .. } => edits.intent(repair.0, entry.seq),
                Record::RepairDone { repair } | Record::RepairFailed { repair, .. } => {
                    edits.finished(repair.0, stored)?;
                }
                _ => {}
            }
        }
        Ok(edits)
    }
}

type Folded = HashMap<[u8; 20], SegmentState>;

/// What one round writes, shared by the two shapes of its transaction.
struct Round<'a> {
    path: &'a Path,
    entries: &'a [Entry],
    /// The entries encoded as `log` values: (key, bytes).
    blocks: &'a [(u64, Vec<u8>)],
    cache: &'a HashMap<[u8; 20], UnsealedState>,
    /// The round's changes to the `repairs` tree.
    pending: &'a Edits,
    bump_repair_id: Option<u64>,
}

impl Round<'_> {
    fn touches_repairs(&self) -> bool {
        self.bump_repair_id.is_some()
            || self.entries.iter().any(|e| {
                e.record.repair().is_some() || matches!(e.record, Record::StateLogVerified { .. })
            })
    }

    /// The transaction body; `repairs_meta` is `Some` exactly when
    /// [`Round::touches_repairs`]. Returns the new state of every segment written.
    fn write(
        &self,
        log: &TransactionalTree,
        state: &TransactionalTree,
        repairs_meta: Option<(&TransactionalTree, &TransactionalTree)>,
    ) -> ConflictableTransactionResult<Folded, JournalError> {
        let abort = ConflictableTransactionError::Abort;
        let missing_trees = || {
            abort(JournalError::corrupt(
                self.path,
                "repair record in a round without the repairs tree",
            ))
        };
        // Fold within the round first, so each segment's state is written once.
        for (first, bytes) in self.blocks {
            log.insert(&seq_key(*first)[..], bytes.as_slice())?;
        }
        let mut folded = Folded::new();
        for entry in self.entries {
            if let Some(segment) = entry.record.segment() {
                let key = segment.to_bytes();
                let prev = match folded
                    .remove(&key)
                    .or_else(|| self.cache.get(&key).map(|u| u.state()))
                {
                    Some(s) => Some(s),
                    None => match state.get(key)? {
                        Some(v) => Some(decode_state(self.path, &key, &v).map_err(abort)?.1),
                        None => None,
                    },
                };
                if let Some(next) = SegmentState::apply(prev.as_ref(), entry.seq, &entry.record) {
                    folded.insert(key, next);
                }
            }
            match &entry.record {
                Record::RepairIntent { .. } => {
                    let (_, meta) = repairs_meta.ok_or_else(missing_trees)?;
                    // A repair may change state/log: verify it whole until a new mark.
                    meta.remove(META_STATE_LOG)?;
                }
                Record::StateLogVerified {
                    valid_len,
                    last_index,
                    last_checksum,
                } => {
                    let (_, meta) = repairs_meta.ok_or_else(missing_trees)?;
                    let mark = StateLogMark {
                        seq: entry.seq,
                        unix_micros: entry.unix_micros,
                        valid_len: *valid_len,
                        last_index: *last_index,
                        last_checksum: *last_checksum,
                    };
                    let bytes = envelope::encode(&mark).map_err(|e| {
                        abort(JournalError::corrupt(
                            self.path,
                            format!("cannot encode the state/log mark: {e}"),
                        ))
                    })?;
                    meta.insert(META_STATE_LOG, bytes)?;
                }
                _ => {}
            }
        }
        if !self.pending.is_empty() {
            let (repairs, _) = repairs_meta.ok_or_else(missing_trees)?;
            for key in self.pending.removed() {
                repairs.remove(&key[..])?;
            }
            for run in self.pending.runs() {
                repairs.insert(&run.key()[..], &run.value()[..])?;
            }
        }
        for (key, st) in &folded {
            let bytes = envelope::encode(st).map_err(|e| {
                abort(JournalError::corrupt(
                    self.path,
                    format!("cannot encode state: {e}"),
                ))
            })?;
            state.insert(&key[..], bytes)?;
        }
        if let Some(next_repair_id) = self.bump_repair_id {
            let (_, meta) = repairs_meta.ok_or_else(missing_trees)?;
            meta.insert(META_NEXT_REPAIR, &next_repair_id.to_be_bytes()[..])?;
        }
        Ok(folded)
    }
}
