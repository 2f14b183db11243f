//! A segment's `.index`: one 16-byte entry per message of its `.log`.
//!
//! Entry i holds message i's offset relative to the segment start (u32), the byte
//! position where that message *ends* in the log (u32) and its timestamp (u64). The
//! server derives counts, offsets and read positions from the index alone, so an index
//! must match its log exactly. The verifier compares an index with the messages the
//! scanner finds, entry by entry, without loading either file whole; the builder writes
//! the bytes iggy-server 0.6.0 would have written.

use crate::scan::{MessageMeta, Visitor};
use serde::Serialize;
use std::io::{self, Read, Write};

pub const ENTRY_LEN: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct IndexEntry {
    pub relative_offset: u32,
    pub position: u32,
    pub timestamp: u64,
}

impl IndexEntry {
    /// The entry the server writes for `meta` in a segment starting at `segment_start`;
    /// `None` when the values do not fit the 32-bit fields (a segment 0.6 cannot hold).
    pub fn for_message(meta: &MessageMeta, segment_start: u64) -> Option<Self> {
        Some(Self {
            relative_offset: u32::try_from(meta.offset.checked_sub(segment_start)?).ok()?,
            position: u32::try_from(meta.end).ok()?,
            timestamp: meta.timestamp,
        })
    }

    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..4].copy_from_slice(&self.relative_offset.to_le_bytes());
        b[4..8].copy_from_slice(&self.position.to_le_bytes());
        b[8..16].copy_from_slice(&self.timestamp.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; ENTRY_LEN]) -> Self {
        let mut r = [0u8; 4];
        let mut p = [0u8; 4];
        let mut t = [0u8; 8];
        r.copy_from_slice(&b[0..4]);
        p.copy_from_slice(&b[4..8]);
        t.copy_from_slice(&b[8..16]);
        Self {
            relative_offset: u32::from_le_bytes(r),
            position: u32::from_le_bytes(p),
            timestamp: u64::from_le_bytes(t),
        }
    }
}

/// How an index relates to the valid messages of its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum IndexState {
    /// One matching entry per valid message, nothing more.
    Consistent,
    /// No `.index` file.
    Missing,
    /// The length is not a multiple of 16: the last entry is torn.
    HalfEntry { len: u64 },
    /// Every entry matches, but some messages have none.
    Short { entries: u64, messages: u64 },
    /// Every message has its entry, and entries follow for messages that are not
    /// there; `zero_filled` when all of those extra entries are zero bytes.
    Long {
        entries: u64,
        messages: u64,
        zero_filled: bool,
    },
    /// Entry `entry` (0-based, at byte `entry * 16`) differs from its message.
    Mismatch { entry: u64 },
    /// A message's offset or end position cannot be stored in 32 bits.
    Unrepresentable { entry: u64 },
}

impl IndexState {
    pub fn is_consistent(&self) -> bool {
        matches!(self, IndexState::Consistent)
    }

    /// Byte position in the `.index` where it stops matching the log.
    pub fn position(&self) -> Option<u64> {
        let entry_pos = |n: u64| n.saturating_mul(ENTRY_LEN as u64);
        match *self {
            IndexState::Consistent | IndexState::Missing => None,
            IndexState::HalfEntry { len } => Some(len - len % ENTRY_LEN as u64),
            IndexState::Short { entries, .. } => Some(entry_pos(entries)),
            IndexState::Long { messages, .. } => Some(entry_pos(messages)),
            IndexState::Mismatch { entry } | IndexState::Unrepresentable { entry } => {
                Some(entry_pos(entry))
            }
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            IndexState::Consistent => "index matches the log".into(),
            IndexState::Missing => "index file missing".into(),
            IndexState::HalfEntry { len } => {
                format!("index length {len} is not a multiple of {ENTRY_LEN}: torn last entry")
            }
            IndexState::Short { entries, messages } => {
                format!("index has {entries} entries for {messages} messages")
            }
            IndexState::Long {
                entries,
                messages,
                zero_filled,
            } => format!(
                "index has {entries} entries for {messages} messages{}",
                if zero_filled {
                    " (extra entries are zero bytes)"
                } else {
                    ""
                }
            ),
            IndexState::Mismatch { entry } => {
                format!("index entry {entry} does not match message {entry}")
            }
            IndexState::Unrepresentable { entry } => {
                format!("message {entry} lies beyond what a 0.6 index can address")
            }
        }
    }
}

