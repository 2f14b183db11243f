//! Fault injection at the [`FileOps`] seam: [`Hooked`] does what [`StdFs`] does, but
//! shows each operation to a [`Hook`] first, which may let it run, fail it, have it
//! report success without doing it (a disk that lies) or tear it (a process killed
//! in the middle of a write). The crash tests, the races with planted links, the
//! lying disk and the benches' counting of fsyncs are hooks; each sees every
//! operation that writes, so none can miss one the executor starts using (as
//! tikv/raft-engine's file-system hooks).

use super::{FileOps, StdFs, SyncRound};
use journal::ByteRange;
use std::io::{self, Write};
use std::path::Path;

/// One operation that writes or syncs, as its hook sees it before it runs.
#[derive(Clone, Copy, Debug)]
pub enum Op<'a> {
    /// [`FileOps::copy_range`], or with `in_round` [`FileOps::copy_range_in_round`].
    CopyRange {
        src: &'a Path,
        range: ByteRange,
        dst: &'a Path,
        in_round: bool,
    },
    AppendRange {
        src: &'a Path,
        range: ByteRange,
        dst: &'a Path,
    },
    WriteFile {
        dst: &'a Path,
    },
    /// [`FileOps::truncate`] to `len`, or with `in_round` [`FileOps::cut_in_round`] to
    /// `len`.
    Truncate {
        path: &'a Path,
        len: u64,
        in_round: bool,
    },
    CreateSized {
        dst: &'a Path,
        len: u64,
    },
    CopyRangeAt {
        src: &'a Path,
        range: ByteRange,
        dst: &'a Path,
        at: u64,
    },
    Rename {
        from: &'a Path,
        to: &'a Path,
    },
    Exchange {
        a: &'a Path,
        b: &'a Path,
    },
    HardLink {
        src: &'a Path,
        dst: &'a Path,
    },
    RemoveFile {
        path: &'a Path,
    },
    CreateDirAll {
        path: &'a Path,
    },
    RemoveDir {
        path: &'a Path,
    },
    SyncFile {
        path: &'a Path,
    },
    SyncDir {
        dir: &'a Path,
    },
    SyncFs {
        dir: &'a Path,
    },
}

impl Op<'_> {
    /// The [`FileOps`] method that runs it.
    pub fn name(&self) -> &'static str {
        match self {
            Op::CopyRange {
                in_round: false, ..
            } => "copy_range",
            Op::CopyRange { in_round: true, .. } => "copy_range_in_round",
            Op::AppendRange { .. } => "append_range",
            Op::WriteFile { .. } => "write_file",
            Op::Truncate {
                in_round: false, ..
            } => "truncate",
            Op::Truncate { in_round: true, .. } => "cut_in_round",
            Op::CreateSized { .. } => "create_sized_in_round",
            Op::CopyRangeAt { .. } => "copy_range_at_in_round",
            Op::Rename { .. } => "rename",
            Op::Exchange { .. } => "exchange",
            Op::HardLink { .. } => "hard_link",
            Op::RemoveFile { .. } => "remove_file",
            Op::CreateDirAll { .. } => "create_dir_all",
            Op::RemoveDir { .. } => "remove_dir",
            Op::SyncFile { .. } => "sync_file",
            Op::SyncDir { .. } => "sync_dir",
            Op::SyncFs { .. } => "sync_fs",
        }
    }

    /// The path it changes (a copy's or a link's destination, a rename's new name)
    /// or makes durable.
    pub fn path(&self) -> &Path {
        match *self {
            Op::CopyRange { dst, .. }
            | Op::AppendRange { dst, .. }
            | Op::WriteFile { dst }
            | Op::CreateSized { dst, .. }
            | Op::CopyRangeAt { dst, .. }
            | Op::HardLink { dst, .. } => dst,
            Op::Rename { to, .. } | Op::Exchange { b: to, .. } => to,
            Op::Truncate { path, .. }
            | Op::RemoveFile { path }
            | Op::CreateDirAll { path }
            | Op::RemoveDir { path }
            | Op::SyncFile { path } => path,
            Op::SyncDir { dir } | Op::SyncFs { dir } => dir,
        }
    }

    /// Whether it makes something durable before it returns: a sync, or an
    /// operation that fsyncs what it wrote (not one that leaves that to a round).
    pub fn syncs(&self) -> bool {
        match self {
            Op::CopyRange { in_round, .. } | Op::Truncate { in_round, .. } => !in_round,
            Op::AppendRange { .. }
            | Op::WriteFile { .. }
            | Op::HardLink { .. }
            | Op::SyncFile { .. }
            | Op::SyncDir { .. }
            | Op::SyncFs { .. } => true,
            Op::CreateSized { .. }
            | Op::CopyRangeAt { .. }
            | Op::Rename { .. }
            | Op::Exchange { .. }
            | Op::RemoveFile { .. }
            | Op::CreateDirAll { .. }
            | Op::RemoveDir { .. } => false,
        }
    }
}

