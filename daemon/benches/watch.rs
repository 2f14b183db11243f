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

use recovery::index::IndexEntry;
use recovery::message::{frame_checksum, MessageHeader, HEADER_LEN};
use recovery::scan::MessageMeta;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_iggy-warden");

struct Sidecar {
    child: Child,
    state: PathBuf,
    scraper: Option<Scraper>,
}

/// Scrapes the sidecar's metrics endpoint once a second until dropped.
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Scraper {
    fn start(addr: String) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut ok = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut conn) = std::net::TcpStream::connect(&addr) {
                    let _ = conn.write_all(
                        b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n",
                    );
                    let mut body = String::new();
                    if std::io::Read::read_to_string(&mut conn, &mut body).is_ok()
                        && body.ends_with("# EOF\n")
                    {
                        ok += 1;
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            ok
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

fn metrics_on() -> bool {
    std::env::var_os("WATCH_BENCH_METRICS").is_some_and(|v| v == "1")
}

impl Sidecar {
    fn spawn(data: &Path, state: &Path) -> Self {
        Self::spawn_with(data, state, &[])
    }

    fn spawn_with(data: &Path, state: &Path, extra: &[&str]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg("watch").args(extra);
        let mut scrape = None;
        if metrics_on() {
            let root = state.parent().expect("state dir has a parent");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            fs::create_dir_all(root.join("node")).expect("create textfile dir");
            let config = root.join("metrics.toml");
            fs::write(
                &config,
                format!(
                    "metrics_listen = \"127.0.0.1:{port}\"\nmetrics_textfile = \"{}\"\n",
                    root.join("node/iggy-warden.prom").display()
                ),
            )
            .expect("write config");
            cmd.env("IGGY_WARDEN_CONFIG", config);
            scrape = Some(format!("127.0.0.1:{port}"));
        }
        let child = cmd
            .arg("--data-dir")
            .arg(data)
            .arg("--state-dir")
            .arg(state)
            .env("IGGY_WARDEN_LOG", "warn")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start iggy-warden watch");
        Self {
            child,
            state: state.to_path_buf(),
            scraper: scrape.map(Scraper::start),
        }
    }

    fn status(&self) -> Option<String> {
        let mut conn = UnixStream::connect(self.state.join("sidecar.sock")).ok()?;
        conn.write_all(b"STATUS\n").ok()?;
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).ok()?;
        Some(line)
    }

    fn field(&self, name: &str) -> Option<String> {
        let line = self.status()?;
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    fn counter(&self, name: &str) -> u64 {
        self.field(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    fn wait(&mut self, what: &str, timeout: Duration, mut ok: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !ok(self) {
            if let Some(status) = self.child.try_wait().expect("poll sidecar") {
                panic!("sidecar exited ({status}) while waiting for {what}");
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_settled(&mut self, timeout: Duration) {
        self.wait("idle", timeout, |s| {
            s.field("state").as_deref() == Some("watching")
                && s.field("idle").as_deref() == Some("true")
                && s.field("sealing").as_deref() == Some("0")
        });
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        if let Some(scraper) = self.scraper.take() {
            let scrapes = scraper.finish();
            println!("metrics on: {scrapes} scrapes answered");
            assert!(scrapes > 0, "metrics were on but no scrape was answered");
        }
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

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

/// User + system CPU time of `pid`.
fn cpu_time(pid: u32) -> Duration {
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

/// One partition written the way iggy-server 0.6 writes it, files kept open.
struct Part {
    dir: PathBuf,
    start: u64,
    log_len: u64,
    next: u64,
    log: File,
    index: File,
}

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open segment file")
}

impl Part {
    fn create(root: &Path, stream: u32, topic: u32, partition: u32) -> Self {
        let dir = root.join(format!(
            "streams/{stream}/topics/{topic}/partitions/{partition}"
        ));
        fs::create_dir_all(&dir).expect("create partition");
        Self {
            log: open_append(&dir.join(format!("{:020}.log", 0))),
            index: open_append(&dir.join(format!("{:020}.index", 0))),
            dir,
            start: 0,
            log_len: 0,
            next: 0,
        }
    }

    /// Appends `n` messages of `payload` bytes: the log in one write, then the index.
    fn append(&mut self, n: usize, payload: &[u8], scratch: &mut Vec<u8>) {
        scratch.clear();
        let mut index = Vec::with_capacity(n * 16);
        for _ in 0..n {
            let at = scratch.len();
            let mut h = [0u8; HEADER_LEN];
            h[8..24].copy_from_slice(&(u128::from(self.next) + 1).to_le_bytes());
            h[24..32].copy_from_slice(&self.next.to_le_bytes());
            h[32..40].copy_from_slice(&(1_800_000_000_000_000 + self.next).to_le_bytes());
            h[40..48].copy_from_slice(&(1_800_000_000_000_000 + self.next).to_le_bytes());
            h[52..56].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            scratch.extend_from_slice(&h);
            scratch.extend_from_slice(payload);
            let sum = frame_checksum(&scratch[at..]).unwrap_or(0);
            scratch[at..at + 8].copy_from_slice(&sum.to_le_bytes());
            let end = self.log_len + (scratch.len() - at) as u64;
            let meta = MessageMeta {
                offset: self.next,
                start: self.log_len,
                end,
                timestamp: 1_800_000_000_000_000 + self.next,
                checksum: sum,
            };
            let entry = IndexEntry::for_message(&meta, self.start).expect("fits 32 bits");
            index.extend_from_slice(&entry.encode());
            self.log_len = end;
            self.next += 1;
        }
        self.log.write_all(scratch).expect("append log");
        self.index.write_all(&index).expect("append index");
    }

    fn rotate(&mut self) {
        self.start = self.next;
        self.log_len = 0;
        self.log = open_append(&self.dir.join(format!("{:020}.log", self.start)));
        self.index = open_append(&self.dir.join(format!("{:020}.index", self.start)));
    }
}

fn fresh(base: &Path, name: &str) -> (PathBuf, PathBuf) {
    let root = base.join(format!("watch-bench-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let data = root.join("data");
    let state = root.join("state");
    fs::create_dir_all(data.join("streams")).expect("create data dir");
    (data, state)
}

fn bench_events(base: &Path) {
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

fn bench_rss(base: &Path) {
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

fn bench_cpu(base: &Path) {
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
fn bench_coverage(base: &Path) {
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

/// Copies `fixture`'s topic 0 (3 partitions) into topics 0, 1, … of `data` until
/// their logs hold `total` bytes, with a state log naming them; gives the partition
/// folders.
fn copy_fixture_topics(fixture: &Path, data: &Path, total: u64) -> Vec<PathBuf> {
    fn copy_tree(from: &Path, to: &Path, logs: &mut u64) {
        fs::create_dir_all(to).expect("create folder");
        for entry in fs::read_dir(from).expect("read fixture folder") {
            let entry = entry.expect("fixture entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("file type").is_dir() {
                copy_tree(&entry.path(), &target, logs);
            } else {
                let n = fs::copy(entry.path(), &target).expect("copy fixture file");
                // Written by the server an hour before, not by this bench just now.
                let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
                File::options()
                    .write(true)
                    .open(&target)
                    .and_then(|f| f.set_modified(hour_ago))
                    .expect("date the copy back");
                if target.extension().is_some_and(|e| e == "log") {
                    *logs += n;
                }
            }
        }
    }
    let (mut copied, mut topic) = (0u64, 0u32);
    let mut partitions = Vec::new();
    while copied < total {
        let to = data.join(format!("streams/0/topics/{topic}"));
        copy_tree(&fixture.join("streams/0/topics/0"), &to, &mut copied);
        for entry in fs::read_dir(to.join("partitions")).expect("read partitions") {
            let dir = entry.expect("partition entry").path();
            // As the server leaves a partition it has started: the fixture, killed
            // before its first consumer, has none.
            for sub in ["offsets/consumers", "offsets/groups"] {
                fs::create_dir_all(dir.join(sub)).expect("create offsets folder");
            }
            partitions.push(dir);
        }
        topic += 1;
    }
    // The state folder names every copied topic, as the server's would.
    copy_tree(&fixture.join("state"), &data.join("state"), &mut 0);
    let named: Vec<(u32, u32, u32)> = (0..topic)
        .flat_map(|t| (0..3).map(move |p| (0, t, p)))
        .collect();
    let entries = harness::state_log::metadata_entries(&named, &[], &[], 1_700_000_000_000_000);
    fs::write(
        data.join("state/log"),
        harness::state_log::encode_log(&entries),
    )
    .expect("write state/log");
    partitions
}

/// How the bench tears each partition's newest log after the sidecar's crash.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tear {
    /// A message written in part after everything the sidecar verified, as a server
    /// killed in a write leaves it: the first 142 bytes of a message appended.
    Append,
    /// The last 7 bytes cut off, below the sidecar's last checkpoint: only a
    /// truncation does that within one boot (after a reboot checkpoints are ignored).
    Cut,
}

/// Tears the newest `.log` in partition folder `dir`.
fn tear_newest_log(dir: &Path, tear: Tear) {
    let newest = fs::read_dir(dir)
        .expect("read partition")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .expect("a .log in every partition");
    let len = fs::metadata(&newest).expect("stat log").len();
    let mut log = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&newest)
        .expect("open the log");
    match tear {
        Tear::Cut => log.set_len(len.saturating_sub(7)).expect("cut the log"),
        Tear::Append => {
            // The next message, begun: the head of the partition's first message
            // with the offset that follows the log's last one.
            let bytes = fs::read(&newest).expect("read the log");
            let mut at = 0usize;
            let mut next = None;
            while let Some(head) = bytes.get(at..at + HEADER_LEN) {
                let header = MessageHeader::parse(head.try_into().expect("a header"));
                at += header.frame_len() as usize;
                if at > bytes.len() {
                    break;
                }
                next = Some(header.offset + 1);
            }
            let mut head = vec![0u8; 142];
            File::open(dir.join(format!("{:020}.log", 0)))
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .expect("read a message head");
            // An empty newest segment (as the fixture's third partition has) starts at
            // the offset in its name.
            let start = newest
                .file_stem()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok())
                .expect("a segment name");
            head[24..32].copy_from_slice(&next.unwrap_or(start).to_le_bytes());
            log.seek(std::io::SeekFrom::End(0))
                .expect("seek to the end");
            log.write_all(&head).expect("append a torn message");
        }
    }
}

/// Two timings taken in turn over several rounds: the medians of each (seconds), and
/// of the second over the first round by round, with the least and the most.
struct InTurn {
    first: f64,
    second: f64,
    ratio: f64,
    ratio_min: f64,
    ratio_max: f64,
}

/// Runs `round` (given its number) `rounds` times; each returns its two timings.
fn in_turn(rounds: usize, mut round: impl FnMut(usize) -> (Duration, Duration)) -> InTurn {
    let (mut first, mut second, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..rounds {
        let (a, b) = round(n);
        ratios.push(b.as_secs_f64() / a.as_secs_f64());
        first.push(a.as_secs_f64());
        second.push(b.as_secs_f64());
    }
    for v in [&mut first, &mut second, &mut ratios] {
        v.sort_by(f64::total_cmp);
    }
    InTurn {
        first: first[rounds / 2],
        second: second[rounds / 2],
        ratio: ratios[rounds / 2],
        ratio_min: ratios[0],
        ratio_max: ratios[rounds - 1],
    }
}

/// One `replay` dry run as an operator runs it (text), its wall time.
fn replay_dry_run(data: &Path, state: &Path) -> Duration {
    timed_command("replay", data, state)
}

/// `iggy-warden <command>` on `data` and `state` as an operator runs it (text), its
/// wall time; it must exit 0 (for `recover`: the server may start).
fn timed_command(command: &str, data: &Path, state: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new(BIN)
        .arg(command)
        .arg("--data-dir")
        .arg(data)
        .arg("--state-dir")
        .arg(state)
        .env("IGGY_WARDEN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run iggy-warden {command}: {e}"));
    let wall = started.elapsed();
    assert!(status.success(), "{command} failed: {status}");
    wall
}

/// `iggy-warden journal show` past the journal's last record, its wall time: a
/// process that opens the journal as a dry run does (a copy) and shows nothing.
fn journal_opened_alone(state: &Path) -> Duration {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["journal", "show", "--since", &u64::MAX.to_string()])
        .arg("--state-dir")
        .arg(state)
        .env("IGGY_WARDEN_LOG", "warn")
        .stderr(Stdio::null())
        .output()
        .expect("run iggy-warden journal show");
    let wall = started.elapsed();
    assert!(out.status.success(), "journal show failed: {}", out.status);
    assert!(
        out.stdout.is_empty(),
        "a record past the journal's last one"
    );
    wall
}

/// The repairs a `replay` dry run plans (its JSON).
fn planned_repairs(data: &Path, state: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("replay")
        .arg("--json")
        .arg("--data-dir")
        .arg(data)
        .arg("--state-dir")
        .arg(state)
        .env("IGGY_WARDEN_LOG", "warn")
        .stderr(Stdio::null())
        .output()
        .expect("run iggy-warden replay --json");
    assert!(out.status.success(), "replay failed: {}", out.status);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("replay's JSON");
    json["plan"]["actions"].clone()
}

fn bench_replay(base: &Path) {
    let mib: u64 = std::env::var("WATCH_BENCH_REPLAY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    const ROUNDS: usize = 5;
    let (data, state) = fresh(base, "replay");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/iggy-0.6.0/killed-under-load");
    let partitions = copy_fixture_topics(&fixture, &data, mib << 20);
    // As at every start of the server (`ExecStartPre`): the fixture's own damage is
    // repaired, and the offsets folders' listings journaled (of folders unchanged for
    // the 2 s before, as the server's are at any start but its first).
    std::thread::sleep(Duration::from_millis(2500));
    let recovered = Command::new(BIN)
        .arg("recover")
        .arg("--data-dir")
        .arg(&data)
        .arg("--state-dir")
        .arg(&state)
        .env("IGGY_WARDEN_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .expect("run iggy-warden recover");
    assert!(recovered.success(), "recover at start: {recovered}");
    let mut sidecar = Sidecar::spawn_with(&data, &state, &["--coverage-mib-per-sec", "1000000"]);
    sidecar.wait("the coverage pass", Duration::from_secs(600), |s| {
        s.field("state").as_deref() == Some("watching")
            && s.field("idle").as_deref() == Some("true")
            && s.counter("coverage_segments_left") == 0
    });
    // As the issue measured it: ten seconds with no writes, then a crash.
    std::thread::sleep(Duration::from_secs(10));
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(sidecar.pid() as i32, libc::SIGKILL) };
    let _ = sidecar.child.wait();
    let tear = match std::env::var("WATCH_BENCH_REPLAY_TEAR").as_deref() {
        Ok("cut") => Tear::Cut,
        _ => Tear::Append,
    };
    for dir in &partitions {
        tear_newest_log(dir, tear);
    }
    let no_journal = data.parent().unwrap_or(&data).join("no-journal");
    // Warm the page cache and check that both plan the same repairs.
    let guided_plan = planned_repairs(&data, &state);
    assert_eq!(
        guided_plan,
        planned_repairs(&data, &no_journal),
        "the two runs planned differently"
    );
    let repairs = guided_plan.as_array().map_or(0, Vec::len);
    assert!(repairs >= partitions.len(), "a repair per torn partition");
    assert!(!no_journal.exists(), "a dry run wrote a state folder");
    let cold = std::env::var_os("WATCH_BENCH_REPLAY_COLD").is_some();
    let drop_caches = || {
        if cold {
            let _ = Command::new("sync").status();
            fs::write("/proc/sys/vm/drop_caches", "3").expect("drop caches (needs root)");
        }
    };
    let timed = in_turn(ROUNDS, |_| {
        drop_caches();
        let guided = replay_dry_run(&data, &state);
        drop_caches();
        (guided, replay_dry_run(&data, &no_journal))
    });
    println!(
        "replay: {} partitions, {mib} MiB of the killed-under-load fixture, sidecar covered \
         everything then SIGKILLed, every newest log torn ({}; {repairs} repairs planned), \
         {}: dry run with the journal {:.3} s, with none {:.3} s (medians of {ROUNDS}); with \
         none vs with the journal, in turn: median {:.1}x, from {:.1}x to {:.1}x",
        partitions.len(),
        match tear {
            Tear::Append => "a message appended in part",
            Tear::Cut => "7 bytes cut",
        },
        if cold {
            "page cache dropped before each run"
        } else {
            "page-cached"
        },
        timed.first,
        timed.second,
        timed.ratio,
        timed.ratio_min,
        timed.ratio_max
    );
    // What any guided dry run pays before it reads a segment, timed in turn: the
    // journal's open (a process that opens the journal's copy and shows no record)
    // and the listing of the tree (in this process), which the full scan pays too.
    let floor = in_turn(ROUNDS, |_| {
        drop_caches();
        let journal = journal_opened_alone(&state);
        drop_caches();
        let started = Instant::now();
        let listed = recovery::layout::discover(&data).expect("list the data directory");
        assert_eq!(
            listed.partitions.len(),
            partitions.len(),
            "every partition listed"
        );
        (journal, started.elapsed())
    });
    println!(
        "replay floor: the journal's open alone {:.3} s (`journal show` past its last record: \
         the process, the journal copied and opened), listing the tree alone {:.3} s (in this \
         process; the full scan lists it too): a guided run doing nothing else would be {:.1}x \
         faster than the full scan (medians of {ROUNDS})",
        floor.first,
        floor.second,
        timed.second / (floor.first + floor.second)
    );
    // The second measure: `recover` end to end, as at the server's start,
    // against the journal-guided dry run of the same torn directory, in turn. Each
    // round after the first tears the repaired logs again, as the next crash would.
    let timed = in_turn(ROUNDS, |round| {
        if round > 0 {
            for dir in &partitions {
                tear_newest_log(dir, tear);
            }
            assert_eq!(
                planned_repairs(&data, &state)
                    .as_array()
                    .map_or(0, Vec::len),
                repairs,
                "torn again, the same repairs"
            );
        }
        drop_caches();
        let g = replay_dry_run(&data, &state);
        drop_caches();
        let r = timed_command("recover", &data, &state);
        let record: serde_json::Value = serde_json::from_slice(
            &fs::read(state.join("last-recover.json")).expect("recover's record"),
        )
        .expect("recover's record is JSON");
        assert_eq!(
            record["repairs"], repairs,
            "recover made the planned repairs"
        );
        assert_eq!(
            planned_repairs(&data, &state),
            serde_json::json!([]),
            "recover left repairs to make"
        );
        (g, r)
    });
    println!(
        "recover: the same {repairs} repairs made (as at the server's start, with the journal) \
         {:.3} s against the guided dry run's {:.3} s (medians of {ROUNDS}); in turn: median \
         {:.1}x, from {:.1}x to {:.1}x",
        timed.second, timed.first, timed.ratio, timed.ratio_min, timed.ratio_max
    );
    if std::env::var_os("WATCH_BENCH_KEEP").is_some() {
        for dir in &partitions {
            tear_newest_log(dir, tear);
        }
        println!("left torn in {}", data.display());
    } else {
        let _ = fs::remove_dir_all(data.parent().unwrap_or(&data));
    }
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
        bench_events(&base);
    }
    if wants("rss") {
        bench_rss(&base);
    }
    if wants("cpu") {
        bench_cpu(&base);
    }
    if wants("coverage") {
        bench_coverage(&base);
    }
    if wants("replay") {
        bench_replay(&base);
    }
}
