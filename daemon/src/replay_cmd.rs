//! `iggy-warden replay`: the manual command. Shows the journal's recent history of the
//! segments that need attention and the plan; changes nothing unless `--apply`.

use crate::config::DirArgs;
use crate::exit;
use crate::journal_open::Condition;
use crate::repair::{analyze, nothing_to_check, refusal_line, repair, report, PartitionFilter};
use crate::session::{refuse_if_busy, Session};
use journal::{Entry, PendingRepair, RepairAction, SegmentKey};
use recovery::offset_reset::{self, PlannedOffsets};
use recovery::plan::{plan, Mode, Plan};
use std::collections::BTreeSet;
use std::io::{self, Write};

/// Journal records shown per segment.
const HISTORY_PER_SEGMENT: usize = 8;

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Recovery mode, as for `recover`: tolerate-tail, point-in-time, salvage or
    /// absolute [default: tolerate-tail, or `mode` in the config file]
    #[arg(long, env = "IGGY_WARDEN_MODE")]
    pub mode: Option<Mode>,
    /// Execute the plan (default: only show it).
    #[arg(long)]
    pub apply: bool,
    /// Limit to one stream, topic or partition: `S`, `S/T` or `S/T/P`.
    #[arg(long)]
    pub partition: Option<PartitionFilter>,
    /// Change files even though another process has some open (with --apply).
    #[arg(long)]
    pub force: bool,
    /// After the repair, move each consumer or group offset stored past its
    /// partition's last message back to that message, as `recover` does; a dry run
    /// shows those of the partitions its plan leaves alone or only cuts [default: no,
    /// or `reset_offsets_ahead` in the config file]
    #[arg(long)]
    pub reset_offsets_ahead: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ReplayArgs) -> anyhow::Result<u8> {
    let dirs = args.dirs.resolve()?;
    let mode = dirs.mode(args.mode);
    let filter = args.partition.clone().unwrap_or_default();
    if let Some(nothing) = nothing_to_check(&dirs, mode)? {
        if args.json && !args.apply {
            let out = serde_json::json!({
                "dry_run": true,
                "nothing_to_check": nothing.nothing_to_check,
            });
            crate::output::json(&out)?;
            return Ok(exit::OK);
        }
        return report(&nothing, args.json);
    }
    if args.apply {
        let session = Session::open(dirs)?;
        refuse_if_busy(&session.dirs.data_dir, args.force)?;
        let reset = session.dirs.reset_offsets_ahead(args.reset_offsets_ahead);
        return report(&repair(&session, mode, &filter, reset)?, args.json);
    }
    // A dry run changes nothing, in the state directory either: it reads a copy of
    // the journal, and scans everything when the journal is unusable or missing.
    let session = Session::inspect(dirs)?;
    let pending = match session.readable_journal() {
        Some(j) => j.pending_repairs()?,
        None => Vec::new(),
    };
    let (analysis, _) = analyze(&session, &filter)?;
    let the_plan = plan(&analysis, mode)?;
    let affected: BTreeSet<SegmentKey> =
        the_plan.problems.iter().filter_map(|p| p.segment).collect();
    let history = history_of(&session, &affected)?;
    let offsets = offset_reset::as_planned(&analysis, &the_plan);
    let reset = session.dirs.reset_offsets_ahead(args.reset_offsets_ahead);
    let resets: Vec<RepairAction> = if reset && !the_plan.needs_operator() {
        offset_reset::reset_actions(&session.dirs.data_dir, &offsets.ahead)
            .into_iter()
            .map(|(action, _)| action)
            .collect()
    } else {
        Vec::new()
    };
    if args.json {
        let pending: Vec<_> = pending
            .iter()
            .map(
                |p| serde_json::json!({"repair": p.repair, "action": p.action, "reason": p.reason}),
            )
            .collect();
        let out = serde_json::json!({
            "dry_run": true,
            "journal": journal_json(&session),
            "pending_repairs": pending,
            "history": history,
            "plan": the_plan,
            "offsets_ahead": offsets.ahead,
            "offsets_judged_after_repair": offsets.judged_after_repair,
            "offset_resets": resets,
        });
        crate::output::json(&out)?;
    } else {
        let dry = DryRun {
            pending: &pending,
            history: &history,
            the_plan: &the_plan,
            offsets: &offsets,
            resets: &resets,
        };
        crate::output::to_stdout(|out| print_plan(out, &session, &dry))?;
    }
    Ok(if the_plan.needs_operator() {
        exit::NEEDS_OPERATOR
    } else {
        exit::OK
    })
}

