//! Discovery of an Iggy 0.6 data directory: which partitions, segments and consumer
//! offset files exist, and which files do not belong.
//!
//! Discovery only lists and stats; it reads no segment bytes. Files it does not
//! recognise are reported as strays and never touched by any later step. The server's
//! own `logs/`, `runtime/` and `backup/` folders are not data and are skipped.

use crate::names::escaped;
use crate::parallel::{map_ordered, IO_THREADS};
use crate::state_check::StateInspection;
use crate::state_info::Info;
use journal::{PartitionId, SegmentKey};
use serde::Serialize;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Top-level folders that hold no stream data.
const IGNORED_TOP_LEVEL: [&str; 3] = ["logs", "runtime", "backup"];

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("data directory {} does not exist", escaped(.path))]
    NotFound { path: PathBuf },
    #[error("{} is not a directory", escaped(.path))]
    NotADirectory { path: PathBuf },
    #[error("cannot read {}: {source}", escaped(.path))]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{} says version {version:?}: only the Iggy 0.6 on-disk format is supported",
        escaped(.path)
    )]
    UnsupportedVersion { path: PathBuf, version: String },
    #[error(
        "{} is not an Iggy 0.6 data directory: it has no state/info, and it holds {found}",
        escaped(.path)
    )]
    NotIggy { path: PathBuf, found: String },
}

impl LayoutError {
    fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            LayoutError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            LayoutError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// A data directory as found on disk.
#[derive(Clone, Debug, Serialize)]
pub struct DataDir {
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub root: PathBuf,
    /// Version string from `state/info`, when that file exists.
    pub version: Option<String>,
    pub partitions: Vec<PartitionLayout>,
    pub strays: Vec<Stray>,
    /// `state/log`, `state/info`, and the metadata compared with every partition
    /// folder (all of them, even when `partitions` is later narrowed).
    pub state: StateInspection,
}

impl DataDir {
    pub fn segment_count(&self) -> usize {
        self.partitions.iter().map(|p| p.segments.len()).sum()
    }

