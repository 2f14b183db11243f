//! The journal writer: appends the core's records on a thread of its own.
//!
//! An append waits for sled's flush, and the core's own work (listing folders,
//! verifying segments) does not depend on it: the records describe what already
//! happened on disk. So the core hands its records over and carries on, and the two
//! overlap; under a burst of rotations that roughly doubles the events journaled per
//! second. Order is kept (one thread, one channel), and a crash can only lose a suffix
//! of records, which the next start-up reconciliation rewrites from the disk.
//!
//! Where durability matters the core asks for it with [`JournalWriter::sync`]: before
//! `READY=1`, before handing the journal to another process, and on shutdown. The
//! channel is bounded, so a journal slower than the events holds the core back rather
//! than letting memory grow. The first append error stops the writer; the core sees it
//! on its next hand-over or sync and stops too (a restart reconciles).

use crate::watch::status::Status;
use journal::{Journal, Record};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Records per `append_batch`: sled's transactions get slower per record past a few
/// hundred, and a smaller batch flushes more often.
const RECORDS_PER_BATCH: usize = 128;

/// Records per message to the writer; with [`QUEUE`] it bounds the records in flight
/// (a rescan of a large directory produces many at once).
pub const MESSAGE: usize = 512;

/// Messages the core may run ahead of the journal.
const QUEUE: usize = 16;

enum Msg {
    Records(Vec<Record>),
    Sync(SyncSender<()>),
}

pub struct JournalWriter {
    journal: Arc<Journal>,
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    error: Arc<Mutex<Option<String>>>,
}

impl JournalWriter {
    pub fn start(journal: Journal, status: Arc<Status>) -> anyhow::Result<Self> {
        let journal = Arc::new(journal);
        let error = Arc::new(Mutex::new(None));
        let (tx, rx) = sync_channel(QUEUE);
        let thread = {
            let (journal, error) = (journal.clone(), error.clone());
            std::thread::Builder::new()
                .name("warden-journal".into())
                .spawn(move || write_loop(&journal, &rx, &error, &status))?
        };
        Ok(Self {
            journal,
            tx: Some(tx),
            thread: Some(thread),
            error,
        })
    }

    /// The journal, for reads and compaction (appends go through [`Self::send`]).
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    fn failed(&self) -> anyhow::Result<()> {
        match self.error.lock().map(|e| e.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(e)) => {
                anyhow::bail!("cannot write the journal: {e}; stopping (a restart reconciles)")
            }
            Err(_) => anyhow::bail!("the journal writer panicked"),
        }
    }

    /// Queues records for appending, in order; blocks while the queue is full.
    pub fn send(&self, mut records: Vec<Record>) -> anyhow::Result<()> {
        self.failed()?;
        while !records.is_empty() {
            let rest = records.split_off(records.len().min(MESSAGE));
            let sent = self
                .tx
                .as_ref()
                .is_some_and(|tx| tx.send(Msg::Records(records)).is_ok());
            if !sent {
                self.failed()?;
                anyhow::bail!("the journal writer stopped");
            }
            records = rest;
        }
        Ok(())
    }

    /// Waits until everything sent so far is appended and flushed.
    pub fn sync(&self) -> anyhow::Result<()> {
        let (done_tx, done_rx) = sync_channel(1);
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Sync(done_tx)).is_ok());
        if !sent || done_rx.recv().is_err() {
            self.failed()?;
            anyhow::bail!("the journal writer stopped");
        }
        self.failed()
    }

    /// Appends what is queued, stops the thread and closes the journal.
    pub fn close(mut self) -> anyhow::Result<()> {
        let synced = self.sync();
        self.shutdown();
        synced
    }

    fn shutdown(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_loop(
    journal: &Journal,
    rx: &Receiver<Msg>,
    error: &Mutex<Option<String>>,
    status: &Status,
) {
    let mut pending: Vec<Record> = Vec::new();
    let mut waiters: Vec<SyncSender<()>> = Vec::new();
    while let Ok(first) = rx.recv() {
        // Take whatever else is queued: bigger batches, fewer flushes.
        let mut next = Some(first);
        while let Some(msg) = next.take().or_else(|| rx.try_recv().ok()) {
            match msg {
                Msg::Records(r) => pending.extend(r),
                Msg::Sync(w) => waiters.push(w),
            }
            if pending.len() >= RECORDS_PER_BATCH * 4 {
                break;
            }
        }
        let mut rest = std::mem::take(&mut pending);
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(RECORDS_PER_BATCH));
            let n = rest.len() as u64;
            let started = std::time::Instant::now();
            let appended = journal.append_batch(rest);
            status.metrics.journal_flushed(started.elapsed());
            if let Err(e) = appended {
                tracing::error!("cannot append to the journal: {e}");
                if let Ok(mut slot) = error.lock() {
                    *slot = Some(e.to_string());
                }
                // Waiters learn of the error through the dropped channel.
                return;
            }
            Status::add(&status.journaled, n);
            rest = tail;
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}
