//! The executor's [`RepairLog`] over the sled journal.

use crate::execute::RepairLog;
use journal::{Journal, JournalError, OffsetsListing, PartitionId, Record, RepairAction, RepairId};

impl RepairLog for Journal {
    fn record_intents(
        &self,
        intents: &[(RepairAction, String)],
        above: Option<RepairId>,
    ) -> Result<Vec<RepairId>, JournalError> {
        // One id from the journal, then the following ones: journaling the intents
        // moves the journal's counter past them, so none is handed out twice. Ids
        // already used in the quarantine (a journal lost or reset since) are skipped.
        let first = self.next_repair_id()?.0;
        let first = first.max(above.map_or(0, |a| a.0.saturating_add(1)));
        let mut ids = Vec::with_capacity(intents.len());
        let mut records = Vec::with_capacity(intents.len());
        for (n, (action, reason)) in intents.iter().enumerate() {
            let repair = RepairId(first.saturating_add(n as u64));
            ids.push(repair);
            records.push(Record::RepairIntent {
                repair,
                action: action.clone(),
                reason: reason.clone(),
            });
        }
        self.append_batch(records)?;
        Ok(ids)
    }

    fn record_done(&self, repair: RepairId) -> Result<(), JournalError> {
        self.append(Record::RepairDone { repair }).map(|_| ())
    }

    fn record_done_all(&self, ids: &[RepairId]) -> Result<(), JournalError> {
        if ids.is_empty() {
            return Ok(());
        }
        let records = ids
            .iter()
            .map(|&repair| Record::RepairDone { repair })
            .collect();
        self.append_batch(records).map(|_| ())
    }

    fn record_failed(&self, repair: RepairId, error: &str) -> Result<(), JournalError> {
        self.append(Record::RepairFailed {
            repair,
            error: error.to_string(),
        })
        .map(|_| ())
    }

    fn record_state_log_verified(
        &self,
        valid_len: u64,
        last_index: u64,
        last_checksum: u64,
    ) -> Result<(), JournalError> {
        self.append(Record::StateLogVerified {
            valid_len,
            last_index,
            last_checksum,
        })
        .map(|_| ())
    }

    fn record_offsets_listings(
        &self,
        fresh: &[(PartitionId, OffsetsListing)],
        gone: &[PartitionId],
    ) -> Result<(), JournalError> {
        Journal::record_offsets_listings(self, fresh, gone)
    }

    fn pending(&self) -> Result<Vec<(RepairId, RepairAction, String)>, JournalError> {
        let pending = self.pending_repairs()?;
        Ok(pending
            .into_iter()
            .map(|p| (p.repair, p.action, p.reason))
            .collect())
    }
}
