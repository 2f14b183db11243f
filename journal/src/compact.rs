//! Compaction: forget what no longer matters for recovery.
//!
//! Dropped: every record of a segment whose state is `Deleted` (and its state entry),
//! checkpoints superseded by a newer one of the same segment, and `StateLogVerified`
//! records but the one the standing state-log mark comes from (counted as
//! checkpoints). Kept: everything
//! else, repair records included, since `restore` needs their history. Kept records
//! keep their seqs. Before dropping anything, compaction durably records a watermark
//! (`compacted_through`): gaps at or below it are compaction's doing, and `verify`
//! does not report them. The fold in [`crate::state`] gives the same state with or
//! without the dropped records, so the `state` tree stays what a replay would give.
//!
//! A crash part-way leaves some droppable records behind, never a half-dropped
//! segment: a segment's records and its state entry go in one transaction.

use crate::block;
use crate::error::JournalError;
use crate::record::{Entry, Record};
use crate::state::{SegmentPhase, SegmentState};
use crate::store::{Journal, Writer};
use crate::trees::{
    decode_state, parse_u64, seq_key, shielded, META_COMPACTED_THROUGH, META_DROPPED,
};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::collections::{BTreeMap, BTreeSet};

/// Records of deleted segments removed per transaction: big enough to amortise, small
/// enough to keep a transaction's write set modest.
const DELETIONS_PER_TRANSACTION: u64 = 4096;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Records in the log before compaction.
    pub records_before: u64,
    pub records_dropped: u64,
    /// Deleted segments forgotten.
    pub segments_dropped: u64,
    pub checkpoints_dropped: u64,
    /// The watermark after this compaction.
    pub compacted_through: u64,
    /// Bytes of the journal directory before and after (sled reuses space it frees
    /// rather than shrinking its file, so `size_after` can be larger).
    pub size_before: u64,
    pub size_after: u64,
}

impl Journal {
    /// Compacts the journal; appends wait while it runs.
    pub fn compact(&self) -> Result<CompactReport, JournalError> {
        let mut writer = self.lock_writer()?;
        if let Some(why) = &writer.poisoned {
            return Err(self.poisoned(why.clone()));
        }
        let size_before = self.disk_size()?;
        let mut report = shielded(&self.path, "compact", || self.compact_locked(&mut writer))?;
        drop(writer);
        report.size_before = size_before;
        report.size_after = self.disk_size()?;
        Ok(report)
    }

