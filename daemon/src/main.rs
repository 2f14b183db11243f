//! `iggy-warden`: keeps an Apache Iggy 0.6 data directory healthy across crashes.
//!
//! The binary edge: parses the command line, sets up logging, runs one command and
//! turns its outcome into an exit code (see [`exit`]). Errors are printed with their
//! whole chain of context, which names the file involved.

mod assets_cmd;
mod check_cmd;
mod config;
mod exit;
mod handover;
mod journal_cmd;
mod journal_copy;
mod journal_open;
mod journal_state;
mod logging;
mod metrics;
mod output;
mod progress;
mod recover_cmd;
mod repair;
mod replay_cmd;
mod restore_cmd;
mod session;
mod status_cmd;
mod watch;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "iggy-warden", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Verify a data directory without changing anything (exit 0 healthy and ready to
    /// start, 1 problems found, 2 could not check).
    Check(check_cmd::CheckArgs),
    /// Start-up hook: finish and make repairs, then exit 0 when iggy-server may start,
    /// 3 when the mode forbids a needed repair (nothing changed), 2 on errors.
    Recover(recover_cmd::RecoverArgs),
    /// Show the journal's history and the repair plan (dry run); --apply executes it.
    Replay(replay_cmd::ReplayArgs),
    /// Put back the bytes repairs quarantined.
    Restore(restore_cmd::RestoreArgs),
    /// The sidecar: journal segment events while iggy-server runs.
    Watch(watch::WatchArgs),
    /// Ask the running sidecar for its counters and the alerts in force (exit 0 no
    /// alert, 1 alerts in force, 2 no sidecar answers).
    Status(status_cmd::StatusArgs),
    /// Inspect the journal: show its records, verify it, compact it.
    Journal(journal_cmd::JournalArgs),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateAssets(assets_cmd::AssetsArgs),
}

fn main() -> ExitCode {
    logging::init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => check_cmd::run(args),
        Command::Recover(args) => recover_cmd::run(args),
        Command::Replay(args) => replay_cmd::run(args),
        Command::Restore(args) => restore_cmd::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Status(args) => status_cmd::run(args),
        Command::Journal(args) => journal_cmd::run(args),
        Command::GenerateAssets(args) => {
            assets_cmd::run(args, <Cli as clap::CommandFactory>::command())
        }
    };
    match result {
        Ok(code) => exit::code(code),
        Err(e) => {
            eprintln!("iggy-warden: error: {e:#}");
            exit::code(exit::ERROR)
        }
    }
}
