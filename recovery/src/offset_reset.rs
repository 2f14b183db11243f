//! The operator's opt-in reset of consumer offsets past a partition's end.
//!
//! iggy-server 0.6.0 serves a consumer from the offset after the one it stored, so a
//! stored offset past the partition's last message (the messages it was served were
//! lost in a crash, or cut) makes that consumer skip as many new messages, silently.
//! `recover --reset-offsets-ahead` moves such an offset back to the partition's last
//! message, so the consumer's next message is the next one produced. It runs after
//! the repair and its check, on the offsets found then, as a repair of its own: the
//! old file saved whole in quarantine (so `restore` puts it back), the new one
//! written under a temporary name in the partition folder and swapped in.

use crate::analyze::{Analysis, PartitionAnalysis};
use crate::execute::{io_err, ExecError, Executed, Executor};
use crate::fsops::file_digest;
use crate::layout::OFFSET_FILE_LEN;
use crate::offsets_ahead::{ahead_of_segments, OffsetAhead};
use crate::plan::Plan;
use journal::{PartitionId, RepairAction};
use std::collections::BTreeMap;
use std::path::Path;

/// The length and XXH3 of an offset file holding `value`, as `file_digest` gives them.
pub(crate) fn offset_digest(value: u64) -> (u64, u64) {
    (
        OFFSET_FILE_LEN,
        xxhash_rust::xxh3::xxh3_64(&value.to_le_bytes()),
    )
}

/// Whether `rel` names a consumer or group offset file, as 0.6.0 lays them out
/// (`streams/S/topics/T/partitions/P/offsets/consumers/ID`, or `groups`): a journal
/// that asks to reset any other file was not written by this tool.
pub(crate) fn is_offset_file(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    matches!(
        parts.as_slice(),
        ["streams", s, "topics", t, "partitions", p, "offsets", "consumers" | "groups", id]
            if [s, t, p, id].iter().all(|n| numeric(n))
    )
}

/// What a dry run can tell of the stored offsets past their partition's end once
/// `the_plan` has run.
#[derive(Clone, Debug, Default)]
pub struct PlannedOffsets {
    /// The offsets ahead after the plan, exact where it keeps every message the
    /// analysis found valid but those of the logs it takes out: a cut falls where
    /// validity ends, and an index rebuilt or cut changes no message.
    pub ahead: Vec<OffsetAhead>,
    /// The partitions with offset files that the plan changes otherwise (a salvage
    /// re-lay): their offsets are judged after the repair.
    pub judged_after_repair: Vec<PartitionId>,
}

/// The offsets past their partition's end as `the_plan` will leave them.
pub fn as_planned(a: &Analysis, the_plan: &Plan) -> PlannedOffsets {
    let mut by_partition: BTreeMap<PartitionId, Vec<&RepairAction>> = BTreeMap::new();
    for planned in &the_plan.actions {
        if let Some(p) = planned.partition {
            by_partition.entry(p).or_default().push(&planned.action);
        }
    }
    let mut planned = PlannedOffsets::default();
    for p in &a.partitions {
        let actions = by_partition.get(&p.id).map_or(&[][..], Vec::as_slice);
        match logs_taken_out(p, actions) {
            Some(out) => planned.ahead.extend(ahead_of_segments(
                p,
                p.segments
                    .iter()
                    .filter(|s| !out.contains(&s.files.log_path.as_path())),
            )),
            None if !p.offset_files.is_empty() => planned.judged_after_repair.push(p.id),
            None => {}
        }
    }
    planned
}

