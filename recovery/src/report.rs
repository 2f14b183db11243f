//! The result of `check`: counts, per-partition summaries and every problem found.

use crate::analyze::Analysis;
use crate::layout::Stray;
use crate::verdict::{judge_partition, Problem};
use journal::PartitionId;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct PartitionSummary {
    pub partition: PartitionId,
    pub path: PathBuf,
    pub segments: usize,
    pub messages: u64,
    pub problems: usize,
    pub ready: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
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
    pub partition_reports: Vec<PartitionSummary>,
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
            });
            problems.extend(found);
        }
        Self {
            data_dir: a.root.clone(),
            version: a.version.clone(),
            partitions: a.partitions.len(),
            segments: a.segment_count(),
            messages: a.valid_messages(),
            ready_to_start: problems.is_empty(),
            problems,
            strays: a.strays.clone(),
            partition_reports,
        }
    }
}
