//! Journal-guided analysis: sealed segments that still match the journal are trusted
//! without a scan, an open segment is scanned from its checkpoint only, and any
//! segment whose files no longer match what was journaled is scanned in full.

use harness::fixtures::KILLED_UNDER_LOAD;
use harness::{apply, fixture_copy, Fault};

use journal::{FileStamp, Journal, Record, SegmentKey, SegmentState};
use recovery::analyze::analyze;
use recovery::guided::{analyze_guided, analyze_without_history};
use recovery::layout::{discover, DataDir};
use recovery::verdict::judge;
use std::collections::HashMap;
use std::path::Path;

/// Journals every segment as the sidecar would have: sealed ones with their final
/// facts (and, with `stamped`, their files' stamps, as the sidecar journals them
/// once they have settled), each partition's newest one open with a checkpoint at
/// `checkpoint_frac` of its log.
fn journal_like_sidecar(
    dir: &Path,
    state: &Path,
    checkpoint_frac: f64,
    stamped: bool,
) -> HashMap<SegmentKey, SegmentState> {
    let layout: DataDir = discover(dir).unwrap();
    let analysis = analyze(&layout, &|_| {}).unwrap();
    let journal = Journal::open(&state.join("journal")).unwrap();
    for p in &analysis.partitions {
        let newest = p.segments.len() - 1;
        for (i, seg) in p.segments.iter().enumerate() {
            let scan = seg.scan.unwrap();
            journal
                .append(Record::SegmentOpened { segment: seg.key() })
                .unwrap();
            if i < newest {
                journal
                    .append(Record::Sealed {
                        segment: seg.key(),
                        log_len: scan.valid_len,
                        index_len: seg.files.index_len.unwrap(),
                        last_offset: scan.last.map(|m| m.offset),
                        last_checksum: scan.last.map(|m| m.checksum),
                        last_start: scan.last.map(|m| m.start),
                    })
                    .unwrap();
                if stamped {
                    let stamp = |p: &Path| FileStamp::of(&std::fs::metadata(p).unwrap());
                    journal
                        .append(Record::Stamped {
                            segment: seg.key(),
                            log: stamp(&seg.files.log_path),
                            index: stamp(&seg.files.index_path),
                        })
                        .unwrap();
                }
            } else {
                // A checkpoint at a message boundary about `checkpoint_frac` in.
                let mut pos = (0, seg.key().start_offset);
                recovery::scan::scan_log(
                    std::fs::File::open(&seg.files.log_path).unwrap(),
                    recovery::scan::ScanStart::segment(seg.key().start_offset),
                    recovery::scan::EachMessage(|m: &recovery::scan::MessageMeta| {
                        if (m.end as f64) <= scan.valid_len as f64 * checkpoint_frac {
                            pos = (m.end, m.offset + 1);
                        }
                        Ok::<_, std::io::Error>(())
                    }),
                )
                .unwrap();
                journal
                    .append(Record::Checkpoint {
                        segment: seg.key(),
                        valid_len: pos.0,
                        next_offset: pos.1,
                    })
                    .unwrap();
            }
        }
    }
    journal.all_segment_states().unwrap().into_iter().collect()
}

/// Each problem the verdict finds: its kind and path.
fn problem_kinds(
    analysis: &recovery::analyze::Analysis,
) -> Vec<(&'static str, std::path::PathBuf)> {
    judge(analysis)
        .iter()
        .map(|p| (p.kind.name(), p.path.clone()))
        .collect()
}

