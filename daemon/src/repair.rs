//! What `recover` and `replay` share: the partition filter, the analysis with a
//! progress bar, the repair pipeline run on a session, and its printed summary.

use crate::config::Dirs;
use crate::progress::TerminalProgress;
use crate::session::Session;
use anyhow::Context;
use journal::PartitionId;
use recovery::analyze::Analysis;
use recovery::guided::GuidedStats;
use recovery::layout::{classify_root, Root};
use recovery::offset_reset;
use recovery::pipeline::{self, RepairOutcome, Request};
use recovery::plan::{Mode, Refusal};
use std::io::{self, Write};

/// Which partitions a command looks at: all, or those matching a
/// `stream[/topic[/partition]]` prefix.
#[derive(Clone, Debug, Default)]
pub struct PartitionFilter(Vec<u32>);

impl std::str::FromStr for PartitionFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts = s
            .split('/')
            .map(|p| p.parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                format!("{s:?}: expected stream, stream/topic or stream/topic/partition")
            })?;
        if parts.is_empty() || parts.len() > 3 {
            return Err(format!("{s:?}: expected at most stream/topic/partition"));
        }
        Ok(Self(parts))
    }
}

impl PartitionFilter {
    pub fn matches(&self, p: &PartitionId) -> bool {
        let id = [p.stream, p.topic, p.partition];
        self.0.iter().zip(id).all(|(want, got)| *want == got)
    }
}

/// The outcome when the data directory holds nothing yet (a first start: missing,
/// empty, or only what the server creates before `state/info`), judged before the
/// state directory or the journal is touched; `None` for a data directory to work on.
/// A folder with data but no `state/info`, or of another version, is an error.
pub fn nothing_to_check(dirs: &Dirs, mode: Mode) -> anyhow::Result<Option<RepairOutcome>> {
    let root = classify_root(&dirs.data_dir).context("cannot read the data directory")?;
    Ok(match root {
        Root::Fresh { why } => Some(RepairOutcome::nothing_to_check(mode, why)),
        Root::Iggy { .. } => None,
    })
}

/// Layout and analysis of the data directory, limited by `filter`.
pub fn analyze(
    session: &Session,
    filter: &PartitionFilter,
) -> anyhow::Result<(Analysis, GuidedStats)> {
    let known = session.known_segments();
    let progress = TerminalProgress::new("scanning");
    let result = pipeline::analyze(
        &session.dirs.data_dir,
        known,
        session.state_log_mark().map(Into::into),
        Some(session.offsets_guide()),
        &|p| filter.matches(p),
        &progress,
    )
    .context("cannot read the data directory")?;
    progress.finish();
    Ok(result)
}

/// Runs the repair pipeline on the session's directories; with `reset_offsets`, then
/// resets the consumer offsets it leaves past their partition's end.
pub fn repair(
    session: &Session,
    mode: Mode,
    filter: &PartitionFilter,
    reset_offsets: bool,
) -> anyhow::Result<RepairOutcome> {
    let quarantine = session.quarantine();
    let exec = session.executor(&quarantine)?;
    let known = session.known_segments();
    let progress = TerminalProgress::new("scanning");
    let mut outcome = pipeline::run(
        &exec,
        &Request {
            mode,
            known,
            state_log: session.state_log_mark().map(Into::into),
            offsets: Some(session.offsets_guide()),
            only: &|p| filter.matches(p),
            progress: &progress,
        },
    )?;
    progress.finish();
    if reset_offsets && outcome.ready_to_start && !outcome.offsets_ahead.is_empty() {
        let ahead = std::mem::take(&mut outcome.offsets_ahead);
        let (executed, left) = offset_reset::reset(&exec, ahead)?;
        outcome.bytes_quarantined += executed.iter().map(|e| e.quarantined_bytes).sum::<u64>();
        outcome.actions.extend(executed);
        outcome.offsets_ahead = left;
    }
    Ok(outcome)
}

/// Prints what a repairing run did (one JSON object, or text) and returns its exit
/// code: 0 ready to start, 3 an operator must decide. `recover` and `replay --apply`
/// report alike.
pub fn report(o: &RepairOutcome, json: bool) -> anyhow::Result<u8> {
    if json {
        crate::output::json(o)?;
    } else {
        crate::output::to_stdout(|out| print_outcome(o, out))?;
    }
    Ok(exit_code(o))
}

/// 0 ready to start, 3 an operator must decide.
pub fn exit_code(o: &RepairOutcome) -> u8 {
    if o.ready_to_start {
        crate::exit::OK
    } else {
        crate::exit::NEEDS_OPERATOR
    }
}

/// Who must decide about refusal `r`, and why.
pub fn refusal_line(r: &Refusal) -> String {
    match r.partition {
        Some(p) => format!("partition {p} needs an operator: {}", r.why),
        None => format!("state files need an operator: {}", r.why),
    }
}

pub fn print_outcome(o: &RepairOutcome, out: &mut dyn Write) -> io::Result<()> {
    if let Some(why) = &o.nothing_to_check {
        writeln!(
            out,
            "nothing to check: {why} (a first start): ready to start"
        )?;
        return Ok(());
    }
    let used = o.guided.trusted + o.guided.resumed + o.guided.offsets_listings_used > 0
        || o.guided.state_log_bytes_trusted > 0;
    writeln!(
        out,
        "mode {}; journal {}: {} segments trusted ({} by their files' stamps, unread), {} resumed from a checkpoint, {} scanned ({} bytes); state/log: {} bytes verified, {} trusted; offsets folders of {} partitions as listed before",
        o.mode,
        if used { "used" } else { "gave nothing to skip" },
        o.guided.trusted,
        o.guided.trusted_by_stamp,
        o.guided.resumed,
        o.guided.scanned,
        o.guided.bytes_scanned,
        o.guided.state_log_bytes_verified,
        o.guided.state_log_bytes_trusted,
        o.guided.offsets_listings_used
    )?;
    for e in &o.replayed {
        writeln!(
            out,
            "finished {}: {} ({} bytes quarantined)",
            e.repair, e.action, e.quarantined_bytes
        )?;
    }
    for e in &o.actions {
        writeln!(
            out,
            "{}: {} ({} bytes quarantined)",
            e.repair, e.action, e.quarantined_bytes
        )?;
    }
    for r in &o.refusals {
        writeln!(out, "{}", refusal_line(r))?;
        for p in &r.problems {
            writeln!(out, "  {p}")?;
        }
    }
    for p in &o.layout_refusals {
        writeln!(out, "the data directory needs an operator: {p}")?;
    }
    for p in &o.partitions {
        writeln!(
            out,
            "partition {}: {} messages kept",
            p.partition, p.messages_kept
        )?;
    }
    for ahead in &o.offsets_ahead {
        writeln!(out, "warning: {ahead}")?;
    }
    if o.ready_to_start {
        writeln!(
            out,
            "{} repairs, {} bytes quarantined: ready to start",
            o.actions.len() + o.replayed.len(),
            o.bytes_quarantined
        )?;
    } else {
        writeln!(out, "nothing changed: an operator must decide (see above)")?;
    }
    Ok(())
}
