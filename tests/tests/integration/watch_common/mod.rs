//! Shared by the `watch_*` tests: a running sidecar process, a live writer that
//! appends and rotates segments the way iggy-server 0.6 does, a systemd notification
//! socket, and the check that the journal agrees with the disk.

use crate::BIN;
use harness::format::{encode_message, index_entry, Message};
use harness::layout::{partition_rel_dir, segment_file_name};
use harness::writer::Rng;
use harness::BuiltDir;
use journal::{Journal, SegmentKey, SegmentPhase, SegmentState};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// A running `iggy-warden watch`.
pub struct Sidecar {
    pub child: Child,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl Sidecar {
    /// Starts the sidecar with a 100 ms checkpoint interval; its stderr goes to `log`.
    pub fn spawn(data: &Path, state: &Path, log: &Path, envs: &[(&str, &str)]) -> Self {
        Self::spawn_with(data, state, log, envs, &["--checkpoint-interval-ms", "100"])
    }

    /// Starts the sidecar with `args` after the directories (a checkpoint interval
    /// among them); its stderr goes to `log`.
    pub fn spawn_with(
        data: &Path,
        state: &Path,
        log: &Path,
        envs: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["watch", "--data-dir", s(data), "--state-dir", s(state)])
            .args(args)
            .env("IGGY_WARDEN_LOG", "info")
            .env_remove("STATE_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Self {
            child: cmd.spawn().unwrap(),
            state: state.to_path_buf(),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One command on the control socket; `None` when nobody answers (yet).
    pub fn control(&self, command: &str) -> Option<String> {
        control(&self.state, command)
    }

    pub fn status(&self) -> Option<HashMap<String, String>> {
        let line = self.control("STATUS")?;
        Some(
            line.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// One checkpoint interval's work, done now; returns once the sidecar did it.
    pub fn tick(&mut self) {
        self.assert_running();
        let answer = self.control("TICK");
        assert_eq!(answer.as_deref(), Some("OK"), "TICK");
    }

    /// The `STATUS-JSON` answer: counters and the alerts in force.
    pub fn status_json(&self) -> serde_json::Value {
        let line = self.control("STATUS-JSON").expect("the sidecar answers");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// The alerts in force.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        self.status_json()["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.status()
            .and_then(|s| s.get(name).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    }

    /// Waits until the start-up reconciliation is done.
    pub fn wait_watching(&mut self, timeout: Duration) {
        wait_for(timeout, "the sidecar to be watching", || {
            self.assert_running();
            let st = self.status()?;
            (st.get("state").map(String::as_str) == Some("watching")).then_some(())
        });
    }

    /// Waits until every event so far is handled: nothing dirty, nothing to seal.
    pub fn wait_idle(&mut self, timeout: Duration) {
        // Lets inotify deliver the last events first.
        std::thread::sleep(Duration::from_millis(150));
        let mut calm = 0;
        wait_for(timeout, "the sidecar to be idle", || {
            self.assert_running();
            let st = self.status()?;
            let idle = st.get("state").map(String::as_str) == Some("watching")
                && st.get("idle").map(String::as_str) == Some("true")
                && st.get("sealing").map(String::as_str) == Some("0")
                && st.get("dirty").map(String::as_str) == Some("0");
            calm = if idle { calm + 1 } else { 0 };
            (calm >= 3).then_some(())
        });
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "sidecar exited early ({status}); its log:\n{}",
                fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        signal(self.pid(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("sidecar ignored SIGTERM for 20 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn control(state: &Path, command: &str) -> Option<String> {
    let mut conn = UnixStream::connect(state.join("sidecar.sock")).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    conn.write_all(format!("{command}\n").as_bytes()).ok()?;
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line).ok()?;
    Some(line.trim_end().to_string())
}

/// A systemd-style notification socket (`NOTIFY_SOCKET`): a unix datagram socket.
pub struct NotifySocket {
    pub path: PathBuf,
    sock: UnixDatagram,
}

impl NotifySocket {
    pub fn bind(path: &Path) -> Self {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Self {
            path: path.to_path_buf(),
            sock,
        }
    }

    /// The next datagram, if one arrives within 50 ms.
    pub fn recv(&self) -> Option<(Instant, String)> {
        let mut buf = [0u8; 4096];
        let n = self.sock.recv(&mut buf).ok()?;
        Some((
            Instant::now(),
            String::from_utf8_lossy(&buf[..n]).into_owned(),
        ))
    }
}

/// One partition the live writer appends to.
#[derive(Debug, Clone)]
pub struct LivePartition {
    pub ids: (u32, u32, u32),
    pub dir: PathBuf,
    pub segment_start: u64,
    pub log_len: u64,
    pub next_offset: u64,
    pub segments: Vec<u64>,
}

/// Appends messages the way iggy-server 0.6 does: a batch to the `.log` in one write,
/// then its index entries in another; past the segment size, the next empty pair.
pub struct LiveWriter {
    pub root: PathBuf,
    pub partitions: Vec<LivePartition>,
    pub segment_size: u64,
    pub rng: Rng,
    timestamp: u64,
    id: u128,
}

impl LiveWriter {
    pub fn new(root: &Path, segment_size: u64, seed: u64) -> Self {
        Self {
            root: root.to_path_buf(),
            partitions: Vec::new(),
            segment_size,
            rng: Rng::new(seed),
            timestamp: 1_800_000_000_000_000,
            id: 1 << 100,
        }
    }

    /// Continues the partitions a `DataDirBuilder` wrote.
    pub fn adopt(&mut self, built: &BuiltDir) {
        for p in &built.partitions {
            let last = p.segments.last().expect("a built partition has a segment");
            let next_offset = p.messages().last().map_or(0, |m| m.offset + 1);
            self.partitions.push(LivePartition {
                ids: (p.stream, p.topic, p.partition),
                dir: p.dir.clone(),
                segment_start: last.start_offset,
                log_len: last.log_len(),
                next_offset,
                segments: p.segments.iter().map(|s| s.start_offset).collect(),
            });
        }
    }

    /// Creates a partition folder (and its stream and topic) with the empty pair 0.
    /// Its metadata goes into `state/log` first, as the server writes it.
    pub fn add_partition(&mut self, stream: u32, topic: u32, partition: u32) -> usize {
        let existing: Vec<_> = self.partitions.iter().map(|p| p.ids).collect();
        harness::state_log::append_partition(&self.root, &existing, (stream, topic, partition))
            .unwrap();
        let dir = self.root.join(partition_rel_dir(stream, topic, partition));
        fs::create_dir_all(&dir).unwrap();
        fs::File::create(dir.join(segment_file_name(0, "log"))).unwrap();
        fs::File::create(dir.join(segment_file_name(0, "index"))).unwrap();
        self.partitions.push(LivePartition {
            ids: (stream, topic, partition),
            dir,
            segment_start: 0,
            log_len: 0,
            next_offset: 0,
            segments: vec![0],
        });
        self.partitions.len() - 1
    }

    /// Appends `n` messages with payloads of `payload` bytes to partition `i`.
    pub fn append(&mut self, i: usize, n: usize, payload: std::ops::RangeInclusive<usize>) {
        let mut log = Vec::new();
        let mut index = Vec::new();
        let p = &self.partitions[i];
        let (start, mut len, mut offset) = (p.segment_start, p.log_len, p.next_offset);
        for _ in 0..n {
            self.timestamp += 1;
            self.id += 1;
            let mut body = vec![0u8; self.rng.in_range(&payload)];
            self.rng.fill(&mut body);
            let bytes = encode_message(&Message {
                id: self.id,
                offset,
                timestamp: self.timestamp,
                origin_timestamp: self.timestamp - 1,
                payload: body,
                headers: Vec::new(),
            });
            len += bytes.len() as u64;
            log.extend_from_slice(&bytes);
            index.extend_from_slice(&index_entry(
                (offset - start) as u32,
                len as u32,
                self.timestamp,
            ));
            offset += 1;
        }
        let p = &mut self.partitions[i];
        append_to(&p.dir.join(segment_file_name(start, "log")), &log);
        append_to(&p.dir.join(segment_file_name(start, "index")), &index);
        p.log_len = len;
        p.next_offset = offset;
        if len >= self.segment_size {
            self.rotate(i);
        }
    }

    /// Seals the current segment: the next, empty pair starts at the next offset.
    pub fn rotate(&mut self, i: usize) {
        let p = &mut self.partitions[i];
        if p.next_offset == p.segment_start {
            return;
        }
        p.segment_start = p.next_offset;
        p.log_len = 0;
        fs::File::create(p.dir.join(segment_file_name(p.segment_start, "log"))).unwrap();
        fs::File::create(p.dir.join(segment_file_name(p.segment_start, "index"))).unwrap();
        p.segments.push(p.segment_start);
    }

    /// Deletes the oldest segment of partition `i` when it has more than `keep`.
    pub fn retention(&mut self, i: usize, keep: usize) -> bool {
        let p = &mut self.partitions[i];
        if p.segments.len() <= keep {
            return false;
        }
        let oldest = p.segments.remove(0);
        fs::remove_file(p.dir.join(segment_file_name(oldest, "log"))).unwrap();
        fs::remove_file(p.dir.join(segment_file_name(oldest, "index"))).unwrap();
        true
    }
}

fn append_to(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// What [`journal_agrees_with_disk`] counted.
#[derive(Debug, Default)]
pub struct Agreement {
    pub partitions: usize,
    pub sealed: usize,
    pub open: usize,
    pub deleted: usize,
    pub checkpointed: usize,
    /// Segments recovery trusted without a scan thanks to the journal.
    pub trusted: usize,
}

/// Where the last of `count` messages starts, from the end of the one before it in
/// the index; `None` for an empty segment.
fn last_message_start(index: &Path, count: u64) -> Result<Option<u64>, String> {
    if count < 2 {
        return Ok(count.checked_sub(1).map(|_| 0));
    }
    let bytes = std::fs::read(index).map_err(|e| format!("{}: {e}", index.display()))?;
    let at = usize::try_from((count - 2) * 16 + 4).map_err(|e| e.to_string())?;
    let pos = bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| format!("{}: no entry {}", index.display(), count - 2))?;
    Ok(Some(u64::from(pos)))
}

/// Opens the journal (the sidecar must be stopped) and checks every segment against
/// the disk: each segment on disk is known, the newest of each partition open (its
/// checkpoint inside the log), every other one sealed with its exact lengths and last
/// offset; each segment the journal knows but the disk lacks is deleted. Then recovery,
/// guided by the journal, must judge the data as a full scan does and trust every
/// sealed segment.
pub fn journal_agrees_with_disk(data: &Path, state: &Path) -> Result<Agreement, String> {
    let journal = Journal::open(&state.join("journal")).map_err(|e| e.to_string())?;
    let states: BTreeMap<SegmentKey, SegmentState> = journal
        .all_segment_states()
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    drop(journal);
    let layout = recovery::layout::discover(data).map_err(|e| e.to_string())?;
    let mut a = Agreement::default();
    let mut on_disk = std::collections::BTreeSet::new();
    for p in &layout.partitions {
        let segs: Vec<_> = p.segments.iter().filter(|s| s.log_len.is_some()).collect();
        if segs.is_empty() {
            continue;
        }
        a.partitions += 1;
        for (i, seg) in segs.iter().enumerate() {
            let key = seg.key;
            on_disk.insert(key);
            let newest = i + 1 == segs.len();
            let log_len = seg.log_len.unwrap_or(0);
            let index_len = seg.index_len.unwrap_or(0);
            let st = states
                .get(&key)
                .ok_or_else(|| format!("segment {key} is on disk but not in the journal"))?;
            match &st.phase {
                SegmentPhase::Opened if newest => {
                    a.open += 1;
                    if let Some(c) = st.checkpoint {
                        a.checkpointed += 1;
                        if c.valid_len > log_len {
                            return Err(format!(
                                "checkpoint of {key} at {} beyond its log ({log_len} bytes)",
                                c.valid_len
                            ));
                        }
                    }
                }
                SegmentPhase::Sealed {
                    log_len: l,
                    index_len: x,
                    last_offset,
                    last_checksum,
                    last_start,
                } if !newest => {
                    a.sealed += 1;
                    let count = index_len / 16;
                    let expected_last = count.checked_sub(1).map(|n| key.start_offset + n);
                    let expected_start = last_message_start(&seg.index_path, count)?;
                    if (*l, *x) != (log_len, index_len)
                        || *last_offset != expected_last
                        || last_checksum.is_some() != expected_last.is_some()
                        || *last_start != expected_start
                    {
                        return Err(format!(
                            "{key} sealed as log {l}, index {x}, last {last_offset:?} at \
                             {last_start:?}, but disk has log {log_len}, index {index_len} \
                             (last {expected_last:?} at {expected_start:?})"
                        ));
                    }
                }
                other => {
                    return Err(format!(
                        "{key} ({} of {} in its partition) is {other:?} in the journal",
                        i + 1,
                        segs.len()
                    ))
                }
            }
        }
    }
    for (key, st) in &states {
        if on_disk.contains(key) {
            continue;
        }
        if st.phase != SegmentPhase::Deleted {
            return Err(format!(
                "{key} is {:?} in the journal but not on disk",
                st.phase
            ));
        }
        a.deleted += 1;
    }
    let known: HashMap<SegmentKey, SegmentState> = states.into_iter().collect();
    let (analysis, stats) =
        recovery::guided::analyze_guided(&layout, &known, &|_| {}).map_err(|e| e.to_string())?;
    // The journal may only spare work: guided, recovery must judge the data exactly as
    // a full scan does.
    let guided = format!("{:?}", recovery::verdict::judge(&analysis));
    let full = recovery::analyze::analyze(&layout, &|_| {}).map_err(|e| e.to_string())?;
    let unguided = format!("{:?}", recovery::verdict::judge(&full));
    if guided != unguided {
        return Err(format!(
            "guided by the journal, recovery sees {guided}; a full scan sees {unguided}"
        ));
    }
    if stats.trusted != a.sealed {
        return Err(format!(
            "recovery trusted {} segments, the journal has {} sealed",
            stats.trusted, a.sealed
        ));
    }
    a.trusted = stats.trusted;
    Ok(a)
}
