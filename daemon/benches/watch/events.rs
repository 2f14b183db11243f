//! `events` and `rss`: segment events journaled per second, and resident memory
//! while watching 10,000 partitions.

use crate::sidecar::Sidecar;
use crate::writer::Part;
use crate::{cpu_time, fresh};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// (VmRSS, VmHWM) in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

pub(crate) fn bench_events(base: &Path) {
    const PARTITIONS: u32 = 1000;
    const ROUNDS: usize = 20;
    let (data, state) = fresh(base, "events");
    let mut parts: Vec<Part> = (0..PARTITIONS)
        .map(|p| Part::create(&data, p / 100, 0, p % 100))
        .collect();
    let mut sidecar = Sidecar::spawn(&data, &state);
    sidecar.wait_settled(Duration::from_secs(60));
    let before = sidecar.counter("journaled");
    let cpu_before = cpu_time(sidecar.pid());
    let payload = vec![7u8; 100];
    let mut scratch = Vec::new();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for p in &mut parts {
            p.append(1, &payload, &mut scratch);
            p.rotate();
        }
    }
    let generated = started.elapsed();
    let expected = before + 3 * u64::from(PARTITIONS) * ROUNDS as u64;
    sidecar.wait("every rotation journaled", Duration::from_secs(120), |s| {
        s.counter("journaled") >= expected && s.field("sealing").as_deref() == Some("0")
    });
    let elapsed = started.elapsed();
    let cpu = cpu_time(sidecar.pid()) - cpu_before;
    let journaled = sidecar.counter("journaled") - before;
    let overflows = sidecar.counter("overflows");
    println!(
        "events: {} rotations of {PARTITIONS} partitions generated in {:.2} s; {journaled} \
         records journaled in {:.2} s: {:.0} segment events/s end to end; sidecar CPU {:.2} s \
         (all threads): {:.0} events per CPU-second ({} queue overflows)",
        ROUNDS * PARTITIONS as usize,
        generated.as_secs_f64(),
        elapsed.as_secs_f64(),
        journaled as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64(),
        journaled as f64 / cpu.as_secs_f64().max(1e-9),
        overflows
    );
    sidecar.stop();
    let _ = fs::remove_dir_all(data.parent().unwrap_or(&data));
}

pub(crate) fn bench_rss(base: &Path) {
    const PARTITIONS: u32 = 10_000;
    let (data, state) = fresh(base, "rss");
    let payload = vec![3u8; 200];
    let mut scratch = Vec::new();
    for p in 0..PARTITIONS {
        let mut part = Part::create(&data, p / 1000, p % 10, (p / 10) % 100);
        part.append(10, &payload, &mut scratch);
        part.rotate();
        part.append(5, &payload, &mut scratch);
    }
    let started = Instant::now();
    let mut sidecar = Sidecar::spawn(&data, &state);
    sidecar.wait_settled(Duration::from_secs(300));
    let ready = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let (rss, hwm) = memory_kib(sidecar.pid());
    println!(
        "rss: watching {} partitions ({} segments): RSS {:.1} MiB (peak {:.1} MiB); start-up \
         reconciliation and verification took {:.2} s",
        sidecar.counter("partitions"),
        sidecar.counter("segments"),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        ready.as_secs_f64()
    );
    sidecar.stop();
    let _ = fs::remove_dir_all(data.parent().unwrap_or(&data));
}
