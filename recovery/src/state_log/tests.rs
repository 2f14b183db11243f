use super::*;
use std::path::PathBuf;
use xxhash_rust::xxh3::Xxh3;

fn fixture_log(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/iggy-0.6.0")
        .join(name)
        .join("state/log");
    std::fs::read(path).unwrap()
}

/// An entry as 0.6.0 writes it (empty context), with a valid checksum.
fn entry(index: u64, code: u32, payload: &[u8]) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend(index.to_le_bytes());
    e.extend(0u64.to_le_bytes());
    e.extend(0u32.to_le_bytes());
    e.extend(6000u32.to_le_bytes());
    e.extend(0u64.to_le_bytes());
    e.extend(1_750_000_000_000_000u64.to_le_bytes());
    e.extend(0u32.to_le_bytes());
    e.extend(0u64.to_le_bytes());
    e.extend(0u32.to_le_bytes());
    e.extend(code.to_le_bytes());
    e.extend((payload.len() as u32).to_le_bytes());
    e.extend(payload);
    let mut h = Xxh3::new();
    h.update(&e[..44]);
    h.update(&e[52..]);
    let sum = h.digest().to_le_bytes();
    e[44..52].copy_from_slice(&sum);
    e
}

/// An entry as 0.6.0 writes it with encryption on: the checksum of the plaintext,
/// the command replaced by a nonce, the ciphertext (a stand-in) and a tag.
fn encrypted_entry(index: u64, code: u32, plain: &[u8]) -> Vec<u8> {
    let sealed = entry(index, code, plain);
    let mut e = sealed[..60].to_vec();
    e.extend((plain.len() as u32 + 28).to_le_bytes());
    e.extend([0x11; 12]);
    e.extend(plain.iter().map(|b| b ^ 0x5a));
    e.extend([0x22; 16]);
    e
}

fn create_stream(id: u32, name: &str) -> Vec<u8> {
    let mut p = id.to_le_bytes().to_vec();
    p.extend((name.len() as u32 + 1).to_le_bytes());
    p.push(name.len() as u8);
    p.extend(name.as_bytes());
    p
}

fn log_of(n: u64) -> (Vec<u8>, Vec<u64>) {
    let mut bytes = Vec::new();
    let mut starts = Vec::new();
    for i in 0..n {
        starts.push(bytes.len() as u64);
        bytes.extend(entry(i, 202, &create_stream(i as u32, &format!("s{i}"))));
    }
    (bytes, starts)
}

#[test]
fn the_fixtures_parse_whole_with_valid_checksums() {
    for (name, n) in [("clean", 5), ("killed-under-load", 3), ("race-rotation", 3)] {
        let bytes = fixture_log(name);
        let log = parse(&bytes);
        assert_eq!(log.damage, None, "{name}");
        assert!(!log.encrypted);
        assert_eq!(log.entries.len(), n, "{name}");
        assert!(log.entries.iter().all(|e| e.checksum_ok == Some(true)));
        assert_eq!(log.valid_len(), bytes.len() as u64);
    }
    let clean = parse(&fixture_log("clean"));
    let last = clean.entries.last().unwrap();
    assert_eq!(
        last.command.to_string(),
        "create topic 0 \"cpu\" in stream \"metrics\" with 1 partition"
    );
    assert_eq!(last.offset, 0x1cc);
}

#[test]
fn a_tail_torn_at_any_byte_is_a_torn_tail_at_the_last_entry() {
    let bytes = fixture_log("clean");
    let log = parse(&bytes);
    let last = log.entries.last().unwrap().clone();
    for cut in last.offset + 1..bytes.len() as u64 {
        let torn = parse(&bytes[..cut as usize]);
        let d = torn.damage.expect("damage");
        assert!(
            matches!(d.kind, DamageKind::Torn | DamageKind::ZeroTail),
            "{cut}: {d:?}"
        );
        assert_eq!(d.offset, last.offset, "{cut}");
        assert!(d.tail_only, "{cut}");
        assert_eq!(torn.entries.len(), 4);
    }
    // Cut at the boundary: a shorter, whole log.
    let whole = parse(&bytes[..last.offset as usize]);
    assert_eq!(whole.damage, None);
}

#[test]
fn zeros_after_the_last_entry_are_a_zero_tail() {
    let (mut bytes, _) = log_of(3);
    let end = bytes.len() as u64;
    bytes.extend([0; 4096]);
    let d = parse(&bytes).damage.unwrap();
    assert_eq!(
        (d.kind, d.offset, d.tail_only),
        (DamageKind::ZeroTail, end, true)
    );
}

