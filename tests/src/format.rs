//! Byte formats of an Iggy 0.6 segment, written independently of the product crates.
//!
//! - A message in a `.log` is a 56-byte little-endian header (checksum, id, offset,
//!   timestamp, origin timestamp, user headers length, payload length) followed by the
//!   payload and then the user headers. The checksum is XXH3-64 (seed 0) of every byte
//!   of the message after the checksum field.
//! - An `.index` holds one 16-byte entry per message: relative offset u32, end position
//!   u32 (where the message ends in the `.log`), timestamp u64.
//!
//! [`encode_message`] and [`index_entry`] write these ([`SegmentAppender`] streams
//! both into files); [`decode_message`] and
//! [`scan_log`] are a minimal reader used to walk logs (fixtures and damaged data).

use xxhash_rust::xxh3::xxh3_64;

/// Size of the fixed message header in a `.log`.
pub const MESSAGE_HEADER_SIZE: usize = 56;
/// Size of one `.index` entry.
pub const INDEX_ENTRY_SIZE: usize = 16;
/// Byte position of the origin timestamp inside a message header.
pub const ORIGIN_TIMESTAMP_POS: usize = 40;

/// One message as stored in a `.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u128,
    pub offset: u64,
    pub timestamp: u64,
    pub origin_timestamp: u64,
    pub payload: Vec<u8>,
    pub headers: Vec<u8>,
}

impl Message {
    /// Encoded size: header + payload + user headers.
    pub fn encoded_len(&self) -> usize {
        MESSAGE_HEADER_SIZE + self.payload.len() + self.headers.len()
    }
}

/// The checksum of a message: XXH3-64, seed 0, of the message bytes after the checksum
/// field (`message[8..]`).
pub fn checksum(message_without_checksum: &[u8]) -> u64 {
    xxh3_64(message_without_checksum)
}

/// Encodes a message exactly as iggy-server 0.6.0 stores it in a `.log`.
pub fn encode_message(message: &Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(message.encoded_len());
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&message.id.to_le_bytes());
    bytes.extend_from_slice(&message.offset.to_le_bytes());
    bytes.extend_from_slice(&message.timestamp.to_le_bytes());
    bytes.extend_from_slice(&message.origin_timestamp.to_le_bytes());
    bytes.extend_from_slice(&len_u32(message.headers.len()).to_le_bytes());
    bytes.extend_from_slice(&len_u32(message.payload.len()).to_le_bytes());
    bytes.extend_from_slice(&message.payload);
    bytes.extend_from_slice(&message.headers);
    let sum = checksum(&bytes[8..]);
    bytes[..8].copy_from_slice(&sum.to_le_bytes());
    bytes
}

/// One `.index` entry: the message's offset relative to the segment start, the byte
/// position in the `.log` where the message ends, and its timestamp.
pub fn index_entry(
    relative_offset: u32,
    end_position: u32,
    timestamp: u64,
) -> [u8; INDEX_ENTRY_SIZE] {
    let mut entry = [0; INDEX_ENTRY_SIZE];
    entry[0..4].copy_from_slice(&relative_offset.to_le_bytes());
    entry[4..8].copy_from_slice(&end_position.to_le_bytes());
    entry[8..16].copy_from_slice(&timestamp.to_le_bytes());
    entry
}

/// Appends messages to one segment's `.log` and `.index` as the server writes them,
/// without holding the segment in memory (the benchmarks write GiBs this way).
pub struct SegmentAppender<W: std::io::Write> {
    log: W,
    index: W,
    start_offset: u64,
    /// Bytes of the `.log` so far: where the next message starts.
    pub len: u64,
}

impl<W: std::io::Write> SegmentAppender<W> {
    pub fn new(log: W, index: W, start_offset: u64) -> Self {
        Self {
            log,
            index,
            start_offset,
            len: 0,
        }
    }

    /// Writes `message` and its index entry; returns the message's bytes.
    pub fn append(&mut self, message: &Message) -> std::io::Result<Vec<u8>> {
        let bytes = encode_message(message);
        self.log.write_all(&bytes)?;
        self.len += bytes.len() as u64;
        let relative =
            u32::try_from(message.offset - self.start_offset).expect("relative offset fits in u32");
        let end = u32::try_from(self.len).expect("an index position fits in u32");
        self.index
            .write_all(&index_entry(relative, end, message.timestamp))?;
        Ok(bytes)
    }
}

/// A decoded `.index` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub relative_offset: u32,
    pub end_position: u32,
    pub timestamp: u64,
}

