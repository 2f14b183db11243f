//! Long-run size test: 1,000,000 segment lifecycles (opened, sealed, deleted: three
//! records each) appended in batches, with a compaction every 10,000 lifecycles
//! (`IWJ_COMPACT_EVERY` overrides), printing throughput and the journal directory's
//! size on disk. sled never gives back file space it has used, so the size follows
//! the most the journal ever held at once, which the compaction interval bounds.
//!
//! A plain `main` (`harness = false`): `cargo bench` passes `--bench` and gets the full
//! run; `cargo test --benches` passes nothing and gets a 2,000-cycle smoke run.

use journal::{Journal, PartitionId, Record};
use std::time::Instant;

const BATCH_CYCLES: u64 = 1_000;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let compact_every: u64 = std::env::var("IWJ_COMPACT_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (cycles, compact_every) = if full {
        (1_000_000u64, compact_every)
    } else {
        (2_000, 1_000)
    };
    let report_every = (cycles / 10).max(compact_every);
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = Journal::open(dir.path()).expect("open");
    let start = Instant::now();
    let mut compact_secs = 0.0;
    let mut done = 0u64;
    while done < cycles {
        let batch: Vec<Record> = (done..done + BATCH_CYCLES)
            .flat_map(|i| {
                let segment = PartitionId::new(1, 1, (i % 16) as u32).segment(i);
                [
                    Record::SegmentOpened { segment },
                    Record::Sealed {
                        segment,
                        log_len: 1 << 20,
                        index_len: 16 * 1024,
                        last_offset: Some(i * 1000 + 999),
                        last_checksum: Some(i),
                        last_start: None,
                    },
                    Record::SegmentDeleted { segment },
                ]
            })
            .collect();
        journal.append_batch(batch).expect("append_batch");
        done += BATCH_CYCLES;
        if done % compact_every == 0 {
            let t = Instant::now();
            let report = journal.compact().expect("compact");
            compact_secs += t.elapsed().as_secs_f64();
            if done % report_every != 0 {
                continue;
            }
            println!(
                "cycles {done:>9}: {:>7.0} records/s overall, compaction dropped {} records in {:.2} s, \
                 size {:.1} MiB -> {:.1} MiB",
                (done * 3) as f64 / start.elapsed().as_secs_f64(),
                report.records_dropped,
                t.elapsed().as_secs_f64(),
                mib(report.size_before),
                mib(report.size_after)
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let report = journal.verify().expect("verify");
    assert!(report.is_sound(), "{report}");
    assert_eq!(journal.last_seq().expect("last_seq"), cycles * 3);
    let live = journal.all_segment_states().expect("states").len();
    drop(journal);
    // Reopen so the size includes whatever sled writes on close.
    let journal = Journal::open(dir.path()).expect("reopen");
    println!(
        "{cycles} cycles ({} records) in {elapsed:.1} s ({:.0} records/s, {compact_secs:.1} s compacting); \
         {live} live segments, {} records left; journal directory {:.2} MiB on disk",
        cycles * 3,
        (cycles * 3) as f64 / elapsed,
        journal.records_since(0).count(),
        mib(journal.disk_size().expect("size"))
    );
}
