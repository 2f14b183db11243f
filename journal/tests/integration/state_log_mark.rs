//! The state-log mark: the newest `StateLogVerified` record, dropped by any repair
//! intent after it, kept across reopening and compaction, checked by `verify`.

use crate::common;

use common::seg;
use journal::{Journal, Record, RepairAction, RepairId};

fn verified(valid_len: u64, last_index: u64) -> Record {
    Record::StateLogVerified {
        valid_len,
        last_index,
        last_checksum: valid_len ^ 0xabcd,
    }
}

#[test]
fn the_newest_mark_stands_until_a_repair_intent() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.state_log_mark().unwrap(), None);
    journal.append(verified(100, 1)).unwrap();
    let seq = journal.append(verified(250, 3)).unwrap();
    let mark = journal.state_log_mark().unwrap().expect("a mark");
    assert_eq!(
        (
            mark.seq,
            mark.valid_len,
            mark.last_index,
            mark.last_checksum
        ),
        (seq, 250, 3, 250 ^ 0xabcd)
    );
    assert!(mark.unix_micros > 1_600_000_000_000_000);
    assert!(journal.verify().unwrap().is_sound());

    // Survives reopening.
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.state_log_mark().unwrap(), Some(mark));

    // Any repair may change state/log: its intent takes the mark away.
    journal
        .append(Record::RepairIntent {
            repair: RepairId(1),
            action: RepairAction::TruncateStateLog {
                keep_len: 200,
                original_len: 250,
            },
            reason: "test".into(),
        })
        .unwrap();
    assert_eq!(journal.state_log_mark().unwrap(), None);
    assert!(journal.verify().unwrap().is_sound());

    // A mark after the repair stands again, also within one batch.
    journal
        .append_batch(vec![
            Record::RepairDone {
                repair: RepairId(1),
            },
            verified(200, 2),
        ])
        .unwrap();
    assert_eq!(
        journal.state_log_mark().unwrap().map(|m| m.valid_len),
        Some(200)
    );
    assert!(journal.verify().unwrap().is_sound());
}

#[test]
fn compaction_keeps_only_the_standing_mark() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let segment = seg(0, 0);
    journal.append(Record::SegmentOpened { segment }).unwrap();
    for i in 1..=5 {
        journal.append(verified(100 * i, i)).unwrap();
    }
    let mark = journal.state_log_mark().unwrap();
    let report = journal.compact().unwrap();
    assert_eq!(report.checkpoints_dropped, 4);
    assert_eq!(journal.state_log_mark().unwrap(), mark);
    let left: Vec<Record> = journal
        .records_since(0)
        .map(|e| e.unwrap().record)
        .filter(|r| matches!(r, Record::StateLogVerified { .. }))
        .collect();
    assert_eq!(left, vec![verified(500, 5)]);
    assert!(journal.verify().unwrap().is_sound());
}
