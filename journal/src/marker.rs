//! The acknowledged-seq marker: a 26-byte file beside sled's files.
//!
//! sled 0.34, given a truncated or zero-filled log, silently recovers an older
//! consistent state: acknowledged records vanish and nothing says so. After each
//! successful flush the leader overwrites this file with the highest seq the flush
//! covered (an envelope of the seq, so damage to the marker itself is detected). On
//! open, a journal that ends before the marker is reported `Corrupt`.
//!
//! The marker is written without fsync: it is a lower bound. A process crash keeps it
//! (the page cache survives); a power cut may leave an older value, which only makes
//! the check weaker, never wrong, because the marker is written after sled's flush.
//! It is overwritten in place at a fixed size, never truncated, so it cannot be seen
//! empty. A missing marker (a new journal) proves nothing and is accepted.

use crate::envelope;
use crate::error::JournalError;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

pub(crate) const FILE_NAME: &str = "acked_seq";

/// Reads the marker in `dir`: `None` when there is none.
pub(crate) fn read(dir: &Path) -> Result<Option<u64>, JournalError> {
    let path = dir.join(FILE_NAME);
    let bytes = match read_small(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io(dir, e)),
    };
    let seq: [u8; 8] = envelope::decode(&bytes)
        .map_err(|e| JournalError::from_envelope(dir, "acknowledged-seq marker", e))?;
    Ok(Some(u64::from_be_bytes(seq)))
}

/// The marker is one small envelope: more than this is not a marker, and is not read
/// whole.
const MAX_LEN: u64 = 4096;

fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    File::open(path)?.take(MAX_LEN).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[derive(Debug)]
struct Written {
    file: File,
    seq: u64,
}

/// Writer of the marker; only the journal's lock holder has one.
#[derive(Debug)]
pub(crate) struct AckMarker {
    written: Mutex<Written>,
}

impl AckMarker {
    pub(crate) fn open(dir: &Path, seq: u64) -> Result<Self, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(FILE_NAME))
            .map_err(|e| JournalError::io(dir, e))?;
        let marker = AckMarker {
            written: Mutex::new(Written { file, seq: 0 }),
        };
        marker.record(seq).map_err(|e| JournalError::io(dir, e))?;
        Ok(marker)
    }

    /// Notes that every seq up to `seq` is durable.
    pub(crate) fn record(&self, seq: u64) -> std::io::Result<()> {
        let mut w = self
            .written
            .lock()
            .map_err(|_| std::io::Error::other("marker lock poisoned"))?;
        if seq <= w.seq && w.seq != 0 {
            return Ok(());
        }
        let bytes = envelope::encode(&seq.to_be_bytes()).map_err(std::io::Error::other)?;
        w.file.seek(SeekFrom::Start(0))?;
        w.file.write_all(&bytes)?;
        w.seq = seq;
        Ok(())
    }
}
