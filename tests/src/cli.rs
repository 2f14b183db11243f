//! Running the `iggy-warden` binary from tests.
//!
//! `cargo test --workspace` builds the binary into the same target folder as the test
//! executables (`target/<profile>/iggy-warden` beside `target/<profile>/deps/`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// Runs `iggy-warden ARGS...` like [`warden`], and also returns its peak resident set
/// in bytes: the child's own high-water mark (`VmHWM`), sampled while it runs.
pub fn warden_measured<I, S>(args: I) -> (Run, u64)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(warden_bin());
    cmd.args(args)
        .env_remove("STATE_DIRECTORY")
        .env("IGGY_WARDEN_LOG", "warn");
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
        .expect("run iggy-warden");
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
        .expect("wait for iggy-warden")
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
