//! Tests of the tracker against segments written the way the server writes them, and
//! the writer they use (shared with the core's tests).

use super::*;
use journal::PartitionId;
use recovery::message::{frame_checksum, HEADER_LEN};
use recovery::scan::MessageMeta;
use std::io::Write;

/// An Iggy 0.6 message frame (test data, encoded independently of the scanner).
pub(crate) fn frame(offset: u64, payload: usize) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_LEN];
    b[8..24].copy_from_slice(&(u128::from(offset) + 1).to_le_bytes());
    b[24..32].copy_from_slice(&offset.to_le_bytes());
    b[32..40].copy_from_slice(&(1000 + offset).to_le_bytes());
    b[40..48].copy_from_slice(&(999 + offset).to_le_bytes());
    b[52..56].copy_from_slice(&(payload as u32).to_le_bytes());
    b.extend((0..payload).map(|i| (i as u8).wrapping_mul(31).wrapping_add(offset as u8)));
    let sum = frame_checksum(&b).unwrap();
    b[..8].copy_from_slice(&sum.to_le_bytes());
    b
}

/// Appends messages like the server: the whole batch to the log, then its entries.
pub(crate) struct SegWriter {
    pub dir: PathBuf,
    pub key: SegmentKey,
    pub log_len: u64,
    pub next: u64,
}

impl SegWriter {
    pub(crate) fn create(dir: &Path, key: SegmentKey) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        File::create(log_path(dir, &key)).unwrap();
        File::create(index_path(dir, &key)).unwrap();
        Self {
            dir: dir.to_path_buf(),
            key,
            log_len: 0,
            next: key.start_offset,
        }
    }

    pub(crate) fn log_only(&mut self, n: u64, payload: usize) -> Vec<u8> {
        let mut log = Vec::new();
        let mut index = Vec::new();
        for _ in 0..n {
            let f = frame(self.next, payload);
            let meta = MessageMeta {
                offset: self.next,
                start: self.log_len,
                end: self.log_len + f.len() as u64,
                timestamp: 1000 + self.next,
                checksum: 0,
            };
            index.extend_from_slice(
                &IndexEntry::for_message(&meta, self.key.start_offset)
                    .unwrap()
                    .encode(),
            );
            self.log_len = meta.end;
            self.next += 1;
            log.extend_from_slice(&f);
        }
        self.append_log(&log);
        index
    }

    pub(crate) fn append_log(&self, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(log_path(&self.dir, &self.key))
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    pub(crate) fn append_index(&self, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(index_path(&self.dir, &self.key))
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    pub(crate) fn append(&mut self, n: u64, payload: usize) {
        let index = self.log_only(n, payload);
        self.append_index(&index);
    }
}

fn key() -> SegmentKey {
    PartitionId::new(0, 0, 0).segment(100)
}

#[test]
fn verifies_only_new_bytes_and_waits_for_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    let mut t = Tracker::new(key());
    assert_eq!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::UpToDate
    );
    w.append(3, 10);
    assert_eq!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::UpToDate
    );
    assert_eq!((t.pos, t.next_offset), (w.log_len, 103));
    // Log written, index not yet: nothing verified past the index.
    let pending = w.log_only(2, 5);
    let before = t.pos;
    assert!(matches!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::Waiting(_)
    ));
    assert_eq!(t.pos, before);
    w.append_index(&pending);
    assert_eq!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::UpToDate
    );
    assert_eq!(t.messages(), 5);
    // Half a frame: a write in progress.
    let f = frame(w.next, 100);
    w.append_log(&f[..30]);
    assert!(matches!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::Waiting(_)
    ));
    assert!(t.anomaly.is_none());
    let check = t
        .clone()
        .seal_check(dir.path(), &mut verify_buffer())
        .unwrap();
    assert!(matches!(check, SealCheck::NotYet(_)), "{check:?}");
}

