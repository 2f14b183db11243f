//! `iggy-warden`: keeps an Apache Iggy 0.6 data directory healthy across crashes.
//!
//! The binary edge: parses the command line, sets up logging, runs one command and
//! turns its outcome into an exit code (see [`exit`]). Errors are printed with their
//! whole chain of context, which names the file involved.

mod check_cmd;
mod exit;
mod progress;

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
    /// Verify a data directory without changing anything.
    Check(check_cmd::CheckArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => check_cmd::run(args),
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
