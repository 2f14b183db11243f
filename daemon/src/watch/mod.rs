//! `iggy-warden watch`: the sidecar that journals segment events while iggy-server
//! runs, so that recovery after a crash knows which segments were open, which were
//! sealed, and how far each open segment was already verified.
//!
//! Shape of the process:
//! - the **core** thread (`core/`, its loop in `core/turn.rs`) owns the journal, the
//!   model of the segments (`reconcile/model.rs`) and the inotify watches; it
//!   reconciles journal and disk at start, then turns events into records
//!   (`layout_sync.rs`, `reconcile/`, `tracker/`, `verify.rs`, `lease.rs`; what is
//!   still to do per segment in `worklist.rs`), raises alerts
//!   (`alerts.rs` for the alerts, `alerting.rs` for the core's side,
//!   `alert_history.rs` for those folded back from the journal), and
//!   journals how far `state/log` is verified (`state_log.rs`); open segments the
//!   journal does not vouch for are verified in the background at a bounded rate
//!   (`coverage.rs`);
//! - notify's thread folds inotify events into the shared inbox (`events.rs`, paths
//!   classified by `place.rs`);
//! - the **supervisor** (this file, on a small tokio runtime) handles signals, the
//!   systemd protocol (`notify_systemd.rs`) and the control socket (`control.rs`,
//!   through which `recover` borrows the journal, see `handover.rs`);
//! - when configured, the **metrics** (`metrics/`): the endpoint on the
//!   supervisor's runtime, a `warden-metrics` thread for the textfile and what lives
//!   in files, and the core's checkpoint-lag snapshot.
//!
//! The sidecar only reads the data directory; its own files live in the state
//! directory, which `config.rs` refuses to place inside the data directory.

mod alert_history;
mod alerting;
pub(crate) mod alerts;
mod control;
mod core;
pub(crate) mod coverage;
mod events;
mod layout_sync;
mod lease;
mod metrics;
mod notify_systemd;
mod place;
mod reconcile;
mod stamp;
mod state_log;
pub(crate) mod status;
mod tracker;
mod verify;
mod worklist;
mod writer;

use crate::config::DirArgs;
use crate::exit;
use crate::handover;
use crate::journal_open::{self, Access};
use anyhow::Context;
use notify_systemd::Watchdog;
use recovery::names::escaped;
use status::Status;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// Puts all the sidecar's threads on one malloc arena. Its threads allocate little
/// and rarely at the same time, while an arena per thread left 1–3 MiB more resident
/// and made the RSS vary from run to run (measured: 28–32.5 MiB with 10,000
/// partitions, 27–28.7 MiB with one arena).
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; it runs before the sidecar starts
    // any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// How often the systemd `STATUS=` line is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// How often verified bytes of open segments are checkpointed, in milliseconds
    /// [default: `checkpoint_interval_ms` in the config file, else 1000].
    #[arg(long, env = "IGGY_WARDEN_CHECKPOINT_INTERVAL_MS")]
    pub checkpoint_interval_ms: Option<u64>,
    /// How often newly written bytes are read and verified, in milliseconds: alerts
    /// come this soon after the damage reaches the disk; capped at the checkpoint
    /// interval [default: `verify_interval_ms` in the config file, else 100].
    #[arg(long, env = "IGGY_WARDEN_VERIFY_INTERVAL_MS")]
    pub verify_interval_ms: Option<u64>,
    /// Checkpoint intervals a partition's newest segment may end in a message written
    /// in part, with nothing written, before the stalled-write alert
    /// [default: `stall_alert_checkpoints` in the config file, else 10].
    #[arg(long, env = "IGGY_WARDEN_STALL_ALERT_CHECKPOINTS")]
    pub stall_alert_checkpoints: Option<u32>,
    /// MiB per second the background coverage pass may read from open segments the
    /// journal does not vouch for yet; 0: no limit
    /// [default: `coverage_mib_per_sec` in the config file, else 32].
    #[arg(long, env = "IGGY_WARDEN_COVERAGE_MIB_PER_SEC")]
    pub coverage_mib_per_sec: Option<u64>,
}

