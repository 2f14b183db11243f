//! The executor's [`RepairLog`] over the sled journal.

use crate::execute::RepairLog;
use journal::{Journal, Record, RepairAction, RepairId};

impl RepairLog for Journal {
    fn record_intents(&self, intents: &[(RepairAction, String)]) -> Result<Vec<RepairId>, String> {
        let mut ids = Vec::with_capacity(intents.len());
        let mut records = Vec::with_capacity(intents.len());
        for (action, reason) in intents {
            let repair = self.next_repair_id().map_err(|e| e.to_string())?;
            ids.push(repair);
            records.push(Record::RepairIntent {
                repair,
                action: action.clone(),
                reason: reason.clone(),
            });
        }
        self.append_batch(records).map_err(|e| e.to_string())?;
        Ok(ids)
    }

    fn record_done(&self, repair: RepairId) -> Result<(), String> {
        self.append(Record::RepairDone { repair })
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn record_failed(&self, repair: RepairId, error: &str) -> Result<(), String> {
        self.append(Record::RepairFailed {
            repair,
            error: error.to_string(),
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    fn pending(&self) -> Result<Vec<(RepairId, RepairAction, String)>, String> {
        let pending = self.pending_repairs().map_err(|e| e.to_string())?;
        Ok(pending
            .into_iter()
            .map(|p| (p.repair, p.action, p.reason))
            .collect())
    }
}
