//! `cpu` and `coverage`: the sidecar's CPU while a writer appends, and its
//! background coverage pass, each against the floor of reading and hashing the
//! same bytes once.

use crate::sidecar::Sidecar;
use crate::writer::Part;
use crate::{cpu_time, fresh};
use recovery::message::{frame_checksum, HEADER_LEN};
use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant};

/// The floor of verifying every byte: reads every `.log` under `root` once, in the
/// sidecar's read size, and hashes each `frame`-byte message. Returns the CPU time
/// and the bytes read.
fn read_and_hash_logs(root: &Path, frame: usize) -> (Duration, u64) {
    use std::io::Read;
    let mut logs = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("list bench data").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                logs.push(path);
            }
        }
    }
    let mut buf = vec![0u8; 128 << 10];
    let (mut bytes, mut sums) = (0u64, 0u64);
    // This process runs no other thread: its CPU time is the loop's.
    let me = std::process::id();
    let before = cpu_time(me);
    for log in logs {
        let mut file = File::open(log).expect("open log");
        let mut filled = 0;
        loop {
            let n = file.read(&mut buf[filled..]).expect("read log");
            filled += n;
            let whole = filled / frame * frame;
            for message in buf[..whole].chunks(frame) {
                sums = sums.wrapping_add(frame_checksum(message).unwrap_or(0));
            }
            buf.copy_within(whole..filled, 0);
            filled -= whole;
            bytes += n as u64;
            if n == 0 {
                break;
            }
        }
    }
    let cpu = cpu_time(me) - before;
    std::hint::black_box(sums);
    (cpu, bytes)
}

