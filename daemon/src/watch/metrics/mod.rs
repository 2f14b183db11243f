//! The sidecar's metrics: what it exports and when (see `crate::metrics` for the
//! encoding, the endpoint and the textfile).
//!
//! - The core computes the checkpoint lag and coverage from its model once per
//!   metrics interval ([`Core::metrics_tick`], called every turn of its loop): one
//!   `stat` of each open segment's `.log`, nothing read.
//! - The exporter thread (`warden-metrics`) refreshes what lives in files once per
//!   interval — `last-recover.json`, the sizes of the quarantine and the journal —
//!   and writes the textfile.
//! - The endpoint, on the supervisor's runtime, encodes on each scrape from the
//!   `Status` counters and the latest of the above; every series is named in
//!   `series.rs`.
//!
//! Everything here only reads: the data directory through `stat`, the state
//! directory through listings and the recover record.

mod series;

use crate::metrics::exposition::{render, Format};
use crate::metrics::recover_result;
use crate::metrics::{self, dir_size, DirSize, LagSnapshot, SegmentBytes, Settings};
use crate::watch::core::Core;
use crate::watch::reconcile::Phase;
use crate::watch::status::Status;
use crate::watch::tracker::log_path;
use recovery::names::escaped;
use series::{registry, FileFacts};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The quarantine is walked again after this long even when its folder did not
/// change (a repair adds a folder, which changes it).
const QUARANTINE_REWALK: Duration = Duration::from_secs(60);

impl Core {
    /// Publishes the checkpoint lag and coverage when metrics are on and one is due.
    pub(super) fn metrics_tick(&mut self) {
        let Some(top) = self.status.metrics.lag_due(Instant::now()) else {
            return;
        };
        let data_dir = &self.settings.data_dir;
        let segments = self.model.partitions.iter_mut().flat_map(|(pid, part)| {
            let dir = data_dir.join(pid.rel_dir());
            let pid = *pid;
            part.segments.iter_mut().map(move |(start, phase)| {
                let on_disk = || {
                    std::fs::metadata(log_path(&dir, &pid.segment(*start))).map_or(0, |m| m.len())
                };
                let (disk, vouched) = match phase {
                    Phase::Sealed { log_len, .. } => (*log_len, *log_len),
                    Phase::Open(t) => (on_disk(), t.checkpointed),
                    Phase::Sealing(s) => (on_disk(), s.tracker.checkpointed),
                };
                SegmentBytes {
                    partition: pid,
                    disk,
                    vouched,
                }
            })
        });
        let snapshot = LagSnapshot::build(top, segments);
        self.status.metrics.publish_lag(snapshot);
    }
}

/// The running exporter: the refresh thread, and the endpoint's task on the
/// supervisor's runtime. Dropping it stops the thread.
pub struct Exporter {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    /// Starts exporting. A listener that cannot be bound is logged, and the sidecar
    /// goes on without it: its journal matters more than its metrics.
    pub fn start(
        settings: &Settings,
        state_dir: &Path,
        status: Arc<Status>,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<Self> {
        status.metrics.enable(settings);
        let files = Arc::new(Mutex::new(FileFacts::default()));
        let registry = Arc::new(registry(status, files.clone()));
        let render: metrics::http::Render = Arc::new(move |f| render(&registry, f));
        if let Some(addr) = settings.listen {
            match runtime.block_on(tokio::net::TcpListener::bind(addr)) {
                Ok(listener) => {
                    let local = listener.local_addr().unwrap_or(addr);
                    tracing::info!(listen = %local, "serving metrics on http://{local}/metrics");
                    runtime.spawn(metrics::http::serve(listener, render.clone()));
                }
                Err(e) => tracing::error!(
                    listen = %addr,
                    "cannot listen for metrics on {addr}: {e}; metrics are not served over \
                     HTTP (under systemd, the unit needs the opt-in drop-in \
                     metrics-listen.conf); the sidecar goes on"
                ),
            }
        }
        let (stop, stopped) = std::sync::mpsc::channel();
        let mut refresher = Refresher {
            state_dir: state_dir.to_path_buf(),
            textfile: settings.textfile.clone(),
            files,
            render,
            recover_problem: None,
            textfile_problem: None,
            quarantine_walked: None,
        };
        let interval = settings.interval;
        let thread = std::thread::Builder::new()
            .name("warden-metrics".into())
            .spawn(move || loop {
                refresher.refresh();
                match stopped.recv_timeout(interval) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Refresher {
    state_dir: PathBuf,
    textfile: Option<PathBuf>,
    files: Arc<Mutex<FileFacts>>,
    render: metrics::http::Render,
    /// The last problems logged, so that each is logged once, not every interval.
    recover_problem: Option<String>,
    textfile_problem: Option<String>,
    /// When the quarantine was last walked, and its folder's mtime then.
    quarantine_walked: Option<(Instant, Option<SystemTime>)>,
}

impl Refresher {
    fn refresh(&mut self) {
        let (recover, recover_ok) = match recover_result::read(&self.state_dir) {
            Ok(r) => {
                self.recover_problem = None;
                let ok = r.is_some().then_some(true);
                (r, ok)
            }
            Err(e) => {
                let why = e.to_string();
                if self.recover_problem.as_deref() != Some(why.as_str()) {
                    tracing::warn!("ignoring the last recover's record: {why}");
                    self.recover_problem = Some(why);
                }
                (None, Some(false))
            }
        };
        let journal = dir_size(&self.state_dir.join("journal")).ok().flatten();
        let quarantine = self.quarantine();
        {
            let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            files.recover = recover;
            files.recover_ok = recover_ok;
            files.journal = journal;
            if let Some(q) = quarantine {
                files.quarantine = q;
            }
        }
        if let Some(path) = &self.textfile {
            let text = (self.render)(Format::Text);
            match metrics::textfile::replace_file(path, text.as_bytes(), false) {
                Ok(()) => {
                    if self.textfile_problem.take().is_some() {
                        tracing::info!("metrics textfile {} written again", escaped(path));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    if self.textfile_problem.as_deref() != Some(why.as_str()) {
                        tracing::error!(
                            textfile = %escaped(path),
                            "cannot write the metrics textfile {}: {why} (under systemd, its \
                             folder needs the opt-in drop-in metrics-textfile.conf)",
                            escaped(path)
                        );
                        self.textfile_problem = Some(why);
                    }
                }
            }
        }
    }

    /// The quarantine's size when it is due for a walk (its folder changed, or a while
    /// passed); `None` to keep the last figure.
    fn quarantine(&mut self) -> Option<Option<DirSize>> {
        let dir = self.state_dir.join("quarantine");
        let mtime = std::fs::symlink_metadata(&dir)
            .and_then(|m| m.modified())
            .ok();
        if let Some((at, seen)) = self.quarantine_walked {
            if seen == mtime && at.elapsed() < QUARANTINE_REWALK {
                return None;
            }
        }
        self.quarantine_walked = Some((Instant::now(), mtime));
        Some(dir_size(&dir).ok().flatten())
    }
}

#[cfg(test)]
mod tests;
