//! Journal-guided recovery against a full scan, after a simulated crash.
//!
//! Generates 1,000 partitions (2 MiB each by default, 4 segments of 512 KiB: ≥ 2 GiB),
//! journals them as the sidecar would (sealed segments with their final facts, the
//! open segment checkpointed 64 KiB before its end), tears the tail of every open segment, and
//! measures analysis + plan both ways on the page-cached directory. Prints both times
//! and their ratio. `GUIDED_BENCH_MIB_PER_PARTITION` scales the data;
//! `GUIDED_BENCH_COLD=1` drops the page cache before every timed run (as after a
//! power loss; needs root).
//! Run: `cargo bench -p iggy-warden-recovery --bench guided_recover`

use harness::{Message, SegmentAppender};
use journal::{Journal, PartitionId, Record};
use recovery::analyze::analyze;
use recovery::guided::analyze_guided;
use recovery::layout::discover;
use recovery::plan::{plan, Mode};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 1000;
const SEGMENTS: u64 = 4;
const ROUNDS: usize = 3;
/// Bytes of the open segment written after its last checkpoint: about what a
/// partition takes in during the sidecar's one-second checkpoint interval.
const CHECKPOINT_LAG: u64 = 64 * 1024;

/// One written segment, as the sidecar would journal it.
struct Written {
    start: u64,
    log_len: u64,
    index_len: u64,
    last_offset: u64,
    last_checksum: u64,
    last_start: u64,
    /// The newest checkpoint: (bytes, next offset).
    checkpoint: (u64, u64),
}

/// Writes one partition's segments.
fn partition(dir: &Path, seg_bytes: u64, seed: u64) -> Vec<Written> {
    // As the server leaves them: without the offsets folders, recover would create them.
    for sub in ["offsets/consumers", "offsets/groups"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut out = Vec::new();
    let mut offset = 0u64;
    for s in 0..SEGMENTS {
        let start = offset;
        let log = BufWriter::new(File::create(dir.join(format!("{start:020}.log"))).unwrap());
        let index = BufWriter::new(File::create(dir.join(format!("{start:020}.index"))).unwrap());
        let mut segment = SegmentAppender::new(log, index, start);
        let (mut last_sum, mut last_start, mut checkpoint) = (0u64, 0u64, (0, start));
        while segment.len < seg_bytes {
            let m = Message {
                id: u128::from(seed) << 64 | u128::from(offset),
                offset,
                timestamp: 1_700_000_000_000_000 + offset,
                origin_timestamp: 1_700_000_000_000_000,
                payload: vec![(offset + s) as u8; 900 + (offset % 200) as usize],
                headers: Vec::new(),
            };
            last_start = segment.len;
            let bytes = segment.append(&m).unwrap();
            last_sum = u64::from_le_bytes(bytes[..8].try_into().unwrap());
            offset += 1;
            if segment.len + CHECKPOINT_LAG <= seg_bytes {
                checkpoint = (segment.len, offset);
            }
        }
        out.push(Written {
            start,
            log_len: segment.len,
            index_len: (offset - start) * 16,
            last_offset: offset - 1,
            last_checksum: last_sum,
            last_start,
            checkpoint,
        });
    }
    out
}

/// After a crash the page cache is cold: with `GUIDED_BENCH_COLD=1` (root needed)
/// every timed run starts with dropped caches.
fn drop_caches() {
    if std::env::var_os("GUIDED_BENCH_COLD").is_some() {
        let _ = std::process::Command::new("sync").status();
        std::fs::write("/proc/sys/vm/drop_caches", "3").expect("drop caches (needs root)");
    }
}

fn time(f: impl Fn()) -> Duration {
    let mut runs: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            drop_caches();
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    runs.sort();
    runs[ROUNDS / 2]
}

fn main() {
    let mib: u64 = std::env::var("GUIDED_BENCH_MIB_PER_PARTITION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let seg_bytes = (mib << 20) / SEGMENTS;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let journal = Journal::open(&tmp.path().join("state/journal")).unwrap();
    for p in 0..PARTITIONS {
        let id = PartitionId::new(0, 0, p);
        let dir = root.join(id.rel_dir());
        let segs = partition(&dir, seg_bytes, u64::from(p));
        let mut records = Vec::new();
        for (i, w) in segs.iter().enumerate() {
            let segment = id.segment(w.start);
            records.push(Record::SegmentOpened { segment });
            if i + 1 < segs.len() {
                records.push(Record::Sealed {
                    segment,
                    log_len: w.log_len,
                    index_len: w.index_len,
                    last_offset: Some(w.last_offset),
                    last_checksum: Some(w.last_checksum),
                    last_start: Some(w.last_start),
                });
            } else {
                records.push(Record::Checkpoint {
                    segment,
                    valid_len: w.checkpoint.0,
                    next_offset: w.checkpoint.1,
                });
                // The crash: the open segment's last message is torn.
                let log = OpenOptions::new()
                    .write(true)
                    .open(dir.join(format!("{:020}.log", w.start)))
                    .unwrap();
                log.set_len(w.log_len - 7).unwrap();
            }
        }
        journal.append_batch(records).unwrap();
    }
    let layout = discover(&root).unwrap();
    let known: HashMap<_, _> = journal.all_segment_states().unwrap().into_iter().collect();
    let gib = layout.log_bytes() as f64 / (1u64 << 30) as f64;

    let full = time(|| {
        let a = analyze(&discover(&root).unwrap(), &|_| {}).unwrap();
        assert_eq!(
            plan(&a, Mode::TolerateTail).unwrap().actions.len(),
            PARTITIONS as usize * 2
        );
    });
    let guided = time(|| {
        let (a, stats) = analyze_guided(&discover(&root).unwrap(), &known, &|_| {}).unwrap();
        assert_eq!(stats.trusted, (PARTITIONS as u64 * (SEGMENTS - 1)) as usize);
        assert_eq!(
            plan(&a, Mode::TolerateTail).unwrap().actions.len(),
            PARTITIONS as usize * 2
        );
    });
    let listing = time(|| {
        discover(&root).unwrap();
    });
    println!(
        "guided_recover: {PARTITIONS} partitions, {} segments, {gib:.2} GiB of logs",
        layout.segment_count()
    );
    println!("  full scan + plan:     {full:?}");
    println!("  journal-guided + plan: {guided:?} (of which listing the folders: {listing:?})");
    println!(
        "  speed-up: {:.1}x",
        full.as_secs_f64() / guided.as_secs_f64()
    );
}
