//! The new `state/log` of a drop of entries 0.6.0 cannot read back
//! (`RepairAction::DropStateLogEntries`), written beside the log before it is swapped
//! in.

use super::error::{io_err, ExecError};
use super::Executor;
use crate::fsops::file_digest;
use crate::state_log::without_entries;
use crate::work_names::{work_path, TEMPORARY};
use journal::{ByteRange, RepairId};
use std::io::Read;
use std::path::{Path, PathBuf};

impl Executor<'_> {
    /// Writes the range `kept` of `path` without its entries at the byte offsets
    /// `entries` (renumbered and resealed after them) into a temporary file beside it
    /// (fsynced), checks it is the `(length, XXH3)` planned, and returns its path.
    pub(super) fn write_state_log_without(
        &self,
        id: RepairId,
        path: &Path,
        kept: ByteRange,
        entries: &[u64],
        planned: (u64, u64),
    ) -> Result<PathBuf, ExecError> {
        let mut bytes = Vec::new();
        self.fs
            .open_read(path)
            .and_then(|f| f.take(kept.end).read_to_end(&mut bytes))
            .map_err(io_err(path))?;
        let new = without_entries(&bytes, entries).map_err(|why| ExecError::Changed {
            repair: id,
            path: path.to_path_buf(),
            expected: format!(
                "a state/log of whole, verified entries, {} of them to drop",
                entries.len()
            ),
            found: why,
        })?;
        let tmp = work_path(path, TEMPORARY);
        self.fs
            .write_file(&tmp, &mut |w| w.write_all(&new))
            .map_err(io_err(&tmp))?;
        let written = file_digest(self.fs, &tmp).map_err(io_err(&tmp))?;
        if written != Some(planned) {
            let _ = self.fs.remove_file(&tmp);
            return Err(ExecError::Changed {
                repair: id,
                path: path.to_path_buf(),
                expected: format!(
                    "a state/log that is {} bytes, XXH3 {:#018x}, without those entries",
                    planned.0, planned.1
                ),
                found: format!("{} bytes differing from the plan", new.len()),
            });
        }
        Ok(tmp)
    }
}
