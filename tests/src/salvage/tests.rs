//! The resynchronising scanner on hand-made logs (zeros, garbage, nesting, limits) and
//! on the three real fixtures.

use super::*;
use crate::fixtures::{fixture, CLEAN, KILLED_UNDER_LOAD, RACE_ROTATION};
use crate::format::{decode_index, encode_message, Message};

fn message(offset: u64, id: u128, payload: Vec<u8>, headers: Vec<u8>) -> Vec<u8> {
    encode_message(&Message {
        id,
        offset,
        timestamp: 1_750_000_000_000_000 + offset,
        origin_timestamp: 1_750_000_000_000_000,
        payload,
        headers,
    })
}

fn small(offset: u64) -> Vec<u8> {
    message(offset, 7, vec![0xab; 40], vec![1, 2, 3])
}

fn offsets(bytes: &[u8]) -> Vec<u64> {
    scan_frames(bytes).iter().map(|f| f.offset).collect()
}

/// A message whose checksum's first `zeros` bytes (little-endian) are 0, found by
/// trying ids.
fn message_with_leading_zero_checksum(offset: u64, zeros: usize) -> Vec<u8> {
    (0u128..)
        .map(|id| message(offset, id, vec![5; 20], vec![]))
        .find(|m| m[..zeros].iter().all(|&b| b == 0))
        .unwrap()
}

#[test]
fn finds_consecutive_messages_and_their_places() {
    let log = [small(0), small(1), small(2)].concat();
    let frames = scan_frames(&log);
    let len = small(0).len();
    assert_eq!(len, 56 + 40 + 3);
    assert_eq!(
        frames
            .iter()
            .map(|f| (f.offset, f.start, f.end))
            .collect::<Vec<_>>(),
        [(0, 0, len), (1, len, 2 * len), (2, 2 * len, 3 * len)]
    );
    assert_eq!(frames[1].timestamp, 1_750_000_000_000_001);
    assert_eq!(
        frames[0].checksum,
        u64::from_le_bytes(log[..8].try_into().unwrap())
    );
}

#[test]
fn resynchronises_past_zero_holes_of_every_length() {
    for hole in [1, 7, 8, 9, 55, 56, 57, 1000, 4096] {
        let log = [small(0), vec![0; hole], small(1), vec![0; hole]].concat();
        assert_eq!(offsets(&log), [0, 1], "hole {hole}");
    }
}

#[test]
fn finds_a_frame_whose_checksum_starts_with_zero_bytes_after_a_zero_run() {
    for zeros in [1, 2] {
        let tricky = message_with_leading_zero_checksum(5, zeros);
        for hole in [0, 1, 6, 7, 8, 100] {
            let log = [small(4), vec![0; hole], tricky.clone(), small(6)].concat();
            assert_eq!(offsets(&log), [4, 5, 6], "{zeros} zero bytes, hole {hole}");
            let log = [vec![0; hole], tricky.clone()].concat();
            assert_eq!(offsets(&log), [5], "{zeros} zero bytes, hole {hole} first");
        }
    }
}

#[test]
fn long_zero_runs_are_crossed_in_linear_time() {
    // 32 MiB of zeros: a quadratic scan would not finish.
    let log = [small(0), vec![0; 32 << 20], small(1)].concat();
    assert_eq!(offsets(&log), [0, 1]);
}

#[test]
fn resynchronises_past_garbage_and_torn_messages() {
    let garbage: Vec<u8> = (0..500u32).map(|i| (i * 37 + 11) as u8).collect();
    let torn = small(1)[..70].to_vec();
    let mut flipped = small(2);
    flipped[60] ^= 0xff;
    let log = [
        garbage,
        small(0),
        torn,
        flipped,
        small(3),
        small(1)[..30].to_vec(),
    ]
    .concat();
    assert_eq!(offsets(&log), [0, 3]);
}

#[test]
fn a_message_nested_in_a_valid_payload_is_not_found() {
    let inner = small(9);
    let outer = message(8, 1, inner.clone(), vec![]);
    assert_eq!(offsets(&[outer.clone(), small(10)].concat()), [8, 10]);
    // Once the outer message is broken, the inner one is just a valid message.
    let mut broken = outer;
    broken[20] ^= 1;
    assert_eq!(offsets(&broken), [9]);
}

