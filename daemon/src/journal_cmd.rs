//! `iggy-warden journal …`: let an operator read, check and compact the write-ahead
//! journal at `<state_dir>/journal`.
//!
//! The journal takes an exclusive lock: while the sidecar runs, it is asked to hand the
//! journal over for the duration of the command (see [`crate::handover`]).

use crate::config::DirArgs;
use crate::exit;
use crate::journal_open::{self, Access, Condition, OpenedJournal};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use journal::{Entry, Record, RepairAction, RepairId, SegmentKey};
use recovery::names::escaped;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;

#[derive(Args, Debug)]
pub struct JournalArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    #[command(subcommand)]
    pub cmd: JournalCmd,
}

#[derive(Subcommand, Debug)]
pub enum JournalCmd {
    /// Print the journal's records, oldest first.
    Show {
        /// Print one JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Only records about this segment, given as stream/topic/partition@start_offset
        /// (repairs of its files included).
        #[arg(long, value_name = "KEY")]
        segment: Option<SegmentKey>,
        /// Start at this sequence number.
        #[arg(long, value_name = "SEQ")]
        since: Option<u64>,
    },
    /// Check every record and the derived state. Exit status: 0 sound, 1 problems
    /// found, 2 journal unreadable.
    Verify,
    /// Drop the records of deleted segments and superseded checkpoints.
    Compact,
}

pub fn run(args: &JournalArgs) -> anyhow::Result<u8> {
    let state_dir = args.dirs.state_dir_only()?;
    match &args.cmd {
        JournalCmd::Show {
            json,
            segment,
            since,
        } => show(&state_dir, *json, *segment, since.unwrap_or(0)),
        JournalCmd::Verify => verify(&state_dir),
        JournalCmd::Compact => compact(&state_dir),
    }
}

/// `show` and `verify` read a copy and change nothing: the journal as it is, or why
/// it cannot be used (exit 2).
fn inspect(state_dir: &Path) -> anyhow::Result<Result<OpenedJournal, String>> {
    let opened = journal_open::open(state_dir, Access::Inspect)?;
    Ok(match &opened.condition {
        Condition::Usable => Ok(opened),
        _ => Err(opened.describe()),
    })
}

fn show(
    state_dir: &Path,
    as_json: bool,
    segment: Option<SegmentKey>,
    since: u64,
) -> anyhow::Result<u8> {
    let opened = match inspect(state_dir)? {
        Ok(o) => o,
        Err(why) => {
            eprintln!("iggy-warden: {why}");
            return Ok(exit::ERROR);
        }
    };
    let Some(journal) = opened.journal() else {
        bail!("internal: a usable journal without a handle");
    };
    let mut filter = segment.map(SegmentFilter::new);
    let mut out = io::stdout().lock();
    for entry in journal.records_since(since) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => bail!("reading the journal: {}", opened.real_names(&e)),
        };
        if filter.as_mut().is_some_and(|f| !f.matches(&entry.record)) {
            continue;
        }
        let line = if as_json {
            entry_json(&entry).to_string()
        } else {
            format!(
                "{:>8}  {}  {}",
                entry.seq,
                format_micros(entry.unix_micros),
                entry.record
            )
        };
        if let Err(e) = writeln!(out, "{line}") {
            // `journal show | head` closing the pipe is not an error.
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(exit::OK);
            }
            return Err(e).context("writing to stdout");
        }
    }
    Ok(exit::OK)
}

fn verify(state_dir: &Path) -> anyhow::Result<u8> {
    let unreadable = |what: String| {
        eprintln!("{what}");
        eprintln!("iggy-warden will not trust this journal and falls back to a full scan of the data directory");
        exit::ERROR
    };
    let opened = match inspect(state_dir)? {
        Ok(o) => o,
        Err(why) => return Ok(unreadable(why)),
    };
    let Some(journal) = opened.journal() else {
        bail!("internal: a usable journal without a handle");
    };
    Ok(match journal.verify() {
        Err(e) => unreadable(opened.real_names(&e)),
        Ok(report) => {
            print!("{}", opened.real_names(&report));
            if report.is_sound() {
                exit::OK
            } else if report.has_unsupported_version() {
                exit::ERROR
            } else {
                exit::PROBLEMS
            }
        }
    })
}

/// Compacts the journal in place, taken over from the sidecar. A journal that cannot
/// be used is moved aside by the one rule (and there is nothing to compact).
fn compact(state_dir: &Path) -> anyhow::Result<u8> {
    let dir = state_dir.join(journal_open::JOURNAL_DIR);
    if !dir.is_dir() {
        bail!("no journal at {}", escaped(&dir));
    }
    let opened = journal_open::open(state_dir, Access::Borrow)?;
    if !opened.condition.history_usable() {
        eprintln!("iggy-warden: {}; nothing to compact", opened.describe());
        return Ok(exit::ERROR);
    }
    let Some(journal) = opened.journal() else {
        bail!("internal: a writer's journal without a handle");
    };
    let r = journal.compact()?;
    println!(
        "records: {} -> {} (dropped {}: {} deleted segments, {} superseded checkpoints)",
        r.records_before,
        r.records_before.saturating_sub(r.records_dropped),
        r.records_dropped,
        r.segments_dropped,
        r.checkpoints_dropped
    );
    println!("compacted through seq {}", r.compacted_through);
    println!("size on disk: {} -> {} bytes", r.size_before, r.size_after);
    if r.size_after >= r.size_before && r.records_dropped > 0 {
        println!(
            "(sled reuses the space it frees for later records rather than shrinking its file)"
        );
    }
    Ok(exit::OK)
}

/// Selects the records about one segment, and the outcomes of repairs whose intent
/// touched it (those records name only the repair).
struct SegmentFilter {
    segment: SegmentKey,
    repairs: HashSet<RepairId>,
}

