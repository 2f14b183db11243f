//! The tracker's visitor of a scan: it accepts a message only once its index entry
//! is written and matches it.
//!
//! The server writes a batch to the log before its index entries, so a scan of the
//! newest bytes often reaches messages whose entries are not there yet: the visitor
//! stops the scan there (it is resumed later), and the tracker's verified position
//! always has its index behind it. An entry that is there and differs is damage, and
//! the visitor says what it is for the alert.

use crate::watch::alerts::{AlertKind, Finding};
use recovery::index::{EntryCheck, IndexVerifier, ENTRY_LEN};
use recovery::scan::{MessageMeta, Visitor};
use std::io::{self, ErrorKind, Read};

/// Why [`IndexCheck`] stopped a scan.
pub(super) enum Declined {
    /// The message's index entry is not written yet (or the index shrank under us).
    IndexBehind,
    /// The entry does not match the message: damage, and why.
    Mismatch(String, Finding),
}

/// The tracker's visitor: accepts a message only once its index entry is written and
/// matches it, so the verified position always has its index behind it.
pub(super) struct IndexCheck<R> {
    verifier: IndexVerifier<R>,
    segment_start: u64,
    /// Why the last scan was stopped, if it was.
    pub(super) declined: Option<Declined>,
}

impl<R: Read> IndexCheck<R> {
    /// Checks against `index`, positioned at the entry of the first message the scan
    /// will report, which holds `entries` entries from there.
    pub(super) fn new(index: R, entries: u64, segment_start: u64) -> Self {
        Self {
            verifier: IndexVerifier::new(
                index,
                entries.saturating_mul(ENTRY_LEN as u64),
                segment_start,
            ),
            segment_start,
            declined: None,
        }
    }
}

impl<R: Read> Visitor for IndexCheck<R> {
    type Error = io::Error;

    fn message(&mut self, m: &MessageMeta) -> io::Result<bool> {
        if self.verifier.entries_left() == 0 {
            self.declined = Some(Declined::IndexBehind);
            return Ok(false);
        }
        let check = match self.verifier.check(m) {
            Ok(check) => check,
            // The index shrank while we read it.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => EntryCheck::NoEntry,
            Err(e) => return Err(e),
        };
        self.declined = match check {
            EntryCheck::Matches => return Ok(true),
            EntryCheck::NoEntry | EntryCheck::NotCompared => Some(Declined::IndexBehind),
            EntryCheck::Mismatch {
                found, expected, ..
            } => {
                let entry = m.offset.saturating_sub(self.segment_start);
                Some(Declined::Mismatch(
                    format!(
                        "index entry {entry} is {found:?}, but message {} needs {expected:?}",
                        m.offset
                    ),
                    Finding {
                        kind: AlertKind::GhostIndexEntries,
                        byte: entry.saturating_mul(ENTRY_LEN as u64),
                        in_index: true,
                    },
                ))
            }
            EntryCheck::Unrepresentable { .. } => Some(Declined::Mismatch(
                format!(
                    "message {} ends at byte {}, beyond what a 0.6 index can address",
                    m.offset, m.end
                ),
                Finding {
                    kind: AlertKind::CorruptData,
                    byte: m.start,
                    in_index: false,
                },
            )),
        };
        Ok(false)
    }
}
