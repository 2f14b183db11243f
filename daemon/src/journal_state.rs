//! What the commands and the sidecar take from the journal, and how they give up on
//! one they cannot use.
//!
//! iggy-server 0.6 does not fsync open segments, so after a power loss the bytes
//! below a checkpoint may never have reached the disk although the file kept its
//! length. A checkpoint journaled before the current boot is therefore dropped:
//! that segment is verified from its start again. (Sealed segments stay trusted: the
//! server fsyncs a segment when it seals it, and recovery still checks their lengths
//! and last message.)

use anyhow::Context;
use journal::{
    Journal, JournalError, OffsetsListing, PartitionId, SegmentKey, SegmentState, StateLogMark,
};
use recovery::names::escaped;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The journal's segment states, without checkpoints from before this boot.
pub fn segment_states(journal: &Journal) -> Result<Vec<(SegmentKey, SegmentState)>, JournalError> {
    let mut states = journal.all_segment_states()?;
    let boot = boot_time_micros();
    let written = journal.record_times(
        states
            .iter()
            .filter_map(|(_, s)| s.checkpoint)
            .map(|c| c.seq),
    )?;
    for (key, state) in &mut states {
        let Some(cp) = state.checkpoint else { continue };
        // Unknown boot time or record time: trust nothing.
        if boot
            .zip(written.get(&cp.seq))
            .is_none_or(|(boot, written)| *written < boot)
        {
            tracing::debug!("segment {key}: checkpoint from before this boot is not trusted");
            state.checkpoint = None;
        }
    }
    Ok(states)
}

/// How far the journal says `state/log` was verified, when that was in this boot. The
/// server does not fsync `state/log` by default (`[system.state] enforce_fsync`), so
/// after a power loss the log may be shorter than a mark from before the boot, or hold
/// other bytes below it: such a mark is not trusted. A mark that cannot be read is
/// ignored too: the log is then verified whole, as without a journal.
pub fn state_log_mark(journal: &Journal) -> Option<StateLogMark> {
    let mark = match journal.state_log_mark() {
        Ok(mark) => mark?,
        Err(e) => {
            tracing::warn!(
                "the journal's state/log mark cannot be read ({e}): verifying state/log whole"
            );
            return None;
        }
    };
    let boot = boot_time_micros()?;
    if mark.unix_micros < boot {
        tracing::debug!("state/log mark from before this boot is not trusted");
        return None;
    }
    Some(mark)
}

/// The journal's listings of the offsets folders. They need no boot rule: a listing
/// is trusted only while the folders' stamps are unchanged, and the files it names
/// are looked at again. Listings that cannot be read are ignored: every offsets
/// folder is then read, as without a journal.
pub fn offsets_listings(journal: &Journal) -> HashMap<PartitionId, OffsetsListing> {
    journal.offsets_listings().unwrap_or_else(|e| {
        tracing::warn!(
            "the journal's listings of the offsets folders cannot be read ({e}): reading \
             every offsets folder"
        );
        HashMap::new()
    })
}

/// When this boot began, in microseconds since the epoch (`btime` in /proc/stat).
fn boot_time_micros() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    secs.checked_mul(1_000_000)
}

/// Moves an unusable journal aside (never deletes it) so a fresh one can start.
pub fn move_aside(path: &Path) -> anyhow::Result<PathBuf> {
    let stamp = journal::record::now_micros();
    let aside = path.with_file_name(format!("journal.unusable-{stamp}"));
    std::fs::rename(path, &aside)
        .with_context(|| format!("cannot move unusable journal {} aside", escaped(path)))?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use journal::Record;

    #[test]
    fn boot_time_is_in_the_past() {
        let boot = boot_time_micros().unwrap();
        assert!(boot > 0 && boot < journal::record::now_micros());
    }

    #[test]
    fn checkpoints_of_this_boot_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("journal")).unwrap();
        let seg = journal::PartitionId::new(0, 0, 0).segment(0);
        j.append(Record::SegmentOpened { segment: seg }).unwrap();
        j.append(Record::Checkpoint {
            segment: seg,
            valid_len: 100,
            next_offset: 2,
        })
        .unwrap();
        let states = segment_states(&j).unwrap();
        assert_eq!(states[0].1.checkpoint.map(|c| c.valid_len), Some(100));
    }
}
