//! From inotify events to the sidecar's work list, coalesced.
//!
//! notify 8 reports one event per write, and a busy server writes thousands of times
//! a second. The handler (called on notify's own thread) therefore does not queue
//! events: it folds them into sets in the [`Inbox`] — which partitions had segment
//! files created, removed or renamed, which segments were written, which folders
//! appeared or vanished — so a burst of writes to one segment is one entry, memory is
//! bounded by the directory's shape, and nothing is ever dropped. The core treats every
//! entry as "look again at this", never as a fact: it re-reads the disk, so the order
//! and number of events do not matter.
//!
//! Folding makes an event cheap, but waking notify's thread for each one is not: on a
//! virtual machine the wake-up costs several times the folding. So when a write event
//! wakes the thread (rather than arriving right behind another event), the handler
//! pauses for [`WRITE_PAUSE`] before returning: the writes of those milliseconds queue
//! up in the kernel and are drained in one go ([`Pacer`]). Nothing is lost (inotify
//! queues 16,384 events by default, and an overflow is a rescan), and events reach
//! the core at most that much later, where writes wait for the one-second
//! verification tick anyway.
//!
//! What cannot be folded is a gap: an inotify queue overflow (notify's rescan flag), or
//! a watcher error. Those set [`Inbox::rescan`], and the core reconciles everything.
//! Hitting `fs.inotify.max_user_watches` is fatal and says so.
//!
//! The inbox also carries the commands of the supervisor (stop, release the journal,
//! resume, rescan), so that the core waits on one condition variable for everything.

use crate::watch::place::{classify, Place};
use journal::{PartitionId, SegmentKey};
use notify::event::{EventKind, ModifyKind};
use recovery::names::escaped;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long notify's thread pauses after a write event that woke it.
pub const WRITE_PAUSE: Duration = Duration::from_millis(10);

/// An event that arrives this soon after the handler returned was already queued: the
/// thread is draining a backlog, not woken for it.
const QUEUED_WITHIN: Duration = Duration::from_micros(500);

/// Decides when notify's thread pauses so that writes are drained in batches.
#[derive(Debug, Default)]
pub struct Pacer {
    last_return: Option<Instant>,
}

impl Pacer {
    /// The pause before the handler returns from an event that began at `began` and
    /// was (`wrote`) or was not a write.
    pub fn pause(&self, began: Instant, wrote: bool) -> Option<Duration> {
        let woken = self
            .last_return
            .is_none_or(|r| began.saturating_duration_since(r) > QUEUED_WITHIN);
        (wrote && woken).then_some(WRITE_PAUSE)
    }

    pub fn returned(&mut self, at: Instant) {
        self.last_return = Some(at);
    }
}

/// The sysctl that limits inotify watches per user; named in the error.
pub const MAX_WATCHES_SYSCTL: &str = "fs.inotify.max_user_watches";

pub fn max_watches_message(path: Option<&Path>) -> String {
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "cannot watch {}: the inotify watch limit is reached ({MAX_WATCHES_SYSCTL} = {limit}); \
         raise it, e.g. `sysctl -w {MAX_WATCHES_SYSCTL}=524288` (and in /etc/sysctl.d/ to keep it)",
        path.map_or_else(|| "a new folder".to_string(), |p| escaped(p).to_string())
    )
}

/// A request from the supervisor to the core.
#[derive(Debug)]
pub enum Command {
    /// Flush and close the journal, then answer on the channel.
    Release(oneshot::Sender<()>),
    /// The lease holder is gone: reopen the journal and reconcile.
    Resume,
    /// Reconcile the whole directory (operator request).
    Rescan,
    /// Run one checkpoint interval's work now — list the known partitions, verify
    /// every open segment and the seals due, count the pass for stalled writes,
    /// checkpoint, flush — then answer on the channel. Lets tests drive the
    /// sidecar's clock.
    Tick(oneshot::Sender<()>),
}

/// Work folded from events and commands; the core takes it whole.
#[derive(Debug, Default)]
pub struct Inbox {
    /// Folders of the stream/topic/partition hierarchy created, removed or moved.
    pub dirs: BTreeSet<PathBuf>,
    /// Partitions whose segment files were created, removed or renamed.
    pub partitions: BTreeSet<PartitionId>,
    /// Segments whose `.log` or `.index` was written.
    pub written: HashSet<SegmentKey>,
    /// Why a full reconciliation is needed, when it is.
    pub rescan: Option<String>,
    /// An error the sidecar cannot go on from.
    pub fatal: Option<String>,
    pub commands: Vec<Command>,
    pub stop: bool,
    /// Events the handler saw (for status and benchmarks).
    pub events_seen: u64,
    /// Gaps the handler saw: queue overflows and watcher errors.
    pub overflows: u64,
}

impl Inbox {
    pub fn has_fs_work(&self) -> bool {
        !self.dirs.is_empty()
            || !self.partitions.is_empty()
            || !self.written.is_empty()
            || self.rescan.is_some()
    }

    /// Whether the core should wake now. Writes alone do not count: the checkpoint
    /// tick collects them, so a busy server does not cost a wake-up per write.
    fn has_urgent(&self) -> bool {
        !self.dirs.is_empty()
            || !self.partitions.is_empty()
            || self.rescan.is_some()
            || self.fatal.is_some()
            || !self.commands.is_empty()
            || self.stop
    }

    /// Drops the file-system work (a full reconciliation is about to cover it).
    pub fn clear_fs_work(&mut self) {
        self.dirs.clear();
        self.partitions.clear();
        self.written.clear();
        self.rescan = None;
    }
}