    /// Bytes of all `.log` files: the work a full scan has to do.
    pub fn log_bytes(&self) -> u64 {
        self.partitions
            .iter()
            .flat_map(|p| &p.segments)
            .filter_map(|s| s.log_len)
            .sum()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PartitionLayout {
    pub id: PartitionId,
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub dir: PathBuf,
    /// Sorted by start offset.
    pub segments: Vec<SegmentFiles>,
    pub offset_files: Vec<OffsetFile>,
    /// `.log` files that are not segments, here or in any subfolder: iggy-server 0.6.0
    /// loads every `*.log` below a partition folder and panics on a name that is not
    /// a number.
    #[serde(serialize_with = "crate::names::serialize_paths")]
    pub stray_logs: Vec<PathBuf>,
    /// `offsets`, `offsets/consumers` or `offsets/groups` folders that do not exist:
    /// the server creates them for every partition and fails to start without them.
    #[serde(serialize_with = "crate::names::serialize_paths")]
    pub missing_offset_dirs: Vec<PathBuf>,
}

/// The files of one segment; either may be absent when a crash left half a pair.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentFiles {
    pub key: SegmentKey,
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub log_path: PathBuf,
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub index_path: PathBuf,
    pub log_len: Option<u64>,
    pub index_len: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetKind {
    Consumer,
    Group,
}

/// A stored consumer or consumer-group offset: 8 bytes, u64 little-endian.
#[derive(Clone, Debug, Serialize)]
pub struct OffsetFile {
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub path: PathBuf,
    pub kind: OffsetKind,
    pub len: u64,
    /// The stored offset, when the file has exactly 8 bytes.
    pub value: Option<u64>,
}

/// A file or folder that is not part of the 0.6 layout: reported, never touched.
#[derive(Clone, Debug, Serialize)]
pub struct Stray {
    #[serde(serialize_with = "crate::names::serialize_path")]
    pub path: PathBuf,
    pub reason: String,
}

/// Lists `root` and everything below it that belongs to the 0.6 layout.
pub fn discover(root: &Path) -> Result<DataDir, LayoutError> {
    discover_guided(root, None)
}

/// [`discover`], trusting `state/log` up to where a journal says it was verified (see
/// [`crate::state_log::parse_guided`]).
pub fn discover_guided(
    root: &Path,
    state_log: Option<crate::state_log::Trusted>,
) -> Result<DataDir, LayoutError> {
    let version = check_root(root)?;
    let mut strays = Vec::new();
    let mut folders = Vec::new();
    for entry in list(root)? {
        match entry.name.as_str() {
            "streams" if entry.is_dir => {
                walk_streams(&entry.path, &mut folders, &mut strays)?;
            }
            "state" if entry.is_dir => {}
            name if IGNORED_TOP_LEVEL.contains(&name) => {}
            _ => strays.push(Stray {
                path: entry.path,
                reason: "not part of an Iggy 0.6 data directory".into(),
            }),
        }
    }
    // Partition folders are listed in parallel: on a cold cache each one is a few
    // reads from the disk, and a thousand of them one after another was most of a
    // guided recovery's time.
    let read = map_ordered(&folders, IO_THREADS, |(id, dir)| {
        let mut found = Vec::new();
        read_partition(*id, dir, &mut found).map(|p| (p, found))
    })?;
    let mut partitions = Vec::with_capacity(read.len());
    for (partition, found) in read {
        partitions.push(partition);
        strays.extend(found);
    }
    partitions.sort_by_key(|p: &PartitionLayout| p.id);
    strays.sort_by(|a, b| a.path.cmp(&b.path));
    let state = crate::state_check::inspect_guided(root, &partitions, state_log)?;
    Ok(DataDir {
        root: root.to_path_buf(),
        version,
        partitions,
        strays,
        state,
    })
}

/// What a data directory path holds, judged before any segment is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    /// Nothing iggy-server wrote yet, a first start: the path does not exist, or is
    /// an empty folder, or holds nothing but what the server creates before it writes
    /// `state/info` (its `logs/` and `runtime/` folders, empty `state/`, `streams/`
    /// or `backup/` folders). `why` says which.
    Fresh { why: String },
    /// An Iggy 0.6 data directory: `state/info` names this version, or `state/info`
    /// does not decode or only `state/log` is there (`None`: the state files' check
    /// judges them).
    Iggy { version: Option<String> },
}

/// Classifies `root` for the commands that judge a whole data directory (`check`,
/// `recover`, `replay`): a first start has nothing to check, a folder with data but
/// no `state/info` is not an Iggy 0.6 data directory ([`LayoutError::NotIggy`]),
/// and a `state/info` of another version is refused.
pub fn classify_root(root: &Path) -> Result<Root, LayoutError> {
    match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Root::Fresh {
                why: format!("{} does not exist", root.display()),
            })
        }
        Err(e) => return Err(LayoutError::io(root, e)),
        Ok(meta) if !meta.is_dir() => {
            return Err(LayoutError::NotADirectory {
                path: root.to_path_buf(),
            })
        }
        Ok(_) => {}
    }
    if let Some(version) = read_version(root)? {
        return Ok(Root::Iggy {
            version: Some(version),
        });
    }
    // A state/info that does not decode, or only a state/log (a repair quarantined a
    // cut-short state/info: the server writes a new one), is still the server's.
    let state_file = |rel| fs::symlink_metadata(root.join(rel)).is_ok();
    if state_file(crate::state_check::INFO_REL) || state_file(crate::state_check::LOG_REL) {
        return Ok(Root::Iggy { version: None });
    }
    let entries = list(root)?;
    let mut others = Vec::new();
    for entry in &entries {
        if !made_before_state_info(entry)? {
            others.push(entry.name.as_str());
        }
    }
    if others.is_empty() {
        let why = if entries.is_empty() {
            format!("{} is empty", root.display())
        } else {
            format!(
                "{} holds only folders iggy-server creates before state/info",
                root.display()
            )
        };
        return Ok(Root::Fresh { why });
    }
    const SHOWN: usize = 5;
    let mut found = others
        .iter()
        .take(SHOWN)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if others.len() > SHOWN {
        found.push_str(&format!(" and {} more", others.len() - SHOWN));
    }
    Err(LayoutError::NotIggy {
        path: root.to_path_buf(),
        found,
    })
}

/// Whether a top-level entry is one iggy-server makes on its first start before it
/// writes `state/info`: its log and runtime folders, or an empty data folder.
fn made_before_state_info(entry: &Entry) -> Result<bool, LayoutError> {
    if !entry.is_dir {
        return Ok(false);
    }
    match entry.name.as_str() {
        "logs" | "runtime" => Ok(true),
        "state" | "streams" | "backup" => {
            let mut items =
                fs::read_dir(&entry.path).map_err(|e| LayoutError::io(&entry.path, e))?;
            Ok(items.next().is_none())
        }
        _ => Ok(false),
    }
}

