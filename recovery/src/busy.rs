//! Finds processes that hold files under the data directory open, by reading
//! `/proc/<pid>/fd`. iggy-server 0.6.0 keeps four descriptors open per loaded segment
//! for its whole run and takes no lock on the directory, so an open descriptor is the
//! reliable sign that it (or anything else) is still using the data.

use serde::Serialize;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A process holding a file under the data directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
    pub path: PathBuf,
}

/// What a search of `/proc` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BusyReport {
    pub holders: Vec<Holder>,
    /// Processes whose descriptors we may not read (owned by another user): they
    /// could hold files without our knowing.
    pub uninspectable: usize,
}

/// Processes other than this one with a file under `dir` open.
pub fn holders_of(dir: &Path) -> io::Result<BusyReport> {
    holders_in(Path::new("/proc"), dir, std::process::id())
}

fn holders_in(proc_root: &Path, dir: &Path, own_pid: u32) -> io::Result<BusyReport> {
    let dir = fs::canonicalize(dir)?;
    let mut report = BusyReport::default();
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own_pid {
            continue;
        }
        let fds = match fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                report.uninspectable += 1;
                continue;
            }
            // The process ended while we looked.
            Err(_) => continue,
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            if target.starts_with(&dir) {
                let command = fs::read_to_string(entry.path().join("comm"))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                report.holders.push(Holder {
                    pid,
                    command,
                    path: target,
                });
                break;
            }
        }
    }
    report.holders.sort_by_key(|h| h.pid);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn finds_a_child_holding_a_file_and_ignores_itself() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("held.log");
        File::create(&file).unwrap();
        // This process holds a file: not reported, it is us.
        let _own = File::open(&file).unwrap();
        assert!(holders_of(dir.path()).unwrap().holders.is_empty());
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec sleep 30 3<\"$0\"")
            .arg(&file)
            .spawn()
            .unwrap();
        let mut found = Vec::new();
        for _ in 0..100 {
            found = holders_of(dir.path()).unwrap().holders;
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pid, child.id());
        assert!(found[0].path.ends_with("held.log"));
    }
}
