//! Scan throughput against plain reading of the same page-cached bytes.
//!
//! Generates a segment set of at least 1 GiB (4 partitions, 64 MiB segments), reads it
//! once to warm the page cache, then alternates a plain read of every `.log` (one
//! thread, 1 MiB buffers), the real `cat` of the same files (to `/dev/null`, as an
//! operator would time it) and what `check` does (discovery, framing, XXH3 of every
//! message, index verification, and the salvage view: damaged partitions read again,
//! resynchronising past bad bytes), and prints the median of each and the ratios,
//! and the CPU time of the scan (all its threads) against that of `cat`.
//! Goal: what `check` does takes ≤ 1.25× the time of `cat` (speed ≥ 0.8×).
//! Run: `cargo bench -p iggy-warden-recovery --bench scan_throughput`
//! (`SCAN_BENCH_MIB` sets the size, `SCAN_BENCH_PAYLOAD` the mean payload bytes,
//! `SCAN_BENCH_PARTITIONS` the partitions, 4 by default, `SCAN_BENCH_SEGMENT_MIB` the
//! size of their segments, 64 by default (iggy-server's own default is 1024, where
//! a partition can be one segment); `SCAN_BENCH_COLD=1` drops
//! the page cache before every timed run, which needs root).
//! `SCAN_BENCH_FIXTURE=fixtures/iggy-0.6.0/killed-under-load` copies that real data
//! directory's topic (messages of about 165 bytes, as the real server wrote them)
//! into as many topics as reach `SCAN_BENCH_MIB`, instead of generating segments.
//! `SCAN_BENCH_TEAR=1` then tears every partition's newest log, as a crash leaves
//! it (its last message cut short), so that `check` reads every partition's damaged
//! segment a second time for its salvage view.

#[path = "common/cpu.rs"]
mod cpu;

use cpu::{children_cpu_time, cpu_time};
use harness::writer::state_info_bytes;
use harness::{Message, SegmentAppender};
use recovery::guided::analyze_without_history;
use recovery::layout::discover;
use recovery::report::CheckReport;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn generate(root: &Path, total: u64, mean_payload: u64, partitions: u64, segment_bytes: u64) {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let per_partition = total / partitions.max(1);
    for p in 0..partitions.max(1) {
        let dir = root.join(format!("streams/0/topics/0/partitions/{p}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (mut offset, mut written) = (0u64, 0u64);
        while written < per_partition {
            let start = offset;
            let log = BufWriter::with_capacity(
                1 << 20,
                File::create(dir.join(format!("{start:020}.log"))).unwrap(),
            );
            let index =
                BufWriter::new(File::create(dir.join(format!("{start:020}.index"))).unwrap());
            let mut segment = SegmentAppender::new(log, index, start);
            while segment.len < segment_bytes && written < per_partition {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let len = (mean_payload / 2 + rng % mean_payload.max(1)) as usize;
                let m = Message {
                    id: u128::from(offset) << 1,
                    offset,
                    timestamp: 1_700_000_000_000_000 + offset,
                    origin_timestamp: 1_700_000_000_000_000,
                    payload: vec![(rng >> 8) as u8; len],
                    headers: Vec::new(),
                };
                written += segment.append(&m).unwrap().len() as u64;
                offset += 1;
            }
        }
    }
    std::fs::create_dir_all(root.join("state")).unwrap();
    std::fs::write(root.join("state/info"), state_info_bytes()).unwrap();
}

/// Copies the topic `streams/0/topics/0` of the real data directory `fixture` into
/// topics 0, 1, ... of `root` until their logs hold at least `total` bytes; its
/// `state/` comes along, so the layout is the server's own.
fn copy_fixture(fixture: &Path, root: &Path, total: u64) {
    fn copy_tree(from: &Path, to: &Path) -> u64 {
        std::fs::create_dir_all(to).unwrap();
        let mut logs = 0;
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                logs += copy_tree(&entry.path(), &target);
            } else {
                let n = std::fs::copy(entry.path(), &target).unwrap();
                if target.extension().is_some_and(|e| e == "log") {
                    logs += n;
                }
            }
        }
        logs
    }
    copy_tree(&fixture.join("state"), &root.join("state"));
    let topic = fixture.join("streams/0/topics/0");
    let (mut copied, mut t) = (0u64, 0u32);
    while copied < total {
        let logs = copy_tree(&topic, &root.join(format!("streams/0/topics/{t}")));
        assert!(logs > 0, "no .log under {}", topic.display());
        copied += logs;
        t += 1;
    }
}

/// Tears every partition's newest log as the harness's `torn-log-tail` fault does
/// (its last message cut short).
fn tear_newest_logs(root: &Path) {
    for p in discover(root).unwrap().partitions {
        harness::apply(root, &p.id.rel_dir(), harness::Fault::TornLogTail).unwrap();
    }
}

