//! The integration tests of iggy-warden, in one test binary (after ripgrep's
//! `tests/tests.rs`): one module per area, each test named by its module
//! (`cargo test -p iggy-warden --test integration damage_table::clean::`).
//! They run the real `iggy-warden` binary on copies of the real 0.6.0 fixtures and on
//! data directories the harness writes. No test changes the process environment, so
//! they may share the binary's threads.
//!
//! The files live beside the harness (`tests/`), but the test binary belongs to the
//! `iggy-warden` package (`daemon/Cargo.toml`): only a package's own tests get its
//! binary's path ([`BIN`]), and for them Cargo builds the binary first, so a lone
//! `cargo test --test integration` never runs a stale or missing `iggy-warden`.

use harness::Run;
use std::ffi::OsStr;
use std::path::Path;

/// The `iggy-warden` binary under test, built by Cargo for this test binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_iggy-warden");

/// Runs `iggy-warden ARGS...` and waits for it.
pub fn warden<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    harness::cli::run(BIN, args)
}

/// Runs `iggy-warden ARGS... --data-dir DATA --state-dir STATE`.
pub fn warden_on(args: &[&str], data: &Path, state: &Path) -> Run {
    harness::cli::run_on(BIN, args, data, state)
}

/// Runs `iggy-warden ARGS...` and returns its result and peak resident set in bytes.
pub fn warden_measured<I, S>(args: I) -> (Run, u64)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    harness::cli::run_measured(BIN, args)
}

mod watch_common;

mod after_repair;
mod binary;
mod cli;
mod crash_safety;
mod damage_table;
mod fixtures;
mod golden;
mod guided;
mod hostile_foreign;
mod hostile_journal;
mod hostile_journal_folder;
mod hostile_links;
mod hostile_manifest;
mod hostile_memory;
mod hostile_output;
mod hostile_readonly;
mod hostile_small;
mod hostile_sparse;
mod inject_fault;
mod offsets_ahead;
mod offsets_listings;
mod overlap;
mod race_writer;
mod salvage;
mod scan_props;
mod state_log;
mod state_log_guided;
mod state_log_props;
mod valid_messages;
mod watch_alerts;
mod watch_coverage;
mod watch_crash;
mod watch_handover;
mod watch_layout;
mod watch_metrics;
mod watch_overflow;
mod watch_sd_notify;