/// What a hook lets an operation do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Run,
    /// Report success and do nothing. A copy, which must return the digest of what
    /// it copied, fails instead.
    Pretend,
    /// Do half of what it writes, as a process killed in the middle of it leaves
    /// it, then [`Hook::torn`]. An operation that writes no bytes does nothing.
    Tear,
}

/// Sees each operation of a [`Hooked`] file system.
pub trait Hook: Sync {
    /// Before `op`; an error fails it without running it.
    fn before(&self, _op: Op<'_>) -> io::Result<Verdict> {
        Ok(Verdict::Run)
    }
    /// After `op` succeeded, or was pretended.
    fn after(&self, _op: Op<'_>) {}
    /// After `op` was torn: a crash test dies here. If it returns, `op` fails.
    fn torn(&self, _op: Op<'_>) {}
    /// [`FileOps::step`]: a point between operations that are not file operations.
    fn step(&self, _what: &str) {}
}

/// A hook lent out: the test keeps it, to ask it afterwards what it saw.
impl<H: Hook + ?Sized> Hook for &H {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        (**self).before(op)
    }
    fn after(&self, op: Op<'_>) {
        (**self).after(op)
    }
    fn torn(&self, op: Op<'_>) {
        (**self).torn(op)
    }
    fn step(&self, what: &str) {
        (**self).step(what)
    }
}

/// [`StdFs`], each writing operation shown to `H` first.
pub struct Hooked<H>(pub H);

/// The first half of `range`.
fn half(range: ByteRange) -> ByteRange {
    ByteRange::new(range.start, range.start + range.len() / 2)
}

/// What an operation does for each [`Verdict`] but `Run`.
struct Otherwise<P, T> {
    pretend: P,
    tear: T,
}

impl<H: Hook> Hooked<H> {
    /// Runs `op` by `run` unless the hook refuses it, or as it says otherwise.
    fn hooked<T>(
        &self,
        op: Op<'_>,
        otherwise: Otherwise<impl FnOnce() -> io::Result<T>, impl FnOnce()>,
        run: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let out = match self.0.before(op)? {
            Verdict::Run => run()?,
            Verdict::Pretend => (otherwise.pretend)()?,
            Verdict::Tear => {
                (otherwise.tear)();
                self.0.torn(op);
                return Err(io::Error::other(format!(
                    "{} of {} torn",
                    op.name(),
                    op.path().display()
                )));
            }
        };
        self.0.after(op);
        Ok(out)
    }

    /// An operation that returns nothing, torn by `tear`.
    fn unit(
        &self,
        op: Op<'_>,
        tear: impl FnOnce(),
        run: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        let pretend = || Ok(());
        self.hooked(op, Otherwise { pretend, tear }, run)
    }

    /// An operation that writes no bytes: torn, it does nothing.
    fn whole(&self, op: Op<'_>, run: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        self.unit(op, || {}, run)
    }

