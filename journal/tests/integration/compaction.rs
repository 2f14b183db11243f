//! Compaction keeps exactly the live state, keeps seqs, and `verify` accepts the gaps.

use crate::common;

use common::seg;
use journal::{Entry, Journal, Record, RepairAction, RepairId, SegmentPhase};
use std::collections::BTreeMap;

fn all(journal: &Journal) -> BTreeMap<u64, Entry> {
    journal
        .records_since(0)
        .map(|e| e.map(|e| (e.seq, e)))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn checkpoint(segment: journal::SegmentKey, n: u64) -> Record {
    Record::Checkpoint {
        segment,
        valid_len: n * 100,
        next_offset: n,
    }
}

#[test]
fn compaction_leaves_only_the_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let cycles = 200u64;
    // Dead segments: opened, checkpointed, sealed, deleted.
    for i in 0..cycles {
        let s = seg(0, i * 1000);
        let mut batch = vec![Record::SegmentOpened { segment: s }];
        batch.extend((1..=3).map(|n| checkpoint(s, n)));
        batch.push(Record::SealIntent { segment: s });
        batch.push(Record::Sealed {
            segment: s,
            log_len: 1,
            index_len: 2,
            last_offset: None,
            last_checksum: None,
            last_start: None,
        });
        batch.push(Record::SegmentDeleted { segment: s });
        journal.append_batch(batch).unwrap();
    }
    // Live: a sealed segment with old checkpoints, an open one with five checkpoints,
    // a reopened key whose first incarnation was deleted, and repairs.
    let sealed = seg(1, 0);
    let open = seg(1, 500);
    let reborn = seg(2, 0);
    journal
        .append(Record::SegmentOpened { segment: sealed })
        .unwrap();
    journal.append(checkpoint(sealed, 1)).unwrap();
    journal.append(checkpoint(sealed, 2)).unwrap();
    journal
        .append(Record::Sealed {
            segment: sealed,
            log_len: 10,
            index_len: 16,
            last_offset: Some(9),
            last_checksum: Some(1),
            last_start: None,
        })
        .unwrap();
    journal
        .append(Record::SegmentOpened { segment: open })
        .unwrap();
    for n in 1..=5 {
        journal.append(checkpoint(open, n)).unwrap();
    }
    journal
        .append(Record::SegmentOpened { segment: reborn })
        .unwrap();
    journal.append(checkpoint(reborn, 1)).unwrap();
    journal
        .append(Record::SegmentDeleted { segment: reborn })
        .unwrap();
    journal
        .append(Record::SegmentOpened { segment: reborn })
        .unwrap();
    let action = RepairAction::QuarantineFile {
        path: "x.log".into(),
        len: 3,
    };
    journal
        .append(Record::RepairIntent {
            repair: RepairId(1),
            action: action.clone(),
            reason: "orphan".into(),
        })
        .unwrap();
    journal
        .append(Record::RepairDone {
            repair: RepairId(1),
        })
        .unwrap();
    journal
        .append(Record::RepairIntent {
            repair: RepairId(2),
            action,
            reason: "orphan".into(),
        })
        .unwrap();
    // The newest record of all is a deletion that compaction will drop.
    let last_dead = seg(3, 0);
    journal
        .append(Record::SegmentOpened { segment: last_dead })
        .unwrap();
    let last = journal
        .append(Record::SegmentDeleted { segment: last_dead })
        .unwrap();

    let before = all(&journal);
    let live_states: Vec<_> = journal
        .all_segment_states()
        .unwrap()
        .into_iter()
        .filter(|(_, s)| s.phase != SegmentPhase::Deleted)
        .collect();
    let pending = journal.pending_repairs().unwrap();

    let report = journal.compact().unwrap();
    println!("{report:?}");
    // Dead: 7 records per cycle plus the last two; superseded checkpoints: 1 of sealed's,
    // 4 of open's, and reborn's (its reopen reset it).
    assert_eq!(report.segments_dropped, cycles + 1);
    assert_eq!(report.checkpoints_dropped, 1 + 4 + 1);
    assert_eq!(report.records_dropped, cycles * 7 + 2 + 6);
    assert_eq!(report.records_before, before.len() as u64);
    assert_eq!(report.compacted_through, last);

    let after = all(&journal);
    assert_eq!(
        after.len() as u64,
        report.records_before - report.records_dropped
    );
    for (seq, entry) in &after {
        assert_eq!(
            before.get(seq),
            Some(entry),
            "kept records keep their seq and content"
        );
    }
    let kinds: Vec<_> = after.values().map(|e| e.record.kind()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "checkpoint").count(), 2);
    assert_eq!(kinds.iter().filter(|k| k.starts_with("repair_")).count(), 3);

    assert_eq!(journal.all_segment_states().unwrap(), live_states);
    assert_eq!(live_states.len(), 3);
    let open_state = journal.segment_state(&open).unwrap().unwrap();
    assert_eq!(open_state.checkpoint.map(|c| c.next_offset), Some(5));
    let unsealed: Vec<_> = journal
        .segments_not_sealed()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(unsealed, vec![open, reborn]);
    assert_eq!(journal.pending_repairs().unwrap(), pending);
    let report_v = journal.verify().unwrap();
    assert!(report_v.is_sound(), "{report_v}");
    assert_eq!(report_v.compacted_through, last);

    // Numbering continues after the dropped tail, also across a reopen.
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq().unwrap(), last);
    assert_eq!(
        journal
            .append(Record::SealIntent { segment: open })
            .unwrap(),
        last + 1
    );
    assert!(journal.verify().unwrap().is_sound());
    // A second compaction finds nothing new to drop.
    let again = journal.compact().unwrap();
    assert_eq!(again.records_dropped, 0);
    assert_eq!(again.compacted_through, last);
    assert!(journal.verify().unwrap().is_sound());
}

