//! The journal on disk: a sled database with five trees; opening it and queries.
//!
//! | tree      | key                          | value                                   |
//! |-----------|------------------------------|-----------------------------------------|
//! | `log`     | first seq, u64 big-endian    | envelope of a round's [`Entry`]s        |
//! | `state`   | [`SegmentKey::to_bytes`]     | envelope of the folded [`SegmentState`] |
//! | `repairs` | first [`RepairId`] of a run, u64 big-endian | last id, seq of the first's `RepairIntent` (`pending.rs`) |
//! | `meta`    | name                         | u64 big-endian                          |
//! | `listings`| partition, 12 bytes as above | an `OffsetsListing` (a hint, not a record: `listing.rs`) |
//!
//! This module opens the journal and answers queries; the write path is in
//! `append.rs`, and `block.rs` says how a round's records share one `log` value.
//!
//! sled 0.34 can panic on some damaged files rather than return `Corruption`; every
//! call into it goes through `shielded`, which turns a panic into
//! [`JournalError::Corrupt`] so that a damaged journal means a full scan, not a crash
//! of iggy-warden.

use crate::action::{RepairAction, RepairId};
use crate::block;
use crate::envelope;
use crate::error::JournalError;
use crate::group::CommitQueue;
use crate::key::SegmentKey;
use crate::marker::{self, AckMarker};
use crate::pending::Run;
use crate::record::{Entry, Record};
use crate::state::{SegmentState, UnsealedState};
use crate::trees::{
    decode_state, parse_u64, seq_key, shielded, META_COMPACTED_THROUGH, META_FORMAT,
    META_NEXT_REPAIR, META_STATE_LOG,
};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// sled's default cache is 1 GiB; the journal's working set is tiny.
const CACHE_CAPACITY: u64 = 2 << 20;

/// How long `open` waits for a lock that is being released (see [`Journal::open`]).
pub const LOCK_RETRY: Duration = Duration::from_secs(1);

/// One operation queued for the writer (`append.rs`); its result is the seqs it
/// wrote, or the one repair id.
pub(crate) enum Op {
    Append(Vec<Record>),
    AllocRepairId,
}

/// How far `state/log` was verified, from the newest [`Record::StateLogVerified`]. Any
/// repair intent journaled after it removes it: a repair may change `state/log`, so
/// the log is verified whole again until the sidecar journals a new mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateLogMark {
    /// The record's seq and when it was appended.
    pub seq: u64,
    pub unix_micros: u64,
    pub valid_len: u64,
    pub last_index: u64,
    pub last_checksum: u64,
}

/// A repair whose intent is journaled but whose outcome is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRepair {
    pub seq: u64,
    pub repair: RepairId,
    pub action: RepairAction,
    pub reason: String,
}

/// Counters since this `Journal` was opened: `appended / flushes` is how many
/// records group commit put behind each flush.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    pub appended: u64,
    pub flushes: u64,
    /// Time spent writing rounds (encoding and the sled transaction).
    pub write_time: Duration,
    /// Time spent in flushes (fsync).
    pub flush_time: Duration,
}

/// What only the (single) writer may change; guarded by `Journal::writer`.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) next_seq: u64,
    pub(crate) next_repair_id: u64,
    pub(crate) appended: u64,
    pub(crate) flushes: u64,
    pub(crate) write_time: Duration,
    pub(crate) flush_time: Duration,
    /// Known states of the segments being written (see `append.rs`); a missing key
    /// means "not cached", not "no state".
    pub(crate) states: HashMap<[u8; 20], UnsealedState>,
    /// Set by a failed flush: what reached the disk is unknown, and retrying an fsync
    /// can report success for data that was lost (the PostgreSQL lesson), so the
    /// journal refuses writes until reopened.
    pub(crate) poisoned: Option<String>,
}

/// The write-ahead journal. `Send + Sync`: share it behind an `Arc`.
pub struct Journal {
    pub(crate) path: PathBuf,
    pub(crate) db: sled::Db,
    pub(crate) log: sled::Tree,
    pub(crate) state: sled::Tree,
    pub(crate) repairs: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) listings: sled::Tree,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) queue: CommitQueue<Op, Result<Vec<u64>, JournalError>>,
    pub(crate) acked: AckMarker,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

