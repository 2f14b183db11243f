//! The one home for segment file names: `<start offset, 20 digits>.log` and
//! `.index`, as iggy-server 0.6 names them. Everything that parses or builds such a
//! name (discovery, the sidecar's events and listings, the journal's keys) calls this
//! module (and [`crate::SegmentKey::file_name`], built on it), so that the rule lives
//! in one place, like raft-engine's `FileNameExt`.

use std::path::Path;

/// Digits of a segment file's stem: a u64 offset, zero-padded.
const STEM_DIGITS: usize = 20;

/// Which of a segment's two files a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentFile {
    Log,
    Index,
}

impl SegmentFile {
    pub fn extension(self) -> &'static str {
        match self {
            SegmentFile::Log => "log",
            SegmentFile::Index => "index",
        }
    }
}

/// The stem of the files of the segment starting at `start_offset`.
pub fn stem(start_offset: u64) -> String {
    format!("{start_offset:0width$}", width = STEM_DIGITS)
}

/// The file name of one of the segment's files.
pub fn file_name(start_offset: u64, kind: SegmentFile) -> String {
    format!("{}.{}", stem(start_offset), kind.extension())
}

/// Splits a segment file name into start offset and kind; `None` for any other
/// name (a stem of another length, a sign, a non-digit).
pub fn parse(name: &str) -> Option<(u64, SegmentFile)> {
    let (stem, kind) = if let Some(stem) = name.strip_suffix(".log") {
        (stem, SegmentFile::Log)
    } else {
        (name.strip_suffix(".index")?, SegmentFile::Index)
    };
    if stem.len() != STEM_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, kind))
}

/// Whether `path` names a `.log` file by its extension alone: iggy-server 0.6.0
/// loads every `*.log` below a partition folder as a segment, whatever its stem.
pub fn has_log_extension(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "log")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_parse_back_and_others_do_not() {
        assert_eq!(
            parse("00000000000000001332.log"),
            Some((1332, SegmentFile::Log))
        );
        assert_eq!(
            parse("00000000000000001332.index"),
            Some((1332, SegmentFile::Index))
        );
        for bad in [
            "1332.log",
            "0000000000000000133x.log",
            "+0000000000000001332.log",
            "00000000000000001332.log.tmp",
            "00000000000000001332",
            "99999999999999999999.log",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(has_log_extension(Path::new("a/x.log")));
        assert!(!has_log_extension(Path::new("a/x.index")));
    }

    proptest! {
        #[test]
        fn every_offset_round_trips(start in any::<u64>()) {
            for kind in [SegmentFile::Log, SegmentFile::Index] {
                prop_assert_eq!(parse(&file_name(start, kind)), Some((start, kind)));
            }
        }
    }
}
