//! Property tests of the parsers: the scanner's valid prefix is exactly the messages
//! wholly before any cut, any single flipped byte stops the scan at or before its
//! message, arbitrary bytes (as a log or an index) never panic, and scans through
//! reused buffers (the sidecar's small one, an analysis thread's 128 KiB one) see
//! exactly what the plain one sees.

use harness::{encode_message, Message};
use proptest::prelude::*;
use recovery::index::IndexVerifier;
use recovery::scan::{
    scan_log, scan_log_with, EachMessage, IgnoreMessages, MessageMeta, ScanBuffer, ScanOutcome,
    ScanStart, Scanned, StopReason,
};

const START: u64 = 1000;

/// The outcome of a scan whose visitor never stops it.
fn ended(scanned: std::io::Result<Scanned>) -> ScanOutcome {
    scanned.unwrap().ended().unwrap()
}

/// A visitor that records every message in `seen`.
fn record(
    seen: &mut Vec<MessageMeta>,
) -> EachMessage<impl FnMut(&MessageMeta) -> std::io::Result<()> + '_> {
    EachMessage(move |m: &MessageMeta| {
        seen.push(*m);
        Ok(())
    })
}

/// A segment of messages with the given (payload, headers) lengths; returns the log
/// bytes and each message's end position.
fn segment(shapes: &[(usize, usize)]) -> (Vec<u8>, Vec<u64>) {
    let mut log = Vec::new();
    let mut ends = Vec::new();
    for (i, &(payload, headers)) in shapes.iter().enumerate() {
        let m = Message {
            id: 7 + i as u128,
            offset: START + i as u64,
            timestamp: 1_700_000_000_000_000 + i as u64,
            origin_timestamp: 1_700_000_000_000_000,
            payload: (0..payload).map(|b| (b * 31 + i) as u8).collect(),
            headers: (0..headers).map(|b| (b * 7 + i) as u8).collect(),
        };
        log.extend(encode_message(&m));
        ends.push(log.len() as u64);
    }
    (log, ends)
}

fn shapes() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0usize..300, 0usize..64), 0..24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_prefix_is_exactly_the_messages_before_any_cut(shapes in shapes(), cut_frac in 0.0f64..=1.0) {
        let (log, ends) = segment(&shapes);
        let cut = ((log.len() as f64) * cut_frac) as usize;
        let out = ended(scan_log(&log[..cut], ScanStart::segment(START), IgnoreMessages));
        let whole: Vec<u64> = ends.iter().copied().filter(|&e| e <= cut as u64).collect();
        prop_assert_eq!(out.messages, whole.len() as u64);
        prop_assert_eq!(out.valid_len, whole.last().copied().unwrap_or(0));
        prop_assert_eq!(out.next_offset, START + whole.len() as u64);
        if out.valid_len == cut as u64 {
            prop_assert_eq!(out.stop, StopReason::EndOfFile);
        } else {
            prop_assert!(out.stop.is_tail_only(), "a cut is a tail: {:?}", out.stop);
            prop_assert_eq!(out.stop.position(), Some(out.valid_len));
        }
    }

    #[test]
    fn a_reused_small_buffer_scans_like_a_fresh_one(
        shapes in shapes(),
        cut_frac in 0.0f64..=1.0,
        chunk in 1usize..700,
    ) {
        let (log, _) = segment(&shapes);
        let cut = ((log.len() as f64) * cut_frac) as usize;
        let plain = ended(scan_log(&log[..cut], ScanStart::segment(START), IgnoreMessages));
        let mut scratch = ScanBuffer::new(chunk);
        // Twice through the same buffer: what the first scan left in it must not matter.
        for _ in 0..2 {
            let mut seen = Vec::new();
            let out = ended(scan_log_with(
                &log[..cut],
                ScanStart::segment(START),
                &mut scratch,
                EachMessage(|m: &MessageMeta| {
                    seen.push(m.end);
                    Ok::<_, std::io::Error>(())
                }),
            ));
            prop_assert_eq!(out, plain);
            prop_assert_eq!(seen.len() as u64, plain.messages);
        }
    }

    #[test]
    fn a_flipped_byte_stops_the_scan_at_or_before_its_message(
        shapes in prop::collection::vec((0usize..200, 0usize..32), 1..16),
        pos_frac in 0.0f64..1.0,
        bit in 0u8..8,
    ) {
        let (mut log, ends) = segment(&shapes);
        let pos = ((log.len() as f64) * pos_frac) as usize;
        log[pos] ^= 1 << bit;
        let out = ended(scan_log(&log[..], ScanStart::segment(START), IgnoreMessages));
        let hit = ends.iter().position(|&e| e > pos as u64).unwrap() as u64;
        prop_assert!(out.messages <= hit, "scan passed the damaged message {}: {:?}", hit, out);
        prop_assert_ne!(out.stop, StopReason::EndOfFile);
    }

    #[test]
    fn arbitrary_bytes_as_a_log_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096), zeros in 0usize..200) {
        let mut log = bytes;
        log.extend(std::iter::repeat_n(0u8, zeros));
        let out = ended(scan_log(&log[..], ScanStart::segment(0), IgnoreMessages));
        prop_assert!(out.valid_len <= log.len() as u64);
        prop_assert!(out.stop.position().is_none_or(|p| p <= log.len() as u64));
    }

    #[test]
    fn arbitrary_bytes_as_an_index_never_panic(index in prop::collection::vec(any::<u8>(), 0..512), shapes in shapes()) {
        let (log, _) = segment(&shapes);
        let mut verifier = IndexVerifier::new(&index[..], index.len() as u64, START);
        let out = ended(scan_log(&log[..], ScanStart::segment(START), &mut verifier));
        let state = verifier.finish(out.messages).unwrap();
        prop_assert!(state.position().is_none_or(|p| p <= index.len() as u64 + 16));
    }
}

