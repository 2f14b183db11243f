//! `iggy-warden restore`: puts back what repairs took out, for an operator who
//! disagrees with them. Several repairs are undone newest first, so restoring every
//! repair of a run gives back the directory exactly as it was before that run.

use crate::config::DirArgs;
use crate::exit;
use crate::session::{refuse_if_busy, Session};
use anyhow::Context;
use journal::{RepairAction, RepairId};
use recovery::execute::Executed;
use recovery::names::{escaped, escaped_str};
use recovery::quarantine::{Home, Listed, Manifest, Quarantine, QuarantineError, RunId};
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Repairs to undo: repair ids as recover shows them (r00000012, or 12), or run
    /// ids (run-r00000012-r00000020, as `--list` shows them) for every repair of a run.
    #[arg(value_parser = parse_target)]
    pub repairs: Vec<Target>,
    /// List what the quarantine holds instead.
    #[arg(long)]
    pub list: bool,
    /// Print one JSON object instead of text: with --list, every quarantined repair
    /// (id, action, reason, file, byte range, XXH3 as 0x-prefixed hex, created_file,
    /// bytes); otherwise what was restored.
    #[arg(long)]
    pub json: bool,
    /// Change files even though another process has some open.
    #[arg(long)]
    pub force: bool,
}

/// What an operator names to restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Repair(RepairId),
    Run(RunId),
}

fn parse_target(s: &str) -> Result<Target, String> {
    if let Some(run) = RunId::parse(s) {
        return Ok(Target::Run(run));
    }
    s.trim_start_matches('r')
        .parse()
        .map(|n| Target::Repair(RepairId(n)))
        .map_err(|_| {
            format!("{s:?} is neither a repair id (like r00000012) nor a run id (like run-r00000012-r00000020)")
        })
}

