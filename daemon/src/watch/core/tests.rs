//! Tests of the core, driven the way its loop drives it (`turn.rs`): the inbox taken
//! and handed to `handle_fs`, and the checkpoint interval's work run by `tick_now`
//! (what the control socket's `TICK` runs), so that no assertion waits on the wall
//! clock. What is checked is what reaches the journal, read back from it. One test
//! runs the loop itself (`Core::run`) through READY, a `TICK` and a stop.
//!
//! Segments are written by the tracker's test writer (`tracker/tests.rs`), which
//! encodes frames and index entries independently of the scanner.

use super::*;
use crate::journal_open::{self, Access};
use crate::watch::alerts::AlertKind;
use crate::watch::tracker::tests::{frame, SegWriter};
use journal::SegmentKey;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc::UnboundedReceiver;

/// The checksum stored in a frame's first eight bytes.
fn frame_checksum(frame: &[u8]) -> u64 {
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&frame[..8]);
    u64::from_le_bytes(sum)
}

/// The bytes of an index entry.
const ENTRY: u64 = 16;

/// A core over a data directory with one partition, its state directory beside it.
/// Fields drop in order: the core (and its journal) before the folders.
struct Fixture {
    core: Core,
    _events: UnboundedReceiver<CoreEvent>,
    pid: PartitionId,
    /// Records of the journal already returned by [`Fixture::new_records`].
    seen: usize,
    tmp: tempfile::TempDir,
}

/// Intervals long enough that only the test's explicit ticks do the work.
fn settings(tmp: &Path) -> Settings {
    Settings {
        data_dir: tmp.join("data"),
        state_dir: tmp.join("state"),
        checkpoint_interval: Duration::from_secs(3600),
        verify_interval: Duration::from_secs(3600),
        beat_every: Duration::from_secs(3600),
        stall_checkpoints: 3,
        coverage_rate: 0,
        stamp_after: Duration::from_secs(3600),
        stamp_margin: Duration::from_secs(2),
    }
}

fn start_core(tmp: &Path) -> (Core, UnboundedReceiver<CoreEvent>) {
    let settings = settings(tmp);
    std::fs::create_dir_all(&settings.state_dir).unwrap();
    let opened = journal_open::open(&settings.state_dir, Access::Own).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut core = Core::new(
        settings,
        opened,
        Shared::new(),
        Arc::new(Status::default()),
        tx,
    )
    .unwrap();
    assert!(core.full_reconcile("test start-up").unwrap());
    core.sync().unwrap();
    (core, rx)
}

impl Fixture {
    /// Starts a core over a partition whose first segment (offset 0) holds `messages`
    /// whole messages.
    fn new(messages: u64) -> (Self, SegWriter) {
        let tmp = tempfile::tempdir().unwrap();
        let pid = PartitionId::new(1, 1, 1);
        let mut w = SegWriter::create(&Self::dir_of(tmp.path(), pid), pid.segment(0));
        if messages > 0 {
            w.append(messages, 20);
        }
        let (core, events) = start_core(tmp.path());
        let fixture = Self {
            core,
            _events: events,
            pid,
            seen: 0,
            tmp,
        };
        (fixture, w)
    }

    fn dir_of(tmp: &Path, pid: PartitionId) -> PathBuf {
        tmp.join("data").join(pid.rel_dir())
    }

    fn dir(&self) -> PathBuf {
        Self::dir_of(self.tmp.path(), self.pid)
    }

    fn key(&self, start: u64) -> SegmentKey {
        self.pid.segment(start)
    }

    /// A new segment in the partition, as the server rotates to it.
    fn rotate(&self, start: u64) -> SegWriter {
        SegWriter::create(&self.dir(), self.key(start))
    }

    /// One turn's file-system work: whatever inotify reported so far, handled as the
    /// loop handles it, then flushed to the journal.
    fn turn(&mut self) {
        let inbox = std::mem::take(&mut *self.core.shared.lock());
        self.core
            .handle_fs(inbox.rescan, inbox.dirs, inbox.partitions, inbox.written)
            .unwrap();
        self.core.publish();
        self.core.sync().unwrap();
    }

