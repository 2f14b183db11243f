//! The state files iggy-server 0.6.0 reads before any segment, as discovery finds
//! them: `state/log` parsed (see [`crate::state_log`]), `state/info` (see
//! [`crate::state_info`]), and the metadata the log records compared with the
//! partition folders (see [`crate::metadata`]). Judging and planning them is
//! `state_check.rs`; this part belongs to layout discovery and depends on none of it.

use crate::metadata::{compare, Metadata, Mismatch, Unreplayable};
use crate::names::escaped;
use crate::state_info::Info;
use crate::state_log::{parse_guided, Damage, DamageKind, Entry, StateLog, Trusted};
use journal::PartitionId;
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};

/// A state file that exists but cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {cause}", escaped(.path))]
pub struct StateReadError {
    pub path: PathBuf,
    pub cause: io::Error,
}

/// The metadata log, under the name its repairs are journaled with.
pub const LOG_REL: &str = journal::action::STATE_LOG;
pub const INFO_REL: &str = "state/info";

/// What the state files hold, read at discovery.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StateInspection {
    pub log_path: PathBuf,
    pub info_path: PathBuf,
    /// `None` when there is no `state/log` (the server starts with no streams).
    pub log: Option<StateLog>,
    pub info: Option<Info>,
    /// The metadata of the entries before the first damage; `None` when encrypted.
    pub metadata: Option<Metadata>,
    pub mismatches: Vec<Mismatch>,
    /// Bytes of `state/log` trusted from the journal without hashing them again.
    pub bytes_trusted: u64,
    /// `state/log` is shorter than the length the journal says was verified (that
    /// length): entries were removed behind the server's back.
    pub shrunk_from: Option<u64>,
    /// The log without the entries 0.6.0 writes but cannot read back, when those are
    /// all that stops it: their replay changes nothing, so `metadata` is that of
    /// every other entry.
    pub drop_plan: Option<StateLogDrop>,
}

/// `state/log` without its `delete-segments` entries (see
/// [`crate::state_command::reader_rejects`]), the later entries renumbered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateLogDrop {
    /// Byte offsets of the entries dropped.
    pub entries: Vec<u64>,
    /// The end of the log's whole valid entries: a crash tail after them is cut.
    pub keep_len: u64,
    pub new_len: u64,
    pub new_xxh3: u64,
}

/// Reads the state files of `root` and compares the metadata with `folders`: each
/// partition folder found, with the log bytes its segments hold.
pub fn inspect(
    root: &Path,
    folders: &[(PartitionId, u64)],
) -> Result<StateInspection, StateReadError> {
    inspect_guided(root, folders, None)
}

/// [`inspect`], trusting `state/log` up to where a journal says it was verified.
pub fn inspect_guided(
    root: &Path,
    folders: &[(PartitionId, u64)],
    trusted: Option<Trusted>,
) -> Result<StateInspection, StateReadError> {
    let log_path = root.join(LOG_REL);
    let info_path = root.join(INFO_REL);
    let bytes = read_optional(&log_path)?;
    let (mut log, bytes_trusted, shrunk_from) = match &bytes {
        Some(bytes) => {
            let guided = parse_guided(bytes, trusted);
            (Some(guided.log), guided.bytes_trusted, guided.shrunk_from)
        }
        // A log the journal saw verified is gone: removed behind the server's back.
        None => (None, 0, trusted.map(|t| t.valid_len).filter(|l| *l > 0)),
    };
    let info = read_optional(&info_path)?.map(|b| crate::state_info::judge(&b));
    let mut drop_plan = None;
    let metadata = match &mut log {
        Some(l) if l.encrypted => {
            // Its codes are stored in the clear: the reader's refusals show.
            if let Some(first) = Metadata::unreadable(&l.entries).first() {
                mark_first(l, first);
            }
            None
        }
        Some(l) => {
            let all = Metadata::replay(&l.entries);
            drop_plan = bytes
                .as_deref()
                .and_then(|b| plan_drop(l, &all.unreplayable, b));
            if drop_plan.is_some() {
                mark_dropped(l, &all);
                Some(all)
            } else {
                Some(replayable_prefix(l, all))
            }
        }
        None => Some(Metadata::default()),
    };
    let mismatches = metadata
        .as_ref()
        .map_or_else(Vec::new, |m| compare(m, folders));
    Ok(StateInspection {
        log_path,
        info_path,
        log,
        info,
        metadata,
        mismatches,
        bytes_trusted,
        shrunk_from,
        drop_plan,
    })
}

/// The metadata of `log`'s entries up to the first one the server cannot replay
/// (`all` is the replay of every entry), which becomes the log's first damage (the
/// server stops there as it stops at a torn or corrupt entry, and a cut there keeps
/// what it can replay).
fn replayable_prefix(log: &mut StateLog, all: Metadata) -> Metadata {
    let Some(first) = all.unreplayable.first() else {
        return all;
    };
    if !mark_first(log, first) {
        return all;
    }
    Metadata::replay(&log.entries)
}

