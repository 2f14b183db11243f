//! Property tests of the envelope: arbitrary input never panics, and records survive
//! a round trip unchanged.

use journal::envelope::{self, EnvelopeError, FORMAT_VERSION, HEADER_LEN, MAGIC};
use journal::{Entry, PartitionId, Record, RepairAction, RepairId, SegmentKey};
use proptest::prelude::*;

fn segment() -> impl Strategy<Value = SegmentKey> {
    (any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>())
        .prop_map(|(s, t, p, o)| PartitionId::new(s, t, p).segment(o))
}

fn action() -> impl Strategy<Value = RepairAction> {
    prop_oneof![
        (segment(), any::<u64>(), any::<u64>()).prop_map(|(segment, keep_len, original_len)| {
            RepairAction::TruncateLog {
                segment,
                keep_len,
                original_len,
            }
        }),
        (segment(), any::<u64>(), any::<u64>()).prop_map(|(segment, keep_len, original_len)| {
            RepairAction::TruncateIndex {
                segment,
                keep_len,
                original_len,
            }
        }),
        (segment(), any::<Option<u64>>(), any::<u64>(), any::<u64>()).prop_map(
            |(segment, original_len, new_len, new_xxh3)| RepairAction::RewriteIndex {
                segment,
                original_len,
                new_len,
                new_xxh3
            }
        ),
        (".*", any::<u64>()).prop_map(|(path, len)| RepairAction::QuarantineFile { path, len }),
        any::<u64>().prop_map(|id| RepairAction::Restore {
            repair: RepairId(id)
        }),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        segment().prop_map(|segment| Record::SegmentOpened { segment }),
        segment().prop_map(|segment| Record::SealIntent { segment }),
        (
            segment(),
            any::<u64>(),
            any::<u64>(),
            any::<Option<u64>>(),
            any::<Option<u64>>(),
            any::<Option<u64>>()
        )
            .prop_map(
                |(segment, log_len, index_len, last_offset, last_checksum, last_start)| {
                    Record::Sealed {
                        segment,
                        log_len,
                        index_len,
                        last_offset,
                        last_checksum,
                        last_start,
                    }
                }
            ),
        segment().prop_map(|segment| Record::SegmentDeleted { segment }),
        (segment(), any::<u64>(), any::<u64>()).prop_map(|(segment, valid_len, next_offset)| {
            Record::Checkpoint {
                segment,
                valid_len,
                next_offset,
            }
        }),
        (any::<u64>(), action(), ".*").prop_map(|(id, action, reason)| Record::RepairIntent {
            repair: RepairId(id),
            action,
            reason
        }),
        any::<u64>().prop_map(|id| Record::RepairDone {
            repair: RepairId(id)
        }),
        (any::<u64>(), ".*").prop_map(|(id, error)| Record::RepairFailed {
            repair: RepairId(id),
            error
        }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(valid_len, last_index, last_checksum)| Record::StateLogVerified {
                valid_len,
                last_index,
                last_checksum,
            }
        ),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (any::<u64>(), any::<u64>(), record()).prop_map(|(seq, unix_micros, record)| Entry {
        seq,
        unix_micros,
        record,
    })
}

/// A header that passes every check, around `payload`: reaches bincode itself.
fn wrap(payload: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&envelope::checksum(FORMAT_VERSION, len, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let result = envelope::decode::<Entry>(&bytes);
        // Random bytes essentially never carry the magic and a matching checksum.
        prop_assert!(result.is_err());
    }

    #[test]
    fn arbitrary_payloads_behind_a_valid_header_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..256)
    ) {
        match envelope::decode::<Entry>(&wrap(&payload)) {
            Ok(entry) => {
                // bincode accepts non-canonical varints, so compare values, not bytes.
                let again = envelope::decode::<Entry>(&envelope::encode(&entry).unwrap()).unwrap();
                prop_assert_eq!(again, entry);
            }
            Err(e) => prop_assert!(matches!(e, EnvelopeError::Decode(_)), "{e}"),
        }
    }

    #[test]
    fn entries_round_trip(entry in entry()) {
        let bytes = envelope::encode(&entry).unwrap();
        prop_assert_eq!(&bytes[..4], &MAGIC[..]);
        prop_assert_eq!(bytes.len() - HEADER_LEN, u32::from_le_bytes(bytes[6..10].try_into().unwrap()) as usize);
        prop_assert_eq!(envelope::decode::<Entry>(&bytes).unwrap(), entry);
    }

    #[test]
    fn any_single_damage_is_detected(entry in entry(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let good = envelope::encode(&entry).unwrap();
        let i = at.index(good.len());
        prop_assert!(envelope::decode::<Entry>(&good[..i]).is_err(), "truncated to {}", i);
        let mut bytes = good;
        bytes[i] ^= flip;
        prop_assert!(envelope::decode::<Entry>(&bytes).is_err(), "byte {} flipped", i);
    }
}
