//! `iggy-warden recover`: the start-up hook. Finishes unfinished repairs, repairs what
//! the mode allows, and says through its exit code whether iggy-server may start.

use crate::config::DirArgs;
use crate::exit;
use crate::repair::{nothing_to_check, print_outcome, repair, PartitionFilter};
use crate::session::{refuse_if_busy, Session};
use recovery::names::escaped;
use recovery::plan::Mode;

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
}

/// The mode from the flag (or IGGY_WARDEN_MODE), else the config file, else
/// tolerate-tail.
pub fn resolve_mode(flag: Option<Mode>, dirs: &DirArgs) -> anyhow::Result<Mode> {
    if let Some(mode) = flag {
        return Ok(mode);
    }
    match dirs.file_config()?.mode {
        Some(m) => m.parse().map_err(|e: String| {
            let file = dirs.config.as_deref().unwrap_or(std::path::Path::new("?"));
            anyhow::anyhow!("invalid config file {}: mode: {e}", escaped(file))
        }),
        None => Ok(Mode::default()),
    }
}

pub fn run(args: &RecoverArgs) -> anyhow::Result<u8> {
    let mode = resolve_mode(args.mode, &args.dirs)?;
    let outcome = match nothing_to_check(&args.dirs, mode)? {
        Some(nothing) => nothing,
        None => {
            let session = Session::open(&args.dirs)?;
            refuse_if_busy(&session.dirs.data_dir, args.force)?;
            repair(&session, mode, &PartitionFilter::default())?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print_outcome(&outcome);
    }
    Ok(if outcome.ready_to_start {
        exit::OK
    } else {
        exit::NEEDS_OPERATOR
    })
}
