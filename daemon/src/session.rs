//! What every repairing command opens first: resolved directories, the journal (taken
//! over from the sidecar when it runs), and the refusal to touch files another process
//! has open.
//!
//! A journal that cannot be used (corrupt, unreadable, a newer format) is moved aside,
//! never deleted, and a fresh one started: repairs must still be journaled, and
//! without history every segment is simply scanned in full.

use crate::config::{DirArgs, Dirs};
use crate::handover::{request_journal, JournalLease};
use crate::journal_state::{move_aside, segment_states};
use anyhow::Context;
use journal::{Journal, SegmentKey, SegmentState};
use recovery::busy::holders_of;
use std::collections::HashMap;
use std::path::Path;

pub struct Session {
    pub dirs: Dirs,
    pub journal: Journal,
    /// Whether the journal's history may guide the scan.
    pub history_usable: bool,
    /// Dropped last: hands the journal back to the sidecar.
    _lease: Option<JournalLease>,
}

impl Session {
    pub fn open(args: &DirArgs) -> anyhow::Result<Self> {
        let mut dirs = args.resolve()?;
        std::fs::create_dir_all(&dirs.state_dir).with_context(|| {
            format!("cannot create state directory {}", dirs.state_dir.display())
        })?;
        dirs.state_dir = crate::config::resolved(&dirs.state_dir);
        let lease = request_journal(&dirs.state_dir)?;
        let path = dirs.state_dir.join("journal");
        let (journal, history_usable) = match Journal::open(&path) {
            Ok(j) => (j, true),
            Err(e) if e.is_locked() => {
                return Err(e).context(
                    "another iggy-warden process holds the journal (a second recover, or a \
                     sidecar that did not hand it over)",
                )
            }
            Err(e) if e.is_unusable() => {
                let aside = move_aside(&path)?;
                tracing::warn!(
                    "journal {} is unusable ({e}); moved to {} and starting a fresh one: \
                     every segment will be scanned in full",
                    path.display(),
                    aside.display()
                );
                let j = Journal::open(&path).context("cannot start a fresh journal")?;
                (j, false)
            }
            Err(e) => return Err(e).context("cannot open the journal"),
        };
        Ok(Self {
            dirs,
            journal,
            history_usable,
            _lease: lease,
        })
    }

    /// What the journal knows about segments, when its history is usable.
    pub fn known_segments(&self) -> HashMap<SegmentKey, SegmentState> {
        if !self.history_usable {
            return HashMap::new();
        }
        match segment_states(&self.journal) {
            Ok(states) => states.into_iter().collect(),
            Err(e) => {
                tracing::warn!("journal history unreadable ({e}): scanning everything");
                HashMap::new()
            }
        }
    }
}

/// Refuses (with the processes named) when anything holds a file under `data_dir`.
pub fn refuse_if_busy(data_dir: &Path, force: bool) -> anyhow::Result<()> {
    let report = holders_of(data_dir)
        .with_context(|| format!("cannot check which processes use {}", data_dir.display()))?;
    if report.uninspectable > 0 {
        tracing::debug!(
            "{} processes could not be inspected (other users); run as the server's user or root",
            report.uninspectable
        );
    }
    if report.holders.is_empty() {
        return Ok(());
    }
    let list = report
        .holders
        .iter()
        .map(|h| {
            format!(
                "pid {} ({}) has {} open",
                h.pid,
                h.command,
                h.path.display()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if force {
        tracing::warn!("--force: changing files although {list}");
        return Ok(());
    }
    anyhow::bail!(
        "refusing to change {}: {list}. Stop iggy-server first (or pass --force if you are sure)",
        data_dir.display()
    )
}
