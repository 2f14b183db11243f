//! The planner: turns an analysed data directory into an ordered list of repair
//! actions, each with its reason, or refuses when the mode forbids what is needed.
//!
//! Every repair is a cut: find the first damage of a partition, keep every whole valid
//! message before it, and take the rest out (into quarantine). Indexes are rebuilt
//! from the logs they describe. Empty segments left at the end of a partition are
//! taken out too, because iggy-server 0.6.0 resets offsets on an empty newest segment;
//! one segment always stays, because the server panics on a partition without a log.
//!
//! Modes follow RocksDB's WAL recovery modes:
//! - `tolerate-tail` cuts only what a crash can leave at the end of a partition (a
//!   torn, zero-filled or corrupt last message, half a rotation, index damage);
//!   anything else makes the whole run change nothing and ask for an operator.
//! - `point-in-time` cuts each partition at its first damage, wherever it is.
//! - `absolute` repairs nothing and asks for an operator on any problem.
//! - `salvage` keeps every valid message: the tolerate-tail repair where that loses
//!   none, else a re-lay of the partition from its first damaged segment (`salvage`).
//!
//! A refusal says what each mode would keep and names the least invasive one that
//! keeps every valid message.

mod counts;
mod cut;

use crate::analyze::{scan_threads, Analysis, PartitionAnalysis};
use crate::index::{IndexState, ENTRY_LEN};
use crate::parallel::map_ordered;
use crate::rebuild::index_digest;
use crate::salvage::{salvage_partition, SalvageError};
use crate::verdict::{judge_layout, judge_partition, offset_file_name_ok, Problem, ProblemKind};
use cut::{find_cut, kept_by_cut};
use journal::{PartitionId, RepairAction};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub use crate::mode::Mode;
pub use counts::{mode_counts, ModeCounts};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    /// `None` for the state files.
    pub partition: Option<PartitionId>,
    pub action: RepairAction,
    pub reason: String,
}

/// A partition the mode does not allow to repair, with what is wrong with it.
#[derive(Clone, Debug, Serialize)]
pub struct Refusal {
    /// `None` for the state files.
    pub partition: Option<PartitionId>,
    pub why: String,
    pub problems: Vec<Problem>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub mode: Mode,
    pub problems: Vec<Problem>,
    pub actions: Vec<PlannedAction>,
    pub refusals: Vec<Refusal>,
    /// Problems of the layout outside any partition folder (a symbolic link, a file
    /// where a folder belongs): no mode repairs them, and while one is there nothing
    /// is changed.
    pub layout_refusals: Vec<Problem>,
}