pub fn run(args: &WatchArgs) -> anyhow::Result<u8> {
    one_malloc_arena();
    let dirs = args.dirs.resolve()?;
    let checkpoint_interval = dirs.checkpoint_interval(args.checkpoint_interval_ms)?;
    let verify_interval = dirs.verify_interval(args.verify_interval_ms, checkpoint_interval)?;
    let metrics_settings = dirs.metrics()?;
    let stall_checkpoints = dirs.stall_alert_checkpoints(args.stall_alert_checkpoints)?;
    let coverage_rate = dirs.coverage_rate(args.coverage_mib_per_sec);
    let data_dir = &dirs.data_dir;
    // Refuses a missing directory and any format but 0.6, like the other commands
    // (the listing itself is the reconciliation's).
    recovery::layout::check_root(data_dir)
        .with_context(|| format!("cannot watch the data directory {}", escaped(data_dir)))?;
    std::fs::create_dir_all(&dirs.state_dir)
        .with_context(|| format!("cannot create state directory {}", escaped(&dirs.state_dir)))?;
    let journal = journal_open::open(&dirs.state_dir, Access::Own)?;
    let watchdog = Watchdog::from_env();
    let beat_every = watchdog.map_or(Duration::from_secs(1), |w| {
        (w.timeout / 4).min(Duration::from_secs(1))
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let socket = {
        let _guard = runtime.enter();
        control::bind(&handover::socket_path(&dirs.state_dir))?
    };
    let shared = events::Shared::new();
    let status = Arc::new(Status::default());
    // Stopped (its thread joined) when `run` returns.
    let _exporter = match &metrics_settings {
        Some(m) => Some(metrics::Exporter::start(
            m,
            &dirs.state_dir,
            status.clone(),
            &runtime,
        )?),
        None => None,
    };
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let core = core::Core::new(
        core::Settings {
            data_dir: dirs.data_dir.clone(),
            state_dir: dirs.state_dir.clone(),
            checkpoint_interval,
            verify_interval,
            beat_every,
            stall_checkpoints,
            coverage_rate,
            stamp_after: stamp::STAMP_AFTER,
            stamp_margin: stamp::STAMP_MARGIN,
        },
        journal,
        shared.clone(),
        status.clone(),
        events_tx,
    )?;
    tracing::info!(
        data_dir = %escaped(&dirs.data_dir),
        state_dir = %escaped(&dirs.state_dir),
        checkpoint_interval_ms = checkpoint_interval.as_millis() as u64,
        verify_interval_ms = verify_interval.as_millis() as u64,
        stall_alert_checkpoints = stall_checkpoints,
        "watching {} (state in {}, new bytes verified every {} ms, checkpoints every {} ms, \
         stalled-write alert after {} checkpoints)",
        escaped(&dirs.data_dir),
        escaped(&dirs.state_dir),
        verify_interval.as_millis(),
        checkpoint_interval.as_millis(),
        stall_checkpoints
    );
    let core_thread = std::thread::Builder::new()
        .name("warden-core".into())
        .spawn(move || core.run())
        .context("cannot start the core thread")?;
    let outcome = runtime.block_on(supervise(
        &socket,
        shared,
        status,
        events_rx,
        watchdog,
        core_thread,
    ));
    drop(socket);
    outcome
}

/// Runs until a signal or the core's end; returns the exit code.
async fn supervise(
    socket: &control::ControlSocket,
    shared: Arc<events::Shared>,
    status: Arc<Status>,
    mut core_events: tokio::sync::mpsc::UnboundedReceiver<core::CoreEvent>,
    watchdog: Option<Watchdog>,
    core_thread: std::thread::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<u8> {
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let ping_every = watchdog.map_or(Duration::from_secs(3600), |w| w.ping_every());
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_status = String::new();
    let control = control::serve(&socket.listener, shared.clone(), status.clone());
    tokio::pin!(control);
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    // The core is a plain thread; a blocking task reports its end to the select below.
    let join = tokio::task::spawn_blocking(move || {
        let result = core_thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the core thread panicked")));
        let _ = done_tx.send(());
        result
    });
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = sigterm.recv(), if !stopping => {
                stopping = true;
                tracing::info!("SIGTERM: finishing journal writes and stopping");
                notify_systemd::stopping("stopping");
                shared.stop();
            }
            _ = sigint.recv(), if !stopping => {
                stopping = true;
                tracing::info!("SIGINT: finishing journal writes and stopping");
                notify_systemd::stopping("stopping");
                shared.stop();
            }
            Some(event) = core_events.recv() => match event {
                core::CoreEvent::Ready => {
                    let text = status.human();
                    tracing::info!("ready: {text}");
                    notify_systemd::ready(&text);
                    last_status = text;
                }
            },
            _ = ping.tick(), if watchdog.is_some() => {
                if let Some(w) = watchdog {
                    let age = status.since_beat();
                    if age <= w.max_beat_age() {
                        notify_systemd::watchdog();
                    } else {
                        tracing::warn!(
                            since_ms = age.as_millis() as u64,
                            "the core has not made progress for {} ms: withholding the watchdog ping",
                            age.as_millis()
                        );
                    }
                }
            }
            _ = status_tick.tick() => {
                if !status.ready.load(std::sync::atomic::Ordering::Relaxed) && !stopping {
                    // Still reconciling: keep systemd's start timeout from running out.
                    notify_systemd::extend_start(STATUS_EVERY * 3);
                }
                let text = status.human();
                if text != last_status {
                    notify_systemd::status(&text);
                    last_status = text;
                }
            }
            _ = &mut control => {}
            _ = &mut done_rx => break,
        }
    }
    let result = join
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the core thread could not be joined: {e}")));
    match result {
        Ok(()) => {
            tracing::info!("stopped: {}", status.human());
            Ok(exit::OK)
        }
        Err(e) => {
            notify_systemd::stopping(&format!("failed: {e:#}"));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        watch: WatchArgs,
    }

    /// The settings `run` resolves from `args`, in its order.
    struct Resolved {
        dirs: crate::config::Dirs,
        interval: Duration,
        verify: Duration,
        stall: u32,
        coverage: u64,
    }

    fn settings(args: &[&str]) -> anyhow::Result<Resolved> {
        let watch = Cli::parse_from(std::iter::once("x").chain(args.iter().copied())).watch;
        let dirs = watch.dirs.resolve()?;
        let interval = dirs.checkpoint_interval(watch.checkpoint_interval_ms)?;
        let verify = dirs.verify_interval(watch.verify_interval_ms, interval)?;
        let stall = dirs.stall_alert_checkpoints(watch.stall_alert_checkpoints)?;
        let coverage = dirs.coverage_rate(watch.coverage_mib_per_sec);
        Ok(Resolved {
            dirs,
            interval,
            verify,
            stall,
            coverage,
        })
    }

    #[test]
    fn flag_beats_config_file_beats_default() {
        use crate::config::{
            DEFAULT_CHECKPOINT_INTERVAL_MS, DEFAULT_COVERAGE_MIB_PER_SEC,
            DEFAULT_STALL_CHECKPOINTS, DEFAULT_VERIFY_INTERVAL_MS,
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\ncheckpoint_interval_ms = 250\nverify_interval_ms = 20\n\
                 stall_alert_checkpoints = 3\ncoverage_mib_per_sec = 2\n",
                data.display().to_string()
            ),
        )
        .unwrap();
        let cfg = config.display().to_string();
        let from_file = settings(&["--config", &cfg]).unwrap();
        assert_eq!(from_file.interval, Duration::from_millis(250));
        assert_eq!(from_file.verify, Duration::from_millis(20));
        assert_eq!(from_file.stall, 3);
        assert_eq!(from_file.coverage, 2 << 20);
        assert_eq!(from_file.dirs.data_dir, data);
        assert_eq!(from_file.dirs.state_dir, dir.path().join("data.warden"));
        let flagged = settings(&["--config", &cfg, "--checkpoint-interval-ms", "40"]).unwrap();
        assert_eq!(flagged.interval, Duration::from_millis(40));
        let flagged = settings(&["--config", &cfg, "--verify-interval-ms", "5"]).unwrap();
        assert_eq!(flagged.verify, Duration::from_millis(5));
        // Never verified less often than checkpointed.
        let flagged = settings(&["--config", &cfg, "--verify-interval-ms", "900"]).unwrap();
        assert_eq!(flagged.verify, Duration::from_millis(250));
        let flagged = settings(&["--config", &cfg, "--stall-alert-checkpoints", "7"]).unwrap();
        assert_eq!(flagged.stall, 7);
        let flagged = settings(&["--config", &cfg, "--coverage-mib-per-sec", "0"]).unwrap();
        assert_eq!(flagged.coverage, 0);
        let d = data.display().to_string();
        let defaults = settings(&["--data-dir", &d]).unwrap();
        assert_eq!(
            defaults.interval,
            Duration::from_millis(DEFAULT_CHECKPOINT_INTERVAL_MS)
        );
        assert_eq!(
            defaults.verify,
            Duration::from_millis(DEFAULT_VERIFY_INTERVAL_MS)
        );
        assert_eq!(defaults.stall, DEFAULT_STALL_CHECKPOINTS);
        assert_eq!(defaults.coverage, DEFAULT_COVERAGE_MIB_PER_SEC << 20);
        assert!(settings(&["--data-dir", &d, "--checkpoint-interval-ms", "0"]).is_err());
        assert!(settings(&["--data-dir", &d, "--verify-interval-ms", "0"]).is_err());
        assert!(settings(&["--data-dir", &d, "--stall-alert-checkpoints", "0"]).is_err());
    }
}
