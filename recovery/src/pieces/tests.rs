//! A scan in pieces against one scan from byte 0, on whole and damaged segments.

use super::*;
use crate::layout::discover;
use crate::test_support::{entry, message, Segment, TestDir, ENTRY, HEADER};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the single scan and the scan in pieces make of `segments`, and the pieces the
/// largest of them was cut into.
fn both(segments: &[Segment], piece_bytes: u64) -> (String, String, u64) {
    let dir = TestDir::new(segments);
    let layout = discover(dir.data_dir()).expect("discover");
    let files: Vec<&SegmentFiles> = layout.partitions.iter().flat_map(|p| &p.segments).collect();
    let single: Vec<SegmentAnalysis> = files
        .iter()
        .map(|f| analyze_segment(f, ScanStart::segment(f.key.start_offset)).expect("scan"))
        .collect();
    let progressed = AtomicU64::new(0);
    let progress = |n: u64| {
        progressed.fetch_add(n, Ordering::Relaxed);
    };
    let pieces = analyze_in_pieces(&files, 2, piece_bytes, &progress).expect("scan in pieces");
    let log_bytes: u64 = files.iter().map(|f| f.log_len.unwrap_or(0)).sum();
    assert_eq!(progressed.load(Ordering::Relaxed), log_bytes, "progress");
    let most = files
        .iter()
        .map(|f| piece_count(f, piece_bytes))
        .max()
        .unwrap_or(0);
    (format!("{single:#?}"), format!("{pieces:#?}"), most)
}

#[test]
fn a_whole_segment_in_pieces_is_analysed_as_in_one_scan() {
    let segments = [Segment::whole(0, 40), Segment::whole(40, 3)];
    let (single, pieces, most) = both(&segments, 200);
    assert!(most > 5, "cut into {most} pieces");
    assert_eq!(single, pieces);
}

#[test]
fn an_index_pointing_into_a_message_changes_nothing_of_the_analysis() {
    let mut seg = Segment::whole(0, 40);
    // Entry 19 says message 20 starts one byte later than it does.
    let at = 19 * ENTRY + 4;
    let end = u32::from_le_bytes(seg.index_mut()[at..at + 4].try_into().unwrap());
    seg.index_mut()[at..at + 4].copy_from_slice(&(end + 1).to_le_bytes());
    let (single, pieces, most) = both(&[seg], 200);
    assert!(most > 5);
    assert_eq!(single, pieces);
    assert!(single.contains("Mismatch"), "{single}");
}

#[test]
fn damage_in_the_middle_of_a_piece_is_found_where_one_scan_finds_it() {
    let mut seg = Segment::whole(0, 40);
    let log = seg.log_mut();
    let middle = log.len() / 2;
    log[middle] ^= 0x40;
    let (single, pieces, _) = both(&[seg], 150);
    assert_eq!(single, pieces);
    assert!(single.contains("BadChecksum"), "{single}");
}

#[test]
fn a_torn_last_message_and_a_long_index_are_reported_as_in_one_scan() {
    let mut seg = Segment::whole(0, 40);
    seg.log_mut().extend(&message(40, b"torn")[..HEADER + 2]);
    seg.index_mut().extend(entry(40, 9_999, 7));
    let (single, pieces, most) = both(&[seg], 200);
    assert!(most > 5);
    assert_eq!(single, pieces);
    assert!(single.contains("TornMessage"), "{single}");
}

/// Damage a test can do to a segment's files.
#[derive(Clone, Debug)]
enum Damage {
    FlipLog(usize, u8),
    FlipIndex(usize, u8),
    ZeroLog(usize, usize),
    CutLog(usize),
    CutIndex(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, x)| Damage::FlipLog(at, x)),
        (any::<usize>(), 1..=255u8).prop_map(|(at, x)| Damage::FlipIndex(at, x)),
        (any::<usize>(), 1..400usize).prop_map(|(at, n)| Damage::ZeroLog(at, n)),
        any::<usize>().prop_map(Damage::CutLog),
        any::<usize>().prop_map(Damage::CutIndex),
    ]
}

fn apply(seg: &mut Segment, d: &Damage) {
    match *d {
        Damage::FlipLog(at, x) => {
            let log = seg.log_mut();
            if !log.is_empty() {
                let i = at % log.len();
                log[i] ^= x;
            }
        }
        Damage::FlipIndex(at, x) => {
            let index = seg.index_mut();
            if !index.is_empty() {
                let i = at % index.len();
                index[i] ^= x;
            }
        }
        Damage::ZeroLog(at, n) => {
            let log = seg.log_mut();
            if !log.is_empty() {
                let i = at % log.len();
                let end = (i + n).min(log.len());
                log[i..end].fill(0);
            }
        }
        Damage::CutLog(at) => {
            let log = seg.log_mut();
            let len = at % (log.len() + 1);
            log.truncate(len);
        }
        Damage::CutIndex(at) => {
            let index = seg.index_mut();
            let len = at % (index.len() + 1);
            index.truncate(len);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_damage_is_analysed_as_in_one_scan(
        messages in 1u64..80,
        piece_bytes in 60u64..600,
        damages in proptest::collection::vec(damage(), 0..4),
    ) {
        let mut seg = Segment::whole(5, messages);
        for d in &damages {
            apply(&mut seg, d);
        }
        let (single, pieces, _) = both(&[Segment::whole(0, 5), seg], piece_bytes);
        prop_assert_eq!(single, pieces);
    }
}

/// `count` messages of 1,000 bytes from offset `start`, with their index.
fn large(start: u64, count: u64) -> Segment {
    let (mut log, mut index) = (Vec::new(), Vec::new());
    for i in 0..count {
        log.extend(message(start + i, &[(i % 251) as u8; 1000]));
        index.extend(entry(
            i as u32,
            log.len() as u32,
            crate::test_support::timestamp(start + i),
        ));
    }
    Segment {
        start,
        log: Some(log),
        index: Some(index),
    }
}

#[test]
fn a_guided_analysis_scans_large_segments_the_journal_does_not_know_in_pieces() {
    // Over two pieces, damaged in its third quarter, between two small segments.
    let mut big = large(3, 20_000);
    let log = big.log_mut();
    let at = log.len() * 3 / 4;
    log[at] ^= 1;
    let segments = [Segment::whole(0, 3), big, Segment::whole(20_003, 2)];
    let dir = TestDir::new(&segments);
    let layout = discover(dir.data_dir()).expect("discover");
    let files: Vec<&SegmentFiles> = layout.partitions.iter().flat_map(|p| &p.segments).collect();
    assert!(crate::pieces::splits(files[1]) && !crate::pieces::splits(files[0]));
    let single: Vec<SegmentAnalysis> = files
        .iter()
        .map(|f| analyze_segment(f, ScanStart::segment(f.key.start_offset)).expect("scan"))
        .collect();
    let known = std::collections::HashMap::new();
    let (guided, stats) =
        crate::guided::analyze_guided(&layout, &known, &|_| {}).expect("guided analysis");
    let guided: Vec<&SegmentAnalysis> =
        guided.partitions.iter().flat_map(|p| &p.segments).collect();
    assert_eq!(format!("{single:#?}"), format!("{guided:#?}"));
    assert!(format!("{:?}", single[1].scan).contains("BadChecksum"));
    assert_eq!(stats.scanned, 3);
    let log_bytes: u64 = files.iter().map(|f| f.log_len.unwrap_or(0)).sum();
    assert_eq!(stats.bytes_scanned, log_bytes);
}
