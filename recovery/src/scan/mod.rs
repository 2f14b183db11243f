//! Streaming scanner of a segment's `.log`.
//!
//! Reads the log front to back in large buffers, checks every frame's length, XXH3-64
//! checksum and offset, and returns the longest valid prefix together with the exact
//! reason and byte position where validity ends. Memory stays bounded by the buffer,
//! whatever a header claims: a frame longer than the buffer is hashed piece by piece
//! as it is read, never gathered whole, and the buffer grows only while reads keep
//! filling it (so never far past the bytes the file holds), within the process-wide
//! budget of [`crate::budget`]. A scan can resume from a
//! checkpoint (a byte position and the offset expected there), so a segment verified
//! earlier is never read again.
//!
//! Each valid message goes to a [`Visitor`] (ripgrep's `Sink` is the model): it may
//! fail with its own error type, and it may end the scan before a message it does not
//! accept, which the sidecar does at the first message whose index entry is not
//! written yet.

pub(crate) mod window;

use crate::message::{frame_checksum, MessageHeader, HEADER_LEN};
use serde::Serialize;
use std::io::{self, Read};
use window::{Bytes, Window};
use xxhash_rust::xxh3::Xxh3;

/// Where a scan begins: byte position in the log and the offset expected there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ScanStart {
    pub position: u64,
    pub next_offset: u64,
}

impl ScanStart {
    /// The start of a segment whose first message has offset `start_offset`.
    pub fn segment(start_offset: u64) -> Self {
        Self {
            position: 0,
            next_offset: start_offset,
        }
    }
}

/// One valid message found by the scanner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MessageMeta {
    pub offset: u64,
    /// Byte position of the frame's first byte in the log.
    pub start: u64,
    /// Byte position just past the frame: what the index stores.
    pub end: u64,
    pub timestamp: u64,
    pub checksum: u64,
}

/// Why the valid prefix ends. Every variant but `EndOfFile` carries `at`, the byte
/// position of the first byte that is not part of a valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StopReason {
    /// The log ends exactly after a valid message (or is empty).
    EndOfFile,
    /// Fewer than a header's bytes remain, and they are not all zero.
    TornHeader { at: u64, available: u64 },
    /// A plausible header declares more bytes than the file holds.
    TornMessage {
        at: u64,
        frame_len: u64,
        available: u64,
    },
    /// Everything from `at` to the end of the file is zero bytes.
    ZeroFill { at: u64, len: u64 },
    /// A header declares lengths the server never writes: not a message.
    ImplausibleLength {
        at: u64,
        payload_len: u32,
        headers_len: u32,
    },
    /// The frame's stored checksum does not match its bytes.
    BadChecksum {
        at: u64,
        frame_len: u64,
        stored: u64,
        computed: u64,
        /// Whether bytes follow the bad frame (then it is not just a bad tail).
        followed_by_data: bool,
    },
    /// A well-formed message whose offset is not the one expected next.
    OffsetJump {
        at: u64,
        frame_len: u64,
        expected: u64,
        found: u64,
        followed_by_data: bool,
    },
    /// Zero bytes where a header starts, followed by bytes that are not zero.
    ZeroesThenData { at: u64 },
}

impl StopReason {
    /// Byte position where the invalid region starts, `None` for a clean end.
    pub fn position(&self) -> Option<u64> {
        match *self {
            StopReason::EndOfFile => None,
            StopReason::TornHeader { at, .. }
            | StopReason::TornMessage { at, .. }
            | StopReason::ZeroFill { at, .. }
            | StopReason::ImplausibleLength { at, .. }
            | StopReason::BadChecksum { at, .. }
            | StopReason::OffsetJump { at, .. }
            | StopReason::ZeroesThenData { at } => Some(at),
        }
    }

    /// Damage that can only be the unfinished end of an append: nothing that looks
    /// like data follows it. Anything else is corruption inside the file.
    pub fn is_tail_only(&self) -> bool {
        match *self {
            StopReason::EndOfFile
            | StopReason::TornHeader { .. }
            | StopReason::TornMessage { .. }
            | StopReason::ZeroFill { .. } => true,
            StopReason::BadChecksum {
                followed_by_data, ..
            } => !followed_by_data,
            StopReason::ImplausibleLength { .. }
            | StopReason::OffsetJump { .. }
            | StopReason::ZeroesThenData { .. } => false,
        }
    }

    /// A short human reason, for reports.
    pub fn describe(&self) -> String {
        match *self {
            StopReason::EndOfFile => "ends after a whole valid message".to_string(),
            StopReason::TornHeader { available, .. } => {
                format!("torn message header: only {available} of {HEADER_LEN} bytes")
            }
            StopReason::TornMessage {
                frame_len,
                available,
                ..
            } => format!("torn message: {available} of {frame_len} bytes present"),
            StopReason::ZeroFill { len, .. } => format!("{len} zero bytes after the last message"),
            StopReason::ImplausibleLength {
                payload_len,
                headers_len,
                ..
            } => format!(
                "not a message header: payload length {payload_len}, user headers length {headers_len}"
            ),
            StopReason::BadChecksum {
                stored, computed, ..
            } => format!("checksum mismatch: stored {stored:#018x}, computed {computed:#018x}"),
            StopReason::OffsetJump {
                expected, found, ..
            } => format!("message offset {found} where {expected} was expected"),
            StopReason::ZeroesThenData { .. } => {
                "zero bytes where a message should start, followed by other data".to_string()
            }
        }
    }
}

