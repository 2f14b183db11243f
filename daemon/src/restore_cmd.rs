//! `iggy-warden restore`: puts back what repairs took out, for an operator who
//! disagrees with them. Several repairs are undone newest first, so restoring every
//! repair of a run gives back the directory exactly as it was before that run.

use crate::config::DirArgs;
use crate::exit;
use crate::session::{refuse_if_busy, Session};
use anyhow::Context;
use journal::{RepairAction, RepairId};
use recovery::execute::Executor;
use recovery::fsops::StdFs;
use recovery::quarantine::Quarantine;

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Repair ids to undo (as shown by recover: r00000012, or 12).
    #[arg(value_parser = parse_repair_id)]
    pub repairs: Vec<RepairId>,
    /// List what the quarantine holds instead.
    #[arg(long)]
    pub list: bool,
    /// Change files even though another process has some open.
    #[arg(long)]
    pub force: bool,
}

fn parse_repair_id(s: &str) -> Result<RepairId, String> {
    s.trim_start_matches('r')
        .parse()
        .map(RepairId)
        .map_err(|_| format!("{s:?} is not a repair id (like r00000012)"))
}

pub fn run(args: &RestoreArgs) -> anyhow::Result<u8> {
    let session = Session::open(&args.dirs)?;
    let quarantine = Quarantine::new(&session.dirs.state_dir);
    if args.list || args.repairs.is_empty() {
        for m in quarantine.list()? {
            println!(
                "{}  {}  bytes {} of {}  ({})",
                m.repair, m.action, m.range, m.file, m.reason
            );
        }
        return Ok(exit::OK);
    }
    refuse_if_busy(&session.dirs.data_dir, args.force)?;
    let mut ids = args.repairs.clone();
    ids.sort();
    ids.dedup();
    ids.reverse();
    let exec = Executor {
        data_dir: &session.dirs.data_dir,
        quarantine: &quarantine,
        fs: &StdFs,
        log: &session.journal,
    };
    exec.replay_pending()
        .context("cannot finish the repairs an earlier run journaled")?;
    let plan = ids
        .iter()
        .map(|&id| {
            (
                RepairAction::Restore { repair: id },
                format!("operator restore of {id}"),
            )
        })
        .collect();
    for done in exec
        .execute(plan)
        .context("restore failed; rerun it to finish")?
    {
        println!(
            "{}: {} ({} bytes back)",
            done.repair, done.action, done.quarantined_bytes
        );
    }
    Ok(exit::OK)
}
