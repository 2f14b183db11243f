//! Judges analysed partitions: names every damage state of the 0.6 format with the
//! file and byte offset where it starts, and decides whether the server can start.
//!
//! "Ready to start" is stricter than "no damage": iggy-server 0.6.0 resets a
//! partition's offsets when it starts with an empty segment pair as the newest
//! segment, although its own rotation leaves exactly that behind. So an empty newest
//! pair is reported too (except the single empty pair of a partition that never held
//! a message, which is how the server creates partitions).

use crate::analyze::{Analysis, PartitionAnalysis, SegmentAnalysis};
use crate::index::IndexState;
use crate::layout::{Anomaly, AnomalyKind, OffsetFile};
use crate::scan::StopReason;
use journal::SegmentKey;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The newest data ends inside a message (header or body cut short).
    TornTail,
    /// Zero bytes follow the last valid message.
    ZeroTail,
    /// The last message of the partition fails its checksum.
    CorruptTail,
    /// Damage followed by more data, or in a sealed segment: not a crash tail.
    MidFileCorruption,
    IndexShort,
    IndexLong,
    IndexHalfEntry,
    IndexMissing,
    IndexMismatch,
    /// An `.index` without its `.log`.
    LogMissing,
    /// An empty `.log` without its `.index`: a rotation cut short.
    SuccessorWithoutIndex,
    /// The newest segment is an empty pair: 0.6.0 would reset the partition's offsets.
    EmptyPair,
    /// A segment does not start where the previous one ends.
    OffsetGap,
    /// A consumer or group offset file shorter than 8 bytes: the server cannot start.
    BadOffsetFile,
    /// A `.log` in a partition folder that is not a segment: the server panics on it.
    /// Never touched by iggy-warden: an operator must move it away.
    StrayLog,
    /// `offsets/consumers` or `offsets/groups` is missing: the server cannot start.
    MissingOffsetsDir,
    /// The rotation race: valid messages in the wrong segment file or out of order.
    MisplacedBatch,
    /// The rotation race: zero bytes inside a log with valid messages after them.
    ZeroHole,
    /// The rotation race: index entries for messages that are not in the log.
    GhostIndexEntries,
    /// Two valid messages with one offset and different bytes.
    DuplicateOffset,
    /// `state/log` ends inside an entry, or in zero bytes: the server does not start.
    StateLogTorn,
    /// A `state/log` entry fails its checksum: the server does not start.
    StateLogCorrupt,
    /// A `state/log` entry's index does not follow the previous one: the server does
    /// not start.
    StateLogGap,
    /// `state/log` is shorter than the length a journal says was verified in this
    /// boot: whole entries were removed behind the server's back.
    StateLogShrunk,
    /// A valid `state/log` entry names a stream, topic, partition, consumer group or
    /// user the entries before it do not leave: the server panics replaying it.
    StateLogUnreplayable,
    /// `state/info` does not decode: the server panics at start.
    StateInfoBad,
    /// A stream, topic or partition folder holding messages that no `state/log` entry
    /// names: the server ignores it and its messages are unreachable.
    FolderWithoutMetadata,
    /// A partition `state/log` names whose folder is missing: the server does not start.
    MetadataWithoutFolder,
    /// A symbolic link in the layout: iggy-warden reads and changes nothing through
    /// one, so an operator must put the real file or folder in its place.
    Symlink,
    /// A file (or FIFO, socket, device) where the layout needs a folder.
    NotAFolder,
}