/// Checks that `root` is a folder and, when it says which, of format 0.6; returns
/// the version string. The part of [`discover`] that lists nothing.
pub fn check_root(root: &Path) -> Result<Option<String>, LayoutError> {
    let meta = fs::metadata(root).map_err(|e| LayoutError::io(root, e))?;
    if !meta.is_dir() {
        return Err(LayoutError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    read_version(root)
}

/// Refuses a `state/info` that names any version but 0.6.x; returns the version. A
/// record that does not decode is judged with the state files (`state_check`).
fn read_version(root: &Path) -> Result<Option<String>, LayoutError> {
    let path = root.join(crate::state_check::INFO_REL);
    let bytes = match read_head(&path, INFO_READ) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LayoutError::io(&path, e)),
    };
    let version = match crate::state_info::judge(&bytes) {
        Info::Sound { version } => version,
        // A record of another format may not decode as 0.6's: its version says.
        Info::Bad {
            version: Some(version),
            ..
        } if crate::state_info::is_version(&version) => version,
        _ => return Ok(None),
    };
    if !version.starts_with("0.6.") {
        return Err(LayoutError::UnsupportedVersion { path, version });
    }
    Ok(Some(version))
}

/// Bytes of `state/info` read at most: the record is tens of bytes; a larger file is
/// judged (and refused) on its first 64 KiB rather than read whole.
const INFO_READ: u64 = 64 << 10;

/// The first `max` bytes of the regular file at `path`, whatever its size; anything
/// but a regular file is refused (a device would read forever; a FIFO is opened
/// without waiting for a writer, then refused).
fn read_head(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut out = Vec::new();
    file.take(max).read_to_end(&mut out)?;
    Ok(out)
}

struct Entry {
    name: String,
    path: PathBuf,
    is_dir: bool,
    is_file: bool,
    len: u64,
}

