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

use crate::analyze::{Analysis, PartitionAnalysis, SegmentAnalysis};
use crate::index::{IndexState, ENTRY_LEN};
use crate::rebuild::index_digest;
use crate::salvage::{salvage_partition, Salvage, SalvageError};
use crate::scan::StopReason;
use crate::verdict::{judge_layout, judge_partition, offset_file_name_ok, Problem, ProblemKind};
use journal::{PartitionId, RepairAction};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::mode::Mode;

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
    for p in &a.partitions {
        let problems = judge_partition(p);
        if problems.is_empty() {
            continue;
        }
        let planned = match mode {
            Mode::Salvage => plan_salvage(p, &problems)?,
            _ => plan_partition(p, mode, &problems)?,
        };
        match planned {
            PartitionPlan::Repair(actions) => out.actions.extend(actions),
            PartitionPlan::Refuse(why) => {
                let why = match mode {
                    Mode::Salvage => why,
                    _ => with_advice(p, why)?,
                };
                out.refusals.push(Refusal {
                    partition: Some(p.id),
                    why,
                    problems: problems.clone(),
                })
            }
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

/// Where a partition is cut: segment `seg` keeps its first `keep_len` log bytes (none
/// when its log is missing) and every later segment goes.
#[derive(Clone, Copy, Debug)]
struct Cut {
    seg: usize,
    keep_len: u64,
    /// Whether the cut loses nothing but what a crash leaves at the end of a partition.
    tail_only: bool,
}

fn find_cut(p: &PartitionAnalysis) -> Option<Cut> {
    let later_hold_data = |i: usize| p.segments.iter().skip(i + 1).any(SegmentAnalysis::has_data);
    for (i, seg) in p.segments.iter().enumerate() {
        let Some(scan) = seg.scan else {
            return Some(Cut {
                seg: i,
                keep_len: 0,
                tail_only: !later_hold_data(i),
            });
        };
        if let Some(prev) = i.checked_sub(1).and_then(|j| p.segments.get(j)) {
            if seg.overlaps(prev) {
                return Some(Cut {
                    seg: i - 1,
                    keep_len: prev.files.log_len.unwrap_or(0),
                    tail_only: !seg.has_data() && !later_hold_data(i),
                });
            }
        }
        if scan.stop != StopReason::EndOfFile {
            return Some(Cut {
                seg: i,
                keep_len: scan.valid_len,
                tail_only: scan.stop.is_tail_only() && !later_hold_data(i),
            });
        }
    }
    None
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

/// How many valid messages each mode would leave in one damaged partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ModeCounts {
    pub partition: PartitionId,
    /// Salvage keeps every message whose checksum is valid (one copy per offset).
    pub salvage: u64,
    pub point_in_time: u64,
    /// `None` when tolerate-tail refuses: it then changes nothing and the server
    /// does not start.
    pub tolerate_tail: Option<u64>,
}

impl ModeCounts {
    /// The least invasive mode that keeps every valid message.
    pub fn least_invasive(&self) -> Mode {
        if self.tolerate_tail == Some(self.salvage) {
            Mode::TolerateTail
        } else if self.point_in_time >= self.salvage {
            Mode::PointInTime
        } else {
            Mode::Salvage
        }
    }
}

impl fmt::Display for ModeCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self
            .tolerate_tail
            .map_or("refuses".to_string(), |n| n.to_string());
        write!(
            f,
            "valid messages kept by each mode: salvage {}, point-in-time {}, tolerate-tail \
             {tail}; run with --mode {} to keep every valid message",
            self.salvage,
            self.point_in_time,
            self.least_invasive()
        )
    }
}

/// Messages the partition keeps when cut at `cut` (every segment's valid prefix up
/// to the cut; the cut segment keeps its valid prefix).
fn kept_by_cut(p: &PartitionAnalysis, cut: Option<Cut>) -> u64 {
    p.segments
        .iter()
        .enumerate()
        .map(|(i, s)| match cut {
            Some(c) if i > c.seg => 0,
            _ => s.valid_messages(),
        })
        .sum()
}

