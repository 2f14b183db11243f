//! Exit codes shared by every command, so that systemd units and scripts can act on
//! them.

use std::process::ExitCode;

/// Healthy, or repaired and ready to start.
pub const OK: u8 = 0;
/// `check` found problems (nothing was changed).
pub const PROBLEMS: u8 = 1;
/// The command itself could not run; nothing was left half-done.
pub const ERROR: u8 = 2;
/// The mode forbids a needed repair: an operator must decide. Nothing was changed.
pub const NEEDS_OPERATOR: u8 = 3;

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