/// How one message compares with its index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryCheck {
    /// The next entry is the one the server writes for the message.
    Matches,
    /// The index holds no entry for the message: it ends before it.
    NoEntry,
    /// Entry `entry` (counted from where the verifier started) is not the message's.
    Mismatch {
        entry: u64,
        found: IndexEntry,
        expected: IndexEntry,
    },
    /// The message's offset or end position does not fit an entry's 32-bit fields.
    Unrepresentable { entry: u64 },
    /// An earlier message already failed: this one was not compared.
    NotCompared,
}

/// Compares an index with the messages of its log as the scanner reports them.
pub struct IndexVerifier<R> {
    src: io::BufReader<R>,
    len: u64,
    segment_start: u64,
    matched: u64,
    first_mismatch: Option<u64>,
    unrepresentable: Option<u64>,
}

/// Largest read of the index: a scan reads the log in large chunks too.
const MAX_READ: u64 = 64 << 10;

impl<R: Read> IndexVerifier<R> {
    /// `len` is the length of the index from `src`'s position on, which is the entry of
    /// the first message the scan will report.
    pub fn new(src: R, len: u64, segment_start: u64) -> Self {
        // No bigger than what is there: the sidecar checks a few new entries at a time.
        let read_size = usize::try_from(len.clamp(ENTRY_LEN as u64, MAX_READ)).unwrap_or(ENTRY_LEN);
        Self {
            src: io::BufReader::with_capacity(read_size, src),
            len,
            segment_start,
            matched: 0,
            first_mismatch: None,
            unrepresentable: None,
        }
    }

    fn entries_in_file(&self) -> u64 {
        self.len / ENTRY_LEN as u64
    }

    /// Entries not compared yet.
    pub fn entries_left(&self) -> u64 {
        self.entries_in_file().saturating_sub(self.matched)
    }

    /// Checks the next message against the next entry. Only I/O errors are errors.
    pub fn check(&mut self, meta: &MessageMeta) -> io::Result<EntryCheck> {
        if self.first_mismatch.is_some() || self.unrepresentable.is_some() {
            return Ok(EntryCheck::NotCompared);
        }
        let n = self.matched;
        let Some(expected) = IndexEntry::for_message(meta, self.segment_start) else {
            self.unrepresentable = Some(n);
            return Ok(EntryCheck::Unrepresentable { entry: n });
        };
        if n >= self.entries_in_file() {
            return Ok(EntryCheck::NoEntry);
        }
        let mut b = [0u8; ENTRY_LEN];
        self.src.read_exact(&mut b)?;
        let found = IndexEntry::decode(&b);
        if found == expected {
            self.matched += 1;
            Ok(EntryCheck::Matches)
        } else {
            self.first_mismatch = Some(n);
            Ok(EntryCheck::Mismatch {
                entry: n,
                found,
                expected,
            })
        }
    }

    /// The verdict once the log's scan is over and `messages` valid messages were seen.
    pub fn finish(mut self, messages: u64) -> io::Result<IndexState> {
        if let Some(entry) = self.unrepresentable {
            return Ok(IndexState::Unrepresentable { entry });
        }
        if let Some(entry) = self.first_mismatch {
            return Ok(IndexState::Mismatch { entry });
        }
        let entries = self.entries_in_file();
        if self.len % ENTRY_LEN as u64 != 0 && entries <= messages {
            return Ok(IndexState::HalfEntry { len: self.len });
        }
        if entries < messages {
            return Ok(IndexState::Short { entries, messages });
        }
        if entries > messages || self.len % ENTRY_LEN as u64 != 0 {
            let zero_filled = rest_is_zero(&mut self.src)?;
            return Ok(IndexState::Long {
                entries,
                messages,
                zero_filled,
            });
        }
        Ok(IndexState::Consistent)
    }
}

/// Checks every message and never stops the scan: the log's valid prefix is wanted
/// whatever the index holds, and [`IndexVerifier::finish`] says how they relate.
impl<R: Read> Visitor for IndexVerifier<R> {
    type Error = io::Error;

    fn message(&mut self, meta: &MessageMeta) -> io::Result<bool> {
        self.check(meta).map(|_| true)
    }
}

