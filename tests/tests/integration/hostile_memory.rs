//! Memory stays bounded whatever the input: a header that claims a 64 MB message in a
//! file that holds a few bytes must not make `recover` or `check` allocate 64 MB, on
//! any number of threads.

use crate::warden_measured;
use harness::{DataDirBuilder, PartitionSpec};
use std::path::Path;

/// Exit code, peak RSS in bytes, stdout and stderr of `iggy-warden ARGS`.
fn run_measured(args: &[&str]) -> (i32, u64, String, String) {
    let (run, peak) = warden_measured(args);
    (run.code, peak, run.stdout, run.stderr)
}

/// A message header (56 bytes) with a checksum that is not zero, claiming a payload of
/// `payload_len` bytes and the given offset.
fn huge_claim(offset: u64, payload_len: u32) -> Vec<u8> {
    let mut h = vec![0u8; 56];
    h[..8].copy_from_slice(&0x1234_5678_9abc_def0u64.to_le_bytes());
    h[24..32].copy_from_slice(&offset.to_le_bytes());
    h[52..56].copy_from_slice(&payload_len.to_le_bytes());
    h
}

/// `partitions` tiny partitions, each of whose logs ends in a header claiming 64 MB.
fn huge_claims(root: &Path, partitions: u32) {
    let mut b = DataDirBuilder::new();
    for p in 0..partitions {
        b = b.partition(
            PartitionSpec::new(0, 0, p)
                .messages(3, 20..40, 0)
                .trailing_empty_pair(false),
        );
    }
    let built = b.build(root);
    for p in &built.partitions {
        let seg = p.segments.last().unwrap();
        let next = seg.messages.last().unwrap().offset + 1;
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&seg.log_path)
            .unwrap();
        std::io::Write::write_all(&mut log, &huge_claim(next, 64_000_000)).unwrap();
        std::io::Write::write_all(&mut log, b"a few bytes of the claimed payload").unwrap();
    }
}

const LIMIT: u64 = 64 << 20;

#[test]
fn a_huge_claimed_length_costs_no_memory_in_check_or_recover() {
    for mode in ["tolerate-tail", "salvage"] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let state = tmp.path().join("state");
        huge_claims(&data, 64);
        let d = data.to_str().unwrap();
        let s = state.to_str().unwrap();

        let (code, peak, stdout, stderr) = run_measured(&["check", "--data-dir", d]);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert_eq!(stdout.matches("torn message").count(), 64, "{stdout}");
        assert!(peak < LIMIT, "check peaked at {} MiB", peak >> 20);

        let (code, peak, stdout, stderr) =
            run_measured(&["recover", "--mode", mode, "--data-dir", d, "--state-dir", s]);
        assert_eq!(code, 0, "{mode}: {stdout}{stderr}");
        assert!(peak < LIMIT, "{mode}: recover peaked at {} MiB", peak >> 20);

        let after = crate::warden(["check", "--data-dir", d]);
        assert_eq!(after.code, 0, "{mode}: {}{}", after.stdout, after.stderr);
        // The cut headers are in the quarantine, not lost.
        let manifests = recovery::quarantine::Quarantine::new(&state)
            .list()
            .unwrap();
        let cut: u64 = manifests.iter().map(|m| m.range.len()).sum();
        assert_eq!(cut, 64 * (56 + 34), "{mode}");
    }
}

#[test]
fn a_config_file_must_be_a_regular_file_under_one_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let big = tmp.path().join("big.toml");
    // A valid TOML comment, just too long: refused for its size, not its syntax.
    let mut text = b"mode = \"salvage\"\n#".to_vec();
    text.resize((1 << 20) + 1, b'x');
    std::fs::write(&big, text).unwrap();
    let fifo = tmp.path().join("fifo.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let cases = [
        (Path::new("/dev/zero"), "not a regular file"),
        (big.as_path(), "larger than"),
        (fifo.as_path(), "not a regular file"),
        (tmp.path(), "not a regular file"),
    ];
    for (config, why) in cases {
        for cmd in [&["recover"][..], &["replay"], &["journal", "verify"]] {
            let mut args: Vec<&str> = cmd.to_vec();
            args.extend([
                "--config",
                config.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
            ]);
            let (code, peak, stdout, stderr) = run_measured(&args);
            assert_eq!(code, 2, "{cmd:?} {config:?}: {stdout}{stderr}");
            assert!(
                stderr.contains(&format!("config file {}", config.display()))
                    && stderr.contains(why),
                "{cmd:?} {config:?}: {stderr}"
            );
            assert!(peak < LIMIT, "{cmd:?} {config:?}: {} MiB", peak >> 20);
        }
    }
    // Just under the limit is read (and judged as TOML).
    let mut text = b"mode = \"salvage\"\n#".to_vec();
    text.resize(1 << 20, b'x');
    std::fs::write(&big, &text).unwrap();
    let run = crate::warden([
        "recover",
        "--config",
        big.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["mode"], "salvage");
}

#[test]
fn a_sparse_giant_index_in_a_damaged_partition_costs_no_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("state");
    let built = DataDirBuilder::new()
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(60, 100..200, 0)
                .segment_size(4096)
                .trailing_empty_pair(false),
        )
        .build(&data);
    let p = &built.partitions[0];
    assert!(p.segments.len() >= 2);
    // Damage before the end (salvage re-lays from here) ...
    let first = &p.segments[0];
    let mut log = std::fs::read(&first.log_path).unwrap();
    let mid = first.messages[1].start as usize + 60;
    log[mid] ^= 0xff;
    std::fs::write(&first.log_path, log).unwrap();
    // ... and an index that says it holds 64 Mi entries of zeros.
    let last = p.segments.last().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last.index_path)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let d = data.to_str().unwrap();
    let (code, peak, stdout, stderr) = run_measured(&["check", "--data-dir", d]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("index-long"), "{stdout}");
    assert!(peak < LIMIT, "check peaked at {} MiB", peak >> 20);
    let (code, peak, stdout, stderr) = run_measured(&[
        "recover",
        "--mode",
        "salvage",
        "--data-dir",
        d,
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(peak < LIMIT, "recover peaked at {} MiB", peak >> 20);
    let after = crate::warden(["check", "--data-dir", d]);
    assert_eq!(after.code, 0, "{}", after.stdout);
}
