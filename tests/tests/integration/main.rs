//! The integration tests of iggy-warden, in one test binary (after ripgrep's
//! `tests/tests.rs`): one module per area, each test named by its module
//! (`cargo test -p iggy-warden-harness --test integration damage_table::clean::`).
//! They run the real `iggy-warden` binary on copies of the real 0.6.0 fixtures and on
//! data directories the harness writes. No test changes the process environment, so
//! they may share the binary's threads.

mod watch_common;

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
