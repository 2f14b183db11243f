//! The state files iggy-server 0.6.0 reads before any segment, judged and repaired:
//! `state/log` (see [`crate::state_log`]), `state/info` (see [`crate::state_info`]),
//! and the metadata the log records compared with the folders under `streams/` (see
//! [`crate::metadata`]).
//!
//! Repairs, by mode:
//! - a torn, zero-filled or corrupt *last* entry is cut (its bytes quarantined) under
//!   `tolerate-tail`, `salvage` and `point-in-time`;
//! - damage before the end (an index gap, a corrupt entry with valid entries after it)
//!   only under `point-in-time`, which cuts the log there;
//! - an empty or cut-short 0.6 `state/info` is quarantined whole (the server writes a
//!   new one) under every mode but `absolute`;
//! - data is never orphaned: the metadata compared with the folders is that of the
//!   entries a cut keeps, so a folder with messages that only the damaged entries name,
//!   or a partition they name without a folder, stops the run in every mode;
//! - entries 0.6.0 writes but cannot read back (`delete-segments`), when they are all
//!   that stops it, are dropped under `salvage` and `point-in-time`, the later entries
//!   renumbered (their replay changes nothing, so no metadata is lost);
//! - an encrypted log is never cut on checksum grounds (its checksums cannot be
//!   verified); a torn tail of it is cut only when its command code shows that it does
//!   not create or delete streams, topics or partitions, since its folders cannot be
//!   compared with metadata that cannot be read.

use crate::metadata::Mismatch;
use crate::mode::Mode;
use crate::state_command::{changes_folders, reader_rejects};
use crate::state_info::Info;
use crate::state_inspect::{StateInspection, INFO_REL};
use crate::state_log::DamageKind;
use crate::verdict::{Problem, ProblemKind};
use journal::RepairAction;
use std::path::Path;

/// Entries at or after a damage that a problem lists by what they did.
const MAX_LISTED: usize = 16;

/// Every problem of the state files.
pub fn judge_state(s: &StateInspection) -> Vec<Problem> {
    let mut out = Vec::new();
    let problem = |kind, path: &Path, offset, detail| Problem {
        kind,
        path: path.to_path_buf(),
        offset,
        detail,
        segment: None,
    };
    if let Some(d) = s.log.as_ref().and_then(|l| l.damage.as_ref()) {
        let kind = match d.kind {
            DamageKind::Torn | DamageKind::ZeroTail => ProblemKind::StateLogTorn,
            DamageKind::Corrupt => ProblemKind::StateLogCorrupt,
            DamageKind::Gap => ProblemKind::StateLogGap,
            DamageKind::Unreplayable => ProblemKind::StateLogUnreplayable,
        };
        let place = if d.code.and_then(reader_rejects).is_some() {
            "read back before any entry is replayed"
        } else if d.kind == DamageKind::Unreplayable {
            "iggy-server 0.6.0 panics replaying it at start"
        } else if d.tail_only {
            "the last entry: iggy-server 0.6.0 does not start"
        } else {
            "valid entries follow it: not a crash tail; iggy-server 0.6.0 does not start"
        };
        // A long log cut early would list thousands: the first ones say enough.
        let shown: Vec<&str> = d
            .affected
            .iter()
            .take(MAX_LISTED)
            .map(String::as_str)
            .collect();
        let more = d.affected.len().saturating_sub(MAX_LISTED);
        let did = match (shown.is_empty(), more) {
            (true, _) => String::new(),
            (false, 0) => format!("; entries at or after it: {}", shown.join("; ")),
            (false, n) => format!(
                "; entries at or after it: {}; and {n} more",
                shown.join("; ")
            ),
        };
        let did = match &s.drop_plan {
            Some(drop) => format!(
                "; the log holds {} such entr{}, whose replay would change nothing: {}",
                drop.entries.len(),
                if drop.entries.len() == 1 { "y" } else { "ies" },
                shown.join("; ")
            ),
            None => did,
        };
        let detail = format!("{} ({place}){did}", d.detail);
        out.push(problem(kind, &s.log_path, Some(d.offset), detail));
    }
    if let Some(verified) = s.shrunk_from {
        let len = s.log.as_ref().map_or(0, |l| l.len);
        let detail = format!(
            "state/log is {len} bytes, shorter than the {verified} bytes the sidecar verified \
             in this boot: whole entries were removed, which neither iggy-server (it only \
             appends) nor a crash does; the metadata they held (users, streams, topics, \
             tokens, consumer groups) is gone"
        );
        out.push(problem(
            ProblemKind::StateLogShrunk,
            &s.log_path,
            Some(len),
            detail,
        ));
    }
    if let Some(Info::Bad { offset, detail, .. }) = &s.info {
        let detail = format!("{detail}: iggy-server 0.6.0 panics at start on it");
        out.push(problem(
            ProblemKind::StateInfoBad,
            &s.info_path,
            Some(*offset),
            detail,
        ));
    }
    let root = s
        .log_path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new(""));
    // A drop keeps every other entry: the metadata compared is the whole log's.
    let cut_note = (s.drop_plan.is_none().then_some(s.log.as_ref()).flatten())
        .and_then(|l| l.damage.as_ref())
        .map_or(String::new(), |d| {
            format!(" before the damage at byte {} of state/log", d.offset)
        });
    for m in s.blocking() {
        let (kind, detail) = match m {
            Mismatch::Unnamed {
                partitions,
                log_bytes,
                ..
            } => (
                ProblemKind::FolderWithoutMetadata,
                format!(
                    "{log_bytes} bytes of messages in {partitions} partition folder(s) that \
                     no entry of state/log{cut_note} names: iggy-server 0.6.0 ignores them, \
                     so their messages are unreachable"
                ),
            ),
            Mismatch::Missing { what, .. } => (
                ProblemKind::MetadataWithoutFolder,
                format!(
                    "state/log{cut_note} names {what}, but its folder is missing: \
                     iggy-server 0.6.0 does not start (CannotReadPartitions)"
                ),
            ),
        };
        out.push(problem(kind, &root.join(m.rel()), None, detail));
    }
    out
}

