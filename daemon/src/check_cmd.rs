//! `iggy-warden check`: read-only verification of a data directory.

use crate::exit;
use crate::progress::TerminalProgress;
use anyhow::Context;
use recovery::guided::analyze_without_history;
use recovery::layout::{classify_root, discover, Root};
use recovery::names::escaped;
use recovery::pipeline::Progress as _;
use recovery::report::CheckReport;
use std::io::{self, Write};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The iggy-server data directory (its `system.path`, e.g. local_data).
    #[arg(long, env = "IGGY_WARDEN_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    let report = check(args)?;
    if args.json {
        crate::output::json(&report)?;
    } else {
        crate::output::to_stdout(|out| print_human(&report, out))?;
    }
    Ok(if report.ready_to_start {
        exit::OK
    } else {
        exit::PROBLEMS
    })
}

fn check(args: &CheckArgs) -> anyhow::Result<CheckReport> {
    let data_dir = crate::config::resolved(&args.data_dir);
    let root = classify_root(&data_dir).context("cannot check the data directory")?;
    if let Root::Fresh { why } = root {
        return Ok(CheckReport::nothing_to_check(&args.data_dir, why));
    }
    let layout = discover(&data_dir).context("cannot check the data directory")?;
    let progress = TerminalProgress::new("scanning");
    progress.start(layout.log_bytes());
    let analysis = analyze_without_history(&layout, &|n| progress.advance(n))
        .context("cannot check the data directory")?;
    progress.finish();
    CheckReport::new(&analysis)
        .with_salvage_view(&analysis)
        .context("cannot check the data directory")
}

fn print_human(r: &CheckReport, out: &mut dyn Write) -> io::Result<()> {
    if let Some(why) = &r.nothing_to_check {
        writeln!(
            out,
            "nothing to check: {why} (a first start): ready to start"
        )?;
        return Ok(());
    }
    for p in &r.partition_reports {
        let state = if p.ready {
            "ok".to_string()
        } else {
            format!(
                "{} problem{}",
                p.problems,
                if p.problems == 1 { "" } else { "s" }
            )
        };
        writeln!(
            out,
            "partition {:<12} {:>4} segments {:>10} messages  {}",
            p.partition.to_string(),
            p.segments,
            p.messages,
            state
        )?;
    }
    for problem in &r.problems {
        writeln!(out, "  {problem}")?;
    }
    for p in &r.partition_reports {
        if let Some(modes) = &p.modes {
            writeln!(out, "  partition {}: {modes}", p.partition)?;
        }
    }
    writeln!(out, "  {}", r.state)?;
    for ahead in &r.offsets_ahead {
        writeln!(out, "  warning: {ahead}")?;
    }
    for stray in &r.strays {
        writeln!(
            out,
            "  stray (left alone): {}: {}",
            escaped(&stray.path),
            stray.reason
        )?;
    }
    writeln!(
        out,
        "{} partitions, {} segments, {} valid messages, {} problems: {}",
        r.partitions,
        r.segments,
        r.messages,
        r.problems.len(),
        if r.ready_to_start {
            "ready to start"
        } else {
            "NOT ready to start"
        }
    )?;
    Ok(())
}
