//! The one rule for opening the journal at `<state dir>/journal`, used by every
//! command and the sidecar.
//!
//! **Writers** ([`Access::Own`], the sidecar; [`Access::Borrow`], the commands that
//! repair or restore): open it in place; when it cannot be used (sled cannot open it,
//! a record or its segment states do not decode, a newer format) move it aside as
//! `journal.unusable-<time>` (never delete it) and start a fresh one. A fresh journal
//! hands out repair ids from 1 again, but the executor takes every new id above the
//! highest folder in the quarantine (`Quarantine::highest_id`), so an id is never used
//! twice: above the highest id ever used, whatever happened to the journal. A journal
//! another process holds (sled's lock) is an error: nothing works behind its back.
//! `Borrow` first asks a running sidecar to hand the journal over, for as long as the
//! [`OpenedJournal`] lives (see `handover.rs`).
//!
//! **Inspection** ([`Access::Inspect`]: `replay` without `--apply`, `journal show`,
//! `journal verify`) never writes in the state directory. sled 0.34 writes when it
//! opens a database (its config and snapshot files, our format key and acknowledged
//! marker) and has no read-only mode, so it opens a *copy*: the journal's files are
//! copied into a scratch folder, `<state dir>/.inspect-<pid>-<time>` (or the system's
//! temporary folder when the state directory is not writable), which is removed when
//! the [`OpenedJournal`] is dropped (`journal_copy.rs`). A journal that cannot be
//! used is reported as unusable and left exactly as it is; a missing one is reported
//! missing and not created.
//!
//! The copy is consistent because nobody writes the journal while it is taken: a
//! running sidecar is asked to hand it over first (it flushes and closes it, and takes
//! it back once the copy is made), and the copy holds a shared `flock` on `db` — the
//! file sled locks exclusively — so no sled process can open it meanwhile. What
//! remains is in the README (Limits).

use crate::handover::{request_journal, JournalLease};
use crate::journal_copy::{copy_locked, remove_stale_scratch, rename_copy, Scratch};
use crate::journal_state::{move_aside, segment_states};
use anyhow::Context;
use journal::{Journal, JournalError, SegmentKey, SegmentState};
use recovery::names::escaped;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The journal's folder name inside the state directory.
pub const JOURNAL_DIR: &str = "journal";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The sidecar's own journal: opened in place, never borrowed.
    Own,
    /// A command that writes (recover, replay --apply, restore, journal compact):
    /// borrowed from a running sidecar, opened in place.
    Borrow,
    /// Read only: a copy is opened; nothing in the state directory changes.
    Inspect,
}

/// What the rule found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The journal opened and its history may be used.
    Usable,
    /// Writers: there was no journal; a new one was started.
    Created,
    /// Writers: it could not be used (`why`) and was moved to `aside`; a fresh one
    /// was started.
    Replaced { why: String, aside: PathBuf },
    /// Inspection: it cannot be used (`why`); it was left as it is.
    Unusable { why: String },
    /// Inspection: there is no journal (nothing was created).
    Missing,
}

impl Condition {
    /// Whether the journal's history can guide recovery.
    pub fn history_usable(&self) -> bool {
        matches!(self, Condition::Usable)
    }
}

/// An opened journal (or the reason there is none), with what keeps it valid: the
/// sidecar's lease, and an inspection's scratch copy. Fields drop in order: the
/// journal closes before its copy is removed and before the lease hands it back.
pub struct OpenedJournal {
    journal: Option<Journal>,
    access: Access,
    pub condition: Condition,
    /// Where the journal is (the real one, also for a copy).
    pub path: PathBuf,
    scratch: Option<Scratch>,
    _lease: Option<JournalLease>,
}

impl std::fmt::Debug for OpenedJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedJournal")
            .field("condition", &self.condition)
            .field("path", &self.path)
            .field("copy", &self.scratch.as_ref().map(|s| &s.dir))
            .finish()
    }
}

impl OpenedJournal {
    /// The journal: always there for writers; for inspection, when it is usable.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Takes the journal out (the sidecar hands it to its writer thread).
    pub fn take(&mut self) -> Option<Journal> {
        self.journal.take()
    }

    /// The journal's segment states (checkpoints from before this boot dropped).
    /// States that cannot be read make the journal unusable by the same rule as
    /// opening: writers move it aside and start afresh, inspection reports it.
    pub fn load_states(&mut self) -> anyhow::Result<Vec<(SegmentKey, SegmentState)>> {
        let Some(journal) = &self.journal else {
            return Ok(Vec::new());
        };
        let err = match segment_states(journal) {
            Ok(states) => return Ok(states),
            Err(e) => e,
        };
        let why = format!("its segment states cannot be read ({err})");
        self.journal = None;
        if self.access == Access::Inspect {
            tracing::warn!(
                "journal {} is unusable: {why}; left as it is",
                escaped(&self.path)
            );
            self.condition = Condition::Unusable { why };
            return Ok(Vec::new());
        }
        let (journal, condition) = start_fresh(&self.path, why)?;
        self.journal = Some(journal);
        self.condition = condition;
        Ok(Vec::new())
    }

