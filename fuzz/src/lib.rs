//! Helpers shared by the fuzz targets: reading parameters off the front of the
//! fuzzer's input, readers that deliver bytes in awkward pieces, and "forging" valid
//! message frames so that the fuzzer gets past the XXH3 checksum of every frame.

use recovery::message::{frame_checksum, MessageHeader, HEADER_LEN};
use std::io::{self, Read, Seek, SeekFrom};

/// Takes fixed-size parameters off the front of the input; a short input reads as
/// zeros, so every input, however short, is a valid test case.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        out
    }

    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// With flag 0x80 a target moves its first offset to within 255 of `u64::MAX`, where
/// offset arithmetic overflows; the fuzzer rarely gets there on its own.
pub fn near_max(offset: u64, flags: u8) -> u64 {
    if flags & 0x80 != 0 {
        u64::MAX - (offset & 0xff)
    } else {
        offset
    }
}

/// How [`forge_frames`] rewrites a log.
#[derive(Clone, Copy, Debug, Default)]
pub struct Forge {
    /// Store the correct XXH3-64 in every frame it walks over.
    pub checksums: bool,
    /// Store consecutive offsets from the given first one.
    pub offsets: bool,
    /// Reduce the declared payload and user-headers lengths so frames stay small.
    pub small_lengths: bool,
}

impl Forge {
    pub fn from_bits(bits: u8) -> Self {
        Self {
            checksums: bits & 1 != 0,
            offsets: bits & 2 != 0,
            small_lengths: bits & 4 != 0,
        }
    }

    pub fn any(&self) -> bool {
        self.checksums || self.offsets || self.small_lengths
    }
}

/// Walks `log` frame by frame from byte 0, as the scanner does, and makes the frames
/// valid as `forge` asks, until a frame does not fit or declares implausible lengths.
/// Without this the fuzzer would practically never produce a frame with a matching
/// XXH3-64, and would only ever exercise the scanner's first frame.
pub fn forge_frames(log: &mut [u8], first_offset: u64, forge: Forge) {
    if !forge.any() {
        return;
    }
    let mut pos = 0usize;
    let mut offset = first_offset;
    while let Some(head) = log.get_mut(pos..pos + HEADER_LEN) {
        if forge.small_lengths {
            // Keep the fuzzer's low bits: payload < 512 bytes, user headers < 32.
            let headers = u32::from(head[48]) & 31;
            head[48..52].copy_from_slice(&headers.to_le_bytes());
            let payload = u32::from(u16::from_le_bytes([head[52], head[53]])) & 511;
            head[52..56].copy_from_slice(&payload.to_le_bytes());
        }
        if forge.offsets {
            head[24..32].copy_from_slice(&offset.to_le_bytes());
        }
        let header = MessageHeader::parse(&(*head).try_into().expect("56 bytes"));
        if !header.lengths_plausible() {
            return;
        }
        let Ok(frame_len) = usize::try_from(header.frame_len()) else {
            return;
        };
        let Some(frame) = log.get_mut(pos..pos + frame_len) else {
            return;
        };
        if forge.checksums {
            let sum = frame_checksum(frame).expect("a frame is longer than 8 bytes");
            frame[0..8].copy_from_slice(&sum.to_le_bytes());
        }
        pos += frame_len;
        offset = offset.wrapping_add(1);
    }
}

/// A reader over a byte slice that returns at most a few bytes per call, with sizes
/// taken from `pattern`, and optionally an `Interrupted` error before every other
/// read: a scanner must give the same answer however its input is delivered. It
/// seeks like a slice's cursor (salvage's scanner reads long frames a second time).
pub struct Trickle<'a> {
    all: &'a [u8],
    data: &'a [u8],
    pattern: &'a [u8],
    calls: usize,
    interrupt: bool,
}

impl<'a> Trickle<'a> {
    pub fn new(data: &'a [u8], pattern: &'a [u8], interrupt: bool) -> Self {
        Self {
            all: data,
            data,
            pattern,
            calls: 0,
            interrupt,
        }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.interrupt && self.calls.is_multiple_of(2) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let step = match self.pattern {
            [] => 1,
            p => usize::from(p[self.calls % p.len()]).max(1),
        };
        let n = step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl Seek for Trickle<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let at = (self.all.len() - self.data.len()) as u64;
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => at.checked_add_signed(d),
            SeekFrom::End(d) => (self.all.len() as u64).checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let from = usize::try_from(target)
            .unwrap_or(usize::MAX)
            .min(self.all.len());
        self.data = &self.all[from..];
        Ok(target)
    }
}
