//! The sidecar's watch on `state/log`, the server's metadata log: like an open
//! segment's checkpoint, it journals how far the log was verified
//! (`Record::StateLogVerified`), so that `recover` verifies only the entries appended
//! since.
//!
//! The log changes only when metadata does (a user, stream, topic, token… created or
//! changed), so it is looked at on the checkpoint tick, with one `stat`: only a new
//! length makes the sidecar read it. It reads the whole file (it is small, and the
//! entries' commands are not needed here, but their framing is) and hashes only what
//! lies after its mark. A mark never moves back: a log shorter than the mark was cut
//! behind the server's back, and the sidecar journals nothing for it, so that
//! `recover` reports it (`state-log-shrunk`) instead of trusting the shorter log. An
//! encrypted log, whose checksums cannot be verified, gets no mark.
//!
//! The mark is reloaded from the journal at every full reconciliation: after a
//! handover, a repair `recover` journaled has removed it.
//!
//! Each new length also has the entries replayed as 0.6.0 replays them at start: an
//! entry it cannot replay (the server writes such entries itself: it numbers users
//! anew at every start but records a token under its writer's current number, and
//! it records every delete-segments request in an entry its reader rejects) means
//! the next start fails, so the sidecar says so while the server still runs, once
//! per such entry, and exports it (`iggy_warden_state_log_unreplayable`). Of an
//! encrypted log only the reader's refusals show (the codes are in the clear).

use journal::{Journal, Record};
use recovery::metadata::{Metadata, Unreplayable};
use recovery::names::escaped;
use recovery::state_inspect::{plan_drop, LOG_REL};
use recovery::state_log::{parse_guided, Trusted};
use std::path::Path;

#[derive(Debug, Default)]
pub(super) struct StateLogWatch {
    /// How far the journal holds the log verified.
    mark: Option<Trusted>,
    /// The log's length when it was last looked at: the same length, nothing to do.
    seen_len: Option<u64>,
    /// The first entry the server cannot replay, as last seen.
    unreplayable: Option<Unreplayable>,
    /// The length of the log whose entries were last replayed.
    replayed_len: Option<u64>,
}

impl StateLogWatch {
    /// Takes the mark the journal holds (none from before this boot).
    pub(super) fn reload(&mut self, journal: &Journal) {
        self.mark = crate::journal_state::state_log_mark(journal).map(Trusted::from);
        self.seen_len = None;
    }

    /// Looks at `state/log`; the record to journal when more of it is now verified.
    pub(super) fn check(&mut self, data_dir: &Path) -> Option<Record> {
        let path = data_dir.join(LOG_REL);
        let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
            // No log: the server starts with no metadata, and nothing to replay.
            self.unreplayable = None;
            return None;
        };
        if self.seen_len == Some(len) {
            return None;
        }
        if let Some(mark) = self.mark {
            if len < mark.valid_len {
                tracing::warn!(
                    "{} is {len} bytes, shorter than the {} bytes verified before: entries \
                     were removed behind the server's back; recover will report it",
                    escaped(&path),
                    mark.valid_len
                );
                self.seen_len = Some(len);
                return None;
            }
            // A length verified before needs no second look, once its entries were
            // replayed by this process.
            if len == mark.valid_len && self.replayed_len == Some(len) {
                self.seen_len = Some(len);
                return None;
            }
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::debug!("cannot read {}: {e}; trying again later", escaped(&path));
                return None;
            }
        };
        self.seen_len = Some(bytes.len() as u64);
        let parsed = parse_guided(&bytes, self.mark);
        let log = &parsed.log;
        if log.encrypted {
            // Its codes are in the clear: the reader's refusals still show. Salvage
            // cannot reseal its entries, nor is such a log ever cut.
            let remedy = "put back state/log from a backup taken before it";
            self.judge(&path, Metadata::unreadable(&log.entries), remedy);
            return None;
        }
        if parsed.shrunk_from.is_some() {
            return None;
        }
        let found = Metadata::replay(&log.entries).unreplayable;
        // What `recover` will plan, by its own rule.
        let remedy = if plan_drop(log, &found, &bytes).is_some() {
            "`iggy-warden recover --mode salvage` drops such entries, whose replay changes \
             nothing"
        } else {
            "`iggy-warden recover --mode point-in-time` cuts the log before it, or put back \
             a backup"
        };
        self.judge(&path, found, remedy);
        self.replayed_len = Some(bytes.len() as u64);
        let last = log.entries.last()?;
        let valid_len = last.offset.checked_add(last.len)?;
        if self.mark.is_some_and(|m| valid_len <= m.valid_len) {
            return None;
        }
        let mark = Trusted {
            valid_len,
            last_index: last.index,
            last_checksum: last.checksum,
        };
        self.mark = Some(mark);
        Some(Record::StateLogVerified {
            valid_len: mark.valid_len,
            last_index: mark.last_index,
            last_checksum: mark.last_checksum,
        })
    }

    /// The first entry of the log last looked at that 0.6.0 cannot replay.
    pub(super) fn unreplayable(&self) -> Option<&Unreplayable> {
        self.unreplayable.as_ref()
    }

    /// Says once per entry that the first of `found`, the entries the server cannot
    /// replay (or read back), will stop its next start, and the `remedy`.
    fn judge(&mut self, path: &Path, found: Vec<Unreplayable>, remedy: &str) {
        let first = found.into_iter().next();
        if let Some(u) = first
            .as_ref()
            .filter(|u| self.unreplayable.as_ref() != Some(u))
        {
            tracing::error!(
                "{} entry {} at byte {} ({}): {}; iggy-server 0.6.0 will not start again \
                 with it; {remedy}",
                escaped(path),
                u.index,
                u.offset,
                u.command,
                u.why
            );
        }
        self.unreplayable = first;
    }
}
