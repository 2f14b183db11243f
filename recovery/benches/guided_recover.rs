//! Journal-guided recovery against a full scan, after a simulated crash.
//!
//! Generates 1,000 partitions (`GUIDED_BENCH_PARTITIONS`; 2 MiB each by default, 4
//! segments of 512 KiB: ≥ 2 GiB),
//! journals them as the sidecar would (sealed segments with their final facts and
//! their files' stamps, the open segment checkpointed 64 KiB before its end) and
//! their offsets folders as `recover` would at the previous start (once they have
//! settled: the bench waits out the margin), tears
//! the tail of every open segment, and measures analysis + plan both ways on the
//! page-cached directory, the guided way also without the stamps (each sealed
//! segment's last message read back, as before the sidecar stamped them), without
//! the offsets folders' listings (each folder read), the
//! guided way as it was before the listing advised the kernel of the analysis'
//! reads (listing, then analysis), and the listing of the folders alone, the floor
//! of any guided run. Prints both times,
//! the CPU time and the disk reads of each (a cold guided run is bound by the number
//! of reads, a full scan by the bytes), and their ratio. `GUIDED_BENCH_MIB_PER_PARTITION` scales the data;
//! `GUIDED_BENCH_CHECKPOINT_LAG_KIB` how much of each open segment the journal has
//! not verified (64 by default); `GUIDED_BENCH_COLD=1` drops the page cache before
//! every timed run (as after a power loss; needs root).
//! Run: `cargo bench -p iggy-warden-recovery --bench guided_recover`

#[path = "common/cpu.rs"]
mod cpu;

use cpu::cpu_time;
use harness::{Message, SegmentAppender};
use journal::{FileStamp, Journal, PartitionId, Record, SegmentPhase, SegmentState};
use recovery::analyze::analyze;
use recovery::guided::analyze_guided;
use recovery::layout::{discover, OffsetsGuide, LISTING_MARGIN};
use recovery::pipeline::Quiet;
use recovery::plan::{plan, Mode};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, Instant};

const SEGMENTS: u64 = 4;
const ROUNDS: usize = 3;
/// Rounds of the paired comparison of the guided run with the listing.
const PAIRED_ROUNDS: usize = 5;
/// Bytes of the open segment written after its last checkpoint, by default: about
/// what a partition takes in during the sidecar's one-second checkpoint interval.
/// `GUIDED_BENCH_CHECKPOINT_LAG_KIB=0` is a sidecar that had checkpointed everything
/// (as after its coverage pass, the case): only the torn message is read.
const CHECKPOINT_LAG_KIB: u64 = 64;

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
fn partition(dir: &Path, seg_bytes: u64, lag: u64, seed: u64) -> Vec<Written> {
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
            if segment.len + lag <= seg_bytes {
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

/// One timed way of analysing: the median of `ROUNDS` runs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Run {
    wall: Duration,
    /// User + system time of all threads.
    cpu: Duration,
    /// Read requests the disk completed (the page cache answers the rest).
    disk_reads: u64,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} s (CPU {:.2} s, {} disk reads)",
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.disk_reads
        )
    }
}

fn time(data: &Path, f: impl Fn()) -> Run {
    let mut runs: Vec<Run> = (0..ROUNDS).map(|_| time_once(data, &f)).collect();
    runs.sort();
    runs[ROUNDS / 2]
}

/// One timed run of `f`, after dropping the caches when asked.
fn time_once(data: &Path, f: &dyn Fn()) -> Run {
    drop_caches();
    let (cpu, reads) = (cpu_time(), disk_reads(data));
    let t = Instant::now();
    f();
    Run {
        wall: t.elapsed(),
        cpu: cpu_time().saturating_sub(cpu),
        disk_reads: disk_reads(data).saturating_sub(reads),
    }
}

