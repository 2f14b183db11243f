//! `iggy-warden recover`: the start-up hook. Finishes unfinished repairs, repairs what
//! the mode allows, and says through its exit code whether iggy-server may start.

use crate::config::{DirArgs, Dirs};
use crate::exit;
use crate::metrics::recover_result::{self, RecoverRecord};
use crate::repair::{exit_code, nothing_to_check, repair, report, PartitionFilter};
use crate::session::{refuse_if_busy, Session};
use recovery::names::escaped;
use recovery::pipeline::RepairOutcome;
use recovery::plan::Mode;
use std::time::{Instant, SystemTime};

#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Recovery mode: tolerate-tail (repair crash tails, refuse anything else),
    /// point-in-time (cut each partition at its first damage), salvage (keep every
    /// message whose XXH3 is valid, wherever found, re-laying a damaged partition from
    /// its first damaged segment; exit 2, nothing changed, when the disk lacks room) or
    /// absolute (repair nothing) [default: tolerate-tail, or `mode` in the config file;
    /// the packaged /etc/iggy-warden/config.toml sets salvage]
    #[arg(long, env = "IGGY_WARDEN_MODE")]
    pub mode: Option<Mode>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Change files even though another process has some open.
    #[arg(long)]
    pub force: bool,
    /// After the repair, move each consumer or group offset stored past its
    /// partition's last message back to that message, so the consumer's next message
    /// is the next one produced (0.6.0 would skip as many); the old file is
    /// quarantined, `restore` puts it back [default: no, or `reset_offsets_ahead` in
    /// the config file]
    #[arg(long)]
    pub reset_offsets_ahead: bool,
}

pub fn run(args: &RecoverArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    // The flags, the environment and the config file, read once.
    let dirs = match args.dirs.resolve() {
        Ok(dirs) => dirs,
        Err(e) => {
            // A config file that cannot be used: recorded where the flags alone put
            // the state directory, if they do, so that the failure shows in metrics.
            if let Some(state_dir) = &args.dirs.state_dir {
                let failed = Err(anyhow::anyhow!("{e:#}"));
                record(
                    state_dir,
                    recover_result::UNKNOWN_MODE.into(),
                    &failed,
                    started,
                );
            }
            return Err(e);
        }
    };
    let mode = dirs.mode(args.mode);
    let state_dir = dirs.state_dir.clone();
    let result = recover(args, dirs, mode);
    record(&state_dir, mode.to_string(), &result, started);
    report(&result?, args.json)
}

fn recover(args: &RecoverArgs, dirs: Dirs, mode: Mode) -> anyhow::Result<RepairOutcome> {
    Ok(match nothing_to_check(&dirs, mode)? {
        Some(nothing) => nothing,
        None => {
            let session = Session::open(dirs)?;
            refuse_if_busy(&session.dirs.data_dir, args.force)?;
            let reset = session.dirs.reset_offsets_ahead(args.reset_offsets_ahead);
            repair(&session, mode, &PartitionFilter::default(), reset)?
        }
    })
}

/// Records the run in `last-recover.json` for the sidecar's metrics. Only into a
/// state directory that exists (a first start has none yet); a failure to record
/// is logged and does not change the exit code.
fn record(
    state_dir: &std::path::Path,
    mode: String,
    result: &anyhow::Result<RepairOutcome>,
    started: Instant,
) {
    if !state_dir.is_dir() {
        return;
    }
    let finished_unix_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut record = RecoverRecord {
        format: recover_result::FORMAT,
        mode,
        exit_code: exit::ERROR,
        finished_unix_ms,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        repairs: 0,
        bytes_quarantined: 0,
        messages_kept: 0,
        messages_lost: 0,
        refusals: 0,
        consumer_offsets_ahead: 0,
        error: None,
    };
    match result {
        Ok(o) => {
            record.exit_code = exit_code(o);
            record.repairs = (o.actions.len() + o.replayed.len()) as u64;
            record.bytes_quarantined = o.bytes_quarantined;
            record.messages_kept = o.partitions.iter().map(|p| p.messages_kept).sum();
            record.messages_lost = o.partitions.iter().map(|p| p.messages_lost).sum();
            record.refusals = o.refusals.len() as u64;
            record.consumer_offsets_ahead = o.offsets_ahead.len() as u64;
        }
        Err(e) => record = record.with_error(&format!("{e:#}")),
    }
    if let Err(e) = recover_result::write(state_dir, &record) {
        tracing::warn!(
            "cannot record the result in {}: {e}",
            escaped(&recover_result::path_in(state_dir))
        );
    }
}
