//! Settings shared by every command: command-line flags, then `IGGY_WARDEN_*`
//! environment variables (both through clap), then an optional TOML file, then
//! defaults. The file is the one both systemd units read
//! (`/etc/iggy-warden/config.toml` in the package).

use anyhow::Context;
use recovery::names::escaped;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Keys of the TOML file. Every key is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The iggy-server data directory (`system.path`).
    pub data_dir: Option<PathBuf>,
    /// Where the journal and the quarantine live.
    pub state_dir: Option<PathBuf>,
    /// Recovery mode: tolerate-tail, point-in-time, salvage or absolute. Without it,
    /// tolerate-tail; the packaged file sets salvage, for unattended restarts.
    pub mode: Option<recovery::plan::Mode>,
    /// `recover` moves consumer offsets stored past their partition's end back to its
    /// last message (see `--reset-offsets-ahead`); default false.
    pub reset_offsets_ahead: Option<bool>,
    /// How often the sidecar checkpoints verified bytes of open segments, in ms.
    pub checkpoint_interval_ms: Option<u64>,
    /// How often the sidecar reads and verifies newly written bytes, in ms (default
    /// 100; never less often than it checkpoints).
    pub verify_interval_ms: Option<u64>,
    /// The sidecar serves Prometheus metrics over HTTP on this address (e.g.
    /// "127.0.0.1:9464"); off when absent.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The sidecar writes its metrics to this node_exporter textfile (`*.prom`,
    /// absolute, replaced atomically); off when absent.
    pub metrics_textfile: Option<PathBuf>,
    /// How often computed metrics and the textfile are refreshed, in ms.
    pub metrics_interval_ms: Option<u64>,
    /// Partitions with checkpoint-lag series of their own (the worst ones).
    pub metrics_top_partitions: Option<usize>,
    /// Checkpoint intervals a partition may stay with a message written in part
    /// before the sidecar's stalled-write alert (default 10).
    pub stall_alert_checkpoints: Option<u32>,
    /// MiB per second the sidecar's background coverage pass may read (default 32;
    /// 0: no limit, the open segments are verified at once after start-up).
    pub coverage_mib_per_sec: Option<u64>,
}

/// Largest configuration file read: a real one is a few hundred bytes.
pub const MAX_CONFIG_LEN: u64 = 1 << 20;

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = read_config(path)?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", escaped(path)))
    }
}

