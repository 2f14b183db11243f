//! Packing a run's saved bytes into one file, `bytes` in the run folder.
//!
//! Creating and filling a file per repair cost a large `recover` more than its
//! analysis (20,000 small files for 10,000 torn partitions). Every repair's length
//! is known from its plan, so the offsets are laid out first, the file is created
//! at its full length (a hole), and the repairs' bytes are copied into their slices
//! in parallel with positioned writes. Nothing here syncs: the run's sync round
//! makes the file durable before its manifest is written.

use super::manifest::{io_err, Manifest, PackedSlice, QuarantineError, SaveRequest, ZERO_RUN_MIN};
use crate::fsops::{FileOps, SyncRound};
use journal::RepairAction;
use std::path::Path;

/// Whether `request` cuts a long tail of zeros (a file extended but never written,
/// or zero-filled after a power loss), described rather than copied: it may be
/// gigabytes of holes.
pub(super) fn is_zero_run(request: &SaveRequest<'_>) -> Result<bool, QuarantineError> {
    let truncation = matches!(
        request.action,
        RepairAction::TruncateLog { .. } | RepairAction::TruncateIndex { .. }
    );
    if !truncation || request.range.len() < ZERO_RUN_MIN {
        return Ok(false);
    }
    let src = request.data_dir.join(request.file);
    let zeros = crate::fsops::is_zero_range(&src, request.range).map_err(io_err(&src))?;
    Ok(zeros == Some(true))
}

/// Each request's slice of the packed file `packed`, one after the other in request
/// order, and the file's length. A zero run, or a repair that removes nothing, has
/// an empty slice.
pub(super) fn layout(
    packed: &Path,
    requests: &[SaveRequest<'_>],
    zero_runs: &[bool],
) -> Result<(Vec<PackedSlice>, u64), QuarantineError> {
    let mut offset = 0u64;
    let mut slices = Vec::with_capacity(requests.len());
    for (r, zero_run) in requests.iter().zip(zero_runs) {
        let len = if *zero_run { 0 } else { r.range.len() };
        let slice = PackedSlice { offset, len };
        offset = offset
            .checked_add(len)
            .ok_or_else(|| QuarantineError::BadSlice {
                path: packed.to_path_buf(),
                repair: r.id,
                offset,
                len,
                why: "would end past the largest offset".into(),
            })?;
        slices.push(slice);
    }
    Ok((slices, offset))
}

/// Copies what `request` saves into its `slice` of `packed` (created at its full
/// length), leaving the fsync to `round`, and returns its manifest.
pub(super) fn save_slice(
    fs: &dyn FileOps,
    request: &SaveRequest<'_>,
    zero_run: bool,
    packed: &Path,
    slice: PackedSlice,
    round: &SyncRound,
) -> Result<Manifest, QuarantineError> {
    let xxh3 = if slice.len == 0 {
        xxhash_rust::xxh3::xxh3_64(&[])
    } else {
        let src = request.data_dir.join(request.file);
        fs.copy_range_at_in_round(&src, request.range, packed, slice.offset, round)
            .map_err(io_err(&src))?
    };
    Ok(request.manifest(xxh3, zero_run, Some(slice)))
}
