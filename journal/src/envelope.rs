//! The versioned, checksummed envelope around every value the journal stores.
//!
//! Layout (all little-endian):
//!
//! | bytes | field                               |
//! |-------|-------------------------------------|
//! | 0..4  | magic `IWJ1`                        |
//! | 4..6  | format version (u16, currently 5)   |
//! | 6..10 | payload length (u32)                |
//! | 10..18| XXH3-64 of bytes 4..10, then the payload (u64; before version 5, of the payload alone) |
//! | 18..  | payload: bincode 2, serde, standard |
//!
//! The header is ours, not bincode's, so the codec can change later behind a new
//! version number (bincode 3 is a tombstone; see shared/lessons.md). Decoding never
//! panics: every read of the header goes through `slice::get`, and bincode
//! runs with a byte limit so a forged length cannot make it allocate without bound.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub const MAGIC: [u8; 4] = *b"IWJ1";
/// The format version this build writes.
///
/// - 2: one `log` value per commit round (blocks of entries).
/// - 3: the records and actions of the salvage, state-log and alert work
///   (`Relay`, `TruncateStateLog`, `StateLogVerified`, `AlertRaised`,
///   `AlertsCleared`), all appended to their enums: a value of version 2 decodes as
///   version 3 unchanged, so a version-2 journal is read as it is and only its
///   marker is raised (see `store.rs`). A build that reads only 2 refuses a
///   version-3 journal by its marker rather than failing on a record it cannot name.
/// - 4: sealed segments' file stamps (`Record::Stamped`, `SegmentPhase::SealedStamped`),
///   appended to their enums the same way: versions 2 and 3 are read as they are.
/// - 5: the checksum covers the header's version and length as well as the payload
///   ([`checksum`]). Before, a value whose version byte was damaged into another
///   readable version (4 into 2 or 3) passed every check. A version-5 value damaged
///   that way now fails the older versions' payload-only checksum. The records are
///   those of version 4, so older values are read as they are.
/// - 6: the operator's reset of a consumer offset (`RepairAction::ResetConsumerOffset`),
///   appended to its enum: versions 2 to 5 are read as they are, and a build that
///   reads only 5 refuses a journal that may hold one by its marker.
/// - 7: the drop of `state/log` entries 0.6.0 cannot read back
///   (`RepairAction::DropStateLogEntries`), appended to its enum: versions 2 to 6 are
///   read as they are.
pub const FORMAT_VERSION: u16 = 7;
/// The first format version whose checksum covers the header's version and length.
const HEADER_CHECKSUM_SINCE: u16 = 5;
/// The oldest format version this build reads (see [`FORMAT_VERSION`]).
pub const OLDEST_READABLE: u16 = 2;
pub const HEADER_LEN: usize = 18;
/// No journal value comes near this; it caps what a damaged payload can make bincode
/// allocate.
pub const MAX_PAYLOAD: usize = 1 << 24;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("bad magic {found:02x?} (expected {MAGIC:02x?})")]
    BadMagic { found: Vec<u8> },
    #[error(
        "format version {found} not supported (this build reads {OLDEST_READABLE} to {supported})"
    )]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("length mismatch: header says {declared} payload bytes, {actual} present")]
    LengthMismatch { declared: u64, actual: u64 },
    #[error("checksum mismatch: header says {expected:#018x}, the value hashes to {actual:#018x}")]
    ChecksumMismatch { expected: u64, actual: u64 },
    #[error("payload does not decode: {0}")]
    Decode(String),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

/// Encodes `value` in the current format version.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EnvelopeError> {
    encode_with_version(value, FORMAT_VERSION)
}

/// Encodes with an explicit version; only tests need another version than the current.
#[doc(hidden)]
pub fn encode_with_version<T: Serialize>(
    value: &T,
    version: u16,
) -> Result<Vec<u8>, EnvelopeError> {
    let payload = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| EnvelopeError::Decode(format!("encode: {e}")))?;
    let len = u32::try_from(payload.len()).map_err(|_| EnvelopeError::LengthMismatch {
        declared: u64::from(u32::MAX),
        actual: payload.len() as u64,
    })?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(version, len, &payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The checksum stored at bytes 10..18 of a value of `version`: from version 5 on,
/// XXH3-64 of the version and length fields as stored (bytes 4..10) followed by the
/// payload; before, XXH3-64 of the payload alone.
pub fn checksum(version: u16, len: u32, payload: &[u8]) -> u64 {
    if version < HEADER_CHECKSUM_SINCE {
        return xxhash_rust::xxh3::xxh3_64(payload);
    }
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&version.to_le_bytes());
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.digest()
}

