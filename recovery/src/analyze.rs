//! Scans every segment of a discovered data directory and verifies its index.
//!
//! One pass per segment (`analyze/segment.rs`): the scanner walks the `.log` and the
//! index verifier walks the `.index` in step with it, so each byte is read once. The
//! result is plain data that the verdict (for `check`) and the planner (for
//! `recover`) both consume.
//! Segments are analysed on several threads, large ones scanned from their start in
//! pieces on every core (`pieces.rs`): all of them when everything is scanned, as
//! `check` does, and through [`analyze_each`] in the journal-guided analysis
//! (`guided.rs`).

pub(crate) mod segment;

pub use segment::{analyze_segment, AnalyzeError, SegmentAnalysis};

use crate::layout::{Anomaly, DataDir, OffsetFile, PartitionLayout, SegmentFiles, Stray};
use crate::parallel::map_ordered;
use crate::state_inspect::StateInspection;
use journal::PartitionId;
use serde::Serialize;
use std::io;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct PartitionAnalysis {
    pub id: PartitionId,
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub dir: PathBuf,
    pub segments: Vec<SegmentAnalysis>,
    pub offset_files: Vec<OffsetFile>,
    #[serde(serialize_with = "crate::names::serialize_paths")]
    pub stray_logs: Vec<PathBuf>,
    #[serde(serialize_with = "crate::names::serialize_paths")]
    pub missing_offset_dirs: Vec<PathBuf>,
    pub anomalies: Vec<Anomaly>,
    /// The layout's [`PartitionLayout::offsets_listing`], for `recover` to journal.
    #[serde(skip)]
    pub offsets_listing: Option<journal::OffsetsListing>,
}

impl PartitionAnalysis {
    pub fn valid_messages(&self) -> u64 {
        self.segments
            .iter()
            .map(SegmentAnalysis::valid_messages)
            .sum()
    }

    /// Position of the newest segment whose log holds bytes: the partition's tail.
    pub fn tail_position(&self) -> Option<usize> {
        self.segments.iter().rposition(SegmentAnalysis::has_data)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub root: PathBuf,
    pub version: Option<String>,
    pub partitions: Vec<PartitionAnalysis>,
    pub strays: Vec<Stray>,
    /// The state files, as discovery found them.
    pub state: StateInspection,
    /// Links and files where folders belong, outside any partition folder read.
    pub anomalies: Vec<Anomaly>,
}

impl Analysis {
    pub fn segment_count(&self) -> usize {
        self.partitions.iter().map(|p| p.segments.len()).sum()
    }

