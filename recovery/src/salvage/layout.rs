//! Choosing one copy per offset and cutting the kept messages into segments.
//!
//! Kept apart from reading so the rules can be tested on plain values: which copy of
//! an offset wins, where a segment ends (at every gap in the offsets, and before it
//! would outgrow the partition's largest log), and which byte ranges of the original
//! files make up each new log.

use journal::{ByteRange, RelayPiece, RelaySegment};

/// One valid message found in an original file of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub offset: u64,
    pub timestamp: u64,
    pub checksum: u64,
    /// Position of its file among the relay's originals.
    pub source: u32,
    pub range: ByteRange,
    /// Its segment's index has an entry for exactly this message.
    pub indexed: bool,
}

impl Candidate {
    /// Same bytes: the checksum covers everything after itself, and the lengths match.
    fn same_bytes(&self, other: &Candidate) -> bool {
        self.checksum == other.checksum && self.range.len() == other.range.len()
    }

    /// Sort key of the duplicate rule: indexed first, then earliest timestamp, then
    /// lowest (file, byte).
    fn preference(&self) -> (bool, u64, u32, u64) {
        (!self.indexed, self.timestamp, self.source, self.range.start)
    }
}

/// The copies kept (in offset order) and the ones dropped, each with whether it has
/// the same bytes as the kept copy of its offset.
#[derive(Debug, Default)]
pub struct Chosen {
    pub kept: Vec<Candidate>,
    pub dropped: Vec<(Candidate, bool)>,
}

pub fn choose(mut all: Vec<Candidate>) -> Chosen {
    all.sort_by_key(|c| (c.offset, c.preference()));
    let mut out = Chosen::default();
    for c in all {
        match out.kept.last() {
            Some(k) if k.offset == c.offset => {
                let identical = k.same_bytes(&c);
                out.dropped.push((c, identical));
            }
            _ => out.kept.push(c),
        }
    }
    out
}

/// Cuts `kept` (in offset order, one per offset) into segments: a new one at every
/// gap in the offsets, and before a log would pass `max_len` bytes (a segment always
/// takes at least one message).
pub fn lay_out(kept: &[Candidate], max_len: u64) -> Vec<RelaySegment> {
    let mut out: Vec<RelaySegment> = Vec::new();
    for c in kept {
        let len = c.range.len();
        let extends = out
            .last()
            .is_some_and(|s| s.start_offset + s.messages == c.offset && s.log_len + len <= max_len);
        if !extends {
            out.push(RelaySegment {
                start_offset: c.offset,
                messages: 0,
                log_len: 0,
                pieces: Vec::new(),
            });
        }
        let Some(seg) = out.last_mut() else { continue };
        seg.messages += 1;
        seg.log_len += len;
        match seg.pieces.last_mut() {
            Some(p) if p.source == c.source && p.range.end == c.range.start => {
                p.range.end = c.range.end;
            }
            _ => seg.pieces.push(RelayPiece {
                source: c.source,
                range: c.range,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offset: u64, source: u32, start: u64) -> Candidate {
        Candidate {
            offset,
            timestamp: 100 + offset,
            checksum: offset * 7,
            source,
            range: ByteRange::new(start, start + 10),
            indexed: false,
        }
    }

    #[test]
    fn exact_duplicates_keep_one_copy() {
        let chosen = choose(vec![c(1, 0, 0), c(0, 1, 0), c(1, 1, 10)]);
        let kept: Vec<_> = chosen.kept.iter().map(|k| (k.offset, k.source)).collect();
        assert_eq!(kept, vec![(0, 1), (1, 0)]);
        assert_eq!(chosen.dropped.len(), 1);
        assert!(chosen.dropped[0].1, "same bytes");
    }

    #[test]
    fn of_two_different_copies_the_indexed_then_the_earliest_wins() {
        let mut late_indexed = c(5, 0, 0);
        late_indexed.timestamp = 900;
        late_indexed.checksum = 1;
        late_indexed.indexed = true;
        let early = c(5, 1, 0);
        let chosen = choose(vec![early, late_indexed]);
        assert_eq!(chosen.kept, vec![late_indexed]);
        assert_eq!(chosen.dropped, vec![(early, false)]);

        late_indexed.indexed = false;
        let chosen = choose(vec![late_indexed, early]);
        assert_eq!(chosen.kept, vec![early], "earliest timestamp");

        let mut same_time = c(5, 2, 50);
        same_time.checksum = 3;
        let chosen = choose(vec![same_time, early]);
        assert_eq!(chosen.kept, vec![early], "lowest file");
    }

    #[test]
    fn segments_break_at_gaps_and_at_the_size_limit_and_merge_pieces() {
        let kept = [
            c(0, 0, 0),
            c(1, 0, 10),
            c(2, 1, 0),
            c(5, 1, 10),
            c(6, 1, 20),
            c(7, 1, 30),
        ];
        let segs = lay_out(&kept, 20);
        let shape: Vec<_> = segs
            .iter()
            .map(|s| (s.start_offset, s.messages, s.log_len, s.pieces.len()))
            .collect();
        assert_eq!(
            shape,
            vec![(0, 2, 20, 1), (2, 1, 10, 1), (5, 2, 20, 1), (7, 1, 10, 1)]
        );
        assert_eq!(segs[0].pieces[0].range, ByteRange::new(0, 20));
    }
}