pub(crate) fn salvage_error(e: SalvageError) -> PlanError {
    PlanError {
        path: e.path,
        cause: e.cause,
    }
}

/// What each mode would keep of `p`, given its salvage plan (`None`: nothing to
/// salvage, every valid message is in a sound segment).
pub fn mode_counts(p: &PartitionAnalysis, salvage: Option<&Salvage>) -> ModeCounts {
    let cut = find_cut(p);
    let point_in_time = kept_by_cut(p, cut);
    ModeCounts {
        partition: p.id,
        salvage: salvage.map_or(p.valid_messages(), |s| s.kept_messages),
        point_in_time,
        tolerate_tail: match cut {
            Some(c) if !c.tail_only => None,
            _ => Some(point_in_time),
        },
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
mod tests {
    use super::*;
    use crate::test_support::{entry, message, Segment, TestDir, ENTRY, HEADER};
    use journal::SegmentFile::{Index, Log};
    use xxhash_rust::xxh3::xxh3_64;

    /// A change that damages a test segment.
    type Damage = fn(&mut Segment);

    const REPAIRING: [Mode; 3] = [Mode::TolerateTail, Mode::PointInTime, Mode::Salvage];

    /// `count` messages from offset 0 with `damage` applied to the segment, and the
    /// bytes its log had before.
    fn damaged(count: u64, damage: impl FnOnce(&mut Segment)) -> (TestDir, u64) {
        let mut seg = Segment::whole(0, count);
        let whole = seg.log_len();
        damage(&mut seg);
        (TestDir::new(&[seg]), whole)
    }

    /// The index rebuild of segment `start`, whose valid messages are `count` from
    /// `start`: the digest is that of the entries the server writes for them.
    fn rewrite(dir: &TestDir, start: u64, count: u64, original_len: Option<u64>) -> RepairAction {
        let index = Segment::whole(start, count).index.unwrap_or_default();
        RepairAction::RewriteIndex {
            segment: dir.key(start),
            original_len,
            new_len: index.len() as u64,
            new_xxh3: xxh3_64(&index),
        }
    }

    #[test]
    fn a_clean_partition_plans_nothing_in_any_mode() {
        let dir = TestDir::new(&[Segment::whole(0, 4), Segment::whole(4, 3)]);
        for mode in REPAIRING.into_iter().chain([Mode::Absolute]) {
            let plan = dir.plan(mode);
            assert!(plan.problems.is_empty(), "{mode}: {:?}", plan.problems);
            assert!(plan.actions.is_empty(), "{mode}: {:?}", plan.actions);
            assert!(!plan.needs_operator(), "{mode}");
        }
    }

    #[test]
    fn a_torn_tail_is_cut_after_the_last_whole_message() {
        let (dir, whole) = damaged(3, |s| {
            s.log_mut().extend(&message(3, b"torn")[..HEADER + 2])
        });
        let cut = RepairAction::TruncateLog {
            segment: dir.key(0),
            keep_len: whole,
            original_len: whole + HEADER as u64 + 2,
        };
        // Salvage finds nothing more to keep, so it makes the tolerate-tail cut.
        for mode in REPAIRING {
            assert_eq!(dir.actions(mode), std::slice::from_ref(&cut), "{mode}");
        }
        assert_eq!(
            dir.refusal(Mode::Absolute),
            "mode absolute repairs nothing; valid messages kept by each mode: salvage 3, \
             point-in-time 3, tolerate-tail 3; run with --mode tolerate-tail to keep every \
             valid message"
        );
    }

    #[test]
    fn a_torn_tail_the_index_already_counted_also_cuts_the_index() {
        let (dir, whole) = damaged(3, |s| {
            s.log_mut().extend(&message(3, b"torn")[..20]);
            s.index_mut().extend(entry(3, 9_999, 1_003));
        });
        assert_eq!(
            dir.actions(Mode::TolerateTail),
            [
                RepairAction::TruncateLog {
                    segment: dir.key(0),
                    keep_len: whole,
                    original_len: whole + 20,
                },
                RepairAction::TruncateIndex {
                    segment: dir.key(0),
                    keep_len: 3 * ENTRY as u64,
                    original_len: 4 * ENTRY as u64,
                },
            ]
        );
    }

    #[test]
    fn a_zero_tail_and_a_corrupt_last_message_are_cut_too() {
        let (dir, whole) = damaged(3, |s| s.log_mut().extend([0u8; 4096]));
        assert_eq!(
            dir.actions(Mode::TolerateTail),
            [RepairAction::TruncateLog {
                segment: dir.key(0),
                keep_len: whole,
                original_len: whole + 4096,
            }]
        );

        // The last message goes; its index entry with it.
        let (dir, whole) = damaged(3, |s| {
            let len = s.log_mut().len();
            s.log_mut()[len - 1] ^= 1;
        });
        let two = Segment::whole(0, 2).log_len();
        assert_eq!(
            dir.actions(Mode::TolerateTail),
            [
                RepairAction::TruncateLog {
                    segment: dir.key(0),
                    keep_len: two,
                    original_len: whole,
                },
                RepairAction::TruncateIndex {
                    segment: dir.key(0),
                    keep_len: 2 * ENTRY as u64,
                    original_len: 3 * ENTRY as u64,
                },
            ]
        );
    }

    #[test]
    fn an_index_longer_than_its_log_is_cut_to_its_messages() {
        let (dir, _) = damaged(4, |s| {
            s.index_mut().extend(entry(4, 9_999, 1_004));
            s.index_mut().extend(entry(5, 10_999, 1_005));
        });
        let cut = RepairAction::TruncateIndex {
            segment: dir.key(0),
            keep_len: 4 * ENTRY as u64,
            original_len: 6 * ENTRY as u64,
        };
        for mode in REPAIRING {
            assert_eq!(dir.actions(mode), std::slice::from_ref(&cut), "{mode}");
        }
        // Half an entry past the last whole one: cut as well.
        let (dir, _) = damaged(4, |s| s.index_mut().extend([9u8; 8]));
        assert_eq!(
            dir.actions(Mode::TolerateTail),
            [RepairAction::TruncateIndex {
                segment: dir.key(0),
                keep_len: 4 * ENTRY as u64,
                original_len: 4 * ENTRY as u64 + 8,
            }]
        );
    }

    #[test]
    fn a_short_missing_or_wrong_index_is_rebuilt_from_the_log() {
        let cases: [(&str, Damage, Option<u64>); 4] = [
            ("short", |s| s.index_mut().truncate(2 * ENTRY), Some(32)),
            (
                "short by half an entry",
                |s| s.index_mut().truncate(4 * ENTRY - 8),
                Some(56),
            ),
            ("missing", |s| s.index = None, None),
            (
                "a wrong position",
                |s| s.index_mut()[ENTRY + 4] ^= 1,
                Some(64),
            ),
        ];
        for (what, damage, original_len) in cases {
            let (dir, _) = damaged(4, damage);
            for mode in REPAIRING {
                assert_eq!(
                    dir.actions(mode),
                    [rewrite(&dir, 0, 4, original_len)],
                    "{what}, {mode}"
                );
            }
        }
    }

    #[test]
    fn a_cut_in_the_newest_segment_that_leaves_it_empty_takes_it_out() {
        // A torn first message in a just-rotated segment: the segment goes, newest
        // file first, since the server resets offsets on an empty newest segment.
        let mut fresh = Segment::empty(3);
        fresh.log_mut().extend(&message(3, b"torn")[..30]);
        let dir = TestDir::new(&[Segment::whole(0, 3), fresh]);
        let quarantined = [
            RepairAction::QuarantineFile {
                path: dir.rel(3, Index),
                len: 0,
            },
            RepairAction::QuarantineFile {
                path: dir.rel(3, Log),
                len: 30,
            },
        ];
        for mode in REPAIRING {
            assert_eq!(dir.actions(mode), quarantined, "{mode}");
        }

        let dir = TestDir::new(&[Segment::whole(0, 3), Segment::empty(3)]);
        assert_eq!(
            dir.actions(Mode::TolerateTail),
            [
                RepairAction::QuarantineFile {
                    path: dir.rel(3, Index),
                    len: 0,
                },
                RepairAction::QuarantineFile {
                    path: dir.rel(3, Log),
                    len: 0,
                },
            ]
        );
    }

    #[test]
    fn the_last_segment_stays_even_when_nothing_valid_is_left() {
        // The server panics on a partition without a log: an empty one stays.
        let (dir, _) = damaged(0, |s| s.log_mut().extend(&message(0, b"torn")[..10]));
        assert_eq!(
            dir.actions(Mode::TolerateTail),
            [RepairAction::TruncateLog {
                segment: dir.key(0),
                keep_len: 0,
                original_len: 10,
            }]
        );
    }

    #[test]
    fn an_overlapping_segment_only_point_in_time_cuts_and_salvage_re_lays() {
        // Offsets 3 and 4 twice: the second segment starts inside the first.
        let second = Segment::whole(3, 4);
        let dir = TestDir::new(&[Segment::whole(0, 5), second.clone()]);

        let why = dir.refusal(Mode::TolerateTail);
        assert!(why.contains("damage before the end"), "{why}");
        assert!(why.contains("point-in-time 5"), "{why}");

        assert_eq!(
            dir.actions(Mode::PointInTime),
            [
                RepairAction::QuarantineFile {
                    path: dir.rel(3, Index),
                    len: second.index_len(),
                },
                RepairAction::QuarantineFile {
                    path: dir.rel(3, Log),
                    len: second.log_len(),
                },
            ]
        );

        // Salvage keeps offsets 0 to 6, one copy of 3 and 4.
        let actions = dir.actions(Mode::Salvage);
        let [RepairAction::Relay {
            partition,
            segments,
            ..
        }] = actions.as_slice()
        else {
            panic!("salvage plans one re-lay: {actions:#?}");
        };
        assert_eq!(*partition, dir.id);
        let kept: u64 = segments.iter().map(|s| s.messages).sum();
        assert_eq!((segments[0].start_offset, kept), (0, 7), "{segments:#?}");
    }

    #[test]
    fn mid_file_corruption_is_cut_by_point_in_time_and_skipped_by_salvage() {
        let (dir, _) = damaged(5, |s| {
            let second = Segment::whole(0, 1).log_len() as usize;
            s.log_mut()[second + HEADER] ^= 1;
        });
        let why = dir.refusal(Mode::TolerateTail);
        assert!(why.contains("mid-file-corruption"), "{why}");
        assert_eq!(
            dir.refusal(Mode::Absolute),
            "mode absolute repairs nothing; valid messages kept by each mode: salvage 4, \
             point-in-time 1, tolerate-tail refuses; run with --mode salvage to keep every \
             valid message"
        );

        let original_len = Segment::whole(0, 5).log_len();
        assert_eq!(
            dir.actions(Mode::PointInTime),
            [
                RepairAction::TruncateLog {
                    segment: dir.key(0),
                    keep_len: Segment::whole(0, 1).log_len(),
                    original_len,
                },
                RepairAction::TruncateIndex {
                    segment: dir.key(0),
                    keep_len: ENTRY as u64,
                    original_len: 5 * ENTRY as u64,
                },
            ]
        );

        let actions = dir.actions(Mode::Salvage);
        let [RepairAction::Relay { segments, .. }] = actions.as_slice() else {
            panic!("salvage plans one re-lay: {actions:#?}");
        };
        let kept: u64 = segments.iter().map(|s| s.messages).sum();
        assert_eq!(kept, 4, "every message but the damaged one: {segments:#?}");
    }

    #[test]
    fn a_zero_hole_before_more_messages_is_salvaged_with_its_signature() {
        // 0.6.0's rotation race: zeros where a write never landed, then later writes.
        let mut seg = Segment::whole(0, 2);
        let before_hole = seg.log_len();
        seg.log_mut().extend([0u8; 500]);
        for offset in 2..4 {
            seg.log_mut().extend(message(offset, b"after the hole"));
        }
        let dir = TestDir::new(&[seg]);

        assert!(dir
            .refusal(Mode::TolerateTail)
            .contains("mid-file-corruption"));
        assert_eq!(
            dir.actions(Mode::PointInTime)[0],
            RepairAction::TruncateLog {
                segment: dir.key(0),
                keep_len: before_hole,
                original_len: before_hole + 500 + 2 * (HEADER as u64 + 14),
            }
        );

        let plan = dir.plan(Mode::Salvage);
        assert!(!plan.needs_operator(), "{:#?}", plan.refusals);
        let [PlannedAction {
            action: RepairAction::Relay { segments, .. },
            reason,
            ..
        }] = plan.actions.as_slice()
        else {
            panic!("salvage plans one re-lay: {:#?}", plan.actions);
        };
        assert!(reason.contains("zero-hole"), "{reason}");
        let kept: u64 = segments.iter().map(|s| s.messages).sum();
        assert_eq!(kept, 4, "{segments:#?}");
    }

    #[test]
    fn missing_offsets_folders_are_created_and_short_offset_files_taken_out() {
        let dir = TestDir::new(&[Segment::whole(0, 2)]);
        let offsets = dir.partition_dir().join("offsets");
        std::fs::remove_dir(offsets.join("groups")).unwrap();
        std::fs::write(offsets.join("consumers/7"), [1, 2, 3]).unwrap();
        let rel = |tail: &str| format!("{}/offsets/{tail}", dir.id.rel_dir());
        let expected = [
            RepairAction::CreateDir {
                path: rel("groups"),
            },
            RepairAction::QuarantineFile {
                path: rel("consumers/7"),
                len: 3,
            },
        ];
        for mode in REPAIRING {
            assert_eq!(dir.actions(mode), expected, "{mode}");
        }
    }

    #[test]
    fn a_stray_log_or_an_unreadable_offset_name_stops_every_mode() {
        let (dir, _) = damaged(2, |s| s.log_mut().extend([0u8; 10]));
        std::fs::write(dir.partition_dir().join("old.log"), b"x").unwrap();
        for mode in REPAIRING {
            assert!(dir.refusal(mode).contains("stray .log"), "{mode}");
        }

        let (dir, _) = damaged(2, |s| s.log_mut().extend([0u8; 10]));
        let name = dir.partition_dir().join("offsets/consumers/name");
        std::fs::write(name, [0; 8]).unwrap();
        for mode in REPAIRING {
            assert!(
                dir.refusal(mode).contains("not named by a number"),
                "{mode}"
            );
        }
    }

    #[test]
    fn least_invasive_mode_is_the_first_that_keeps_every_message() {
        let counts = |tolerate_tail, point_in_time| ModeCounts {
            partition: PartitionId::new(1, 1, 1),
            salvage: 10,
            point_in_time,
            tolerate_tail,
        };
        assert_eq!(counts(Some(10), 10).least_invasive(), Mode::TolerateTail);
        assert_eq!(counts(None, 10).least_invasive(), Mode::PointInTime);
        assert_eq!(counts(Some(8), 8).least_invasive(), Mode::Salvage);
    }
}
