//! `inject-fault`: the harness's fault injectors as a command; what it does and prints is
//! described in [`harness::commands::inject_fault`].

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    harness::commands::inject_fault::run(&args).print()
}
