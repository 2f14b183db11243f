//! Full consistency check of a journal, reported rather than raised.
//!
//! `verify` reads every record, checks each envelope and that seqs run without gaps
//! (except below the compaction watermark, where gaps are expected), replays the log
//! and compares the result with the `state` and `repairs` trees. It answers "can this
//! journal be trusted?" for operators and tests; it returns `Err` only when it cannot
//! read at all.

use crate::block;
use crate::envelope::EnvelopeError;
use crate::error::JournalError;
use crate::pending::Run;
use crate::state::SegmentState;
use crate::store::Journal;
use crate::trees::{parse_u64, shielded, META_COMPACTED_THROUGH, META_NEXT_REPAIR};
use crate::{envelope, Record};
use std::collections::BTreeMap;
use std::fmt;

/// At most this many problems are kept; the rest are only counted.
const MAX_PROBLEMS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalProblemKind {
    /// A key or a value of the wrong shape, or an envelope that does not decode.
    BadRecord,
    /// A record in a format version this build cannot read.
    UnsupportedVersion,
    /// Seqs missing above the compaction watermark.
    Gap,
    /// The `state` tree disagrees with a replay of the log.
    StateMismatch,
    /// The `repairs` tree disagrees with a replay of the log.
    RepairsMismatch,
    /// A `meta` value is malformed or behind the log.
    BadMeta,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalProblem {
    /// The record the problem was found at, when there is one.
    pub seq: Option<u64>,
    pub kind: JournalProblemKind,
    pub detail: String,
}

impl fmt::Display for JournalProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "seq {seq}: {:?}: {}", self.kind, self.detail),
            None => write!(f, "{:?}: {}", self.kind, self.detail),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records present in the log.
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Seqs up to this one may be absent because compaction dropped them.
    pub compacted_through: u64,
    /// Segments in the `state` tree.
    pub segments: u64,
    pub pending_repairs: u64,
    /// The first problems found, in the order found (at most 100).
    pub problems: Vec<JournalProblem>,
    pub problems_total: u64,
}

impl VerifyReport {
    pub fn is_sound(&self) -> bool {
        self.problems_total == 0
    }

    pub fn first_problem(&self) -> Option<&JournalProblem> {
        self.problems.first()
    }

    /// True if some record is of a future format: the journal is unreadable for this
    /// build rather than damaged.
    pub fn has_unsupported_version(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.kind == JournalProblemKind::UnsupportedVersion)
    }

    fn problem(&mut self, seq: Option<u64>, kind: JournalProblemKind, detail: impl Into<String>) {
        self.problems_total += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(JournalProblem {
                seq,
                kind,
                detail: detail.into(),
            });
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = |s: Option<u64>| s.map_or_else(|| "-".to_string(), |s| s.to_string());
        writeln!(
            f,
            "records: {} (seq {}..{}), compacted through seq {}",
            self.records,
            seq(self.first_seq),
            seq(self.last_seq),
            self.compacted_through
        )?;
        writeln!(
            f,
            "segments: {}, pending repairs: {}",
            self.segments, self.pending_repairs
        )?;
        if self.is_sound() {
            return writeln!(f, "sound: no problems found");
        }
        writeln!(f, "problems: {}", self.problems_total)?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        if self.problems_total > self.problems.len() as u64 {
            writeln!(
                f,
                "  ... and {} more",
                self.problems_total - self.problems.len() as u64
            )?;
        }
        Ok(())
    }
}

fn record_problem(report: &mut VerifyReport, seq: Option<u64>, err: &JournalError) {
    let kind = match err {
        JournalError::UnsupportedVersion { .. } => JournalProblemKind::UnsupportedVersion,
        _ => JournalProblemKind::BadRecord,
    };
    report.problem(seq, kind, err.to_string());
}

impl Journal {
    /// Checks the whole journal; appends wait while it runs, so that the trees it
    /// compares do not move under it.
    pub fn verify(&self) -> Result<VerifyReport, JournalError> {
        let _writer = self.lock_writer()?;
        shielded(&self.path, "verify", || self.verify_locked())
    }