pub(crate) fn bench_cpu(base: &Path) {
    const PARTITIONS: u32 = 100;
    const RATE: u64 = 200 << 20;
    const TICKS_PER_S: u64 = 10;
    const SEGMENT: u64 = 8 << 20;
    const SECONDS: u64 = 10;
    let (data, state) = fresh(base, "cpu");
    let mut parts: Vec<Part> = (0..PARTITIONS)
        .map(|p| Part::create(&data, 0, p / 10, p % 10))
        .collect();
    let mut sidecar = Sidecar::spawn(&data, &state);
    sidecar.wait_settled(Duration::from_secs(60));
    let payload: Vec<u8> = (0..1024u32).map(|i| (i * 31) as u8).collect();
    let frame = (HEADER_LEN + payload.len()) as u64;
    let per_batch = (RATE / TICKS_PER_S / u64::from(PARTITIONS) / frame).max(1) as usize;
    let mut scratch = Vec::new();
    let cpu_before = cpu_time(sidecar.pid());
    let started = Instant::now();
    let mut written = 0u64;
    let mut rotations = 0;
    let tick = Duration::from_millis(1000 / TICKS_PER_S);
    let mut next = started;
    while started.elapsed() < Duration::from_secs(SECONDS) {
        for p in &mut parts {
            p.append(per_batch, &payload, &mut scratch);
            written += per_batch as u64 * frame;
            if p.log_len >= SEGMENT {
                p.rotate();
                rotations += 1;
            }
        }
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let wall = started.elapsed();
    // The sidecar's work for these bytes ends with their verification.
    sidecar.wait_settled(Duration::from_secs(60));
    let cpu = cpu_time(sidecar.pid()) - cpu_before;
    let settled = started.elapsed();
    let (floor, floor_bytes) = read_and_hash_logs(&data, frame as usize);
    println!(
        "cpu: writer appended {:.0} MB/s ({} MB, {rotations} rotations) to {PARTITIONS} \
         partitions for {:.1} s; sidecar used {:.3} s CPU until settled at {:.1} s: {:.2} % of one \
         core over the writing time",
        written as f64 / wall.as_secs_f64() / 1e6,
        written / 1_000_000,
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        settled.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    );
    println!(
        "cpu: floor: reading the same {} MB once and hashing each message took {:.3} s CPU \
         ({:.2} % of one core over the writing time); the sidecar used {:.1}x that",
        floor_bytes / 1_000_000,
        floor.as_secs_f64(),
        100.0 * floor.as_secs_f64() / wall.as_secs_f64(),
        cpu.as_secs_f64() / floor.as_secs_f64().max(1e-9)
    );
    let check = check_cpu(&data);
    println!(
        "cpu: `check`'s analysis of the same files (listing, framing, hashing, each message \
         against its index entry) took {:.3} s CPU in this process; the sidecar used {:.1}x that",
        check.as_secs_f64(),
        cpu.as_secs_f64() / check.as_secs_f64().max(1e-9)
    );
    sidecar.stop();
    let _ = fs::remove_dir_all(data.parent().unwrap_or(&data));
}

/// The CPU time of `check`'s analysis of `data` (every thread of this process, which
/// runs no other work meanwhile): what verifying every message once costs beside the
/// reading and hashing of the floor.
fn check_cpu(data: &Path) -> Duration {
    let me = std::process::id();
    let before = cpu_time(me);
    let dir = recovery::layout::discover(data).expect("list the bench data");
    let analysis =
        recovery::guided::analyze_without_history(&dir, &|_| {}).expect("analyze the bench data");
    let cpu = cpu_time(me) - before;
    let messages: u64 = analysis.partitions.iter().map(|p| p.valid_messages()).sum();
    assert!(messages > 0, "the analysis found the messages written");
    cpu
}

/// Bytes `pid` made the storage layer fetch (`read_bytes` of /proc/PID/io: 0 on
/// tmpfs and for pages already cached).
fn disk_reads(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("read_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The background coverage pass over open segments written before the sidecar
/// started: first with the rate lifted (its speed and CPU against the floor of
/// reading and hashing the same bytes once), then at the default rate while a writer
/// appends to other partitions (its share of a core, and that it keeps the rate).
pub(crate) fn bench_coverage(base: &Path) {
    const PARTITIONS: u32 = 64;
    let mib: u64 = std::env::var("WATCH_BENCH_COVER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let (data, state) = fresh(base, "coverage");
    let payload: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    let frame = (HEADER_LEN + payload.len()) as u64;
    let per_partition = (mib << 20) / u64::from(PARTITIONS) / frame;
    let mut scratch = Vec::new();
    for p in 0..PARTITIONS {
        let mut part = Part::create(&data, 1, 0, p);
        let mut left = per_partition;
        while left > 0 {
            let n = left.min(1024);
            part.append(n as usize, &payload, &mut scratch);
            left -= n;
        }
    }
    let total = per_partition * frame * u64::from(PARTITIONS);
    let covered = |s: &Sidecar| {
        s.field("state").as_deref() == Some("watching")
            && s.counter("coverage_segments_left") == 0
            && s.counter("coverage_bytes_verified") >= total
    };

    let started = Instant::now();
    let mut sidecar = Sidecar::spawn_with(&data, &state, &["--coverage-mib-per-sec", "1000000"]);
    sidecar.wait("the coverage pass", Duration::from_secs(600), covered);
    let wall = started.elapsed();
    let (cpu, reads) = (cpu_time(sidecar.pid()), disk_reads(sidecar.pid()));
    sidecar.stop();
    let (floor, _) = read_and_hash_logs(&data, frame as usize);
    let gib = total as f64 / f64::from(1u32 << 30);
    println!(
        "coverage: {gib:.2} GiB in {PARTITIONS} open segments, rate lifted: covered in {:.2} s \
         ({:.2} GiB/s), sidecar CPU {:.2} s from its start ({:.1}x the floor: reading and \
         hashing the same bytes once took {:.2} s CPU), {} MB read from the disk",
        wall.as_secs_f64(),
        gib / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() / floor.as_secs_f64().max(1e-9),
        floor.as_secs_f64(),
        reads / 1_000_000
    );

    // The default rate (or `WATCH_BENCH_COVER_RATE_MIB`, so that 10 GiB need not
    // take five minutes), with a writer appending 50 MB/s to 20 other partitions.
    let rate: u64 = std::env::var("WATCH_BENCH_COVER_RATE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    fs::remove_dir_all(&state).expect("remove the state dir");
    let mut writers: Vec<Part> = (0..20).map(|p| Part::create(&data, 2, 0, p)).collect();
    let per_tick = ((50u64 << 20) / 10 / 20 / frame).max(1) as usize;
    let started = Instant::now();
    let sidecar = Sidecar::spawn_with(
        &data,
        &state,
        &["--coverage-mib-per-sec", &rate.to_string()],
    );
    let mut written = 0u64;
    let mut next = started;
    while !covered(&sidecar) {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the pass took too long"
        );
        for w in &mut writers {
            w.append(per_tick, &payload, &mut scratch);
            written += per_tick as u64 * frame;
        }
        next += Duration::from_millis(100);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let wall = started.elapsed();
    let (cpu, reads) = (cpu_time(sidecar.pid()), disk_reads(sidecar.pid()));
    sidecar.stop();
    let expected = total as f64 / (rate << 20) as f64;
    println!(
        "coverage: {gib:.2} GiB at {rate} MiB/s while a writer appended {:.0} MB/s: covered in \
         {:.1} s ({:.2}x the {expected:.1} s the rate allows), sidecar CPU {:.1} % of a core \
         over that time (pass and writes together), {} MB read from the disk",
        written as f64 / wall.as_secs_f64() / 1e6,
        wall.as_secs_f64(),
        wall.as_secs_f64() / expected,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        reads / 1_000_000
    );
    let _ = fs::remove_dir_all(data.parent().unwrap_or(&data));
}
