//! Salvage throughput against `cp` of the same files, in one run.
//!
//! Lays the committed race capture (what the 0.6.0 rotation race leaves: misplaced
//! batches, zero holes, ghost index entries) into `SALVAGE_BENCH_PARTITIONS`
//! partitions (default 80, about 250 MiB), page-cached, then times `cp -r` of the
//! data directory and a salvage of every partition (analysis, plan, execution with
//! fsyncs) on another copy. Prints MB/s of each and their ratio.
//! Run: `cargo bench -p iggy-warden-recovery --bench salvage`

use journal::Journal;
use recovery::execute::Executor;
use recovery::fsops::StdFs;
use recovery::pipeline::{run, Quiet, Request};
use recovery::plan::Mode;
use recovery::quarantine::Quarantine;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() {
    let partitions: u32 = std::env::var("SALVAGE_BENCH_PARTITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(80);
    let tmp = tempfile::tempdir_in(std::env::var_os("SALVAGE_BENCH_DIR").unwrap_or(".".into()))
        .expect("tmp");
    let source = tmp.path().join("source");
    let capture = harness::fixture(harness::fixtures::RACE_ROTATION);
    harness::copy_dir(&capture.join("state"), &source.join("state")).unwrap();
    let one = capture.join("streams/0/topics/0/partitions/0");
    for p in 0..partitions {
        let dir = source.join(format!("streams/0/topics/0/partitions/{p}"));
        harness::copy_dir(&one, &dir).unwrap();
        for sub in ["offsets/consumers", "offsets/groups"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
    }
    let bytes = dir_bytes(&source);
    // Warm the page cache and make the two copies the timed runs use.
    let cp = |to: &Path| {
        let ok = Command::new("cp")
            .arg("-r")
            .arg(&source)
            .arg(to)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    cp(&tmp.path().join("warm"));
    let started = Instant::now();
    cp(&tmp.path().join("copied"));
    let cp_secs = started.elapsed().as_secs_f64();

    let data = tmp.path().join("warm");
    let state = tmp.path().join("state");
    let journal = Journal::open(&state.join("journal")).unwrap();
    let quarantine = Quarantine::new(&state);
    let exec = Executor {
        data_dir: &data,
        quarantine: &quarantine,
        fs: &StdFs,
        log: &journal,
    };
    let known = HashMap::new();
    let started = Instant::now();
    let outcome = run(
        &exec,
        &Request {
            mode: Mode::Salvage,
            known: &known,
            state_log: None,
            offsets: None,
            only: &|_| true,
            progress: &Quiet,
        },
    )
    .unwrap();
    let salvage_secs = started.elapsed().as_secs_f64();
    assert!(outcome.ready_to_start);
    let kept: u64 = outcome.partitions.iter().map(|p| p.messages_kept).sum();
    assert_eq!(kept, 18_000 * u64::from(partitions));

    let mb = bytes as f64 / 1e6;
    println!(
        "salvage of {partitions} race-damaged partitions, {mb:.0} MB: {:.0} MB/s ({salvage_secs:.2} s); \
         cp -r: {:.0} MB/s ({cp_secs:.2} s); salvage takes {:.2}x the time of cp",
        mb / salvage_secs,
        mb / cp_secs,
        salvage_secs / cp_secs
    );
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    n
}
