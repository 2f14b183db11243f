//! What a partition's `offsets` folders held when `recover` last listed them whole,
//! with the folders' stamps: a guided run that finds the same stamps takes the names
//! from here instead of listing the three folders (on a cold cache, three of the four
//! folder reads a partition costs).
//!
//! Adding, removing or renaming an entry moves a folder's modification time, so
//! unchanged stamps mean unchanged names. The files themselves are looked at again
//! by every run (their length, and their 8 bytes), so nothing is trusted about what
//! they hold. A listing is journaled only when its stamps were settled (see
//! [`crate::FileStamp::settled`]): a change in the same tick of the file system's
//! clock would not have moved them.
//!
//! Not a record of the log but a hint in its own tree (`listings`), replaced as the
//! folders change: losing it costs a listing, never a wrong answer. Journals of
//! earlier builds have no such tree and are read as they are.

use crate::error::JournalError;
use crate::key::PartitionId;
use crate::stamp::FileStamp;
use crate::store::Journal;
use crate::trees::shielded;
use crate::{envelope, key::SegmentKey};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A partition's `offsets`, `offsets/consumers` and `offsets/groups` folders as
/// listed: their stamps and the names of the offset files in the last two. Only a
/// listing without strays, links or other folders in them is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetsListing {
    pub offsets: FileStamp,
    pub consumers: FileStamp,
    pub groups: FileStamp,
    pub consumer_files: Vec<String>,
    pub group_files: Vec<String>,
}

fn key(partition: PartitionId) -> [u8; 12] {
    let bytes = partition.segment(0).to_bytes();
    let mut out = [0u8; 12];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b;
    }
    out
}

fn partition_of(key: &[u8]) -> Option<PartitionId> {
    if key.len() != 12 {
        return None;
    }
    let mut full = key.to_vec();
    full.extend_from_slice(&[0; 8]);
    SegmentKey::from_bytes(&full).map(|k| k.partition)
}

/// Why one entry of the `listings` tree does not decode.
#[derive(Debug, thiserror::Error)]
enum ListingError {
    #[error("listing key of {0} bytes")]
    Key(usize),
    #[error("offsets listing of partition {0}: {1}")]
    Value(PartitionId, envelope::EnvelopeError),
}

fn decode(key: &[u8], value: &[u8]) -> Result<(PartitionId, OffsetsListing), ListingError> {
    let partition = partition_of(key).ok_or(ListingError::Key(key.len()))?;
    let listing = envelope::decode(value).map_err(|e| ListingError::Value(partition, e))?;
    Ok((partition, listing))
}

impl Journal {
    /// Every partition's journaled offsets listing. A value that does not decode is
    /// an error naming it: the caller lists every folder instead.
    pub fn offsets_listings(&self) -> Result<HashMap<PartitionId, OffsetsListing>, JournalError> {
        shielded(&self.path, "read", || {
            let mut out = HashMap::new();
            for item in self.listings.iter() {
                let (k, v) = item.map_err(|e| self.sled_err(e))?;
                let (partition, listing) = decode(&k, &v).map_err(|e| self.listing_error(e))?;
                out.insert(partition, listing);
            }
            Ok(out)
        })
    }

    /// What `journal verify` reports of the listings: each key or value that does
    /// not decode.
    pub(crate) fn listing_problems(&self) -> Result<Vec<String>, JournalError> {
        let mut out = Vec::new();
        for item in self.listings.iter() {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            if let Err(e) = decode(&k, &v) {
                out.push(e.to_string());
            }
        }
        Ok(out)
    }

    fn listing_error(&self, e: ListingError) -> JournalError {
        match e {
            ListingError::Key(_) => JournalError::corrupt(&self.path, e.to_string()),
            ListingError::Value(partition, e) => JournalError::from_envelope(
                &self.path,
                &format!("offsets listing of partition {partition}"),
                e,
            ),
        }
    }

    /// Journals `fresh` listings (replacing a partition's earlier one) and forgets
    /// those of the partitions `gone`, durably (one flush). A failed flush refuses
    /// further writes, as for records.
    pub fn record_offsets_listings(
        &self,
        fresh: &[(PartitionId, OffsetsListing)],
        gone: &[PartitionId],
    ) -> Result<(), JournalError> {
        let mut batch = sled::Batch::default();
        for (partition, listing) in fresh {
            let value = envelope::encode(listing).map_err(|e| {
                JournalError::from_envelope(
                    &self.path,
                    &format!("offsets listing of partition {partition}"),
                    e,
                )
            })?;
            batch.insert(&key(*partition), value);
        }
        for partition in gone {
            batch.remove(&key(*partition));
        }
        let mut w = self.lock_writer()?;
        if let Some(why) = &w.poisoned {
            return Err(self.poisoned(why.clone()));
        }
        shielded(&self.path, "write", || {
            self.listings
                .apply_batch(batch)
                .map_err(|e| self.sled_err(e))
        })?;
        self.flush_locked(&mut w)
    }
}

#[cfg(test)]
mod tests;