#[test]
fn a_flipped_byte_in_the_last_entry_is_a_corrupt_tail() {
    let (mut bytes, starts) = log_of(4);
    let at = starts[3] as usize + 70;
    bytes[at] ^= 0xff;
    let log = parse(&bytes);
    let d = log.damage.unwrap();
    assert_eq!(
        (d.kind, d.offset, d.tail_only),
        (DamageKind::Corrupt, starts[3], true)
    );
    assert_eq!(log.entries.len(), 3);
}

#[test]
fn a_flipped_byte_in_an_earlier_entry_is_corruption_before_the_end() {
    let (mut bytes, starts) = log_of(5);
    bytes[starts[1] as usize + 33] ^= 0xff;
    let d = parse(&bytes).damage.unwrap();
    assert_eq!(
        (d.kind, d.offset, d.tail_only),
        (DamageKind::Corrupt, starts[1], false)
    );
    // The damaged entry and the three valid ones after it.
    assert_eq!(d.affected.len(), 4, "{:?}", d.affected);
    assert!(d.affected[3].contains("create stream 4 \"s4\""));
}

#[test]
fn a_broken_length_before_valid_entries_is_not_taken_for_a_tail() {
    let (mut bytes, starts) = log_of(5);
    // The command length of entry 1 now runs past the end of the file.
    let at = starts[1] as usize + 63;
    bytes[at] = 0x7f;
    let d = parse(&bytes).damage.unwrap();
    assert_eq!((d.kind, d.offset), (DamageKind::Torn, starts[1]));
    assert!(!d.tail_only, "{d:?}");
}

#[test]
fn an_index_gap_is_found_from_the_third_entry_on() {
    let mut bytes = Vec::new();
    let mut starts = Vec::new();
    for (i, index) in [0u64, 1, 2, 4, 5].into_iter().enumerate() {
        starts.push(bytes.len() as u64);
        bytes.extend(entry(index, 202, &create_stream(i as u32, "s")));
    }
    let d = parse(&bytes).damage.unwrap();
    assert_eq!(
        (d.kind, d.offset, d.tail_only),
        (DamageKind::Gap, starts[3], false)
    );
    // The server does not compare the second entry's index with the first.
    let mut lenient = entry(0, 202, &create_stream(0, "a"));
    lenient.extend(entry(7, 202, &create_stream(1, "b")));
    lenient.extend(entry(8, 202, &create_stream(2, "c")));
    assert_eq!(parse(&lenient).damage, None);
}

#[test]
fn a_log_whose_every_checksum_fails_and_whose_commands_do_not_decode_is_encrypted() {
    // A plaintext log whose first entry has a broken length is not taken for one.
    let (mut plain, starts) = log_of(4);
    plain[starts[0] as usize + 60] ^= 0x01;
    let misframed = parse(&plain);
    assert!(!misframed.encrypted);
    assert_eq!(misframed.damage.unwrap().offset, 0);

    let mut bytes = Vec::new();
    let mut starts = Vec::new();
    for i in 0..3u64 {
        starts.push(bytes.len() as u64);
        bytes.extend(encrypted_entry(i, 202, &create_stream(i as u32, "s")));
    }
    let log = parse(&bytes);
    assert!(log.encrypted);
    assert_eq!(log.damage, None);
    assert!(log.entries.iter().all(|e| e.checksum_ok.is_none()));
    // Torn, it is still torn: framing does not need the key.
    let torn = parse(&bytes[..bytes.len() - 5]);
    assert!(torn.encrypted);
    let d = torn.damage.unwrap();
    assert_eq!(
        (d.kind, d.offset, d.tail_only),
        (DamageKind::Torn, starts[2], true)
    );
}

#[test]
fn garbage_and_empty_input_never_panic() {
    assert_eq!(parse(&[]).damage, None);
    for len in 0..200 {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let _ = parse(&junk);
        let _ = parse(&vec![0xff; len]);
    }
}

/// The mark a verifier would journal after the first `n` entries of `bytes`.
fn mark_after(bytes: &[u8], n: usize) -> Trusted {
    let log = parse(bytes);
    let e = &log.entries[n - 1];
    Trusted {
        valid_len: e.offset + e.len,
        last_index: e.index,
        last_checksum: e.checksum,
    }
}