/// Lists a folder without following symbolic links, sorted by name. Only regular
/// files are stat'ed (for their length): the kind of the others comes with the
/// listing, which saves a system call per entry on the start-up path.
fn list(dir: &Path) -> Result<Vec<Entry>, LayoutError> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| LayoutError::io(dir, e))? {
        let item = item.map_err(|e| LayoutError::io(dir, e))?;
        let path = item.path();
        let kind = item.file_type().map_err(|e| LayoutError::io(&path, e))?;
        let len = if kind.is_file() {
            item.metadata()
                .map_err(|e| LayoutError::io(&path, e))?
                .len()
        } else {
            0
        };
        out.push(Entry {
            name: item.file_name().to_string_lossy().into_owned(),
            path,
            is_dir: kind.is_dir(),
            is_file: kind.is_file(),
            len,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Folder names of streams, topics and partitions: decimal numbers.
fn numeric_dir(entry: &Entry) -> Option<u32> {
    if !entry.is_dir || entry.name.is_empty() || !entry.name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    entry.name.parse().ok()
}

fn stray(entry: Entry, reason: &str) -> Stray {
    Stray {
        path: entry.path,
        reason: reason.to_string(),
    }
}

/// Finds the partition folders under `streams/`, reporting strays on the way.
fn walk_streams(
    streams: &Path,
    partitions: &mut Vec<(PartitionId, PathBuf)>,
    strays: &mut Vec<Stray>,
) -> Result<(), LayoutError> {
    for s in list(streams)? {
        let Some(stream) = numeric_dir(&s) else {
            strays.push(stray(s, "not a numbered stream folder"));
            continue;
        };
        for t in list(&s.path)? {
            if t.name != "topics" || !t.is_dir {
                strays.push(stray(t, "unexpected in a stream folder"));
                continue;
            }
            for topic_entry in list(&t.path)? {
                let Some(topic) = numeric_dir(&topic_entry) else {
                    strays.push(stray(topic_entry, "not a numbered topic folder"));
                    continue;
                };
                for p in list(&topic_entry.path)? {
                    if p.name != "partitions" || !p.is_dir {
                        strays.push(stray(p, "unexpected in a topic folder"));
                        continue;
                    }
                    for part_entry in list(&p.path)? {
                        let Some(partition) = numeric_dir(&part_entry) else {
                            strays.push(stray(part_entry, "not a numbered partition folder"));
                            continue;
                        };
                        let id = PartitionId::new(stream, topic, partition);
                        partitions.push((id, part_entry.path));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Splits `<20 digits>.log` / `<20 digits>.index` into start offset and kind.
fn segment_file(name: &str) -> Option<(u64, bool)> {
    let (stem, is_log) = if let Some(stem) = name.strip_suffix(".log") {
        (stem, true)
    } else {
        (name.strip_suffix(".index")?, false)
    };
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, is_log))
}

fn read_partition(
    id: PartitionId,
    dir: &Path,
    strays: &mut Vec<Stray>,
) -> Result<PartitionLayout, LayoutError> {
    let mut segments: Vec<SegmentFiles> = Vec::new();
    let mut offset_files = Vec::new();
    let mut stray_logs = Vec::new();
    // `offsets` itself first, so creating (and restoring) goes folder by folder.
    let offsets = dir.join("offsets");
    let mut missing_offset_dirs = vec![
        offsets.clone(),
        offsets.join("consumers"),
        offsets.join("groups"),
    ];
    for entry in list(dir)? {
        if entry.name == "offsets" {
            missing_offset_dirs.clear();
            if entry.is_dir {
                let present =
                    read_offsets(&entry.path, &mut offset_files, &mut stray_logs, strays)?;
                missing_offset_dirs.extend(
                    [("consumers", present.consumers), ("groups", present.groups)]
                        .into_iter()
                        .filter(|(_, found)| !found)
                        .map(|(name, _)| entry.path.join(name)),
                );
                continue;
            }
        }
        let Some((start, is_log)) = segment_file(&entry.name).filter(|_| entry.is_file) else {
            find_logs(&entry.path, &mut stray_logs)?;
            strays.push(stray(entry, "not a segment file"));
            continue;
        };
        let pos = match segments.iter().position(|s| s.key.start_offset == start) {
            Some(pos) => pos,
            None => {
                let key = id.segment(start);
                segments.push(SegmentFiles {
                    key,
                    log_path: dir.join(format!("{}.log", key.file_stem())),
                    index_path: dir.join(format!("{}.index", key.file_stem())),
                    log_len: None,
                    index_len: None,
                });
                segments.len() - 1
            }
        };
        if let Some(seg) = segments.get_mut(pos) {
            if is_log {
                seg.log_len = Some(entry.len);
            } else {
                seg.index_len = Some(entry.len);
            }
        }
    }
    segments.sort_by_key(|s| s.key.start_offset);
    stray_logs.sort();
    Ok(PartitionLayout {
        id,
        dir: dir.to_path_buf(),
        segments,
        offset_files,
        stray_logs,
        missing_offset_dirs,
    })
}

/// Every file named `*.log` at or below `path`, as the server's recursive walk of a
/// partition folder would find it (symbolic links are not followed).
fn find_logs(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), LayoutError> {
    let meta = fs::symlink_metadata(path).map_err(|e| LayoutError::io(path, e))?;
    if meta.is_dir() {
        for entry in list(path)? {
            find_logs(&entry.path, out)?;
        }
    } else if is_log_name(path) {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn is_log_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "log")
}

/// Which of the two folders the server needs an `offsets` folder had.
struct OffsetDirs {
    consumers: bool,
    groups: bool,
}

/// Reads the offset files and, in the same walk, finds `*.log` files the server's
/// recursive walk would take for segments.
fn read_offsets(
    dir: &Path,
    out: &mut Vec<OffsetFile>,
    stray_logs: &mut Vec<PathBuf>,
    strays: &mut Vec<Stray>,
) -> Result<OffsetDirs, LayoutError> {
    let mut present = OffsetDirs {
        consumers: false,
        groups: false,
    };
    for group in list(dir)? {
        match group.name.as_str() {
            "consumers" => present.consumers = true,
            "groups" => present.groups = true,
            _ => {}
        }
        let kind = match group.name.as_str() {
            "consumers" if group.is_dir => OffsetKind::Consumer,
            "groups" if group.is_dir => OffsetKind::Group,
            _ => {
                find_logs(&group.path, stray_logs)?;
                strays.push(stray(group, "unexpected in an offsets folder"));
                continue;
            }
        };
        for file in list(&group.path)? {
            if !file.is_file {
                find_logs(&file.path, stray_logs)?;
                strays.push(stray(file, "not an offset file"));
                continue;
            }
            if is_log_name(&file.path) {
                stray_logs.push(file.path.clone());
            }
            let value = if file.len == 8 {
                let bytes = fs::read(&file.path).map_err(|e| LayoutError::io(&file.path, e))?;
                bytes.first_chunk::<8>().map(|b| u64::from_le_bytes(*b))
            } else {
                None
            };
            out.push(OffsetFile {
                path: file.path,
                kind,
                len: file.len,
                value,
            });
        }
    }
    Ok(present)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_need_twenty_digits() {
        assert_eq!(segment_file("00000000000000001332.log"), Some((1332, true)));
        assert_eq!(
            segment_file("00000000000000001332.index"),
            Some((1332, false))
        );
        assert_eq!(segment_file("1332.log"), None);
        assert_eq!(segment_file("0000000000000000133x.log"), None);
        assert_eq!(segment_file("00000000000000001332.timeindex"), None);
    }
}
