//! A partition's segment files looked at again without listing its folder: for a
//! caller that knows the folder's entries unchanged since a listing (the repair
//! after it only cut files' tails), the lengths and stamps are all that moved.

use crate::fsops::{self, EntryKind, EntryStamp};
use crate::layout::{LayoutError, SegmentFiles};
use std::path::Path;

/// `segments` of the partition folder `dir` as a listing found them, each file's
/// length and stamp read again: one `stat` each, relative to the folder, which is
/// opened without following a link. `None` when a file is no longer what the
/// listing found (gone, come, or not a regular file): then list the folder again.
pub(super) fn restat_segments(
    dir: &Path,
    segments: &[&SegmentFiles],
) -> Result<Option<Vec<SegmentFiles>>, LayoutError> {
    let mut names = Vec::with_capacity(2 * segments.len());
    for s in segments {
        for path in [&s.log_path, &s.index_path] {
            let name = path.file_name().and_then(|n| n.to_str());
            match name {
                Some(name) if path.parent() == Some(dir) => names.push(name),
                _ => return Ok(None),
            }
        }
    }
    let (_, found) = fsops::folder_stamps(dir, &names).map_err(|e| LayoutError::io(dir, e))?;
    let mut found = found.into_iter();
    let mut out = Vec::with_capacity(segments.len());
    for s in segments {
        let (Some(log), Some(index)) = (found.next(), found.next()) else {
            return Ok(None);
        };
        let (Some(log), Some(index)) = (now(s.log_len, log), now(s.index_len, index)) else {
            return Ok(None);
        };
        out.push(SegmentFiles {
            log_len: log.map(|(len, _)| len),
            log_stamp: log.map(|(_, stamp)| stamp),
            index_len: index.map(|(len, _)| len),
            index_stamp: index.map(|(_, stamp)| stamp),
            ..(*s).clone()
        });
    }
    Ok(Some(out))
}

/// A file's length and stamp now, where the listing found one of `listed` bytes
/// (`None`: none there); `None` when it is no longer that kind of entry.
fn now(listed: Option<u64>, found: EntryStamp) -> Option<Option<(u64, journal::FileStamp)>> {
    match (listed, found) {
        (None, None) => Some(None),
        (Some(_), Some((EntryKind::File(len), stamp))) => Some(Some((len, stamp))),
        _ => None,
    }
}
