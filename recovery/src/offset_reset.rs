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

use crate::analyze::Analysis;
use crate::execute::{io_err, ExecError, Executed, Executor};
use crate::fsops::file_digest;
use crate::layout::OFFSET_FILE_LEN;
use crate::offsets_ahead::{offsets_ahead, OffsetAhead};
use crate::plan::Plan;
use journal::{PartitionId, RepairAction};
use std::collections::BTreeSet;
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

/// The offsets past their partition's end in the partitions `the_plan` does not
/// change: what a dry run can tell of them exactly (the others are judged after
/// their repair).
pub fn ahead_where_unchanged(a: &Analysis, the_plan: &Plan) -> Vec<OffsetAhead> {
    let changed: BTreeSet<PartitionId> = the_plan
        .actions
        .iter()
        .filter_map(|a| a.partition)
        .collect();
    (a.partitions.iter())
        .filter(|p| !changed.contains(&p.id))
        .flat_map(offsets_ahead)
        .collect()
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