/// The repairs of the state files the mode allows, or why an operator must decide.
pub struct StatePlan {
    pub problems: Vec<Problem>,
    pub actions: Vec<(RepairAction, String)>,
    /// Empty unless an operator must decide; then nothing may change.
    pub refusals: Vec<String>,
}

pub fn plan_state(s: &StateInspection, mode: Mode) -> StatePlan {
    let problems = judge_state(s);
    let mut out = StatePlan {
        problems,
        actions: Vec::new(),
        refusals: Vec::new(),
    };
    if out.problems.is_empty() {
        return out;
    }
    let reason = out
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    for m in s.blocking() {
        out.refusals.push(operator_steps(m));
    }
    if mode == Mode::Absolute {
        out.refusals.push("mode absolute repairs nothing".into());
        return out;
    }
    if s.shrunk_from.is_some() && mode != Mode::PointInTime {
        out.refusals.push(
            "state/log lost entries the sidecar had verified: put back state/log from a \
             backup, or accept the shorter log with `--mode point-in-time` (it cuts nothing \
             and journals the log's new verified length)"
                .into(),
        );
    }
    if let Some(log) = &s.log {
        if let Some(d) = &log.damage {
            let encrypted_guard =
                log.encrypted && d.kind == DamageKind::Torn && d.code.is_none_or(changes_folders);
            if let Some(drop) = &s.drop_plan {
                if mode == Mode::TolerateTail {
                    out.refusals.push(format!(
                        "state/log {} (byte {}): not crash damage; `--mode salvage` (or \
                         point-in-time) drops the delete-segments entries, which change no \
                         metadata, and renumbers the later ones (the whole log goes to \
                         quarantine first, and `restore` puts it back)",
                        d.detail, d.offset
                    ));
                } else {
                    out.actions.push((
                        RepairAction::DropStateLogEntries {
                            entries: drop.entries.clone(),
                            keep_len: drop.keep_len,
                            original_len: log.len,
                            new_len: drop.new_len,
                            new_xxh3: drop.new_xxh3,
                        },
                        reason.clone(),
                    ));
                }
            } else if d.kind == DamageKind::Unreplayable && log.encrypted {
                out.refusals.push(format!(
                    "the encrypted state/log {} (byte {}): its entries cannot be resealed \
                     without the key, and a cut's entries cannot be compared with the \
                     folders; put back state/log from a backup taken before it",
                    d.detail, d.offset
                ));
            } else if d.kind == DamageKind::Unreplayable && mode != Mode::PointInTime {
                out.refusals.push(format!(
                    "state/log {} (byte {}), and iggy-warden never invents metadata: \
                     `--mode point-in-time` cuts state/log before that entry (it and \
                     every entry after it go to quarantine, and `restore` puts them \
                     back), or put back state/log from a backup taken before it",
                    d.detail, d.offset
                ));
            } else if !d.tail_only && mode != Mode::PointInTime {
                out.refusals.push(format!(
                    "state/log is damaged before its end (byte {}): cutting there would take \
                     out valid entries after it; `--mode point-in-time` cuts it",
                    d.offset
                ));
            } else if encrypted_guard {
                out.refusals.push(
                    "the torn last entry of the encrypted state/log may create or delete a \
                     stream, topic or partitions, and the folders cannot be compared with \
                     encrypted metadata: restore state/log from a backup, or cut it by hand \
                     after checking the folders"
                        .into(),
                );
            } else {
                out.actions.push((
                    RepairAction::TruncateStateLog {
                        keep_len: d.offset,
                        original_len: log.len,
                    },
                    reason.clone(),
                ));
            }
        }
    }
    if let Some(Info::Bad {
        len, crash_like, ..
    }) = &s.info
    {
        if *crash_like {
            out.actions.push((
                RepairAction::QuarantineFile {
                    path: INFO_REL.into(),
                    len: *len,
                },
                reason.clone(),
            ));
        } else {
            out.refusals.push(
                "state/info is not a 0.6 record cut short: it may be another format; \
                 iggy-warden leaves it to an operator"
                    .into(),
            );
        }
    }
    out
}

/// What an operator can do about a mismatch between metadata and folders.
fn operator_steps(m: &Mismatch) -> String {
    match m {
        Mismatch::Unnamed { rel, log_bytes, .. } => format!(
            "{rel} holds {log_bytes} bytes of messages that no kept entry of state/log \
             names; iggy-warden never leaves messages without metadata. Either put back a \
             state/log that names it (a backup), or move {rel} out of the data directory \
             (keep the copy: it holds the messages) and run recover again; then re-create \
             the stream or topic on the running server and publish the messages again \
             from the copy"
        ),
        Mismatch::Missing { rel, what } => format!(
            "state/log names {what}, whose folder {rel} is missing: restore the folder \
             from a backup; iggy-warden does not invent partitions"
        ),
    }
}
