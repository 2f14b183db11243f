//! The core's loop: how it waits for work, what one turn does, and how it stops.
//!
//! Kept apart from the core's state (`mod.rs`) because this is the one place that
//! decides *when* things happen — deadlines, coalescing, ticks, READY — while the
//! rest of the core's modules say *what* happens. Tests drive the same methods the
//! loop calls (`handle_fs`, `tick_now`, ...) without running it, so the loop stays a
//! thin schedule over them.

use super::{Core, CoreEvent};
use crate::watch::events::{Command, Inbox};
use crate::watch::status::Status;
use crate::watch::writer::JournalWriter;
use std::time::{Duration, Instant};

/// After waking for new work, the core waits this long for more to gather: a burst
/// of rotations is then handled in a few turns rather than one wake-up per file.
const COALESCE: Duration = Duration::from_millis(2);

/// Records journaled in a burst after which, once idle, freed memory is handed back.
const TRIM_AFTER: u64 = 10_000;

/// Gives the memory a full reconciliation used for a moment (listings, records in
/// flight) back to the system: glibc keeps freed blocks inside its arenas otherwise,
/// and a sidecar's resident size should be what it needs while watching.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Core {
    /// Runs until stopped; `Ok` after a clean stop with everything flushed.
    pub fn run(mut self) -> anyhow::Result<()> {
        let result = self.run_inner();
        // Whatever happened, what was decided is worth keeping.
        if self.journal.is_some() {
            self.checkpoint_all();
            let closed = self
                .flush()
                .and_then(|()| self.journal.take().map_or(Ok(()), JournalWriter::close));
            if let Err(e) = closed {
                if result.is_ok() {
                    return Err(e);
                }
                tracing::error!("cannot flush the journal while stopping: {e:#}");
            }
        }
        result
    }

    fn run_inner(&mut self) -> anyhow::Result<()> {
        self.status.beat();
        if !self.full_reconcile("start-up")? {
            // Interrupted: the loop below handles the command and reconciles again.
            self.shared
                .post(|i| i.rescan = Some("start-up (interrupted)".into()));
        }
        self.flush()?;
        let mut announced = false;
        loop {
            self.status.beat();
            if !announced && self.reconciled {
                announced = true;
                // READY promises the reconciliation is in the journal, durably.
                self.sync()?;
                self.status
                    .ready
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = self.events.send(CoreEvent::Ready);
            }
            let inbox = self.take_inbox();
            if let Some(fatal) = inbox.fatal {
                anyhow::bail!(fatal);
            }
            self.handle_fs(inbox.rescan, inbox.dirs, inbox.partitions, inbox.written)?;
            for command in inbox.commands {
                match command {
                    Command::Release(reply) => {
                        if self.release(reply)? {
                            return Ok(());
                        }
                    }
                    Command::Resume => {}
                    Command::Rescan => {
                        if !self.full_reconcile("requested on the control socket")? {
                            self.shared.post(|i| {
                                i.rescan.get_or_insert("requested (interrupted)".into());
                            });
                        }
                    }
                    Command::Tick(reply) => {
                        self.tick_now()?;
                        let _ = reply.send(());
                    }
                }
            }
            if inbox.stop {
                return Ok(());
            }
            self.seal_due()?;
            let now = Instant::now();
            if now >= self.next_verify {
                let counts = now >= self.next_stall_count;
                if counts {
                    self.next_stall_count = now + self.settings.checkpoint_interval;
                }
                self.begin_verify_pass(counts);
                let backlog = self.verify_dirty();
                if !backlog {
                    self.end_verify_pass();
                }
                self.next_verify = if backlog {
                    Instant::now()
                } else {
                    Instant::now() + self.settings.verify_interval
                };
            }
            if now >= self.next_checkpoint {
                self.checkpoint_all();
                self.check_state_log();
                self.stamp_due();
                self.next_checkpoint = Instant::now() + self.settings.checkpoint_interval;
            }
            // After the turn's verification of written segments; the pass has a rate
            // of its own (and the inbox deadline counts on it running when due).
            self.cover();
            self.flush()?;
            self.maybe_compact();
            self.publish();
            self.metrics_tick();
        }
    }

    /// Waits for work (or the next deadline) and takes the inbox.
    fn take_inbox(&mut self) -> Inbox {
        let now = Instant::now();
        // Writes do not wake the core: the verification tick is always a deadline.
        let mut deadline = (now + self.settings.beat_every).min(self.next_verify);
        if let Some(due) = self.coverage.due(now) {
            deadline = deadline.min(due);
        }
        if self.work.has_checkpoints() {
            deadline = deadline.min(self.next_checkpoint);
        }
        for seal in self.work.sealing().filter_map(|k| self.model.sealing(k)) {
            if seal.pending() {
                deadline = deadline.min(seal.next_try);
            }
        }
        let idle = self.work.verify_backlog() == 0
            && self.sealing_pending() == 0
            && self.coverage.is_done();
        if idle && self.since_trim >= TRIM_AFTER {
            // A burst is over: hand its transient memory back.
            self.since_trim = 0;
            release_freed_memory();
        }
        let timeout = deadline.saturating_duration_since(now);
        // Only claims what the core itself holds; the control socket adds the inbox.
        self.status
            .idle
            .store(idle, std::sync::atomic::Ordering::Relaxed);
        let mut guard = if timeout.is_zero() {
            self.shared.lock()
        } else {
            let guard = self.shared.wait(timeout);
            if guard.has_fs_work() && guard.commands.is_empty() && !guard.stop {
                drop(guard);
                std::thread::sleep(COALESCE);
                self.shared.lock()
            } else {
                guard
            }
        };
        let inbox = std::mem::take(&mut *guard);
        drop(guard);
        self.status
            .idle
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Status::add(&self.status.events, inbox.events_seen);
        Status::add(&self.status.overflows, inbox.overflows);
        inbox
    }
}