/// The repairs `targets` name, newest first, each once: a run stands for every
/// repair its manifest lists.
fn repairs_of(quarantine: &Quarantine, targets: &[Target]) -> anyhow::Result<Vec<RepairId>> {
    let mut ids = Vec::new();
    for target in targets {
        match *target {
            Target::Repair(id) => ids.push(id),
            Target::Run(run) => {
                let manifest = quarantine.load_run(run)?.with_context(|| {
                    format!(
                        "{run} has no manifest in {}: nothing to restore",
                        escaped(quarantine.dir())
                    )
                })?;
                ids.extend(manifest.repairs.iter().map(|m| m.repair));
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids.reverse();
    Ok(ids)
}

pub fn run(args: &RestoreArgs) -> anyhow::Result<u8> {
    if args.list || args.repairs.is_empty() {
        return list(args);
    }
    let session = Session::open(args.dirs.resolve()?)?;
    let quarantine = session.quarantine();
    refuse_if_busy(&session.dirs.data_dir, args.force)?;
    let ids = repairs_of(&quarantine, &args.repairs)?;
    let exec = session.executor(&quarantine)?;
    let finished = exec
        .replay_pending()
        .context("cannot finish the repairs an earlier run journaled")?;
    // What each repair took out, read before the restore (for the JSON report).
    let mut targets = std::collections::BTreeMap::new();
    if args.json {
        for &id in &ids {
            if let Some(m) = quarantine.load(id)? {
                targets.insert(id, m);
            }
        }
    }
    let plan = ids
        .iter()
        .map(|&id| {
            (
                RepairAction::Restore { repair: id },
                format!("operator restore of {id}"),
            )
        })
        .collect();
    let done = exec
        .execute(plan)
        .context("restore failed; rerun it to finish")?;
    if args.json {
        let out = json!({
            "data_dir": escaped(&session.dirs.data_dir).to_string(),
            "state_dir": escaped(&session.dirs.state_dir).to_string(),
            "finished": finished.iter().map(executed_json).collect::<Vec<_>>(),
            "restored": done.iter().map(|d| restored_json(d, &targets)).collect::<Vec<_>>(),
            "bytes_restored": done.iter().map(|d| d.quarantined_bytes).sum::<u64>(),
        });
        crate::output::json(&out)?;
    } else {
        crate::output::to_stdout(|out| {
            for done in &done {
                writeln!(
                    out,
                    "{}: {} ({} bytes back)",
                    done.repair, done.action, done.quarantined_bytes
                )?;
            }
            Ok(())
        })?;
    }
    Ok(exit::OK)
}

/// `restore --list`: what the quarantine holds. It needs neither the journal nor the
/// data directory, and changes nothing. A manifest that cannot be read is reported
/// (exit 1) and the others are still listed.
fn list(args: &RestoreArgs) -> anyhow::Result<u8> {
    let state_dir = args.dirs.resolve()?.state_dir;
    let quarantine = Quarantine::new(&state_dir);
    let each = quarantine.list_each()?;
    let (mut manifests, mut unreadable) = (Vec::new(), Vec::new());
    for Listed { id, home, manifest } in each {
        match manifest {
            Ok(m) => manifests.push((home, m)),
            Err(e) => unreadable.push((id, home, e)),
        }
    }
    if args.json {
        crate::output::json(&list_json(&quarantine, &manifests, &unreadable))?;
    } else {
        crate::output::to_stdout(|out| {
            for (home, m) in &manifests {
                let run = home.run().map(|r| format!("  [{r}]")).unwrap_or_default();
                writeln!(
                    out,
                    "{}{run}  {}  bytes {} of {}  ({})",
                    m.repair,
                    m.action,
                    m.range,
                    escaped_str(&m.file),
                    escaped_str(&m.reason)
                )?;
                // A re-lay saves whole files: name each.
                for f in &m.files {
                    writeln!(
                        out,
                        "    whole file {} ({} bytes)",
                        escaped_str(&f.file),
                        f.len
                    )?;
                }
            }
            Ok(())
        })?;
    }
    for (id, _, e) in &unreadable {
        eprintln!("iggy-warden: {id} cannot be listed: {e}");
    }
    Ok(if unreadable.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    })
}

/// `restore --list --json`: the quarantine and every repair it holds, oldest first,
/// and the repairs whose manifest cannot be read.
fn list_json(
    quarantine: &Quarantine,
    manifests: &[(Home, Manifest)],
    unreadable: &[(RepairId, Home, QuarantineError)],
) -> Value {
    json!({
        "quarantine": escaped(quarantine.dir()).to_string(),
        "repairs": manifests
            .iter()
            .map(|(home, m)| manifest_json(home, m))
            .collect::<Vec<_>>(),
        "bytes": manifests.iter().map(|(_, m)| m.range.len()).sum::<u64>(),
        "unreadable": unreadable
            .iter()
            .map(|(id, home, e)| json!({
                "id": id.to_string(),
                "repair": id.0,
                "run": home.run().map(|r| r.to_string()),
                "path": escaped(&home.manifest()).to_string(),
                "error": e.to_string(),
            }))
            .collect::<Vec<_>>(),
    })
}

/// One quarantined repair. `id` is the form `restore` takes and prints, `repair` the
/// number `recover --json` reports, `run` the run folder it was saved in (`null` for
/// a folder of its own). The XXH3 is hex, as error messages print it (a 64-bit
/// number is not exact in every JSON reader). The saved bytes are `saved_range` of
/// the file `saved_at`: all of it, or a slice of a run's packed file.
fn manifest_json(home: &Home, m: &Manifest) -> Value {
    let saved = home.saved(m);
    json!({
        "id": m.repair.to_string(),
        "repair": m.repair.0,
        "run": home.run().map(|r| r.to_string()),
        "action": m.action.to_string(),
        "action_detail": m.action,
        "reason": m.reason,
        "data_dir": m.data_dir,
        "file": m.file,
        "range": { "start": m.range.start, "end": m.range.end },
        "xxh3": format!("{:#018x}", m.xxh3),
        "created_file": m.created_file,
        "bytes": m.range.len(),
        "saved_at": escaped(&saved.path).to_string(),
        "saved_range": { "start": saved.range.start, "end": saved.range.end },
    })
}

/// A repair an earlier run journaled and this one finished before restoring.
fn executed_json(e: &Executed) -> Value {
    json!({
        "id": e.repair.to_string(),
        "repair": e.repair.0,
        "action": e.action.to_string(),
        "action_detail": e.action,
        "reason": e.reason,
        "bytes": e.quarantined_bytes,
    })
}

/// One restore: its own id, the repair it undid and where that repair had cut.
fn restored_json(d: &Executed, targets: &std::collections::BTreeMap<RepairId, Manifest>) -> Value {
    let target = match d.action {
        RepairAction::Restore { repair } => Some(repair),
        _ => None,
    };
    let manifest = target.and_then(|t| targets.get(&t));
    json!({
        "id": d.repair.to_string(),
        "repair": d.repair.0,
        "restored": target.map(|t| t.to_string()),
        "restored_action": manifest.map(|m| m.action.to_string()),
        "file": manifest.map(|m| m.file.clone()),
        "range": manifest.map(|m| json!({ "start": m.range.start, "end": m.range.end })),
        "reason": d.reason,
        "bytes": d.quarantined_bytes,
    })
}