/// Total size of the files under `dir`, recursively: what the journal costs on disk.
/// sled's background threads remove old snapshot files at any moment, so a file that
/// vanishes between the listing and its `stat` counts as nothing, not as an error.
pub fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut total = 0;
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let meta = match item.metadata() {
            Ok(m) => m,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        total += if meta.is_dir() {
            match dir_size(&item.path()) {
                Err(e) if gone(&e) => 0,
                other => other?,
            }
        } else {
            meta.len()
        };
    }
    Ok(total)
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`.
    ///
    /// sled releases its file lock from background threads a moment after the last
    /// handle is dropped, so reopening in the same process can find the lock still
    /// held: `Locked` is retried for up to [`LOCK_RETRY`] before it is returned.
    ///
    /// Before sled sees it, the folder is checked ([`crate::folder`]): a link, another
    /// user's folder or a sparse giant is [`JournalError::Refused`]. A permission
    /// error is [`JournalError::PermissionDenied`], naming the file.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io(dir, e))?;
        crate::folder::check(dir)?;
        let deadline = Instant::now() + LOCK_RETRY;
        loop {
            match shielded(dir, "open", || Self::open_inner(dir)) {
                Err(e) if e.is_locked() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) if e.is_permission_denied() => {
                    let file = crate::folder::denied_file(dir).unwrap_or_else(|| dir.to_path_buf());
                    return Err(JournalError::permission(dir, &file));
                }
                other => return other,
            }
        }
    }

    fn open_inner(dir: &Path) -> Result<Journal, JournalError> {
        let sled_err = |e| JournalError::from_sled(dir, e);
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_CAPACITY)
            .open()
            .map_err(sled_err)?;
        let log = db.open_tree("log").map_err(sled_err)?;
        let state = db.open_tree("state").map_err(sled_err)?;
        let repairs = db.open_tree("repairs").map_err(sled_err)?;
        let meta = db.open_tree("meta").map_err(sled_err)?;
        let listings = db.open_tree("listings").map_err(sled_err)?;

        let meta_u64 = |name: &[u8]| -> Result<Option<u64>, JournalError> {
            match meta.get(name).map_err(sled_err)? {
                None => Ok(None),
                Some(v) => parse_u64(&v).map(Some).ok_or_else(|| {
                    JournalError::corrupt(
                        dir,
                        format!(
                            "meta {} has {} bytes",
                            String::from_utf8_lossy(name),
                            v.len()
                        ),
                    )
                }),
            }
        };
        let current = u64::from(envelope::FORMAT_VERSION);
        let oldest = u64::from(envelope::OLDEST_READABLE);
        match meta_u64(META_FORMAT)? {
            Some(found) if found == current => {}
            Some(found) if (oldest..current).contains(&found) => {
                // Migration: every value of an older readable version decodes as the
                // current one (`envelope::FORMAT_VERSION`), so the values stay as
                // they are; raising the marker, durably, is the whole migration.
                meta.insert(META_FORMAT, &current.to_be_bytes())
                    .map_err(sled_err)?;
                db.flush().map_err(sled_err)?;
                tracing::info!(
                    journal = %dir.display(),
                    from = found,
                    to = current,
                    "journal {} migrated from format {found} to {current}",
                    dir.display()
                );
            }
            Some(found) => {
                return Err(JournalError::UnsupportedVersion {
                    path: dir.to_path_buf(),
                    found: u16::try_from(found).unwrap_or(u16::MAX),
                    supported: envelope::FORMAT_VERSION,
                })
            }
            None => {
                meta.insert(META_FORMAT, &current.to_be_bytes())
                    .map_err(sled_err)?;
            }
        }

        // The newest record is where a torn write would show; decoding it catches a
        // damaged or future-format tail before anyone appends after it.
        let last = match log.last().map_err(sled_err)? {
            Some((k, v)) => block::decode(dir, &k, &v)?.last().map_or(0, |e| e.seq),
            None => 0,
        };
        let compacted = meta_u64(META_COMPACTED_THROUGH)?.unwrap_or(0);
        let highest = last.max(compacted);
        if let Some(acked) = marker::read(dir)? {
            if acked > highest {
                return Err(JournalError::corrupt(
                    dir,
                    format!(
                        "records up to seq {acked} were acknowledged, but the journal ends at \
                         seq {highest}: sled lost acknowledged records (move the journal directory aside to start afresh)"
                    ),
                ));
            }
        }
        let acked = AckMarker::open(dir, highest)?;
        let next_repair_id = meta_u64(META_NEXT_REPAIR)?.unwrap_or(1);
        let writer = Writer {
            next_seq: highest + 1,
            next_repair_id,
            appended: 0,
            flushes: 0,
            write_time: Duration::ZERO,
            flush_time: Duration::ZERO,
            states: HashMap::new(),
            poisoned: None,
        };
        Ok(Journal {
            path: dir.to_path_buf(),
            db,
            log,
            state,
            repairs,
            meta,
            listings,
            writer: Mutex::new(writer),
            queue: CommitQueue::default(),
            acked,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn sled_err(&self, e: sled::Error) -> JournalError {
        JournalError::from_sled(&self.path, e)
    }

    pub(crate) fn lock_writer(&self) -> Result<MutexGuard<'_, Writer>, JournalError> {
        self.writer.lock().map_err(|_| JournalError::Poisoned {
            path: self.path.clone(),
            detail: "a thread panicked while appending".to_string(),
        })
    }

    pub(crate) fn poisoned(&self, detail: String) -> JournalError {
        JournalError::Poisoned {
            path: self.path.clone(),
            detail,
        }
    }

    /// Highest seq handed out so far (0 for an empty journal). After compaction this
    /// record may be gone; the numbering still continues after it.
    pub fn last_seq(&self) -> Result<u64, JournalError> {
        Ok(self.lock_writer()?.next_seq.saturating_sub(1))
    }

    pub fn stats(&self) -> JournalStats {
        self.lock_writer()
            .map(|w| JournalStats {
                appended: w.appended,
                flushes: w.flushes,
                write_time: w.write_time,
                flush_time: w.flush_time,
            })
            .unwrap_or_default()
    }

    /// Bytes the journal's directory takes on disk.
    pub fn disk_size(&self) -> Result<u64, JournalError> {
        dir_size(&self.path).map_err(|e| JournalError::io(&self.path, e))
    }

    /// How far `state/log` was verified, if a mark stands (see [`StateLogMark`]).
    pub fn state_log_mark(&self) -> Result<Option<StateLogMark>, JournalError> {
        let got = shielded(&self.path, "read", || {
            self.meta.get(META_STATE_LOG).map_err(|e| self.sled_err(e))
        })?;
        let Some(v) = got else {
            return Ok(None);
        };
        envelope::decode(&v).map(Some).map_err(|e| {
            JournalError::corrupt(
                &self.path,
                format!("meta state_log_mark does not decode: {e}"),
            )
        })
    }

    pub fn segment_state(
        &self,
        segment: &SegmentKey,
    ) -> Result<Option<SegmentState>, JournalError> {
        shielded(&self.path, "read", || {
            let key = segment.to_bytes();
            match self.state.get(key).map_err(|e| self.sled_err(e))? {
                Some(v) => Ok(Some(decode_state(&self.path, &key, &v)?.1)),
                None => Ok(None),
            }
        })
    }

    /// Every segment the journal knows, in key order (partition, then start offset);
    /// deleted segments are listed until compaction forgets them.
    pub fn all_segment_states(&self) -> Result<Vec<(SegmentKey, SegmentState)>, JournalError> {
        self.states_where(|_| true)
    }

    /// Segments opened or caught mid-seal: where a crash can have left damage.
    pub fn segments_not_sealed(&self) -> Result<Vec<(SegmentKey, SegmentState)>, JournalError> {
        self.states_where(SegmentState::is_unsealed)
    }

    fn states_where(
        &self,
        keep: impl Fn(&SegmentState) -> bool,
    ) -> Result<Vec<(SegmentKey, SegmentState)>, JournalError> {
        shielded(&self.path, "read", || {
            let mut out = Vec::new();
            for item in self.state.iter() {
                let (k, v) = item.map_err(|e| self.sled_err(e))?;
                let (segment, state) = decode_state(&self.path, &k, &v)?;
                if keep(&state) {
                    out.push((segment, state));
                }
            }
            Ok(out)
        })
    }

    /// Repairs with an intent but neither `RepairDone` nor `RepairFailed`, by id.
    pub fn pending_repairs(&self) -> Result<Vec<PendingRepair>, JournalError> {
        shielded(&self.path, "read", || {
            let mut out = Vec::new();
            let mut runs = Vec::new();
            for item in self.repairs.iter() {
                let (k, v) = item.map_err(|e| self.sled_err(e))?;
                let bad = || JournalError::corrupt(&self.path, "malformed pending-repair entry");
                runs.push(Run::decode(&k, &v).ok_or_else(bad)?);
            }
            // A forged run is as long as it likes: each of its intents must be in the
            // log, so the walk stops at the first that is not. A run's intents share
            // blocks: each is decoded once.
            let mut block = Vec::new();
            for (id, seq) in runs.iter().flat_map(Run::repairs) {
                let missing = || {
                    JournalError::corrupt(
                        &self.path,
                        format!("pending repair r{id:08} points at missing record {seq}"),
                    )
                };
                let entry = self.entry_cached(seq, &mut block)?.ok_or_else(missing)?;
                match entry.record.clone() {
                    Record::RepairIntent {
                        repair,
                        action,
                        reason,
                    } if repair.0 == id => out.push(PendingRepair {
                        seq,
                        repair,
                        action,
                        reason,
                    }),
                    other => {
                        return Err(JournalError::corrupt(
                            &self.path,
                            format!(
                                "pending repair r{id:08} points at record {seq}, which is {}",
                                other.kind()
                            ),
                        ))
                    }
                }
            }
            Ok(out)
        })
    }

    /// When the records `seqs` were appended (microseconds since the Unix epoch), of
    /// those the log holds. Each block is decoded once however many of `seqs` it
    /// holds: checkpoints journaled in one commit round share a block, and asking
    /// for each one's record in turn decoded that block as many times.
    pub fn record_times(
        &self,
        seqs: impl IntoIterator<Item = u64>,
    ) -> Result<HashMap<u64, u64>, JournalError> {
        let mut wanted: Vec<u64> = seqs.into_iter().collect();
        wanted.sort_unstable();
        wanted.dedup();
        shielded(&self.path, "read", || {
            let mut times = HashMap::new();
            let mut rest = wanted.as_slice();
            while let Some(&seq) = rest.first() {
                let found = block::holding(&self.log, seq).map_err(|e| self.sled_err(e))?;
                let entries = match found {
                    Some((key, value)) => block::decode(&self.path, &key, &value)?,
                    None => Vec::new(),
                };
                let end = entries.last().map_or(seq, |e| e.seq.max(seq));
                for e in entries {
                    if rest.binary_search(&e.seq).is_ok() {
                        times.insert(e.seq, e.unix_micros);
                    }
                }
                rest = rest
                    .get(rest.partition_point(|s| *s <= end)..)
                    .unwrap_or(&[]);
            }
            Ok(times)
        })
    }

    /// Record `seq`, if the log holds it: from `block` (the entries of the block read
    /// last) when it holds `seq`, else from the block that does, which then replaces
    /// it.
    fn entry_cached<'b>(
        &self,
        seq: u64,
        block: &'b mut Vec<Entry>,
    ) -> Result<Option<&'b Entry>, JournalError> {
        let held = |b: &[Entry]| {
            b.first().is_some_and(|e| e.seq <= seq) && b.last().is_some_and(|e| e.seq >= seq)
        };
        if !held(block) {
            let found = block::holding(&self.log, seq).map_err(|e| self.sled_err(e))?;
            *block = match found {
                Some((key, value)) => block::decode(&self.path, &key, &value)?,
                None => Vec::new(),
            };
        }
        Ok(block.iter().find(|e| e.seq == seq))
    }

    /// Records with seq `>= from`, in order; `records_since(0)` reads everything.
    /// The iterator ends after the first error it yields.
    pub fn records_since(&self, from: u64) -> Records<'_> {
        // Start at the block that holds `from`, which may be keyed below it.
        let start = match block::holding(&self.log, from) {
            Ok(found) => found.and_then(|(key, _)| parse_u64(&key)).unwrap_or(from),
            Err(e) => {
                return Records {
                    path: &self.path,
                    from,
                    iter: None,
                    pending: vec![Err(self.sled_err(e))].into(),
                }
            }
        };
        Records {
            path: &self.path,
            from,
            iter: Some(self.log.range(seq_key(start)..)),
            pending: VecDeque::new(),
        }
    }
}

/// Iterator returned by [`Journal::records_since`].
pub struct Records<'a> {
    path: &'a Path,
    from: u64,
    iter: Option<sled::Iter>,
    /// The rest of the block being read (or an error to report).
    pending: VecDeque<Result<Entry, JournalError>>,
}

impl Iterator for Records<'_> {
    type Item = Result<Entry, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            let iter = self.iter.as_mut()?;
            let path = self.path;
            let block = shielded(path, "read", || match iter.next() {
                None => Ok(None),
                Some(Err(e)) => Err(JournalError::from_sled(path, e)),
                Some(Ok((k, v))) => block::decode(path, &k, &v).map(Some),
            });
            match block {
                Ok(Some(entries)) => {
                    let from = self.from;
                    self.pending
                        .extend(entries.into_iter().filter(|e| e.seq >= from).map(Ok));
                }
                Ok(None) => self.iter = None,
                Err(e) => {
                    self.iter = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Journal>();
}
