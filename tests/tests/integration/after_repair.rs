//! The check after a repair: where a repair only cut tails, it re-reads from the
//! kept messages' end, not whole partitions, and must still catch a cut or a rebuilt
//! index that never reached the disk (a file system that lies, or a bug of ours):
//! `recover` then ends "not converged", never "ready to start". (It runs while the
//! repairs' last sync round writes them back: `overlap.rs`.)

use harness::{apply, DataDirBuilder, Fault, PartitionSpec};
use journal::Journal;
use recovery::execute::{ExecError, Executor};
use recovery::fsops::hooked::{Hook, Hooked, Op, Verdict};
use recovery::fsops::FileOps;
use recovery::pipeline::{run, PipelineError, Quiet, Request};
use recovery::plan::Mode;
use recovery::quarantine::Quarantine;
use std::collections::HashMap;
use std::io;

const P0: &str = "streams/0/topics/0/partitions/0";

/// The real file system (as [`Hooked`]), except that cuts or renames (swaps of two
/// names too) report success and do nothing.
struct Lying {
    cuts: bool,
    renames: bool,
}

impl Hook for Lying {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        let lie = match op {
            Op::Truncate { .. } => self.cuts,
            Op::Rename { .. } | Op::Exchange { .. } => self.renames,
            _ => false,
        };
        Ok(if lie { Verdict::Pretend } else { Verdict::Run })
    }
}

/// A partition of three segments (the newest one damaged by `fault`) and an intact
/// second partition, repaired through `fs`.
pub(crate) fn repair(fault: Fault, fs: &dyn FileOps) -> Result<bool, PipelineError> {
    let tmp = tempfile::tempdir().unwrap();
    repair_in(tmp.path(), fault, fs)
}

/// [`repair`] with the data and state folders in `root`, left there to look at.
pub(crate) fn repair_in(
    root: &std::path::Path,
    fault: Fault,
    fs: &dyn FileOps,
) -> Result<bool, PipelineError> {
    repair_in_mode(root, fault, fs, Mode::TolerateTail)
}

/// [`repair_in`] in `mode`.
pub(crate) fn repair_in_mode(
    root: &std::path::Path,
    fault: Fault,
    fs: &dyn FileOps,
    mode: Mode,
) -> Result<bool, PipelineError> {
    let (data, state) = (root.join("data"), root.join("state"));
    DataDirBuilder::new()
        .seed(11)
        .partition(
            PartitionSpec::new(0, 0, 0)
                .messages(90, 20..200, 0)
                .segment_size(4 * 1024),
        )
        .partition(PartitionSpec::new(0, 0, 1).messages(30, 20..200, 0))
        .build(&data);
    apply(&data, P0, fault).expect("fault");
    let journal = Journal::open(&state.join("journal")).expect("journal opens");
    let quarantine = Quarantine::new(&state);
    let exec = Executor {
        data_dir: &data,
        quarantine: &quarantine,
        fs,
        log: &journal,
    };
    let known = HashMap::new();
    run(
        &exec,
        &Request {
            mode,
            known: &known,
            state_log: None,
            offsets: None,
            only: &|_| true,
            progress: &Quiet,
        },
    )
    .map(|outcome| outcome.ready_to_start)
}

fn not_converged(result: Result<bool, PipelineError>, names: &str) {
    match result {
        Err(PipelineError::NotConverged(left)) => {
            assert!(left.contains(names), "{left}");
        }
        other => panic!("expected not converged, got {other:?}"),
    }
}

#[test]
fn honest_cuts_and_rebuilds_end_ready_to_start() {
    let honest = Hooked(Lying {
        cuts: false,
        renames: false,
    });
    for fault in [
        Fault::TornLogTail,
        Fault::LogCutIndexLonger,
        Fault::IndexZeroedMiddle { entries: 2 },
    ] {
        assert!(repair(fault, &honest).expect("repair runs"), "{fault:?}");
    }
}

#[test]
fn a_cut_that_never_happened_is_found_after_the_repair() {
    let lying = Hooked(Lying {
        cuts: true,
        renames: false,
    });
    not_converged(repair(Fault::TornLogTail, &lying), ".log");
    not_converged(repair(Fault::LogCutIndexLonger, &lying), ".index");
}

/// A rebuilt index swapped with the old one is checked at once: the old one must be
/// found where the swap put it. The damage sits in the index's middle, before the
/// end of the kept messages, where a check resumed there would not look.
#[test]
fn a_rebuilt_index_that_never_replaced_the_old_one_is_found() {
    let lying = Hooked(Lying {
        cuts: false,
        renames: true,
    });
    match repair(Fault::IndexZeroedMiddle { entries: 2 }, &lying) {
        Err(PipelineError::Execute(ExecError::Changed { path, .. })) => {
            assert!(path.to_string_lossy().ends_with(".index"), "{path:?}")
        }
        other => panic!("expected the swap found undone, got {other:?}"),
    }
    // A missing index is renamed into place, nothing to swap with: the check after
    // the repair finds it still missing.
    not_converged(repair(Fault::IndexMissing, &lying), ".index");
}

/// Refuses every swap as a file system without `RENAME_EXCHANGE` does.
struct NoExchange;

impl Hook for NoExchange {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        match op {
            Op::Exchange { .. } => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the file system cannot swap two names",
            )),
            _ => Ok(Verdict::Run),
        }
    }
}

/// Where names cannot be swapped, the rebuilt index is renamed over the old one, as
/// before swaps were used, and the repair still ends ready to start.
#[test]
fn a_file_system_that_cannot_swap_gets_the_rebuilt_index_renamed() {
    let fs = Hooked(NoExchange);
    assert!(repair(Fault::IndexZeroedMiddle { entries: 2 }, &fs).expect("repair runs"));
}
