//! The whole repair, as `recover` and `replay --apply` run it: finish repairs an
//! earlier run journaled, then layout → analysis (journal-guided) → plan → execute →
//! verify. Kept here, not in the binary, so tests drive exactly what ships.

use crate::analyze::AnalyzeError;
use crate::analyze::{Analysis, PartitionAnalysis};
use crate::execute::{ExecError, Executed, Executor};
use crate::guided::{analyze_guided, GuidedStats};
use crate::layout::{discover, discover_guided, LayoutError, OffsetsGuide};
use crate::offsets_ahead::{offsets_ahead, OffsetAhead};
use crate::plan::{plan, Mode, PlanError, Refusal};
use crate::state_log::Trusted;
use crate::verdict::{judge_partition, Problem};
use journal::{OffsetsListing, PartitionId, SegmentKey, SegmentState};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot finish the repairs an earlier run journaled: {0}")]
    Replay(ExecError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Analyze(#[from] AnalyzeError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Space(#[from] crate::space::SpaceError),
    /// Says "rerun to finish it" only when a rerun can (see [`ExecError::is_transient`]).
    #[error("{}", execute_failed(.0))]
    Execute(ExecError),
    #[error("repairs ran but the directory is still not consistent: {0}")]
    NotConverged(String),
}

fn execute_failed(e: &ExecError) -> String {
    if e.is_transient() {
        format!("repair failed (rerun to finish it): {e}")
    } else {
        format!("repair failed: {e}")
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PartitionOutcome {
    pub partition: PartitionId,
    pub messages_kept: u64,
    /// Valid messages (each segment's valid prefix) the repair moved out of the
    /// partition, into quarantine: those it held before minus those it keeps, when
    /// positive.
    pub messages_lost: u64,
}

#[derive(Debug, Serialize)]
pub struct RepairOutcome {
    pub mode: Mode,
    pub guided: GuidedStats,
    pub replayed: Vec<Executed>,
    pub actions: Vec<Executed>,
    pub bytes_quarantined: u64,
    pub partitions: Vec<PartitionOutcome>,
    /// The problems found; when `refusals` is not empty, still there.
    pub problems: Vec<Problem>,
    pub refusals: Vec<Refusal>,
    /// Problems of the layout outside any partition folder that need an operator.
    pub layout_refusals: Vec<Problem>,
    pub ready_to_start: bool,
    /// Stored consumer offsets past their partition's end, as the run leaves the
    /// partitions: not damage, but their consumers will skip messages.
    pub offsets_ahead: Vec<OffsetAhead>,
    /// Set when the data directory holds nothing yet (a first start): why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nothing_to_check: Option<String>,
}

impl RepairOutcome {
    /// The outcome on a data directory iggy-server has not written yet
    /// ([`crate::layout::Root::Fresh`]): nothing done, ready to start.
    pub fn nothing_to_check(mode: Mode, why: String) -> Self {
        Self {
            mode,
            guided: GuidedStats::default(),
            replayed: Vec::new(),
            actions: Vec::new(),
            bytes_quarantined: 0,
            partitions: Vec::new(),
            problems: Vec::new(),
            refusals: Vec::new(),
            layout_refusals: Vec::new(),
            ready_to_start: true,
            offsets_ahead: Vec::new(),
            nothing_to_check: Some(why),
        }
    }
}

pub struct Request<'a> {
    pub mode: Mode,
    /// What the journal knows of segments (empty: scan everything).
    pub known: &'a HashMap<SegmentKey, SegmentState>,
    /// How far the journal says `state/log` was verified (`None`: verify it whole).
    pub state_log: Option<Trusted>,
    /// What the journal's listings say of the offsets folders (`journal::listing`);
    /// `None`: read every one, and journal no listing.
    pub offsets: Option<OffsetsGuide<'a>>,
    /// Which partitions to look at.
    pub only: &'a (dyn Fn(&PartitionId) -> bool + Sync),
    pub progress: &'a dyn Progress,
}

/// Told the log bytes the analysis will read, then the bytes read as it goes.
pub trait Progress: Sync {
    fn start(&self, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
}

/// No progress reporting.
pub struct Quiet;

impl Progress for Quiet {}

/// Runs the repair. With refusals nothing was changed (beyond finishing repairs
/// journaled earlier), and `ready_to_start` is false.
pub fn run(exec: &Executor<'_>, req: &Request<'_>) -> Result<RepairOutcome, PipelineError> {
    let replayed = exec.replay_pending().map_err(PipelineError::Replay)?;
    let (analysis, guided) = analyze(
        exec.data_dir,
        req.known,
        req.state_log,
        req.offsets,
        req.only,
        req.progress,
    )?;
    let the_plan = plan(&analysis, req.mode)?;
    let mut outcome = RepairOutcome {
        mode: req.mode,
        guided,
        bytes_quarantined: replayed.iter().map(|a| a.quarantined_bytes).sum(),
        replayed,
        actions: Vec::new(),
        partitions: kept(&analysis),
        problems: the_plan.problems.clone(),
        refusals: the_plan.refusals.clone(),
        layout_refusals: the_plan.layout_refusals.clone(),
        ready_to_start: false,
        offsets_ahead: Vec::new(),
        nothing_to_check: None,
    };
    if the_plan.needs_operator() {
        // Nothing changes: the partitions as they are.
        outcome.offsets_ahead = all_ahead(&analysis.partitions);
        return Ok(outcome);
    }
    let planned: Vec<_> = the_plan.actions.iter().map(|a| &a.action).collect();
    crate::space::check_space(exec.data_dir, exec.quarantine.dir(), &planned)?;
    let touched: BTreeSet<PartitionId> = the_plan
        .actions
        .iter()
        .filter_map(|a| a.partition)
        .collect();
    let state_touched = the_plan.actions.iter().any(|a| a.partition.is_none());
    let rewritten = crate::after_repair::rewritten(&the_plan.actions);
    let only_cut = crate::after_repair::only_cut(&the_plan.actions);
    let actions = the_plan
        .actions
        .into_iter()
        .map(|a| (a.action, a.reason))
        .collect();
    // Re-read every partition that changed and require it healthy: in full where a
    // file was rewritten, from the end of the kept messages where tails were only
    // cut (see `after_repair`). In parallel, as the first analysis was, and while
    // the changes are written back: reading them needs no disk.
    let check = || -> Result<_, PipelineError> {
        exec.fs.step("check after repair");
        let mut left = Vec::new();
        // The state files are read again when a repair changed them, or to journal
        // the new length of a shorter `state/log` accepted below.
        let mut after = if state_touched || analysis.state.shrunk_from.is_some() {
            discover(exec.data_dir)?
        } else {
            let cut = crate::after_repair::layouts_after_cuts(&analysis, &only_cut)?;
            let known: BTreeSet<PartitionId> = cut.iter().map(|p| p.id).collect();
            let mut after =
                crate::layout::discover_partitions(exec.data_dir, &(&touched - &known))?;
            after.partitions.extend(cut);
            after.partitions.sort_by_key(|p| p.id);
            after
        };
        if state_touched {
            left.extend(crate::state_check::judge_state(&after.state));
        }
        after.partitions.retain(|p| touched.contains(&p.id));
        let resume = crate::after_repair::resume_points(&analysis, &touched, &rewritten);
        let (checked, _) = analyze_guided(&after, &resume, &|_| {})?;
        left.extend(checked.partitions.iter().flat_map(judge_partition));
        Ok((after, checked, left))
    };
    let (executed, checked) = exec
        .execute_alongside(actions, check)
        .map_err(PipelineError::Execute)?;
    let (after, checked, left) = checked?;
    outcome.actions = executed;
    outcome.bytes_quarantined += outcome
        .actions
        .iter()
        .map(|a| a.quarantined_bytes)
        .sum::<u64>();
    let kept_after: std::collections::HashMap<PartitionId, u64> = checked
        .partitions
        .iter()
        .map(|p| (p.id, p.valid_messages()))
        .collect();
    for o in &mut outcome.partitions {
        if let Some(&kept) = kept_after.get(&o.partition) {
            o.messages_lost = o.messages_kept.saturating_sub(kept);
            o.messages_kept = kept;
        }
    }
    // The partitions as the repair left them: those it touched as checked after it.
    let checked_ids: BTreeSet<PartitionId> = checked.partitions.iter().map(|p| p.id).collect();
    outcome.offsets_ahead = all_ahead(
        (analysis.partitions.iter())
            .filter(|p| !checked_ids.contains(&p.id))
            .chain(&checked.partitions),
    );
    if !left.is_empty() {
        let list = left.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        return Err(PipelineError::NotConverged(list.join("; ")));
    }
    if analysis.state.shrunk_from.is_some() {
        // Accepted (point-in-time): the shorter log, verified whole, is the new mark.
        remark_state_log(exec, &after.state)?;
    }
    record_listings(exec, req, &analysis, &touched);
    outcome.ready_to_start = true;
    Ok(outcome)
}

/// [`offsets_ahead`] of every partition, in partition order.
fn all_ahead<'a>(partitions: impl IntoIterator<Item = &'a PartitionAnalysis>) -> Vec<OffsetAhead> {
    let mut all: Vec<OffsetAhead> = partitions.into_iter().flat_map(offsets_ahead).collect();
    all.sort_by(|a, b| (a.partition, &a.path).cmp(&(b.partition, &b.path)));
    all
}

/// Journals the offsets listings that changed ([`listing_changes`]). A listing is a
/// hint: failing to journal it is logged, and the run's outcome stands.
fn record_listings(
    exec: &Executor<'_>,
    req: &Request<'_>,
    analysis: &Analysis,
    touched: &BTreeSet<PartitionId>,
) {
    let Some(known) = req.offsets.map(|o| o.known) else {
        return;
    };
    let (fresh, gone) = listing_changes(known, analysis, touched, req.only);
    if fresh.is_empty() && gone.is_empty() {
        return;
    }
    if let Err(e) = exec.log.record_offsets_listings(&fresh, &gone) {
        tracing::warn!(
            "cannot journal the offsets folders' listings ({e}): the next run reads them"
        );
    }
}

/// What to journal of the offsets folders (`journal::listing`) after a run that
/// converged, for the next guided run to take instead of reading them: the settled
/// listings of the partitions no repair `touched` (a repair may have changed their
/// folders) that differ from the `known` ones; and the partitions to forget, those
/// `only` selects that are no longer there.
fn listing_changes(
    known: &HashMap<PartitionId, OffsetsListing>,
    analysis: &Analysis,
    touched: &BTreeSet<PartitionId>,
    only: &(dyn Fn(&PartitionId) -> bool + Sync),
) -> (Vec<(PartitionId, OffsetsListing)>, Vec<PartitionId>) {
    let fresh = analysis
        .partitions
        .iter()
        .filter(|p| !touched.contains(&p.id))
        .filter_map(|p| Some((p.id, p.offsets_listing.clone()?)))
        .filter(|(id, listing)| known.get(id) != Some(listing))
        .collect();
    let present: BTreeSet<PartitionId> = analysis.partitions.iter().map(|p| p.id).collect();
    let mut gone: Vec<PartitionId> = known
        .keys()
        .filter(|id| only(id) && !present.contains(id))
        .copied()
        .collect();
    gone.sort();
    (fresh, gone)
}

/// Journals the verified length of a `state/log` checked whole, so that a guided run
/// no longer finds it shorter than the journal's mark.
fn remark_state_log(
    exec: &Executor<'_>,
    state: &crate::state_inspect::StateInspection,
) -> Result<(), PipelineError> {
    let Some(log) = state
        .log
        .as_ref()
        .filter(|l| !l.encrypted && l.damage.is_none())
    else {
        return Ok(());
    };
    let Some(last) = log.entries.last() else {
        return Ok(());
    };
    exec.log
        .record_state_log_verified(log.len, last.index, last.checksum)
        .map_err(|e| PipelineError::Execute(crate::execute::ExecError::Journal(e)))
}

/// Layout and journal-guided analysis of the partitions `only` selects: what `run`
/// plans from, and what a dry run shows.
pub fn analyze(
    data_dir: &Path,
    known: &HashMap<SegmentKey, SegmentState>,
    state_log: Option<Trusted>,
    offsets: Option<OffsetsGuide<'_>>,
    only: &(dyn Fn(&PartitionId) -> bool + Sync),
    progress: &dyn Progress,
) -> Result<(Analysis, GuidedStats), PipelineError> {
    let advise = |p: &crate::layout::PartitionLayout| {
        if only(&p.id) {
            crate::readahead::advise(p, known);
        }
    };
    let mut layout = discover_guided(data_dir, state_log, offsets, &advise)?;
    layout.partitions.retain(|p| only(&p.id));
    progress.start(layout.log_bytes());
    let (analysis, mut stats) = analyze_guided(&layout, known, &|n| progress.advance(n))?;
    if let Some(offsets) = offsets {
        stats.offsets_listings_used = layout
            .partitions
            .iter()
            .filter(|p| p.offsets_listing.is_some())
            .filter(|p| offsets.known.get(&p.id) == p.offsets_listing.as_ref())
            .count();
    }
    Ok((analysis, stats))
}

fn kept(a: &Analysis) -> Vec<PartitionOutcome> {
    a.partitions
        .iter()
        .map(|p| PartitionOutcome {
            partition: p.id,
            messages_kept: p.valid_messages(),
            messages_lost: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quarantine::QuarantineError;
    use std::io;
    use std::path::PathBuf;

    fn io(kind: io::ErrorKind) -> ExecError {
        ExecError::Io {
            path: PathBuf::from("/d/x.log"),
            cause: io::Error::from(kind),
        }
    }

    fn listed(p: u32, files: &[&str]) -> (PartitionId, OffsetsListing) {
        let stamp = journal::FileStamp {
            ino: u64::from(p),
            len: 4096,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 0,
            ctime_sec: 1_700_000_000,
            ctime_nsec: 0,
        };
        let listing = OffsetsListing {
            offsets: stamp,
            consumers: stamp,
            groups: stamp,
            consumer_files: files.iter().map(|f| f.to_string()).collect(),
            group_files: Vec::new(),
        };
        (PartitionId::new(0, 0, p), listing)
    }

    fn analysed(p: u32, listing: Option<OffsetsListing>) -> crate::analyze::PartitionAnalysis {
        let id = PartitionId::new(0, 0, p);
        let layout = crate::layout::PartitionLayout {
            id,
            dir: PathBuf::from(id.rel_dir()),
            segments: Vec::new(),
            offset_files: Vec::new(),
            stray_logs: Vec::new(),
            missing_offset_dirs: Vec::new(),
            anomalies: Vec::new(),
            offsets_listing: listing,
        };
        crate::analyze::PartitionAnalysis::new(&layout, Vec::new())
    }

    #[test]
    fn new_listings_of_untouched_partitions_are_journaled_and_those_of_gone_ones_forgotten() {
        let known = HashMap::from([
            listed(1, &["7"]),
            listed(2, &[]),
            listed(3, &[]),
            listed(9, &[]),
        ]);
        let mut analysis = crate::test_support::TestDir::new(&[]).analysis();
        analysis.partitions = vec![
            analysed(1, Some(listed(1, &["7", "8"]).1)), // a new consumer: journaled
            analysed(2, Some(listed(2, &[]).1)),         // unchanged: not again
            analysed(4, Some(listed(4, &[]).1)),         // repaired: not journaled
            analysed(5, None),                           // not settled: nothing
            analysed(6, Some(listed(6, &["1"]).1)),      // new: journaled
        ];
        let touched = BTreeSet::from([PartitionId::new(0, 0, 4)]);
        // Partition 3 is gone; 9 is not selected, so nothing is said of it.
        let only = |p: &PartitionId| p.partition != 9;
        let (fresh, gone) = listing_changes(&known, &analysis, &touched, &only);
        assert_eq!(fresh, [listed(1, &["7", "8"]), listed(6, &["1"])]);
        assert_eq!(gone, [PartitionId::new(0, 0, 3)]);
    }

    #[test]
    fn rerun_is_suggested_only_where_a_rerun_can_finish() {
        let says_rerun = |e: ExecError| PipelineError::Execute(e).to_string().contains("rerun");
        assert!(says_rerun(io(io::ErrorKind::StorageFull)));
        assert!(says_rerun(io(io::ErrorKind::Interrupted)));
        assert!(says_rerun(ExecError::Journal(journal::JournalError::Io {
            path: PathBuf::from("/s/journal"),
            cause: io::Error::other("flush failed"),
        })));
        assert!(!says_rerun(ExecError::Refused {
            repair: journal::RepairId(4),
            why: "names a path outside the data directory (../x); refusing it".into(),
        }));
        assert!(!says_rerun(ExecError::NotInQuarantine {
            repair: journal::RepairId(4),
            dir: PathBuf::from("/s/quarantine/r00000004"),
        }));
        assert!(!says_rerun(io(io::ErrorKind::PermissionDenied)));
        assert!(!says_rerun(io(io::ErrorKind::ReadOnlyFilesystem)));
        assert!(!says_rerun(ExecError::Changed {
            repair: journal::RepairId(3),
            path: PathBuf::from("/d/x.log"),
            expected: "10 bytes".into(),
            found: "12 bytes".into(),
        }));
        assert!(!says_rerun(ExecError::Quarantine(
            QuarantineError::IdTaken {
                path: PathBuf::from("/s/quarantine/r3"),
                found: "r3 of another run".into(),
                wanted: "r3".into(),
            }
        )));
        let text = PipelineError::Execute(io(io::ErrorKind::PermissionDenied)).to_string();
        assert_eq!(text.matches("ermission denied").count(), 1, "{text}");
    }
}