    fn compact_locked(&self, writer: &mut Writer) -> Result<CompactReport, JournalError> {
        let through = writer.next_seq.saturating_sub(1);
        // Compaction removes state entries behind the writer's cache.
        writer.states.clear();
        let sled_err = |e| self.sled_err(e);
        let mut states: BTreeMap<[u8; 20], SegmentState> = BTreeMap::new();
        for item in self.state.iter() {
            let (k, v) = item.map_err(sled_err)?;
            let (segment, state) = decode_state(&self.path, &k, &v)?;
            states.insert(segment.to_bytes(), state);
        }

        let mut report = CompactReport::default();
        // For each deleted segment, the blocks that hold its records; for each other
        // block, the superseded checkpoints it holds.
        let mut deleted: BTreeMap<[u8; 20], (BTreeSet<u64>, u64)> = states
            .iter()
            .filter(|(_, s)| s.phase == SegmentPhase::Deleted)
            .map(|(k, _)| (*k, (BTreeSet::new(), 0)))
            .collect();
        let mut superseded: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        let mark_seq = self.state_log_mark()?.map(|m| m.seq);
        for item in self.log.iter() {
            let (k, v) = item.map_err(sled_err)?;
            // A damaged block stops compaction: dropping around damage could hide it.
            let entries = block::decode(&self.path, &k, &v)?;
            let block_key = block::block_key(&self.path, &k)?;
            for entry in entries {
                report.records_before += 1;
                if matches!(entry.record, Record::StateLogVerified { .. })
                    && mark_seq != Some(entry.seq)
                {
                    superseded.entry(block_key).or_default().insert(entry.seq);
                    continue;
                }
                let Some(segment) = entry.record.segment() else {
                    continue;
                };
                let key = segment.to_bytes();
                if let Some((blocks, records)) = deleted.get_mut(&key) {
                    blocks.insert(block_key);
                    *records += 1;
                } else if let (Record::Checkpoint { .. }, Some(state)) =
                    (&entry.record, states.get(&key))
                {
                    if state.checkpoint.map(|c| c.seq) != Some(entry.seq) {
                        superseded.entry(block_key).or_default().insert(entry.seq);
                    }
                }
            }
        }
        report.compacted_through = self.compacted_through()?;
        if deleted.is_empty() && superseded.is_empty() {
            return Ok(report);
        }

        // The watermark must be durable before the first gap it explains.
        self.meta
            .insert(META_COMPACTED_THROUGH, &through.to_be_bytes())
            .map_err(sled_err)?;
        self.flush_locked(writer)?;
        report.compacted_through = through;

        report.segments_dropped = deleted.len() as u64;
        let mut chunk: Vec<([u8; 20], BTreeSet<u64>)> = Vec::new();
        let mut chunk_records = 0;
        for (key, (blocks, records)) in deleted {
            chunk_records += records;
            report.records_dropped += records;
            chunk.push((key, blocks));
            if chunk_records >= DELETIONS_PER_TRANSACTION {
                self.drop_segments(&chunk)?;
                chunk.clear();
                chunk_records = 0;
            }
        }
        self.drop_segments(&chunk)?;

        // Dropping a superseded checkpoint leaves every state as it was (see
        // `state.rs`), so these blocks need no transaction with the `state` tree.
        for (block_key, seqs) in &superseded {
            report.checkpoints_dropped += seqs.len() as u64;
            let key = seq_key(*block_key);
            let Some(value) = self.log.get(key).map_err(sled_err)? else {
                continue;
            };
            let entries = block::decode(&self.path, &key, &value)?;
            match self.without(entries, |e| seqs.contains(&e.seq))? {
                Some(bytes) => self.log.insert(key, bytes).map_err(sled_err)?,
                None => self.log.remove(key).map_err(sled_err)?,
            };
        }
        report.records_dropped += report.checkpoints_dropped;

        let dropped_before = match self.meta.get(META_DROPPED).map_err(sled_err)? {
            Some(v) => parse_u64(&v).unwrap_or(0),
            None => 0,
        };
        self.meta
            .insert(
                META_DROPPED,
                &dropped_before
                    .saturating_add(report.records_dropped)
                    .to_be_bytes(),
            )
            .map_err(sled_err)?;
        self.flush_locked(writer)?;
        Ok(report)
    }

    /// `entries` without those `drop` picks, encoded as a block; `None` when nothing
    /// is left.
    fn without(
        &self,
        entries: Vec<Entry>,
        drop: impl Fn(&Entry) -> bool,
    ) -> Result<Option<Vec<u8>>, JournalError> {
        let kept: Vec<Entry> = entries.into_iter().filter(|e| !drop(e)).collect();
        if kept.is_empty() {
            return Ok(None);
        }
        block::encode(&kept)
            .map(Some)
            .map_err(|e| JournalError::corrupt(&self.path, format!("cannot encode records: {e}")))
    }

    /// Removes whole segments, records and state entry together: each segment's
    /// blocks are rewritten without its records in the transaction that removes its
    /// state.
    fn drop_segments(&self, segments: &[([u8; 20], BTreeSet<u64>)]) -> Result<(), JournalError> {
        if segments.is_empty() {
            return Ok(());
        }
        let gone: BTreeSet<[u8; 20]> = segments.iter().map(|(k, _)| *k).collect();
        let blocks: BTreeSet<u64> = segments
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        let abort = ConflictableTransactionError::Abort;
        let result = (&self.log, &self.state).transaction(|(log, state)| {
            for block_key in &blocks {
                let key = seq_key(*block_key);
                let Some(value) = log.get(key)? else {
                    continue;
                };
                let entries = block::decode(&self.path, &key, &value).map_err(abort)?;
                let rewritten = self
                    .without(entries, |e| {
                        e.record
                            .segment()
                            .is_some_and(|s| gone.contains(&s.to_bytes()))
                    })
                    .map_err(abort)?;
                match rewritten {
                    Some(bytes) => log.insert(&key[..], bytes)?,
                    None => log.remove(&key[..])?,
                };
            }
            for key in &gone {
                state.remove(&key[..])?;
            }
            Ok::<(), ConflictableTransactionError<JournalError>>(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(self.sled_err(e)),
        }
    }

    /// The compaction watermark: seqs up to it may have been dropped.
    pub fn compacted_through(&self) -> Result<u64, JournalError> {
        match self
            .meta
            .get(META_COMPACTED_THROUGH)
            .map_err(|e| self.sled_err(e))?
        {
            None => Ok(0),
            Some(v) => parse_u64(&v).ok_or_else(|| {
                JournalError::corrupt(&self.path, "compaction watermark is malformed")
            }),
        }
    }
}
