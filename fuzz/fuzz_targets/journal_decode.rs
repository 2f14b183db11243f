//! The journal's envelope and the values stored in it, on arbitrary bytes as sled
//! hands them back from disk.
//!
//! Input: flags (u8), then the bytes. Flag 0x01: the bytes are wrapped in a valid
//! envelope header (magic, the current version, length, XXH3-64) first, so that they reach the
//! payload decoder through `envelope::decode` itself; without it they go to
//! `envelope::open`/`decode` as they are (header checks) and to `decode_payload`
//! directly (bincode). Flag 0x02: the envelope header is wrapped with a wrong
//! version, length or checksum picked by the next flag bits.
//!
//! Proves: `open`, `decode` and `decode_payload` return an error or a value for every
//! input, never panic, for every type the journal reads back (a `log` block, a list of
//! `Entry`, and within it `Record` and `RepairAction`; `SegmentState`; the `[u8; 8]` of the marker), and
//! for `SegmentKey::from_bytes` (sled keys) and `SegmentKey::from_str` (`--segment`);
//! a decoded value can be displayed, folded with `SegmentState::apply`, and encodes
//! back to a value that decodes equal to it.
#![no_main]

use journal::envelope::{self, EnvelopeError, FORMAT_VERSION, HEADER_LEN, MAGIC};
use journal::{Entry, Record, RepairAction, SegmentKey, SegmentState};
use libfuzzer_sys::fuzz_target;
use serde_roundtrip::round_trip;
use std::str::FromStr;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let wrapped;
    let stored: &[u8] = if flags & 0x01 != 0 {
        wrapped = wrap(bytes, flags);
        &wrapped
    } else {
        bytes
    };

    // The header alone.
    match envelope::open(stored) {
        Ok(payload) => {
            assert_eq!(stored.len(), HEADER_LEN + payload.len());
            assert_eq!(payload, &stored[HEADER_LEN..]);
            assert!(flags & 0x03 != 0x03, "a damaged header was accepted");
        }
        Err(EnvelopeError::Decode(e)) => panic!("open does not decode: {e}"),
        Err(_) => {}
    }

    // Every type the journal decodes from its trees, through the whole envelope.
    block(envelope::decode::<Vec<Entry>>(stored));
    entry(envelope::decode::<Entry>(stored));
    state(envelope::decode::<SegmentState>(stored));
    marker(envelope::decode::<[u8; 8]>(stored));
    record(envelope::decode::<Record>(stored));
    action(envelope::decode::<RepairAction>(stored));

    // The payload decoder behind the checksum, on the raw bytes.
    block(envelope::decode_payload::<Vec<Entry>>(bytes));
    entry(envelope::decode_payload::<Entry>(bytes));
    state(envelope::decode_payload::<SegmentState>(bytes));
    marker(envelope::decode_payload::<[u8; 8]>(bytes));
    record(envelope::decode_payload::<Record>(bytes));
    action(envelope::decode_payload::<RepairAction>(bytes));

    // Keys of the segment trees, and the `--segment` argument.
    if let Some(key) = SegmentKey::from_bytes(bytes) {
        assert_eq!(key.to_bytes(), bytes);
        let _ = (key.rel_log(), key.rel_index());
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(key) = SegmentKey::from_str(text) {
            assert_eq!(SegmentKey::from_str(&key.to_string()), Ok(key));
        }
    }
});

/// `bytes` behind a header that is valid unless flag 0x02 asks for one damage.
fn wrap(bytes: &[u8], flags: u8) -> Vec<u8> {
    let mut version = FORMAT_VERSION;
    let mut len = bytes.len() as u32;
    let mut sum = envelope::checksum(version, len, bytes);
    if flags & 0x02 != 0 {
        match (flags >> 2) % 3 {
            0 => version = version.wrapping_add(u16::from(flags >> 4).max(1)),
            1 => len = len.wrapping_add(u32::from(flags >> 4).max(1)),
            _ => sum ^= u64::from(flags >> 4).max(1),
        }
    }
    let mut out = Vec::with_capacity(HEADER_LEN + bytes.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// A `log` value: the records of one commit round.
fn block(r: Result<Vec<Entry>, EnvelopeError>) {
    if let Ok(entries) = r {
        for e in &entries {
            record_ok(&e.record, e.seq);
        }
        round_trip(&entries);
    }
}

fn entry(r: Result<Entry, EnvelopeError>) {
    if let Ok(e) = r {
        record_ok(&e.record, e.seq);
        round_trip(&e);
    }
}

fn record(r: Result<Record, EnvelopeError>) {
    if let Ok(rec) = r {
        record_ok(&rec, 1);
        round_trip(&rec);
    }
}

fn record_ok(rec: &Record, seq: u64) {
    let _ = (rec.to_string(), rec.kind(), rec.segment(), rec.repair());
    if let Record::RepairIntent { action, .. } = rec {
        let _ = (action.to_string(), action.rel_path());
    }
    let folded = SegmentState::apply(None, seq, rec);
    // Every segment record starts a state but a stamp, which only adds to one.
    let starts = rec.segment().is_some() && !matches!(rec, Record::Stamped { .. });
    assert_eq!(folded.is_some(), starts);
    if let Some(s) = folded {
        let _ = SegmentState::apply(Some(&s), seq.wrapping_add(1), rec);
        let _ = s.is_unsealed();
    }
}

fn state(r: Result<SegmentState, EnvelopeError>) {
    if let Ok(s) = r {
        let _ = s.is_unsealed();
        round_trip(&s);
    }
}

fn marker(r: Result<[u8; 8], EnvelopeError>) {
    if let Ok(m) = r {
        round_trip(&m);
    }
}

fn action(r: Result<RepairAction, EnvelopeError>) {
    if let Ok(a) = r {
        let _ = (a.to_string(), a.rel_path());
        round_trip(&a);
    }
}

mod serde_roundtrip {
    use journal::envelope;

    /// What decodes re-encodes, and decodes back to the same value.
    pub fn round_trip<T>(value: &T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let bytes = envelope::encode(value).expect("a decoded value encodes");
        assert_eq!(envelope::decode::<T>(&bytes).as_ref(), Ok(value));
    }
}
