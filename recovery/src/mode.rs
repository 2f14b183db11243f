//! Recovery modes (after RocksDB's WAL recovery modes): what `recover` may repair on
//! its own. A leaf: the planner and the state files' planning both take it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    TolerateTail,
    PointInTime,
    Absolute,
    /// Keeps every message whose checksum is valid, wherever it is found, and re-lays
    /// a damaged partition from its first damaged segment on (after RocksDB's
    /// `kSkipAnyCorruptedRecords`).
    Salvage,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tolerate-tail" => Ok(Mode::TolerateTail),
            "point-in-time" => Ok(Mode::PointInTime),
            "absolute" => Ok(Mode::Absolute),
            "salvage" => Ok(Mode::Salvage),
            other => Err(format!(
                "unknown mode {other:?}: expected tolerate-tail, point-in-time, absolute or \
                 salvage"
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::TolerateTail => "tolerate-tail",
            Mode::PointInTime => "point-in-time",
            Mode::Absolute => "absolute",
            Mode::Salvage => "salvage",
        })
    }
}
