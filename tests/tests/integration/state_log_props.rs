//! Properties of the `state/log` parser (`recovery::state_log::parse`) against logs the
//! harness writes with its own encoder: it never panics on any bytes; it reads back
//! every entry written; a log cut anywhere inside its last entry is a torn tail at
//! that entry; a byte flipped anywhere is damage at the start of the entry holding it,
//! with every entry before kept.

use harness::state_log::{
    create_personal_access_token, create_stream, create_topic, create_user, encode_entry,
    StateEntry, CREATE_PERSONAL_ACCESS_TOKEN, CREATE_STREAM, CREATE_TOPIC, CREATE_USER,
};
use proptest::prelude::*;
use recovery::state_command::Command;
use recovery::state_log::{parse, DamageKind};

/// Entries with consecutive indexes from 0: users, streams, topics and tokens.
fn entries() -> impl Strategy<Value = Vec<StateEntry>> {
    let command = prop_oneof![
        (any::<u32>(), "[a-z]{1,20}").prop_map(|(id, n)| (CREATE_USER, create_user(id, &n))),
        (any::<u32>(), "[a-z]{1,40}").prop_map(|(id, n)| (CREATE_STREAM, create_stream(id, &n))),
        (any::<u32>(), any::<u32>(), 0u32..64, "[a-z]{1,30}")
            .prop_map(|(s, t, p, n)| (CREATE_TOPIC, create_topic(s, t, p, &n))),
        "[a-z]{1,30}".prop_map(|n| (
            CREATE_PERSONAL_ACCESS_TOKEN,
            create_personal_access_token(&n)
        )),
    ];
    prop::collection::vec((command, any::<u64>(), any::<u32>()), 2..12).prop_map(|cs| {
        cs.into_iter()
            .enumerate()
            .map(|(i, ((code, command), timestamp, user_id))| StateEntry {
                index: i as u64,
                timestamp,
                user_id,
                code,
                command,
            })
            .collect()
    })
}

fn encode(entries: &[StateEntry]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut starts = Vec::new();
    for e in entries {
        starts.push(bytes.len());
        bytes.extend(encode_entry(e));
    }
    (bytes, starts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_parse_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let log = parse(&bytes);
        prop_assert!(log.valid_len() <= bytes.len() as u64);
    }

    #[test]
    fn written_entries_round_trip(entries in entries()) {
        let (bytes, starts) = encode(&entries);
        let log = parse(&bytes);
        prop_assert_eq!(&log.damage, &None);
        prop_assert!(!log.encrypted);
        prop_assert_eq!(log.entries.len(), entries.len());
        for ((read, written), start) in log.entries.iter().zip(&entries).zip(&starts) {
            prop_assert_eq!(read.offset, *start as u64);
            prop_assert_eq!(read.index, written.index);
            prop_assert_eq!(read.code, written.code);
            prop_assert_eq!(read.timestamp, written.timestamp);
            prop_assert_eq!(read.checksum_ok, Some(true));
            let decoded = !matches!(read.command, Command::Undecoded { .. } | Command::Unknown { .. });
            prop_assert!(decoded, "{:?}", read.command);
        }
    }

    #[test]
    fn a_cut_inside_the_last_entry_is_a_torn_tail(entries in entries(), at in any::<prop::sample::Index>()) {
        let (bytes, starts) = encode(&entries);
        let last = *starts.last().unwrap();
        let cut = last + 1 + at.index(bytes.len() - last - 1);
        let log = parse(&bytes[..cut]);
        let d = log.damage.expect("damage");
        prop_assert!(matches!(d.kind, DamageKind::Torn | DamageKind::ZeroTail));
        prop_assert_eq!(d.offset, last as u64);
        prop_assert!(d.tail_only);
        prop_assert_eq!(log.entries.len(), entries.len() - 1);
    }

    #[test]
    fn a_flipped_byte_is_damage_at_its_entry(entries in entries(), at in any::<prop::sample::Index>(), mask in 1u8..) {
        let (mut bytes, starts) = encode(&entries);
        let at = at.index(bytes.len());
        bytes[at] ^= mask;
        let entry = starts.iter().rposition(|s| *s <= at).unwrap();
        let log = parse(&bytes);
        let d = log.damage.expect("damage");
        prop_assert_eq!(d.offset, starts[entry] as u64);
        prop_assert_eq!(log.entries.len(), entry);
        // Damage before the last entry hides valid entries: never a tail.
        if entry + 1 < entries.len() {
            prop_assert!(!d.tail_only, "{:?}", d);
        }
    }
}
