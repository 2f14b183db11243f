//! `recovery::salvage::resync::resync_scan` (salvage's resynchronising scanner) on
//! arbitrary bytes as a `.log`.
//!
//! Input: flags (u8), first offset (u64 LE), read pattern length (u8) and pattern
//! (unused: the scanner seeks, so reads in small pieces are covered by the property
//! test beside it), then the log bytes. Flags 0x01/0x02/0x04 forge valid frames from
//! byte 0 (see `forge_frames`).
//!
//! Proves: the scanner never panics; the messages and gaps it reports tile the file
//! exactly, in order, without overlap; every message's checksum is valid; gaps marked
//! as zeros are zeros; the digest is the whole file's XXH3.
#![no_main]

use fuzz_support::{forge_frames, Forge, Input};
use libfuzzer_sys::fuzz_target;
use recovery::message::frame_checksum;
use recovery::salvage::resync::resync_scan;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.u8();
    let first_offset = input.u64();
    let pattern_len = input.u8();
    let _pattern = input.bytes(usize::from(pattern_len % 16));
    let mut log = input.rest().to_vec();
    forge_frames(&mut log, first_offset, Forge::from_bits(flags));
    let len = log.len() as u64;

    let scan = resync_scan(std::io::Cursor::new(log.as_slice()), len)
        .expect("reading a slice cannot fail");
    assert_eq!(scan.len, len);
    assert_eq!(scan.xxh3, xxhash_rust::xxh3::xxh3_64(&log));

    let mut pieces: Vec<(u64, u64, Option<bool>)> = scan
        .messages
        .iter()
        .map(|m| (m.range.start, m.range.end, None))
        .chain(
            scan.gaps
                .iter()
                .map(|g| (g.range.start, g.range.end, Some(g.zeros))),
        )
        .collect();
    pieces.sort();
    let mut at = 0;
    for (start, end, zeros) in pieces {
        assert_eq!(start, at, "pieces must tile the file");
        assert!(end > start);
        let bytes = &log[start as usize..end as usize];
        match zeros {
            None => {
                let stored = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                assert_eq!(frame_checksum(bytes), Some(stored));
            }
            Some(true) => assert!(bytes.iter().all(|&b| b == 0)),
            Some(false) => {}
        }
        at = end;
    }
    assert_eq!(at, len);
});