fn rest_is_zero(src: &mut impl Read) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        match src.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                if buf.get(..n).is_some_and(|b| b.iter().any(|&x| x != 0)) {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes the index of a log as its messages are scanned, hashing what it writes so
/// the result can be journaled before it replaces anything.
pub struct IndexBuilder<W: Write> {
    out: W,
    segment_start: u64,
    len: u64,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl<W: Write> IndexBuilder<W> {
    pub fn new(out: W, segment_start: u64) -> Self {
        Self {
            out,
            segment_start,
            len: 0,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
        }
    }

    /// Writes the entry of the next message.
    pub fn add(&mut self, meta: &MessageMeta) -> io::Result<()> {
        let entry = IndexEntry::for_message(meta, self.segment_start).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "message at offset {} (ending at byte {}) cannot be indexed in 32 bits",
                    meta.offset, meta.end
                ),
            )
        })?;
        let bytes = entry.encode();
        self.out.write_all(&bytes)?;
        self.hasher.update(&bytes);
        self.len += ENTRY_LEN as u64;
        Ok(())
    }

    /// Flushes and returns the writer, the index length and its XXH3-64.
    pub fn finish(mut self) -> io::Result<(W, u64, u64)> {
        self.out.flush()?;
        let digest = self.hasher.digest();
        Ok((self.out, self.len, digest))
    }
}

impl<W: Write> Visitor for IndexBuilder<W> {
    type Error = io::Error;

    fn message(&mut self, meta: &MessageMeta) -> io::Result<bool> {
        self.add(meta).map(|()| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(i: u64) -> MessageMeta {
        MessageMeta {
            offset: 10 + i,
            start: i * 100,
            end: (i + 1) * 100,
            timestamp: 1000 + i,
            checksum: 0,
        }
    }

    fn index_of(n: u64) -> Vec<u8> {
        let mut b = IndexBuilder::new(Vec::new(), 10);
        for i in 0..n {
            b.add(&meta(i)).unwrap();
        }
        b.finish().unwrap().0
    }

    fn verify(bytes: &[u8], messages: u64) -> IndexState {
        let mut v = IndexVerifier::new(bytes, bytes.len() as u64, 10);
        for i in 0..messages {
            v.check(&meta(i)).unwrap();
        }
        v.finish(messages).unwrap()
    }

    #[test]
    fn entry_round_trips() {
        let e = IndexEntry {
            relative_offset: 7,
            position: 900,
            timestamp: 55,
        };
        assert_eq!(IndexEntry::decode(&e.encode()), e);
    }

    #[test]
    fn classifies_every_index_shape() {
        let good = index_of(5);
        assert_eq!(verify(&good, 5), IndexState::Consistent);
        assert_eq!(
            verify(&good[..64], 5),
            IndexState::Short {
                entries: 4,
                messages: 5
            }
        );
        assert_eq!(verify(&good[..72], 5), IndexState::HalfEntry { len: 72 });
        assert_eq!(
            verify(&good, 4),
            IndexState::Long {
                entries: 5,
                messages: 4,
                zero_filled: false
            }
        );
        let mut zeroed = good.clone();
        zeroed.extend_from_slice(&[0u8; 32]);
        assert_eq!(
            verify(&zeroed, 5),
            IndexState::Long {
                entries: 7,
                messages: 5,
                zero_filled: true
            }
        );
        let mut bad = good.clone();
        bad[16 * 2 + 5] ^= 1;
        assert_eq!(verify(&bad, 5), IndexState::Mismatch { entry: 2 });
    }

    #[test]
    fn each_check_says_how_the_message_and_its_entry_relate() {
        let mut bytes = index_of(3);
        bytes[16 + 4] ^= 1;
        let mut v = IndexVerifier::new(&bytes[..], bytes.len() as u64, 10);
        assert_eq!(v.entries_left(), 3);
        assert_eq!(v.check(&meta(0)).unwrap(), EntryCheck::Matches);
        assert_eq!(v.entries_left(), 2);
        let EntryCheck::Mismatch {
            entry: 1,
            found,
            expected,
        } = v.check(&meta(1)).unwrap()
        else {
            panic!("entry 1 was changed");
        };
        assert_eq!(found.position ^ expected.position, 1);
        assert_eq!(v.check(&meta(2)).unwrap(), EntryCheck::NotCompared);

        let short = index_of(1);
        let mut v = IndexVerifier::new(&short[..], short.len() as u64, 10);
        assert_eq!(v.check(&meta(0)).unwrap(), EntryCheck::Matches);
        assert_eq!(v.entries_left(), 0);
        assert_eq!(v.check(&meta(1)).unwrap(), EntryCheck::NoEntry);

        let mut v = IndexVerifier::new(&short[..], short.len() as u64, 10);
        let far = MessageMeta {
            end: u64::from(u32::MAX) + 1,
            ..meta(0)
        };
        assert_eq!(
            v.check(&far).unwrap(),
            EntryCheck::Unrepresentable { entry: 0 }
        );
    }
}