/// Decodes every whole entry of an `.index` (a trailing partial entry is ignored).
pub fn decode_index(index: &[u8]) -> Vec<IndexEntry> {
    index
        .chunks_exact(INDEX_ENTRY_SIZE)
        .map(|e| IndexEntry {
            relative_offset: u32_at(e, 0),
            end_position: u32_at(e, 4),
            timestamp: u64_at(e, 8),
        })
        .collect()
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes remain than the header or the declared lengths need.
    Truncated { needed: usize, available: usize },
    /// The stored checksum does not match the message bytes.
    ChecksumMismatch { stored: u64, computed: u64 },
}

/// Decodes the message at the start of `bytes`, verifying its checksum.
/// Returns the message and its encoded length.
pub fn decode_message(bytes: &[u8]) -> Result<(Message, usize), DecodeError> {
    if bytes.len() < MESSAGE_HEADER_SIZE {
        return Err(DecodeError::Truncated {
            needed: MESSAGE_HEADER_SIZE,
            available: bytes.len(),
        });
    }
    let headers_len = u32_at(bytes, 48) as usize;
    let payload_len = u32_at(bytes, 52) as usize;
    let total = MESSAGE_HEADER_SIZE + payload_len + headers_len;
    if bytes.len() < total {
        return Err(DecodeError::Truncated {
            needed: total,
            available: bytes.len(),
        });
    }
    let stored = u64_at(bytes, 0);
    let computed = checksum(&bytes[8..total]);
    if stored != computed {
        return Err(DecodeError::ChecksumMismatch { stored, computed });
    }
    let payload_end = MESSAGE_HEADER_SIZE + payload_len;
    let message = Message {
        id: u128::from_le_bytes(bytes[8..24].try_into().expect("16 bytes")),
        offset: u64_at(bytes, 24),
        timestamp: u64_at(bytes, 32),
        origin_timestamp: u64_at(bytes, 40),
        payload: bytes[MESSAGE_HEADER_SIZE..payload_end].to_vec(),
        headers: bytes[payload_end..total].to_vec(),
    };
    Ok((message, total))
}

/// A valid message found in a `.log` and where it lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedMessage {
    /// Byte position of the message's first byte in the `.log`.
    pub start: usize,
    /// Byte position just after the message's last byte.
    pub end: usize,
    pub message: Message,
}

/// The valid prefix of a `.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogScan {
    pub messages: Vec<LoggedMessage>,
    /// Where and why scanning stopped before the end of the log (`None`: the log is
    /// exactly a sequence of valid messages).
    pub stopped: Option<(usize, DecodeError)>,
}

impl LogScan {
    /// Byte length of the valid prefix.
    pub fn valid_len(&self) -> usize {
        self.messages.last().map_or(0, |m| m.end)
    }
}

/// Walks a `.log` from byte 0, message by message, stopping at the first message that
/// is truncated or fails its checksum.
pub fn scan_log(log: &[u8]) -> LogScan {
    let mut messages = Vec::new();
    let mut pos = 0;
    while pos < log.len() {
        match decode_message(&log[pos..]) {
            Ok((message, len)) => {
                messages.push(LoggedMessage {
                    start: pos,
                    end: pos + len,
                    message,
                });
                pos += len;
            }
            Err(error) => {
                return LogScan {
                    messages,
                    stopped: Some((pos, error)),
                }
            }
        }
    }
    LogScan {
        messages,
        stopped: None,
    }
}

