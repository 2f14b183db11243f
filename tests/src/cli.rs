//! Running the `iggy-warden` binary from tests.
//!
//! `cargo test --workspace` builds the binary into the same target folder as the test
//! executables (`target/<profile>/iggy-warden` beside `target/<profile>/deps/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the built `iggy-warden` binary.
pub fn warden_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("IGGY_WARDEN_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("iggy-warden");
    assert!(
        bin.exists(),
        "{} not built: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `iggy-warden ARGS...` and waits for it.
pub fn warden<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(warden_bin())
        .args(args)
        .env_remove("STATE_DIRECTORY")
        .env("IGGY_WARDEN_LOG", "warn")
        .output()
        .expect("run iggy-warden")
        .into()
}

/// Runs `iggy-warden ARGS... --data-dir DATA --state-dir STATE`.
pub fn warden_on(args: &[&str], data: &Path, state: &Path) -> Run {
    let dirs = [
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
    ];
    warden(args.iter().map(std::ffi::OsStr::new).chain(dirs))
}
