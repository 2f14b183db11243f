//! The journal's API in one process: appends, queries, repairs, group commit.

use crate::common;

use common::{record_for, seg};
use journal::{Journal, Record, RepairAction, RepairId, SegmentPhase};
use std::sync::Arc;

#[test]
fn seqs_start_at_one_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq().unwrap(), 0);
    assert_eq!(journal.append_batch(Vec::new()).unwrap(), Vec::<u64>::new());
    assert_eq!(journal.append(record_for(0, 0)).unwrap(), 1);
    let batch: Vec<Record> = (1..5).map(|i| record_for(0, i)).collect();
    assert_eq!(journal.append_batch(batch).unwrap(), vec![2, 3, 4, 5]);
    assert_eq!(journal.append(record_for(0, 5)).unwrap(), 6);

    let since: Vec<_> = journal.records_since(4).map(Result::unwrap).collect();
    assert_eq!(
        since.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    assert_eq!(since[0].record, record_for(0, 3));
    assert!(
        since[0].unix_micros > 1_600_000_000_000_000,
        "timestamp is wall-clock micros"
    );
    assert_eq!(journal.records_since(0).count(), 6);
    assert_eq!(journal.records_since(7).count(), 0);

    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq().unwrap(), 6);
    assert_eq!(journal.append(record_for(0, 6)).unwrap(), 7);
    assert!(journal.verify().unwrap().is_sound());
}

/// `record_times` gives each asked record's time as `records_since` reads it, from
/// blocks of any size, and nothing for a seq the log does not hold.
#[test]
fn record_times_match_the_records_across_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    journal.append(record_for(0, 0)).unwrap();
    let batch: Vec<Record> = (1..400).map(|i| record_for(1, i)).collect();
    journal.append_batch(batch).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    journal.append(record_for(0, 1)).unwrap();
    let all: std::collections::HashMap<u64, u64> = journal
        .records_since(0)
        .map(|e| e.map(|e| (e.seq, e.unix_micros)).unwrap())
        .collect();
    let asked = [401, 1, 2, 130, 129, 128, 400, 399, 7, 7, 0, 9999];
    let times = journal.record_times(asked).unwrap();
    for seq in asked {
        assert_eq!(times.get(&seq), all.get(&seq), "seq {seq}");
    }
    assert_eq!(times.len(), 9, "{times:?}");
    assert_ne!(
        times[&401], times[&1],
        "records of two rounds, apart in time"
    );
}

/// A round stores its records as one `log` value of at most 128 records; a larger
/// batch spans several, and reads cross them seamlessly.
#[test]
fn a_batch_larger_than_a_block_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let batch: Vec<Record> = (0..2500).map(|i| record_for(i % 7, i)).collect();
    let seqs = journal.append_batch(batch.clone()).unwrap();
    assert_eq!(seqs, (1..=2500).collect::<Vec<_>>());
    let read: Vec<Record> = journal
        .records_since(0)
        .map(|e| e.unwrap().record)
        .collect();
    assert_eq!(read, batch);
    let tail: Vec<u64> = journal
        .records_since(1020)
        .map(|e| e.unwrap().seq)
        .collect();
    assert_eq!(tail, (1020..=2500).collect::<Vec<_>>());
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq().unwrap(), 2500);
    let report = journal.verify().unwrap();
    assert!(report.is_sound(), "{report}");
    assert_eq!(report.records, 2500);
}

#[test]
fn segment_states_follow_the_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let (a, b, c) = (seg(0, 0), seg(0, 100), seg(1, 0));
    assert_eq!(journal.segment_state(&a).unwrap(), None);
    journal
        .append(Record::SegmentOpened { segment: a })
        .unwrap();
    journal
        .append(Record::SegmentOpened { segment: c })
        .unwrap();
    journal
        .append(Record::Checkpoint {
            segment: a,
            valid_len: 4096,
            next_offset: 40,
        })
        .unwrap();
    journal.append(Record::SealIntent { segment: a }).unwrap();
    journal
        .append(Record::Sealed {
            segment: a,
            log_len: 5000,
            index_len: 800,
            last_offset: Some(99),
            last_checksum: Some(7),
            last_start: Some(4950),
        })
        .unwrap();
    journal
        .append(Record::SegmentOpened { segment: b })
        .unwrap();
    journal.append(Record::SealIntent { segment: c }).unwrap();

    let sa = journal.segment_state(&a).unwrap().unwrap();
    assert_eq!(
        sa.phase,
        SegmentPhase::Sealed {
            log_len: 5000,
            index_len: 800,
            last_offset: Some(99),
            last_checksum: Some(7),
            last_start: Some(4950),
        }
    );
    assert_eq!(sa.last_seq, 5);
    assert_eq!(
        sa.checkpoint.map(|c| (c.seq, c.valid_len, c.next_offset)),
        Some((3, 4096, 40))
    );

    let unsealed: Vec<_> = journal.segments_not_sealed().unwrap();
    let keys: Vec<_> = unsealed.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, vec![b, c], "sorted by partition, then offset");
    assert_eq!(unsealed[1].1.phase, SegmentPhase::SealIntent);
    assert_eq!(journal.all_segment_states().unwrap().len(), 3);

    journal
        .append(Record::SegmentDeleted { segment: b })
        .unwrap();
    assert_eq!(
        journal.segment_state(&b).unwrap().unwrap().phase,
        SegmentPhase::Deleted
    );
    assert_eq!(journal.segments_not_sealed().unwrap().len(), 1);
    assert!(journal.verify().unwrap().is_sound());
}

