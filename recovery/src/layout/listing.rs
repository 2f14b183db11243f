//! A partition's offsets folders taken from the journal's listing
//! (`journal::listing`) when their stamps say nothing was added, removed or renamed
//! in them, and the listing to journal when a full read finds them settled.
//!
//! On a cold cache each folder read is a trip to the disk, and a partition has four
//! folders: its own and the three of `offsets`. A guided run that finds the listed
//! stamps reads the partition folder alone and `stat`s the rest. The files named
//! are still looked at (their length here, their 8 bytes by the caller): a crash can
//! cut an offset file without moving its folder's times.

use crate::fsops::{self, EntryKind};
use journal::{FileStamp, OffsetsListing};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the folders must have been unchanged before their listing is journaled,
/// as for a sealed segment's stamps: a change within the same tick of the file
/// system's clock would not move their times again.
pub const LISTING_MARGIN: Duration = Duration::from_secs(2);

/// The two folders of offset files, in the order a listing names their files.
const FOLDERS: [&str; 2] = ["consumers", "groups"];

/// The stamps of `offsets` and of its `consumers` and `groups` folders; `None` when
/// one is missing or not a folder.
pub(super) fn stamps(offsets: &Path) -> Option<[FileStamp; 3]> {
    let (own, entries) = fsops::folder_stamps(offsets, &FOLDERS).ok()?;
    let mut dirs = entries.into_iter().map(|e| match e {
        Some((EntryKind::Dir, stamp)) => Some(stamp),
        _ => None,
    });
    Some([own, dirs.next()??, dirs.next()??])
}

/// A name a listing may hold: one plain entry of its folder. A journal is input
/// like any other: a name that would lead elsewhere, or a file named twice, makes
/// the folders read instead.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// The files `listing` names under `offsets`, each with its length, consumers' then
/// groups': `None` when a folder's stamp is not the listing's, or a named file is not
/// a regular file (the folders are then read).
pub(super) fn unchanged(
    offsets: &Path,
    listing: &OffsetsListing,
) -> Option<[Vec<(PathBuf, u64)>; 2]> {
    if stamps(offsets)? != [listing.offsets, listing.consumers, listing.groups] {
        return None;
    }
    let named = [
        (listing.consumers, &listing.consumer_files),
        (listing.groups, &listing.group_files),
    ];
    let mut out = [Vec::new(), Vec::new()];
    for ((folder, (stamp, files)), found) in FOLDERS.iter().zip(named).zip(out.iter_mut()) {
        if files.is_empty() {
            continue;
        }
        // As a read lists them: plain names, sorted, each once.
        if !files.iter().all(|f| plain_name(f)) || !files.is_sorted_by(|a, b| a < b) {
            return None;
        }
        let dir = offsets.join(folder);
        let names: Vec<&str> = files.iter().map(String::as_str).collect();
        // Its stamp again, from the same handle as the files' (it may have changed
        // since the first look).
        let (own, entries) = fsops::folder_stamps(&dir, &names).ok()?;
        if own != stamp {
            return None;
        }
        for (file, entry) in files.iter().zip(entries) {
            let Some((EntryKind::File(len), _)) = entry else {
                return None;
            };
            found.push((dir.join(file), len));
        }
    }
    Some(out)
}

/// The listing to journal after a full read of `offsets` that found only offset
/// files (`files`: consumers' and groups' names; `None` when it found anything
/// else), its folders having had the stamps `before` just before the read: `None`
/// when they changed meanwhile or within `margin` of now.
pub(super) fn settled(
    offsets: &Path,
    before: Option<[FileStamp; 3]>,
    files: Option<[Vec<String>; 2]>,
    margin: Duration,
) -> Option<OffsetsListing> {
    let (before, [consumer_files, group_files]) = (before?, files?);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    if stamps(offsets)? != before || !before.iter().all(|s| s.settled(now, margin)) {
        return None;
    }
    let [offsets, consumers, groups] = before;
    Some(OffsetsListing {
        offsets,
        consumers,
        groups,
        consumer_files,
        group_files,
    })
}