#[test]
fn many_random_logs_never_panic() {
    // A plain loop over many more random inputs than proptest's default, with framing
    // that looks valid so the scanner goes deep: the fuzzing stand-in on stable Rust.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..20_000 {
        let (mut log, _) = segment(&[(round % 50, round % 7), (3, 0), (90, 12)]);
        let flips = (next() % 6) as usize;
        for _ in 0..flips {
            let i = (next() % log.len() as u64) as usize;
            log[i] = next() as u8;
        }
        let cut = (next() % (log.len() as u64 + 1)) as usize;
        let out = ended(scan_log(
            &log[..cut],
            ScanStart::segment(START),
            IgnoreMessages,
        ));
        assert!(out.valid_len <= cut as u64);
    }
}

#[test]
fn buffered_scans_see_exactly_what_the_plain_scan_sees() {
    // ~5 MiB: several 1 MiB reads, messages straddling every boundary, some longer
    // than the 128 KiB buffer of an analysis thread and one longer than a 1 MiB read.
    let mut shapes = Vec::new();
    for i in 0..2200usize {
        let payload = match i % 97 {
            0 => 100 * 1024,
            1 => 70 * 1024,
            _ => (i * 37) % 3000,
        };
        shapes.push((payload, i % 40));
    }
    shapes.push((1_300_000, 0));
    shapes.push((10, 0));
    let (log, ends) = segment(&shapes);
    let mut scratch = ScanBuffer::new(4096);
    let mut analysis = ScanBuffer::new(128 << 10);
    for cut in [
        log.len(),
        log.len() - 1,
        log.len() - 700_000,
        (1 << 20) + 3,
        2 << 20,
        57,
    ] {
        let bytes = &log[..cut];
        let mut plain = Vec::new();
        let a = ended(scan_log(
            bytes,
            ScanStart::segment(START),
            record(&mut plain),
        ));
        let mut large = Vec::new();
        let b = ended(scan_log_with(
            bytes,
            ScanStart::segment(START),
            &mut analysis,
            record(&mut large),
        ));
        assert_eq!(a, b, "cut at {cut}");
        assert_eq!(plain, large, "cut at {cut}");
        // One small buffer reused for every cut, as the sidecar reuses its own.
        let mut reused = Vec::new();
        let c = ended(scan_log_with(
            bytes,
            ScanStart::segment(START),
            &mut scratch,
            record(&mut reused),
        ));
        assert_eq!(a, c, "cut at {cut}");
        assert_eq!(plain, reused, "cut at {cut}");
        assert_eq!(
            a.messages as usize,
            ends.iter().filter(|&&e| e <= cut as u64).count()
        );
    }
    // A zero-filled tail longer than a chunk is classified the same way too.
    let mut zeroed = log.clone();
    zeroed.extend(std::iter::repeat_n(0u8, 3 << 20));
    let a = ended(scan_log(
        &zeroed[..],
        ScanStart::segment(START),
        IgnoreMessages,
    ));
    let b = ended(scan_log_with(
        &zeroed[..],
        ScanStart::segment(START),
        &mut analysis,
        IgnoreMessages,
    ));
    assert_eq!(a, b);
    let c = ended(scan_log_with(
        &zeroed[..],
        ScanStart::segment(START),
        &mut scratch,
        IgnoreMessages,
    ));
    assert_eq!(a, c);
    assert_eq!(
        a.stop,
        StopReason::ZeroFill {
            at: log.len() as u64,
            len: 3 << 20
        }
    );
}