    /// One checkpoint interval's work, now.
    fn tick(&mut self) {
        self.core.tick_now().unwrap();
        self.core.publish();
    }

    fn records(&self) -> Vec<Record> {
        let journal = self.core.journal.as_ref().unwrap().journal();
        journal
            .records_since(0)
            .map(|e| e.unwrap().record)
            .collect()
    }

    /// The records journaled since the last call.
    fn new_records(&mut self) -> Vec<Record> {
        let all = self.records();
        let new = all[self.seen..].to_vec();
        self.seen = all.len();
        new
    }

    fn status(&self) -> &Status {
        &self.core.status
    }
}

fn checkpoints(records: &[Record]) -> Vec<(SegmentKey, u64, u64)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Checkpoint {
                segment,
                valid_len,
                next_offset,
            } => Some((*segment, *valid_len, *next_offset)),
            _ => None,
        })
        .collect()
}

fn kinds(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| match r.segment() {
            Some(s) => format!("{}@{}", r.kind(), s.start_offset),
            None => r.kind().to_string(),
        })
        .collect()
}

#[test]
fn start_up_opens_what_is_on_disk_and_the_first_tick_checkpoints_it() {
    let (mut f, w) = Fixture::new(3);
    assert_eq!(kinds(&f.new_records()), ["segment_opened@0"]);
    assert_eq!(f.status().partitions.load(Ordering::Relaxed), 1);
    assert_eq!(f.status().segments.load(Ordering::Relaxed), 1);
    f.tick();
    assert_eq!(
        checkpoints(&f.new_records()),
        [(f.key(0), w.log_len, 3)],
        "verified to the end of the third message"
    );
}

#[test]
fn appended_bytes_are_checkpointed_at_the_next_tick_and_not_before() {
    let (mut f, mut w) = Fixture::new(3);
    f.tick();
    f.new_records();
    w.append(2, 7);
    // Writes only mark the segment, whatever inotify has reported by now.
    f.turn();
    assert!(checkpoints(&f.new_records()).is_empty());
    f.tick();
    assert_eq!(checkpoints(&f.new_records()), [(f.key(0), w.log_len, 5)]);
    // Nothing new written: nothing new to say.
    f.tick();
    assert_eq!(f.new_records(), []);
}

#[test]
fn a_rotation_seals_the_older_segment_with_its_final_lengths() {
    let (mut f, w0) = Fixture::new(3);
    f.tick();
    f.new_records();
    let mut w3 = f.rotate(3);
    w3.append(1, 9);
    f.tick();
    let records = f.new_records();
    assert_eq!(
        kinds(&records),
        [
            "seal_intent@0",
            "segment_opened@3",
            "sealed@0",
            "checkpoint@3"
        ]
    );
    let sealed = records
        .iter()
        .find(|r| matches!(r, Record::Sealed { .. }))
        .unwrap();
    assert_eq!(
        sealed,
        &Record::Sealed {
            segment: f.key(0),
            log_len: w0.log_len,
            index_len: 3 * ENTRY,
            last_offset: Some(2),
            last_checksum: Some(frame_checksum(&frame(2, 20))),
            last_start: Some(w0.log_len - frame(2, 20).len() as u64),
        }
    );
    assert_eq!(checkpoints(&records), [(f.key(3), w3.log_len, 4)]);
    assert!(matches!(
        f.core.model.get(&f.key(0)),
        Some(Phase::Sealed { .. })
    ));
    assert_eq!(f.status().segments.load(Ordering::Relaxed), 2);
    assert_eq!(f.status().sealing.load(Ordering::Relaxed), 0);
}

