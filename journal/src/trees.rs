//! The sled trees' keys and values, and the shield around every call into sled: the
//! leaf that the store, the write path, blocks, compaction and verification share
//! (the table of trees is in `store.rs`).

use crate::envelope;
use crate::error::JournalError;
use crate::key::SegmentKey;
use crate::state::SegmentState;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

pub(crate) const META_FORMAT: &[u8] = b"format_version";
pub(crate) const META_NEXT_REPAIR: &[u8] = b"next_repair_id";
/// Every seq up to this one may be missing: compaction dropped it.
pub(crate) const META_COMPACTED_THROUGH: &[u8] = b"compacted_through";
pub(crate) const META_DROPPED: &[u8] = b"dropped_records";
/// The newest `StateLogVerified` not followed by a repair intent: a `StateLogMark`.
pub(crate) const META_STATE_LOG: &[u8] = b"state_log_mark";

pub(crate) fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub(crate) fn parse_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Runs `f`, turning a panic inside sled into `Corrupt` (see the module docs).
pub(crate) fn shielded<T>(
    path: &Path,
    what: &str,
    f: impl FnOnce() -> Result<T, JournalError>,
) -> Result<T, JournalError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(JournalError::corrupt(
            path,
            format!("storage panicked during {what}: {}", panic_text(&*payload)),
        ))
    })
}

pub(crate) fn decode_state(
    path: &Path,
    key: &[u8],
    value: &[u8],
) -> Result<(SegmentKey, SegmentState), JournalError> {
    let segment = SegmentKey::from_bytes(key)
        .ok_or_else(|| JournalError::corrupt(path, format!("state key of {} bytes", key.len())))?;
    let state = envelope::decode(value).map_err(|e| {
        JournalError::from_envelope(path, &format!("state of segment {segment}"), e)
    })?;
    Ok((segment, state))
}
