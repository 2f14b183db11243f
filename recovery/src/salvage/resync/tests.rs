//! The resynchronising scanner's unit tests: what it finds past holes, garbage and
//! torn tails, and what it never takes for a message.

use super::*;
use xxhash_rust::xxh3::xxh3_64;

fn message(offset: u64, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; HEADER_LEN];
    m[24..32].copy_from_slice(&offset.to_le_bytes());
    m[32..40].copy_from_slice(&(1000 + offset).to_le_bytes());
    m[52..56].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    m.extend_from_slice(payload);
    let sum = xxh3_64(&m[8..]);
    m[..8].copy_from_slice(&sum.to_le_bytes());
    m
}

fn scan(bytes: &[u8]) -> FileScan {
    resync_scan(io::Cursor::new(bytes), bytes.len() as u64).unwrap()
}

fn offsets(s: &FileScan) -> Vec<u64> {
    s.messages.iter().map(|m| m.offset).collect()
}

#[test]
fn finds_messages_after_a_zero_hole_and_garbage() {
    let mut f = message(0, b"a");
    f.extend(vec![0u8; 5000]);
    f.extend(message(7, b"bb"));
    f.extend(b"garbage!".repeat(20));
    f.extend(message(3, b"ccc"));
    let s = scan(&f);
    assert_eq!(offsets(&s), vec![0, 7, 3]);
    assert_eq!(s.gaps.len(), 2);
    assert!(s.gaps[0].zeros && !s.gaps[1].zeros);
    assert_eq!(s.gaps[0].range, ByteRange::new(57, 5057));
    assert_eq!(s.len, f.len() as u64);
    assert_eq!(s.xxh3, xxh3_64(&f));
    assert!(s.hole_followed_by_data().is_some());
}

#[test]
fn a_message_whose_checksum_starts_with_zero_bytes_is_found_after_zeros() {
    // Find a payload whose checksum's low byte is zero, then put it after zeros.
    let m = (0u32..)
        .map(|i| message(9, &i.to_le_bytes()))
        .find(|m| m[0] == 0 && m[1] == 0)
        .unwrap();
    let mut f = vec![0u8; 300];
    f.extend(&m);
    assert_eq!(offsets(&scan(&f)), vec![9]);
}

#[test]
fn a_message_nested_in_a_valid_payload_is_not_taken() {
    let inner = message(5, b"inner");
    let outer = message(1, &inner);
    let s = scan(&outer);
    assert_eq!(offsets(&s), vec![1]);
    assert!(s.gaps.is_empty());
}

#[test]
fn a_torn_tail_is_a_gap_and_the_digest_covers_every_byte() {
    let mut f = message(0, b"x");
    let second = message(1, b"yy");
    f.extend(&second[..30]);
    let s = scan(&f);
    assert_eq!(offsets(&s), vec![0]);
    assert_eq!(
        s.gaps,
        vec![Gap {
            range: ByteRange::new(57, 87),
            zeros: false
        }]
    );
    assert_eq!(s.hole_followed_by_data(), None);
    assert_eq!(s.xxh3, xxh3_64(&f));
}

#[test]
fn a_zero_hole_before_data_is_one_gap_of_zeros() {
    let mut f = message(0, b"a");
    f.extend(vec![0u8; 1000]);
    f.extend(message(1, b"b"));
    let s = scan(&f);
    assert_eq!(
        s.gaps,
        vec![Gap {
            range: ByteRange::new(57, 1057),
            zeros: true
        }]
    );
    assert_eq!(s.hole_followed_by_data(), Some(s.gaps[0]));
}

/// A piece of a generated log: a message with this offset and payload, zeros, or
/// bytes that are neither (never starting with 8 zeros, never a valid frame).
#[derive(Clone, Debug)]
enum Piece {
    Message(u64, Vec<u8>),
    Zeros(usize),
    Garbage(Vec<u8>),
}

fn piece() -> impl proptest::strategy::Strategy<Value = Piece> {
    use proptest::prelude::*;
    prop_oneof![
        (0u64..1000, proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(o, p)| Piece::Message(o, p)),
        (1usize..3000).prop_map(Piece::Zeros),
        proptest::collection::vec(1u8..=255, 1..200).prop_map(Piece::Garbage),
    ]
}

