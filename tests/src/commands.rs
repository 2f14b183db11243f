//! The harness's commands (`inject-fault`, `valid-messages`) as functions from their
//! arguments to what they print and their exit code. The binaries under `src/bin/`
//! only print an [`Outcome`]; the integration tests call these functions directly,
//! because they belong to the package of `iggy-warden` (to run the binary Cargo built
//! for them) and Cargo names only a package's own binaries to its tests.

pub mod inject_fault;
pub mod valid_messages;

use std::io::Write;
use std::process::ExitCode;

/// What a command printed, and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// 0 on success, 2 when the command refused (bad arguments, nothing it could do).
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn success(stdout: String) -> Self {
        Self {
            code: 0,
            stdout,
            stderr: String::new(),
        }
    }

    fn refused(stderr: String) -> Self {
        Self {
            code: 2,
            stdout: String::new(),
            stderr,
        }
    }

    /// Prints the output where the command's caller expects it and returns the exit
    /// code, for a binary's `main`.
    pub fn print(self) -> ExitCode {
        // A closed pipe (`inject-fault --list | head -1`) is not worth a panic.
        let _ = std::io::stdout().write_all(self.stdout.as_bytes());
        let _ = std::io::stderr().write_all(self.stderr.as_bytes());
        ExitCode::from(self.code)
    }
}
