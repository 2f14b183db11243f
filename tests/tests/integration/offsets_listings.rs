//! `recover` journals what settled offsets folders hold (`journal::listing`), and the
//! next run takes it instead of reading them; a consumer's new offset file, or one
//! cut short by a crash, is still found.

use crate::{warden, warden_on};
use harness::fixture_copy;
use harness::fixtures::CLEAN;
use std::path::Path;
use std::time::Duration;

/// `recover --json` on `data`: exit 0, and its outcome.
fn recover(data: &Path, state: &Path) -> serde_json::Value {
    let run = warden_on(&["recover", "--json"], data, state);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn listings_used(outcome: &serde_json::Value) -> u64 {
    outcome["guided"]["offsets_listings_used"].as_u64().unwrap()
}

/// Waits out the margin within which a folder's listing is not journaled.
fn settle() {
    std::thread::sleep(recovery::layout::LISTING_MARGIN + Duration::from_millis(200));
}

#[test]
fn the_next_recover_takes_settled_offsets_folders_from_the_journal() {
    let copy = fixture_copy(CLEAN);
    let state = copy.tmp_root().join("state");
    // The copy's folders are new, and this run creates the missing groups folders:
    // nothing is listed yet.
    let first = recover(copy.path(), &state);
    assert_eq!(listings_used(&first), 0);
    let partitions = first["partitions"].as_array().unwrap().len();
    assert_eq!(partitions, 3);
    settle();
    let second = recover(copy.path(), &state);
    assert_eq!(listings_used(&second), 0, "journaled by this run");
    let third = recover(copy.path(), &state);
    assert_eq!(listings_used(&third), partitions as u64);

    // A crash cut the stored offset short (its folder's times stay), and a new
    // consumer stored one in another partition (they move).
    let consumers = copy
        .path()
        .join("streams/0/topics/0/partitions/0/offsets/consumers");
    let stored = std::fs::read_dir(&consumers)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&stored)
        .unwrap()
        .set_len(3)
        .unwrap();
    let other = copy
        .path()
        .join("streams/1/topics/0/partitions/0/offsets/consumers/77");
    std::fs::write(&other, 9u64.to_le_bytes()).unwrap();
    let fourth = recover(copy.path(), &state);
    assert_eq!(
        listings_used(&fourth),
        partitions as u64 - 1,
        "the folder that changed is read: {fourth}"
    );
    let cut_out: Vec<_> = fourth["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"].to_string().contains("QuarantineFile"))
        .collect();
    assert_eq!(
        cut_out.len(),
        1,
        "the short offset file is taken out: {fourth}"
    );
    assert!(!stored.exists(), "{}", stored.display());
    assert!(other.exists());
    let check = warden(["check", "--data-dir", copy.path().to_str().unwrap()]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
}
