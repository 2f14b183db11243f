//! The journal's integration tests, in one test binary (like the workspace's
//! `tests/tests/integration/`): one module per area, each test named by its module
//! (`cargo test -p iggy-warden-journal --test integration corruption::`). One binary
//! links once instead of once per file, and its shared helpers (`common`) are used
//! as a whole, not piecemeal by binaries that each need a few.

mod common;

mod compaction;
mod corruption;
mod envelope_props;
mod process;
mod state_log_mark;
mod store;
