//! A `log` tree value: the records one commit round wrote, under the seq of its first.
//!
//! sled copies a leaf node on every insert, so a key per record made the `log` tree
//! the most expensive part of a round (sled alone, a round of 57 records with their
//! state entries: 5.4 µs a record with a key each, 1.7 µs with one value per round).
//! One value per round costs one insert however many appenders the round serves.
//!
//! A block's entries have strictly increasing seqs, the first at least the block's key
//! (compaction can drop entries, the first included, without re-keying the block).
//! Blocks do not overlap, so the block holding seq `s` is the last one keyed `<= s`.

use crate::envelope::{self, EnvelopeError};
use crate::error::JournalError;
use crate::record::Entry;
use crate::trees::{parse_u64, seq_key};
use std::path::Path;

/// Entries per block at most (about 12 KiB). A round of appenders fits in one, and a
/// large batch (a whole repair plan) is split. Bigger blocks make sled's nodes cross
/// its blob threshold (a quarter of a 512 KiB segment) and be written as separate
/// files: with 1,024 the 1,000,000-cycle bench ended at 20.7 MiB and still growing,
/// with 128 at 12.5 MiB.
pub(crate) const MAX_ENTRIES: usize = 128;

pub(crate) fn encode(entries: &[Entry]) -> Result<Vec<u8>, EnvelopeError> {
    envelope::encode(&entries)
}

/// Decodes the block stored under `key`, checking its seqs against the key.
pub(crate) fn decode(path: &Path, key: &[u8], value: &[u8]) -> Result<Vec<Entry>, JournalError> {
    let first = block_key(path, key)?;
    let entries: Vec<Entry> = envelope::decode(value)
        .map_err(|e| JournalError::from_envelope(path, &format!("log block {first}"), e))?;
    if entries.is_empty() {
        return Err(JournalError::corrupt(
            path,
            format!("log block {first} is empty"),
        ));
    }
    let mut floor = first;
    for (i, entry) in entries.iter().enumerate() {
        if entry.seq < floor || (i > 0 && entry.seq == floor) {
            return Err(JournalError::corrupt(
                path,
                format!(
                    "log block {first} holds seq {} after seq {floor}: out of order",
                    entry.seq
                ),
            ));
        }
        floor = entry.seq;
    }
    Ok(entries)
}

pub(crate) fn block_key(path: &Path, key: &[u8]) -> Result<u64, JournalError> {
    parse_u64(key)
        .ok_or_else(|| JournalError::corrupt(path, format!("log key of {} bytes", key.len())))
}

/// Key and value of the block that holds `seq`, if any block could.
pub(crate) fn holding(
    log: &sled::Tree,
    seq: u64,
) -> sled::Result<Option<(sled::IVec, sled::IVec)>> {
    log.range(..=seq_key(seq)).next_back().transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::RepairId;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            unix_micros: 1,
            record: Record::RepairDone {
                repair: RepairId(seq),
            },
        }
    }

    #[test]
    fn a_block_round_trips_and_its_order_is_checked() {
        let path = Path::new("j");
        let entries = vec![entry(5), entry(6), entry(9)];
        let bytes = encode(&entries).unwrap();
        assert_eq!(decode(path, &seq_key(5), &bytes).unwrap(), entries);
        // Compaction may have dropped the first entries: the key stays a lower bound.
        assert_eq!(decode(path, &seq_key(3), &bytes).unwrap(), entries);
        assert!(
            decode(path, &seq_key(6), &bytes).is_err(),
            "seq below the key"
        );
        let unordered = encode(&[entry(5), entry(5)]).unwrap();
        assert!(decode(path, &seq_key(5), &unordered).is_err());
        let empty = encode(&Vec::<Entry>::new()).unwrap();
        assert!(decode(path, &seq_key(5), &empty).is_err());
        assert!(decode(path, &[0; 3], &bytes).is_err(), "short key");
    }
}
