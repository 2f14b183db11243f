//! The repair pipeline behind `recover` and `replay --apply`: finish unfinished
//! repairs, then layout → analysis (journal-guided) → plan → execute → verify.

use crate::session::Session;
use anyhow::Context;
use journal::PartitionId;
use recovery::analyze::{analyze_partition, Analysis};
use recovery::execute::{Executed, Executor};
use recovery::fsops::StdFs;
use recovery::guided::{analyze_guided, GuidedStats};
use recovery::layout::{discover, DataDir};
use recovery::plan::{plan, Mode, Plan};
use recovery::quarantine::Quarantine;
use recovery::verdict::{judge_partition, Problem};
use serde::Serialize;
use std::collections::BTreeSet;

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

/// Layout and analysis of the data directory, limited by `filter`.
pub fn analyze(
    session: &Session,
    filter: &PartitionFilter,
) -> anyhow::Result<(DataDir, Analysis, GuidedStats)> {
    let mut layout = discover(&session.dirs.data_dir).context("cannot read the data directory")?;
    layout.partitions.retain(|p| filter.matches(&p.id));
    let known = session.known_segments();
    let progress = crate::progress::Progress::bytes(layout.log_bytes(), "scanning");
    let (analysis, stats) = analyze_guided(&layout, &known, &|n| progress.advance(n))
        .context("cannot read the data directory")?;
    progress.finish();
    Ok((layout, analysis, stats))
}

#[derive(Debug, Serialize)]
pub struct PartitionOutcome {
    pub partition: PartitionId,
    pub messages_kept: u64,
}

#[derive(Debug, Serialize)]
pub struct RepairOutcome {
    pub mode: Mode,
    pub guided: GuidedStats,
    pub journal_history_used: bool,
    pub replayed: Vec<Executed>,
    pub actions: Vec<Executed>,
    pub bytes_quarantined: u64,
    pub partitions: Vec<PartitionOutcome>,
    /// Problems left after the run: empty unless the mode refused.
    pub problems: Vec<Problem>,
    pub refusals: Vec<recovery::plan::Refusal>,
    pub ready_to_start: bool,
}

/// Runs the whole pipeline. `Ok` with refusals when the mode forbids the repair; then
/// nothing was changed (beyond finishing repairs journaled earlier).
pub fn repair(
    session: &Session,
    mode: Mode,
    filter: &PartitionFilter,
) -> anyhow::Result<RepairOutcome> {
    let quarantine = Quarantine::new(&session.dirs.state_dir);
    let exec = Executor {
        data_dir: &session.dirs.data_dir,
        quarantine: &quarantine,
        fs: &StdFs,
        log: &session.journal,
    };
    let replayed = exec
        .replay_pending()
        .context("cannot finish the repairs an earlier run journaled")?;
    let (layout, analysis, guided) = analyze(session, filter)?;
    let the_plan: Plan = plan(&analysis, mode)?;
    if the_plan.needs_operator() {
        return Ok(RepairOutcome {
            mode,
            guided,
            journal_history_used: session.history_usable,
            bytes_quarantined: 0,
            partitions: kept(&analysis),
            problems: the_plan.problems,
            refusals: the_plan.refusals,
            replayed,
            actions: Vec::new(),
            ready_to_start: false,
        });
    }
    let touched: BTreeSet<PartitionId> = the_plan.actions.iter().map(|a| a.partition).collect();
    let actions = exec
        .execute(
            the_plan
                .actions
                .into_iter()
                .map(|a| (a.action, a.reason))
                .collect(),
        )
        .context("repair failed; rerun recover to finish it")?;
    // Trust nothing: re-read every partition we changed and require it healthy.
    let mut partitions = kept(&analysis);
    let mut problems = Vec::new();
    let relisted = discover(&session.dirs.data_dir).context("cannot re-read the data directory")?;
    for p in relisted
        .partitions
        .iter()
        .filter(|p| touched.contains(&p.id))
    {
        let after = analyze_partition(p, &|_| {}).context("cannot verify the repair")?;
        problems.extend(judge_partition(&after));
        if let Some(entry) = partitions.iter_mut().find(|o| o.partition == p.id) {
            entry.messages_kept = after.valid_messages();
        }
    }
    drop(layout);
    if !problems.is_empty() {
        anyhow::bail!(
            "repairs ran but the directory is still not consistent: {}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(RepairOutcome {
        mode,
        guided,
        journal_history_used: session.history_usable,
        bytes_quarantined: actions
            .iter()
            .chain(&replayed)
            .map(|a| a.quarantined_bytes)
            .sum(),
        replayed,
        actions,
        partitions,
        problems,
        refusals: Vec::new(),
        ready_to_start: true,
    })
}

fn kept(a: &Analysis) -> Vec<PartitionOutcome> {
    a.partitions
        .iter()
        .map(|p| PartitionOutcome {
            partition: p.id,
            messages_kept: p.valid_messages(),
        })
        .collect()
}

pub fn print_outcome(o: &RepairOutcome) {
    println!(
        "mode {}; journal {}: {} segments trusted, {} resumed from a checkpoint, {} scanned ({} bytes)",
        o.mode,
        if o.journal_history_used { "used" } else { "unusable, full scan" },
        o.guided.trusted,
        o.guided.resumed,
        o.guided.scanned,
        o.guided.bytes_scanned
    );
    for e in &o.replayed {
        println!(
            "finished {}: {} ({} bytes quarantined)",
            e.repair, e.action, e.quarantined_bytes
        );
    }
    for e in &o.actions {
        println!(
            "{}: {} ({} bytes quarantined)",
            e.repair, e.action, e.quarantined_bytes
        );
    }
    for r in &o.refusals {
        println!("partition {} needs an operator: {}", r.partition, r.why);
        for p in &r.problems {
            println!("  {p}");
        }
    }
    for p in &o.partitions {
        println!(
            "partition {}: {} messages kept",
            p.partition, p.messages_kept
        );
    }
    if o.ready_to_start {
        println!(
            "{} repairs, {} bytes quarantined: ready to start",
            o.actions.len() + o.replayed.len(),
            o.bytes_quarantined
        );
    } else {
        println!("nothing changed: an operator must decide (see above)");
    }
}
