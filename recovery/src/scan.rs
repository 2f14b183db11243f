//! Streaming scanner of a segment's `.log`.
//!
//! Reads the log front to back in large buffers (memory stays bounded by the buffer
//! plus one message, at most [`MAX_MESSAGE_LEN`]), checks every frame's length,
//! XXH3-64 checksum and offset, and returns the longest valid prefix together with the
//! exact reason and byte position where validity ends. A scan can resume from a
//! checkpoint (a byte position and the offset expected there), so a segment verified
//! earlier is never read again.

use crate::message::{frame_checksum, MessageHeader, HEADER_LEN, MAX_MESSAGE_LEN};
use serde::Serialize;
use std::io::{self, Read};

/// Read size of the scanner: large enough to amortize system calls.
pub(crate) const CHUNK: usize = 1 << 20;

/// First read size: small scans (the sidecar's new bytes) should not pay for a
/// large buffer; the window grows towards [`CHUNK`] while the reads keep filling it.
const FIRST_READ: usize = 64 << 10;

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

/// Scans `src`, positioned at `start.position` of a log, calling `visit` for every valid
/// message in order. I/O errors, including those of `visit`, end the scan.
pub fn scan_log<R: Read>(
    src: R,
    start: ScanStart,
    visit: impl FnMut(&MessageMeta) -> io::Result<()>,
) -> io::Result<ScanOutcome> {
    scan_window(&mut Window::new(src, start.position), start, visit)
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

/// [`scan_log`] reading through `scratch`. A buffer grown for one large message is
/// shrunk back to `chunk` afterwards, so a long-lived buffer stays small.
pub fn scan_log_with<R: Read>(
    src: R,
    start: ScanStart,
    scratch: &mut ScanBuffer,
    visit: impl FnMut(&MessageMeta) -> io::Result<()>,
) -> io::Result<ScanOutcome> {
    let mut buf = std::mem::take(&mut scratch.buf);
    if buf.len() < scratch.chunk {
        buf.resize(scratch.chunk, 0);
    }
    let mut w = Window::with_buffer(src, start.position, buf, scratch.chunk);
    let outcome = scan_window(&mut w, start, visit);
    let mut buf = w.buf;
    if buf.len() > scratch.chunk {
        buf.truncate(scratch.chunk);
        buf.shrink_to_fit();
    }
    scratch.buf = buf;
    outcome
}

/// [`scan_log`] with reading done ahead on a second thread, so checksums are computed
/// while the next chunk is read. Worth it for large logs only (a thread per call).
pub fn scan_log_prefetched<R: Read + Send>(
    src: R,
    start: ScanStart,
    visit: impl FnMut(&MessageMeta) -> io::Result<()>,
) -> io::Result<ScanOutcome> {
    std::thread::scope(|scope| {
        let mut w = crate::prefetch::Prefetch::spawn(scope, src, start.position);
        scan_window(&mut w, start, visit)
    })
}

/// What the scanner needs from its input: a window of bytes that grows on demand.
pub(crate) trait Bytes {
    /// File position of the first available byte.
    fn pos(&self) -> u64;
    fn available(&self) -> &[u8];
    /// Makes at least `need` bytes available unless the file ends first.
    fn fill(&mut self, need: usize) -> io::Result<()>;
    fn consume(&mut self, n: usize);

    /// Called at zero bytes where a header should start: either the rest of the file
    /// is zeros (a zero-filled tail) or real data follows them.
    fn classify_zeroes(&mut self) -> io::Result<StopReason> {
        let at = self.pos();
        let mut len = 0u64;
        loop {
            self.fill(CHUNK)?;
            let avail = self.available();
            if avail.is_empty() {
                return Ok(StopReason::ZeroFill { at, len });
            }
            if !all_zero(avail) {
                return Ok(StopReason::ZeroesThenData { at });
            }
            let n = avail.len();
            len += n as u64;
            self.consume(n);
        }
    }
}

fn scan_window(
    w: &mut impl Bytes,
    start: ScanStart,
    mut visit: impl FnMut(&MessageMeta) -> io::Result<()>,
) -> io::Result<ScanOutcome> {
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
            break w.classify_zeroes()?;
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
        // Lengths are plausible, so the frame fits in memory (≤ MAX_MESSAGE_LEN).
        let need = usize::try_from(frame_len).unwrap_or(usize::MAX);
        w.fill(need.saturating_add(1))?;
        let avail = w.available();
        let Some(frame) = avail.get(..need) else {
            break StopReason::TornMessage {
                at,
                frame_len,
                available: avail.len() as u64,
            };
        };
        let followed_by_data = avail.len() > need;
        let computed = frame_checksum(frame).unwrap_or(0);
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
        visit(&meta)?;
        w.consume(need);
        last = Some(meta);
        messages += 1;
        next_offset = next_offset.saturating_add(1);
    };
    Ok(ScanOutcome {
        start,
        valid_len: last.map_or(start.position, |m| m.end),
        messages,
        next_offset,
        last,
        stop,
    })
}

pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// A sliding window over a reader, tracking the file position of its first byte.
struct Window<R> {
    src: R,
    buf: Vec<u8>,
    /// The buffer grows towards this while reads keep filling it.
    max_read: usize,
    head: usize,
    tail: usize,
    pos: u64,
    eof: bool,
}

impl<R: Read> Window<R> {
    fn new(src: R, pos: u64) -> Self {
        Self::with_buffer(src, pos, vec![0; FIRST_READ], CHUNK)
    }

    fn with_buffer(src: R, pos: u64, buf: Vec<u8>, max_read: usize) -> Self {
        Self {
            src,
            buf,
            max_read,
            head: 0,
            tail: 0,
            pos,
            eof: false,
        }
    }
}

impl<R: Read> Bytes for Window<R> {
    fn pos(&self) -> u64 {
        self.pos
    }

    fn available(&self) -> &[u8] {
        self.buf.get(self.head..self.tail).unwrap_or(&[])
    }

    fn fill(&mut self, need: usize) -> io::Result<()> {
        if self.tail - self.head >= need || self.eof {
            return Ok(());
        }
        let reads_fill_it = self.tail == self.buf.len();
        if self.head > 0 {
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        if need > self.buf.len() {
            let cap = need.min(MAX_MESSAGE_LEN as usize + 1).max(self.buf.len());
            self.buf.resize(cap, 0);
        } else if reads_fill_it && self.buf.len() < self.max_read {
            // Still reading a lot: grow towards the full read size.
            self.buf.resize((self.buf.len() * 4).min(self.max_read), 0);
        }
        while self.tail < need && !self.eof {
            let Some(room) = self.buf.get_mut(self.tail..) else {
                break;
            };
            if room.is_empty() {
                break;
            }
            match self.src.read(room) {
                Ok(0) => self.eof = true,
                Ok(n) => self.tail += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.tail - self.head);
        self.head += n;
        self.pos += n as u64;
    }
}
