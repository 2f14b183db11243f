//! `recovery::state_log::parse` (the verifier of the server's metadata log) on
//! arbitrary bytes as `state/log`.
//!
//! Proves: the parser never panics; the entries it keeps tile the file from byte 0 in
//! order, end where the damage (if any) starts, and follow the index rule 0.6.0
//! applies (from the third entry on, each index is the previous + 1); a damage lies
//! inside the file; and parsing only the kept prefix of a plaintext log finds no
//! damage. Replaying the kept entries as 0.6.0 does never panics either, and dropping
//! entries from a sound log (`without_entries`) leaves a sound log of the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recovery::state_log::{parse, without_entries};

fuzz_target!(|data: &[u8]| {
    let log = parse(data);
    let mut at = 0;
    for (i, e) in log.entries.iter().enumerate() {
        assert_eq!(e.offset, at, "entries tile the file");
        at += e.len;
        if i >= 2 {
            assert_eq!(Some(e.index), log.entries[i - 1].index.checked_add(1));
        }
    }
    assert_eq!(at, log.valid_len());
    if let Some(d) = &log.damage {
        assert!(d.offset < data.len() as u64);
    }
    let _ = recovery::metadata::Metadata::replay(&log.entries);
    // Cutting at the damage leaves a sound log (an encrypted one may only show what
    // it is in entries after the damage, so it is not held to this).
    if !log.encrypted {
        let prefix = &data[..log.valid_len() as usize];
        assert_eq!(parse(prefix).damage, None);
        // Dropping every other entry of that sound log (as for the delete-segments
        // entries 0.6.0 cannot read back) leaves a sound log of the rest, renumbered.
        let drop: Vec<u64> = log
            .entries
            .iter()
            .skip(1)
            .step_by(2)
            .map(|e| e.offset)
            .collect();
        if let Ok(rest) = without_entries(prefix, &drop) {
            let kept = parse(&rest);
            assert_eq!(kept.damage, None);
            assert_eq!(kept.entries.len(), log.entries.len() - drop.len());
            assert_eq!(kept.valid_len(), rest.len() as u64);
        }
        let none = without_entries(prefix, &[]);
        assert!(none.as_deref().is_err() || none.as_deref() == Ok(prefix));
    }
    // Any bytes and offsets: an answer, never a panic.
    let _ = without_entries(data, &[0, data.len() as u64 / 2]);
});
