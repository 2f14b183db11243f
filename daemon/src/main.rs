//! `iggy-warden`: keeps an Apache Iggy 0.6 data directory healthy across crashes.
//!
//! The binary edge: parses the command line, sets up logging, runs one command and
//! turns its outcome into an exit code (see [`exit`]). Errors are printed with their
//! whole chain of context, which names the file involved.

mod check_cmd;
mod config;
mod exit;
mod handover;
mod progress;
mod recover_cmd;
mod repair;
mod replay_cmd;
mod restore_cmd;
mod session;
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
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => check_cmd::run(args),
        Command::Recover(args) => recover_cmd::run(args),
        Command::Replay(args) => replay_cmd::run(args),
        Command::Restore(args) => restore_cmd::run(args),
        Command::Watch(args) => watch::run(args),
    };
    match result {
        Ok(code) => exit::code(code),
        Err(e) => {
            eprintln!("iggy-warden: error: {e:#}");
            exit::code(exit::ERROR)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IGGY_WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
