//! Opening the server's files to read without touching their access time.
//!
//! The sidecar reads every written segment again each verify interval (100 ms by
//! default). Under `relatime`, the default mount option, a read of a file modified
//! since its access time was last set updates that time, so each look at a segment
//! the server is appending to dirtied its inode: `touch_atime` was 3% of the
//! sidecar's CPU on ext4, and each dirtied inode is more for the file system's
//! journal to write. `O_NOATIME` is allowed to the file's owner (the sidecar runs as
//! the server's user) and to a process with `CAP_FOWNER`; anyone else gets `EPERM`
//! and opens the file as before.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` read-only, without access-time updates where the kernel allows it.
pub(crate) fn open_read(path: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(path),
        opened => opened,
    }
}

#[cfg(test)]
mod tests {
    use super::open_read;
    use std::fs::{File, FileTimes};
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, SystemTime};

    /// A file whose access time is a day older than its modification time: the state
    /// in which `relatime` updates the access time on the next read.
    fn stale_atime(path: &std::path::Path) -> std::io::Result<i64> {
        std::fs::write(path, b"written by the server")?;
        let day_ago = SystemTime::now() - Duration::from_secs(86_400);
        File::options()
            .write(true)
            .open(path)?
            .set_times(FileTimes::new().set_accessed(day_ago))?;
        Ok(std::fs::metadata(path)?.atime())
    }

    #[test]
    fn reading_leaves_the_access_time_as_it_was() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("00000000000000000000.log");
        let before = stale_atime(&path)?;
        let mut text = String::new();
        open_read(&path)?.read_to_string(&mut text)?;
        assert_eq!(text, "written by the server");
        assert_eq!(std::fs::metadata(&path)?.atime(), before);

        // The same read through a plain open does update it, where the file system
        // keeps access times at all: what `open_read` avoids.
        File::open(&path)?.read_to_string(&mut text)?;
        let plain = std::fs::metadata(&path)?.atime();
        let mount_keeps_atime = plain != before;
        if mount_keeps_atime {
            assert!(plain > before);
        }
        Ok(())
    }
}
