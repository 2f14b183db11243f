//! Whether a segment can be sealed, and the facts its `Sealed` record keeps.
//!
//! Sealing asks the tracker's question at the end of a segment's life: did the scan
//! reach the end of the log exactly, and does the index hold one entry per message and
//! no more? Then the last message is recorded too (read back when the tracker resumed
//! from a checkpoint and never saw it), so that recovery can trust the segment later
//! with one small read instead of a scan.

use super::{
    index_path, log_path, read_entry, Advance, LastMessage, SealCheck, SealFacts, Tracker,
};
use journal::SegmentKey;
use recovery::index::ENTRY_LEN;
use recovery::read_back::{read_back_message, Proof};
use recovery::scan::ScanBuffer;
use std::io;
use std::path::Path;

impl Tracker {
    /// The `Sealed` facts when the segment is complete: the scan reached the end of the
    /// log and the index has exactly one entry per message.
    pub fn seal_check(&mut self, dir: &Path, scratch: &mut ScanBuffer) -> io::Result<SealCheck> {
        let out = self.advance(dir, scratch)?;
        match out.advance {
            Advance::UpToDate => {}
            Advance::Partial => return Ok(SealCheck::Partial),
            Advance::Gone => return Ok(SealCheck::NotYet("the log is gone".into())),
            Advance::Waiting(why) | Advance::Anomaly(why) => return Ok(SealCheck::NotYet(why)),
            Advance::Stalled => {
                return Ok(SealCheck::NotYet(
                    self.anomaly.as_deref().unwrap_or_default().to_string(),
                ));
            }
        }
        let Some(index_len) = out.index_len else {
            return Ok(SealCheck::NotYet("the index file is missing".into()));
        };
        let expected = self.messages() * ENTRY_LEN as u64;
        if index_len != expected {
            return Ok(SealCheck::NotYet(format!(
                "index has {index_len} bytes for {} messages ({expected} expected)",
                self.messages()
            )));
        }
        if self.last.is_none() && self.messages() > 0 {
            match read_last_message(dir, &self.key, self.messages(), self.pos)? {
                Some(last) => self.last = Some(last),
                None => {
                    return Ok(SealCheck::NotYet(
                        "the last message does not match its index entries".into(),
                    ))
                }
            }
        }
        Ok(SealCheck::Complete(SealFacts {
            log_len: self.pos,
            index_len,
            last: self.last,
        }))
    }
}

/// Reads back the last of `count` messages ending at `end`, using the index to find
/// where it starts; `None` when frame, index and checksum disagree.
fn read_last_message(
    dir: &Path,
    key: &SegmentKey,
    count: u64,
    end: u64,
) -> io::Result<Option<LastMessage>> {
    let index = recovery::fsops::open_read(&index_path(dir, key))?;
    let start = if count >= 2 {
        u64::from(read_entry(&index, count - 2)?.position)
    } else {
        0
    };
    let Some(offset) = key.start_offset.checked_add(count - 1) else {
        return Ok(None);
    };
    let mut log = recovery::fsops::open_read(&log_path(dir, key))?;
    let last = read_back_message(&mut log, start, end, offset, Proof::ValidFrame)?;
    Ok(last.map(|m| LastMessage {
        offset: m.offset,
        checksum: m.checksum,
        start: m.start,
    }))
}
