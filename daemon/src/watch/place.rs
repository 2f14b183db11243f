//! Where a path lies in an Iggy 0.6 data directory, from its name alone.
//!
//! inotify events and folder listings name paths; the sidecar must know at once
//! whether one is a partition folder, a segment file or something it ignores, and
//! must not touch the disk to tell (the path may be gone already). Names that are not
//! exactly what the server writes are `Other`: the sidecar never guesses.

use journal::{segment_name, PartitionId, SegmentFile, SegmentKey};
use std::path::{Component, Path};

/// Where a path sits in an Iggy 0.6 data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    Root,
    /// `streams`, a stream, `topics`, a topic or `partitions` folder.
    Hierarchy,
    Partition(PartitionId),
    Segment(SegmentKey),
    /// Anything else: server logs, state, consumer offsets, strays.
    Other,
}

/// Classifies `path` (under `root`) without touching the disk.
pub fn classify(root: &Path, path: &Path) -> Place {
    let Ok(rel) = path.strip_prefix(root) else {
        return Place::Other;
    };
    let mut parts = [""; 8];
    let mut n = 0;
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return Place::Other;
        };
        let Some(name) = name.to_str() else {
            return Place::Other;
        };
        let Some(slot) = parts.get_mut(n) else {
            return Place::Other;
        };
        *slot = name;
        n += 1;
    }
    let num = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let hierarchy = |ok: bool| if ok { Place::Hierarchy } else { Place::Other };
    match parts.get(..n).unwrap_or_default() {
        [] => Place::Root,
        ["streams"] => Place::Hierarchy,
        ["streams", s] => hierarchy(num(s).is_some()),
        ["streams", s, "topics"] => hierarchy(num(s).is_some()),
        ["streams", s, "topics", t] | ["streams", s, "topics", t, "partitions"] => {
            hierarchy(num(s).is_some() && num(t).is_some())
        }
        ["streams", s, "topics", t, "partitions", p] => match (num(s), num(t), num(p)) {
            (Some(s), Some(t), Some(p)) => Place::Partition(PartitionId::new(s, t, p)),
            _ => Place::Other,
        },
        ["streams", s, "topics", t, "partitions", p, file] => {
            match (num(s), num(t), num(p), segment_file(file)) {
                (Some(s), Some(t), Some(p), Some(start)) => {
                    Place::Segment(PartitionId::new(s, t, p).segment(start))
                }
                _ => Place::Other,
            }
        }
        _ => Place::Other,
    }
}

/// Start offset of `<20 digits>.log` or `<20 digits>.index`.
fn segment_file(name: &str) -> Option<u64> {
    segment_name::parse(name).map(|(start, _)| start)
}

/// Start offset of `<20 digits>.log` only: a segment exists when its log does.
pub fn log_file(name: &str) -> Option<u64> {
    match segment_name::parse(name) {
        Some((start, SegmentFile::Log)) => Some(start),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified_by_their_place_in_the_layout() {
        let root = Path::new("/d");
        let p = PartitionId::new(1, 2, 3);
        assert_eq!(classify(root, Path::new("/d")), Place::Root);
        assert_eq!(classify(root, Path::new("/d/streams")), Place::Hierarchy);
        assert_eq!(classify(root, Path::new("/d/streams/1")), Place::Hierarchy);
        assert_eq!(classify(root, Path::new("/d/streams/x")), Place::Other);
        assert_eq!(
            classify(root, Path::new("/d/streams/1/topics/2/partitions")),
            Place::Hierarchy
        );
        assert_eq!(
            classify(root, Path::new("/d/streams/1/topics/2/partitions/3")),
            Place::Partition(p)
        );
        assert_eq!(
            classify(
                root,
                Path::new("/d/streams/1/topics/2/partitions/3/00000000000000000042.index")
            ),
            Place::Segment(p.segment(42))
        );
        assert_eq!(
            classify(
                root,
                Path::new("/d/streams/1/topics/2/partitions/3/offsets")
            ),
            Place::Other
        );
        assert_eq!(classify(root, Path::new("/d/logs/x.log")), Place::Other);
        assert_eq!(classify(root, Path::new("/elsewhere")), Place::Other);
        assert_eq!(log_file("00000000000000000042.log"), Some(42));
        assert_eq!(log_file("00000000000000000042.index"), None);
        assert_eq!(log_file("42.log"), None);
    }
}