/// Result of scanning one log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ScanOutcome {
    pub start: ScanStart,
    /// End of the last valid message: the log's length after a repair.
    pub valid_len: u64,
    /// Valid messages found by this scan (after `start`).
    pub messages: u64,
    /// Offset the next appended message must have.
    pub next_offset: u64,
    pub last: Option<MessageMeta>,
    pub stop: StopReason,
}

/// What a scan does with each valid message it finds, in order.
pub trait Visitor {
    /// The visitor's own failures; the scan's read errors convert into it.
    type Error: From<io::Error>;

    /// `Ok(true)` to go on; `Ok(false)` ends the scan before `meta`, which is then not
    /// part of the scanned prefix (the scan returns [`Scanned::Stopped`]).
    fn message(&mut self, meta: &MessageMeta) -> Result<bool, Self::Error>;
}

impl<V: Visitor + ?Sized> Visitor for &mut V {
    type Error = V::Error;

    fn message(&mut self, meta: &MessageMeta) -> Result<bool, Self::Error> {
        (**self).message(meta)
    }
}

/// A visitor that only wants the outcome.
#[derive(Clone, Copy, Debug, Default)]
pub struct IgnoreMessages;

impl Visitor for IgnoreMessages {
    type Error = io::Error;

    fn message(&mut self, _: &MessageMeta) -> io::Result<bool> {
        Ok(true)
    }
}

/// A closure that sees every message and never stops the scan; its error type is its
/// own.
pub struct EachMessage<F>(pub F);

impl<F, E> Visitor for EachMessage<F>
where
    F: FnMut(&MessageMeta) -> Result<(), E>,
    E: From<io::Error>,
{
    type Error = E;

    fn message(&mut self, meta: &MessageMeta) -> Result<bool, E> {
        (self.0)(meta).map(|()| true)
    }
}

/// How a scan ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// The scan reached the end of the valid prefix.
    Ended(ScanOutcome),
    /// The visitor declined the message starting at byte `at`; nothing from there on
    /// was scanned. `last` is the last message it accepted.
    Stopped { at: u64, last: Option<MessageMeta> },
}

impl Scanned {
    /// The outcome, when the scan was not stopped by its visitor (never, for a visitor
    /// that always returns `Ok(true)`).
    pub fn ended(self) -> Option<ScanOutcome> {
        match self {
            Scanned::Ended(outcome) => Some(outcome),
            Scanned::Stopped { .. } => None,
        }
    }
}

/// Scans `src`, positioned at `start.position` of a log, handing every valid message
/// to `visitor` in order. Read errors and the visitor's errors end the scan.
pub fn scan_log<R: Read, V: Visitor>(
    src: R,
    start: ScanStart,
    visitor: V,
) -> Result<Scanned, V::Error> {
    scan_window(&mut Window::new(src, start.position), start, visitor)
}

/// Memory kept between scans by a caller that scans often and little at a time (the
/// sidecar verifies each written open segment's new bytes every second): its scans
/// neither allocate nor zero a buffer, and they read at most `chunk` bytes at a
/// time, a size that stays in the CPU cache while the checksums read it back.
#[derive(Debug)]
pub struct ScanBuffer {
    buf: Vec<u8>,
    chunk: usize,
}

impl ScanBuffer {
    pub fn new(chunk: usize) -> Self {
        Self {
            buf: Vec::new(),
            chunk: chunk.max(HEADER_LEN),
        }
    }
}

/// [`scan_log`] reading through `scratch`, which never grows past its `chunk`: a
/// longer message is hashed piece by piece.
pub fn scan_log_with<R: Read, V: Visitor>(
    src: R,
    start: ScanStart,
    scratch: &mut ScanBuffer,
    visitor: V,
) -> Result<Scanned, V::Error> {
    let mut buf = std::mem::take(&mut scratch.buf);
    if buf.len() < scratch.chunk {
        buf.resize(scratch.chunk, 0);
    }
    let mut w = Window::with_buffer(src, start.position, buf, scratch.chunk);
    let outcome = scan_window(&mut w, start, visitor);
    let mut buf = w.into_buffer();
    if buf.len() > scratch.chunk {
        buf.truncate(scratch.chunk);
        buf.shrink_to_fit();
    }
    scratch.buf = buf;
    outcome
}