#[test]
fn verify_still_reports_gaps_above_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    for i in 0..5 {
        journal
            .append(Record::SegmentOpened { segment: seg(0, i) })
            .unwrap();
    }
    drop(journal);
    {
        // Remove a record behind the journal's back.
        let db = common::raw_sled(dir.path());
        db.open_tree("log")
            .unwrap()
            .remove(3u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let journal = Journal::open(dir.path()).unwrap();
    let report = journal.verify().unwrap();
    let first = report.first_problem().expect("gap found");
    assert_eq!(first.kind, journal::JournalProblemKind::Gap);
    assert_eq!(first.seq, Some(4));
}

/// One commit round is one `log` value: compaction rewrites such a block without the
/// dropped records, even its first, and every query still finds the kept ones.
#[test]
fn compaction_rewrites_blocks_shared_by_dropped_and_kept_records() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let dead = seg(0, 0);
    let open = seg(1, 0);
    let seqs = journal
        .append_batch(vec![
            Record::SegmentOpened { segment: dead },
            Record::SegmentOpened { segment: open },
            checkpoint(open, 1),
            checkpoint(dead, 1),
            Record::RepairIntent {
                repair: RepairId(4),
                action: RepairAction::QuarantineFile {
                    path: "y.log".into(),
                    len: 1,
                },
                reason: "orphan".into(),
            },
            checkpoint(open, 2),
            Record::SegmentDeleted { segment: dead },
        ])
        .unwrap();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    let before = all(&journal);
    let pending = journal.pending_repairs().unwrap();

    let report = journal.compact().unwrap();
    assert_eq!(report.segments_dropped, 1);
    assert_eq!(report.checkpoints_dropped, 1, "open's first checkpoint");
    assert_eq!(report.records_dropped, 3 + 1);

    let kept: Vec<u64> = all(&journal).into_keys().collect();
    assert_eq!(kept, vec![2, 5, 6]);
    for seq in &kept {
        assert_eq!(all(&journal).get(seq), before.get(seq));
    }
    // Reading from a seq inside the block, or from a dropped one, finds the rest.
    let from = |seq| -> Vec<u64> { journal.records_since(seq).map(|e| e.unwrap().seq).collect() };
    assert_eq!(from(1), vec![2, 5, 6]);
    assert_eq!(from(3), vec![5, 6]);
    assert_eq!(from(6), vec![6]);
    assert_eq!(journal.pending_repairs().unwrap(), pending);
    assert_eq!(
        journal
            .segment_state(&open)
            .unwrap()
            .unwrap()
            .checkpoint
            .map(|c| c.seq),
        Some(6)
    );
    assert!(journal.segment_state(&dead).unwrap().is_none());
    assert!(journal.verify().unwrap().is_sound());
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.last_seq().unwrap(), 7);
    assert!(journal.verify().unwrap().is_sound());
}