/// The `.index` a consistent segment starting at `start_offset` has for these messages
/// (in `.log` order).
pub fn index_for(start_offset: u64, messages: &[LoggedMessage]) -> Vec<u8> {
    let mut index = Vec::with_capacity(messages.len() * INDEX_ENTRY_SIZE);
    for m in messages {
        let relative = m.message.offset - start_offset;
        let relative = u32::try_from(relative).expect("relative offset fits in u32");
        let end = u32::try_from(m.end).expect("log position fits in u32");
        index.extend_from_slice(&index_entry(relative, end, m.message.timestamp));
    }
    index
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("length fits in u32")
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{fixture, CLEAN, KILLED_UNDER_LOAD};
    use crate::layout::{list_partitions, list_segments};
    use std::fs;
    use std::path::PathBuf;

    /// A parser written straight from the table in iggy-format.md, sharing nothing with
    /// `decode_message`: returns (header fields, payload, headers) of each message.
    fn parse_independently(log: &[u8]) -> Vec<Message> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < log.len() {
            let h = &log[pos..pos + 56];
            let field = |a: usize, b: usize| {
                h[a..b]
                    .iter()
                    .rev()
                    .fold(0u128, |acc, &x| (acc << 8) | x as u128)
            };
            let headers_len = field(48, 52) as usize;
            let payload_len = field(52, 56) as usize;
            let body = pos + 56;
            out.push(Message {
                id: field(8, 24),
                offset: field(24, 32) as u64,
                timestamp: field(32, 40) as u64,
                origin_timestamp: field(40, 48) as u64,
                payload: log[body..body + payload_len].to_vec(),
                headers: log[body + payload_len..body + payload_len + headers_len].to_vec(),
            });
            pos = body + payload_len + headers_len;
        }
        out
    }

    fn all_fixture_segments() -> Vec<(u64, PathBuf, PathBuf)> {
        let mut segments = Vec::new();
        for name in [CLEAN, KILLED_UNDER_LOAD] {
            let root = fixture(name);
            for partition in list_partitions(&root).unwrap() {
                for s in list_segments(&root.join(partition)).unwrap() {
                    segments.push((s.start_offset, s.log.unwrap(), s.index.unwrap()));
                }
            }
        }
        segments
    }

    #[test]
    fn reencoding_fixture_logs_is_byte_identical_and_rebuilds_their_indexes() {
        let segments = all_fixture_segments();
        assert_eq!(
            segments.len(),
            6 + 17,
            "clean: 6 pairs (2 empty); killed-under-load: 16 + 1 empty"
        );
        let mut total = 0;
        for (start, log_path, index_path) in segments {
            let log = fs::read(&log_path).unwrap();
            let index = fs::read(&index_path).unwrap();
            let mut relog = Vec::new();
            let mut reindex = Vec::new();
            for (i, m) in parse_independently(&log).iter().enumerate() {
                assert_eq!(m.offset, start + i as u64, "{}", log_path.display());
                relog.extend_from_slice(&encode_message(m));
                reindex.extend_from_slice(&index_entry(i as u32, relog.len() as u32, m.timestamp));
                total += 1;
            }
            assert!(
                relog == log,
                "re-encoded log differs: {}",
                log_path.display()
            );
            assert!(
                reindex == index,
                "rebuilt index differs: {}",
                index_path.display()
            );
            // The decoder agrees with the independent parser on the same data.
            let scan = scan_log(&log);
            assert_eq!(scan.stopped, None);
            assert_eq!(index_for(start, &scan.messages), index);
        }
        assert_eq!(total, 2886 + 1200 + 300 + 48_650);
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let m = Message {
            id: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            offset: 42,
            timestamp: 1_750_000_000_000_001,
            origin_timestamp: 1_750_000_000_000_000,
            payload: b"hello".to_vec(),
            headers: vec![9, 8, 7],
        };
        let bytes = encode_message(&m);
        assert_eq!(bytes.len(), 56 + 5 + 3);
        assert_eq!(
            &bytes[48..52],
            &3u32.to_le_bytes(),
            "headers length comes first"
        );
        assert_eq!(&bytes[56..61], b"hello", "payload before headers");
        assert_eq!(decode_message(&bytes), Ok((m, 64)));
    }

    #[test]
    fn decoder_rejects_torn_and_corrupt_messages() {
        let m = Message {
            id: 1,
            offset: 0,
            timestamp: 2,
            origin_timestamp: 3,
            payload: vec![1; 20],
            headers: vec![],
        };
        let mut bytes = encode_message(&m);
        assert!(matches!(
            decode_message(&bytes[..70]),
            Err(DecodeError::Truncated {
                needed: 76,
                available: 70
            })
        ));
        assert!(matches!(
            decode_message(&bytes[..10]),
            Err(DecodeError::Truncated { .. })
        ));
        bytes[60] ^= 0xff;
        assert!(matches!(
            decode_message(&bytes),
            Err(DecodeError::ChecksumMismatch { .. })
        ));
        assert!(
            matches!(
                decode_message(&[0; 56]),
                Err(DecodeError::ChecksumMismatch { .. })
            ),
            "zeros are invalid"
        );
    }

    #[test]
    fn scan_stops_at_first_invalid_message() {
        let mk = |offset| {
            encode_message(&Message {
                id: 7,
                offset,
                timestamp: 1,
                origin_timestamp: 1,
                payload: vec![5; 9],
                headers: vec![],
            })
        };
        let mut log = [mk(0), mk(1)].concat();
        log.extend_from_slice(&[0; 100]);
        let scan = scan_log(&log);
        assert_eq!(scan.messages.len(), 2);
        assert_eq!(scan.valid_len(), 130);
        assert!(matches!(
            scan.stopped,
            Some((130, DecodeError::ChecksumMismatch { .. }))
        ));
    }

    #[test]
    fn index_entries_decode() {
        let bytes = [index_entry(0, 125, 9), index_entry(1, 250, 10)].concat();
        let mut with_half = bytes.clone();
        with_half.extend_from_slice(&[1; 8]);
        let expected = vec![
            IndexEntry {
                relative_offset: 0,
                end_position: 125,
                timestamp: 9,
            },
            IndexEntry {
                relative_offset: 1,
                end_position: 250,
                timestamp: 10,
            },
        ];
        assert_eq!(decode_index(&bytes), expected);
        assert_eq!(decode_index(&with_half), expected);
    }
}
