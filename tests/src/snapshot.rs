//! Byte-exact pictures of a directory, to assert "nothing changed" or "restore gave back
//! exactly the damaged input", and the messages a partition holds.
//!
//! A [`Snapshot`] maps the relative path (with `/`) of every regular file under a
//! folder, at any depth, to its bytes. Folders themselves, empty or not, are not
//! recorded; symlinks and other special files are not followed nor recorded.

use crate::layout::scan_partition;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

/// Relative path → file bytes.
pub type Snapshot = BTreeMap<String, Vec<u8>>;

/// Snapshot of every regular file under `dir`. Panics with the path on I/O errors.
pub fn snapshot(dir: &Path) -> Snapshot {
    try_snapshot(dir).unwrap_or_else(|e| panic!("snapshot of {}: {e}", dir.display()))
}

/// Snapshot of every regular file under `dir`.
pub fn try_snapshot(dir: &Path) -> io::Result<Snapshot> {
    let mut out = Snapshot::new();
    collect(dir, "", &mut out)?;
    Ok(out)
}

fn collect(dir: &Path, prefix: &str, out: &mut Snapshot) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if kind.is_dir() {
            collect(&entry.path(), &rel, out)?;
        } else if kind.is_file() {
            out.insert(rel, fs::read(entry.path())?);
        }
    }
    Ok(())
}

/// Readable differences between two snapshots (`None` when they are identical): files
/// only in one of them, and files whose bytes differ with their sizes and the first
/// differing byte. Lists at most 50 files.
pub fn diff(expected: &Snapshot, actual: &Snapshot) -> Option<String> {
    const MAX_LINES: usize = 50;
    let mut lines = Vec::new();
    for (path, bytes) in expected {
        match actual.get(path) {
            None => lines.push(format!("missing: {path} ({} bytes)", bytes.len())),
            Some(other) if other != bytes => lines.push(describe_change(path, bytes, other)),
            Some(_) => {}
        }
    }
    for (path, bytes) in actual {
        if !expected.contains_key(path) {
            lines.push(format!("unexpected: {path} ({} bytes)", bytes.len()));
        }
    }
    if lines.is_empty() {
        return None;
    }
    let mut text = format!("{} file(s) differ:\n", lines.len());
    for line in lines.iter().take(MAX_LINES) {
        let _ = writeln!(text, "  {line}");
    }
    if lines.len() > MAX_LINES {
        let _ = writeln!(text, "  ... and {} more", lines.len() - MAX_LINES);
    }
    Some(text)
}

fn describe_change(path: &str, expected: &[u8], actual: &[u8]) -> String {
    let first = expected.iter().zip(actual).position(|(a, b)| a != b);
    let at = first.unwrap_or(expected.len().min(actual.len()));
    format!(
        "changed: {path} ({} -> {} bytes, first difference at byte {at})",
        expected.len(),
        actual.len()
    )
}

/// Panics with a readable [`diff`] when the snapshots differ.
#[track_caller]
pub fn assert_same(expected: &Snapshot, actual: &Snapshot) {
    if let Some(text) = diff(expected, actual) {
        panic!("snapshots differ (expected vs actual): {text}");
    }
}

/// Encoded bytes of the messages of a partition's valid prefix, in offset order: all
/// segments' `.log`s are read in order until the first message that is torn, fails
/// its checksum or does not carry the next offset (see [`scan_partition`]). Panics on
/// I/O errors.
pub fn partition_messages(data_dir: &Path, partition_rel_dir: &str) -> Vec<Vec<u8>> {
    let dir = data_dir.join(partition_rel_dir);
    scan_partition(&dir)
        .unwrap_or_else(|e| panic!("scan {}: {e}", dir.display()))
        .messages
        .into_iter()
        .map(|m| m.bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{fixture, fixture_copy, CLEAN};

    #[test]
    fn snapshot_records_every_file_with_relative_paths() {
        let snap = snapshot(&fixture(CLEAN));
        assert_eq!(
            snap.len(),
            2 + 6 * 2 + 1,
            "state/info, state/log, 6 pairs, 1 offset"
        );
        assert_eq!(
            snap["streams/0/topics/0/partitions/0/offsets/consumers/2497150693"],
            100u64.to_le_bytes()
        );
        assert_eq!(
            snap["streams/0/topics/0/partitions/1/00000000000000001200.log"],
            b""
        );
        assert_eq!(&snap["state/info"][1..6], b"0.6.0");
    }

    #[test]
    fn diff_names_each_kind_of_change() {
        let copy = fixture_copy(CLEAN);
        let before = snapshot(copy.path());
        assert_eq!(diff(&before, &before), None);
        let p1 = copy.path().join("streams/0/topics/0/partitions/1");
        fs::remove_file(p1.join("00000000000000001200.index")).unwrap();
        fs::write(p1.join("stray"), b"abc").unwrap();
        let log = p1.join("00000000000000000000.log");
        let mut bytes = fs::read(&log).unwrap();
        bytes[1000] ^= 1;
        bytes.truncate(2000);
        fs::write(&log, bytes).unwrap();

        let text = diff(&before, &snapshot(copy.path())).unwrap();
        assert!(text.starts_with("3 file(s) differ"), "{text}");
        assert!(
            text.contains(
                "missing: streams/0/topics/0/partitions/1/00000000000000001200.index (0 bytes)"
            ),
            "{text}"
        );
        assert!(
            text.contains("unexpected: streams/0/topics/0/partitions/1/stray (3 bytes)"),
            "{text}"
        );
        assert!(
            text.contains("changed: streams/0/topics/0/partitions/1/00000000000000000000.log (296400 -> 2000 bytes, first difference at byte 1000)"),
            "{text}"
        );
    }

    #[test]
    #[should_panic(expected = "snapshots differ")]
    fn assert_same_panics_on_difference() {
        let mut other = Snapshot::new();
        other.insert("a".into(), vec![1]);
        assert_same(&Snapshot::new(), &other);
    }

    #[test]
    fn partition_messages_reads_all_segments_in_order() {
        let clean = fixture(CLEAN);
        let messages = partition_messages(&clean, "streams/0/topics/0/partitions/0");
        assert_eq!(messages.len(), 2886);
        let log0 = fs::read(clean.join("streams/0/topics/0/partitions/0/00000000000000000000.log"))
            .unwrap();
        let log1 = fs::read(clean.join("streams/0/topics/0/partitions/0/00000000000000001332.log"))
            .unwrap();
        assert_eq!(messages.concat(), [log0, log1].concat());
    }
}
