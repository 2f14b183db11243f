//! What `stat` says of a file, to tell later whether it was changed.
//!
//! A sealed segment is never written again, so the sidecar journals its files'
//! stamps once it has verified them, and a journal-guided `recover` that finds the
//! same stamps trusts the segment without reading it. A stamp holds the inode number,
//! the length, and the modification and change times to the nanosecond: any write,
//! truncation, rename over the file or change of its metadata moves the change time,
//! which no system call sets back (`utimensat` sets only the access and modification
//! times, and itself moves the change time). Git's index trusts a file by the same
//! facts.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub ino: u64,
    pub len: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    pub ctime_sec: i64,
    pub ctime_nsec: u32,
}

impl FileStamp {
    /// The stamp of a file from its metadata.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            ino: meta.ino(),
            len: meta.len(),
            mtime_sec: meta.mtime(),
            mtime_nsec: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
            ctime_sec: meta.ctime(),
            ctime_nsec: u32::try_from(meta.ctime_nsec()).unwrap_or(0),
        }
    }

    /// Whether the file was last changed (written or its metadata changed) at least
    /// `margin` before `now_unix` (seconds since the Unix epoch, with fractions). A
    /// stamp taken sooner than that after a change could miss a second change made
    /// within the same tick of the file system's clock (coarse: a few milliseconds on
    /// Linux), which would leave both times as they were: such a stamp is "racy", as
    /// Git calls it, and is not journaled.
    pub fn settled(&self, now_unix: std::time::Duration, margin: std::time::Duration) -> bool {
        let Some(limit) = now_unix.checked_sub(margin) else {
            return false;
        };
        let before = |sec: i64, nsec: u32| {
            u64::try_from(sec)
                .map(|s| std::time::Duration::new(s, nsec.min(999_999_999)) < limit)
                .unwrap_or(true)
        };
        before(self.mtime_sec, self.mtime_nsec) && before(self.ctime_sec, self.ctime_nsec)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::FileStamp;
    use std::time::Duration;

    /// A stamp of `len` bytes, for tests.
    pub(crate) fn stamp(len: u64) -> FileStamp {
        FileStamp {
            ino: 1,
            len,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 0,
            ctime_sec: 1_700_000_000,
            ctime_nsec: 0,
        }
    }

    fn at(mtime: i64, ctime: i64) -> FileStamp {
        FileStamp {
            ino: 7,
            len: 10,
            mtime_sec: mtime,
            mtime_nsec: 0,
            ctime_sec: ctime,
            ctime_nsec: 0,
        }
    }

    #[test]
    fn a_stamp_is_settled_only_when_both_times_are_older_than_the_margin() {
        let now = Duration::from_secs(1_000);
        let margin = Duration::from_secs(2);
        assert!(at(900, 990).settled(now, margin));
        assert!(!at(999, 900).settled(now, margin), "written just now");
        assert!(!at(900, 999).settled(now, margin), "changed just now");
        assert!(!at(900, 998).settled(now, margin), "exactly at the margin");
        assert!(!at(900, 990).settled(Duration::from_secs(1), margin));
        // Times before 1970 are settled; a clock before the margin settles nothing.
        assert!(at(-5, -5).settled(now, margin));
    }

    #[test]
    fn the_stamp_of_a_file_changes_when_it_is_rewritten_in_place() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789")?;
        let first = FileStamp::of(&std::fs::metadata(&path)?);
        assert_eq!(first.len, 10);
        std::thread::sleep(Duration::from_millis(20));
        // The same length and the same modification time set back: the change time
        // still moves.
        let file = std::fs::OpenOptions::new().write(true).open(&path)?;
        std::os::unix::fs::FileExt::write_at(&file, b"X", 3)?;
        let mtime = std::time::UNIX_EPOCH
            + Duration::new(
                u64::try_from(first.mtime_sec).unwrap_or(0),
                first.mtime_nsec,
            );
        file.set_modified(mtime)?;
        let second = FileStamp::of(&std::fs::metadata(&path)?);
        assert_eq!(
            (second.len, second.mtime_sec, second.mtime_nsec),
            (10, first.mtime_sec, first.mtime_nsec)
        );
        assert_ne!(second, first);
        Ok(())
    }
}