fn plain_read(root: &Path) -> u64 {
    let layout = discover(root).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    for seg in layout.partitions.iter().flat_map(|p| &p.segments) {
        let mut f = File::open(&seg.log_path).unwrap();
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    total
}

/// The real `cat` of every `.log` into `/dev/null`, a thousand files per process.
fn cat(root: &Path) {
    let layout = discover(root).unwrap();
    let logs: Vec<_> = layout
        .partitions
        .iter()
        .flat_map(|p| &p.segments)
        .map(|s| s.log_path.clone())
        .collect();
    for chunk in logs.chunks(1000) {
        let status = std::process::Command::new("cat")
            .args(chunk)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// What `check` does: analyses every partition, then reads the damaged ones again
/// for the salvage view. Generated segments must be whole (a real directory keeps
/// whatever damage its server left).
fn scan(root: &Path, whole: bool) -> u64 {
    let layout = discover(root).unwrap();
    let a = analyze_without_history(&layout, &|_| {}).unwrap();
    let report = CheckReport::new(&a).with_salvage_view(&a).unwrap();
    assert_eq!(report.partitions, a.partitions.len());
    // Generated partitions have no offsets folders or state log: only their segments
    // are whole.
    assert!(
        !whole
            || a.partitions
                .iter()
                .all(|p| p.segments.iter().all(|s| s.index.is_consistent()))
    );
    layout.log_bytes()
}

/// With `SCAN_BENCH_COLD=1` (root needed) every timed run starts with dropped page
/// caches, as after a reboot; the bytes then come from the disk.
fn drop_caches() {
    if std::env::var_os("SCAN_BENCH_COLD").is_some() {
        let _ = std::process::Command::new("sync").status();
        std::fs::write("/proc/sys/vm/drop_caches", "3").expect("drop caches (needs root)");
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mib = env_u64("SCAN_BENCH_MIB", 1024);
    let payload = env_u64("SCAN_BENCH_PAYLOAD", 1024);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let fixture = std::env::var_os("SCAN_BENCH_FIXTURE").map(std::path::PathBuf::from);
    match &fixture {
        Some(f) => {
            copy_fixture(f, &root, mib << 20);
            if std::env::var_os("SCAN_BENCH_TEAR").is_some() {
                tear_newest_logs(&root);
            }
        }
        None => generate(
            &root,
            mib << 20,
            payload,
            env_u64("SCAN_BENCH_PARTITIONS", 4),
            env_u64("SCAN_BENCH_SEGMENT_MIB", 64) << 20,
        ),
    }
    let bytes = plain_read(&root);
    let (mut reads, mut cats, mut scans) = (Vec::new(), Vec::new(), Vec::new());
    let (mut scan_cpu, mut cat_cpu) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        drop_caches();
        let t = Instant::now();
        assert_eq!(plain_read(&root), bytes);
        reads.push(t.elapsed());
        drop_caches();
        let (t, cpu) = (Instant::now(), children_cpu_time());
        cat(&root);
        cats.push(t.elapsed());
        let children_cpu = children_cpu_time() - cpu;
        drop_caches();
        let (t, cpu) = (Instant::now(), cpu_time());
        assert_eq!(scan(&root, fixture.is_none()), bytes);
        scans.push(t.elapsed());
        scan_cpu.push(cpu_time() - cpu);
        cat_cpu.push(children_cpu);
    }
    let (read, catted, scanned) = (median(reads), median(cats), median(scans));
    let gib = bytes as f64 / (1u64 << 30) as f64;
    match &fixture {
        Some(f) => println!(
            "scan_throughput: {gib:.2} GiB of logs, copies of {}{}",
            f.display(),
            match std::env::var_os("SCAN_BENCH_TEAR") {
                Some(_) => ", every newest log torn",
                None => "",
            }
        ),
        None => println!("scan_throughput: {gib:.2} GiB of logs, mean payload {payload} B"),
    }
    println!(
        "  plain read: {:.2} GiB/s ({read:?})",
        gib / read.as_secs_f64()
    );
    println!(
        "  cat:        {:.2} GiB/s ({catted:?})",
        gib / catted.as_secs_f64()
    );
    println!(
        "  scan:       {:.2} GiB/s ({scanned:?})",
        gib / scanned.as_secs_f64()
    );
    let (scan_cpu, cat_cpu) = (median(scan_cpu), median(cat_cpu));
    println!(
        "  CPU time: scan {scan_cpu:?} ({:.2} cores busy while it runs), cat {cat_cpu:?}: \
         {:.2}x",
        scan_cpu.as_secs_f64() / scanned.as_secs_f64(),
        scan_cpu.as_secs_f64() / cat_cpu.as_secs_f64()
    );
    println!(
        "  speed scan/read: {:.2}, scan/cat: {:.2} (scan takes {:.2}x the time of cat)",
        read.as_secs_f64() / scanned.as_secs_f64(),
        catted.as_secs_f64() / scanned.as_secs_f64(),
        scanned.as_secs_f64() / catted.as_secs_f64()
    );
}