#[test]
fn a_small_budget_steps_through_whole_messages_and_never_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    // 10 messages of about 1 KiB, then one of 8 KiB, then 10 small ones.
    w.append(10, 1000);
    w.append(1, 8000);
    w.append(10, 1000);
    let mut t = Tracker::new(key());
    let mut steps = Vec::new();
    // The files stay open from one step to the next, as the sidecar keeps them.
    let mut files = None;
    loop {
        let before = t.pos;
        let advance = t
            .advance_within(dir.path(), &mut files, &mut verify_buffer(), 2500)
            .unwrap()
            .advance;
        assert!(t.pos > before, "every step makes progress ({advance:?})");
        steps.push(t.pos - before);
        if advance == Advance::UpToDate {
            break;
        }
        // A frame the budget cut is not a torn tail.
        assert_eq!(advance, Advance::Partial);
    }
    assert_eq!((t.pos, t.messages()), (w.log_len, 21));
    assert!(t.anomaly.is_none());
    // Steps stay within the budget, except the one that had to take the 8 KiB
    // message whole.
    assert_eq!(steps.iter().filter(|&&n| n > 2500).count(), 1, "{steps:?}");
}

#[test]
fn seals_with_exact_facts_and_resumes_from_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    w.append(4, 20);
    let mut t = Tracker::new(key());
    let SealCheck::Complete(facts) = t.seal_check(dir.path(), &mut verify_buffer()).unwrap() else {
        panic!("not sealable")
    };
    assert_eq!(facts.log_len, w.log_len);
    assert_eq!(facts.index_len, 64);
    assert_eq!(facts.last.map(|l| l.offset), Some(103));

    // A tracker resumed at the end from a checkpoint reads the last message back.
    let cp = CheckpointState {
        seq: 1,
        valid_len: t.pos,
        next_offset: 104,
    };
    let mut r = Tracker::resumed(key(), Some(cp));
    assert_eq!(
        r.seal_check(dir.path(), &mut verify_buffer()).unwrap(),
        SealCheck::Complete(facts)
    );

    // A checkpoint that does not fit the files restarts from 0.
    let bad = CheckpointState {
        seq: 1,
        valid_len: t.pos - 1,
        next_offset: 104,
    };
    let mut r = Tracker::resumed(key(), Some(bad));
    let out = r.advance(dir.path(), &mut verify_buffer()).unwrap();
    assert!(out.restarted);
    assert_eq!(out.advance, Advance::UpToDate);
    assert_eq!(r.pos, w.log_len);
}

#[test]
fn damage_stops_the_tracker_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    w.append(2, 20);
    let mut bad = frame(w.next, 20);
    bad[60] ^= 0xff;
    w.append_log(&bad);
    w.append(1, 20);
    let mut t = Tracker::new(key());
    let out = t.advance(dir.path(), &mut verify_buffer()).unwrap();
    assert!(matches!(out.advance, Advance::Anomaly(ref r) if r.contains("checksum")));
    assert_eq!(t.messages(), 2);
    assert_eq!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::Stalled
    );

    // An index entry that does not match its message.
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    let mut index = w.log_only(2, 8);
    index[16 + 4] ^= 1;
    w.append_index(&index);
    let mut t = Tracker::new(key());
    assert!(matches!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::Anomaly(ref r) if r.contains("index entry 1")
    ));
    assert_eq!(t.messages(), 1);
}

#[test]
fn an_index_longer_than_the_log_is_not_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    w.append(2, 20);
    w.append_index(&[0u8; 16]);
    let mut t = Tracker::new(key());
    // Once: maybe a write in flight. Twice with the same lengths: ghost entries.
    let check = t.seal_check(dir.path(), &mut verify_buffer()).unwrap();
    assert!(
        matches!(check, SealCheck::NotYet(ref why) if why.contains("index ahead")),
        "{check:?}"
    );
    assert_eq!(t.finding, None);
    let check = t.seal_check(dir.path(), &mut verify_buffer()).unwrap();
    assert!(
        matches!(check, SealCheck::NotYet(ref why) if why.contains("index has 48 bytes")),
        "{check:?}"
    );
    assert_eq!(
        t.finding,
        Some(Finding {
            kind: AlertKind::GhostIndexEntries,
            byte: 32,
            in_index: true
        })
    );
}

