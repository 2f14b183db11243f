//! Where the executor journals what it does: the seam between the executor and
//! the sled journal, which tests replace with one in memory.

use journal::{JournalError, OffsetsListing, PartitionId, RepairAction, RepairId};

/// Where repairs are journaled: implemented over the sled journal, and in memory for
/// tests. Every call returns only once what it wrote is durable.
pub trait RepairLog: Sync {
    /// Allocates ids for and records the intents of a whole plan. Every id is
    /// above `above` (the highest id the quarantine holds) and never handed out again.
    fn record_intents(
        &self,
        intents: &[(RepairAction, String)],
        above: Option<RepairId>,
    ) -> Result<Vec<RepairId>, JournalError>;
    fn record_done(&self, id: RepairId) -> Result<(), JournalError>;
    /// Records that every repair in `ids` is done, durable together (one flush).
    fn record_done_all(&self, ids: &[RepairId]) -> Result<(), JournalError> {
        ids.iter().try_for_each(|id| self.record_done(*id))
    }
    fn record_failed(&self, id: RepairId, error: &str) -> Result<(), JournalError>;
    /// Intents with neither done nor failed, oldest first.
    fn pending(&self) -> Result<Vec<(RepairId, RepairAction, String)>, JournalError>;
    /// Records that `state/log` was verified whole up to `valid_len`, where the entry
    /// with index `last_index` and stored checksum `last_checksum` ends (after an
    /// operator accepted a log shorter than the one verified before). A log without
    /// such a record (the default) just verifies the whole state log every time.
    fn record_state_log_verified(
        &self,
        _valid_len: u64,
        _last_index: u64,
        _last_checksum: u64,
    ) -> Result<(), JournalError> {
        Ok(())
    }
    /// Journals offsets listings (`journal::listing`) and forgets those of the
    /// partitions `gone`. A log without listings (the default) has every offsets
    /// folder read on each run.
    fn record_offsets_listings(
        &self,
        _fresh: &[(PartitionId, OffsetsListing)],
        _gone: &[PartitionId],
    ) -> Result<(), JournalError> {
        Ok(())
    }
}