#[test]
fn frames_beyond_the_length_limits_or_the_file_are_not_messages() {
    let big_headers = message(0, 1, vec![], vec![7; MAX_HEADERS_LEN as usize + 1]);
    assert_eq!(offsets(&big_headers), Vec::<u64>::new());
    let at_limit = message(0, 1, vec![], vec![7; MAX_HEADERS_LEN as usize]);
    assert_eq!(offsets(&at_limit), [0]);
    assert_eq!(offsets(&small(0)[..55]), Vec::<u64>::new());
    assert_eq!(offsets(&[]), Vec::<u64>::new());
}

#[test]
fn partition_helpers_count_exact_duplicates_once_and_flag_conflicts() {
    let found = |offset, checksum| FoundMessage {
        file: "00000000000000000000.log".into(),
        start: 0,
        end: 0,
        offset,
        timestamp: 0,
        checksum,
    };
    let p = PartitionMessages {
        partition: "streams/3/topics/1/partitions/2".into(),
        messages: vec![
            found(5, 1),
            found(0, 9),
            found(1, 9),
            found(5, 1),
            found(5, 2),
            found(7, 3),
        ],
    };
    assert_eq!(p.ids(), "3/1/2");
    assert_eq!(p.distinct_offsets(), [0, 1, 5, 7]);
    assert_eq!(p.distinct_messages().len(), 5);
    assert_eq!(p.conflicting_offsets(), [5]);
    assert_eq!(p.runs(), [(0, 1), (5, 5), (7, 7)]);
    assert_eq!(runs(&[]), []);
    assert_eq!(runs(&[u64::MAX - 1, u64::MAX]), [(u64::MAX - 1, u64::MAX)]);
}

#[test]
fn race_rotation_holds_18000_valid_messages() {
    let partitions = valid_messages(&fixture(RACE_ROTATION)).unwrap();
    assert_eq!(partitions.len(), 1);
    let p = &partitions[0];
    assert_eq!(p.partition, "streams/0/topics/0/partitions/0");
    assert_eq!(p.messages.len(), 18_000, "no copies at all");
    assert_eq!(p.distinct_offsets().len(), 18_000);
    assert_eq!(p.conflicting_offsets(), Vec::<u64>::new());
    assert!(p.messages.iter().all(|m| m.end - m.start == 153));
    let runs = p.runs();
    assert_eq!(runs.first(), Some(&(0, 299)));
    assert_eq!(runs.last(), Some(&(22_800, 23_399)));
    assert_eq!(runs.len(), 11);
    assert_eq!(23_400 - 18_000, 5_400, "offsets never written");
    // The README's signatures: 0..299 then 900.. in segment 0, 1500.log from 2,100.
    let in_file = |name: &str| -> Vec<u64> {
        p.messages
            .iter()
            .filter(|m| m.file == name)
            .map(|m| m.offset)
            .collect()
    };
    let first = in_file("00000000000000000000.log");
    assert_eq!((first[299], first[300]), (299, 900));
    assert_eq!(in_file("00000000000000001500.log")[0], 2_100);
}

/// On data the server wrote without damage the scanner finds exactly the messages the
/// indexes describe, at the positions they give.
fn matches_indexes(name: &str) -> usize {
    let root = fixture(name);
    let mut total = 0;
    for p in valid_messages(&root).unwrap() {
        let mut expected = Vec::new();
        for s in list_segments(&root.join(&p.partition)).unwrap() {
            let (Some(log), Some(index)) = (s.log, s.index) else {
                panic!("{name}: half pair");
            };
            let file = log.file_name().unwrap().to_string_lossy().into_owned();
            let mut start = 0;
            for e in decode_index(&fs::read(index).unwrap()) {
                let offset = s.start_offset + u64::from(e.relative_offset);
                let end = u64::from(e.end_position);
                expected.push((file.clone(), start, end, offset, e.timestamp));
                start = end;
            }
        }
        let found: Vec<_> = p
            .messages
            .iter()
            .map(|m| (m.file.clone(), m.start, m.end, m.offset, m.timestamp))
            .collect();
        assert_eq!(found, expected, "{name} {}", p.partition);
        assert_eq!(p.distinct_offsets().len(), found.len());
        total += found.len();
    }
    total
}

#[test]
fn clean_and_killed_under_load_hold_exactly_what_their_indexes_say() {
    assert_eq!(matches_indexes(CLEAN), 4_386);
    assert_eq!(matches_indexes(KILLED_UNDER_LOAD), 48_650);
}
