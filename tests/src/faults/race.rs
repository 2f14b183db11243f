//! Faults with the signatures the 0.6.0 rotation race leaves (fixture `race-rotation`):
//! batches in the wrong file and out of order, zero holes inside sealed segments with
//! valid messages after them, index entries for messages that are not there, and two
//! valid messages with one offset.
//!
//! Why apart from the damage table: these are not crash tails that a repair cuts, but
//! damage in the middle of a partition where valid messages sit in the wrong places;
//! what a salvage must keep is every offset that still has a valid message somewhere.
//! So each injector also predicts, from what it is about to do and a resynchronising
//! scan taken before it acts (`salvage`), the offsets that stay valid anywhere, those it
//! loses and those it leaves with two different valid messages ([`Survivors`]); the
//! tests check that prediction against a fresh scan afterwards.
//!
//! All four act on the *newest sealed* segment (the non-empty segment before the newest
//! non-empty one) and, where they need another file, the newest non-empty segment, so
//! they need 2 non-empty segments.

use super::plan::{Damage, Op, Plan};
use super::target::{Loaded, Target};
use super::{file_len, INDEX_ENTRY};
use crate::format::{encode_message, index_entry, LoggedMessage};
use crate::salvage::{scan_partition_dir, FoundMessage};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One race signature (see [`super::Fault::Race`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaceFault {
    /// The last `messages` messages of the newest sealed segment moved, bytes and
    /// offsets unchanged, into the middle of the newest segment's `.log` (before its
    /// message `count / 2`, at byte 0 when it holds one message): a batch in the wrong
    /// file, out of order. The sealed segment's `.log` is cut where the run began and
    /// its `.index` shortened to the messages left; the newest segment's `.index` is
    /// unchanged, so it lacks the run and its later positions are stale. Every message
    /// stays valid somewhere. Refused unless the sealed `.log` is exactly whole valid
    /// messages and keeps at least one.
    MisplacedBatch { messages: u64 },
    /// Zeros written over the newest sealed segment's `.log` from its message
    /// `count / 3` on, `.index` unchanged, with at least one message before and one
    /// whole message after the hole. At message boundaries it zeroes exactly `messages`
    /// messages; with `through_messages` the hole is shifted by half a message, so it
    /// starts and ends inside messages and `messages + 1` are destroyed.
    ZeroHoleSealed {
        messages: u64,
        through_messages: bool,
    },
    /// `entries` entries appended to the newest sealed segment's `.index` for messages
    /// its `.log` does not hold: relative offsets continuing after its last message,
    /// end positions past the log's end (one last-message length apart), timestamps
    /// one microsecond apart after it. Messages untouched.
    GhostIndexEntries { entries: u64 },
    /// A second valid message for the offset of the newest sealed segment's middle
    /// message (`count / 2`): same id, origin timestamp and headers, payload inverted
    /// (`conflict` when empty), timestamp 1 after the newest segment's last message,
    /// appended to the newest segment's `.log` (its `.index` unchanged, the original's
    /// `.index` still points to the original).
    DuplicateOffsetConflict,
}

impl RaceFault {
    pub fn name(&self) -> &'static str {
        match self {
            RaceFault::MisplacedBatch { .. } => "misplaced-batch",
            RaceFault::ZeroHoleSealed { .. } => "zero-hole-sealed",
            RaceFault::GhostIndexEntries { .. } => "ghost-index-entries",
            RaceFault::DuplicateOffsetConflict => "duplicate-offset-conflict",
        }
    }
}

/// One instance of each signature of the 0.6.0 rotation race, sized to apply to any
/// partition whose newest sealed segment is at least 5 whole valid messages and nothing
/// else.
pub fn race_faults() -> Vec<super::Fault> {
    [
        RaceFault::MisplacedBatch { messages: 3 },
        RaceFault::ZeroHoleSealed {
            messages: 2,
            through_messages: true,
        },
        RaceFault::GhostIndexEntries { entries: 4 },
        RaceFault::DuplicateOffsetConflict,
    ]
    .into_iter()
    .map(super::Fault::Race)
    .collect()
}

/// What a resynchronising salvage (`salvage::scan_partition_dir`) can still find in the
/// partition after a race fault, as the injector predicted it before acting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Survivors {
    /// Every offset with at least one valid message anywhere in the partition's
    /// `.log`s after the fault, ascending.
    pub valid_offsets: Vec<u64>,
    /// Offsets that had a valid message somewhere before the fault and have none after.
    pub lost_offsets: Vec<u64>,
    /// Offsets with two or more valid messages of different bytes after the fault.
    pub conflicting_offsets: Vec<u64>,
}