    fn verify_locked(&self) -> Result<VerifyReport, JournalError> {
        let mut report = VerifyReport::default();
        let meta = |name: &[u8], report: &mut VerifyReport| -> Result<u64, JournalError> {
            match self.meta.get(name).map_err(|e| self.sled_err(e))? {
                None => Ok(0),
                Some(v) => Ok(parse_u64(&v).unwrap_or_else(|| {
                    report.problem(
                        None,
                        JournalProblemKind::BadMeta,
                        format!("{} has {} bytes", String::from_utf8_lossy(name), v.len()),
                    );
                    0
                })),
            }
        };
        report.compacted_through = meta(META_COMPACTED_THROUGH, &mut report)?;
        let next_repair_id = meta(META_NEXT_REPAIR, &mut report)?;
        let watermark = report.compacted_through;

        let mut states: BTreeMap<[u8; 20], SegmentState> = BTreeMap::new();
        let mut pending: BTreeMap<u64, u64> = BTreeMap::new();
        let mut max_repair_id = 0;
        // The seq of the newest `StateLogVerified` no repair intent followed.
        let mut state_log_mark: Option<u64> = None;
        let mut prev = 0u64;
        for item in self.log.iter() {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            let Some(first) = parse_u64(&k) else {
                report.problem(
                    None,
                    JournalProblemKind::BadRecord,
                    format!("log key of {} bytes", k.len()),
                );
                continue;
            };
            let entries = match block::decode(&self.path, &k, &v) {
                Ok(entries) => entries,
                Err(e) => {
                    record_problem(&mut report, Some(first), &e);
                    continue;
                }
            };
            for entry in entries {
                let seq = entry.seq;
                report.records += 1;
                report.first_seq.get_or_insert(seq);
                report.last_seq = Some(seq);
                let expected = prev.saturating_add(1);
                // A gap is fine only where every missing seq is under the watermark.
                if seq == 0 {
                    report.problem(
                        Some(0),
                        JournalProblemKind::BadRecord,
                        "seq 0 is never written",
                    );
                } else if seq <= prev {
                    report.problem(
                        Some(seq),
                        JournalProblemKind::BadRecord,
                        format!("seq {seq} after seq {prev}: blocks overlap"),
                    );
                    continue;
                } else if seq != expected && seq - 1 > watermark {
                    report.problem(
                        Some(seq),
                        JournalProblemKind::Gap,
                        format!("seqs {expected}..={} missing", seq - 1),
                    );
                }
                prev = seq;
                if let Some(segment) = entry.record.segment() {
                    let key = segment.to_bytes();
                    if let Some(next) = SegmentState::apply(states.get(&key), seq, &entry.record) {
                        states.insert(key, next);
                    }
                }
                match entry.record {
                    Record::RepairIntent { repair, .. } => {
                        max_repair_id = max_repair_id.max(repair.0);
                        pending.insert(repair.0, seq);
                        state_log_mark = None;
                    }
                    Record::StateLogVerified { .. } => state_log_mark = Some(seq),
                    Record::RepairDone { repair } | Record::RepairFailed { repair, .. } => {
                        pending.remove(&repair.0);
                    }
                    _ => {}
                }
            }
        }
        if max_repair_id > 0 && next_repair_id <= max_repair_id {
            report.problem(
                None,
                JournalProblemKind::BadMeta,
                format!("next repair id {next_repair_id} would reuse r{max_repair_id:08}"),
            );
        }
        let stored_mark = self.state_log_mark()?.map(|m| m.seq);
        if stored_mark != state_log_mark {
            let show = |m: Option<u64>| m.map_or("none".to_string(), |s| format!("seq {s}"));
            report.problem(
                None,
                JournalProblemKind::BadMeta,
                format!(
                    "the state/log mark is {}, the records give {}",
                    show(stored_mark),
                    show(state_log_mark)
                ),
            );
        }
        self.compare_states(&mut report, states)?;
        self.compare_repairs(&mut report, pending)?;
        for detail in self.listing_problems()? {
            report.problem(None, JournalProblemKind::BadRecord, detail);
        }
        Ok(report)
    }

    fn compare_states(
        &self,
        report: &mut VerifyReport,
        mut replayed: BTreeMap<[u8; 20], SegmentState>,
    ) -> Result<(), JournalError> {
        for item in self.state.iter() {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            report.segments += 1;
            let stored: Result<SegmentState, EnvelopeError> = envelope::decode(&v);
            let expected = <[u8; 20]>::try_from(&k[..])
                .ok()
                .and_then(|key| replayed.remove(&key));
            let name = crate::SegmentKey::from_bytes(&k)
                .map_or_else(|| format!("{k:02x?}"), |s| s.to_string());
            match (stored, expected) {
                (Ok(s), Some(e)) if s == e => {}
                (Ok(s), Some(e)) => report.problem(
                    Some(e.last_seq),
                    JournalProblemKind::StateMismatch,
                    format!("segment {name}: stored {s:?}, log says {e:?}"),
                ),
                (Ok(s), None) => report.problem(
                    Some(s.last_seq),
                    JournalProblemKind::StateMismatch,
                    format!("segment {name} has a state but no records"),
                ),
                (Err(e), _) => {
                    let err = JournalError::from_envelope(
                        &self.path,
                        &format!("state of segment {name}"),
                        e,
                    );
                    record_problem(report, None, &err);
                }
            }
        }
        for (key, state) in replayed {
            let name =
                crate::SegmentKey::from_bytes(&key).map_or_else(String::new, |s| s.to_string());
            report.problem(
                Some(state.last_seq),
                JournalProblemKind::StateMismatch,
                format!("segment {name} has records but no stored state"),
            );
        }
        Ok(())
    }

    fn compare_repairs(
        &self,
        report: &mut VerifyReport,
        mut replayed: BTreeMap<u64, u64>,
    ) -> Result<(), JournalError> {
        for item in self.repairs.iter() {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            let Some(run) = Run::decode(&k, &v) else {
                report.problem(
                    None,
                    JournalProblemKind::RepairsMismatch,
                    "malformed pending-repair entry",
                );
                continue;
            };
            // A forged run may be long: it is walked only while the log agrees.
            for (id, seq) in run.repairs() {
                report.pending_repairs += 1;
                if replayed.remove(&id) != Some(seq) {
                    report.problem(
                        Some(seq),
                        JournalProblemKind::RepairsMismatch,
                        format!("repair r{id:08} listed as pending, but the log disagrees"),
                    );
                    break;
                }
            }
        }
        for (id, seq) in replayed {
            report.problem(
                Some(seq),
                JournalProblemKind::RepairsMismatch,
                format!("repair r{id:08} is pending in the log but not listed"),
            );
        }
        Ok(())
    }
}
