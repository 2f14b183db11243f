//! Self-tests of the data directory writer: layout, rotation, determinism, and
//! agreement with the real fixtures where they overlap.

use super::*;
use crate::fixtures::{fixture, CLEAN, KILLED_UNDER_LOAD};
use crate::format::{decode_index, scan_log};
use crate::layout::list_segments;
use crate::snapshot::{assert_same, partition_messages, snapshot};
use std::collections::HashSet;

fn build(builder: &DataDirBuilder) -> (tempfile::TempDir, BuiltDir) {
    let tmp = tempfile::tempdir().unwrap();
    let built = builder.build(&tmp.path().join("data"));
    (tmp, built)
}

fn decode_headers(mut bytes: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let take = |b: &mut &[u8], n: usize| {
        let (head, tail) = b.split_at(n);
        *b = tail;
        head.to_vec()
    };
    while !bytes.is_empty() {
        let key_len = u32::from_le_bytes(take(&mut bytes, 4).try_into().unwrap()) as usize;
        let key = String::from_utf8(take(&mut bytes, key_len)).unwrap();
        assert_eq!(take(&mut bytes, 1), [2]);
        let value_len = u32::from_le_bytes(take(&mut bytes, 4).try_into().unwrap()) as usize;
        assert!((1..=255).contains(&value_len));
        out.push((key, String::from_utf8(take(&mut bytes, value_len)).unwrap()));
    }
    out
}

#[test]
fn state_info_matches_the_fixtures() {
    for name in [CLEAN, KILLED_UNDER_LOAD] {
        assert_eq!(
            fs::read(fixture(name).join("state/info")).unwrap(),
            state_info_bytes()
        );
    }
}

#[test]
fn segments_rotate_after_the_message_that_fills_them() {
    let spec = PartitionSpec::new(0, 0, 0)
        .messages(300, 100..=300, 0..=40)
        .segment_size(16 * 1024);
    let (_tmp, built) = build(&DataDirBuilder::new().seed(7).partition(spec));
    let p = built.partition(0, 0, 0);
    assert_eq!(p.message_count(), 300);
    let mut next_offset = 0;
    for (i, segment) in p.segments.iter().enumerate() {
        assert_eq!(segment.start_offset, next_offset, "segments are contiguous");
        let log = fs::read(&segment.log_path).unwrap();
        let index = fs::read(&segment.index_path).unwrap();
        assert_eq!(log.len() as u64, segment.log_len());
        let is_last = i + 1 == p.segments.len();
        if !is_last {
            assert!(segment.log_len() >= 16 * 1024, "sealed segments are full");
            let before_last = segment.messages[segment.messages.len() - 2].end;
            assert!(
                before_last < 16 * 1024,
                "sealed right after the crossing message"
            );
        }
        let scan = scan_log(&log);
        assert_eq!(scan.stopped, None);
        let entries = decode_index(&index);
        assert_eq!(entries.len(), scan.messages.len());
        for (j, (entry, m)) in entries.iter().zip(&scan.messages).enumerate() {
            assert_eq!(entry.relative_offset as usize, j);
            assert_eq!(entry.end_position as usize, m.end);
            assert_eq!(entry.timestamp, m.message.timestamp);
            assert_eq!(m.message.offset, next_offset + j as u64);
            let built_message = &segment.messages[j];
            assert_eq!(
                (built_message.start, built_message.end),
                (m.start as u64, m.end as u64)
            );
            assert_eq!(built_message.bytes, log[m.start..m.end]);
        }
        next_offset += segment.messages.len() as u64;
    }
    assert!(p.segments.len() > 3);
    assert_eq!(
        partition_messages(&built.root, &p.rel_dir),
        p.message_bytes()
    );
}

#[test]
fn trailing_empty_pair_only_after_a_full_last_segment() {
    // 10 messages of exactly 56 + 44 = 100 bytes: segments of 500 bytes fill exactly.
    let full = |trailing| {
        PartitionSpec::new(0, 0, 0)
            .messages(10, 44, 0)
            .segment_size(500)
            .trailing_empty_pair(trailing)
    };
    let starts = |spec: PartitionSpec| {
        let (_tmp, built) = build(&DataDirBuilder::new().partition(spec));
        let p = &built.partitions[0];
        let on_disk: Vec<u64> = list_segments(&p.dir)
            .unwrap()
            .iter()
            .map(|s| s.start_offset)
            .collect();
        let built_starts: Vec<u64> = p.segments.iter().map(|s| s.start_offset).collect();
        assert_eq!(on_disk, built_starts);
        on_disk
    };
    assert_eq!(starts(full(true)), [0, 5, 10]);
    assert_eq!(starts(full(false)), [0, 5]);
    let not_full = PartitionSpec::new(0, 0, 0)
        .messages(9, 44, 0)
        .segment_size(500);
    assert_eq!(
        starts(not_full),
        [0, 5],
        "no empty pair after a segment that is not full"
    );
    assert_eq!(
        starts(PartitionSpec::new(0, 0, 0)),
        [0],
        "a new partition has the empty pair 0"
    );
}