impl SegmentFilter {
    fn new(segment: SegmentKey) -> Self {
        Self {
            segment,
            repairs: HashSet::new(),
        }
    }

    fn matches(&mut self, record: &Record) -> bool {
        match record {
            Record::RepairIntent { repair, action, .. } => {
                let touches = match action {
                    RepairAction::TruncateLog { segment, .. }
                    | RepairAction::TruncateIndex { segment, .. }
                    | RepairAction::RewriteIndex { segment, .. } => *segment == self.segment,
                    RepairAction::QuarantineFile { path, .. } => {
                        *path == self.segment.rel_log() || *path == self.segment.rel_index()
                    }
                    // Undoing a repair of this segment is about this segment too.
                    RepairAction::Restore { repair: undone } => self.repairs.contains(undone),
                    RepairAction::CreateDir { .. } | RepairAction::TruncateStateLog { .. } => false,
                    RepairAction::Relay {
                        originals,
                        segments,
                        ..
                    } => {
                        originals.iter().any(|o| {
                            o.path == self.segment.rel_log() || o.path == self.segment.rel_index()
                        }) || segments
                            .iter()
                            .any(|s| self.segment.partition.segment(s.start_offset) == self.segment)
                    }
                };
                if touches {
                    self.repairs.insert(*repair);
                }
                touches
            }
            Record::RepairDone { repair } | Record::RepairFailed { repair, .. } => {
                self.repairs.contains(repair)
            }
            Record::AlertRaised { segment, .. } => *segment == self.segment,
            Record::AlertsCleared {
                partition, segment, ..
            } => *partition == self.segment.partition && segment.is_none_or(|s| s == self.segment),
            other => other.segment() == Some(self.segment),
        }
    }
}

fn entry_json(entry: &Entry) -> Value {
    let mut obj = json!({
        "seq": entry.seq,
        "unix_micros": entry.unix_micros,
        "time": format_micros(entry.unix_micros),
        "kind": entry.record.kind(),
    });
    let fields = match &entry.record {
        Record::SegmentOpened { segment }
        | Record::SealIntent { segment }
        | Record::SegmentDeleted { segment } => json!({ "segment": segment.to_string() }),
        Record::Sealed {
            segment,
            log_len,
            index_len,
            last_offset,
            last_checksum,
            last_start,
        } => json!({
            "segment": segment.to_string(),
            "log_len": log_len,
            "index_len": index_len,
            "last_offset": last_offset,
            "last_checksum": last_checksum,
            "last_start": last_start,
        }),
        Record::Checkpoint {
            segment,
            valid_len,
            next_offset,
        } => json!({
            "segment": segment.to_string(),
            "valid_len": valid_len,
            "next_offset": next_offset,
        }),
        Record::RepairIntent {
            repair,
            action,
            reason,
        } => json!({
            "repair": repair.to_string(),
            "action": action.to_string(),
            "action_detail": action,
            "path": action.rel_path(),
            "reason": reason,
        }),
        Record::RepairDone { repair } => json!({ "repair": repair.to_string() }),
        Record::RepairFailed { repair, error } => {
            json!({ "repair": repair.to_string(), "error": error })
        }
        Record::StateLogVerified {
            valid_len,
            last_index,
            last_checksum,
        } => json!({
            "valid_len": valid_len,
            "last_index": last_index,
            "last_checksum": last_checksum,
        }),
        Record::AlertRaised {
            segment,
            kind,
            file,
            byte,
            detail,
            raised_unix_micros,
        } => json!({
            "segment": segment.to_string(),
            "alert": kind,
            "path": file,
            "byte": byte,
            "detail": detail,
            "raised_unix_micros": raised_unix_micros,
        }),
        Record::AlertsCleared {
            partition,
            segment,
            kind,
            reason,
        } => json!({
            "partition": partition.to_string(),
            "segment": segment.map(|s| s.to_string()),
            "alert": kind,
            "reason": reason,
        }),
    };
    if let (Some(obj), Value::Object(fields)) = (obj.as_object_mut(), fields) {
        obj.extend(fields);
    }
    obj
}

/// UTC time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, without a date-time dependency.
fn format_micros(unix_micros: u64) -> String {
    let secs = unix_micros / 1_000_000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        day_secs / 3600,
        day_secs % 3600 / 60,
        day_secs % 60,
        unix_micros % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_micros(951_782_400_000_001),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            format_micros(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    #[test]
    fn segment_filter_follows_repairs_of_the_segment() {
        let key: SegmentKey = "1/2/3@100".parse().unwrap();
        let other: SegmentKey = "1/2/3@200".parse().unwrap();
        let mut f = SegmentFilter::new(key);
        assert!(f.matches(&Record::SegmentOpened { segment: key }));
        assert!(!f.matches(&Record::SegmentOpened { segment: other }));
        let intent = |id, path: String| Record::RepairIntent {
            repair: RepairId(id),
            action: RepairAction::QuarantineFile { path, len: 1 },
            reason: String::new(),
        };
        assert!(f.matches(&intent(1, key.rel_index())));
        assert!(!f.matches(&intent(2, other.rel_log())));
        assert!(f.matches(&Record::RepairDone {
            repair: RepairId(1)
        }));
        assert!(!f.matches(&Record::RepairDone {
            repair: RepairId(2)
        }));
        let restore = |id, undone| Record::RepairIntent {
            repair: RepairId(id),
            action: RepairAction::Restore {
                repair: RepairId(undone),
            },
            reason: String::new(),
        };
        assert!(f.matches(&restore(3, 1)));
        assert!(!f.matches(&restore(4, 2)));
        assert!(f.matches(&Record::RepairFailed {
            repair: RepairId(3),
            error: String::new()
        }));
    }
}
