//! Fault injection: damages one partition of any data directory (built by `writer` or a
//! copy of a real fixture) the way a crash or a disk can, one fault per row of the
//! damage table in `iggy-format.md`, plus a few more states.
//!
//! Faults find their target by listing the partition folder (20-digit segment names)
//! and reading the `.log`s: the *newest non-empty segment* is the segment with the
//! highest start offset whose `.log` has bytes; its *last message* is the last valid
//! message of that `.log`. A *sealed* segment is any non-empty segment before it; the
//! faults that need one use the newest of them. The *next offset* of a segment is the
//! offset of its last valid message + 1, where the server would create its successor.
//!
//! [`apply`] returns a [`FaultReport`] saying which bytes changed and which messages of
//! the partition's valid prefix (see `layout::scan_partition`) stay intact, i.e. keep
//! the same bytes at the same place in the same file.
//!
//! [`race_faults`] (module `race`) are the signatures of the 0.6.0 rotation race; they
//! are not in [`all_faults`], the damage table, and their reports also say which
//! offsets a resynchronising salvage still finds ([`FaultReport::survivors`]).
//!
//! [`state_faults`] (module `state`, [`apply_state`]) damage `state/log`, the
//! server's metadata log, instead of a partition.

mod plan;
mod race;
mod state;
mod target;

use crate::format::{LoggedMessage, INDEX_ENTRY_SIZE, MESSAGE_HEADER_SIZE, ORIGIN_TIMESTAMP_POS};
use crate::layout::{scan_partition, ScannedMessage};
use plan::{Damage, Op, Plan};
pub use race::{race_faults, RaceFault, Survivors};
pub use state::{apply_state, state_faults, StateFault, StateFaultReport};
use std::fs;
use std::path::{Path, PathBuf};
use target::{Loaded, Target};

/// Bytes removed from the end of a `.log` to tear its last message. Smaller than any
/// message (a message has at least 56 bytes), so the cut always falls inside it.
pub const TORN_TAIL_BYTES: u64 = 10;
/// Bytes removed from the end of an `.index` to leave half an entry.
pub const HALF_INDEX_ENTRY: u64 = 8;

/// One kind of damage. All act on the newest non-empty segment of the partition
/// unless said otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `.log` shortened by [`TORN_TAIL_BYTES`]: the last message is cut short.
    /// `.index` unchanged.
    TornLogTail,
    /// `len` zero bytes appended to the `.log`.
    ZeroTail { len: u64 },
    /// `.log` truncated at the start of its last message; `.index` unchanged, so it has
    /// one entry more than the log has messages.
    LogCutIndexLonger,
    /// One byte of the last message's payload inverted (XOR 0xFF): the middle payload
    /// byte, or byte 40 (origin timestamp) of a message with an empty payload.
    FlipByteLastMessage,
    /// `.index` shortened by [`HALF_INDEX_ENTRY`] bytes: its last entry is half gone.
    IndexHalfEntryShort,
    /// [`Fault::TornLogTail`] and [`Fault::IndexHalfEntryShort`] together.
    TornLogAndHalfIndex,
    /// `.index` deleted.
    IndexMissing,
    /// `entries` × 16 zero bytes appended to the `.index`.
    IndexZeroFilledTail { entries: u64 },
    /// `entries` whole `.index` entries zeroed in place, centred in the index (never
    /// the first or the last entry); length unchanged.
    IndexZeroedMiddle { entries: u64 },
    /// An empty `.log` + `.index` pair created at the next offset. Refused when a
    /// segment already exists there (e.g. the empty pair the server made after sealing
    /// a full segment): choose a partition whose newest segment is not full.
    ExtraEmptyPair,
    /// An empty `.log` at the next offset without its `.index`. When the successor is
    /// already an empty pair, its `.index` is deleted instead.
    SuccessorLogWithoutIndex,
    /// Crash while rotating: `.index` short by one whole entry, `.log` torn inside its
    /// last message ([`TORN_TAIL_BYTES`]), and an empty successor pair at the next
    /// offset (kept as is if that empty pair already exists).
    RotationCrash,
    /// `.log` deleted; its `.index` remains. Refused when there is no `.index`.
    LogMissing,
    /// Every segment file from the newest non-empty segment on (it and any later, e.g.
    /// empty, pairs) renamed to a start offset `gap` higher; contents unchanged. The
    /// partition then has a hole between the previous segment and the renamed one, and
    /// the renamed segment's name no longer matches its messages' offsets. Needs ≥ 2
    /// non-empty segments.
    OffsetGap { gap: u64 },
    /// One payload byte inverted (as [`Fault::FlipByteLastMessage`]) in the middle
    /// message (index `count / 2`) of the newest sealed segment. Needs ≥ 2 non-empty
    /// segments.
    MidFileCorruptionSealed,
    /// `.index` shortened by `entries` whole entries: the log has messages the index
    /// lacks.
    TruncatedIndexShortWhole { entries: u64 },
    /// A signature of the 0.6.0 rotation race (see [`RaceFault`]); never in
    /// [`all_faults`]. Needs ≥ 2 non-empty segments.
    Race(RaceFault),
}

