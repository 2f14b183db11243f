//! Journal handover between the sidecar and the one-shot commands.
//!
//! sled lets one process open a journal at a time, and the sidecar (`watch`) keeps it
//! open while iggy-server runs. `recover` runs as iggy-server's `ExecStartPre` while the
//! sidecar runs, so it asks the sidecar (over `<state dir>/sidecar.sock`) to flush and
//! close the journal, and hands it back by closing the connection.
//!
//! (Stub: the sidecar side is being written; with no sidecar, there is nothing to ask.)

use std::path::Path;

/// Held while the sidecar has released the journal; dropping it hands the journal back.
pub struct JournalLease;

/// Asks a running sidecar to release the journal. `Ok(None)` when no sidecar listens.
pub fn request_journal(_state_dir: &Path) -> anyhow::Result<Option<JournalLease>> {
    Ok(None)
}