/// How a plan changes the set of valid messages: bytes it destroys (any valid message
/// found before that overlaps them is gone) and messages it writes (offset, checksum).
/// Bytes only moved within a file by an insertion before them are neither.
#[derive(Default)]
struct Change {
    destroyed: Vec<(PathBuf, u64, u64)>,
    added: Vec<(u64, u64)>,
}

impl Change {
    fn destroys(&self, m: &FoundMessage) -> bool {
        self.destroyed.iter().any(|(path, from, to)| {
            path.file_name().is_some_and(|n| *n == *m.file) && m.start < *to && m.end > *from
        })
    }

    fn survivors(&self, before: &[FoundMessage]) -> Survivors {
        let after: BTreeSet<(u64, u64)> = before
            .iter()
            .filter(|m| !self.destroys(m))
            .map(|m| (m.offset, m.checksum))
            .chain(self.added.iter().copied())
            .collect();
        let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
        for (offset, _) in &after {
            *copies.entry(*offset).or_default() += 1;
        }
        let lost: BTreeSet<u64> = before
            .iter()
            .map(|m| m.offset)
            .filter(|o| !copies.contains_key(o))
            .collect();
        Survivors {
            valid_offsets: copies.keys().copied().collect(),
            lost_offsets: lost.into_iter().collect(),
            conflicting_offsets: copies
                .iter()
                .filter(|&(_, &n)| n > 1)
                .map(|(&o, _)| o)
                .collect(),
        }
    }
}

/// The plan of `fault` on `target` and what a salvage will find afterwards.
pub(super) fn plan(target: &Target, fault: RaceFault) -> Result<(Plan, Survivors), String> {
    let (plan, change) = match fault {
        RaceFault::MisplacedBatch { messages } => misplaced_batch(target, messages)?,
        RaceFault::ZeroHoleSealed {
            messages,
            through_messages,
        } => zero_hole(&target.sealed()?, messages, through_messages)?,
        RaceFault::GhostIndexEntries { entries } => ghost_entries(&target.sealed()?, entries)?,
        RaceFault::DuplicateOffsetConflict => duplicate_conflict(target)?,
    };
    let before = scan_partition_dir(&target.dir)?;
    Ok((plan, change.survivors(&before)))
}

fn misplaced_batch(target: &Target, messages: u64) -> Result<(Plan, Change), String> {
    let (sealed, newest) = (target.sealed()?, target.newest()?);
    let count = sealed.messages.len() as u64;
    if messages == 0 || messages >= count {
        return Err(format!(
            "{} holds {count} messages: cannot move {messages} and keep one",
            sealed.log.display()
        ));
    }
    if sealed.last().end as u64 != sealed.log_len {
        return Err(format!(
            "{} has bytes after its valid messages: cutting the run would destroy them",
            sealed.log.display()
        ));
    }
    let keep = (count - messages) as usize;
    let run_from = sealed.messages[keep].start as u64;
    let sealed_bytes = read(&sealed.log)?;
    let newest_bytes = read(&newest.log)?;
    let at = newest.messages[newest.messages.len() / 2].start;
    let mut bytes = sealed_bytes[run_from as usize..].to_vec();
    bytes.extend_from_slice(&newest_bytes[at..]);
    let at = at as u64;
    let (first, last) = (
        sealed.messages[keep].message.offset,
        sealed.last().message.offset,
    );
    let text = format!(
        "offsets {first}..={last} moved from byte {run_from} of {} to byte {at} of {}",
        sealed.log.display(),
        newest.log.display()
    );
    let mut plan = Plan::new(&newest.log, at, text)
        .op(Op::WriteAt {
            path: newest.log.clone(),
            at,
            bytes,
        })
        .op(Op::SetLen {
            path: sealed.log.clone(),
            len: run_from,
        })
        .damage(Damage::bytes(&sealed.log, run_from, sealed.log_len))
        .damage(Damage::bytes(&newest.log, at, newest.log_len));
    if let Some(index) = &sealed.files.index {
        let len = keep as u64 * INDEX_ENTRY;
        if file_len(index)? > len {
            plan = plan.op(Op::SetLen {
                path: index.clone(),
                len,
            });
        }
    }
    let change = Change {
        destroyed: vec![(sealed.log.clone(), run_from, sealed.log_len)],
        added: sealed.messages[keep..]
            .iter()
            .map(|m| (m.message.offset, checksum_at(&sealed_bytes, m)))
            .collect(),
    };
    Ok((plan, change))
}