#[test]
fn a_guided_parse_trusts_the_marked_prefix_and_judges_like_a_whole_parse() {
    let (bytes, starts) = log_of(6);
    let mark = mark_after(&bytes, 4);
    let guided = parse_guided(&bytes, Some(mark));
    assert_eq!(guided.bytes_trusted, starts[4]);
    assert_eq!(guided.shrunk_from, None);
    assert_eq!(guided.log, parse(&bytes));

    // Damage after the mark is found as without it.
    let mut torn = bytes.clone();
    torn.truncate(bytes.len() - 5);
    let guided = parse_guided(&torn, Some(mark));
    assert_eq!(guided.bytes_trusted, starts[4]);
    assert_eq!(guided.log, parse(&torn));
    assert_eq!(guided.log.damage.map(|d| d.offset), Some(starts[5]));

    // A flipped command byte below the mark is not hashed again: trusted.
    let mut rotten = bytes.clone();
    let at = usize::try_from(starts[2]).unwrap() + 70;
    rotten[at] ^= 0xff;
    assert!(parse(&rotten).damage.is_some());
    let guided = parse_guided(&rotten, Some(mark));
    assert_eq!(guided.bytes_trusted, starts[4]);
    assert!(guided.log.damage.is_none());
}

#[test]
fn a_guided_parse_verifies_whole_when_the_mark_does_not_hold() {
    let (bytes, starts) = log_of(6);
    let mark = mark_after(&bytes, 4);
    for wrong in [
        Trusted {
            valid_len: mark.valid_len + 1,
            ..mark
        },
        Trusted {
            last_index: mark.last_index + 1,
            ..mark
        },
        Trusted {
            last_checksum: !mark.last_checksum,
            ..mark
        },
    ] {
        let guided = parse_guided(&bytes, Some(wrong));
        assert_eq!(guided.bytes_trusted, 0, "{wrong:?}");
        assert_eq!(guided.shrunk_from, None);
        assert_eq!(guided.log, parse(&bytes));
    }
    // Shorter than the mark: verified whole and reported.
    let short = &bytes[..usize::try_from(starts[3]).unwrap()];
    let guided = parse_guided(short, Some(mark));
    assert_eq!(guided.bytes_trusted, 0);
    assert_eq!(guided.shrunk_from, Some(mark.valid_len));
    assert_eq!(guided.log, parse(short));
    // Garbage with any mark never panics.
    for len in 0..bytes.len() {
        let _ = parse_guided(&bytes[..len], Some(mark));
        let _ = parse_guided(&bytes[len..], Some(mark));
    }
}

/// A delete-segments command of stream 0, topic 0, partition 0.
fn delete_segments() -> Vec<u8> {
    let mut p = vec![1, 4, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0];
    p.extend(0u32.to_le_bytes());
    p.extend(1u32.to_le_bytes());
    p
}

#[test]
fn dropping_entries_renumbers_and_reseals_the_later_ones_and_equals_a_log_written_without_them() {
    // Entries 0..6; 2 and 4 are delete-segments entries.
    let kinds = [202, 202, 503, 202, 503, 202];
    let mut bytes = Vec::new();
    let mut drop = Vec::new();
    let mut expected = Vec::new();
    let mut kept = 0u64;
    for (i, code) in (0u64..).zip(kinds) {
        let payload = if code == 503 {
            drop.push(bytes.len() as u64);
            delete_segments()
        } else {
            create_stream(i as u32, &format!("s{i}"))
        };
        bytes.extend(entry(i, code, &payload));
        if code != 503 {
            expected.extend(entry(kept, code, &payload));
            kept += 1;
        }
    }
    let new = without_entries(&bytes, &drop).unwrap();
    assert_eq!(new, expected);
    let log = parse(&new);
    assert!(log.damage.is_none(), "{:?}", log.damage);
    let indexes: Vec<u64> = log.entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    // Nothing dropped: the same bytes.
    assert_eq!(without_entries(&bytes, &[]).unwrap(), bytes);
}

#[test]
fn only_a_whole_verified_log_is_rewritten_and_only_at_entry_starts() {
    let (bytes, starts) = log_of(4);
    assert!(without_entries(&bytes, &[starts[1] + 1]).is_err());
    let mut torn = bytes.clone();
    torn.truncate(bytes.len() - 3);
    assert!(without_entries(&torn, &[starts[1]]).is_err());
    let mut zeros = bytes.clone();
    zeros.extend([0; 16]);
    assert!(without_entries(&zeros, &[starts[1]]).is_err());
    let mut corrupt = bytes.clone();
    corrupt[(starts[2] + 70) as usize] ^= 1;
    assert!(without_entries(&corrupt, &[starts[1]]).is_err());
    // Dropping the first entry numbers the rest from one lower.
    let new = without_entries(&bytes, &[starts[0]]).unwrap();
    let first = parse(&new).entries.first().map(|e| e.index);
    assert_eq!(first, parse(&bytes).entries.first().map(|e| e.index));
}

proptest::proptest! {
    #[test]
    fn rewriting_any_bytes_never_panics(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        drop in proptest::collection::vec(0u64..400, 0..4),
    ) {
        let _ = without_entries(&bytes, &drop);
    }
}
