//! `state/log` without some of its whole entries, for the entries iggy-server 0.6.0
//! writes and cannot read back (see [`crate::state_command::reader_rejects`]).
//!
//! The server requires each entry's index to follow the previous one, and the checksum
//! covers the index, so every entry after a dropped one is renumbered and resealed;
//! its other bytes are kept as they are. Only a log whose every entry is whole and
//! verified is rewritten: resealing must never vouch for bytes nobody verified.

use super::frame::{frames, range, CHECKSUM_AT, HEADER_LEN};
use std::collections::BTreeSet;
use xxhash_rust::xxh3::Xxh3;

/// `bytes` without the entries starting at the byte offsets `drop`; why not, when the
/// log is not whole and verified (a torn or zero-filled tail, a checksum that fails,
/// as every one does in an encrypted log, an index out of sequence) or an offset is
/// not where an entry starts.
pub fn without_entries(bytes: &[u8], drop: &[u64]) -> Result<Vec<u8>, String> {
    let (framed, whole) = frames(bytes, 0);
    if whole != bytes.len() as u64 {
        return Err(format!(
            "state/log is not whole entries from byte {whole} on"
        ));
    }
    if let Some(bad) = framed.iter().find(|f| f.entry.checksum_ok != Some(true)) {
        return Err(format!(
            "the entry at byte {} fails its checksum (damaged, or encrypted)",
            bad.entry.offset
        ));
    }
    // The server checks each index from the third entry on.
    let gap = framed.windows(2).skip(1).find_map(|pair| match pair {
        [a, b] if a.entry.index.checked_add(1) != Some(b.entry.index) => Some(b.entry.offset),
        _ => None,
    });
    if let Some(at) = gap {
        return Err(format!("an index gap at byte {at}"));
    }
    let log: Vec<_> = framed.into_iter().map(|f| f.entry).collect();
    // A log can hold thousands of such entries (one per request): sets, not scans.
    let starts: BTreeSet<u64> = log.iter().map(|e| e.offset).collect();
    let drop: BTreeSet<u64> = drop.iter().copied().collect();
    if let Some(stray) = drop.iter().find(|at| !starts.contains(at)) {
        return Err(format!("no entry of state/log starts at byte {stray}"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut dropped = 0u64;
    for e in &log {
        if drop.contains(&e.offset) {
            dropped += 1;
            continue;
        }
        let entry = range(bytes, e.offset, e.offset + e.len)
            .ok_or_else(|| format!("the entry at byte {} runs past the end", e.offset))?;
        let at = out.len();
        out.extend_from_slice(entry);
        if dropped > 0 {
            let index = e.index.checked_sub(dropped).ok_or_else(|| {
                format!("entry index {} cannot be numbered {dropped} lower", e.index)
            })?;
            out.get_mut(at..)
                .and_then(|entry| reseal(entry, index))
                .ok_or_else(|| format!("the entry at byte {} is too short", e.offset))?;
        }
    }
    Ok(out)
}

/// Gives the whole entry `entry` the index `index` and the checksum that goes with it.
fn reseal(entry: &mut [u8], index: u64) -> Option<()> {
    let (checksum_at, header) = (CHECKSUM_AT as usize, HEADER_LEN as usize);
    entry.get_mut(..8)?.copy_from_slice(&index.to_le_bytes());
    let mut hasher = Xxh3::new();
    hasher.update(entry.get(..checksum_at)?);
    hasher.update(entry.get(header..)?);
    let sum = hasher.digest().to_le_bytes();
    entry.get_mut(checksum_at..header)?.copy_from_slice(&sum);
    Some(())
}
