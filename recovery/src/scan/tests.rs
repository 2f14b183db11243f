//! The scanner's tests: frames, torn and zero tails, the visitor stopping, read sizes.

use super::window::FIRST_READ;
use super::*;
use xxhash_rust::xxh3::xxh3_64;

fn message(offset: u64, payload_len: usize) -> Vec<u8> {
    let mut m = vec![0u8; HEADER_LEN];
    m[24..32].copy_from_slice(&offset.to_le_bytes());
    m[52..56].copy_from_slice(&(payload_len as u32).to_le_bytes());
    m.extend((0..payload_len).map(|i| (i * 13 + 5) as u8));
    let sum = xxh3_64(&m[8..]);
    m[..8].copy_from_slice(&sum.to_le_bytes());
    m
}

/// A reader that remembers the largest read it was asked for: the room the scanner
/// allocated.
struct Recording<'a> {
    bytes: &'a [u8],
    largest: usize,
}

impl Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.largest = self.largest.max(buf.len());
        self.bytes.read(buf)
    }
}

fn scan_small(bytes: &[u8], chunk: usize) -> ScanOutcome {
    let mut scratch = ScanBuffer::new(chunk);
    let out = scan_log_with(bytes, ScanStart::segment(0), &mut scratch, IgnoreMessages)
        .unwrap()
        .ended()
        .unwrap();
    assert!(scratch.buf.len() <= chunk.max(HEADER_LEN));
    out
}

#[test]
fn a_message_longer_than_the_buffer_is_checked_piece_by_piece() {
    let mut log = message(0, 10);
    log.extend(message(1, 5000));
    log.extend(message(2, 10));
    for chunk in [HEADER_LEN, 100, 4096, 1 << 20] {
        let whole = scan_small(&log, chunk);
        assert_eq!(whole.messages, 3, "chunk {chunk}");
        assert_eq!(whole.stop, StopReason::EndOfFile, "chunk {chunk}");

        // A flipped payload byte in the long message: followed by data.
        let mut bad = log.clone();
        bad[66 + 3000] ^= 1;
        let out = scan_small(&bad, chunk);
        assert_eq!(out.messages, 1, "chunk {chunk}");
        assert!(
            matches!(
                out.stop,
                StopReason::BadChecksum {
                    at: 66,
                    frame_len: 5056,
                    followed_by_data: true,
                    ..
                }
            ),
            "chunk {chunk}: {:?}",
            out.stop
        );

        // The same as the last message: a bad tail.
        let mut tail = bad[..66 + 5056].to_vec();
        tail[100] ^= 1;
        let out = scan_small(&tail, chunk);
        assert!(
            matches!(
                out.stop,
                StopReason::BadChecksum {
                    followed_by_data: false,
                    ..
                }
            ),
            "chunk {chunk}: {:?}",
            out.stop
        );

        // Torn inside the long message.
        let out = scan_small(&log[..66 + 4000], chunk);
        assert_eq!(
            out.stop,
            StopReason::TornMessage {
                at: 66,
                frame_len: 5056,
                available: 4000
            },
            "chunk {chunk}"
        );
    }
}

#[test]
fn a_huge_claimed_length_reads_only_what_the_file_holds() {
    let mut log = message(0, 10);
    let mut claim = message(1, 0);
    claim[52..56].copy_from_slice(&64_000_000u32.to_le_bytes());
    log.extend(&claim);
    log.extend(b"a few payload bytes");
    let mut src = Recording {
        bytes: &log,
        largest: 0,
    };
    let out = scan_log(&mut src, ScanStart::segment(0), IgnoreMessages)
        .unwrap()
        .ended()
        .unwrap();
    assert_eq!(
        out.stop,
        StopReason::TornMessage {
            at: 66,
            frame_len: 64_000_056,
            available: HEADER_LEN as u64 + 19
        }
    );
    assert!(src.largest <= FIRST_READ, "asked for {} bytes", src.largest);
}

#[test]
fn a_visitor_stops_the_scan_before_a_message_it_declines() {
    let mut log = message(0, 10);
    log.extend(message(1, 20));
    log.extend(message(2, 30));
    let mut seen = Vec::new();
    let scanned = scan_log(
        &log[..],
        ScanStart::segment(0),
        EachMessage(|m: &MessageMeta| {
            seen.push(m.offset);
            Ok::<_, io::Error>(())
        }),
    )
    .unwrap();
    assert_eq!(seen, [0, 1, 2]);
    assert_eq!(scanned.ended().map(|o| o.messages), Some(3));

    /// Accepts messages until offset 2.
    struct UpTo2;
    impl Visitor for UpTo2 {
        type Error = io::Error;
        fn message(&mut self, meta: &MessageMeta) -> io::Result<bool> {
            Ok(meta.offset < 2)
        }
    }
    let Scanned::Stopped { at, last } = scan_log(&log[..], ScanStart::segment(0), UpTo2).unwrap()
    else {
        panic!("not stopped");
    };
    assert_eq!(at, 66 + 76);
    assert_eq!(last.map(|m| (m.offset, m.end)), Some((1, at)));
}

#[test]
fn a_visitor_error_of_its_own_type_ends_the_scan() {
    #[derive(Debug, PartialEq)]
    enum Refused {
        Read(io::ErrorKind),
        At(u64),
    }
    impl From<io::Error> for Refused {
        fn from(e: io::Error) -> Self {
            Refused::Read(e.kind())
        }
    }
    let mut log = message(0, 10);
    log.extend(message(1, 20));
    let out = scan_log(
        &log[..],
        ScanStart::segment(0),
        EachMessage(|m: &MessageMeta| {
            if m.offset == 1 {
                Err(Refused::At(m.start))
            } else {
                Ok(())
            }
        }),
    );
    assert_eq!(out, Err(Refused::At(66)));
}
