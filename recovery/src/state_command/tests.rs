use super::*;

#[test]
fn decodes_what_the_clean_fixture_stores() {
    // The create-topic payload of the clean fixture's third entry.
    let mut p = vec![0, 0, 0, 0, 37, 0, 0, 0, 2, 6];
    p.extend(b"orders");
    p.extend([2, 0, 0, 0, 1]);
    p.extend([0xff; 16]);
    p.extend([1, 6]);
    p.extend(b"events");
    assert_eq!(
        Command::decode(302, &p).to_string(),
        "create topic 0 \"events\" in stream \"orders\" with 2 partitions"
    );
    assert_eq!(
        Command::decode(302, &p[..p.len() - 1]),
        Command::Undecoded { code: 302 }
    );
    assert_eq!(Command::decode(999, &p), Command::Unknown { code: 999 });
}