/// Called at zero bytes where a header should start: either the rest of the file is
/// zeros (a zero-filled tail) or real data follows them.
fn classify_zeroes(w: &mut impl Bytes) -> io::Result<StopReason> {
    let at = w.pos();
    let mut len = 0u64;
    loop {
        w.fill(1)?;
        let avail = w.available();
        if avail.is_empty() {
            return Ok(StopReason::ZeroFill { at, len });
        }
        if !all_zero(avail) {
            return Ok(StopReason::ZeroesThenData { at });
        }
        let n = avail.len();
        len += n as u64;
        w.consume(n);
    }
}

fn scan_window<V: Visitor>(
    w: &mut impl Bytes,
    start: ScanStart,
    mut visitor: V,
) -> Result<Scanned, V::Error> {
    let mut next_offset = start.next_offset;
    let mut messages = 0u64;
    let mut last = None;
    let stop = loop {
        let at = w.pos();
        w.fill(HEADER_LEN)?;
        let avail = w.available();
        if avail.is_empty() {
            break StopReason::EndOfFile;
        }
        let Some(head) = avail.first_chunk::<HEADER_LEN>() else {
            let available = avail.len() as u64;
            break if all_zero(avail) {
                StopReason::ZeroFill { at, len: available }
            } else {
                StopReason::TornHeader { at, available }
            };
        };
        if all_zero(head) {
            break classify_zeroes(w)?;
        }
        let header = MessageHeader::parse(head);
        if !header.lengths_plausible() {
            break StopReason::ImplausibleLength {
                at,
                payload_len: header.payload_len,
                headers_len: header.headers_len,
            };
        }
        let frame_len = header.frame_len();
        // Lengths are plausible, so the frame length fits a usize (≤ MAX_MESSAGE_LEN).
        let need = usize::try_from(frame_len).unwrap_or(usize::MAX);
        let (computed, followed_by_data) = if need < w.max_fill() {
            w.fill(need + 1)?;
            let avail = w.available();
            let Some(frame) = avail.get(..need) else {
                break StopReason::TornMessage {
                    at,
                    frame_len,
                    available: avail.len() as u64,
                };
            };
            let checked = (frame_checksum(frame).unwrap_or(0), avail.len() > need);
            w.consume(need);
            checked
        } else {
            // Longer than the buffer: hash it as it streams past. Whatever the header
            // claims, only bytes the file really holds are read, one buffer at a time.
            match stream_frame(w, frame_len)? {
                Streamed::Whole {
                    checksum,
                    followed_by_data,
                } => (checksum, followed_by_data),
                Streamed::Torn { available } => {
                    break StopReason::TornMessage {
                        at,
                        frame_len,
                        available,
                    }
                }
            }
        };
        if computed != header.checksum {
            break StopReason::BadChecksum {
                at,
                frame_len,
                stored: header.checksum,
                computed,
                followed_by_data,
            };
        }
        if header.offset != next_offset {
            break StopReason::OffsetJump {
                at,
                frame_len,
                expected: next_offset,
                found: header.offset,
                followed_by_data,
            };
        }
        let meta = MessageMeta {
            offset: header.offset,
            start: at,
            end: at + frame_len,
            timestamp: header.timestamp,
            checksum: header.checksum,
        };
        if !visitor.message(&meta)? {
            return Ok(Scanned::Stopped { at, last });
        }
        last = Some(meta);
        messages += 1;
        next_offset = next_offset.saturating_add(1);
    };
    Ok(Scanned::Ended(ScanOutcome {
        start,
        valid_len: last.map_or(start.position, |m| m.end),
        messages,
        next_offset,
        last,
        stop,
    }))
}

/// A frame read by [`stream_frame`].
enum Streamed {
    /// All `frame_len` bytes were there (and are consumed): their checksum.
    Whole {
        checksum: u64,
        followed_by_data: bool,
    },
    /// The file ended after `available` bytes of the frame.
    Torn { available: u64 },
}

/// Reads the frame starting at the window's position piece by piece, hashing what
/// follows its checksum field, and consumes it.
fn stream_frame(w: &mut impl Bytes, frame_len: u64) -> io::Result<Streamed> {
    let step = w.max_fill().max(1);
    let mut hasher = Xxh3::new();
    let mut done = 0u64;
    while done < frame_len {
        let left = frame_len - done;
        w.fill(usize::try_from(left).unwrap_or(usize::MAX).min(step))?;
        let avail = w.available();
        if avail.is_empty() {
            return Ok(Streamed::Torn { available: done });
        }
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(avail.len());
        let piece = avail.get(..n).unwrap_or(&[]);
        // The first 8 bytes of the frame are the checksum itself.
        let skip = usize::try_from(8u64.saturating_sub(done))
            .unwrap_or(0)
            .min(n);
        hasher.update(piece.get(skip..).unwrap_or(&[]));
        w.consume(n);
        done += n as u64;
    }
    w.fill(1)?;
    Ok(Streamed::Whole {
        checksum: hasher.digest(),
        followed_by_data: !w.available().is_empty(),
    })
}

pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests;