#[test]
fn each_stop_names_its_alert() {
    // A batch of the wrong offsets, as the race writes it.
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    w.append(2, 20);
    let at = w.log_len;
    w.next += 50;
    w.append(2, 20);
    let mut t = Tracker::new(key());
    assert!(matches!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::Anomaly(ref r) if r.contains("message offset 152 where 102 was expected")
    ));
    assert_eq!(
        t.finding,
        Some(Finding {
            kind: AlertKind::MisplacedBatch,
            byte: at,
            in_index: false
        })
    );
    // Zeros, then data.
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    w.append(2, 20);
    let at = w.log_len;
    w.append_log(&[0u8; 100]);
    w.log_len += 100;
    w.append(2, 20);
    let mut t = Tracker::new(key());
    assert!(matches!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::Anomaly(_)
    ));
    assert_eq!(
        t.finding.map(|f| (f.kind, f.byte)),
        Some((AlertKind::ZeroHole, at))
    );
    // A message written in part is a write in flight, not damage.
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    w.append(2, 20);
    w.append_log(&frame(w.next, 40)[..30]);
    let mut t = Tracker::new(key());
    assert!(matches!(
        t.advance(dir.path(), &mut verify_buffer()).unwrap().advance,
        Advance::Waiting(_)
    ));
    assert_eq!(t.finding, None);
}

#[test]
fn held_files_follow_a_segment_replaced_or_deleted_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SegWriter::create(dir.path(), key());
    w.append(3, 20);
    let mut t = Tracker::new(key());
    let mut files = None;
    let look = |t: &mut Tracker, files: &mut Option<OpenFiles>| {
        t.advance_within(dir.path(), files, &mut verify_buffer(), SCAN_BUDGET)
            .unwrap()
    };
    assert_eq!(look(&mut t, &mut files).advance, Advance::UpToDate);
    assert!(files.is_some(), "kept open for the next look");
    let whole = w.log_len;
    w.append(2, 20);
    assert_eq!(look(&mut t, &mut files).advance, Advance::UpToDate);
    assert_eq!(t.messages(), 5);

    // A shorter segment renamed over both files (as a repair's rebuilt file is): the
    // held ones lost their names, so the new ones are read, from their start.
    let other = tempfile::tempdir().unwrap();
    let mut short = SegWriter::create(other.path(), key());
    short.append(1, 20);
    for path in [log_path, index_path] {
        std::fs::rename(path(other.path(), &key()), path(dir.path(), &key())).unwrap();
    }
    let out = look(&mut t, &mut files);
    assert!(out.restarted, "{out:?}");
    assert_eq!(
        (out.advance, out.log_len),
        (Advance::UpToDate, short.log_len)
    );
    assert_eq!((t.pos, t.messages()), (short.log_len, 1));
    assert!(short.log_len < whole);

    // Deleted: gone, however long its files were held.
    std::fs::remove_file(log_path(dir.path(), &key())).unwrap();
    std::fs::remove_file(index_path(dir.path(), &key())).unwrap();
    assert_eq!(look(&mut t, &mut files).advance, Advance::Gone);
    assert!(files.is_none(), "nothing held for a deleted segment");
}

/// A segment's file replaced by a link after the listing (to a valid segment
/// elsewhere): the sidecar never reads through it, as recovery does not.
#[test]
fn a_segment_file_that_is_a_link_is_not_read_through() {
    let dir = tempfile::tempdir().unwrap();
    let (outside, partition) = (dir.path().join("outside"), dir.path().join("p"));
    let mut w = SegWriter::create(&outside, key());
    w.append(3, 10);
    for (log_link, index_link) in [(true, false), (false, true)] {
        std::fs::create_dir_all(&partition).unwrap();
        let place = |path: fn(&Path, &SegmentKey) -> PathBuf, link: bool| {
            let (from, to) = (path(&outside, &key()), path(&partition, &key()));
            if link {
                std::os::unix::fs::symlink(from, to).unwrap();
            } else {
                std::fs::copy(from, to).unwrap();
            }
        };
        place(log_path, log_link);
        place(index_path, index_link);
        let e = Tracker::new(key())
            .advance(&partition, &mut verify_buffer())
            .unwrap_err();
        assert!(recovery::fsops::is_symlink_refusal(&e), "{e}");
        std::fs::remove_dir_all(&partition).unwrap();
    }
}