/// The text of the configuration file: a regular file (a link to one is fine) of at
/// most [`MAX_CONFIG_LEN`] bytes. A device such as /dev/zero, a FIFO or a folder is
/// refused before anything is read, and a file that grows while read is cut off.
fn read_config(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = || format!("cannot read config file {}", path.display());
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(cannot)?;
    let meta = file.metadata().with_context(cannot)?;
    if !meta.is_file() {
        anyhow::bail!(
            "config file {} is not a regular file ({})",
            path.display(),
            kind_of(&meta.file_type())
        );
    }
    let too_big = || {
        anyhow::anyhow!(
            "config file {} is larger than the {MAX_CONFIG_LEN} bytes (1 MiB) a configuration file may have",
            path.display(),
        )
    };
    if meta.len() > MAX_CONFIG_LEN {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_LEN + 1)
        .read_to_end(&mut bytes)
        .with_context(cannot)?;
    if bytes.len() as u64 > MAX_CONFIG_LEN {
        return Err(too_big());
    }
    String::from_utf8(bytes)
        .with_context(|| format!("invalid config file {}: not UTF-8 text", path.display()))
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Options every command that touches a data directory takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DirArgs {
    /// The iggy-server data directory (its `system.path`, e.g. local_data).
    #[arg(long, global = true, env = "IGGY_WARDEN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else
    /// <data-dir>.warden beside the data directory]. Never inside the data directory.
    #[arg(long, global = true, env = "IGGY_WARDEN_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead,
    /// checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints,
    /// coverage_mib_per_sec, metrics_*).
    #[arg(long, global = true, env = "IGGY_WARDEN_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Default interval between checkpoints of an open segment (`watch`).
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 1000;

/// Default interval between verifications of newly written bytes (`watch`): short,
/// because the 0.6.0 rotation race can panic the server a second after its first
/// trace on disk, and reading a few new bytes costs little; checkpoints, which cost a
/// journal record, keep their own longer interval.
pub const DEFAULT_VERIFY_INTERVAL_MS: u64 = 100;

/// Default number of checkpoint intervals a partition may stay with a message
/// written in part before the `stalled-write` alert (`watch`).
pub const DEFAULT_STALL_CHECKPOINTS: u32 = 10;

/// Default rate of `watch`'s coverage pass: a tenth or less of what one SSD reads
/// sequentially.
pub const DEFAULT_COVERAGE_MIB_PER_SEC: u64 = 32;

/// A command's settings, resolved once: the directories, and the config file whose
/// other keys each command reads through the methods below (a flag, which clap also
/// fills from its environment variable, beats the file, which beats the default).
#[derive(Clone, Debug)]
pub struct Dirs {
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
    pub file: FileConfig,
}

impl Dirs {
    /// The recovery mode: the flag (or IGGY_WARDEN_MODE), else the config file, else
    /// tolerate-tail.
    pub fn mode(&self, flag: Option<recovery::plan::Mode>) -> recovery::plan::Mode {
        flag.or(self.file.mode).unwrap_or_default()
    }

    /// Whether a repairing run resets consumer offsets past their partition's end:
    /// the flag, else the config file, else no.
    pub fn reset_offsets_ahead(&self, flag: bool) -> bool {
        flag || self.file.reset_offsets_ahead.unwrap_or(false)
    }

    /// How often `watch` checkpoints verified bytes; at least 1 ms.
    pub fn checkpoint_interval(&self, flag_ms: Option<u64>) -> anyhow::Result<Duration> {
        let ms = flag_ms
            .or(self.file.checkpoint_interval_ms)
            .unwrap_or(DEFAULT_CHECKPOINT_INTERVAL_MS);
        if ms == 0 {
            anyhow::bail!("checkpoint interval must be at least 1 ms");
        }
        Ok(Duration::from_millis(ms))
    }

    /// How often `watch` verifies newly written bytes: at least 1 ms, and at most the
    /// checkpoint interval (a checkpoint only journals what was verified).
    pub fn verify_interval(
        &self,
        flag_ms: Option<u64>,
        checkpoint_interval: Duration,
    ) -> anyhow::Result<Duration> {
        let ms = flag_ms
            .or(self.file.verify_interval_ms)
            .unwrap_or(DEFAULT_VERIFY_INTERVAL_MS);
        if ms == 0 {
            anyhow::bail!("verify interval must be at least 1 ms");
        }
        Ok(Duration::from_millis(ms).min(checkpoint_interval))
    }

    /// Checkpoint intervals before `watch`'s stalled-write alert; at least 1.
    pub fn stall_alert_checkpoints(&self, flag: Option<u32>) -> anyhow::Result<u32> {
        let stall = flag
            .or(self.file.stall_alert_checkpoints)
            .unwrap_or(DEFAULT_STALL_CHECKPOINTS);
        if stall == 0 {
            anyhow::bail!("stall_alert_checkpoints must be at least 1");
        }
        Ok(stall)
    }

    /// Bytes per second `watch`'s coverage pass may read; 0: no limit.
    pub fn coverage_rate(&self, flag_mib_per_sec: Option<u64>) -> u64 {
        flag_mib_per_sec
            .or(self.file.coverage_mib_per_sec)
            .unwrap_or(DEFAULT_COVERAGE_MIB_PER_SEC)
            .saturating_mul(1 << 20)
    }

    /// The metrics exporter's settings (config file only); `None`: no metrics.
    pub fn metrics(&self) -> anyhow::Result<Option<crate::metrics::Settings>> {
        let f = &self.file;
        crate::metrics::Settings::from_config(
            f.metrics_listen,
            f.metrics_textfile.clone(),
            f.metrics_interval_ms,
            f.metrics_top_partitions,
            &self.data_dir,
        )
        .context("invalid metrics settings in the config file")
    }
}

impl DirArgs {
    pub fn file_config(&self) -> anyhow::Result<FileConfig> {
        FileConfig::load(self.config.as_deref())
    }

    /// The data directory, required.
    pub fn data_dir(&self, file: &FileConfig) -> anyhow::Result<PathBuf> {
        self.data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .context("no data directory given: use --data-dir, IGGY_WARDEN_DATA_DIR or data_dir in the config file")
    }

    pub fn resolve(&self) -> anyhow::Result<Dirs> {
        let file = self.file_config()?;
        let data_dir = self.data_dir(&file)?;
        let state_dir = match self.state_dir.clone().or_else(|| file.state_dir.clone()) {
            Some(dir) => dir,
            None => default_state_dir(&data_dir, std::env::var_os("STATE_DIRECTORY"))?,
        };
        refuse_inside(&data_dir, &state_dir)?;
        Ok(Dirs {
            data_dir: resolved(&data_dir),
            state_dir: resolved(&state_dir),
            file,
        })
    }

    /// The state directory alone, for commands that need no data directory (journal
    /// inspection); falls back to the data directory's sibling when one is known.
    pub fn state_dir_only(&self) -> anyhow::Result<PathBuf> {
        let file = self.file_config()?;
        if let Some(dir) = self.state_dir.clone().or_else(|| file.state_dir.clone()) {
            return Ok(dir);
        }
        if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
            return Ok(first_of_list(&dir));
        }
        let data_dir = self.data_dir(&file).context(
            "no state directory: use --state-dir, or --data-dir to use <data-dir>.warden",
        )?;
        default_state_dir(&data_dir, None)
    }
}

/// `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else `<data-dir>.warden` beside
/// the data directory: our state must never sit where iggy-server scans.
fn default_state_dir(
    data_dir: &Path,
    state_directory: Option<std::ffi::OsString>,
) -> anyhow::Result<PathBuf> {
    if let Some(dir) = state_directory {
        return Ok(first_of_list(&dir));
    }
    let name = data_dir
        .file_name()
        .with_context(|| format!("cannot name a state directory beside {}", escaped(data_dir)))?;
    let mut sibling = name.to_os_string();
    sibling.push(".warden");
    Ok(data_dir.with_file_name(sibling))
}

/// systemd passes a colon-separated list when a unit names several state directories.
fn first_of_list(list: &std::ffi::OsStr) -> PathBuf {
    let text = list.to_string_lossy();
    PathBuf::from(text.split(':').next().unwrap_or_default())
}

/// `path` with every symbolic link on the way resolved, once, at start: from then on
/// nothing follows a link (`local_data → /mnt/ssd/…` is common). A path that does not
/// exist (yet) stays as given.
pub fn resolved(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn refuse_inside(data_dir: &Path, state_dir: &Path) -> anyhow::Result<()> {
    let data = comparable(data_dir);
    let state = comparable(state_dir);
    if state.starts_with(&data) {
        anyhow::bail!(
            "state directory {} is inside the data directory {}: iggy-server would scan it",
            escaped(state_dir),
            escaped(data_dir)
        );
    }
    Ok(())
}

/// `path` as the file system resolves it, whether or not it exists yet: relative to
/// the current folder, its longest existing part with links resolved, and the rest
/// (which does not exist, so holds no link) with `.` and `..` applied by name. So
/// `st`, `./data/../data/st` and `/abs/data/st` compare equal from inside `/abs`.
fn comparable(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<Component<'_>> = absolute.components().collect();
    for existing in (0..=parts.len()).rev() {
        let prefix: PathBuf = parts.iter().take(existing).collect();
        let Ok(mut out) = std::fs::canonicalize(&prefix) else {
            continue;
        };
        for part in parts.iter().skip(existing) {
            match part {
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                other => out.push(other.as_os_str()),
            }
        }
        return out;
    }
    absolute
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_state_dir_is_a_sibling_or_systemds() {
        let d = default_state_dir(Path::new("/srv/iggy/local_data"), None).unwrap();
        assert_eq!(d, PathBuf::from("/srv/iggy/local_data.warden"));
        let d = default_state_dir(
            Path::new("/srv/iggy/local_data"),
            Some("/var/lib/iggy-warden:/var/lib/other".into()),
        )
        .unwrap();
        assert_eq!(d, PathBuf::from("/var/lib/iggy-warden"));
    }

    #[test]
    fn state_dir_inside_data_dir_is_refused() {
        assert!(refuse_inside(Path::new("/a/data"), Path::new("/a/data/st")).is_err());
        assert!(refuse_inside(Path::new("/a/data"), Path::new("/a/data.warden")).is_ok());
        assert!(refuse_inside(Path::new("/a/data"), Path::new("/a/data/x/../st")).is_err());
        assert!(refuse_inside(Path::new("/a/data"), Path::new("/a/data/../st")).is_ok());
        assert!(refuse_inside(Path::new("/a/data"), Path::new("/a/data")).is_err());
    }

    #[test]
    fn paths_compare_as_the_file_system_resolves_them() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, tmp.path().join("link")).unwrap();
        let canon = std::fs::canonicalize(&real).unwrap();
        assert_eq!(
            comparable(&tmp.path().join("link/new/./x/..")),
            canon.join("new")
        );
        assert_eq!(comparable(&tmp.path().join("real/../real")), canon);
        // Relative paths are taken from the current folder.
        let cwd = std::fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
        assert_eq!(
            comparable(Path::new("not-there/st")),
            cwd.join("not-there/st")
        );
    }
}
