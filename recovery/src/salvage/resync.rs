//! The resynchronising scanner: finds every valid message of one `.log`, not only its
//! valid prefix.
//!
//! The 0.6.0 rotation race leaves zero holes and misplaced batches inside sealed
//! segments, with valid messages after them. The scanner walks the file: where a
//! frame with a valid XXH3 starts, it records it and jumps past the whole frame, so a
//! message nested in another valid message's payload is never taken for one; where
//! none starts, it moves on. A valid frame cannot start where its 8 checksum bytes
//! are all zero (XXH3 of the rest would have to be 0), so zero runs are crossed in one
//! step, resuming 7 bytes before the next non-zero byte. Garbage costs one header
//! parse per byte, plus a hash only where a header's lengths are plausible and fit the
//! file. Each byte is read from disk once, and the whole file's XXH3 is computed on
//! the way, for the quarantine.
//!
//! Memory is bounded whatever the bytes claim: the window holds at most about
//! [`READ_LEN`] + [`FAR`] bytes. A candidate frame longer than [`FAR`] (a header may
//! claim up to 64 MB, and only frames that fit in the file are candidates) is not
//! gathered in the window: its checksum is computed by reading it a second time
//! through a fixed buffer, after which the reader is put back where it was.

use crate::message::{frame_checksum, MessageHeader, HEADER_LEN};
use journal::ByteRange;
use serde::Serialize;
use std::io::{self, Read, Seek, SeekFrom};
use xxhash_rust::xxh3::Xxh3;

/// A second copy of an offset that salvage does not keep. Its bytes stay in the
/// quarantined original file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DroppedDuplicate {
    pub offset: u64,
    pub file: String,
    pub range: ByteRange,
    /// Same bytes as the kept copy.
    pub identical: bool,
}

/// Read size: large enough to amortize system calls.
const READ_LEN: usize = 1 << 20;

/// Candidate frames longer than this are hashed by a second read instead of being
/// held in the window.
const FAR: u64 = 1 << 20;

/// Bytes kept before the position asked for: a frame may start up to 7 bytes before
/// the first non-zero byte after a zero run.
const LOOKBEHIND: u64 = 8;

/// One valid message found anywhere in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub offset: u64,
    pub timestamp: u64,
    pub checksum: u64,
    /// Where the frame sits in the file.
    pub range: ByteRange,
}

/// Everything the resynchronising scan learned about one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileScan {
    pub len: u64,
    pub xxh3: u64,
    pub messages: Vec<Found>,
    /// Runs of bytes that belong to no valid message, in file order. Each says
    /// whether it is all zeros.
    pub gaps: Vec<Gap>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub range: ByteRange,
    pub zeros: bool,
}

impl FileScan {
    /// Whether a gap (garbage or zeros) lies before some valid message.
    pub fn hole_followed_by_data(&self) -> Option<Gap> {
        let last_end = self.messages.last()?.range.end;
        self.gaps.iter().copied().find(|g| g.range.end <= last_end)
    }
}

/// A sliding window over the file: bytes `[base, base + buf.len())`. Bytes are read
/// once, in order, and hashed as they arrive.
struct Window<R> {
    src: R,
    buf: Vec<u8>,
    base: u64,
    read: u64,
    len: u64,
    hasher: Xxh3,
    /// Reused by [`Window::far_checksum`]; empty until a long candidate needs it.
    scratch: Vec<u8>,
}

