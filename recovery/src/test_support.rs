//! Small data directories for the unit tests of the verdict and the planner: one
//! partition whose segments are built message by message and then damaged on purpose,
//! so that each test names one kind of damage and the exact repair it expects (after
//! etcd's `wal/repair_test.go`).
//!
//! The bytes are written by the few lines below, not by this crate's own index
//! builder, so that a test does not measure the product with itself. The harness
//! (`tests/`) has a fuller independent encoder, but recovery's own tests build without
//! it.

use crate::analyze::Analysis;
use crate::guided::analyze_without_history;
use crate::layout::discover;
use crate::plan::{plan, Mode, Plan};
use crate::state_inspect::StateInspection;
use journal::{PartitionId, RepairAction, SegmentFile, SegmentKey};
use std::path::PathBuf;
use xxhash_rust::xxh3::xxh3_64;

/// The bytes of a message header.
pub const HEADER: usize = 56;
/// The bytes of an index entry.
pub const ENTRY: usize = 16;

/// One message as 0.6 stores it: a 56-byte header (checksum of everything after the
/// checksum field, offset, timestamp, lengths), then `payload`.
pub fn message(offset: u64, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; HEADER];
    m[24..32].copy_from_slice(&offset.to_le_bytes());
    m[32..40].copy_from_slice(&timestamp(offset).to_le_bytes());
    m[52..56].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    m.extend_from_slice(payload);
    let sum = xxh3_64(&m[8..]);
    m[..8].copy_from_slice(&sum.to_le_bytes());
    m
}

/// The timestamp [`message`] gives offset `offset`.
pub fn timestamp(offset: u64) -> u64 {
    1_000 + offset
}

/// One index entry: the offset relative to the segment start, the log position where
/// the message ends, its timestamp.
pub fn entry(relative_offset: u32, end: u32, timestamp: u64) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[0..4].copy_from_slice(&relative_offset.to_le_bytes());
    e[4..8].copy_from_slice(&end.to_le_bytes());
    e[8..16].copy_from_slice(&timestamp.to_le_bytes());
    e
}

/// A segment's two files; `None` for a file that is not there.
#[derive(Clone, Debug)]
pub struct Segment {
    pub start: u64,
    pub log: Option<Vec<u8>>,
    pub index: Option<Vec<u8>>,
}

impl Segment {
    /// `count` whole messages from offset `start` (payloads of different lengths, so
    /// that a position in the wrong place shows), and the index the server writes.
    pub fn whole(start: u64, count: u64) -> Self {
        let mut log = Vec::new();
        let mut index = Vec::new();
        for i in 0..count {
            let offset = start + i;
            log.extend(message(offset, payload(offset).as_bytes()));
            index.extend(entry(i as u32, log.len() as u32, timestamp(offset)));
        }
        Self {
            start,
            log: Some(log),
            index: Some(index),
        }
    }

    /// An empty pair, as the server creates a new segment.
    pub fn empty(start: u64) -> Self {
        Self {
            start,
            log: Some(Vec::new()),
            index: Some(Vec::new()),
        }
    }

    /// The log, which the test's segment has.
    pub fn log_mut(&mut self) -> &mut Vec<u8> {
        self.log.as_mut().expect("this segment has a log")
    }

    /// The index, which the test's segment has.
    pub fn index_mut(&mut self) -> &mut Vec<u8> {
        self.index.as_mut().expect("this segment has an index")
    }

    /// Bytes of the log.
    pub fn log_len(&self) -> u64 {
        self.log.as_ref().map_or(0, |l| l.len() as u64)
    }

    /// Bytes of the index.
    pub fn index_len(&self) -> u64 {
        self.index.as_ref().map_or(0, |i| i.len() as u64)
    }
}

/// The payload [`Segment::whole`] gives offset `offset`.
pub fn payload(offset: u64) -> String {
    format!("message {offset}{}", "+".repeat((offset % 5) as usize))
}

/// A data directory with one partition, `streams/1/topics/1/partitions/1`, holding
/// the given segments and both offsets folders.
pub struct TestDir {
    tmp: tempfile::TempDir,
    pub id: PartitionId,
}

impl TestDir {
    pub fn new(segments: &[Segment]) -> Self {
        let tmp = tempfile::tempdir().expect("temporary folder");
        let id = PartitionId::new(1, 1, 1);
        let dir = tmp.path().join(id.rel_dir());
        for offsets in ["offsets/consumers", "offsets/groups"] {
            std::fs::create_dir_all(dir.join(offsets)).expect("offsets folder");
        }
        for seg in segments {
            let key = id.segment(seg.start);
            for (bytes, kind) in [
                (&seg.log, SegmentFile::Log),
                (&seg.index, SegmentFile::Index),
            ] {
                if let Some(bytes) = bytes {
                    std::fs::write(key.path_in(&dir, kind), bytes).expect("segment file");
                }
            }
        }
        Self { tmp, id }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.tmp.path()
    }

    /// The partition folder.
    pub fn partition_dir(&self) -> PathBuf {
        self.tmp.path().join(self.id.rel_dir())
    }

    pub fn key(&self, start: u64) -> SegmentKey {
        self.id.segment(start)
    }

    /// A path relative to the data directory, as actions name files.
    pub fn rel(&self, start: u64, kind: SegmentFile) -> String {
        format!("{}/{}", self.id.rel_dir(), self.key(start).file_name(kind))
    }

    /// The analysis `check` makes, without the state files: the directory has no
    /// `state/log` naming the partition, and the state files have tests of their own
    /// (`state_check`), so leaving them in would add the same refusal to every plan.
    pub fn analysis(&self) -> Analysis {
        let layout = discover(self.tmp.path()).expect("discover");
        let mut analysis = analyze_without_history(&layout, &|_| {}).expect("analyze");
        analysis.state = StateInspection::default();
        analysis
    }

    pub fn plan(&self, mode: Mode) -> Plan {
        plan(&self.analysis(), mode).expect("plan")
    }

    /// The actions `mode` plans, after checking that it refuses nothing.
    pub fn actions(&self, mode: Mode) -> Vec<RepairAction> {
        let plan = self.plan(mode);
        assert!(
            !plan.needs_operator(),
            "{mode} refuses: {:#?}",
            plan.refusals
        );
        plan.actions.into_iter().map(|a| a.action).collect()
    }

    /// Why `mode` refuses to repair the partition, after checking that it plans
    /// nothing.
    pub fn refusal(&self, mode: Mode) -> String {
        let plan = self.plan(mode);
        assert!(plan.actions.is_empty(), "{mode} plans {:#?}", plan.actions);
        assert_eq!(plan.refusals.len(), 1, "{mode}: {:#?}", plan.refusals);
        assert_eq!(plan.refusals[0].partition, Some(self.id));
        plan.refusals[0].why.clone()
    }
}
