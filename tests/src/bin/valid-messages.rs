//! `valid-messages`: the harness's resynchronising scanner as a command; what it does and prints is
//! described in [`harness::commands::valid_messages`].

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    harness::commands::valid_messages::run(&args).print()
}
