//! Damaged journals: every outcome must be an error or a reported problem, never a
//! panic and never a silently different history.

use crate::common;

use common::{record_for, seg, Rng};
use journal::{envelope, Entry, Journal, JournalError, JournalProblemKind, Record};
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const RECORDS: u64 = 3000;

fn build_journal() -> (tempfile::TempDir, Vec<Entry>) {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    for chunk in 0..RECORDS / 100 {
        let batch = (chunk * 100..(chunk + 1) * 100)
            .map(|i| record_for(i % 7, i))
            .collect();
        journal.append_batch(batch).unwrap();
    }
    let entries = journal
        .records_since(0)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (dir, entries)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for file in files(from) {
        let rel = file.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&file, &dest).unwrap();
    }
}

#[derive(Debug)]
enum Outcome {
    OpenFailed(JournalError),
    ReadFailed(JournalError),
    Problems(String),
    /// Opened, read and verified clean; holds what was read.
    Clean(Vec<Entry>),
}

fn probe(dir: &Path) -> Outcome {
    let journal = match Journal::open(dir) {
        Ok(j) => j,
        Err(e) => return Outcome::OpenFailed(e),
    };
    let entries = match journal.records_since(0).collect::<Result<Vec<_>, _>>() {
        Ok(e) => e,
        Err(e) => return Outcome::ReadFailed(e),
    };
    if let Err(e) = journal
        .all_segment_states()
        .and(journal.pending_repairs().map(drop))
    {
        return Outcome::ReadFailed(e);
    }
    match journal.verify() {
        Err(e) => Outcome::ReadFailed(e),
        Ok(r) if !r.is_sound() => Outcome::Problems(r.to_string()),
        Ok(_) => Outcome::Clean(entries),
    }
}

/// Applies `damage` to a copy of a healthy journal and checks the outcome: an error,
/// a reported problem, or (where sled recovered) an intact prefix of the history.
fn check_damage(name: &str, damage: impl Fn(&Path, u64)) {
    let (healthy, entries) = build_journal();
    for seed in 0..9u64 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(healthy.path(), dir.path());
        // Damage only sled's data file, or also the ack marker, or every file: sled's
        // tiny `conf` file fails loudly when hit, which would hide the other cases.
        let targets = match seed % 3 {
            0 => vec!["db"],
            1 => vec!["db", "acked_seq"],
            _ => vec!["db", "acked_seq", "conf"],
        };
        for file in files(dir.path()) {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if targets.contains(&name) || (seed % 3 == 2 && name.starts_with("snap.")) {
                damage(&file, seed / 3);
            }
        }
        let outcome = std::panic::catch_unwind(|| probe(dir.path()))
            .unwrap_or_else(|_| panic!("{name} seed {seed}: the journal panicked"));
        match &outcome {
            Outcome::OpenFailed(e) | Outcome::ReadFailed(e) => {
                assert!(e.is_unusable(), "{name}: {e}");
                let path = dir.path().display().to_string();
                assert!(
                    e.to_string().contains(&path),
                    "{name}: error names the path: {e}"
                );
            }
            Outcome::Problems(_) => {}
            Outcome::Clean(read) => {
                // Damage sled did not need to read: then the whole history must be there.
                assert_eq!(
                    read, &entries,
                    "{name} seed {seed}: history silently altered"
                );
            }
        }
        println!(
            "{name} seed {seed} ({targets:?}): {}",
            summary(&outcome, entries.len())
        );
    }
}

fn summary(outcome: &Outcome, written: usize) -> String {
    match outcome {
        Outcome::OpenFailed(e) => format!("open failed: {e}"),
        Outcome::ReadFailed(e) => format!("read failed: {e}"),
        Outcome::Problems(r) => {
            format!("verify found problems: {}", r.lines().nth(2).unwrap_or(""))
        }
        Outcome::Clean(read) => format!("clean prefix of {} of {written} records", read.len()),
    }
}

