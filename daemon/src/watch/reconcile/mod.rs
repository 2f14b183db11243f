//! The sidecar's view of the segments, and how it is brought in line with the disk.
//!
//! The model itself — what the journal says about every live segment, plus the
//! verification progress of the open ones — is in `model.rs`.
//!
//! [`sync_partition`] compares one partition's model with a listing of its folder and
//! returns the records that make the journal agree with the disk: segments gone from
//! disk are `SegmentDeleted`; segments the journal does not know (or saw deleted) are
//! `SegmentOpened`; every open segment that is no longer the partition's newest gets a
//! `SealIntent` and joins the seal queue, where it is verified before `Sealed`. A full
//! reconciliation also stats the sealed segments and re-opens those whose lengths no
//! longer match. The same function serves start-up, rescans after an overflow, and the
//! single partition an inotify event pointed at: one code path, so they cannot drift.

mod model;

// The rest of the sidecar names the model through this module, as it did before the
// model had a file of its own.
pub use model::{Model, PartitionModel, Phase};

use crate::watch::tracker::Tracker;
use journal::{segment_name, PartitionId, Record, SegmentFile, SegmentKey};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// A partition folder as listed: start offset → (log length, index length) of every
/// segment whose `.log` exists; lengths only when asked for (a full reconciliation).
pub type Listing = BTreeMap<u64, Option<(u64, Option<u64>)>>;

/// Lists a partition folder; `Ok(None)` when the folder does not exist. Only regular
/// files count as segments.
pub fn list_partition(dir: &Path, with_lengths: bool) -> io::Result<Option<Listing>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Listing::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(start) = name.to_str().and_then(crate::watch::place::log_file) else {
            continue;
        };
        // A folder, symlink or special file under a segment's name is no segment
        // (the listing's file type costs no extra system call).
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let lengths = if with_lengths {
            let log_len = match entry.metadata() {
                Ok(m) if m.is_file() => m.len(),
                Ok(_) => continue,
                // Deleted between the listing and the stat.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let index = dir.join(segment_name::file_name(start, SegmentFile::Index));
            let index_len = match std::fs::metadata(&index) {
                Ok(m) => Some(m.len()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            Some((log_len, index_len))
        } else {
            None
        };
        out.insert(start, lengths);
    }
    Ok(Some(out))
}

/// What [`sync_partition`] decided.
#[derive(Debug, Default)]
pub struct PartitionChanges {
    pub records: Vec<Record>,
    /// Segments opened now: their bytes need verifying.
    pub opened: Vec<SegmentKey>,
    /// Segments that entered the seal queue.
    pub to_seal: Vec<SegmentKey>,
    pub deleted: Vec<SegmentKey>,
}

/// Brings one partition's model in line with `listing` (`None`: the folder is gone).
/// `full` also re-opens sealed segments whose lengths changed (the listing must then
/// carry lengths).
pub fn sync_partition(
    part: &mut PartitionModel,
    pid: PartitionId,
    listing: Option<&Listing>,
    full: bool,
) -> PartitionChanges {
    let empty = Listing::new();
    let present = listing.unwrap_or(&empty);
    let mut out = PartitionChanges::default();
    let gone: Vec<u64> = part
        .segments
        .keys()
        .filter(|s| !present.contains_key(s))
        .copied()
        .collect();
    for start in gone {
        part.segments.remove(&start);
        let segment = pid.segment(start);
        out.records.push(Record::SegmentDeleted { segment });
        out.deleted.push(segment);
    }
    let newest = present.keys().next_back().copied();
    for (&start, lengths) in present {
        let segment = pid.segment(start);
        let reopen = match part.segments.get(&start) {
            None => true,
            Some(Phase::Sealed { log_len, index_len }) if full => {
                lengths.is_some_and(|(l, i)| l != *log_len || i != Some(*index_len))
            }
            Some(_) => false,
        };
        if reopen {
            part.segments
                .insert(start, Phase::open(Tracker::new(segment)));
            out.records.push(Record::SegmentOpened { segment });
            out.opened.push(segment);
        }
        if Some(start) != newest {
            if let Some(phase) = part.segments.get_mut(&start) {
                if let Phase::Open(t) = phase {
                    let tracker = std::mem::replace(&mut **t, Tracker::new(segment));
                    *phase = Phase::sealing(tracker);
                    out.records.push(Record::SealIntent { segment });
                    out.to_seal.push(segment);
                } else if full {
                    if let Phase::Sealing(_) = phase {
                        out.to_seal.push(segment);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(starts: &[u64]) -> Listing {
        starts.iter().map(|&s| (s, None)).collect()
    }

    fn kinds(s: &PartitionChanges) -> Vec<String> {
        s.records
            .iter()
            .map(|r| format!("{}@{}", r.kind(), r.segment().unwrap().start_offset))
            .collect()
    }

    #[test]
    fn rotation_opens_the_new_segment_and_seals_the_old() {
        let pid = PartitionId::new(1, 1, 0);
        let mut part = PartitionModel::default();
        let s = sync_partition(&mut part, pid, Some(&listing(&[0])), false);
        assert_eq!(kinds(&s), ["segment_opened@0"]);
        let s = sync_partition(&mut part, pid, Some(&listing(&[0, 10])), false);
        assert_eq!(kinds(&s), ["seal_intent@0", "segment_opened@10"]);
        assert_eq!(s.to_seal, [pid.segment(0)]);
        // Nothing changed: nothing to say.
        let s = sync_partition(&mut part, pid, Some(&listing(&[0, 10])), false);
        assert!(s.records.is_empty());
        // Retention removed the oldest.
        let s = sync_partition(&mut part, pid, Some(&listing(&[10])), false);
        assert_eq!(kinds(&s), ["segment_deleted@0"]);
        // The partition folder is gone.
        let s = sync_partition(&mut part, pid, None, false);
        assert_eq!(kinds(&s), ["segment_deleted@10"]);
        assert!(part.segments.is_empty());
    }

    #[test]
    fn segments_created_while_away_are_opened_and_all_but_the_newest_sealed() {
        let pid = PartitionId::new(0, 0, 0);
        let mut part = PartitionModel::default();
        let s = sync_partition(&mut part, pid, Some(&listing(&[0, 5, 9])), true);
        assert_eq!(
            kinds(&s),
            [
                "segment_opened@0",
                "seal_intent@0",
                "segment_opened@5",
                "seal_intent@5",
                "segment_opened@9"
            ]
        );
        assert!(matches!(part.segments.get(&9), Some(Phase::Open(_))));
    }

    #[test]
    fn a_sealed_segment_whose_lengths_changed_is_reopened_on_full_sync() {
        let pid = PartitionId::new(0, 0, 0);
        let mut part = PartitionModel::default();
        part.segments.insert(
            0,
            Phase::Sealed {
                log_len: 100,
                index_len: 16,
            },
        );
        part.segments
            .insert(1, Phase::open(Tracker::new(pid.segment(1))));
        let mut same: Listing = BTreeMap::new();
        same.insert(0, Some((100, Some(16))));
        same.insert(1, Some((0, Some(0))));
        assert!(sync_partition(&mut part, pid, Some(&same), true)
            .records
            .is_empty());
        let mut changed = same.clone();
        changed.insert(0, Some((90, Some(16))));
        // An event-driven sync does not stat sealed segments.
        assert!(sync_partition(&mut part, pid, Some(&changed), false)
            .records
            .is_empty());
        let s = sync_partition(&mut part, pid, Some(&changed), true);
        assert_eq!(kinds(&s), ["segment_opened@0", "seal_intent@0"]);
    }
}