impl<R: Read + Seek> Window<R> {
    /// Makes `[pos, pos + n)` available (as far as the file goes) and returns what of
    /// it is there.
    fn get(&mut self, pos: u64, n: u64) -> io::Result<&[u8]> {
        let want_end = pos.saturating_add(n).min(self.len);
        if want_end > self.read {
            // Drop what lies before `pos`, less the few bytes a frame may start
            // before a non-zero byte (see `skip_zeros`): never needed again.
            let keep_from = pos.saturating_sub(LOOKBEHIND);
            let drop = usize::try_from(keep_from.saturating_sub(self.base))
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            self.buf.drain(..drop);
            self.base += drop as u64;
            // Bytes before `keep_from` not read yet (the scanner jumped past a long
            // frame): hashed on the way through, never held.
            while self.read < keep_from.min(self.len) {
                let chunk = (keep_from.min(self.len) - self.read).min(READ_LEN as u64);
                self.buf.resize(chunk as usize, 0);
                let got = read_full(&mut self.src, &mut self.buf)?;
                self.hasher.update(self.buf.get(..got).unwrap_or(&[]));
                self.read += got as u64;
                self.base = self.read;
                self.buf.clear();
                if got < chunk as usize {
                    self.len = self.read;
                }
            }
            while self.read < want_end.min(self.len) {
                let chunk = (want_end - self.read)
                    .max(READ_LEN as u64)
                    .min(self.len - self.read);
                let old = self.buf.len();
                self.buf.resize(old + chunk as usize, 0);
                let got = read_full(&mut self.src, self.buf.get_mut(old..).unwrap_or(&mut []))?;
                self.buf.truncate(old + got);
                self.hasher.update(self.buf.get(old..).unwrap_or(&[]));
                self.read += got as u64;
                if got < chunk as usize {
                    // The file shrank under us: what is left is what there is.
                    self.len = self.read;
                    break;
                }
            }
        }
        if pos < self.base {
            return Err(io::Error::other(format!(
                "scanner asked for byte {pos}, already dropped (window starts at {})",
                self.base
            )));
        }
        let from = usize::try_from(pos - self.base).unwrap_or(usize::MAX);
        let to = usize::try_from(want_end.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        Ok(self.buf.get(from..to.max(from)).unwrap_or(&[]))
    }

    /// The checksum of the frame `[pos, pos + len)` (XXH3 of what follows its
    /// checksum field), reading the part the window does not hold through `scratch`
    /// and seeking the reader back; `None` when the file ends first. The window and the
    /// whole-file digest are left as they were.
    fn far_checksum(&mut self, pos: u64, len: u64) -> io::Result<Option<u64>> {
        let end = pos.saturating_add(len);
        let body = pos.saturating_add(8);
        let mut hasher = Xxh3::new();
        let held_end = self.read.min(end);
        if pos >= self.base && held_end > pos {
            let from = usize::try_from(pos - self.base).unwrap_or(usize::MAX);
            let to = usize::try_from(held_end - self.base).unwrap_or(usize::MAX);
            let held = self.buf.get(from..to).unwrap_or(&[]);
            hash_from(&mut hasher, held, pos, body);
        }
        let mut at = held_end.max(pos);
        if at < end {
            if self.scratch.is_empty() {
                self.scratch = vec![0; READ_LEN];
            }
            self.src.seek(SeekFrom::Start(at))?;
            let result = loop {
                if at >= end {
                    break Some(hasher.digest());
                }
                let want = usize::try_from(end - at)
                    .unwrap_or(usize::MAX)
                    .min(READ_LEN);
                let piece = self.scratch.get_mut(..want).unwrap_or(&mut []);
                let got = read_full(&mut self.src, piece)?;
                hash_from(&mut hasher, piece.get(..got).unwrap_or(&[]), at, body);
                if got < want {
                    break None;
                }
                at += got as u64;
            };
            self.src.seek(SeekFrom::Start(self.read))?;
            return Ok(result);
        }
        Ok(Some(hasher.digest()))
    }

    /// Reads and hashes whatever is left, so the digest covers the whole file.
    fn finish(mut self) -> io::Result<(u64, u64)> {
        // `get` lowers `len` if the file turns out shorter, so this ends.
        while self.read < self.len {
            self.get(self.read, READ_LEN as u64)?;
        }
        Ok((self.read, self.hasher.digest()))
    }
}

/// Hashes the part of `piece` (which starts at file position `at`) from `from` on.
fn hash_from(hasher: &mut Xxh3, piece: &[u8], at: u64, from: u64) {
    let skip = usize::try_from(from.saturating_sub(at)).unwrap_or(usize::MAX);
    hasher.update(piece.get(skip..).unwrap_or(&[]));
}

fn read_full(src: &mut impl Read, mut out: &mut [u8]) -> io::Result<usize> {
    let mut total = 0;
    while !out.is_empty() {
        match src.read(out) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                out = out.get_mut(n..).unwrap_or(&mut []);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Scans all `len` bytes of `src`, positioned at its start, for valid messages.
pub fn resync_scan(src: impl Read + Seek, len: u64) -> io::Result<FileScan> {
    let mut w = Window {
        src,
        buf: Vec::new(),
        base: 0,
        read: 0,
        len,
        hasher: Xxh3::new(),
        scratch: Vec::new(),
    };
    let mut out = FileScan::default();
    let mut gap_start: Option<(u64, bool)> = None;
    let mut pos = 0u64;
    while pos < w.len {
        match candidate(&mut w, pos)? {
            Step::Message(found) => {
                close_gap(&mut out, &mut gap_start, pos);
                pos = found.range.end;
                out.messages.push(found);
            }
            Step::Skip { to, zeros } => {
                let (start, all_zero) = gap_start.unwrap_or((pos, true));
                gap_start = Some((start, all_zero && zeros));
                pos = to.max(pos + 1);
            }
        }
    }
    close_gap(&mut out, &mut gap_start, w.len.min(pos));
    let (read, xxh3) = w.finish()?;
    out.len = read;
    out.xxh3 = xxh3;
    Ok(out)
}

fn close_gap(out: &mut FileScan, gap: &mut Option<(u64, bool)>, end: u64) {
    if let Some((start, zeros)) = gap.take() {
        if end > start {
            out.gaps.push(Gap {
                range: ByteRange::new(start, end),
                zeros,
            });
        }
    }
}

enum Step {
    Message(Found),
    /// No message starts before `to`; `zeros` when the skipped bytes are all zero.
    Skip {
        to: u64,
        zeros: bool,
    },
}

fn candidate<R: Read + Seek>(w: &mut Window<R>, pos: u64) -> io::Result<Step> {
    let head = w.get(pos, HEADER_LEN as u64)?;
    let Ok(head) = <&[u8; HEADER_LEN]>::try_from(head) else {
        // Fewer than a header's bytes remain.
        let zeros = head.iter().all(|&b| b == 0);
        return Ok(Step::Skip { to: w.len, zeros });
    };
    if head.get(..8).is_some_and(|c| c.iter().all(|&b| b == 0)) {
        return skip_zeros(w, pos);
    }
    let header = MessageHeader::parse(head);
    // Moving on by one byte skips only that byte.
    let skip_one = Step::Skip {
        to: pos + 1,
        zeros: head.first() == Some(&0),
    };
    let end = pos.saturating_add(header.frame_len());
    if !header.lengths_plausible() || end > w.len {
        return Ok(skip_one);
    }
    let valid = if header.frame_len() > FAR {
        w.far_checksum(pos, header.frame_len())? == Some(header.checksum)
    } else {
        let frame = w.get(pos, header.frame_len())?;
        frame.len() as u64 == header.frame_len() && frame_checksum(frame) == Some(header.checksum)
    };
    if valid {
        return Ok(Step::Message(Found {
            offset: header.offset,
            timestamp: header.timestamp,
            checksum: header.checksum,
            range: ByteRange::new(pos, end),
        }));
    }
    Ok(skip_one)
}

/// From a position whose 8 first bytes are zero: the next position where a frame may
/// start (7 bytes before the next non-zero byte, since a checksum may begin with up
/// to 7 zero bytes).
fn skip_zeros<R: Read + Seek>(w: &mut Window<R>, pos: u64) -> io::Result<Step> {
    let mut at = pos;
    loop {
        let chunk = w.get(at, READ_LEN as u64)?;
        if chunk.is_empty() {
            return Ok(Step::Skip {
                to: w.len,
                zeros: true,
            });
        }
        if let Some(i) = chunk.iter().position(|&b| b != 0) {
            let nonzero = at + i as u64;
            return Ok(Step::Skip {
                to: nonzero.saturating_sub(7).max(pos + 1),
                zeros: true,
            });
        }
        at += chunk.len() as u64;
    }
}

#[cfg(test)]
mod tests;
