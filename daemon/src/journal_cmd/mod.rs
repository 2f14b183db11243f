//! `iggy-warden journal …`: let an operator read, check and compact the write-ahead
//! journal at `<state_dir>/journal`.
//!
//! The journal takes an exclusive lock: while the sidecar runs, it is asked to hand the
//! journal over for the duration of the command (see [`crate::handover`]).

mod present;

use crate::config::DirArgs;
use crate::exit;
use crate::journal_open::{self, Access, Condition, OpenedJournal};
use anyhow::bail;
use clap::{Args, Subcommand};
use journal::SegmentKey;
use present::{entry_json, format_micros, SegmentFilter};
use recovery::names::escaped;
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
    // A record that cannot be read ends the listing after the ones before it.
    let mut unreadable = None;
    crate::output::to_stdout(|out| {
        for entry in journal.records_since(since) {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    unreadable = Some(opened.real_names(&e));
                    break;
                }
            };
            if filter.as_mut().is_some_and(|f| !f.matches(&entry.record)) {
                continue;
            }
            if as_json {
                writeln!(out, "{}", entry_json(&entry))?;
            } else {
                writeln!(
                    out,
                    "{:>8}  {}  {}",
                    entry.seq,
                    format_micros(entry.unix_micros),
                    entry.record
                )?;
            }
        }
        Ok(())
    })?;
    if let Some(why) = unreadable {
        bail!("reading the journal: {why}");
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
            let text = opened.real_names(&report);
            crate::output::to_stdout(|out| write!(out, "{text}"))?;
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
    crate::output::to_stdout(|out| {
        writeln!(
            out,
            "records: {} -> {} (dropped {}: {} deleted segments, {} superseded checkpoints)",
            r.records_before,
            r.records_before.saturating_sub(r.records_dropped),
            r.records_dropped,
            r.segments_dropped,
            r.checkpoints_dropped
        )?;
        writeln!(out, "compacted through seq {}", r.compacted_through)?;
        writeln!(
            out,
            "size on disk: {} -> {} bytes",
            r.size_before, r.size_after
        )?;
        if r.size_after >= r.size_before && r.records_dropped > 0 {
            writeln!(
                out,
                "(sled reuses the space it frees for later records rather than shrinking its file)"
            )?;
        }
        Ok(())
    })?;
    Ok(exit::OK)
}
