//! `recovery::scan::scan_log` (and `scan_log_with`) on arbitrary
//! bytes as a segment's `.log`, from an arbitrary `ScanStart`.
//!
//! Input: flags (u8), next_offset (u64 LE), position (u64 LE), read pattern length
//! (u8) and pattern, then the log bytes. Flags: 0x01/0x02/0x04 forge valid frames
//! (see `forge_frames`), 0x08 also reads through a reader that returns a few bytes
//! per call (0x10: with `Interrupted` errors), 0x20 also through a reused 128 KiB
//! `ScanBuffer` (an analysis thread's way) fed a few bytes per read, 0x40 also twice through one reused `ScanBuffer` as small as the pattern
//! length says (the sidecar's way), 0x80 moves next_offset next to `u64::MAX`.
//!
//! Proves: the scanner never panics; it returns the valid prefix its documentation
//! describes (contiguous frames from `position`, consecutive offsets, `valid_len` and
//! the stop position agree); and the result does not depend on how the reader delivers
//! the bytes (a few bytes per read, `Interrupted` errors, a buffer kept between
//! scans, small or as an analysis thread's).
#![no_main]

use fuzz_support::{forge_frames, near_max, Forge, Input, Trickle};
use libfuzzer_sys::fuzz_target;
use recovery::message::HEADER_LEN;
use recovery::scan::StopReason;
use recovery::scan::{
    scan_log, scan_log_with, EachMessage, MessageMeta, ScanBuffer, ScanOutcome, ScanStart,
};
use std::io;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.u8();
    let next_offset = near_max(input.u64(), flags);
    // A log is a file: its positions are below i64::MAX (off_t). A position closer to
    // u64::MAX than the log is long cannot occur; see README.md.
    let position = input.u64() & (i64::MAX as u64);
    let pattern_len = input.u8();
    let pattern = input.bytes(usize::from(pattern_len % 16));
    let mut log = input.rest().to_vec();
    forge_frames(&mut log, next_offset, Forge::from_bits(flags));

    let start = ScanStart {
        position,
        next_offset,
    };
    let (outcome, metas) = scan(io::Cursor::new(&log[..]), start);
    let outcome = outcome.expect("reading a byte slice cannot fail");
    check(&log, start, &outcome, &metas);

    if flags & 0x08 != 0 {
        let interrupt = flags & 0x10 != 0;
        let (trickled, trickled_metas) = scan(Trickle::new(&log, pattern, interrupt), start);
        assert_eq!(trickled.expect("Interrupted is retried"), outcome);
        assert_eq!(trickled_metas, metas);
    }
    if flags & 0x20 != 0 {
        let mut analysis = ScanBuffer::new(128 << 10);
        let mut seen = Vec::new();
        let scanned = scan_log_with(
            Trickle::new(&log, pattern, false),
            start,
            &mut analysis,
            EachMessage(|m: &MessageMeta| {
                seen.push(*m);
                Ok::<_, io::Error>(())
            }),
        );
        let scanned = scanned.expect("reading a byte slice cannot fail").ended();
        assert_eq!(scanned, Some(outcome));
        assert_eq!(seen, metas);
    }
    if flags & 0x40 != 0 {
        let mut scratch = ScanBuffer::new(1 + usize::from(pattern_len) * 7);
        for _ in 0..2 {
            let mut reused = Vec::new();
            let again = scan_log_with(
                io::Cursor::new(&log[..]),
                start,
                &mut scratch,
                EachMessage(|m: &MessageMeta| {
                    reused.push(*m);
                    Ok::<_, io::Error>(())
                }),
            );
            let again = again.expect("reading a byte slice cannot fail").ended();
            assert_eq!(again, Some(outcome));
            assert_eq!(reused, metas);
        }
    }
});

fn scan<R: io::Read>(src: R, start: ScanStart) -> (io::Result<ScanOutcome>, Vec<MessageMeta>) {
    let mut metas = Vec::new();
    let visit = EachMessage(|m: &MessageMeta| {
        metas.push(*m);
        Ok::<_, io::Error>(())
    });
    let outcome =
        scan_log(src, start, visit).map(|s| s.ended().expect("a visitor that never stops"));
    (outcome, metas)
}

/// The outcome is the valid prefix `scan_log` documents.
fn check(log: &[u8], start: ScanStart, out: &ScanOutcome, metas: &[MessageMeta]) {
    let end = start.position + log.len() as u64;
    assert_eq!(out.start, start);
    assert_eq!(out.messages, metas.len() as u64);
    assert_eq!(out.last, metas.last().copied());
    let mut at = start.position;
    for (i, m) in metas.iter().enumerate() {
        assert_eq!(m.start, at, "frames follow each other with no gap");
        assert!(m.end - m.start >= HEADER_LEN as u64);
        assert_eq!(m.offset, start.next_offset.saturating_add(i as u64));
        at = m.end;
    }
    assert!(at <= end);
    assert_eq!(out.valid_len, at);
    assert_eq!(
        out.next_offset,
        start.next_offset.saturating_add(out.messages)
    );
    // Every stop but a clean end is at the first byte after the valid prefix.
    assert_eq!(
        out.stop.position().is_none(),
        out.stop == StopReason::EndOfFile
    );
    if let Some(p) = out.stop.position() {
        assert_eq!(p, out.valid_len, "{:?}", out.stop);
    }
    let rest = &log[(out.valid_len - start.position) as usize..];
    match out.stop {
        StopReason::EndOfFile => assert!(rest.is_empty()),
        StopReason::TornHeader { available, .. } => {
            assert_eq!(available, rest.len() as u64);
            assert!(rest.len() < HEADER_LEN && rest.iter().any(|&b| b != 0));
        }
        StopReason::TornMessage {
            frame_len,
            available,
            ..
        } => {
            assert_eq!(available, rest.len() as u64);
            assert!(available < frame_len);
        }
        StopReason::ZeroFill { len, .. } => {
            assert_eq!(len, rest.len() as u64);
            assert!(!rest.is_empty() && rest.iter().all(|&b| b == 0));
        }
        StopReason::ZeroesThenData { .. } => {
            assert!(rest.len() >= HEADER_LEN && rest[..HEADER_LEN].iter().all(|&b| b == 0));
            assert!(rest.iter().any(|&b| b != 0));
        }
        StopReason::BadChecksum {
            frame_len,
            followed_by_data,
            ..
        }
        | StopReason::OffsetJump {
            frame_len,
            followed_by_data,
            ..
        } => {
            assert!(frame_len <= rest.len() as u64);
            assert_eq!(followed_by_data, frame_len < rest.len() as u64);
        }
        StopReason::ImplausibleLength { .. } => assert!(rest.len() >= HEADER_LEN),
    }
    // The report texts are built from the same values: they must not panic either.
    let _ = out.stop.describe();
    let _ = out.stop.is_tail_only();
}
