//! What every command on a data directory opens first: resolved directories and the
//! journal, by the one rule of `journal_open.rs` (taken over from the sidecar when it
//! runs), and the refusal to touch files another process has open.
//!
//! A session that repairs ([`Session::open`]) creates the state directory and moves an
//! unusable journal aside: repairs must still be journaled, and without history every
//! segment is simply scanned in full. A session that only looks
//! ([`Session::inspect`]) changes nothing in the state directory: it reads a copy of
//! the journal, and an unusable or missing journal is reported and scanned around.

use crate::config::Dirs;
use crate::journal_open::{self, Access, OpenedJournal};
use anyhow::Context;
use journal::{Journal, OffsetsListing, PartitionId, SegmentKey, SegmentState, StateLogMark};
use recovery::busy::holders_of;
use recovery::execute::Executor;
use recovery::fsops::StdFs;
use recovery::names::escaped;
use recovery::quarantine::Quarantine;
use std::collections::HashMap;
use std::path::Path;

pub struct Session {
    pub dirs: Dirs,
    /// The journal's segment states, when its history is usable.
    known: HashMap<SegmentKey, SegmentState>,
    /// How far the journal says `state/log` was verified in this boot.
    state_log: Option<StateLogMark>,
    /// What the journal's listings say of the offsets folders.
    listings: HashMap<PartitionId, OffsetsListing>,
    /// Dropped last: closes the journal, then hands it back to the sidecar (or
    /// removes an inspection's copy).
    opened: OpenedJournal,
}

impl Session {
    /// For commands that change files: the journal, opened in place.
    pub fn open(mut dirs: Dirs) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dirs.state_dir).with_context(|| {
            format!("cannot create state directory {}", escaped(&dirs.state_dir))
        })?;
        dirs.state_dir = crate::config::resolved(&dirs.state_dir);
        Self::with(dirs, Access::Borrow)
    }

    /// For commands that only look: nothing in the state directory changes.
    pub fn inspect(dirs: Dirs) -> anyhow::Result<Self> {
        Self::with(dirs, Access::Inspect)
    }

    fn with(dirs: Dirs, access: Access) -> anyhow::Result<Self> {
        let mut opened = journal_open::open(&dirs.state_dir, access)?;
        let states = opened.load_states()?;
        let (known, state_log, listings) = if opened.condition.history_usable() {
            let journal = opened.journal();
            let mark = journal.and_then(crate::journal_state::state_log_mark);
            let listings = journal
                .map(crate::journal_state::offsets_listings)
                .unwrap_or_default();
            (states.into_iter().collect(), mark, listings)
        } else {
            (HashMap::new(), None, HashMap::new())
        };
        Ok(Self {
            dirs,
            known,
            state_log,
            listings,
            opened,
        })
    }

    /// The journal to record repairs in; always there in a session that may repair.
    pub fn journal(&self) -> anyhow::Result<&Journal> {
        self.opened
            .journal()
            .ok_or_else(|| anyhow::anyhow!("internal: a read-only session has no journal to write"))
    }

    /// The executor that repairs and restores on this session's data directory:
    /// the real file system, the journal, and `quarantine` (the state directory's).
    pub fn executor<'a>(&'a self, quarantine: &'a Quarantine) -> anyhow::Result<Executor<'a>> {
        Ok(Executor {
            data_dir: &self.dirs.data_dir,
            quarantine,
            fs: &StdFs,
            log: self.journal()?,
        })
    }

    /// The state directory's quarantine.
    pub fn quarantine(&self) -> Quarantine {
        Quarantine::new(&self.dirs.state_dir)
    }

    /// The journal, when it can be read (inspection of an unusable or missing journal
    /// has none).
    pub fn readable_journal(&self) -> Option<&Journal> {
        self.opened.journal()
    }

    pub fn history_usable(&self) -> bool {
        self.opened.condition.history_usable()
    }

    /// How far the journal says `state/log` was verified (in this boot), when its
    /// history is usable.
    pub fn state_log_mark(&self) -> Option<StateLogMark> {
        self.state_log
    }

    /// What the journal knows about segments, when its history is usable.
    pub fn known_segments(&self) -> &HashMap<SegmentKey, SegmentState> {
        &self.known
    }

    /// What the journal's listings say of the offsets folders (none when its
    /// history is not usable), for a guided listing to take instead of reading them.
    pub fn offsets_guide(&self) -> recovery::layout::OffsetsGuide<'_> {
        recovery::layout::OffsetsGuide {
            known: &self.listings,
            margin: recovery::layout::LISTING_MARGIN,
        }
    }

    /// What was found of the journal, for the operator.
    pub fn journal_condition(&self) -> &journal_open::Condition {
        &self.opened.condition
    }

    pub fn describe_journal(&self) -> String {
        self.opened.describe()
    }
}

/// Refuses (with the processes named) when anything holds a file under `data_dir`.
pub fn refuse_if_busy(data_dir: &Path, force: bool) -> anyhow::Result<()> {
    let report = holders_of(data_dir)
        .with_context(|| format!("cannot check which processes use {}", escaped(data_dir)))?;
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
                escaped(&h.path)
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
        escaped(data_dir)
    )
}