#[test]
fn messages_have_unique_ids_and_increasing_timestamps() {
    let builder = DataDirBuilder::new()
        .seed(3)
        .partition(PartitionSpec::new(0, 0, 0).messages(500, 0..64, 0..=300))
        .partition(PartitionSpec::new(0, 0, 1).messages(500, 10, 20));
    let (_tmp, built) = build(&builder);
    let mut ids = HashSet::new();
    for p in &built.partitions {
        let log = fs::read(&p.segments[0].log_path).unwrap();
        let scan = scan_log(&log);
        assert_eq!(scan.messages.len(), 500);
        for pair in scan.messages.windows(2) {
            assert!(pair[0].message.timestamp < pair[1].message.timestamp);
        }
        for m in &scan.messages {
            assert!(ids.insert(m.message.id));
            assert!(m.message.origin_timestamp < m.message.timestamp);
            let headers_len = m.message.headers.len();
            if headers_len == 0 || headers_len >= 15 {
                let decoded = decode_headers(&m.message.headers);
                assert_eq!(decoded.is_empty(), headers_len == 0);
            }
        }
    }
    let fixed = &built.partition(0, 0, 1).segments[0].messages;
    assert!(fixed.iter().all(|m| m.bytes.len() == 56 + 10 + 20));
}

#[test]
fn headers_fill_their_length_exactly() {
    let mut rng = Rng::new(1);
    for len in [0, 15, 16, 268, 269, 270, 283, 284, 285, 1000, 5000] {
        let headers = user_headers(len, &mut rng);
        assert_eq!(headers.len(), len);
        let entries = decode_headers(&headers);
        let keys: HashSet<_> = entries.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys.len(), entries.len(), "keys are unique");
    }
    assert_eq!(user_headers(7, &mut rng).len(), 7);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let builder = |seed| {
        DataDirBuilder::new()
            .seed(seed)
            .partition(
                PartitionSpec::new(1, 0, 0)
                    .messages(200, 1..=500, 0..=50)
                    .segment_size(8192),
            )
            .partition(
                PartitionSpec::new(0, 2, 3)
                    .messages(20, 5, 0)
                    .consumer_offset(9, 4),
            )
    };
    let (_a, first) = build(&builder(11));
    let (_b, second) = build(&builder(11));
    let (_c, third) = build(&builder(12));
    assert_same(&snapshot(&first.root), &snapshot(&second.root));
    assert_ne!(snapshot(&first.root), snapshot(&third.root));
}

#[test]
fn writes_state_and_offsets_like_the_server() {
    let builder = DataDirBuilder::new().state_log(vec![1, 2, 3]).partition(
        PartitionSpec::new(0, 0, 1)
            .messages(3, 8, 0)
            .consumer_offset(2497150693, 100)
            .group_offset(1, 2),
    );
    let (_tmp, built) = build(&builder);
    let snap = snapshot(&built.root);
    let keys: Vec<&str> = snap.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "state/info",
            "state/log",
            "streams/0/topics/0/partitions/1/00000000000000000000.index",
            "streams/0/topics/0/partitions/1/00000000000000000000.log",
            "streams/0/topics/0/partitions/1/offsets/consumers/2497150693",
            "streams/0/topics/0/partitions/1/offsets/groups/1",
        ]
    );
    assert_eq!(snap["state/log"], [1, 2, 3]);
    let fixture_offset = fs::read(
        fixture(CLEAN).join("streams/0/topics/0/partitions/0/offsets/consumers/2497150693"),
    )
    .unwrap();
    assert_eq!(
        snap["streams/0/topics/0/partitions/1/offsets/consumers/2497150693"],
        fixture_offset
    );
    assert_eq!(
        snap["streams/0/topics/0/partitions/1/offsets/groups/1"],
        2u64.to_le_bytes()
    );
}

#[test]
fn duplicate_partitions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let builder = DataDirBuilder::new()
        .partition(PartitionSpec::new(0, 0, 0))
        .partition(PartitionSpec::new(0, 0, 0));
    assert!(builder.try_build(tmp.path()).is_err());
}
