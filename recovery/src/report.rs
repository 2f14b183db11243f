//! The result of `check`: counts, per-partition summaries and every problem found.

use crate::analyze::{scan_threads, Analysis, PartitionAnalysis};
use crate::layout::Stray;
use crate::offsets_ahead::{offsets_ahead, OffsetAhead};
use crate::parallel::map_ordered;
use crate::plan::{mode_counts, salvage_error, ModeCounts, PlanError};
use crate::salvage::{first_damaged, salvage_partition};
use crate::state_check::judge_state;
use crate::verdict::{judge_layout, judge_partition, Problem};
use journal::PartitionId;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct PartitionSummary {
    pub partition: PartitionId,
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub path: PathBuf,
    pub segments: usize,
    pub messages: u64,
    pub problems: usize,
    pub ready: bool,
    /// For a partition with damaged segments: what each recovery mode would keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modes: Option<ModeCounts>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub data_dir: PathBuf,
    pub version: Option<String>,
    pub partitions: usize,
    pub segments: usize,
    /// Valid messages, counting only the valid prefix of each log.
    pub messages: u64,
    /// No problem anywhere: iggy-server 0.6.0 can start on this directory as it is.
    pub ready_to_start: bool,
    pub problems: Vec<Problem>,
    pub strays: Vec<Stray>,
    /// Stored consumer offsets past their partition's end: not damage, but their
    /// consumers will skip messages (see [`crate::offsets_ahead`]).
    pub offsets_ahead: Vec<OffsetAhead>,
    pub partition_reports: Vec<PartitionSummary>,
    /// One line on `state/log`, `state/info` and the metadata.
    pub state: String,
    /// Set when the data directory holds nothing yet (a first start): why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nothing_to_check: Option<String>,
}

impl CheckReport {
    pub fn new(a: &Analysis) -> Self {
        let mut problems = Vec::new();
        let mut partition_reports = Vec::new();
        for p in &a.partitions {
            let found = judge_partition(p);
            partition_reports.push(PartitionSummary {
                partition: p.id,
                path: p.dir.clone(),
                segments: p.segments.len(),
                messages: p.valid_messages(),
                problems: found.len(),
                ready: found.is_empty(),
                modes: None,
            });
            problems.extend(found);
        }
        problems.extend(judge_state(&a.state));
        let mut strays = a.strays.clone();
        strays.extend(a.state.empty_unnamed().into_iter().map(|rel| {
            Stray {
                path: a.root.join(rel),
                reason: "no state/log entry names it and it holds no message: iggy-server \
                     0.6.0 ignores it"
                    .into(),
            }
        }));
        problems.extend(judge_layout(a));
        Self {
            data_dir: a.root.clone(),
            version: a.version.clone(),
            partitions: a.partitions.len(),
            segments: a.segment_count(),
            messages: a.valid_messages(),
            ready_to_start: problems.is_empty(),
            problems,
            strays,
            offsets_ahead: a.partitions.iter().flat_map(offsets_ahead).collect(),
            partition_reports,
            state: a.state.summary(),
            nothing_to_check: None,
        }
    }

    /// The report on a data directory iggy-server has not written yet
    /// ([`crate::layout::Root::Fresh`]): nothing to check, ready to start.
    pub fn nothing_to_check(root: &std::path::Path, why: String) -> Self {
        Self {
            data_dir: root.to_path_buf(),
            version: None,
            partitions: 0,
            segments: 0,
            messages: 0,
            ready_to_start: true,
            problems: Vec::new(),
            strays: Vec::new(),
            offsets_ahead: Vec::new(),
            partition_reports: Vec::new(),
            state: String::new(),
            nothing_to_check: Some(why),
        }
    }

    /// Reads every damaged partition again, resynchronising past bad bytes: adds
    /// the rotation race's signatures to the problems and what each mode would keep.
    /// Partitions are read in parallel, one per core: the reading is hashing.
    pub fn with_salvage_view(mut self, a: &Analysis) -> Result<Self, PlanError> {
        let damaged: Vec<(usize, &PartitionAnalysis)> = (a.partitions.iter().enumerate())
            .filter(|(_, p)| first_damaged(p).is_some())
            .collect();
        let salvages = map_ordered(&damaged, scan_threads(), |(_, p)| salvage_partition(p))
            .map_err(salvage_error)?;
        for ((i, p), salvage) in damaged.into_iter().zip(salvages) {
            let Some(summary) = self.partition_reports.get_mut(i) else {
                continue;
            };
            summary.modes = Some(mode_counts(p, salvage.as_ref()));
            if let Some(s) = salvage {
                summary.problems += s.signatures.len();
                self.problems.extend(s.signatures);
            }
        }
        self.ready_to_start = self.problems.is_empty();
        Ok(self)
    }
}
