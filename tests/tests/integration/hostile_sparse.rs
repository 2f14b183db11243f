//! A sparse-extended log (a file grown by `truncate`, or whose tail a crash left
//! unwritten) costs neither memory nor quarantine space: a zero tail is described as
//! a zero run, not copied, and `restore` re-creates it; a sparse tail with data after
//! the holes is copied with its holes kept.

use crate::{warden, warden_measured};
use harness::{DataDirBuilder, PartitionSpec};
use recovery::fsops::is_zero_range;
use recovery::quarantine::Quarantine;
use recovery::ByteRange;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const LIMIT: u64 = 64 << 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One partition whose last log is then extended by `extra` bytes of holes; returns
/// the data directory, that log and its length before.
fn sparse_tail(root: &Path, extra: u64) -> (PathBuf, PathBuf, u64) {
    let data = root.join("data");
    let built = DataDirBuilder::new()
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(40, 50..100, 0)
                .trailing_empty_pair(false),
        )
        .build(&data);
    let log = built.partitions[0]
        .segments
        .last()
        .unwrap()
        .log_path
        .clone();
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len + extra)
        .unwrap();
    (data, log, len)
}

fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn a_sparse_zero_tail_is_quarantined_as_a_zero_run_and_restored_as_one() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = 1u64 << 30;
    let (data, log, len) = sparse_tail(tmp.path(), extra);
    let state = tmp.path().join("state");
    let prefix = read_prefix(&log, len);

    let (run, peak) =
        warden_measured(["recover", "--data-dir", s(&data), "--state-dir", s(&state)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(peak < LIMIT, "recover peaked at {} MiB", peak >> 20);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len);
    let manifests = Quarantine::new(&state).list().unwrap();
    let m = manifests
        .iter()
        .find(|m| m.zero_run)
        .unwrap_or_else(|| panic!("a zero run: {manifests:?}"));
    assert_eq!(m.range, ByteRange::new(len, len + extra));
    let (home, _) = Quarantine::new(&state).find(m.repair).unwrap().unwrap();
    let bytes = home.bytes();
    assert_eq!(std::fs::metadata(&bytes).unwrap().len(), 0);
    assert_eq!(warden(["check", "--data-dir", s(&data)]).code, 0);

    let restore = warden([
        "restore",
        "--data-dir",
        s(&data),
        "--state-dir",
        s(&state),
        &m.repair.to_string(),
    ]);
    assert_eq!(restore.code, 0, "{}{}", restore.stdout, restore.stderr);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len + extra);
    assert_eq!(read_prefix(&log, len), prefix);
    assert_eq!(
        is_zero_range(&log, ByteRange::new(len, len + extra)).unwrap(),
        Some(true)
    );
    assert!(
        allocated(&log) < 16 << 20,
        "restored as a hole: {}",
        allocated(&log)
    );
}

fn read_prefix(path: &Path, len: u64) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .take(len)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn a_sparse_tail_with_data_after_its_holes_is_copied_with_its_holes() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = 256u64 << 20;
    let (data, log, len) = sparse_tail(tmp.path(), extra);
    // One byte of garbage at the very end: not a zero run, and not a crash tail.
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::OpenOptions::new().write(true).open(&log).unwrap(),
        b"x",
        len + extra - 1,
    )
    .unwrap();
    let state = tmp.path().join("state");
    let prefix = read_prefix(&log, len);
    let (run, peak) = warden_measured([
        "recover",
        "--mode",
        "point-in-time",
        "--data-dir",
        s(&data),
        "--state-dir",
        s(&state),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(peak < LIMIT, "recover peaked at {} MiB", peak >> 20);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len);
    let q = Quarantine::new(&state);
    let m = q
        .list()
        .unwrap()
        .into_iter()
        .find(|m| m.range == ByteRange::new(len, len + extra))
        .expect("the cut tail is quarantined");
    assert!(!m.zero_run);
    let bytes = q.find(m.repair).unwrap().unwrap().0.bytes();
    assert_eq!(std::fs::metadata(&bytes).unwrap().len(), extra);
    assert!(
        allocated(&bytes) < 16 << 20,
        "holes kept: {}",
        allocated(&bytes)
    );

    let restore = warden([
        "restore",
        "--data-dir",
        s(&data),
        "--state-dir",
        s(&state),
        &m.repair.to_string(),
    ]);
    assert_eq!(restore.code, 0, "{}{}", restore.stdout, restore.stderr);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len + extra);
    assert_eq!(read_prefix(&log, len), prefix);
    let zeros = ByteRange::new(len, len + extra - 1);
    assert_eq!(is_zero_range(&log, zeros).unwrap(), Some(true));
    let mut last = [0u8];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(&log).unwrap(),
        &mut last,
        len + extra - 1,
    )
    .unwrap();
    assert_eq!(&last, b"x");
}