/// Whether `kinds` holds corruption inside the file named `log`.
fn corrupt(kinds: &[(&'static str, std::path::PathBuf)], log: &str) -> bool {
    kinds
        .iter()
        .any(|(k, p)| *k == "mid-file-corruption" && p.ends_with(log))
}

/// Flips the first byte of the last message of `log`, found through its index: the
/// lengths stay, the last message is no longer the one journaled.
fn flip_last_message(log: &Path) {
    let mut bytes = std::fs::read(log).unwrap();
    let index = std::fs::read(log.with_extension("index")).unwrap();
    let n = index.len() / 16;
    let last_start = u32::from_le_bytes(
        index[(n - 2) * 16 + 4..(n - 2) * 16 + 8]
            .try_into()
            .unwrap(),
    ) as usize;
    bytes[last_start] ^= 0xFF;
    std::fs::write(log, bytes).unwrap();
}

#[test]
fn sealed_segments_are_trusted_and_the_open_one_scanned_from_its_checkpoint() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let known = journal_like_sidecar(copy.path(), copy.tmp_root(), 0.5, false);
    apply(
        copy.path(),
        "streams/0/topics/0/partitions/0",
        Fault::TornLogTail,
    )
    .unwrap();
    let layout = discover(copy.path()).unwrap();
    let (guided, stats) = analyze_guided(&layout, &known, &|_| {}).unwrap();
    // 17 segments, 3 of them the partitions' newest.
    assert_eq!(stats.trusted, 14);
    assert_eq!(
        stats.resumed, 2,
        "partition 2's newest is empty: nothing to resume"
    );
    assert!(stats.bytes_scanned < layout.log_bytes() / 10, "{stats:?}");
    let full = analyze(&layout, &|_| {}).unwrap();
    assert_eq!(
        judge(&guided),
        judge(&full),
        "the journal changes the cost, not the verdict"
    );
    assert_eq!(guided.valid_messages(), full.valid_messages());
}

#[test]
fn a_sealed_segment_that_no_longer_matches_the_journal_is_scanned() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let known = journal_like_sidecar(copy.path(), copy.tmp_root(), 0.0, false);
    // Same lengths, different last message: only the read of its header can notice.
    let log = copy
        .path()
        .join("streams/0/topics/0/partitions/1/00000000000000007070.log");
    flip_last_message(&log);
    // A sealed segment that grew.
    let grown = copy
        .path()
        .join("streams/0/topics/0/partitions/0/00000000000000003768.log");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&grown)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0u8; 100]).unwrap();
    let layout = discover(copy.path()).unwrap();
    let (guided, stats) = analyze_guided(&layout, &known, &|_| {}).unwrap();
    assert_eq!(stats.trusted, 12, "{stats:?}");
    let kinds = problem_kinds(&guided);
    assert!(corrupt(&kinds, "00000000000000007070.log"), "{kinds:?}");
    assert!(corrupt(&kinds, "00000000000000003768.log"), "{kinds:?}");
    assert_eq!(judge(&guided), judge(&analyze(&layout, &|_| {}).unwrap()));
}

#[test]
fn sealed_segments_whose_files_keep_their_stamps_are_trusted_unread() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let known = journal_like_sidecar(copy.path(), copy.tmp_root(), 0.5, true);
    let layout = discover(copy.path()).unwrap();
    let (guided, stats) = analyze_guided(&layout, &known, &|_| {}).unwrap();
    assert_eq!(
        (stats.trusted, stats.trusted_by_stamp),
        (14, 14),
        "{stats:?}"
    );
    let full = analyze(&layout, &|_| {}).unwrap();
    assert_eq!(judge(&guided), judge(&full));
    assert_eq!(guided.valid_messages(), full.valid_messages());
}

#[test]
fn a_stamped_segment_changed_since_is_read_back_or_scanned() {
    let copy = fixture_copy(KILLED_UNDER_LOAD);
    let known = journal_like_sidecar(copy.path(), copy.tmp_root(), 0.0, true);
    let part = copy.path().join("streams/0/topics/0/partitions/1");
    // The file system's clock is coarse (a few milliseconds): changes within the tick
    // of the stamps would not move the times. The sidecar waits for that; so does
    // this test.
    std::thread::sleep(std::time::Duration::from_millis(50));
    // The same bytes written again: its times move, its content does not. Trusted
    // after the read of its last message, not by its stamp.
    let rewritten = part.join("00000000000000003491.log");
    std::fs::write(&rewritten, std::fs::read(&rewritten).unwrap()).unwrap();
    // Its last message changed in place, the lengths kept and the modification time
    // set back: the change time still tells, and the read finds the damage.
    let log = part.join("00000000000000007070.log");
    let mtime = std::fs::metadata(&log).unwrap().modified().unwrap();
    flip_last_message(&log);
    std::fs::File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let layout = discover(copy.path()).unwrap();
    let (guided, stats) = analyze_guided(&layout, &known, &|_| {}).unwrap();
    assert_eq!(
        (stats.trusted, stats.trusted_by_stamp),
        (13, 12),
        "{stats:?}"
    );
    let kinds = problem_kinds(&guided);
    assert!(corrupt(&kinds, "00000000000000007070.log"), "{kinds:?}");
    assert_eq!(judge(&guided), judge(&analyze(&layout, &|_| {}).unwrap()));
}