impl Fault {
    /// A stable kebab-case name, for test output.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::TornLogTail => "torn-log-tail",
            Fault::ZeroTail { .. } => "zero-tail",
            Fault::LogCutIndexLonger => "log-cut-index-longer",
            Fault::FlipByteLastMessage => "flip-byte-last-message",
            Fault::IndexHalfEntryShort => "index-half-entry-short",
            Fault::TornLogAndHalfIndex => "torn-log-and-half-index",
            Fault::IndexMissing => "index-missing",
            Fault::IndexZeroFilledTail { .. } => "index-zero-filled-tail",
            Fault::IndexZeroedMiddle { .. } => "index-zeroed-middle",
            Fault::ExtraEmptyPair => "extra-empty-pair",
            Fault::SuccessorLogWithoutIndex => "successor-log-without-index",
            Fault::RotationCrash => "rotation-crash",
            Fault::LogMissing => "log-missing",
            Fault::OffsetGap { .. } => "offset-gap",
            Fault::MidFileCorruptionSealed => "mid-file-corruption-sealed",
            Fault::TruncatedIndexShortWhole { .. } => "truncated-index-short-whole",
            Fault::Race(race) => race.name(),
        }
    }

    /// How many non-empty segments the partition needs for the fault to apply.
    pub fn min_non_empty_segments(&self) -> usize {
        match self {
            Fault::OffsetGap { .. } | Fault::MidFileCorruptionSealed | Fault::Race(_) => 2,
            _ => 1,
        }
    }
}

/// One instance of every fault, with the sizes of the damage table (4 KiB of zeros).
pub fn all_faults() -> Vec<Fault> {
    vec![
        Fault::TornLogTail,
        Fault::ZeroTail { len: 4096 },
        Fault::LogCutIndexLonger,
        Fault::FlipByteLastMessage,
        Fault::IndexHalfEntryShort,
        Fault::TornLogAndHalfIndex,
        Fault::IndexMissing,
        Fault::IndexZeroFilledTail { entries: 4 },
        Fault::IndexZeroedMiddle { entries: 3 },
        Fault::ExtraEmptyPair,
        Fault::SuccessorLogWithoutIndex,
        Fault::RotationCrash,
        Fault::LogMissing,
        Fault::OffsetGap { gap: 5 },
        Fault::MidFileCorruptionSealed,
        Fault::TruncatedIndexShortWhole { entries: 2 },
    ]
}