/// `f` against `floor`, timed one after the other in each of `PAIRED_ROUNDS` rounds,
/// so that the disk's drift over the run weighs on both alike: each round's ratio of
/// the wall times, sorted.
fn paired_ratios(data: &Path, f: &dyn Fn(), floor: &dyn Fn()) -> Vec<f64> {
    let mut ratios: Vec<f64> = (0..PAIRED_ROUNDS)
        .map(|_| {
            let below = time_once(data, floor);
            let above = time_once(data, f);
            above.wall.as_secs_f64() / below.wall.as_secs_f64().max(1e-9)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// Reads completed by the block device holding `path` (`/proc/diskstats`); 0 when
/// it cannot be told (tmpfs, no such file).
fn disk_reads(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(dev) = std::fs::metadata(path).map(|m| m.dev()) else {
        return 0;
    };
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let text = std::fs::read_to_string("/proc/diskstats").unwrap_or_default();
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| {
            f.first().and_then(|v| v.parse::<u64>().ok()) == Some(major)
                && f.get(1).and_then(|v| v.parse::<u64>().ok()) == Some(minor)
        })
        .and_then(|f| f.get(3).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// `state` as it would be without a `Stamped` record.
fn without_stamps(state: &SegmentState) -> SegmentState {
    let phase = match state.phase {
        SegmentPhase::SealedStamped {
            log_len,
            index_len,
            last_offset,
            last_checksum,
            last_start,
            ..
        } => SegmentPhase::Sealed {
            log_len,
            index_len,
            last_offset,
            last_checksum,
            last_start,
        },
        ref other => other.clone(),
    };
    SegmentState {
        phase,
        ..state.clone()
    }
}

/// The number in environment variable `name`, else `default`.
fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let partitions = u32::try_from(env_u64("GUIDED_BENCH_PARTITIONS", 1000)).unwrap();
    let mib = env_u64("GUIDED_BENCH_MIB_PER_PARTITION", 2);
    let seg_bytes = (mib << 20) / SEGMENTS;
    let lag = env_u64("GUIDED_BENCH_CHECKPOINT_LAG_KIB", CHECKPOINT_LAG_KIB) << 10;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let journal = Journal::open(&tmp.path().join("state/journal")).unwrap();
    for p in 0..partitions {
        let id = PartitionId::new(0, 0, p);
        let dir = root.join(id.rel_dir());
        let segs = partition(&dir, seg_bytes, lag, u64::from(p));
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
                // The sidecar stamps a sealed segment once its files have settled.
                let stamp = |ext: &str| {
                    let path = dir.join(format!("{:020}.{ext}", w.start));
                    FileStamp::of(&std::fs::metadata(path).unwrap())
                };
                records.push(Record::Stamped {
                    segment,
                    log: stamp("log"),
                    index: stamp("index"),
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
    // What `recover` journals of the offsets folders, once they have settled.
    std::thread::sleep(LISTING_MARGIN + Duration::from_millis(200));
    let none = HashMap::new();
    let first = OffsetsGuide {
        known: &none,
        margin: LISTING_MARGIN,
    };
    let (a, _) =
        recovery::pipeline::analyze(&root, &HashMap::new(), None, Some(first), &|_| true, &Quiet)
            .unwrap();
    let fresh: Vec<_> = a
        .partitions
        .iter()
        .map(|p| (p.id, p.offsets_listing.clone().unwrap()))
        .collect();
    journal.record_offsets_listings(&fresh, &[]).unwrap();
    let listings = journal.offsets_listings().unwrap();
    let layout = discover(&root).unwrap();
    let known: HashMap<_, _> = journal.all_segment_states().unwrap().into_iter().collect();
    // The same journal as a sidecar that stamped nothing would leave it.
    let unstamped: HashMap<_, _> = known.iter().map(|(k, s)| (*k, without_stamps(s))).collect();
    let gib = layout.log_bytes() as f64 / (1u64 << 30) as f64;

    let full = time(&root, || {
        let a = analyze(&discover(&root).unwrap(), &|_| {}).unwrap();
        assert_eq!(
            plan(&a, Mode::TolerateTail).unwrap().actions.len(),
            partitions as usize * 2
        );
    });
    // What `recover` runs: the listing advises the kernel of the analysis' reads.
    let guided_run = |known: &HashMap<_, _>, by_stamp: usize, listed: &HashMap<_, _>| {
        let guide = OffsetsGuide {
            known: listed,
            margin: LISTING_MARGIN,
        };
        let (a, stats) =
            recovery::pipeline::analyze(&root, known, None, Some(guide), &|_| true, &Quiet)
                .unwrap();
        assert_eq!(stats.trusted, (partitions as u64 * (SEGMENTS - 1)) as usize);
        assert_eq!(stats.trusted_by_stamp, by_stamp);
        assert_eq!(stats.offsets_listings_used, listed.len());
        assert_eq!(
            plan(&a, Mode::TolerateTail).unwrap().actions.len(),
            partitions as usize * 2
        );
    };
    let sealed = (partitions as u64 * (SEGMENTS - 1)) as usize;
    let stamped = || guided_run(&known, sealed, &listings);
    let unlisted = || guided_run(&known, sealed, &none);
    let unadvised = || {
        let guide = OffsetsGuide {
            known: &listings,
            margin: LISTING_MARGIN,
        };
        let layout = recovery::layout::discover_guided(&root, None, Some(guide), &|_| {}).unwrap();
        let (a, stats) = analyze_guided(&layout, &known, &|_| {}).unwrap();
        assert_eq!(stats.trusted_by_stamp, sealed);
        assert_eq!(
            plan(&a, Mode::TolerateTail).unwrap().actions.len(),
            partitions as usize * 2
        );
    };
    let read_back_run = || guided_run(&unstamped, 0, &listings);
    let list = || {
        discover(&root).unwrap();
    };
    let guided = time(&root, stamped);
    let folders_read = time(&root, unlisted);
    let read_back = time(&root, read_back_run);
    let without_advice = time(&root, unadvised);
    let listing = time(&root, list);
    let paired = paired_ratios(&root, &stamped, &list);
    let advice_paired = paired_ratios(&root, &stamped, &unadvised);
    let listings_paired = paired_ratios(&root, &stamped, &unlisted);
    println!(
        "guided_recover: {partitions} partitions, {} segments, {gib:.2} GiB of logs",
        layout.segment_count()
    );
    println!("  full scan + plan:      {full}");
    println!("  journal-guided + plan: {guided}");
    println!("  same, without the sealed segments' stamps (each one's last message read back): {read_back}");
    println!("  same, without the offsets folders' listings (each folder read): {folders_read}");
    println!(
        "  same, listing and analysis one after the other (no read-ahead advice): {without_advice}"
    );
    println!("  listing the folders alone: {listing}");
    println!(
        "  guided vs listing: {:.2}x with stamps, {:.2}x without, {:.2}x with stamps but no advice",
        guided.wall.as_secs_f64() / listing.wall.as_secs_f64(),
        read_back.wall.as_secs_f64() / listing.wall.as_secs_f64(),
        without_advice.wall.as_secs_f64() / listing.wall.as_secs_f64()
    );
    println!(
        "  guided (with stamps) vs listing, timed in turn over {PAIRED_ROUNDS} rounds: median \
         {:.2}x, from {:.2}x to {:.2}x",
        paired[PAIRED_ROUNDS / 2],
        paired[0],
        paired[PAIRED_ROUNDS - 1]
    );
    println!(
        "  guided with read-ahead advice vs without, timed in turn over {PAIRED_ROUNDS} rounds: \
         median {:.2}x, from {:.2}x to {:.2}x",
        advice_paired[PAIRED_ROUNDS / 2],
        advice_paired[0],
        advice_paired[PAIRED_ROUNDS - 1]
    );
    println!(
        "  guided with the offsets folders' listings vs without, timed in turn over \
         {PAIRED_ROUNDS} rounds: median {:.2}x, from {:.2}x to {:.2}x",
        listings_paired[PAIRED_ROUNDS / 2],
        listings_paired[0],
        listings_paired[PAIRED_ROUNDS - 1]
    );
    println!(
        "  speed-up: {:.1}x",
        full.wall.as_secs_f64() / guided.wall.as_secs_f64()
    );
}