    /// `text` (an error or report of the opened journal) naming the journal by its
    /// real path rather than by its inspection copy's.
    pub fn real_names(&self, text: &dyn std::fmt::Display) -> String {
        let text = text.to_string();
        match &self.scratch {
            Some(s) => rename_copy(text, &s.dir.join(JOURNAL_DIR), &self.path),
            None => text,
        }
    }

    /// One line for the operator about what the journal gives.
    pub fn describe(&self) -> String {
        let path = escaped(&self.path);
        match &self.condition {
            Condition::Usable => format!("journal {path}: used"),
            Condition::Created => format!("journal {path}: none yet, started"),
            Condition::Replaced { why, aside } => format!(
                "journal {path} was unusable ({why}): moved to {} and a fresh one started",
                escaped(aside)
            ),
            Condition::Unusable { why } => format!(
                "journal {path} is unusable ({why}); left as it is (recover and the sidecar \
                 move such a journal aside)"
            ),
            Condition::Missing => format!("no journal at {path}"),
        }
    }
}

/// Opens the journal of `state_dir` by the one rule (see the module's documentation).
/// Writers must have created `state_dir`.
pub fn open(state_dir: &Path, access: Access) -> anyhow::Result<OpenedJournal> {
    let path = state_dir.join(JOURNAL_DIR);
    match access {
        Access::Inspect => inspect(state_dir, &path),
        Access::Own | Access::Borrow => {
            let lease = if access == Access::Borrow {
                request_journal(state_dir)?
            } else {
                None
            };
            remove_stale_scratch(state_dir);
            let existed = fs::symlink_metadata(&path).is_ok();
            let (journal, condition) = match Journal::open(&path) {
                Ok(j) if existed => (j, Condition::Usable),
                Ok(j) => (j, Condition::Created),
                Err(e) if e.is_locked() => return Err(locked(e, access)),
                // Another user's journal is not ours to move aside.
                Err(e) if e.is_permission_denied() => return Err(e.into()),
                Err(e) => start_fresh(&path, e.to_string())?,
            };
            Ok(OpenedJournal {
                journal: Some(journal),
                access,
                condition,
                path,
                scratch: None,
                _lease: lease,
            })
        }
    }
}

fn locked(e: JournalError, access: Access) -> anyhow::Error {
    let hint = match access {
        Access::Own => {
            "another process holds the journal: is another `iggy-warden watch` running for \
             this state directory, or a recover, replay or restore in progress?"
        }
        _ => {
            "another iggy-warden process holds the journal (a second recover, or a sidecar \
             that did not hand it over)"
        }
    };
    anyhow::Error::new(e).context(hint)
}

/// Moves the unusable journal at `path` aside and opens a fresh one there.
fn start_fresh(path: &Path, why: String) -> anyhow::Result<(Journal, Condition)> {
    let aside = move_aside(path)?;
    tracing::warn!(
        "journal {} is unusable ({why}); moved to {} and starting a fresh one: every \
         segment will be scanned in full",
        escaped(path),
        escaped(&aside)
    );
    let journal = Journal::open(path)
        .with_context(|| format!("cannot start a fresh journal at {}", escaped(path)))?;
    Ok((journal, Condition::Replaced { why, aside }))
}

/// Inspection: opens a copy of the journal, or says why there is none.
fn inspect(state_dir: &Path, path: &Path) -> anyhow::Result<OpenedJournal> {
    let result = |journal, condition, scratch| OpenedJournal {
        journal,
        access: Access::Inspect,
        condition,
        path: path.to_path_buf(),
        scratch,
        _lease: None,
    };
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(result(None, Condition::Missing, None))
        }
        Err(e) => {
            let why = format!("cannot read it: {e}");
            return Ok(result(None, Condition::Unusable { why }, None));
        }
        Ok(m) if !m.is_dir() => {
            let why = "not a folder".to_string();
            return Ok(result(None, Condition::Unusable { why }, None));
        }
        Ok(_) => {}
    }
    // The sidecar flushes and closes the journal until the lease is dropped, right
    // after the copy.
    let lease = request_journal(state_dir)?;
    let scratch = Scratch::create(state_dir)?;
    let copy = scratch.dir.join(JOURNAL_DIR);
    let copied = copy_locked(path, &copy);
    drop(lease);
    if let Err(why) = copied? {
        return Ok(result(None, Condition::Unusable { why }, Some(scratch)));
    }
    match Journal::open(&copy) {
        Ok(j) => Ok(result(Some(j), Condition::Usable, Some(scratch))),
        Err(e) => {
            let why = rename_copy(e.to_string(), &copy, path);
            Ok(result(None, Condition::Unusable { why }, Some(scratch)))
        }
    }
}

#[cfg(test)]
mod tests;
