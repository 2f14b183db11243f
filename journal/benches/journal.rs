//! Criterion benchmarks of durable appends: every measured append returned only after
//! a flush (fsync) covered it.
//!
//! - `group_commit/N`: N threads appending one record at a time; throughput is
//!   flushed records per second, the figure group commit exists for.
//! - `append_latency`: one thread, one record, one flush: the latency a lone event pays.
//! - `append_batch/100`: one thread appending 100 records per flush.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use journal::{Journal, PartitionId, Record};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn checkpoint() -> Record {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Record::Checkpoint {
        segment: PartitionId::new(1, 1, (n % 64) as u32).segment(0),
        valid_len: n * 4096,
        next_offset: n,
    }
}

fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_commit");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for threads in [1u64, 8, 16, 64] {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Arc::new(Journal::open(dir.path()).expect("open"));
        group.throughput(Throughput::Elements(threads));
        group.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                // One "iteration" is one append by each of the threads, so throughput is
                // reported as records per second.
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..threads)
                        .map(|_| {
                            let journal = Arc::clone(&journal);
                            std::thread::spawn(move || {
                                for _ in 0..iters {
                                    journal.append(checkpoint()).expect("append");
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.join().expect("appender");
                    }
                    start.elapsed()
                });
            },
        );
        let stats = journal.stats();
        println!(
            "group_commit/{threads}: {} records in {} flushes ({:.1} records per flush); \
             per round {:.0} us writing, {:.0} us flushing",
            stats.appended,
            stats.flushes,
            stats.appended as f64 / stats.flushes.max(1) as f64,
            stats.write_time.as_secs_f64() * 1e6 / stats.flushes.max(1) as f64,
            stats.flush_time.as_secs_f64() * 1e6 / stats.flushes.max(1) as f64
        );
    }
    group.finish();
}

fn append_latency(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(dir.path()).expect("open");
    let mut group = c.benchmark_group("append_latency");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("single", |b| {
        b.iter(|| journal.append(checkpoint()).expect("append"))
    });
    group.finish();
}

fn append_batch(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(dir.path()).expect("open");
    let mut group = c.benchmark_group("append_batch");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(100));
    group.bench_function("100", |b| {
        b.iter(|| {
            let batch = (0..100).map(|_| checkpoint()).collect();
            journal.append_batch(batch).expect("append_batch")
        })
    });
    group.finish();
}

criterion_group!(benches, group_commit, append_latency, append_batch);
criterion_main!(benches);