    pub fn valid_messages(&self) -> u64 {
        self.partitions
            .iter()
            .map(PartitionAnalysis::valid_messages)
            .sum()
    }
}

/// Scans every segment of `dir` from its start, in pieces on every core; `progress`
/// receives the log bytes of each finished piece of a segment. The reference the
/// journal-guided analysis is tested against; `check` runs that one with no history
/// (`guided::analyze_without_history`), as `recover` does with no journal.
pub fn analyze(dir: &DataDir, progress: &(dyn Fn(u64) + Sync)) -> Result<Analysis, AnalyzeError> {
    // Every scan is CPU work: one thread per core, large segments in pieces.
    let segments: Vec<&SegmentFiles> = dir.partitions.iter().flat_map(|p| &p.segments).collect();
    let analyses = crate::pieces::analyze_in_pieces(
        &segments,
        scan_threads(),
        crate::pieces::PIECE_BYTES,
        progress,
    )?;
    Ok(assemble(dir, analyses))
}

/// Threads for scanning whole segments: one per core; more only added switching on a
/// 2-core machine.
pub fn scan_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The driver of the journal-guided analysis (`guided.rs`): `segment` applied to
/// every segment of `dir` on up to `threads` threads, over segments rather than
/// partitions so that one large partition is spread too, except the segments
/// `from_start` picks, which are scanned from their start as `check` scans them:
/// large ones in pieces on every core (`pieces.rs`). The results regrouped by
/// partition in order, with what `segment` returned beside each analysis (`None` for
/// a segment scanned from its start). `progress` receives log bytes as they are done.
pub fn analyze_each<S: Send>(
    dir: &DataDir,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
    from_start: impl Fn(&SegmentFiles) -> bool,
    segment: impl Fn(&SegmentFiles) -> Result<(SegmentAnalysis, S), AnalyzeError> + Sync,
) -> Result<(Analysis, Vec<Option<S>>), AnalyzeError> {
    let items: Vec<(&SegmentFiles, bool)> = (dir.partitions.iter())
        .flat_map(|p| &p.segments)
        .map(|files| (files, from_start(files)))
        .collect();
    let pick = |whole: bool| -> Vec<&SegmentFiles> {
        (items.iter())
            .filter(|(_, w)| *w == whole)
            .map(|(files, _)| *files)
            .collect()
    };
    let looked = map_ordered(&pick(false), threads, |files| {
        let result = segment(files)?;
        progress(files.log_len.unwrap_or(0));
        Ok::<_, AnalyzeError>(result)
    })?;
    let scanned = crate::pieces::analyze_in_pieces(
        &pick(true),
        scan_threads(),
        crate::pieces::PIECE_BYTES,
        progress,
    )?;
    let (mut looked, mut scanned) = (looked.into_iter(), scanned.into_iter());
    let mut segments = Vec::with_capacity(items.len());
    let mut extras = Vec::with_capacity(items.len());
    for (files, whole) in &items {
        let (analysis, extra) = match whole {
            true => (scanned.next(), None),
            false => looked
                .next()
                .map_or((None, None), |(a, s)| (Some(a), Some(s))),
        };
        // Both maps give one result per item, in order: a defensive answer.
        let analysis = analysis.ok_or_else(|| AnalyzeError {
            path: files.log_path.clone(),
            cause: io::Error::other("the segment's analysis went missing"),
        })?;
        segments.push(analysis);
        extras.push(extra);
    }
    Ok((assemble(dir, segments), extras))
}

/// The analysis of `dir` from its segments' analyses, in the order of its partitions
/// and their segments.
fn assemble(dir: &DataDir, segments: Vec<SegmentAnalysis>) -> Analysis {
    let mut segments = segments.into_iter();
    let partitions = dir
        .partitions
        .iter()
        .map(|p| PartitionAnalysis::new(p, segments.by_ref().take(p.segments.len()).collect()))
        .collect();
    Analysis {
        root: dir.root.clone(),
        version: dir.version.clone(),
        partitions,
        strays: dir.strays.clone(),
        state: dir.state.clone(),
        anomalies: dir.anomalies.clone(),
    }
}

impl PartitionAnalysis {
    /// The layout this analysis was made from, with its segments' files as
    /// `segments` (read again since): the reverse of [`PartitionAnalysis::new`].
    pub(crate) fn layout_with(&self, segments: Vec<SegmentFiles>) -> PartitionLayout {
        PartitionLayout {
            id: self.id,
            dir: self.dir.clone(),
            segments,
            offset_files: self.offset_files.clone(),
            stray_logs: self.stray_logs.clone(),
            missing_offset_dirs: self.missing_offset_dirs.clone(),
            anomalies: self.anomalies.clone(),
            offsets_listing: self.offsets_listing.clone(),
        }
    }

    /// The analysis of partition `p` whose segments were analysed into `segments`.
    pub fn new(p: &PartitionLayout, segments: Vec<SegmentAnalysis>) -> Self {
        PartitionAnalysis {
            id: p.id,
            dir: p.dir.clone(),
            segments,
            offset_files: p.offset_files.clone(),
            stray_logs: p.stray_logs.clone(),
            missing_offset_dirs: p.missing_offset_dirs.clone(),
            anomalies: p.anomalies.clone(),
            offsets_listing: p.offsets_listing.clone(),
        }
    }
}
