//! Benchmarks of `iggy-warden watch`, measured on the real binary from the outside.
//!
//! `cargo bench -p iggy-warden --bench watch [events|rss|cpu|coverage|replay]` (all by
//! default):
//!
//! - `events`: segment events journaled per second. 1,000 partitions rotate 20 times
//!   each as fast as this process can (each rotation: one message appended, then the
//!   next empty pair created, as iggy-server does); every rotation is journaled as
//!   `SealIntent`, `SegmentOpened` and `Sealed`. Rate = records journaled ÷ time from
//!   the first rotation until the sidecar has sealed everything; on a small machine
//!   the generator itself bounds that, so the sidecar's CPU time per event is printed
//!   too (events per CPU-second: its capacity on one dedicated core).
//! - `rss`: resident memory while watching 10,000 partitions (two segments each, one
//!   sealed, one open), after the start-up reconciliation; peak (VmHWM) too.
//! - `cpu`: CPU time of the sidecar while a writer appends 200 MB/s spread over 100
//!   partitions (1 KiB messages, each partition written 10 times a second, log then
//!   index, 8 MiB segments so that rotations happen), as a share of one core. Printed
//!   beside it, from the same run: the floor any verification of every byte pays, the
//!   CPU this process takes to read the same logs once (128 KiB reads) and hash each
//!   message; and the CPU of `check`'s analysis of the same files in this process
//!   (framing, hashing and each message against its index entry, as the sidecar
//!   verifies them).
//! - `coverage`: the background coverage pass over 64 open segments written before
//!   the sidecar starts (`WATCH_BENCH_COVER_MIB`, default 1024): with the rate
//!   lifted, its time and CPU against the same floor; then at the default rate
//!   (`WATCH_BENCH_COVER_RATE_MIB`, default 32) while a writer appends 50 MB/s to 20
//!   other partitions, the time against what the rate allows and the sidecar's share
//!   of a core. At 10 GiB and the default rate the writer alone would write 16 GB:
//!   more than a tmpfs of this machine holds.
//!
//! - `replay`: the first measure, as an operator meets it. The real
//!   `killed-under-load` fixture (messages of about 165 bytes, as iggy-server 0.6.0
//!   wrote them) copied into topics of 3 partitions up to `WATCH_BENCH_REPLAY_MIB`
//!   (default 1024: 447 partitions); `recover` runs as at the server's start, the
//!   sidecar starts on it, its coverage pass
//!   (rate lifted) verifies every segment, 10 s pass, it is SIGKILLed, and every
//!   partition's newest log is torn: a message written in part is appended (as a
//!   server killed in a write leaves it), or with `WATCH_BENCH_REPLAY_TEAR=cut` its
//!   last 7 bytes are cut off, below the last checkpoint. Then the `replay` dry run
//!   (text, as an operator runs it) with the sidecar's journal and with none (an
//!   empty state folder: a full scan), timed in turn over 5 rounds on the page-cached
//!   files; both must plan the same repairs (their JSON compared). Beside them, in
//!   turn, what any guided run pays before it reads a segment: the journal's open
//!   alone (`journal show` past its last record) and the listing of the tree alone
//!   (`layout::discover` in this process; a guided run may take some offsets
//!   folders' listings from the journal instead: by hand, its listing took about as
//!   long), with the ratio to the full scan a guided run doing nothing else would
//!   reach. The copies are
//!   dated an hour back, as files the server wrote before the sidecar started;
//!   `WATCH_BENCH_KEEP=1` leaves the folder in place, torn again as the timed runs
//!   found it (to profile a run by hand).
//!   Then the second measure: `recover` (as at the server's start, with the
//!   journal) against the journal-guided dry run of the same torn directory, in turn
//!   over 5 rounds, each round after the first tearing the repaired logs again; each
//!   `recover` must record the planned repairs made, and a dry run after it plan
//!   nothing.
//!   `WATCH_BENCH_REPLAY_COLD=1` drops the page cache before every timed run, as
//!   after a reboot (needs root, and `WATCH_BENCH_DIR` on a disk: tmpfs keeps its
//!   files in the page cache).
//!
//! Data lives in `$WATCH_BENCH_DIR` (default: /dev/shm, so the disk does not throttle
//! the writer; inotify and the page cache behave the same on tmpfs).
//!
//! `WATCH_BENCH_METRICS=1` runs the sidecar with metrics on: an HTTP endpoint and a
//! node_exporter textfile (default refresh, 5 s), and this process scrapes the
//! endpoint once a second, as a Prometheus with a 1 s scrape interval would.

mod cpu;
mod events;
mod replay;
mod sidecar;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_iggy-warden");

/// User + system CPU time of `pid`.
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

pub(crate) fn fresh(base: &Path, name: &str) -> (PathBuf, PathBuf) {
    let root = base.join(format!("watch-bench-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let data = root.join("data");
    let state = root.join("state");
    fs::create_dir_all(data.join("streams")).expect("create data dir");
    (data, state)
}

fn main() {
    let base = std::env::var_os("WATCH_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"));
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if wants("events") {
        events::bench_events(&base);
    }
    if wants("rss") {
        events::bench_rss(&base);
    }
    if wants("cpu") {
        cpu::bench_cpu(&base);
    }
    if wants("coverage") {
        cpu::bench_coverage(&base);
    }
    if wants("replay") {
        replay::bench_replay(&base);
    }
}