#[test]
fn pending_repairs_and_repair_ids() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let r1 = journal.next_repair_id().unwrap();
    let r2 = journal.next_repair_id().unwrap();
    assert_eq!((r1, r2), (RepairId(1), RepairId(2)));
    let action = |n| RepairAction::QuarantineFile {
        path: format!("orphan{n}.log"),
        len: n,
    };
    let intent = |id, n| Record::RepairIntent {
        repair: id,
        action: action(n),
        reason: format!("orphan {n}"),
    };
    let s1 = journal.append(intent(r1, 1)).unwrap();
    let s2 = journal.append(intent(r2, 2)).unwrap();
    // An id chosen elsewhere moves the allocator past it.
    let s9 = journal.append(intent(RepairId(9), 9)).unwrap();
    journal.append(Record::RepairDone { repair: r1 }).unwrap();
    journal
        .append(Record::RepairFailed {
            repair: RepairId(9),
            error: "EIO".into(),
        })
        .unwrap();
    assert!(s1 < s2 && s2 < s9);

    let pending = journal.pending_repairs().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].seq, pending[0].repair), (s2, r2));
    assert_eq!(pending[0].action, action(2));
    assert_eq!(pending[0].reason, "orphan 2");

    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.pending_repairs().unwrap().len(), 1);
    assert_eq!(journal.next_repair_id().unwrap(), RepairId(10));
    journal.append(Record::RepairDone { repair: r2 }).unwrap();
    assert!(journal.pending_repairs().unwrap().is_empty());
    assert!(journal.verify().unwrap().is_sound());
}

#[test]
fn concurrent_appenders_get_unique_gapless_seqs_and_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::open(dir.path()).unwrap());
    let (threads, per_thread) = (8u64, 150u64);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let journal = Arc::clone(&journal);
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|i| (journal.append(record_for(t, i)).unwrap(), t, i))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    acked.sort();
    let total = threads * per_thread;
    assert_eq!(
        acked.iter().map(|a| a.0).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    for (seq, t, i) in &acked {
        let entry = journal.records_since(*seq).next().unwrap().unwrap();
        assert_eq!(entry.record, record_for(*t, *i));
    }
    let stats = journal.stats();
    assert_eq!(stats.appended, total);
    assert!(
        stats.flushes < total,
        "group commit never shared a flush: {stats:?}"
    );
    assert!(journal.verify().unwrap().is_sound());
}

