//! Running a built binary (the `iggy-warden` under test) from tests: its exit code and
//! output, and its peak memory.
//!
//! Every function takes the binary's path from the caller: an integration test of the
//! package that builds the binary has it as `env!("CARGO_BIN_EXE_<name>")`, and Cargo
//! builds that binary before the test. A path guessed here (from the test executable's
//! folder) would silently run a stale binary, or none, when the tests run without a
//! prior build of the whole workspace.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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

/// A command for `bin`, without the settings of the environment the tests run in that
/// would change what it does: a systemd `STATE_DIRECTORY`, and its log level (warnings
/// only, so that stderr holds what a test looks for).
pub fn command(bin: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_remove("STATE_DIRECTORY")
        .env("IGGY_WARDEN_LOG", "warn");
    cmd
}

/// Runs `bin ARGS...` and waits for it.
pub fn run<I, S>(bin: impl AsRef<OsStr>, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    command(bin)
        .args(args)
        .output()
        .expect("run the binary under test")
        .into()
}

/// Runs `bin ARGS... --data-dir DATA --state-dir STATE`.
pub fn run_on(bin: impl AsRef<OsStr>, args: &[&str], data: &Path, state: &Path) -> Run {
    let dirs = [
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
    ];
    run(bin, args.iter().map(OsStr::new).chain(dirs))
}

/// Runs `bin ARGS...` like [`run`], and also returns its peak resident set in bytes:
/// the child's own high-water mark (`VmHWM`), sampled while it runs.
pub fn run_measured<I, S>(bin: impl AsRef<OsStr>, args: I) -> (Run, u64)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command(bin);
    cmd.args(args);
    measured(cmd)
}

/// Runs `cmd` (stdout and stderr captured) and returns its result and peak RSS.
// The child is reaped by `wait4` below, which `Child::wait` cannot replace: only
// `wait4` reports that one child's resource usage.
#[allow(clippy::zombie_processes)]
pub fn measured(mut cmd: Command) -> (Run, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary under test");
    let pid_u32 = child.id();
    // The child's own high-water mark (VmHWM), read while it runs: wait4's ru_maxrss
    // also counts the parent's memory, which a child spawned with vfork shares until
    // its exec. Read every millisecond until the process is gone.
    let sampler = std::thread::spawn(move || {
        let mut peak = 0u64;
        let path = format!("/proc/{pid_u32}/status");
        while let Ok(status) = std::fs::read_to_string(&path) {
            let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            else {
                break; // a zombie: its memory is gone
            };
            peak = peak.max(kb * 1024);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        peak
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        out.read_to_end(&mut s).expect("read stdout");
        s
    });
    let mut stderr = Vec::new();
    err.read_to_end(&mut stderr).expect("read stderr");
    let stdout = reader.join().expect("stdout reader");
    let code = child
        .wait()
        .expect("wait for the binary under test")
        .code()
        .unwrap_or(-1);
    let peak = sampler.join().expect("memory sampler");
    let run = Run {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    (run, peak)
}