    /// A copy, returning its digest: it cannot be pretended.
    fn copy(
        &self,
        op: Op<'_>,
        tear: impl FnOnce(),
        run: impl FnOnce() -> io::Result<u64>,
    ) -> io::Result<u64> {
        let pretend = || {
            Err(io::Error::other(format!(
                "a hook pretended {} of {}, whose digest it cannot make up",
                op.name(),
                op.path().display()
            )))
        };
        self.hooked(op, Otherwise { pretend, tear }, run)
    }
}

// A torn write is left unsynced where the operation leaves its fsync to a round,
// and its errors are ignored: the process is dying.
impl<H: Hook> FileOps for Hooked<H> {
    fn copy_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<u64> {
        let op = Op::CopyRange {
            src,
            range,
            dst,
            in_round: false,
        };
        let tear = || drop(StdFs.copy_range(src, half(range), dst));
        self.copy(op, tear, || StdFs.copy_range(src, range, dst))
    }
    fn copy_range_in_round(
        &self,
        src: &Path,
        range: ByteRange,
        dst: &Path,
        round: &SyncRound,
    ) -> io::Result<u64> {
        let op = Op::CopyRange {
            src,
            range,
            dst,
            in_round: true,
        };
        let tear = || drop(StdFs.copy_range_in_round(src, half(range), dst, round));
        self.copy(op, tear, || {
            StdFs.copy_range_in_round(src, range, dst, round)
        })
    }
    fn append_range(&self, src: &Path, range: ByteRange, dst: &Path) -> io::Result<()> {
        let op = Op::AppendRange { src, range, dst };
        let tear = || drop(StdFs.append_range(src, half(range), dst));
        self.unit(op, tear, || StdFs.append_range(src, range, dst))
    }
    fn write_file(
        &self,
        dst: &Path,
        fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        // Only one of the two runs: the other closure never takes `fill`.
        let fill = std::cell::RefCell::new(fill);
        let tear = || {
            let mut all = Vec::new();
            if (fill.borrow_mut())(&mut all).is_ok() {
                let first = all.get(..all.len() / 2).unwrap_or_default();
                drop(StdFs.write_file(dst, &mut |w| w.write_all(first)));
            }
        };
        let run = || StdFs.write_file(dst, &mut **fill.borrow_mut());
        self.unit(Op::WriteFile { dst }, tear, run)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let op = Op::Truncate {
            path,
            len,
            in_round: false,
        };
        self.whole(op, || StdFs.truncate(path, len))
    }
    /// A pretended cut reports the file `from` bytes long, as cut.
    fn cut_in_round(
        &self,
        path: &Path,
        from: u64,
        to: u64,
        round: &SyncRound,
    ) -> io::Result<Option<u64>> {
        let op = Op::Truncate {
            path,
            len: to,
            in_round: true,
        };
        let otherwise = Otherwise {
            pretend: || Ok(Some(from)),
            tear: || {},
        };
        self.hooked(op, otherwise, || StdFs.cut_in_round(path, from, to, round))
    }
    fn create_sized_in_round(&self, dst: &Path, len: u64, round: &SyncRound) -> io::Result<()> {
        let op = Op::CreateSized { dst, len };
        // Created, not yet sized.
        let tear = || drop(StdFs.create_sized_in_round(dst, 0, round));
        self.unit(op, tear, || StdFs.create_sized_in_round(dst, len, round))
    }
    fn copy_range_at_in_round(
        &self,
        src: &Path,
        range: ByteRange,
        dst: &Path,
        at: u64,
        round: &SyncRound,
    ) -> io::Result<u64> {
        let op = Op::CopyRangeAt {
            src,
            range,
            dst,
            at,
        };
        let tear = || drop(StdFs.copy_range_at_in_round(src, half(range), dst, at, round));
        self.copy(op, tear, || {
            StdFs.copy_range_at_in_round(src, range, dst, at, round)
        })
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.whole(Op::SyncFile { path }, || StdFs.sync_file(path))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.whole(Op::Rename { from, to }, || StdFs.rename(from, to))
    }
    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
        self.whole(Op::Exchange { a, b }, || StdFs.exchange(a, b))
    }
    fn hard_link(&self, src: &Path, dst: &Path) -> io::Result<()> {
        self.whole(Op::HardLink { src, dst }, || StdFs.hard_link(src, dst))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.whole(Op::RemoveFile { path }, || StdFs.remove_file(path))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.whole(Op::CreateDirAll { path }, || StdFs.create_dir_all(path))
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.whole(Op::RemoveDir { path }, || StdFs.remove_dir(path))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.whole(Op::SyncDir { dir }, || StdFs.sync_dir(dir))
    }
    fn sync_fs(&self, dir: &Path) -> io::Result<()> {
        self.whole(Op::SyncFs { dir }, || StdFs.sync_fs(dir))
    }
    fn step(&self, what: &str) {
        self.0.step(what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::Mutex;

    /// Pretends every cut, fails every removal, and records what ran.
    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl Hook for Record {
        fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
            match op {
                Op::Truncate { .. } | Op::CopyRangeAt { .. } => Ok(Verdict::Pretend),
                Op::RemoveFile { .. } => Err(io::Error::other("refused")),
                _ => Ok(Verdict::Run),
            }
        }
        fn after(&self, op: Op<'_>) {
            let name = op.path().file_name().unwrap_or_default().to_string_lossy();
            self.0.lock().unwrap().push(format!("{} {name}", op.name()));
        }
    }

    #[test]
    fn a_hook_runs_fails_or_pretends_each_operation() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"0123456789").unwrap();
        let record = Record::default();
        let fs_ops = Hooked(&record);