/// The fault of [`all_faults`] or [`race_faults`] with this [`Fault::name`].
pub fn fault_named(name: &str) -> Option<Fault> {
    all_faults()
        .into_iter()
        .chain(race_faults())
        .find(|f| f.name() == name)
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultReport {
    pub fault: Fault,
    /// The main file damaged (created, for faults that add files; the new name, for
    /// renames).
    pub path: PathBuf,
    /// Byte offset in `path` where the damage starts (0 for created, deleted or renamed
    /// files).
    pub offset: u64,
    /// Messages of the partition's valid prefix, in offset order, before the first one
    /// the fault altered, removed or moved: a repair must be able to keep at least
    /// these. Equals the whole prefix when no message was touched.
    pub intact_messages_before: u64,
    /// Offsets of the valid-prefix messages the fault altered, removed or moved to
    /// another file. Every other message of the prefix is untouched.
    pub affected_offsets: Vec<u64>,
    /// Every file modified, created, deleted or renamed (both names), in order.
    pub touched: Vec<PathBuf>,
    pub description: String,
    /// Race faults only (`None` for the others): the offsets a resynchronising salvage
    /// finds valid anywhere in the partition afterwards, those lost and those left with
    /// two different valid messages, predicted before acting from a scan of every
    /// valid message (`salvage`). This, not the fields above, says what a salvage must
    /// keep. The fields above keep their meaning for race faults, over the valid prefix
    /// only (which stops at the first bad byte or unexpected offset, e.g. after offset
    /// 299 in `race-rotation`): `affected_offsets` holds the prefix's messages that were
    /// zeroed (`zero-hole-sealed`) or moved, whether to another file or further along
    /// their own by an insertion (`misplaced-batch`: the run and the newest segment's
    /// messages after the insertion point), although moved ones stay valid; it is
    /// empty for `ghost-index-entries` and `duplicate-offset-conflict`, which alter no
    /// message (the conflicting copy is appended, out of the prefix).
    pub survivors: Option<Survivors>,
}

/// Applies `fault` to the partition `partition_rel_dir` (e.g.
/// `"streams/0/topics/0/partitions/1"`) of `data_dir`. Fails without changing anything
/// when the partition lacks what the fault needs (every precondition is checked before
/// the first file is touched).
pub fn apply(
    data_dir: &Path,
    partition_rel_dir: &str,
    fault: Fault,
) -> Result<FaultReport, String> {
    let dir = data_dir.join(partition_rel_dir);
    let before = scan_partition(&dir).map_err(|e| format!("scan {}: {e}", dir.display()))?;
    let target = Target::new(dir, before.segments);
    let (plan, survivors) = match fault {
        Fault::Race(race) => race::plan(&target, race).map(|(p, s)| (p, Some(s)))?,
        _ => (plan(&target, fault)?, None),
    };
    let touched = plan.execute()?;
    let is_affected = |m: &&ScannedMessage| plan.damage.iter().any(|d| d.hits(m));
    let affected_offsets = before
        .messages
        .iter()
        .filter(is_affected)
        .map(|m| m.offset)
        .collect();
    let intact_messages_before = before
        .messages
        .iter()
        .take_while(|m| !is_affected(m))
        .count();
    Ok(FaultReport {
        fault,
        path: plan.path,
        offset: plan.offset,
        intact_messages_before: intact_messages_before as u64,
        affected_offsets,
        touched,
        description: format!("{}: {}", fault.name(), plan.description),
        survivors,
    })
}

/// [`apply`] to the first partition of `data_dir` (in stream, topic, partition order)
/// that can take `fault`; returns that partition's folder (relative) and the report.
/// Fails without changing anything when none can, saying why for each.
pub fn apply_to_first(data_dir: &Path, fault: Fault) -> Result<(String, FaultReport), String> {
    let partitions = crate::layout::list_partitions(data_dir)
        .map_err(|e| format!("cannot list {}: {e}", data_dir.display()))?;
    let mut refusals = Vec::new();
    for rel in partitions {
        match apply(data_dir, &rel, fault) {
            Ok(report) => return Ok((rel, report)),
            Err(e) => refusals.push(format!("{rel}: {e}")),
        }
    }
    Err(format!(
        "{} applies to no partition of {}: {}",
        fault.name(),
        data_dir.display(),
        refusals.join("; ")
    ))
}

/// Turns a fault into file operations, checking its preconditions.
fn plan(target: &Target, fault: Fault) -> Result<Plan, String> {
    let newest = || target.newest();
    Ok(match fault {
        Fault::TornLogTail => tear_log(&newest()?),
        Fault::ZeroTail { len } => append_zeros(&newest()?.log, len)?,
        Fault::LogCutIndexLonger => cut_last_message(&newest()?),
        Fault::FlipByteLastMessage => {
            let seg = newest()?;
            flip_message_byte(&seg.log, seg.last())
        }
        Fault::IndexHalfEntryShort => shorten(&newest()?.index()?, HALF_INDEX_ENTRY, INDEX_ENTRY)?,
        Fault::TornLogAndHalfIndex => {
            let seg = newest()?;
            tear_log(&seg).and(shorten(&seg.index()?, HALF_INDEX_ENTRY, INDEX_ENTRY)?)
        }
        Fault::IndexMissing => delete(&newest()?.index()?, None),
        Fault::IndexZeroFilledTail { entries } => {
            append_zeros(&newest()?.index()?, entries * INDEX_ENTRY)?
        }
        Fault::IndexZeroedMiddle { entries } => zero_middle_entries(&newest()?.index()?, entries)?,
        Fault::ExtraEmptyPair => extra_empty_pair(target, &newest()?)?,
        Fault::SuccessorLogWithoutIndex => successor_log_without_index(target, &newest()?)?,
        Fault::RotationCrash => rotation_crash(target, &newest()?)?,
        Fault::LogMissing => {
            let seg = newest()?;
            seg.index()?;
            delete(&seg.log, Some("its .index remains"))
        }
        Fault::OffsetGap { gap } => offset_gap(target, gap)?,
        Fault::MidFileCorruptionSealed => {
            let seg = target.sealed()?;
            flip_message_byte(&seg.log, &seg.messages[seg.messages.len() / 2])
        }
        Fault::TruncatedIndexShortWhole { entries } => {
            if entries == 0 {
                return Err("0 entries to remove".into());
            }
            shorten(&newest()?.index()?, entries * INDEX_ENTRY, 0)?
        }
        Fault::Race(race) => race::plan(target, race)?.0,
    })
}

const INDEX_ENTRY: u64 = INDEX_ENTRY_SIZE as u64;

/// Cuts [`TORN_TAIL_BYTES`] off the `.log`.
fn tear_log(seg: &Loaded) -> Plan {
    let cut = seg.log_len - TORN_TAIL_BYTES;
    Plan::new(
        &seg.log,
        cut,
        format!(
            "{} cut from {} to {cut} bytes",
            seg.log.display(),
            seg.log_len
        ),
    )
    .op(Op::SetLen {
        path: seg.log.clone(),
        len: cut,
    })
    .damage(Damage::bytes(&seg.log, cut, seg.log_len))
}

fn cut_last_message(seg: &Loaded) -> Plan {
    let cut = seg.last().start as u64;
    let text = format!(
        "{} cut at byte {cut}, the start of its last message",
        seg.log.display()
    );
    Plan::new(&seg.log, cut, text)
        .op(Op::SetLen {
            path: seg.log.clone(),
            len: cut,
        })
        .damage(Damage::bytes(&seg.log, cut, seg.log_len))
}

fn append_zeros(path: &Path, count: u64) -> Result<Plan, String> {
    let len = file_len(path)?;
    let text = format!("{count} zero bytes appended to {}", path.display());
    Ok(Plan::new(path, len, text).op(Op::WriteAt {
        path: path.to_path_buf(),
        at: len,
        bytes: vec![0; count as usize],
    }))
}

/// Removes `by` bytes from the end of `path`, which must hold at least `by` and
/// `min_len` bytes.
fn shorten(path: &Path, by: u64, min_len: u64) -> Result<Plan, String> {
    let len = file_len(path)?;
    if len < by.max(min_len) {
        return Err(format!(
            "{} has {len} bytes: too short to remove {by}",
            path.display()
        ));
    }
    let text = format!("{} cut from {len} to {} bytes", path.display(), len - by);
    Ok(Plan::new(path, len - by, text).op(Op::SetLen {
        path: path.to_path_buf(),
        len: len - by,
    }))
}

fn delete(path: &Path, note: Option<&str>) -> Plan {
    let text = match note {
        Some(note) => format!("{} deleted; {note}", path.display()),
        None => format!("{} deleted", path.display()),
    };
    Plan::new(path, 0, text)
        .op(Op::Remove(path.to_path_buf()))
        .damage(Damage::File(path.to_path_buf()))
}

fn zero_middle_entries(index: &Path, entries: u64) -> Result<Plan, String> {
    let count = file_len(index)? / INDEX_ENTRY;
    if entries == 0 || count < entries + 2 {
        return Err(format!(
            "{} has {count} entries: too few to zero {entries} in the middle",
            index.display()
        ));
    }
    let first = (count - entries) / 2;
    let at = first * INDEX_ENTRY;
    let text = format!(
        "entries {first}..{} of {} zeroed",
        first + entries,
        index.display()
    );
    let bytes = vec![0; (entries * INDEX_ENTRY) as usize];
    Ok(Plan::new(index, at, text).op(Op::WriteAt {
        path: index.to_path_buf(),
        at,
        bytes,
    }))
}

/// Inverts the middle payload byte of `message` (byte 40, in the origin timestamp,
/// when the payload is empty).
fn flip_message_byte(log: &Path, message: &LoggedMessage) -> Plan {
    let payload_len = message.message.payload.len();
    let within = if payload_len > 0 {
        MESSAGE_HEADER_SIZE + payload_len / 2
    } else {
        ORIGIN_TIMESTAMP_POS
    };
    let at = (message.start + within) as u64;
    let text = format!(
        "byte {at} of {} (message {}) inverted",
        log.display(),
        message.message.offset
    );
    Plan::new(log, at, text)
        .op(Op::FlipByte {
            path: log.to_path_buf(),
            at,
        })
        .damage(Damage::bytes(log, at, at + 1))
}

fn extra_empty_pair(target: &Target, seg: &Loaded) -> Result<Plan, String> {
    let next = seg.next_offset();
    if target.segment_at(next).is_some() {
        return Err(format!(
            "segment {next} already exists after segment {}",
            seg.files.start_offset
        ));
    }
    Ok(create_pair(target, next))
}

fn create_pair(target: &Target, start_offset: u64) -> Plan {
    let (log, index) = (
        target.segment_path(start_offset, "log"),
        target.segment_path(start_offset, "index"),
    );
    Plan::new(&log, 0, format!("empty pair {start_offset} created"))
        .op(Op::Create(log))
        .op(Op::Create(index))
}

fn successor_log_without_index(target: &Target, seg: &Loaded) -> Result<Plan, String> {
    let next = seg.next_offset();
    let log = target.segment_path(next, "log");
    if target.empty_pair_at(next)? {
        let index = target.segment_path(next, "index");
        let text = format!("{} of the existing empty pair deleted", index.display());
        return Ok(Plan::new(&log, 0, text).op(Op::Remove(index)));
    }
    let text = format!("empty {} created without its .index", log.display());
    Ok(Plan::new(&log, 0, text).op(Op::Create(log)))
}

fn rotation_crash(target: &Target, seg: &Loaded) -> Result<Plan, String> {
    let next = seg.next_offset();
    let plan = tear_log(seg).and(shorten(&seg.index()?, INDEX_ENTRY, 0)?);
    if target.empty_pair_at(next)? {
        return Ok(plan.and(Plan::new(
            &seg.log,
            0,
            format!("empty pair {next} already there"),
        )));
    }
    Ok(plan.and(create_pair(target, next)))
}

/// Renames every segment file from the newest non-empty segment on `gap` offsets
/// higher, newest first so no name is taken twice.
fn offset_gap(target: &Target, gap: u64) -> Result<Plan, String> {
    if gap == 0 {
        return Err("a gap of 0 changes nothing".into());
    }
    target.sealed()?;
    let from = target.newest()?.files.start_offset;
    let new_log = target.segment_path(from + gap, "log");
    let mut plan = Plan::new(
        &new_log,
        0,
        format!("segments from {from} on renamed {gap} offsets higher"),
    );
    let mut sources = Vec::new();
    for s in target
        .segments
        .iter()
        .rev()
        .filter(|s| s.start_offset >= from)
    {
        for (path, extension) in [(&s.log, "log"), (&s.index, "index")] {
            if let Some(path) = path {
                let to = target.segment_path(s.start_offset + gap, extension);
                sources.push(path.clone());
                plan = plan
                    .op(Op::Rename {
                        from: path.clone(),
                        to,
                    })
                    .damage(Damage::File(path.clone()));
            }
        }
    }
    for op in &plan.ops {
        if let Op::Rename { to, .. } = op {
            if to.exists() && !sources.contains(to) {
                return Err(format!("{} already exists", to.display()));
            }
        }
    }
    Ok(plan)
}

fn file_len(path: &Path) -> Result<u64, String> {
    fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("stat {}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
