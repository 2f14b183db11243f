use super::*;
use crate::stamp::tests::stamp;

fn listing(consumer: &str) -> OffsetsListing {
    OffsetsListing {
        offsets: stamp(4096),
        consumers: stamp(4096),
        groups: stamp(4096),
        consumer_files: vec![consumer.to_string()],
        group_files: Vec::new(),
    }
}

#[test]
fn listings_are_replaced_forgotten_and_kept_across_a_reopen() -> Result<(), JournalError> {
    let dir = tempfile::tempdir().map_err(|e| JournalError::io(std::path::Path::new("tmp"), e))?;
    let (a, b) = (PartitionId::new(1, 2, 3), PartitionId::new(4_000_000, 0, 9));
    {
        let journal = Journal::open(dir.path())?;
        assert!(journal.offsets_listings()?.is_empty());
        journal.record_offsets_listings(&[(a, listing("7")), (b, listing("8"))], &[])?;
        journal.record_offsets_listings(&[(a, listing("9"))], &[b])?;
    }
    let journal = Journal::open(dir.path())?;
    let found = journal.offsets_listings()?;
    assert_eq!(found.len(), 1);
    assert_eq!(found.get(&a), Some(&listing("9")));
    Ok(())
}

#[test]
fn a_damaged_listing_is_an_error_naming_its_partition() -> Result<(), JournalError> {
    let dir = tempfile::tempdir().map_err(|e| JournalError::io(std::path::Path::new("tmp"), e))?;
    let journal = Journal::open(dir.path())?;
    let p = PartitionId::new(0, 1, 2);
    journal
        .listings
        .insert(key(p), b"not an envelope".to_vec())
        .map_err(|e| journal.sled_err(e))?;
    let err = journal.offsets_listings().err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("partition 0/1/2")),
        "{err:?}"
    );
    // `journal verify` names it too.
    let report = journal.verify()?;
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == crate::verify::JournalProblemKind::BadRecord
                && p.detail.contains("offsets listing of partition 0/1/2")),
        "{:?}",
        report.problems
    );
    // A key that is not a partition's is named too.
    journal
        .listings
        .remove(key(p))
        .map_err(|e| journal.sled_err(e))?;
    journal
        .listings
        .insert(b"short", b"x".to_vec())
        .map_err(|e| journal.sled_err(e))?;
    let err = journal.offsets_listings().err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("listing key of 5 bytes")),
        "{err:?}"
    );
    Ok(())
}
