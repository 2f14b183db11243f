//! A writer that appends to a segment file between the executor's look at it and
//! its change (another process the busy check missed, or a server started too
//! early): the appended bytes were never saved, so the change must not happen. A
//! cut checks the length on the very handle that cuts; an index rebuilt over the old
//! one and a file taken out check the old file again once it has been moved out of
//! the way, and move it back; so does a salvage re-lay whose quarantine holds copies
//! of the files it replaces (on another file system), not hard links.

use crate::after_repair::{repair_in, repair_in_mode};
use harness::Fault;
use recovery::execute::ExecError;
use recovery::fsops::hooked::{Hook, Hooked, Op, Verdict};
use recovery::pipeline::PipelineError;
use recovery::plan::Mode;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const APPENDED: &[u8] = b"appended by another writer";

/// Just before the first operation `when` picks, appends to the file it names (or,
/// for a rename, the file it moves); notes that file's bytes once the run is over.
struct Appender {
    when: fn(Op<'_>) -> Option<&Path>,
    file: Mutex<Option<PathBuf>>,
}

impl Appender {
    fn new(when: fn(Op<'_>) -> Option<&Path>) -> Self {
        Self {
            when,
            file: Mutex::new(None),
        }
    }

    /// The file appended to, and the bytes its name holds now.
    fn appended(&self) -> (PathBuf, Vec<u8>) {
        let file = self
            .file
            .lock()
            .unwrap()
            .clone()
            .expect("a file was changed");
        let now = std::fs::read(&file).expect("the file is there");
        (file, now)
    }
}

impl Hook for Appender {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        let mut file = self.file.lock().unwrap();
        if let Some(path) = (self.when)(op).filter(|_| file.is_none()) {
            let mut f = OpenOptions::new().append(true).open(path)?;
            f.write_all(APPENDED)?;
            *file = Some(path.to_path_buf());
        }
        Ok(Verdict::Run)
    }
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|e| e == ext)
}

/// Runs the repair of `fault` with `appender` in `root`; requires it to stop, naming
/// the file appended to, which must still hold the appended bytes under its own name.
fn stops_and_keeps(root: &Path, fault: Fault, appender: &Appender) {
    let err = repair_in(root, fault, &Hooked(appender)).unwrap_err();
    stopped_and_kept(err, appender);
}

fn stopped_and_kept(err: PipelineError, appender: &Appender) {
    let (file, now) = appender.appended();
    match err {
        PipelineError::Execute(ExecError::Changed { path, .. }) => assert_eq!(path, file),
        other => panic!("{other}"),
    }
    assert!(now.ends_with(APPENDED), "the appended bytes were lost");
}

#[test]
fn bytes_appended_between_the_look_and_the_cut_are_not_cut() {
    let appender = Appender::new(|op| match op {
        Op::Truncate { path, .. } if has_extension(path, "log") => Some(path),
        _ => None,
    });
    let tmp = tempfile::tempdir().unwrap();
    stops_and_keeps(tmp.path(), Fault::TornLogTail, &appender);
}

#[test]
fn bytes_appended_to_an_index_before_it_is_rebuilt_over_are_not_lost() {
    let appender = Appender::new(|op| match op {
        Op::Exchange { b: index, .. } | Op::Rename { to: index, .. }
            if has_extension(index, "index") =>
        {
            Some(index)
        }
        _ => None,
    });
    let tmp = tempfile::tempdir().unwrap();
    stops_and_keeps(
        tmp.path(),
        Fault::IndexZeroedMiddle { entries: 3 },
        &appender,
    );
    let (index, _) = appender.appended();
    let tmp = recovery::rebuild::temp_index_path(&index);
    assert!(!tmp.exists(), "the rebuilt index is not left behind");
}

#[test]
fn bytes_appended_to_a_file_before_it_is_taken_out_are_not_lost() {
    let appender = Appender::new(|op| match op {
        Op::Rename { from: log, .. } | Op::RemoveFile { path: log }
            if has_extension(log, "log") =>
        {
            Some(log)
        }
        _ => None,
    });
    let tmp = tempfile::tempdir().unwrap();
    stops_and_keeps(tmp.path(), Fault::SuccessorLogWithoutIndex, &appender);
    let (log, now) = appender.appended();
    assert_eq!(now, APPENDED, "an empty log, then what the writer appended");
    let dir = log.parent().unwrap();
    let hidden: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "nothing left aside: {hidden:?}");
}

/// An [`Appender`] on a file system where the quarantine cannot hard-link the data
/// directory's files (another file system): a re-lay saves copies.
struct OnAnotherFs(Appender);

impl Hook for OnAnotherFs {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        if matches!(op, Op::HardLink { .. }) {
            return Err(io::Error::other("Invalid cross-device link"));
        }
        self.0.before(op)
    }
}

#[test]
fn bytes_appended_to_a_file_a_re_lay_saved_as_a_copy_are_not_lost() {
    // The first rename that moves an original log, or puts a new one in its place.
    let appender = OnAnotherFs(Appender::new(|op| match op {
        Op::Rename { from, .. } if has_extension(from, "log") => Some(from),
        Op::Rename { to, .. } if has_extension(to, "log") => Some(to),
        _ => None,
    }));
    let tmp = tempfile::tempdir().unwrap();
    let err = repair_in_mode(
        tmp.path(),
        Fault::MidFileCorruptionSealed,
        &Hooked(&appender),
        Mode::Salvage,
    )
    .unwrap_err();
    stopped_and_kept(err, &appender.0);
    let saved_as_copies = std::fs::read_dir(tmp.path().join("state/quarantine"))
        .unwrap()
        .flat_map(|run| std::fs::read_dir(run.unwrap().path()).unwrap())
        .any(|f| {
            f.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("file-")
        });
    assert!(saved_as_copies, "the re-lay saved its originals");
}
