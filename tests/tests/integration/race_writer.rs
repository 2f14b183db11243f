//! A writer that appends to a log between the executor's look at it and its cut
//! (another process the busy check missed, or a server started too early): the
//! appended bytes were never saved, so the cut must not happen. The length is
//! checked on the very handle that cuts.

use crate::after_repair::repair;
use harness::Fault;
use recovery::execute::ExecError;
use recovery::fsops::hooked::{Hook, Hooked, Op, Verdict};
use recovery::pipeline::PipelineError;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;

const APPENDED: &[u8] = b"appended by another writer";

/// Just before the first cut of a log, appends to it; notes its bytes when the
/// changes' sync round starts.
#[derive(Default)]
struct Appender {
    log: Mutex<Option<PathBuf>>,
    seen: Mutex<Option<Vec<u8>>>,
}

impl Hook for Appender {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        let path = op.path();
        let is_log = path.extension().is_some_and(|e| e == "log");
        let mut log = self.log.lock().unwrap();
        if matches!(op, Op::Truncate { .. }) && is_log && log.is_none() {
            let mut f = OpenOptions::new().append(true).open(path)?;
            f.write_all(APPENDED)?;
            *log = Some(path.to_path_buf());
        }
        Ok(Verdict::Run)
    }
    fn step(&self, what: &str) {
        if what == "sync changes" {
            let log = self.log.lock().unwrap().clone().expect("a log was cut");
            *self.seen.lock().unwrap() = std::fs::read(log).ok();
        }
    }
}

#[test]
fn bytes_appended_between_the_look_and_the_cut_are_not_cut() {
    let appender = Appender::default();
    let err = repair(Fault::TornLogTail, &Hooked(&appender)).unwrap_err();
    let log = appender.log.lock().unwrap().clone().unwrap();
    match err {
        PipelineError::Execute(ExecError::Changed { path, .. }) => assert_eq!(path, log),
        other => panic!("{other}"),
    }
    let seen = appender
        .seen
        .lock()
        .unwrap()
        .clone()
        .expect("the log is there");
    assert!(seen.ends_with(APPENDED), "the appended bytes were cut");
}
