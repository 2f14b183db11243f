//! What each mode would keep of a damaged partition, and the least invasive mode that
//! keeps every valid message: the advice a refusal and `check` give. Apart from the
//! planner because it plans nothing; it only counts.

use super::cut::{find_cut, kept_by_cut};
use crate::analyze::PartitionAnalysis;
use crate::mode::Mode;
use crate::salvage::Salvage;
use journal::PartitionId;
use serde::Serialize;
use std::fmt;

/// How many valid messages each mode would leave in one damaged partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ModeCounts {
    pub partition: PartitionId,
    /// Salvage keeps every message whose checksum is valid (one copy per offset).
    pub salvage: u64,
    pub point_in_time: u64,
    /// `None` when tolerate-tail refuses: it then changes nothing and the server
    /// does not start.
    pub tolerate_tail: Option<u64>,
}

impl ModeCounts {
    /// The least invasive mode that keeps every valid message.
    pub fn least_invasive(&self) -> Mode {
        if self.tolerate_tail == Some(self.salvage) {
            Mode::TolerateTail
        } else if self.point_in_time >= self.salvage {
            Mode::PointInTime
        } else {
            Mode::Salvage
        }
    }
}

impl fmt::Display for ModeCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self
            .tolerate_tail
            .map_or("refuses".to_string(), |n| n.to_string());
        write!(
            f,
            "valid messages kept by each mode: salvage {}, point-in-time {}, tolerate-tail \
             {tail}; run with --mode {} to keep every valid message",
            self.salvage,
            self.point_in_time,
            self.least_invasive()
        )
    }
}

/// What each mode would keep of `p`, given its salvage plan (`None`: nothing to
/// salvage, every valid message is in a sound segment).
pub fn mode_counts(p: &PartitionAnalysis, salvage: Option<&Salvage>) -> ModeCounts {
    let cut = find_cut(p);
    let point_in_time = kept_by_cut(p, cut);
    ModeCounts {
        partition: p.id,
        salvage: salvage.map_or(p.valid_messages(), |s| s.kept_messages),
        point_in_time,
        tolerate_tail: match cut {
            Some(c) if !c.tail_only => None,
            _ => Some(point_in_time),
        },
    }
}