/// Found by the `segment_files` fuzz target: a sealed segment whose file name is the
/// largest offset made the trust check add past u64::MAX (a panic in debug builds).
#[test]
fn a_sealed_segment_named_near_the_largest_offset_is_scanned_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let id = journal::PartitionId::new(1, 1, 1);
    let dir = tmp.path().join(id.rel_dir());
    std::fs::create_dir_all(dir.join("offsets/consumers")).unwrap();
    std::fs::create_dir_all(dir.join("offsets/groups")).unwrap();
    let start = u64::MAX;
    let message = harness::Message {
        id: 7,
        offset: start,
        timestamp: 1_700_000_000_000_000,
        origin_timestamp: 1_700_000_000_000_000,
        payload: b"last".to_vec(),
        headers: Vec::new(),
    };
    let bytes = harness::encode_message(&message);
    let segment = id.segment(start);
    std::fs::write(dir.join(format!("{}.log", segment.file_stem())), &bytes).unwrap();
    std::fs::write(
        dir.join(format!("{}.index", segment.file_stem())),
        harness::index_entry(0, bytes.len() as u32, message.timestamp),
    )
    .unwrap();
    let journal = Journal::open(&tmp.path().join("state")).unwrap();
    journal
        .append_batch(vec![
            Record::SegmentOpened { segment },
            Record::Sealed {
                segment,
                log_len: bytes.len() as u64,
                index_len: 16,
                last_offset: Some(start),
                last_checksum: Some(u64::from_le_bytes(bytes[..8].try_into().unwrap())),
                last_start: Some(0),
            },
        ])
        .unwrap();
    let known: HashMap<_, _> = journal.all_segment_states().unwrap().into_iter().collect();
    let layout = discover(tmp.path()).unwrap();
    let (guided, stats) = analyze_guided(&layout, &known, &|_| {}).unwrap();
    assert_eq!(stats.trusted, 0, "{stats:?}");
    assert_eq!(stats.scanned, 1, "{stats:?}");
    assert_eq!(guided.valid_messages(), 1);
}

/// `check` runs the guided analysis with no history (as `recover` does with no
/// journal): on every fixture, and on every fault of the damage table and of the
/// race, it finds exactly what the reference scan finds. (Segments large enough to
/// be scanned in pieces take the same path in both; `pieces` has its own property
/// test against one scan.)
#[test]
fn with_no_history_the_guided_analysis_is_the_reference_scan() {
    let same = |dir: &Path, what: &str| {
        let layout = discover(dir).unwrap();
        let reference = analyze(&layout, &|_| {}).unwrap();
        let checked = analyze_without_history(&layout, &|_| {}).unwrap();
        assert_eq!(
            serde_json::to_value(&checked).unwrap(),
            serde_json::to_value(&reference).unwrap(),
            "{what}"
        );
        assert!(!reference.partitions.is_empty(), "{what}");
    };
    for name in harness::fixtures::ALL {
        let copy = fixture_copy(name);
        same(copy.path(), name);
    }
    for fault in harness::all_faults()
        .into_iter()
        .chain(harness::race_faults())
    {
        let copy = fixture_copy(KILLED_UNDER_LOAD);
        apply(copy.path(), "streams/0/topics/0/partitions/0", fault).unwrap();
        same(copy.path(), &format!("{fault:?}"));
    }
}
