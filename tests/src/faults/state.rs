//! Faults of `state/log`, the server's metadata log: what a crash or a full disk
//! leaves at its end (a torn last entry, zeros), and what only a disk or a bug can
//! leave (a flipped byte, an index gap). Each acts on a log whose framing is whole,
//! and fails without changing anything otherwise.
//!
//! The entry a fault damages is reported with its first byte: a repair cuts the log
//! there and keeps the entries before it.

use crate::state_log::{frame_entries, reseal, FramedEntry, ENTRY_HEADER};
use std::fs;
use std::path::{Path, PathBuf};

/// One kind of damage to `state/log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFault {
    /// The last entry cut short to its first `keep` bytes (`0 < keep <` its length).
    TornTail { keep: usize },
    /// `len` zero bytes appended after the last entry.
    ZeroTail { len: usize },
    /// One byte in the middle of the last entry's command inverted (XOR 0xFF), or of
    /// its timestamp when the command is empty.
    FlipLastEntry,
    /// The same in the entry before the last one.
    FlipEarlierEntry,
    /// The last entry's index raised by one, its checksum recomputed: a valid entry
    /// after a missing one. Needs three entries (the server checks indexes from the
    /// third on).
    IndexGap,
}

impl StateFault {
    pub fn name(&self) -> &'static str {
        match self {
            StateFault::TornTail { .. } => "state-log-torn-tail",
            StateFault::ZeroTail { .. } => "state-log-zero-tail",
            StateFault::FlipLastEntry => "state-log-flip-last-entry",
            StateFault::FlipEarlierEntry => "state-log-flip-earlier-entry",
            StateFault::IndexGap => "state-log-index-gap",
        }
    }

    /// Damage a crash leaves at the end of the log, which tolerate-tail may cut.
    pub fn is_tail(&self) -> bool {
        !matches!(self, StateFault::FlipEarlierEntry | StateFault::IndexGap)
    }
}

/// One instance of each state-log fault (the torn tail keeps half the last entry).
pub fn state_faults() -> Vec<StateFault> {
    vec![
        StateFault::TornTail { keep: 0 },
        StateFault::ZeroTail { len: 4096 },
        StateFault::FlipLastEntry,
        StateFault::FlipEarlierEntry,
        StateFault::IndexGap,
    ]
}

/// What [`apply_state`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFaultReport {
    pub fault: StateFault,
    pub path: PathBuf,
    /// Where the damaged entry starts (for a zero tail: the end of the last entry): a
    /// repair keeps exactly the bytes before it.
    pub offset: usize,
    /// Whole, valid entries before `offset`.
    pub entries_before: usize,
    /// The length of the log before the fault.
    pub original_len: usize,
    /// The command code of the damaged entry (none for a zero tail).
    pub code: Option<u32>,
    pub description: String,
}

/// Applies `fault` to `data_dir/state/log`. A `TornTail` with `keep` 0 keeps half of
/// the last entry.
pub fn apply_state(data_dir: &Path, fault: StateFault) -> Result<StateFaultReport, String> {
    let path = data_dir.join("state/log");
    let mut bytes = fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let entries = frame_entries(&bytes)?;
    let last = *entries.last().ok_or("state/log has no entry")?;
    let original_len = bytes.len();
    let report =
        |offset: usize, entries_before: usize, code, description: String| StateFaultReport {
            fault,
            path: path.clone(),
            offset,
            entries_before,
            original_len,
            code,
            description: format!("{}: {description}", fault.name()),
        };
    let n = entries.len();
    let (report, new_bytes) = match fault {
        StateFault::TornTail { keep } => {
            let len = last.end - last.start;
            let keep = if keep == 0 { len / 2 } else { keep };
            if keep >= len {
                return Err(format!(
                    "the last entry has {len} bytes: cannot keep {keep}"
                ));
            }
            bytes.truncate(last.start + keep);
            let text = format!("last entry cut to {keep} of its {len} bytes");
            (report(last.start, n - 1, Some(last.code), text), bytes)
        }
        StateFault::ZeroTail { len } => {
            bytes.resize(original_len + len, 0);
            let text = format!("{len} zero bytes appended");
            (report(original_len, n, None, text), bytes)
        }
        StateFault::FlipLastEntry | StateFault::FlipEarlierEntry => {
            let (i, target) = if fault == StateFault::FlipLastEntry {
                (n - 1, last)
            } else if n >= 2 {
                (n - 2, entries[n - 2])
            } else {
                return Err("state/log has one entry: none before the last".into());
            };
            let at = flip_position(&target);
            bytes[at] ^= 0xff;
            let text = format!("byte {at} (entry index {}) inverted", target.index);
            (report(target.start, i, Some(target.code), text), bytes)
        }
        StateFault::IndexGap => {
            if n < 3 {
                return Err(format!(
                    "state/log has {n} entries: the server checks from 3"
                ));
            }
            let raised = last.index + 1;
            bytes[last.start..last.start + 8].copy_from_slice(&raised.to_le_bytes());
            reseal(&mut bytes[last.start..last.end]);
            let text = format!("last entry's index {} raised to {raised}", last.index);
            (report(last.start, n - 1, Some(last.code), text), bytes)
        }
    };
    fs::write(&path, new_bytes).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(report)
}

/// The middle byte of the entry's command, else a byte of its timestamp.
fn flip_position(e: &FramedEntry) -> usize {
    let command_start = e.start + ENTRY_HEADER + 12;
    if e.end > command_start {
        command_start + (e.end - command_start) / 2
    } else {
        e.start + 32
    }
}
