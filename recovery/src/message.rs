//! The Iggy 0.6 message frame as stored in a segment's `.log`.
//!
//! Messages follow each other with no padding and no batch framing, so a log is read
//! frame by frame from byte 0. All integers are little-endian.

use xxhash_rust::xxh3::xxh3_64;

/// Bytes before the payload: checksum, id, offset, two timestamps, two lengths.
pub const HEADER_LEN: usize = 56;

/// Largest payload iggy-server 0.6 accepts; a longer declared length is garbage.
pub const MAX_PAYLOAD_LEN: u32 = 64_000_000;

/// Largest user-headers block iggy-server 0.6 accepts.
pub const MAX_HEADERS_LEN: u32 = 100_000;

/// Largest frame a valid log can hold: bounds how much one message may make us buffer.
pub const MAX_MESSAGE_LEN: u64 =
    HEADER_LEN as u64 + MAX_PAYLOAD_LEN as u64 + MAX_HEADERS_LEN as u64;

/// The fixed 56-byte header of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    pub checksum: u64,
    pub id: u128,
    pub offset: u64,
    pub timestamp: u64,
    pub origin_timestamp: u64,
    pub headers_len: u32,
    pub payload_len: u32,
}

impl MessageHeader {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Self {
        let u64_at = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let u32_at = |i: usize| {
            let mut x = [0u8; 4];
            x.copy_from_slice(&b[i..i + 4]);
            u32::from_le_bytes(x)
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[8..24]);
        Self {
            checksum: u64_at(0),
            id: u128::from_le_bytes(id),
            offset: u64_at(24),
            timestamp: u64_at(32),
            origin_timestamp: u64_at(40),
            headers_len: u32_at(48),
            payload_len: u32_at(52),
        }
    }

    /// Whole frame length: header, payload and user headers.
    pub fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.payload_len) + u64::from(self.headers_len)
    }

    /// Whether the declared lengths are within what the server could have written.
    pub fn lengths_plausible(&self) -> bool {
        self.payload_len <= MAX_PAYLOAD_LEN && self.headers_len <= MAX_HEADERS_LEN
    }
}

/// Checksum of a whole frame: XXH3-64 (seed 0) of everything after the checksum field.
/// `None` when `frame` is shorter than the checksum field.
pub fn frame_checksum(frame: &[u8]) -> Option<u64> {
    frame.get(8..).map(checksum_of)
}

/// Inputs XXH3 hashes with its 129-to-240-byte code: the frames of messages with
/// about 80 to 190 bytes of payload, which is where the real server's messages fall.
const MID_SIZE: std::ops::RangeInclusive<usize> = 129..=240;

/// XXH3-64 of `bytes`. Both crates compute the same function; on this project's
/// machine twox-hash's code for XXH3's mid-size inputs ran 1.4-1.7× as fast as
/// xxhash-rust's (the check of 128-byte messages took a quarter less time), and
/// xxhash-rust's vectorised loop 1.2× as fast on longer ones.
fn checksum_of(bytes: &[u8]) -> u64 {
    if MID_SIZE.contains(&bytes.len()) {
        twox_hash::XxHash3_64::oneshot(bytes)
    } else {
        xxh3_64(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_at_their_byte_positions() {
        let mut b = [0u8; HEADER_LEN];
        b[0] = 1;
        b[8] = 2;
        b[24] = 3;
        b[32] = 4;
        b[40] = 5;
        b[48] = 6;
        b[52] = 7;
        let h = MessageHeader::parse(&b);
        assert_eq!(
            (h.checksum, h.id, h.offset, h.timestamp, h.origin_timestamp),
            (1, 2, 3, 4, 5)
        );
        assert_eq!((h.headers_len, h.payload_len), (6, 7));
        assert_eq!(h.frame_len(), 56 + 6 + 7);
    }

    #[test]
    fn the_checksum_is_xxh3_at_every_length() {
        // Varied bytes, so that no length's input is a run of one value.
        let bytes: Vec<u8> = (0..1200u32).map(|i| (i * 131 % 251) as u8).collect();
        for len in 0..=bytes.len() {
            let input = &bytes[..len];
            assert_eq!(checksum_of(input), xxh3_64(input), "{len} bytes");
        }
    }

    #[test]
    fn implausible_lengths_are_flagged() {
        let mut b = [0u8; HEADER_LEN];
        b[52..56].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!MessageHeader::parse(&b).lengths_plausible());
    }
}