/// The logs of `p` that `actions` take out, when they change its messages in no
/// other way than that and cuts; `None` when they do (or name a file `p` lacks).
fn logs_taken_out<'a>(
    p: &'a PartitionAnalysis,
    actions: &[&RepairAction],
) -> Option<Vec<&'a Path>> {
    let mut out = Vec::new();
    for action in actions {
        match action {
            RepairAction::TruncateLog { .. }
            | RepairAction::TruncateIndex { .. }
            | RepairAction::RewriteIndex { .. }
            | RepairAction::CreateDir { .. } => {}
            RepairAction::QuarantineFile { path, .. } => {
                let named = |file: &Path| file.ends_with(path);
                if let Some(s) = p.segments.iter().find(|s| named(&s.files.log_path)) {
                    out.push(s.files.log_path.as_path());
                } else if !(p.segments.iter().any(|s| named(&s.files.index_path))
                    || p.offset_files.iter().any(|f| named(&f.path)))
                {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The repairs that reset `ahead` (found in the data directory `data_dir`), with
/// their reasons. An offset whose partition has no message, or whose path is not
/// inside `data_dir`, is left alone.
pub fn reset_actions(data_dir: &Path, ahead: &[OffsetAhead]) -> Vec<(RepairAction, String)> {
    ahead
        .iter()
        .filter_map(|a| reset_action(data_dir, a))
        .collect()
}

fn reset_action(data_dir: &Path, a: &OffsetAhead) -> Option<(RepairAction, String)> {
    let reset_to = a.next_offset.checked_sub(1)?;
    let rel = a.path.strip_prefix(data_dir).ok()?.to_str()?.to_string();
    let action = RepairAction::ResetConsumerOffset {
        path: rel,
        stored: a.stored,
        reset_to,
    };
    let why = format!(
        "offset {} stored past the end of partition {} (last message {reset_to}): its \
         consumer would skip the next {} message(s) produced",
        a.stored,
        a.partition,
        a.skipped()
    );
    Some((action, why))
}

/// Resets `ahead` through `exec`; returns what was executed and the offsets not
/// reset (none, unless a path could not be expressed relative to the data directory).
pub fn reset(
    exec: &Executor<'_>,
    ahead: Vec<OffsetAhead>,
) -> Result<(Vec<Executed>, Vec<OffsetAhead>), ExecError> {
    let (mut actions, mut left) = (Vec::new(), Vec::new());
    for a in ahead {
        match reset_action(exec.data_dir, &a) {
            Some(action) => actions.push(action),
            None => left.push(a),
        }
    }
    let executed = exec.execute(actions)?;
    // As the repair is checked after it: each file read back.
    for e in &executed {
        if let RepairAction::ResetConsumerOffset { path, reset_to, .. } = &e.action {
            let path = exec.data_dir.join(path);
            let found = file_digest(exec.fs, &path).map_err(io_err(&path))?;
            if found != Some(offset_digest(*reset_to)) {
                return Err(ExecError::Changed {
                    repair: e.repair,
                    path,
                    expected: format!("an offset file holding {reset_to} after the reset"),
                    found: found.map_or("no file".into(), |(len, _)| {
                        format!("{len} bytes holding something else")
                    }),
                });
            }
        }
    }
    Ok((executed, left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::OffsetKind;

    fn ahead(path: &str, stored: u64, next_offset: u64) -> OffsetAhead {
        OffsetAhead {
            partition: PartitionId {
                stream: 1,
                topic: 1,
                partition: 1,
            },
            path: Path::new("/data").join(path),
            kind: OffsetKind::Consumer,
            stored,
            next_offset,
        }
    }

    #[test]
    fn an_offset_ahead_is_reset_to_the_last_message() {
        let rel = "streams/1/topics/1/partitions/1/offsets/consumers/7";
        let actions = reset_actions(Path::new("/data"), &[ahead(rel, 25, 19)]);
        assert_eq!(actions.len(), 1);
        assert_eq!(
            actions[0].0,
            RepairAction::ResetConsumerOffset {
                path: rel.into(),
                stored: 25,
                reset_to: 18,
            }
        );
        assert!(actions[0].1.contains("skip the next 7 message(s)"));
    }

    #[test]
    fn nothing_outside_the_data_directory_or_without_a_last_message_is_planned() {
        let outside = OffsetAhead {
            path: "/elsewhere/7".into(),
            ..ahead("x", 25, 19)
        };
        let empty = ahead("streams/1/topics/1/partitions/1/offsets/consumers/8", 3, 0);
        assert!(reset_actions(Path::new("/data"), &[outside, empty]).is_empty());
    }

    #[test]
    fn a_plan_that_takes_out_a_file_the_partition_lacks_or_re_lays_is_not_foretold() {
        use crate::test_support::{Segment, TestDir};
        let dir = TestDir::new(&[Segment::whole(0, 3), Segment::whole(3, 2)]);
        let analysis = dir.analysis();
        let p = &analysis.partitions[0];
        let log = dir.rel(3, journal::SegmentFile::Log);
        let index = dir.rel(3, journal::SegmentFile::Index);
        let quarantine = |path: &str| RepairAction::QuarantineFile {
            path: path.into(),
            len: 1,
        };
        let (log_out, index_out) = (quarantine(&log), quarantine(&index));
        let taken = logs_taken_out(p, &[&log_out, &index_out]).expect("foretold");
        assert_eq!(taken, [p.segments[1].files.log_path.as_path()]);
        let stranger = quarantine(&format!("{}/other", dir.id.rel_dir()));
        assert!(logs_taken_out(p, &[&stranger]).is_none());
        let relay = RepairAction::Relay {
            partition: dir.id,
            originals: Vec::new(),
            segments: Vec::new(),
        };
        assert!(logs_taken_out(p, &[&relay]).is_none());
    }

    #[test]
    fn only_offset_files_are_offset_files() {
        assert!(is_offset_file(
            "streams/1/topics/2/partitions/3/offsets/consumers/7"
        ));
        assert!(is_offset_file(
            "streams/1/topics/2/partitions/3/offsets/groups/70"
        ));
        for other in [
            "state/info",
            "streams/1/topics/2/partitions/3/00000000000000000000.index",
            "streams/1/topics/2/partitions/3/offsets/consumers/x",
            "streams/1/topics/2/partitions/3/offsets/other/7",
            "streams/1/topics/2/partitions/3/offsets/consumers/7/8",
            "streams/1/topics/2/partitions//offsets/consumers/7",
        ] {
            assert!(!is_offset_file(other), "{other}");
        }
    }

    #[test]
    fn the_digest_is_that_of_the_eight_little_endian_bytes() {
        let (len, xxh3) = offset_digest(18);
        assert_eq!(len, 8);
        assert_eq!(xxh3, xxhash_rust::xxh3::xxh3_64(&[18, 0, 0, 0, 0, 0, 0, 0]));
    }
}
