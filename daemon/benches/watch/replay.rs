//! `replay`: the measures of a guided `replay` dry run and `recover` on a
//! torn copy of the real fixture, with the floors a guided run pays.

use crate::sidecar::Sidecar;
use crate::{fresh, BIN};
use recovery::message::{MessageHeader, HEADER_LEN};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// `iggy-warden` with `args`, on `data` (when given) and `state`, logging warnings
/// only.
fn warden(args: &[&str], data: Option<&Path>, state: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if let Some(data) = data {
        cmd.arg("--data-dir").arg(data);
    }
    cmd.arg("--state-dir")
        .arg(state)
        .env("IGGY_WARDEN_LOG", "warn");
    cmd
}

/// One `replay` dry run as an operator runs it (text), its wall time.
fn replay_dry_run(data: &Path, state: &Path) -> Duration {
    timed_command("replay", data, state)
}

/// `iggy-warden <command>` on `data` and `state` as an operator runs it (text), its
/// wall time; it must exit 0 (for `recover`: the server may start).
fn timed_command(command: &str, data: &Path, state: &Path) -> Duration {
    let started = Instant::now();
    let status = warden(&[command], Some(data), state)
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
    let since = u64::MAX.to_string();
    let out = warden(&["journal", "show", "--since", &since], None, state)
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
    let out = warden(&["replay", "--json"], Some(data), state)
        .stderr(Stdio::null())
        .output()
        .expect("run iggy-warden replay --json");
    assert!(out.status.success(), "replay failed: {}", out.status);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("replay's JSON");
    json["plan"]["actions"].clone()
}

pub(crate) fn bench_replay(base: &Path) {
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
    let recovered = warden(&["recover"], Some(&data), &state)
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
