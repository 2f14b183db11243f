//! The scanner's input: a window of bytes over a reader that grows on demand
//! ([`Bytes`]), and its implementation over any `Read` ([`Window`]). A leaf: the
//! scanner builds on it, and it on nothing of the scanner.

use crate::budget::{Lease, SCANS};
use crate::message::HEADER_LEN;
use std::io::{self, Read};

/// Read size of the scanner: large enough to amortize system calls.
pub(crate) const READ_SIZE: usize = 1 << 20;

/// First read size: small scans (the sidecar's new bytes) should not pay for a
/// large buffer; the window grows towards [`READ_SIZE`] while the reads keep filling it.
pub(crate) const FIRST_READ: usize = 64 << 10;

/// What the scanner needs from its input: a window of bytes that grows on demand.
pub(crate) trait Bytes {
    /// File position of the first available byte.
    fn pos(&self) -> u64;
    fn available(&self) -> &[u8];
    /// Makes at least `need` bytes available unless the file ends first, for any
    /// `need` up to [`Bytes::max_fill`]; a larger `need` may be served only in part.
    fn fill(&mut self, need: usize) -> io::Result<()>;
    fn consume(&mut self, n: usize);
    /// The most bytes `fill` serves without allocating: the scanner asks no more, and
    /// reads a longer frame piece by piece. At least [`HEADER_LEN`].
    fn max_fill(&self) -> usize;
}

/// A sliding window over a reader, tracking the file position of its first byte.
pub(crate) struct Window<R> {
    src: R,
    buf: Vec<u8>,
    /// The buffer grows towards this while reads keep filling it, and while the scan
    /// budget allows.
    max_read: usize,
    /// What the buffer holds beyond its first size, from the scan budget.
    lease: Lease,
    head: usize,
    tail: usize,
    pos: u64,
    eof: bool,
}

impl<R: Read> Window<R> {
    pub(crate) fn new(src: R, pos: u64) -> Self {
        Self::with_buffer(src, pos, vec![0; FIRST_READ], READ_SIZE)
    }

    pub(crate) fn with_buffer(src: R, pos: u64, buf: Vec<u8>, max_read: usize) -> Self {
        Self {
            src,
            buf,
            max_read,
            lease: SCANS.empty(),
            head: 0,
            tail: 0,
            pos,
            eof: false,
        }
    }

    /// The buffer, for the caller to lend to the next scan.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

impl<R: Read> Bytes for Window<R> {
    fn pos(&self) -> u64 {
        self.pos
    }

    fn available(&self) -> &[u8] {
        self.buf.get(self.head..self.tail).unwrap_or(&[])
    }

    #[inline]
    fn fill(&mut self, need: usize) -> io::Result<()> {
        // Nearly every call finds its bytes there already: only that test is inlined.
        if self.tail - self.head >= need || self.eof {
            return Ok(());
        }
        self.read_more(need)
    }

    fn max_fill(&self) -> usize {
        self.buf.len().max(HEADER_LEN)
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.tail - self.head);
        self.head += n;
        self.pos += n as u64;
    }
}

impl<R: Read> Window<R> {
    /// [`Bytes::fill`] when the bytes wanted are not all in the buffer yet.
    #[inline(never)]
    fn read_more(&mut self, need: usize) -> io::Result<()> {
        let reads_fill_it = self.tail == self.buf.len();
        if self.head > 0 {
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        if reads_fill_it && self.buf.len() < self.max_read {
            // Still reading a lot: grow towards the full read size, within the budget.
            // Only a file that filled the buffer makes it grow, so it never holds much
            // more than the bytes the file has.
            let grown = (self.buf.len().max(HEADER_LEN) * 4).min(self.max_read);
            if self.lease.grow(grown - self.buf.len()) {
                self.buf.resize(grown, 0);
            }
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
}