fn overwrite(file: &Path, at: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn garbled_middle_of_every_file() {
    check_damage("garble middle", |file, seed| {
        let len = fs::metadata(file).unwrap().len();
        let mut rng = Rng::seeded(seed + 1);
        let garbage: Vec<u8> = (0..len.min(4096) / 2).map(|_| rng.next() as u8).collect();
        overwrite(file, len / 4 + seed * len / 8, &garbage);
    });
}

#[test]
fn every_file_truncated() {
    check_damage("truncate", |file, seed| {
        let len = fs::metadata(file).unwrap().len();
        let f = OpenOptions::new().write(true).open(file).unwrap();
        f.set_len(len * (seed + 1) / 5).unwrap();
    });
}

#[test]
fn zeroed_tail_of_every_file() {
    check_damage("zero tail", |file, seed| {
        let len = fs::metadata(file).unwrap().len();
        let from = len * (seed + 1) / 5;
        overwrite(file, from, &vec![0u8; (len - from) as usize]);
    });
}

#[test]
fn scattered_byte_flips() {
    check_damage("byte flips", |file, seed| {
        let len = fs::metadata(file).unwrap().len();
        let mut rng = Rng::seeded(seed * 31 + 7);
        for _ in 0..16 {
            if len > 0 {
                overwrite(file, rng.next() % len, &[rng.next() as u8]);
            }
        }
    });
}

/// Writes raw bytes under `seq` in the log tree, bypassing the journal.
fn poke_log(dir: &Path, seq: u64, bytes: &[u8]) {
    let db = common::raw_sled(dir);
    db.open_tree("log")
        .unwrap()
        .insert(seq.to_be_bytes(), bytes)
        .unwrap();
    db.flush().unwrap();
}

const FUTURE: u16 = envelope::FORMAT_VERSION + 1;

/// A `log` value (the block of one commit round) in the next format version.
fn future_entry(seq: u64) -> Vec<u8> {
    let entry = Entry {
        seq,
        unix_micros: 0,
        record: Record::SegmentOpened { segment: seg(9, 9) },
    };
    let bytes = envelope::encode_with_version(&vec![entry], FUTURE).unwrap();
    // The header as documented, checked independently of the encoder.
    assert_eq!(&bytes[0..4], b"IWJ1");
    assert_eq!(&bytes[4..6], &FUTURE.to_le_bytes());
    let payload = &bytes[18..];
    assert_eq!(&bytes[6..10], &(payload.len() as u32).to_le_bytes());
    let hashed = [&bytes[4..10], payload].concat();
    assert_eq!(
        &bytes[10..18],
        &xxhash_rust::xxh3::xxh3_64(&hashed).to_le_bytes()
    );
    bytes
}

fn small_journal() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    for i in 0..3 {
        journal
            .append(Record::SegmentOpened { segment: seg(0, i) })
            .unwrap();
    }
    dir
}

#[test]
fn future_version_at_the_tail_refuses_open() {
    let dir = small_journal();
    poke_log(dir.path(), 4, &future_entry(4));
    match Journal::open(dir.path()) {
        Err(
            e @ JournalError::UnsupportedVersion {
                found: FUTURE,
                supported: envelope::FORMAT_VERSION,
                ..
            },
        ) => {
            assert!(e.is_unusable());
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

#[test]
fn future_version_in_the_middle_is_reported() {
    let dir = small_journal();
    poke_log(dir.path(), 2, &future_entry(2));
    let journal = Journal::open(dir.path()).unwrap();
    let mut records = journal.records_since(0);
    assert_eq!(records.next().unwrap().unwrap().seq, 1);
    assert!(matches!(
        records.next(),
        Some(Err(JournalError::UnsupportedVersion { found: FUTURE, .. }))
    ));
    assert!(records.next().is_none(), "iteration stops after an error");
    let report = journal.verify().unwrap();
    assert!(report.has_unsupported_version());
    let first = report.first_problem().unwrap();
    assert_eq!(
        (first.kind, first.seq),
        (JournalProblemKind::UnsupportedVersion, Some(2))
    );
}

#[test]
fn future_format_marker_refuses_open() {
    let dir = small_journal();
    {
        let db = common::raw_sled(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert("format_version", &u64::from(FUTURE).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        Journal::open(dir.path()),
        Err(JournalError::UnsupportedVersion {
            found,
            supported: envelope::FORMAT_VERSION,
            ..
        }) if found == FUTURE
    ));
}

#[test]
fn damaged_records_and_states_are_reported() {
    let dir = small_journal();
    let mut garbled = future_entry(2);
    // The current version, so the checksum is what fails.
    garbled[4..6].copy_from_slice(&envelope::FORMAT_VERSION.to_le_bytes());
    garbled[20] ^= 0xff;
    poke_log(dir.path(), 2, &garbled);
    {
        let db = common::raw_sled(dir.path());
        db.open_tree("state")
            .unwrap()
            .insert(seg(0, 0).to_bytes(), &b"junk"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let journal = Journal::open(dir.path()).unwrap();
    let err = journal.records_since(2).next().unwrap().unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { detail, .. } if detail.contains("log block 2")),
        "{err}"
    );
    assert!(matches!(
        journal.segment_state(&seg(0, 0)),
        Err(JournalError::Corrupt { .. })
    ));
    // An append touching the damaged state refuses rather than overwriting it.
    assert!(journal
        .append(Record::SealIntent { segment: seg(0, 0) })
        .is_err());
    let report = journal.verify().unwrap();
    assert!(!report.is_sound());
    assert_eq!(report.first_problem().unwrap().seq, Some(2));
    assert!(report
        .problems
        .iter()
        .any(|p| p.kind == JournalProblemKind::BadRecord));
}
