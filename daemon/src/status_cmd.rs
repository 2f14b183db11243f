//! `iggy-warden status`: asks the running sidecar (`watch`) for its counters and the
//! alerts in force, over its control socket (`STATUS-JSON`, see `handover.rs`).

use crate::config::DirArgs;
use crate::exit;
use crate::handover;
use recovery::names::escaped;
use serde_json::Value;
use std::io::{self, Write};
use std::time::Duration;

/// How long to wait for the sidecar's answer: it answers from its supervisor, not
/// after the core's work.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Print the sidecar's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Exit 0 when the sidecar runs and no alert is in force, 1 when alerts are (or
/// `state/log` holds an entry that stops the server's next start), 2 when no sidecar
/// answers.
pub fn run(args: &StatusArgs) -> anyhow::Result<u8> {
    let state_dir = args.dirs.state_dir_only()?;
    let socket = handover::socket_path(&state_dir);
    let Some(answer) = handover::ask(&state_dir, handover::STATUS_JSON, ANSWER_TIMEOUT)? else {
        anyhow::bail!(
            "no sidecar answers on {}: is `iggy-warden watch` running for this state \
             directory? (`systemctl status iggy-warden`)",
            escaped(&socket)
        );
    };
    let value: Value = serde_json::from_str(&answer).map_err(|e| {
        anyhow::anyhow!(
            "the sidecar at {} answered something that is not JSON ({e}): {answer:?}; \
             is it an older version?",
            escaped(&socket)
        )
    })?;
    let alerts = value
        .get("alerts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if args.json {
        crate::output::json(&value)?;
    } else {
        crate::output::to_stdout(|out| print_text(out, &value, &alerts))?;
    }
    Ok(if alerts.is_empty() && !state_log_unreplayable(&value) {
        exit::OK
    } else {
        exit::PROBLEMS
    })
}

fn state_log_unreplayable(v: &Value) -> bool {
    v.get("state_log_unreplayable").and_then(Value::as_bool) == Some(true)
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}

fn print_text(out: &mut dyn Write, v: &Value, alerts: &[Value]) -> io::Result<()> {
    writeln!(
        out,
        "sidecar {}: {} partitions, {} segments, {} records journaled, {} events, {} anomalies, \
         {} layout anomalies",
        text(v, "state"),
        num(v, "partitions"),
        num(v, "segments"),
        num(v, "journaled"),
        num(v, "events"),
        num(v, "anomalies"),
        num(v, "layout_anomalies"),
    )?;
    if let Some(c) = v.get("coverage") {
        let left = num(c, "segments_left");
        writeln!(
            out,
            "coverage pass: {} of {} bytes verified{}",
            num(c, "bytes_verified"),
            num(c, "bytes_to_verify"),
            if left == 0 {
                ", done".to_string()
            } else {
                format!(", {left} open segments to go")
            }
        )?;
    }
    if state_log_unreplayable(v) {
        writeln!(
            out,
            "state/log holds an entry that stops iggy-server 0.6.0 at its next start: \
             `iggy-warden check` names it"
        )?;
    }
    let raised: u64 = v
        .get("alerts_raised")
        .and_then(Value::as_object)
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    if alerts.is_empty() {
        writeln!(
            out,
            "no alert in force ({raised} raised since the sidecar started)"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{} alerts in force ({raised} raised since the sidecar started):",
        alerts.len()
    )?;
    for a in alerts {
        writeln!(
            out,
            "  {} in segment {}: {}",
            text(a, "kind"),
            text(a, "segment"),
            text(a, "message")
        )?;
    }
    Ok(())
}
