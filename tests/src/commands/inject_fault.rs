//! `inject-fault`: the harness's fault injectors as a command, for trying the damage
//! table by hand or against a real iggy-server (see `tests/real-server/judge.sh`).
//!
//! `inject-fault --list` prints the fault names: the damage table's, then the 0.6.0
//! rotation race's signatures (`harness::race_faults`). `inject-fault DATA_DIR FAULT
//! [PARTITION]` damages the first partition (in stream/topic/partition order) that the
//! fault applies to, or the named one (`streams/S/topics/T/partitions/P`), and prints
//! one JSON line: the partition, the messages before the first one the fault touched
//! (a repair must keep at least those), and what was done. Exit 2 when no partition
//! can take the fault or the arguments are wrong; nothing is changed then.
//!
//! For a race fault the line also has `survivors`: `messages`, the number of offsets a
//! resynchronising salvage still finds valid anywhere in the partition (what
//! `valid-messages` counts), `lost_offsets` and `conflicting_offsets` (offsets left
//! with two different valid messages).
//!
//! Last in `--list` come the faults of `state/log`, the server's metadata log
//! (`harness::state_faults`). `inject-fault DATA_DIR state-log-torn-tail [KEEP]` keeps
//! the first KEEP bytes of the last entry (default: half of it),
//! `state-log-zero-tail [LEN]` appends LEN zero bytes (default 4096); the others take
//! no argument. The JSON line names the `file`, the byte `offset` where the damaged
//! entry starts (a repair keeps exactly the bytes before it), the whole valid
//! `entries_before` it, the log's `original_len`, the damaged entry's command `code`
//! (null for zeros) and what was done.

use super::Outcome;
use crate::{
    all_faults, apply, apply_state, apply_to_first, fault_named, race_faults, state_faults,
    StateFault,
};
use std::fmt::Write;
use std::path::Path;

/// Runs `inject-fault ARGS...` (the arguments after the command's name).
pub fn run(args: &[String]) -> Outcome {
    match args {
        [list] if list == "--list" => {
            let mut names = String::new();
            for fault in all_faults().into_iter().chain(race_faults()) {
                let _ = writeln!(names, "{}", fault.name());
            }
            for fault in state_faults() {
                let _ = writeln!(names, "{}", fault.name());
            }
            Outcome::success(names)
        }
        [dir, name, rest @ ..] if rest.len() <= 1 => {
            match inject(Path::new(dir), name, rest.first().map(String::as_str)) {
                Ok(line) => Outcome::success(format!("{line}\n")),
                Err(e) => Outcome::refused(format!("inject-fault: {e}\n")),
            }
        }
        _ => Outcome::refused(
            "usage: inject-fault --list | inject-fault DATA_DIR FAULT [PARTITION | KEEP | LEN]\n"
                .into(),
        ),
    }
}

fn inject(dir: &Path, name: &str, partition: Option<&str>) -> Result<String, String> {
    if let Some(fault) = state_fault_named(name, partition)? {
        return inject_state(dir, fault);
    }
    let fault = fault_named(name).ok_or_else(|| format!("no fault named {name:?} (see --list)"))?;
    let (rel, report) = match partition {
        Some(rel) => (rel.to_string(), apply(dir, rel, fault)?),
        None => apply_to_first(dir, fault)?,
    };
    let mut line = serde_json::json!({
        "fault": fault.name(),
        "partition": rel,
        "intact_messages_before": report.intact_messages_before,
        "affected_offsets": report.affected_offsets,
        "description": report.description,
    });
    if let Some(s) = &report.survivors {
        line["survivors"] = serde_json::json!({
            "messages": s.valid_offsets.len(),
            "lost_offsets": s.lost_offsets,
            "conflicting_offsets": s.conflicting_offsets,
        });
    }
    Ok(line.to_string())
}

/// The state-log fault named `name`, with its optional argument; `None` when `name`
/// is no state-log fault.
fn state_fault_named(name: &str, arg: Option<&str>) -> Result<Option<StateFault>, String> {
    let Some(fault) = state_faults().into_iter().find(|f| f.name() == name) else {
        return Ok(None);
    };
    let number = |what: &str| -> Result<Option<usize>, String> {
        arg.map(|a| match a.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{name}: {what} must be a positive number, not {a:?}"
            )),
        })
        .transpose()
    };
    Ok(Some(match fault {
        StateFault::TornTail { .. } => StateFault::TornTail {
            keep: number("KEEP")?.unwrap_or(0),
        },
        StateFault::ZeroTail { len } => StateFault::ZeroTail {
            len: number("LEN")?.unwrap_or(len),
        },
        other => match arg {
            Some(a) => return Err(format!("{name} takes no argument, got {a:?}")),
            None => other,
        },
    }))
}

fn inject_state(dir: &Path, fault: StateFault) -> Result<String, String> {
    let report = apply_state(dir, fault)?;
    Ok(serde_json::json!({
        "fault": fault.name(),
        "file": "state/log",
        "offset": report.offset,
        "entries_before": report.entries_before,
        "original_len": report.original_len,
        "code": report.code,
        "description": report.description,
    })
    .to_string())
}