#[test]
fn a_deleted_segment_is_journaled_deleted_and_leaves_the_model() {
    let (mut f, _w0) = Fixture::new(2);
    let mut w2 = f.rotate(2);
    w2.append(1, 5);
    f.tick();
    f.new_records();
    // Retention removes the oldest segment.
    for path in [
        crate::watch::tracker::log_path(&f.dir(), &f.key(0)),
        crate::watch::tracker::index_path(&f.dir(), &f.key(0)),
    ] {
        std::fs::remove_file(path).unwrap();
    }
    f.turn();
    f.tick();
    assert_eq!(kinds(&f.new_records()), ["segment_deleted@0"]);
    assert!(f.core.model.get(&f.key(0)).is_none());
    assert_eq!(f.status().segments.load(Ordering::Relaxed), 1);
}

#[test]
fn a_torn_write_is_not_checkpointed_past_the_last_whole_message() {
    let (mut f, mut w) = Fixture::new(3);
    f.tick();
    f.new_records();
    let whole = w.log_len;
    // Half a frame: the server is in the middle of a write (or crashed in it).
    let torn = frame(w.next, 100);
    w.append_log(&torn[..30]);
    f.tick();
    assert!(checkpoints(&f.new_records()).is_empty());
    assert!(matches!(f.core.model.get(&f.key(0)), Some(Phase::Open(t)) if t.pos == whole));
    // The rest of the message, but not its index entry yet: the index vouches for
    // no more than before.
    w.append_log(&torn[30..]);
    w.log_len += torn.len() as u64;
    let offset = w.next;
    w.next += 1;
    f.tick();
    assert!(checkpoints(&f.new_records()).is_empty());
    // The entry lands: the message is whole and checkpointed.
    w.append_index(&index_entry(offset, w.log_len));
    f.tick();
    assert_eq!(checkpoints(&f.new_records()), [(f.key(0), w.log_len, 4)]);
}

/// The index entry of the message at `offset` (in a segment starting at 0) that ends
/// at byte `end`, with the timestamp the test writer gives it.
fn index_entry(offset: u64, end: u64) -> Vec<u8> {
    let mut e = Vec::with_capacity(ENTRY as usize);
    e.extend_from_slice(&(offset as u32).to_le_bytes());
    e.extend_from_slice(&(end as u32).to_le_bytes());
    e.extend_from_slice(&(1000 + offset).to_le_bytes());
    e
}

#[test]
fn a_restart_resumes_from_the_journaled_checkpoint_without_journaling_it_again() {
    let (mut f, mut w) = Fixture::new(3);
    f.tick();
    f.new_records();
    let before = f.records().len();
    // A clean stop, as `run` ends.
    f.core.journal.take().unwrap().close().unwrap();
    let (core, events) = start_core(f.tmp.path());
    f.core = core;
    f._events = events;
    f.tick();
    assert_eq!(f.records().len(), before, "{:?}", f.new_records());
    f.new_records();
    w.append(1, 3);
    f.tick();
    assert_eq!(checkpoints(&f.new_records()), [(f.key(0), w.log_len, 4)]);
}

#[test]
fn a_partition_folder_reported_after_start_up_is_listed_and_its_segments_opened() {
    let (mut f, _w) = Fixture::new(1);
    f.tick();
    f.new_records();
    let pid = PartitionId::new(1, 1, 2);
    let mut w = SegWriter::create(&Fixture::dir_of(f.tmp.path(), pid), pid.segment(0));
    w.append(2, 4);
    // What the event handler posts for a new folder (inotify may have posted it too).
    let dir = Fixture::dir_of(f.tmp.path(), pid);
    f.core.shared.post(|i| {
        i.dirs.insert(dir);
    });
    f.turn();
    assert_eq!(kinds(&f.new_records()), ["segment_opened@0"]);
    assert!(f.core.model.partitions.contains_key(&pid));
    assert_eq!(f.status().partitions.load(Ordering::Relaxed), 2);
    f.tick();
    assert_eq!(
        checkpoints(&f.new_records()),
        [(pid.segment(0), w.log_len, 2)]
    );
}