impl ProblemKind {
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::TornTail => "torn-tail",
            ProblemKind::ZeroTail => "zero-tail",
            ProblemKind::CorruptTail => "corrupt-tail",
            ProblemKind::MidFileCorruption => "mid-file-corruption",
            ProblemKind::IndexShort => "index-short",
            ProblemKind::IndexLong => "index-long",
            ProblemKind::IndexHalfEntry => "index-half-entry",
            ProblemKind::IndexMissing => "index-missing",
            ProblemKind::IndexMismatch => "index-mismatch",
            ProblemKind::LogMissing => "log-missing",
            ProblemKind::SuccessorWithoutIndex => "successor-without-index",
            ProblemKind::EmptyPair => "empty-pair",
            ProblemKind::OffsetGap => "offset-gap",
            ProblemKind::BadOffsetFile => "bad-offset-file",
            ProblemKind::StrayLog => "stray-log",
            ProblemKind::MissingOffsetsDir => "missing-offsets-dir",
            ProblemKind::MisplacedBatch => "misplaced-batch",
            ProblemKind::ZeroHole => "zero-hole",
            ProblemKind::GhostIndexEntries => "ghost-index-entries",
            ProblemKind::DuplicateOffset => "duplicate-offset",
            ProblemKind::StateLogTorn => "state-log-torn",
            ProblemKind::StateLogCorrupt => "state-log-corrupt",
            ProblemKind::StateLogGap => "state-log-gap",
            ProblemKind::StateLogShrunk => "state-log-shrunk",
            ProblemKind::StateLogUnreplayable => "state-log-unreplayable",
            ProblemKind::StateInfoBad => "state-info-bad",
            ProblemKind::FolderWithoutMetadata => "folder-without-metadata",
            ProblemKind::MetadataWithoutFolder => "metadata-without-folder",
            ProblemKind::Symlink => "symlink",
            ProblemKind::NotAFolder => "not-a-folder",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub path: PathBuf,
    /// Byte offset in `path` where the problem starts, when it has one.
    pub offset: Option<u64>,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentKey>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, crate::names::escaped(&self.path))?;
        if let Some(offset) = self.offset {
            write!(f, " at byte {offset}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Everything wrong with one partition, in segment order.
pub fn judge_partition(p: &PartitionAnalysis) -> Vec<Problem> {
    let mut out = Vec::new();
    let tail = p.tail_position();
    let newest = p.segments.len().checked_sub(1);
    for (i, seg) in p.segments.iter().enumerate() {
        judge_segment(seg, Some(i) == tail, &mut out);
        if Some(i) == newest && i > 0 && seg.is_empty_pair() {
            out.push(Problem {
                kind: ProblemKind::EmptyPair,
                path: seg.files.log_path.clone(),
                offset: None,
                detail: "the newest segment is an empty pair: iggy-server 0.6.0 would reset \
                         the partition's offsets on start"
                    .into(),
                segment: Some(seg.key()),
            });
        }
    }
    judge_contiguity(p, &mut out);
    for f in &p.offset_files {
        judge_offset_file(f, &mut out);
    }
    for path in &p.missing_offset_dirs {
        out.push(Problem {
            kind: ProblemKind::MissingOffsetsDir,
            path: path.clone(),
            offset: None,
            detail: "iggy-server 0.6.0 creates this folder for every partition and fails to \
                     start without it"
                .into(),
            segment: None,
        });
    }
    for path in &p.stray_logs {
        out.push(Problem {
            kind: ProblemKind::StrayLog,
            path: path.clone(),
            offset: None,
            detail: "not a segment, but iggy-server 0.6.0 loads every *.log below a \
                     partition folder and panics on this name; move it out (iggy-warden \
                     never touches files it does not own)"
                .into(),
            segment: None,
        });
    }
    out.extend(p.anomalies.iter().map(anomaly_problem));
    out
}

/// Problems of every partition, partition by partition, then those of the layout
/// outside any partition folder.
pub fn judge(a: &Analysis) -> Vec<Problem> {
    let mut out: Vec<Problem> = a.partitions.iter().flat_map(judge_partition).collect();
    out.extend(judge_layout(a));
    out
}

/// The problems of the layout outside the partition folders it could read: links
/// and files where folders belong.
pub fn judge_layout(a: &Analysis) -> Vec<Problem> {
    a.anomalies.iter().map(anomaly_problem).collect()
}

fn anomaly_problem(a: &Anomaly) -> Problem {
    Problem {
        kind: match a.kind {
            AnomalyKind::Symlink => ProblemKind::Symlink,
            AnomalyKind::NotAFolder => ProblemKind::NotAFolder,
        },
        path: a.path.clone(),
        offset: None,
        detail: a.detail.clone(),
        segment: None,
    }
}

fn judge_segment(seg: &SegmentAnalysis, is_tail: bool, out: &mut Vec<Problem>) {
    let files = &seg.files;
    let key = Some(seg.key());
    let mut push = |kind, path: &PathBuf, offset, detail: String| {
        out.push(Problem {
            kind,
            path: path.clone(),
            offset,
            detail,
            segment: key,
        })
    };
    let Some(scan) = seg.scan else {
        push(
            ProblemKind::LogMissing,
            &files.index_path,
            None,
            "the index has no .log beside it".into(),
        );
        return;
    };
    if let Some(at) = scan.stop.position() {
        let kind = match scan.stop {
            _ if !is_tail || !scan.stop.is_tail_only() => ProblemKind::MidFileCorruption,
            StopReason::ZeroFill { .. } => ProblemKind::ZeroTail,
            StopReason::BadChecksum { .. } => ProblemKind::CorruptTail,
            _ => ProblemKind::TornTail,
        };
        let kind = match scan.stop {
            StopReason::OffsetJump { at: 0, .. } => ProblemKind::OffsetGap,
            _ => kind,
        };
        let mut detail = scan.stop.describe();
        if kind == ProblemKind::MidFileCorruption && !is_tail {
            detail.push_str(" (in a sealed segment, before later data)");
        }
        push(kind, &files.log_path, Some(at), detail);
    }
    let index_kind = match seg.index {
        IndexState::Consistent => None,
        IndexState::Missing if files.log_len == Some(0) => Some(ProblemKind::SuccessorWithoutIndex),
        IndexState::Missing => Some(ProblemKind::IndexMissing),
        IndexState::HalfEntry { .. } => Some(ProblemKind::IndexHalfEntry),
        IndexState::Short { .. } => Some(ProblemKind::IndexShort),
        IndexState::Long { .. } => Some(ProblemKind::IndexLong),
        IndexState::Mismatch { .. } | IndexState::Unrepresentable { .. } => {
            Some(ProblemKind::IndexMismatch)
        }
    };
    if let Some(kind) = index_kind {
        let path = if kind == ProblemKind::SuccessorWithoutIndex {
            &files.log_path
        } else {
            &files.index_path
        };
        push(kind, path, seg.index.position(), seg.index.describe());
    }
}

/// Each segment must start after the previous segment's last message.
fn judge_contiguity(p: &PartitionAnalysis, out: &mut Vec<Problem>) {
    for pair in p.segments.windows(2) {
        let [prev, next] = pair else { continue };
        let Some(scan) = prev.scan else { continue };
        // Damage inside `prev` is reported already; the gap would only repeat it.
        if scan.stop != StopReason::EndOfFile || next.scan.is_none() {
            continue;
        }
        if next.overlaps(prev) {
            let (found, expected) = (next.key().start_offset, prev.offset_after());
            out.push(Problem {
                kind: ProblemKind::OffsetGap,
                path: next.files.log_path.clone(),
                offset: None,
                detail: format!(
                    "segment starts at offset {found}, but the previous segment holds \
                     messages up to offset {}",
                    expected - 1
                ),
                segment: Some(next.key()),
            });
        }
    }
}

/// Whether the server can read this offset file's name: it parses every name in
/// `offsets/consumers` and `offsets/groups` as a u32 and panics on any other.
pub fn offset_file_name_ok(f: &OffsetFile) -> bool {
    f.path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.parse::<u32>().is_ok())
}

/// The server reads 8 bytes and ignores any more; a shorter file stops it starting,
/// and a name that is not a number makes it panic.
fn judge_offset_file(f: &OffsetFile, out: &mut Vec<Problem>) {
    if !offset_file_name_ok(f) {
        out.push(Problem {
            kind: ProblemKind::BadOffsetFile,
            path: f.path.clone(),
            offset: None,
            detail: "its name is not a consumer or group id: iggy-server 0.6.0 panics on \
                     it at start; move it out (iggy-warden never touches it)"
                .into(),
            segment: None,
        });
    } else if f.len < 8 {
        out.push(Problem {
            kind: ProblemKind::BadOffsetFile,
            path: f.path.clone(),
            offset: Some(f.len),
            detail: format!("{} bytes where an 8-byte offset belongs", f.len),
            segment: None,
        });
    }
}

#[cfg(test)]
mod tests;