/// What the dry run found of the journal: `usable`, `unusable` (with why) or `missing`.
fn journal_json(session: &Session) -> serde_json::Value {
    let path = session
        .dirs
        .state_dir
        .join(crate::journal_open::JOURNAL_DIR);
    let (state, why) = match session.journal_condition() {
        Condition::Unusable { why } => ("unusable", Some(why.as_str())),
        Condition::Missing => ("missing", None),
        // An inspection never creates or replaces a journal.
        Condition::Usable | Condition::Created | Condition::Replaced { .. } => ("usable", None),
    };
    serde_json::json!({
        "path": recovery::names::escaped(&path).to_string(),
        "state": state,
        "why": why,
    })
}

/// The newest journal records of each affected segment, oldest first.
fn history_of(session: &Session, affected: &BTreeSet<SegmentKey>) -> anyhow::Result<Vec<Entry>> {
    let Some(journal) = session.readable_journal() else {
        return Ok(Vec::new());
    };
    if affected.is_empty() || !session.history_usable() {
        return Ok(Vec::new());
    }
    let mut per_segment: std::collections::BTreeMap<SegmentKey, Vec<Entry>> = Default::default();
    for entry in journal.records_since(0) {
        let entry = entry?;
        let Some(seg) = entry.record.segment().filter(|s| affected.contains(s)) else {
            continue;
        };
        let list = per_segment.entry(seg).or_default();
        list.push(entry);
        if list.len() > HISTORY_PER_SEGMENT {
            list.remove(0);
        }
    }
    let mut all: Vec<Entry> = per_segment.into_values().flatten().collect();
    all.sort_by_key(|e| e.seq);
    Ok(all)
}

/// What a dry run found and would do.
struct DryRun<'a> {
    pending: &'a [PendingRepair],
    history: &'a [Entry],
    the_plan: &'a Plan,
    /// Offsets past their partition's end as the plan will leave them.
    offsets: &'a PlannedOffsets,
    /// The resets of those offsets `--reset-offsets-ahead` would make.
    resets: &'a [RepairAction],
}

/// The dry run's plan, as text.
fn print_plan(out: &mut dyn Write, session: &Session, dry: &DryRun<'_>) -> io::Result<()> {
    let DryRun {
        pending,
        history,
        the_plan,
        offsets,
        resets,
    } = *dry;
    if !session.history_usable() {
        writeln!(
            out,
            "{}: every segment scanned in full",
            session.describe_journal()
        )?;
    }
    for p in pending {
        writeln!(
            out,
            "unfinished repair {} (will be finished first): {}",
            p.repair, p.action
        )?;
    }
    for e in history {
        writeln!(out, "journal #{:<8} {}", e.seq, e.record)?;
    }
    for p in &the_plan.problems {
        writeln!(out, "problem: {p}")?;
    }
    for a in &the_plan.actions {
        writeln!(out, "would {}", a.action)?;
    }
    for r in resets {
        writeln!(out, "would {r}")?;
    }
    if resets.is_empty() {
        for a in &offsets.ahead {
            writeln!(out, "warning: {a}")?;
        }
    }
    for p in &offsets.judged_after_repair {
        writeln!(
            out,
            "partition {p}: its consumer offsets are judged after its repair, which \
             lays its messages anew"
        )?;
    }
    for r in &the_plan.refusals {
        writeln!(out, "{}", refusal_line(r))?;
    }
    for p in &the_plan.layout_refusals {
        writeln!(out, "the data directory needs an operator: {p}")?;
    }
    if the_plan.actions.is_empty()
        && resets.is_empty()
        && !the_plan.needs_operator()
        && pending.is_empty()
    {
        writeln!(out, "nothing to repair")?;
    } else {
        writeln!(out, "dry run: nothing changed; pass --apply to execute")?;
    }
    Ok(())
}