#[test]
fn the_loop_answers_a_tick_and_stops_with_everything_journaled() {
    let tmp = tempfile::tempdir().unwrap();
    let pid = PartitionId::new(1, 1, 1);
    let mut w = SegWriter::create(&Fixture::dir_of(tmp.path(), pid), pid.segment(0));
    w.append(3, 20);
    let settings = settings(tmp.path());
    let state_dir = settings.state_dir.clone();
    std::fs::create_dir_all(&state_dir).unwrap();
    let opened = journal_open::open(&state_dir, Access::Own).unwrap();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (shared, status) = (Shared::new(), Arc::new(Status::default()));
    let core = Core::new(settings, opened, shared.clone(), status.clone(), tx).unwrap();
    let running = std::thread::spawn(move || core.run());
    // READY only once the start-up reconciliation is journaled.
    assert!(matches!(events.blocking_recv(), Some(CoreEvent::Ready)));
    assert!(status.ready.load(Ordering::Relaxed));
    let (tick, ticked) = tokio::sync::oneshot::channel();
    shared.command(crate::watch::events::Command::Tick(tick));
    ticked.blocking_recv().unwrap();
    shared.stop();
    running.join().unwrap().unwrap();
    // `run` closed the journal: it opens again, with what the core decided.
    let opened = journal_open::open(&state_dir, Access::Own).unwrap();
    let records: Vec<Record> = opened
        .journal()
        .unwrap()
        .records_since(0)
        .map(|e| e.unwrap().record)
        .collect();
    assert_eq!(kinds(&records), ["segment_opened@0", "checkpoint@0"]);
    assert_eq!(checkpoints(&records), [(pid.segment(0), w.log_len, 3)]);
}

impl Fixture {
    /// What the loop does between checkpoints (every verify interval): the written
    /// segment's new bytes verified, in a pass that does not count toward the
    /// stalled-write grace, and no checkpoint.
    fn verify_written(&mut self, key: SegmentKey) {
        self.core.work.written(key);
        self.core.begin_verify_pass(false);
        while self.core.verify_dirty() {}
        self.core.end_verify_pass();
        self.core.publish();
        self.core.sync().unwrap();
    }

    fn alerted(&self, kind: AlertKind) -> bool {
        self.status().alerts.is_active(self.key(0), kind)
    }
}