proptest::proptest! {
    /// Every message laid between zeros and garbage is found, in order, at its
    /// place, and the gaps and messages tile the file.
    #[test]
    fn every_message_between_zeros_and_garbage_is_found(
        pieces in proptest::collection::vec(piece(), 0..40),
        trickle in 1usize..5000,
    ) {
        let mut f = Vec::new();
        let mut expected = Vec::new();
        for p in &pieces {
            match p {
                Piece::Message(o, payload) => {
                    let m = message(*o, payload);
                    expected.push((*o, f.len() as u64, (f.len() + m.len()) as u64));
                    f.extend(m);
                }
                Piece::Zeros(n) => f.extend(std::iter::repeat_n(0u8, *n)),
                Piece::Garbage(g) => f.extend(g),
            }
        }
        let s = scan(&f);
        let found: Vec<_> = s
            .messages
            .iter()
            .map(|m| (m.offset, m.range.start, m.range.end))
            .collect();
        proptest::prop_assert_eq!(&found, &expected);
        let covered: u64 = s.messages.iter().map(|m| m.range.len()).sum::<u64>()
            + s.gaps.iter().map(|g| g.range.len()).sum::<u64>();
        proptest::prop_assert_eq!(covered, f.len() as u64);
        // The result does not depend on how the reader hands out the bytes.
        let slow = resync_scan(Trickle(io::Cursor::new(&f), trickle), f.len() as u64).unwrap();
        proptest::prop_assert_eq!(slow, s);
    }
}

/// Hands out at most `.1` bytes per read.
struct Trickle<'a>(io::Cursor<&'a [u8]>, usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.1.min(buf.len());
        self.0.read(&mut buf[..n])
    }
}

impl Seek for Trickle<'_> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(to)
    }
}

#[test]
fn a_long_zero_run_is_crossed_without_hashing_each_byte() {
    let mut f = vec![0u8; 8 << 20];
    f.extend(message(2, b"z"));
    let s = scan(&f);
    assert_eq!(offsets(&s), vec![2]);
    assert_eq!(s.messages[0].range.start, 8 << 20);
}

/// A reader that remembers the largest read it was asked for.
struct Recording<'a> {
    inner: io::Cursor<&'a [u8]>,
    largest: usize,
}

impl Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.largest = self.largest.max(buf.len());
        self.inner.read(buf)
    }
}

impl Seek for Recording<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.inner.seek(to)
    }
}

fn scan_recording(bytes: &[u8]) -> (FileScan, usize) {
    let mut src = Recording {
        inner: io::Cursor::new(bytes),
        largest: 0,
    };
    let s = resync_scan(&mut src, bytes.len() as u64).unwrap();
    (s, src.largest)
}

#[test]
fn long_frames_are_hashed_through_a_fixed_buffer_valid_or_not() {
    let long = message(1, &vec![7u8; 3 << 20]);
    let mut f = message(0, b"a");
    f.extend(&long);
    f.extend(message(2, b"b"));
    // A header claiming a long frame that fits in the file but whose bytes are not
    // its payload: not a message, and what follows it is still found.
    let mut fake = message(3, b"c");
    fake[52..56].copy_from_slice(&(2u32 << 20).to_le_bytes());
    f.extend(&fake);
    f.extend(vec![0x55u8; 100]);
    f.extend(message(4, &vec![9u8; 2 << 20]));
    f.extend(message(5, b"d"));
    let (s, largest) = scan_recording(&f);
    assert_eq!(offsets(&s), vec![0, 1, 2, 4, 5]);
    assert_eq!(s.xxh3, xxh3_64(&f));
    assert_eq!(s.len, f.len() as u64);
    assert_eq!(
        s.messages[1].range,
        ByteRange::new(57, 57 + long.len() as u64)
    );
    assert!(
        largest as u64 <= READ_LEN as u64 + FAR + HEADER_LEN as u64,
        "asked for {largest} bytes at once"
    );
}