/// Makes `first` the log's first damage and keeps only the entries before it (the
/// damage found after it is listed with it); false when no entry is there.
fn mark_first(log: &mut StateLog, first: &Unreplayable) -> bool {
    let Some(at) = log.entries.iter().position(|e| e.offset == first.offset) else {
        return false;
    };
    let rest = log.entries.split_off(at);
    let mut affected: Vec<String> = rest.iter().map(Entry::describe).collect();
    if let Some(a) = affected.first_mut() {
        a.push_str(" [cannot be replayed]");
    }
    let later_damage = log.damage.take();
    affected.extend(later_damage.into_iter().flat_map(|d| d.affected));
    log.damage = Some(unreplayable_damage(
        first,
        affected,
        rest.first().map(|e| e.code),
    ));
    true
}

/// The damage an entry that stops the server is: at `first`, with the entries it
/// affects and its command code.
fn unreplayable_damage(first: &Unreplayable, affected: Vec<String>, code: Option<u32>) -> Damage {
    Damage {
        kind: DamageKind::Unreplayable,
        offset: first.offset,
        tail_only: false,
        detail: first.to_string(),
        affected,
        code,
    }
}

/// The drop of `log`'s delete-segments entries (the log's `bytes`, as parsed), when
/// those are all that stops the server (`unreplayable`: every entry it cannot replay
/// or read back) and the log is otherwise whole and verified, but for a crash tail,
/// which goes with them. The one rule for `recover` and for the sidecar's advice.
pub fn plan_drop(
    log: &StateLog,
    unreplayable: &[Unreplayable],
    bytes: &[u8],
) -> Option<StateLogDrop> {
    if unreplayable.is_empty()
        || !unreplayable.iter().all(|u| u.droppable)
        || log.damage.as_ref().is_some_and(|d| !d.tail_only)
    {
        return None;
    }
    let entries: Vec<u64> = unreplayable.iter().map(|u| u.offset).collect();
    let keep_len = log.valid_len();
    let whole = bytes.get(..usize::try_from(keep_len).ok()?)?;
    let new = crate::state_log::without_entries(whole, &entries).ok()?;
    Some(StateLogDrop {
        entries,
        keep_len,
        new_len: new.len() as u64,
        new_xxh3: xxhash_rust::xxh3::xxh3_64(&new),
    })
}

/// Names the first entry a drop takes as the log's damage, listing every one it
/// takes, and the crash tail cut with them; the entries stay, since every other one
/// is kept.
fn mark_dropped(log: &mut StateLog, all: &Metadata) {
    let Some(first) = all.unreplayable.first() else {
        return;
    };
    let dropped: std::collections::BTreeSet<u64> =
        all.unreplayable.iter().map(|u| u.offset).collect();
    let mut affected: Vec<String> = (log.entries.iter())
        .filter(|e| dropped.contains(&e.offset))
        .map(|e| format!("{} [cannot be read back]", e.describe()))
        .collect();
    if let Some(tail) = log.damage.take() {
        affected.push(format!("{} at byte {} [cut]", tail.detail, tail.offset));
    }
    let code = Some(crate::state_command::DELETE_SEGMENTS);
    log.damage = Some(unreplayable_damage(first, affected, code));
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateReadError> {
    let read = |path: &Path| -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut bytes = Vec::new();
        crate::fsops::open_read(path)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    match read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(cause) => Err(StateReadError {
            path: path.to_path_buf(),
            cause,
        }),
    }
}

impl StateInspection {
    /// Folders that hold messages no metadata names, and partitions without folders:
    /// what stops a cut of the log, and the server. Unnamed folders without messages
    /// are only listed (see [`StateInspection::empty_unnamed`]).
    pub(crate) fn blocking(&self) -> impl Iterator<Item = &Mismatch> {
        self.mismatches.iter().filter(|m| match m {
            Mismatch::Unnamed { log_bytes, .. } => *log_bytes > 0,
            Mismatch::Missing { .. } => true,
        })
    }

    /// Folders no metadata names and that hold no message: harmless, left alone.
    pub fn empty_unnamed(&self) -> Vec<String> {
        self.mismatches
            .iter()
            .filter(|m| matches!(m, Mismatch::Unnamed { log_bytes: 0, .. }))
            .map(|m| m.rel().to_string())
            .collect()
    }

    /// The line `check` prints about the state files.
    pub fn summary(&self) -> String {
        let log = match &self.log {
            None => "state/log missing (the server starts without streams)".to_string(),
            Some(l) if self.drop_plan.is_some() => format!(
                "state/log: {} bytes, {} entries, of which {} to drop, checksums verified",
                l.len,
                l.entries.len(),
                self.drop_plan.as_ref().map_or(0, |d| d.entries.len())
            ),
            Some(l) => format!(
                "state/log: {} bytes, {} entries before any damage, checksums {}",
                l.len,
                l.entries.len(),
                if l.encrypted {
                    "unverifiable (encrypted: framing and indexes checked only)"
                } else {
                    "verified"
                }
            ),
        };
        let meta = match &self.metadata {
            Some(m) => {
                let (s, t, p) = m.counts();
                format!(
                    "metadata: {s} streams, {t} topics, {p} partitions, {} users",
                    m.users.len()
                )
            }
            None => "metadata not compared with the folders (encrypted)".to_string(),
        };
        format!("{log}; {meta}")
    }
}