/// The inbox and the condition variable the core sleeps on.
#[derive(Debug, Default)]
pub struct Shared {
    inbox: Mutex<Inbox>,
    wake: Condvar,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The inbox, even if a thread panicked while holding it: its sets stay usable.
    pub fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the inbox and wakes the core.
    pub fn post(&self, f: impl FnOnce(&mut Inbox)) {
        f(&mut self.lock());
        self.wake.notify_one();
    }

    pub fn command(&self, c: Command) {
        self.post(|i| i.commands.push(c));
    }

    pub fn stop(&self) {
        self.post(|i| i.stop = true);
    }

    /// Waits until the inbox holds something or `timeout` passes; returns the guard.
    pub fn wait(&self, timeout: Duration) -> MutexGuard<'_, Inbox> {
        let guard = self.lock();
        if guard.has_urgent() {
            return guard;
        }
        match self
            .wake
            .wait_timeout_while(guard, timeout, |i| !i.has_urgent())
        {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Whether a command or a stop is waiting: long work checks this to yield.
    pub fn interrupted(&self) -> bool {
        let i = self.lock();
        i.stop || !i.commands.is_empty() || i.fatal.is_some()
    }
}

/// notify's event handler: folds events into the inbox.
pub struct Handler {
    pub root: PathBuf,
    pub shared: Arc<Shared>,
    pub pacer: Pacer,
}

impl notify::EventHandler for Handler {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        let began = Instant::now();
        // Any write counts, the server's own log files' too: each one wakes the thread.
        let wrote =
            matches!(&event, Ok(e) if matches!(e.kind, EventKind::Modify(ModifyKind::Data(_))));
        self.fold(event);
        if let Some(pause) = self.pacer.pause(began, wrote) {
            std::thread::sleep(pause);
        }
        self.pacer.returned(Instant::now());
    }
}

impl Handler {
    pub fn new(root: PathBuf, shared: Arc<Shared>) -> Self {
        Self {
            root,
            shared,
            pacer: Pacer::default(),
        }
    }

    /// Folds one event into the inbox.
    fn fold(&mut self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                let fatal = matches!(e.kind, notify::ErrorKind::MaxFilesWatch);
                let msg = if fatal {
                    max_watches_message(e.paths.first().map(PathBuf::as_path))
                } else {
                    format!("the watcher reported an error: {e}")
                };
                self.shared.post(|i| {
                    if fatal {
                        i.fatal = Some(msg);
                    } else {
                        i.overflows += 1;
                        i.rescan.get_or_insert(msg);
                    }
                });
                return;
            }
        };
        if event.need_rescan() {
            self.shared.post(|i| {
                i.events_seen += 1;
                i.overflows += 1;
                i.rescan
                    .get_or_insert_with(|| "the inotify queue overflowed".to_string());
            });
            return;
        }
        let written = match event.kind {
            // Our own reads and the server's opens: nothing changed.
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => return,
            EventKind::Modify(ModifyKind::Data(_)) => true,
            _ => false,
        };
        let mut places = Vec::with_capacity(event.paths.len());
        for path in &event.paths {
            match classify(&self.root, path) {
                Place::Other => {}
                place => places.push((place, path)),
            }
        }
        if places.is_empty() {
            return;
        }
        let mut inbox = self.shared.lock();
        inbox.events_seen += 1;
        let urgent = !written;
        for (place, path) in places {
            match place {
                Place::Segment(key) if written => {
                    inbox.written.insert(key);
                }
                Place::Segment(key) => {
                    inbox.partitions.insert(key.partition);
                }
                // A watched folder itself vanished or moved: its watch is gone.
                Place::Root => {
                    inbox.rescan.get_or_insert_with(|| {
                        "the data directory itself was removed or moved".to_string()
                    });
                }
                Place::Hierarchy | Place::Partition(_) if !written => {
                    inbox.dirs.insert(path.clone());
                }
                _ => {}
            }
        }
        drop(inbox);
        if urgent {
            self.shared.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_write_that_woke_the_thread_pauses_it() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        // The first event woke the thread: a write pauses, anything else does not.
        assert_eq!(pacer.pause(t0, true), Some(WRITE_PAUSE));
        assert_eq!(pacer.pause(t0, false), None);
        pacer.returned(t0 + WRITE_PAUSE);
        // Events queued during the pause arrive right behind each other: no pause.
        let drained = t0 + WRITE_PAUSE + Duration::from_micros(5);
        assert_eq!(pacer.pause(drained, true), None);
        pacer.returned(drained);
        // The next write after a quiet spell woke the thread again.
        let later = drained + Duration::from_millis(3);
        assert_eq!(pacer.pause(later, true), Some(WRITE_PAUSE));
        assert_eq!(pacer.pause(later, false), None);
    }

    #[test]
    fn writes_coalesce_and_overflow_asks_for_a_rescan() {
        use notify::EventHandler;
        let shared = Shared::new();
        let mut h = Handler::new(PathBuf::from("/d"), shared.clone());
        let log = PathBuf::from("/d/streams/0/topics/0/partitions/0/00000000000000000000.log");
        for _ in 0..1000 {
            h.handle_event(Ok(notify::Event::new(EventKind::Modify(ModifyKind::Data(
                notify::event::DataChange::Any,
            )))
            .add_path(log.clone())));
        }
        h.handle_event(Ok(notify::Event::new(EventKind::Create(
            notify::event::CreateKind::File,
        ))
        .add_path(log.clone())));
        {
            let i = shared.lock();
            assert_eq!(i.written.len(), 1);
            assert_eq!(i.partitions.len(), 1);
            assert!(i.rescan.is_none());
        }
        h.handle_event(Ok(
            notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan)
        ));
        assert!(shared.lock().rescan.is_some());
        h.handle_event(Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch)));
        assert!(shared
            .lock()
            .fatal
            .as_deref()
            .is_some_and(|m| m.contains(MAX_WATCHES_SYSCTL)));
    }
}