fn zero_hole(seg: &Loaded, messages: u64, through: bool) -> Result<(Plan, Change), String> {
    let count = seg.messages.len();
    let first = count / 3;
    let past = first + messages as usize + usize::from(through);
    if messages == 0 || first == 0 || past >= count {
        return Err(format!(
            "{} holds {count} messages: too few for a hole of {messages} from message \
             {first} with a whole message after it",
            seg.log.display()
        ));
    }
    let shift = |m: &LoggedMessage| if through { (m.end - m.start) / 2 } else { 0 };
    let (a, b) = (
        &seg.messages[first],
        &seg.messages[first + messages as usize],
    );
    let (from, to) = ((a.start + shift(a)) as u64, (b.start + shift(b)) as u64);
    let text = format!(
        "bytes {from}..{to} of {} zeroed (offsets {}..{})",
        seg.log.display(),
        a.message.offset,
        seg.messages[past].message.offset
    );
    let plan = Plan::new(&seg.log, from, text)
        .op(Op::WriteAt {
            path: seg.log.clone(),
            at: from,
            bytes: vec![0; (to - from) as usize],
        })
        .damage(Damage::bytes(&seg.log, from, to));
    let change = Change {
        destroyed: vec![(seg.log.clone(), from, to)],
        added: Vec::new(),
    };
    Ok((plan, change))
}

fn ghost_entries(seg: &Loaded, entries: u64) -> Result<(Plan, Change), String> {
    let index = seg.index()?;
    let index_len = file_len(&index)?;
    if entries == 0 || index_len % INDEX_ENTRY != 0 {
        return Err(format!(
            "cannot append {entries} entries to {} ({index_len} bytes)",
            index.display()
        ));
    }
    let last = seg.last();
    let length = (last.end - last.start) as u64;
    let relative = last
        .message
        .offset
        .checked_sub(seg.files.start_offset)
        .ok_or_else(|| format!("{}: offsets below its name", seg.log.display()))?;
    let mut bytes = Vec::new();
    for k in 1..=entries {
        let too_big = || format!("ghost entry {k} does not fit in an index entry");
        let rel = u32::try_from(relative + k).map_err(|_| too_big())?;
        let end = u32::try_from(seg.log_len + k * length).map_err(|_| too_big())?;
        bytes.extend_from_slice(&index_entry(rel, end, last.message.timestamp + k));
    }
    let text = format!(
        "{entries} entries past the log's end appended to {}",
        index.display()
    );
    let plan = Plan::new(&index, index_len, text).op(Op::WriteAt {
        path: index.clone(),
        at: index_len,
        bytes,
    });
    Ok((plan, Change::default()))
}

fn duplicate_conflict(target: &Target) -> Result<(Plan, Change), String> {
    let (sealed, newest) = (target.sealed()?, target.newest()?);
    let original = &sealed.messages[sealed.messages.len() / 2].message;
    let mut copy = original.clone();
    copy.payload = if copy.payload.is_empty() {
        b"conflict".to_vec()
    } else {
        copy.payload.iter().map(|b| !b).collect()
    };
    copy.timestamp = original.timestamp.max(newest.last().message.timestamp) + 1;
    let bytes = encode_message(&copy);
    let checksum = u64::from_le_bytes(first_8(&bytes));
    let text = format!(
        "a different valid message with offset {} appended to {} at byte {}",
        copy.offset,
        newest.log.display(),
        newest.log_len
    );
    let plan = Plan::new(&newest.log, newest.log_len, text).op(Op::WriteAt {
        path: newest.log.clone(),
        at: newest.log_len,
        bytes,
    });
    let change = Change {
        destroyed: Vec::new(),
        added: vec![(copy.offset, checksum)],
    };
    Ok((plan, change))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))
}

fn checksum_at(log: &[u8], m: &LoggedMessage) -> u64 {
    u64::from_le_bytes(first_8(&log[m.start..]))
}

fn first_8(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

#[cfg(test)]
mod tests;