impl Plan {
    /// Nothing may be changed: some partition, or the layout, needs an operator.
    pub fn needs_operator(&self) -> bool {
        !self.refusals.is_empty() || !self.layout_refusals.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot plan the repair of {}: {cause}", crate::names::escaped(.path))]
pub struct PlanError {
    pub path: PathBuf,
    pub cause: std::io::Error,
}

pub fn plan(a: &Analysis, mode: Mode) -> Result<Plan, PlanError> {
    let mut out = Plan {
        mode,
        problems: Vec::new(),
        actions: Vec::new(),
        refusals: Vec::new(),
        layout_refusals: judge_layout(a),
    };
    // Damaged partitions are planned one per core: in salvage mode, and for the advice
    // of a refusal, planning reads the partition again.
    let planned = map_ordered(&a.partitions, scan_threads(), |p| plan_one(p, mode))?;
    for (p, planned) in a.partitions.iter().zip(planned) {
        let Some((problems, planned)) = planned else {
            continue;
        };
        match planned {
            PartitionPlan::Repair(actions) => out.actions.extend(actions),
            PartitionPlan::Refuse(why) => out.refusals.push(Refusal {
                partition: Some(p.id),
                why,
                problems: problems.clone(),
            }),
        }
        out.problems.extend(problems);
    }
    let state = crate::state_check::plan_state(&a.state, mode);
    out.problems.extend(state.problems.clone());
    out.actions.extend(
        state
            .actions
            .into_iter()
            .map(|(action, reason)| PlannedAction {
                partition: None,
                action,
                reason,
            }),
    );
    if !state.refusals.is_empty() {
        out.refusals.push(Refusal {
            partition: None,
            why: state.refusals.join("; "),
            problems: state.problems,
        });
    }
    out.problems.extend(out.layout_refusals.iter().cloned());
    Ok(out)
}

/// The problems of partition `p` and what to do with them (a refusal with its
/// advice); `None` when it has none.
fn plan_one(
    p: &PartitionAnalysis,
    mode: Mode,
) -> Result<Option<(Vec<Problem>, PartitionPlan)>, PlanError> {
    let problems = judge_partition(p);
    if problems.is_empty() {
        return Ok(None);
    }
    let planned = match mode {
        Mode::Salvage => plan_salvage(p, &problems)?,
        _ => match plan_partition(p, mode, &problems)? {
            PartitionPlan::Refuse(why) => PartitionPlan::Refuse(with_advice(p, why)?),
            repair => repair,
        },
    };
    Ok(Some((problems, planned)))
}

/// What to do with one damaged partition.
enum PartitionPlan {
    Repair(Vec<PlannedAction>),
    /// The mode forbids the repair, for this reason.
    Refuse(String),
}

/// The actions that repair one partition, or why the mode forbids them.
fn plan_partition(
    p: &PartitionAnalysis,
    mode: Mode,
    problems: &[Problem],
) -> Result<PartitionPlan, PlanError> {
    if mode == Mode::Absolute {
        return Ok(PartitionPlan::Refuse(
            "mode absolute repairs nothing".into(),
        ));
    }
    if problems.iter().any(|p| p.kind == ProblemKind::StrayLog) {
        return Ok(PartitionPlan::Refuse(
            "a stray .log file in the partition folder would crash iggy-server; move it \
             out, then run again"
                .into(),
        ));
    }
    if problems
        .iter()
        .any(|p| matches!(p.kind, ProblemKind::Symlink | ProblemKind::NotAFolder))
    {
        return Ok(PartitionPlan::Refuse(
            "the partition folder holds a symbolic link or a file where a folder belongs; \
             iggy-warden changes nothing through a link: put the real file or folder in \
             its place, then run again"
                .into(),
        ));
    }
    if let Some(f) = p.offset_files.iter().find(|f| !offset_file_name_ok(f)) {
        return Ok(PartitionPlan::Refuse(format!(
            "{} is not named by a number and would crash iggy-server; move it out, then \
             run again",
            f.path.display()
        )));
    }
    let cut = find_cut(p);
    if let Some(c) = cut {
        if mode == Mode::TolerateTail && !c.tail_only {
            return Ok(PartitionPlan::Refuse(format!(
                "damage before the end of the partition: cutting there would take out \
                 intact data after it ({})",
                problems
                    .iter()
                    .map(|p| p.kind.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    // Log bytes each segment keeps; `None` for a segment that goes entirely.
    let kept: Vec<Option<u64>> = p
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| match cut {
            Some(c) if i > c.seg => None,
            Some(c) if i == c.seg => s.files.log_len.map(|_| c.keep_len),
            _ => s.files.log_len,
        })
        .collect();
    // Keep through the last segment with data; with no data left, keep the first
    // segment (empty), since the server needs one log per partition.
    let last = match kept.iter().rposition(|k| k.unwrap_or(0) > 0) {
        Some(last) => last,
        None if kept.first().is_some_and(Option::is_some) => 0,
        None => {
            return Ok(PartitionPlan::Refuse(
                "no segment with a log would remain, and iggy-server 0.6.0 panics on a \
                 partition without one"
                    .into(),
            ))
        }
    };
    let reason = problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let mut actions = Vec::new();
    let mut push = |action| {
        actions.push(PlannedAction {
            partition: Some(p.id),
            action,
            reason: reason.clone(),
        })
    };
    // Newest first: whatever point a crash stops at, a fresh plan continues the cut.
    for seg in p.segments.iter().skip(last + 1).rev() {
        for (path, len) in [
            (&seg.files.index_path, seg.files.index_len),
            (&seg.files.log_path, seg.files.log_len),
        ] {
            if let Some(len) = len {
                push(RepairAction::QuarantineFile {
                    path: rel(&p.dir, path, &seg.files.key.partition.rel_dir()),
                    len,
                });
            }
        }
    }
    // A kept segment keeps exactly its valid messages (the cut falls where validity
    // ends), so its index state says all about what the index needs.
    for (seg, keep) in p.segments.iter().zip(&kept).take(last + 1) {
        let (Some(keep_len), Some(log_len)) = (*keep, seg.files.log_len) else {
            continue;
        };
        if keep_len < log_len {
            push(RepairAction::TruncateLog {
                segment: seg.key(),
                keep_len,
                original_len: log_len,
            });
        }
        let messages = seg.valid_messages();
        let index_only_too_long = match seg.index {
            IndexState::Long { .. } => true,
            IndexState::HalfEntry { len } => len / ENTRY_LEN as u64 == messages,
            _ => false,
        };
        if let (true, Some(index_len)) = (index_only_too_long, seg.files.index_len) {
            push(RepairAction::TruncateIndex {
                segment: seg.key(),
                keep_len: messages.saturating_mul(ENTRY_LEN as u64),
                original_len: index_len,
            });
        } else if seg.index != IndexState::Consistent {
            let digest = index_digest(&seg.files.log_path, seg.key().start_offset, keep_len)
                .map_err(|cause| PlanError {
                    path: seg.files.log_path.clone(),
                    cause,
                })?;
            push(RepairAction::RewriteIndex {
                segment: seg.key(),
                original_len: seg.files.index_len,
                new_len: digest.len,
                new_xxh3: digest.xxh3,
            });
        }
    }
    for action in offset_repairs(p) {
        push(action);
    }
    Ok(PartitionPlan::Repair(actions))
}

/// The repairs of a partition's offsets folders: create the missing ones, take out
/// offset files too short for the server to read.
fn offset_repairs(p: &PartitionAnalysis) -> Vec<RepairAction> {
    let dirs = p
        .missing_offset_dirs
        .iter()
        .map(|dir| RepairAction::CreateDir {
            path: rel(&p.dir, dir, &p.id.rel_dir()),
        });
    let files = p
        .offset_files
        .iter()
        .filter(|f| f.len < 8 && offset_file_name_ok(f))
        .map(|f| RepairAction::QuarantineFile {
            path: rel(&p.dir, &f.path, &p.id.rel_dir()),
            len: f.len,
        });
    dirs.chain(files).collect()
}

/// `path` relative to the data directory, given the partition folder `dir` and its
/// relative form `dir_rel`.
fn rel(dir: &Path, path: &Path, dir_rel: &str) -> String {
    match path.strip_prefix(dir) {
        Ok(tail) => format!("{dir_rel}/{}", tail.to_string_lossy()),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}

pub(crate) fn salvage_error(e: SalvageError) -> PlanError {
    PlanError {
        path: e.path,
        cause: e.cause,
    }
}

/// A refusal's reason, with what each mode would keep.
fn with_advice(p: &PartitionAnalysis, why: String) -> Result<String, PlanError> {
    if !p.stray_logs.is_empty() || !p.anomalies.is_empty() {
        return Ok(why);
    }
    let salvage = salvage_partition(p).map_err(salvage_error)?;
    Ok(format!("{why}; {}", mode_counts(p, salvage.as_ref())))
}

/// Salvage: the tolerate-tail repair when it keeps every valid message, else a
/// re-lay of the partition from its first damaged segment.
fn plan_salvage(p: &PartitionAnalysis, problems: &[Problem]) -> Result<PartitionPlan, PlanError> {
    let tail = plan_partition(p, Mode::TolerateTail, problems)?;
    if !p.stray_logs.is_empty()
        || !p.anomalies.is_empty()
        || !p.offset_files.iter().all(offset_file_name_ok)
    {
        return Ok(tail);
    }
    let Some(salvage) = salvage_partition(p).map_err(salvage_error)? else {
        return Ok(tail);
    };
    if let PartitionPlan::Repair(_) = tail {
        if kept_by_cut(p, find_cut(p)) >= salvage.kept_messages {
            return Ok(tail);
        }
    }
    let mut reason = problems
        .iter()
        .map(|p| p.to_string())
        .chain(salvage.signatures.iter().map(|p| p.to_string()))
        .collect::<Vec<_>>()
        .join("; ");
    reason.push_str(&format!(
        "; salvage keeps all {} valid messages ({} second copies of an offset stay in quarantine)",
        salvage.kept_messages,
        salvage.dropped.len()
    ));
    let mut actions = vec![PlannedAction {
        partition: Some(p.id),
        action: salvage.action,
        reason: reason.clone(),
    }];
    actions.extend(offset_repairs(p).into_iter().map(|action| PlannedAction {
        partition: Some(p.id),
        action,
        reason: reason.clone(),
    }));
    Ok(PartitionPlan::Repair(actions))
}

#[cfg(test)]
mod tests;
