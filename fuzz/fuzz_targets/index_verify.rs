//! `recovery::index::IndexVerifier` on arbitrary `.index` bytes against the messages
//! `scan_log` finds in arbitrary `.log` bytes, wired as `analyze_segment` wires them.
//!
//! Input: flags (u8), segment start offset (u64 LE), log length (u16 LE), declared
//! index length (u16 LE, used when flag 0x10 is set), then the log bytes, then the
//! index bytes. With flag 0x08 the index is the one `IndexBuilder` writes for the log,
//! XORed with the index bytes of the input (and cut or extended to their length when
//! flag 0x20 is set), so that the fuzzer reaches matching entries. Flags 0x01/0x02/
//! 0x04 forge valid frames (see `forge_frames`); 0x80 moves the segment start next
//! to `u64::MAX`.
//!
//! Proves: the verifier and `IndexState`'s helpers never panic, even when the
//! declared index length is not the real one (then only an I/O error may come back);
//! and its verdict is exact: `Consistent` if and only if the index is byte for byte
//! what `IndexBuilder` writes, `Short`/`Long`/`HalfEntry`/`Mismatch` where the bytes
//! say so, `Unrepresentable` exactly when the builder refuses.
#![no_main]

use fuzz_support::{forge_frames, near_max, Forge, Input};
use libfuzzer_sys::fuzz_target;
use recovery::index::{IndexBuilder, IndexEntry, IndexState, IndexVerifier, ENTRY_LEN};
use recovery::scan::{scan_log, EachMessage, MessageMeta, ScanStart};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.u8();
    let segment_start = near_max(input.u64(), flags);
    let log_len = input.u16();
    let declared = input.u16();
    let mut log = input.bytes(usize::from(log_len)).to_vec();
    let index_input = input.rest();
    forge_frames(&mut log, segment_start, Forge::from_bits(flags));

    // The index the server would have written for this log's valid prefix.
    let mut metas: Vec<MessageMeta> = Vec::new();
    let start = ScanStart::segment(segment_start);
    scan_log(
        &log[..],
        start,
        EachMessage(|m: &MessageMeta| {
            metas.push(*m);
            Ok::<_, std::io::Error>(())
        }),
    )
    .expect("reading a byte slice cannot fail");
    let built = build(&metas, segment_start);

    let index: Vec<u8> = match (&built, flags & 0x08 != 0) {
        (Some(built), true) => {
            let len = if flags & 0x20 != 0 {
                index_input.len()
            } else {
                built.len()
            };
            (0..len)
                .map(|i| {
                    built.get(i).copied().unwrap_or(0) ^ index_input.get(i).copied().unwrap_or(0)
                })
                .collect()
        }
        _ => index_input.to_vec(),
    };
    for chunk in index.chunks_exact(ENTRY_LEN) {
        let entry = IndexEntry::decode(chunk.try_into().expect("16 bytes"));
        assert_eq!(entry.encode(), chunk);
    }

    let truthful = flags & 0x10 == 0;
    let len = if truthful {
        index.len() as u64
    } else {
        u64::from(declared)
    };
    let mut verifier = IndexVerifier::new(&index[..], len, segment_start);
    let scan = scan_log(&log[..], start, &mut verifier);
    let state = match scan.map(|s| s.ended().expect("the verifier never stops a scan")) {
        Ok(scan) => {
            assert_eq!(scan.messages, metas.len() as u64);
            verifier.finish(scan.messages)
        }
        Err(e) => Err(e),
    };
    let state = match state {
        Ok(state) => state,
        Err(e) => {
            // Only a declared length longer than the bytes can make a read fail.
            assert!(!truthful, "I/O error on a truthful index: {e}");
            return;
        }
    };
    let _ = state.position();
    let _ = state.describe();
    let _ = state.is_consistent();
    if truthful {
        check(&index, metas.len() as u64, built.as_deref(), state);
    }
});

/// `None` when a message cannot be indexed in 32 bits (the builder refuses).
fn build(metas: &[MessageMeta], segment_start: u64) -> Option<Vec<u8>> {
    let mut builder = IndexBuilder::new(Vec::new(), segment_start);
    for m in metas {
        builder.add(m).ok()?;
    }
    let (bytes, len, _) = builder.finish().expect("writing to a Vec cannot fail");
    assert_eq!(len, bytes.len() as u64);
    Some(bytes)
}

fn check(index: &[u8], messages: u64, built: Option<&[u8]>, state: IndexState) {
    let Some(built) = built else {
        assert!(
            matches!(
                state,
                IndexState::Unrepresentable { .. } | IndexState::Mismatch { .. }
            ),
            "builder refused but verifier said {state:?}"
        );
        return;
    };
    assert!(!matches!(state, IndexState::Unrepresentable { .. }));
    assert_eq!(state.is_consistent(), index == built, "{state:?}");
    let entries = (index.len() / ENTRY_LEN) as u64;
    // Length of the prefix of `index` made of whole entries that match `built`.
    let matching = index
        .chunks_exact(ENTRY_LEN)
        .zip(built.chunks_exact(ENTRY_LEN))
        .take_while(|(a, b)| a == b)
        .count() as u64;
    match state {
        IndexState::Consistent | IndexState::Unrepresentable { .. } => {}
        IndexState::Missing => panic!("the verifier never says Missing"),
        IndexState::Mismatch { entry } => {
            assert_eq!(entry, matching);
            assert!(entry < entries.min(messages));
        }
        IndexState::HalfEntry { len } => {
            assert_eq!(len, index.len() as u64);
            assert!(len % ENTRY_LEN as u64 != 0 && entries <= messages);
            assert_eq!(matching, entries);
        }
        IndexState::Short {
            entries: e,
            messages: m,
        } => {
            assert_eq!((e, m), (entries, messages));
            assert!(e < m && matching == e);
        }
        IndexState::Long {
            entries: e,
            messages: m,
            zero_filled,
        } => {
            assert_eq!((e, m), (entries, messages));
            assert!(matching == m && e >= m);
            let rest = &index[(m as usize) * ENTRY_LEN..];
            assert!(!rest.is_empty());
            assert_eq!(zero_filled, rest.iter().all(|&b| b == 0));
        }
    }
}