/// Reads `N` bytes at `at`, or `None` when the input is too short.
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Checks the header and returns the payload, without decoding it.
pub fn open(bytes: &[u8]) -> Result<&[u8], EnvelopeError> {
    let magic: [u8; 4] = array_at(bytes, 0).ok_or_else(|| EnvelopeError::BadMagic {
        found: bytes.to_vec(),
    })?;
    if magic != MAGIC {
        return Err(EnvelopeError::BadMagic {
            found: magic.to_vec(),
        });
    }
    let truncated = || EnvelopeError::LengthMismatch {
        declared: HEADER_LEN as u64,
        actual: bytes.len() as u64,
    };
    let version = u16::from_le_bytes(array_at(bytes, 4).ok_or_else(truncated)?);
    if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
        return Err(EnvelopeError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let declared = u32::from_le_bytes(array_at(bytes, 6).ok_or_else(truncated)?);
    let expected = u64::from_le_bytes(array_at(bytes, 10).ok_or_else(truncated)?);
    let payload = bytes.get(HEADER_LEN..).ok_or_else(truncated)?;
    if payload.len() as u64 != u64::from(declared) {
        return Err(EnvelopeError::LengthMismatch {
            declared: u64::from(declared),
            actual: payload.len() as u64,
        });
    }
    let actual = checksum(version, declared, payload);
    if actual != expected {
        return Err(EnvelopeError::ChecksumMismatch { expected, actual });
    }
    Ok(payload)
}

/// Checks the header and decodes the payload; trailing payload bytes are an error,
/// since a valid writer never leaves any.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, EnvelopeError> {
    decode_payload(open(bytes)?)
}

/// Decodes a payload whose header was already checked.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, EnvelopeError> {
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(payload, config())
        .map_err(|e| EnvelopeError::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(EnvelopeError::Decode(format!(
            "{} trailing bytes after the value",
            payload.len().saturating_sub(used)
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_where_documented() {
        let bytes = encode(&7u64).unwrap();
        assert_eq!(&bytes[0..4], b"IWJ1");
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 7);
        assert_eq!(bytes.len(), HEADER_LEN + 1); // varint 7 is one byte
        assert_eq!(decode::<u64>(&bytes), Ok(7));
    }

    /// The damage proptest found in format 4: the version byte flipped into another
    /// readable version left a value that passed every check.
    #[test]
    fn a_version_damaged_into_another_readable_version_fails_the_checksum() {
        let good = encode(&"hello".to_string()).unwrap();
        for older in OLDEST_READABLE..FORMAT_VERSION {
            let mut damaged = good.clone();
            damaged[4..6].copy_from_slice(&older.to_le_bytes());
            assert!(
                matches!(
                    decode::<String>(&damaged),
                    Err(EnvelopeError::ChecksumMismatch { .. })
                ),
                "version {FORMAT_VERSION} read as {older}"
            );
        }
    }

    #[test]
    fn each_damage_has_its_error() {
        let good = encode(&"hello".to_string()).unwrap();

        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(
            decode::<String>(&bad),
            Err(EnvelopeError::BadMagic { .. })
        ));

        for other in [1u16, 8, 0x0106] {
            let mut future_or_past = good.clone();
            future_or_past[4..6].copy_from_slice(&other.to_le_bytes());
            assert_eq!(
                decode::<String>(&future_or_past),
                Err(EnvelopeError::UnsupportedVersion {
                    found: other,
                    supported: 7
                })
            );
        }
        // Versions 2 to 6 are still read: their values decode as version 7 (a superset).
        for older in [2u16, 3, 4, 5, 6] {
            let old = encode_with_version(&"hello".to_string(), older).unwrap();
            assert_eq!(decode::<String>(&old), Ok("hello".to_string()));
        }

        let short = &good[..good.len() - 1];
        assert!(matches!(
            decode::<String>(short),
            Err(EnvelopeError::LengthMismatch { .. })
        ));
        assert!(matches!(
            decode::<String>(&good[..7]),
            Err(EnvelopeError::LengthMismatch { .. })
        ));

        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            decode::<String>(&flipped),
            Err(EnvelopeError::ChecksumMismatch { .. })
        ));

        // A well-formed envelope around a payload of the wrong type.
        let wrong = encode(&u64::MAX).unwrap();
        assert!(matches!(
            decode::<String>(&wrong),
            Err(EnvelopeError::Decode(_))
        ));

        let trailing = encode(&(1u8, 2u8)).unwrap();
        assert!(matches!(
            decode::<u8>(&trailing),
            Err(EnvelopeError::Decode(_))
        ));
    }
}