fn alerts_raised(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::AlertRaised { kind, .. } => Some(kind.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn damage_in_new_bytes_is_alerted_by_the_verification_before_the_next_checkpoint() {
    let (mut f, mut w) = Fixture::new(3);
    f.tick();
    f.new_records();
    // A batch whose offsets do not follow the segment's: the race's misplaced batch.
    w.next += 600;
    w.append(2, 20);
    f.verify_written(f.key(0));
    let records = f.new_records();
    assert!(f.alerted(AlertKind::MisplacedBatch));
    assert_eq!(alerts_raised(&records), ["misplaced-batch"]);
    // Checkpoints keep their own interval.
    assert!(checkpoints(&records).is_empty());
}

#[test]
fn verifications_between_checkpoints_do_not_shorten_the_stalled_write_grace() {
    let (mut f, w) = Fixture::new(3);
    f.tick();
    let torn = frame(w.next, 100);
    w.append_log(&torn[..30]);
    for _ in 0..20 {
        f.verify_written(f.key(0));
    }
    assert!(!f.alerted(AlertKind::StalledWrite));
    // The grace is three checkpoint intervals (`settings`), each one counted pass.
    f.tick();
    f.tick();
    assert!(!f.alerted(AlertKind::StalledWrite));
    f.tick();
    assert!(f.alerted(AlertKind::StalledWrite));
    assert!(alerts_raised(&f.new_records()).contains(&"stalled-write".to_string()));
}

/// The `Stamped` records journaled since the last call.
fn stamps(f: &mut Fixture) -> Vec<Record> {
    f.core.sync().unwrap();
    f.new_records()
        .into_iter()
        .filter(|r| matches!(r, Record::Stamped { .. }))
        .collect()
}

#[test]
fn a_sealed_segment_is_stamped_once_its_files_have_settled() {
    let (mut f, _w0) = Fixture::new(3);
    f.core.settings.stamp_after = Duration::ZERO;
    // Just written: not unchanged for the margin yet, tried again once it has passed.
    let margin = Duration::from_millis(500);
    f.core.settings.stamp_margin = margin;
    f.tick();
    let mut w3 = f.rotate(3);
    w3.append(1, 9);
    f.tick();
    // Its change time made now, however slow the steps above were.
    let log = f.dir().join(f.key(0).file_name(journal::SegmentFile::Log));
    let mode = std::fs::metadata(&log).unwrap().permissions();
    std::fs::set_permissions(&log, mode).unwrap();
    f.core.stamp_due();
    assert_eq!(stamps(&mut f), []);
    f.core.stamp_due();
    assert_eq!(stamps(&mut f), [], "tried again before the margin passed");

    std::thread::sleep(margin + Duration::from_millis(100));
    f.core.stamp_due();
    let log = std::fs::metadata(f.dir().join(f.key(0).file_name(journal::SegmentFile::Log)));
    let index = std::fs::metadata(
        f.dir()
            .join(f.key(0).file_name(journal::SegmentFile::Index)),
    );
    assert_eq!(
        stamps(&mut f),
        [Record::Stamped {
            segment: f.key(0),
            log: journal::FileStamp::of(&log.unwrap()),
            index: journal::FileStamp::of(&index.unwrap()),
        }]
    );
    let journal = f.core.journal.as_ref().unwrap().journal();
    let state = journal.segment_state(&f.key(0)).unwrap().unwrap();
    assert!(matches!(
        state.phase,
        journal::SegmentPhase::SealedStamped { .. }
    ));
    // Stamped once: nothing is left to stamp.
    f.core.stamp_due();
    assert_eq!(stamps(&mut f), []);
}

#[test]
fn a_segment_last_written_long_before_its_seal_is_stamped_without_waiting() {
    let (mut f, _w0) = Fixture::new(3);
    // The one-hour delay of `settings` would hold a segment sealed now.
    f.core.settings.stamp_margin = Duration::ZERO;
    f.tick();
    // Segment 0 was last written two hours ago (as one found sealed at start-up).
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    for file in [journal::SegmentFile::Log, journal::SegmentFile::Index] {
        let path = f.dir().join(f.key(0).file_name(file));
        let handle = std::fs::File::options().write(true).open(path).unwrap();
        handle.set_modified(old).unwrap();
    }
    let mut w3 = f.rotate(3);
    w3.append(1, 9);
    f.tick();
    f.core.stamp_due();
    let stamped = stamps(&mut f);
    assert!(
        matches!(stamped.as_slice(), [Record::Stamped { segment, .. }] if *segment == f.key(0)),
        "{stamped:?}"
    );
}

#[test]
fn a_sealed_segment_written_after_its_seal_is_not_stamped() {
    for change in ["append", "rewrite-last"] {
        let (mut f, w0) = Fixture::new(3);
        f.core.settings.stamp_after = Duration::ZERO;
        f.core.settings.stamp_margin = Duration::ZERO;
        f.tick();
        let mut w3 = f.rotate(3);
        w3.append(1, 9);
        f.tick();
        assert!(matches!(
            f.core.model.get(&f.key(0)),
            Some(Phase::Sealed { .. })
        ));
        // What iggy-server 0.6.0's rotation race does: a batch lands in the sealed
        // segment; or its last message is rewritten in place, the lengths kept.
        match change {
            "append" => w0.append_log(&frame(3, 20)),
            _ => {
                let path = f.dir().join(f.key(0).file_name(journal::SegmentFile::Log));
                let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                let at = w0.log_len - frame(2, 20).len() as u64;
                std::os::unix::fs::FileExt::write_at(&file, &[0xAB], at).unwrap();
            }
        }
        f.core.stamp_due();
        assert_eq!(stamps(&mut f), [], "{change}");
    }
}
