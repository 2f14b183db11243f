//! Lending the journal to another iggy-warden command (`recover` while the sidecar
//! runs; see `handover.rs`): close it, wait for the lease to end, take it back and
//! reconcile in full, since events during the lease were not journaled.

use crate::handover;
use crate::journal_open::{self, Access};
use crate::watch::core::{Core, REOPEN_TIMEOUT};
use crate::watch::events::Command;
use crate::watch::reconcile::Model;
use crate::watch::writer::JournalWriter;
use std::time::{Duration, Instant};

impl Core {
    /// Hands the journal over: final checkpoints, flush, close, answer, then wait for
    /// the lease to end; reopen and reconcile. `Ok(true)` when told to stop meanwhile.
    pub(super) fn release(
        &mut self,
        reply: tokio::sync::oneshot::Sender<()>,
    ) -> anyhow::Result<bool> {
        self.checkpoint_all();
        self.flush()?;
        // `recover` refuses to change files another process holds open.
        self.open_files.clear();
        if let Some(journal) = self.journal.take() {
            journal.close()?;
        }
        let journal_dir = self.settings.state_dir.join(journal_open::JOURNAL_DIR);
        if !handover::wait_journal_unlocked(&journal_dir, Duration::from_secs(5)) {
            tracing::warn!("the journal's lock is still held 5 s after closing it");
        }
        self.status
            .released
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!("journal released to another iggy-warden command");
        let _ = reply.send(());
        let mut stopped = false;
        loop {
            self.status.beat();
            let mut inbox = self.shared.wait(self.settings.beat_every);
            if inbox.stop {
                stopped = true;
                break;
            }
            if let Some(fatal) = inbox.fatal.take() {
                anyhow::bail!(fatal);
            }
            let commands = std::mem::take(&mut inbox.commands);
            // Events pile up in the sets meanwhile; the reconciliation below covers them.
            drop(inbox);
            let mut resumed = false;
            for c in commands {
                match c {
                    Command::Resume => resumed = true,
                    // Already released: nothing to wait for.
                    Command::Release(r) => {
                        let _ = r.send(());
                    }
                    Command::Rescan => {}
                    // Nothing to verify while the journal is lent.
                    Command::Tick(r) => {
                        let _ = r.send(());
                    }
                }
            }
            if resumed {
                break;
            }
        }
        self.status
            .released
            .store(false, std::sync::atomic::Ordering::Relaxed);
        if stopped {
            return Ok(true);
        }
        self.reopen()?;
        if !self.full_reconcile("journal handed back")? {
            self.shared.post(|i| {
                i.rescan
                    .get_or_insert("journal handed back (interrupted)".into());
            });
        }
        Ok(false)
    }

    /// Takes the journal back, by the one rule of `journal_open.rs`: a journal the
    /// lease holder left unusable is moved aside and a fresh one started, which the
    /// full reconciliation then fills.
    fn reopen(&mut self) -> anyhow::Result<()> {
        let journal_dir = self.settings.state_dir.join(journal_open::JOURNAL_DIR);
        let deadline = Instant::now() + REOPEN_TIMEOUT;
        // The client's lock outlives its connection by a moment.
        while !handover::wait_journal_unlocked(&journal_dir, Duration::from_millis(50))
            && Instant::now() < deadline
        {
            self.status.beat();
        }
        let mut opened = journal_open::open(&self.settings.state_dir, Access::Own)?;
        let model = Model::from_states(opened.load_states()?);
        let Some(journal) = opened.take() else {
            anyhow::bail!("internal: the sidecar's journal was not opened");
        };
        self.journal = Some(JournalWriter::start(journal, self.status.clone())?);
        self.model = model;
        self.work.forget_all();
        tracing::info!("journal taken back");
        // The lease holder may have repaired partitions: their alerts are over.
        self.load_alerts();
        Ok(())
    }
}