        fs_ops.truncate(&file, 3).unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"0123456789", "pretended");
        let copy = tmp.path().join("copy");
        fs_ops
            .copy_range(&file, ByteRange::new(2, 4), &copy)
            .unwrap();
        assert_eq!(fs::read(&copy).unwrap(), b"23");
        let e = fs_ops.remove_file(&copy).unwrap_err();
        assert_eq!(e.to_string(), "refused");
        assert!(copy.exists(), "a refused operation does not run");
        // A copy cannot be pretended: it must return the digest of what it copied.
        let round = SyncRound::new();
        let e = fs_ops
            .copy_range_at_in_round(&file, ByteRange::new(0, 2), &copy, 0, &round)
            .unwrap_err();
        assert!(e.to_string().contains("copy_range_at_in_round"), "{e}");
        assert!(round.is_empty());
        assert_eq!(fs::read(&copy).unwrap(), b"23");

        let ran = record.0.lock().unwrap().clone();
        assert_eq!(ran, ["truncate f", "copy_range copy"]);
    }

    /// Tears every operation, noting which.
    #[derive(Default)]
    struct Tearing(Mutex<Vec<&'static str>>);

    impl Hook for Tearing {
        fn before(&self, _op: Op<'_>) -> io::Result<Verdict> {
            Ok(Verdict::Tear)
        }
        fn torn(&self, op: Op<'_>) {
            self.0.lock().unwrap().push(op.name());
        }
    }

    #[test]
    fn a_torn_write_leaves_half_of_its_bytes_and_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::write(&src, b"0123456789").unwrap();
        let tearing = Tearing::default();
        let fs_ops = Hooked(&tearing);
        let copy = tmp.path().join("copy");
        let e = fs_ops
            .copy_range(&src, ByteRange::new(2, 10), &copy)
            .unwrap_err();
        assert!(e.to_string().contains("torn"), "{e}");
        assert_eq!(fs::read(&copy).unwrap(), b"2345");
        let written = tmp.path().join("written");
        let fill = &mut |w: &mut dyn Write| w.write_all(b"abcdef");
        fs_ops.write_file(&written, fill).unwrap_err();
        assert_eq!(fs::read(&written).unwrap(), b"abc");
        // Nothing to tear in a rename: nothing happens.
        fs_ops.rename(&src, &copy).unwrap_err();
        assert_eq!(fs::read(&src).unwrap(), b"0123456789");
        let torn = tearing.0.lock().unwrap().clone();
        assert_eq!(torn, ["copy_range", "write_file", "rename"]);
    }

    #[test]
    fn an_operation_syncs_unless_it_leaves_that_to_a_round() {
        let p = Path::new("p");
        let cut = |in_round| Op::Truncate {
            path: p,
            len: 0,
            in_round,
        };
        assert!(cut(false).syncs());
        assert!(!cut(true).syncs());
        assert_eq!(cut(true).name(), "cut_in_round");
        assert!(Op::SyncFs { dir: p }.syncs());
        assert!(!Op::Rename { from: p, to: p }.syncs());
    }
}