/// sled deletes old files from its own threads; measuring the journal's size while
/// that happens must not fail (it made a compaction fail once, after 500,000 cycles).
#[test]
fn size_on_disk_tolerates_files_vanishing_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let churn_dir = dir.path().join("churn");
    std::fs::create_dir(&churn_dir).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, churn_dir) = (Arc::clone(&stop), churn_dir.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sub = churn_dir.join(format!("d{}", n % 4));
                let _ = std::fs::create_dir(&sub);
                for f in 0..32 {
                    let _ = std::fs::write(sub.join(format!("f{f}")), b"12345678");
                }
                let _ = std::fs::remove_dir_all(&sub);
                n += 1;
            }
        })
    };
    for _ in 0..3000 {
        let size = journal::dir_size(dir.path()).expect("a vanishing file is not an error");
        assert!(size <= 4 * 32 * 8, "only the churned files exist: {size}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
}

fn intents(ids: std::ops::RangeInclusive<u64>) -> Vec<Record> {
    ids.map(|n| Record::RepairIntent {
        repair: RepairId(n),
        action: RepairAction::QuarantineFile {
            path: format!("orphan{n}.log"),
            len: n,
        },
        reason: format!("orphan {n}"),
    })
    .collect()
}

/// Entries of the `repairs` tree of the closed journal in `dir`.
fn repairs_entries(dir: &std::path::Path) -> usize {
    let db = common::raw_sled(dir);
    db.open_tree("repairs").unwrap().len()
}

fn pending_ids(journal: &Journal) -> Vec<u64> {
    let pending = journal.pending_repairs().unwrap();
    pending.iter().map(|p| p.repair.0).collect()
}

/// A plan's intents are one entry of the `repairs` tree (a run); finishing some of
/// them splits it, and what is left pending is what the log says, before and
/// after a reopen.
#[test]
fn a_plan_s_intents_are_one_run_split_as_they_finish() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let seqs = journal.append_batch(intents(1..=1000)).unwrap();
    drop(journal);
    assert_eq!(repairs_entries(dir.path()), 1, "one run");
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(pending_ids(&journal), (1..=1000).collect::<Vec<_>>());
    let pending = journal.pending_repairs().unwrap();
    assert!(pending.iter().zip(&seqs).all(|(p, s)| p.seq == *s));
    assert_eq!(pending[499].reason, "orphan 500");
    journal
        .append(Record::SegmentOpened { segment: seg(0, 0) })
        .unwrap();
    // Done in bulk but for a few, one of which failed.
    let done = (1..=1000)
        .filter(|n| ![1, 500, 501, 1000].contains(n))
        .map(|n| Record::RepairDone {
            repair: RepairId(n),
        });
    journal.append_batch(done.collect()).unwrap();
    journal
        .append(Record::RepairFailed {
            repair: RepairId(501),
            error: "EIO".into(),
        })
        .unwrap();
    assert_eq!(pending_ids(&journal), [1, 500, 1000]);
    assert!(journal.verify().unwrap().is_sound());
    drop(journal);

    assert_eq!(repairs_entries(dir.path()), 3, "three runs of one");
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(pending_ids(&journal), [1, 500, 1000]);
    // Intents and their end in one round leave nothing.
    let mut both = intents(1001..=1003);
    both.extend((1001..=1003).map(|n| Record::RepairDone {
        repair: RepairId(n),
    }));
    journal.append_batch(both).unwrap();
    let done = [1, 500, 1000].map(|n| Record::RepairDone {
        repair: RepairId(n),
    });
    journal.append_batch(done.to_vec()).unwrap();
    assert!(journal.pending_repairs().unwrap().is_empty());
    let report = journal.verify().unwrap();
    assert!(report.is_sound(), "{report:?}");
    assert_eq!(report.pending_repairs, 0);
}

/// A journal with the intents of repairs 1 to 3, whose `repairs` tree `write`
/// fills instead (given the intents' seqs), reopened.
fn three_intents_with_repairs(
    write: impl FnOnce(&sled::Tree, &[u64]),
) -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let seqs = journal.append_batch(intents(1..=3)).unwrap();
    drop(journal);
    {
        let db = common::raw_sled(dir.path());
        let repairs = db.open_tree("repairs").unwrap();
        repairs.clear().unwrap();
        write(&repairs, &seqs);
        db.flush().unwrap();
    }
    let journal = Journal::open(dir.path()).unwrap();
    (dir, journal)
}

/// Journals of formats 2 to 4 keep one repair per entry, its value the intent's
/// seq: read as runs of one, and finished as such.
#[test]
fn pending_repairs_of_the_older_formats_are_read_and_finished() {
    let (_dir, journal) = three_intents_with_repairs(|repairs, seqs| {
        for (id, seq) in (1u64..=3).zip(seqs) {
            repairs
                .insert(id.to_be_bytes(), &seq.to_be_bytes()[..])
                .unwrap();
        }
    });
    assert_eq!(pending_ids(&journal), [1, 2, 3]);
    assert!(journal.verify().unwrap().is_sound());
    journal
        .append(Record::RepairDone {
            repair: RepairId(2),
        })
        .unwrap();
    assert_eq!(pending_ids(&journal), [1, 3]);
    let report = journal.verify().unwrap();
    assert!(report.is_sound(), "{report:?}");
    assert_eq!(report.pending_repairs, 2);
}

/// A run forged to span every id is walked only while the log agrees: an error,
/// not a hang.
#[test]
fn a_forged_run_is_reported_not_walked_to_its_end() {
    let (_dir, journal) = three_intents_with_repairs(|repairs, seqs| {
        let mut value = (u64::MAX - seqs[0]).to_be_bytes().to_vec();
        value.extend(seqs[0].to_be_bytes());
        repairs.insert(1u64.to_be_bytes(), value).unwrap();
    });
    let err = journal.pending_repairs().unwrap_err();
    assert!(err.to_string().contains("missing record"), "{err}");
    let report = journal.verify().unwrap();
    assert!(!report.is_sound());
}
