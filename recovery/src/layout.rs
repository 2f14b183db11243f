//! Discovery of an Iggy 0.6 data directory: which partitions, segments and consumer
//! offset files exist, and which files do not belong.
//!
//! Discovery only lists and stats; it reads no segment bytes. Files it does not
//! recognise are reported as strays and never touched by any later step. The server's
//! own `logs/`, `runtime/` and `backup/` folders are not data and are skipped.

use crate::fsops::{self, EntryKind};
use crate::names::escaped;
use crate::parallel::{map_ordered, IO_THREADS};
use crate::state_info::Info;
use crate::state_inspect::{StateInspection, StateReadError};
use journal::{segment_name, PartitionId, SegmentFile, SegmentKey};
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
    #[error("cannot read {}: {cause}", escaped(.path))]
    Io { path: PathBuf, cause: io::Error },
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
    #[error(
        "data directory {path} is a symbolic link to {target}, which does not exist (an unmounted disk?)"
    )]
    DanglingLink { path: PathBuf, target: PathBuf },
}

impl From<StateReadError> for LayoutError {
    fn from(e: StateReadError) -> Self {
        LayoutError::Io {
            path: e.path,
            cause: e.cause,
        }
    }
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
                cause: source,
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
    /// Links and files where folders belong, outside any partition folder read.
    pub anomalies: Vec<Anomaly>,
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
    /// Symbolic links in the partition folder (at any depth), and files where its
    /// `offsets` folders belong.
    pub anomalies: Vec<Anomaly>,
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

/// A part of the layout iggy-warden does not go through: a symbolic link, or a file
/// where the layout needs a folder. `check` names each, and `recover` changes
/// nothing while one is there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub path: PathBuf,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// A symbolic link: never followed, whatever it points to.
    Symlink,
    /// Not a folder (a file, a FIFO) where the layout needs one.
    NotAFolder,
}

fn symlink(entry: &Entry, what: &str) -> Anomaly {
    Anomaly {
        kind: AnomalyKind::Symlink,
        path: entry.path.clone(),
        detail: format!(
            "{what} is a symbolic link; iggy-warden reads and changes nothing through one \
             (iggy-server 0.6.0 would follow it): put the real file or folder here"
        ),
    }
}

fn not_a_folder(entry: &Entry, what: &str) -> Anomaly {
    Anomaly {
        kind: AnomalyKind::NotAFolder,
        path: entry.path.clone(),
        detail: format!(
            "{what} is {}, not a folder: iggy-server 0.6.0 fails to start on it",
            entry.kind_name()
        ),
    }
}

/// Lists `root` and everything below it that belongs to the 0.6 layout.
///
/// `root` must be a resolved path: no symbolic link is followed on the way to any
/// file, so a link in `root` itself makes every read fail (the commands resolve the
/// data directory once at start).
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
    let mut anomalies = Vec::new();
    let mut folders = Vec::new();
    for entry in list(root)? {
        match entry.name.as_str() {
            "streams" if entry.is_dir() => {
                walk_streams(&entry.path, &mut folders, &mut strays, &mut anomalies)?;
            }
            "streams" if entry.is_symlink() => anomalies.push(symlink(&entry, "streams")),
            "streams" => anomalies.push(not_a_folder(&entry, "streams")),
            "state" if entry.is_dir() => {}
            name if IGNORED_TOP_LEVEL.contains(&name) => {}
            _ => strays.push(Stray {
                reason: entry.stray_reason("not part of an Iggy 0.6 data directory"),
                path: entry.path,
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
    let folders: Vec<_> = partitions
        .iter()
        .map(|p| (p.id, p.segments.iter().filter_map(|s| s.log_len).sum()))
        .collect();
    let state = crate::state_inspect::inspect_guided(root, &folders, state_log)?;
    anomalies.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(DataDir {
        root: root.to_path_buf(),
        version,
        partitions,
        strays,
        state,
        anomalies,
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
            // A link to nowhere is not a first start: the folder it names is missing
            // (a disk not mounted), and the server could not create it there.
            if let Ok(target) = fs::read_link(root) {
                return Err(LayoutError::DanglingLink {
                    path: root.to_path_buf(),
                    target,
                });
            }
            return Ok(Root::Fresh {
                why: format!("{} does not exist", root.display()),
            });
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
    if state_file(crate::state_inspect::INFO_REL) || state_file(crate::state_inspect::LOG_REL) {
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
    if !entry.is_dir() {
        return Ok(false);
    }
    match entry.name.as_str() {
        "logs" | "runtime" => Ok(true),
        "state" | "streams" | "backup" => {
            let items =
                fsops::list_dir(&entry.path).map_err(|e| LayoutError::io(&entry.path, e))?;
            Ok(items.is_empty())
        }
        _ => Ok(false),
    }
}

/// Checks that `root` is a folder and, when it says which, of format 0.6; returns
/// the version string. The part of [`discover`] that lists nothing.
pub fn check_root(root: &Path) -> Result<Option<String>, LayoutError> {
    let meta = fsops::metadata(root)
        .map_err(|e| LayoutError::io(root, e))?
        .ok_or_else(|| LayoutError::NotFound {
            path: root.to_path_buf(),
        })?;
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
    let path = root.join(crate::state_inspect::INFO_REL);
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
    // No link followed; only a regular file opened (a FIFO would block).
    let file = fsops::open_read(path)?;
    let mut out = Vec::new();
    file.take(max).read_to_end(&mut out)?;
    Ok(out)
}

struct Entry {
    name: String,
    path: PathBuf,
    kind: EntryKind,
}

impl Entry {
    fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }

    fn is_symlink(&self) -> bool {
        self.kind == EntryKind::Symlink
    }

    /// The length of a regular file.
    fn file_len(&self) -> Option<u64> {
        match self.kind {
            EntryKind::File(len) => Some(len),
            _ => None,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            EntryKind::File(_) => "a regular file",
            EntryKind::Dir => "a folder",
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Other => "a FIFO, socket or device",
        }
    }

    /// A stray's reason, saying so when it is a link (never followed).
    fn stray_reason(&self, why: &str) -> String {
        if self.is_symlink() {
            format!("{why} (a symbolic link, not followed)")
        } else {
            why.to_string()
        }
    }
}

/// Lists a folder without following symbolic links (none on the way to it either),
/// sorted by name. Only regular files are stat'ed (for their length): the kind of the
/// others comes with the listing, which saves a system call per entry on the start-up
/// path.
fn list(dir: &Path) -> Result<Vec<Entry>, LayoutError> {
    let mut out: Vec<Entry> = fsops::list_dir(dir)
        .map_err(|e| LayoutError::io(dir, e))?
        .into_iter()
        .map(|e| Entry {
            path: dir.join(&e.name),
            name: e.name.to_string_lossy().into_owned(),
            kind: e.kind,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Folder names of streams, topics and partitions: decimal numbers.
fn numeric_name(entry: &Entry) -> Option<u32> {
    if entry.name.is_empty() || !entry.name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    entry.name.parse().ok()
}

fn stray(entry: Entry, reason: &str) -> Stray {
    Stray {
        reason: entry.stray_reason(reason),
        path: entry.path,
    }
}

/// Sorts an entry where the layout needs folder `what`: `Some` when it is one,
/// else records why not (a link, or not a folder) and gives `None`.
fn layout_folder(entry: Entry, what: &str, anomalies: &mut Vec<Anomaly>) -> Option<Entry> {
    match entry.kind {
        EntryKind::Dir => Some(entry),
        EntryKind::Symlink => {
            anomalies.push(symlink(&entry, what));
            None
        }
        _ => {
            anomalies.push(not_a_folder(&entry, what));
            None
        }
    }
}

/// Finds the partition folders under `streams/`, reporting strays on the way.
fn walk_streams(
    streams: &Path,
    partitions: &mut Vec<(PartitionId, PathBuf)>,
    strays: &mut Vec<Stray>,
    anomalies: &mut Vec<Anomaly>,
) -> Result<(), LayoutError> {
    for s in list(streams)? {
        let Some(stream) = numeric_name(&s) else {
            strays.push(stray(s, "not a numbered stream folder"));
            continue;
        };
        let Some(s) = layout_folder(s, "a stream folder", anomalies) else {
            continue;
        };
        for t in list(&s.path)? {
            if t.name != "topics" {
                strays.push(stray(t, "unexpected in a stream folder"));
                continue;
            }
            let Some(t) = layout_folder(t, "topics", anomalies) else {
                continue;
            };
            for topic_entry in list(&t.path)? {
                let Some(topic) = numeric_name(&topic_entry) else {
                    strays.push(stray(topic_entry, "not a numbered topic folder"));
                    continue;
                };
                let Some(topic_entry) = layout_folder(topic_entry, "a topic folder", anomalies)
                else {
                    continue;
                };
                for p in list(&topic_entry.path)? {
                    if p.name != "partitions" {
                        strays.push(stray(p, "unexpected in a topic folder"));
                        continue;
                    }
                    let Some(p) = layout_folder(p, "partitions", anomalies) else {
                        continue;
                    };
                    for part_entry in list(&p.path)? {
                        let Some(partition) = numeric_name(&part_entry) else {
                            strays.push(stray(part_entry, "not a numbered partition folder"));
                            continue;
                        };
                        let Some(part_entry) =
                            layout_folder(part_entry, "a partition folder", anomalies)
                        else {
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

fn read_partition(
    id: PartitionId,
    dir: &Path,
    strays: &mut Vec<Stray>,
) -> Result<PartitionLayout, LayoutError> {
    let mut segments: Vec<SegmentFiles> = Vec::new();
    let mut offset_files = Vec::new();
    let mut stray_logs = Vec::new();
    let mut anomalies = Vec::new();
    // `offsets` itself first, so creating (and restoring) goes folder by folder.
    let offsets = dir.join("offsets");
    let mut missing_offset_dirs = vec![
        offsets.clone(),
        offsets.join("consumers"),
        offsets.join("groups"),
    ];
    for entry in list(dir)? {
        if entry.is_symlink() {
            // Whatever its name: the partition folder is where repairs write.
            anomalies.push(symlink(&entry, "an entry of a partition folder"));
            if entry.name == "offsets" {
                missing_offset_dirs.clear();
            }
            continue;
        }
        if entry.name == "offsets" {
            missing_offset_dirs.clear();
            let Some(entry) = layout_folder(entry, "offsets", &mut anomalies) else {
                continue;
            };
            let present = read_offsets(
                &entry.path,
                &mut offset_files,
                &mut stray_logs,
                strays,
                &mut anomalies,
            )?;
            missing_offset_dirs.extend(
                [("consumers", present.consumers), ("groups", present.groups)]
                    .into_iter()
                    .filter(|(_, found)| !found)
                    .map(|(name, _)| entry.path.join(name)),
            );
            continue;
        }
        let segment = entry.file_len().and_then(|len| {
            segment_name::parse(&entry.name).map(|(start, kind)| (start, kind, len))
        });
        let Some((start, kind, len)) = segment else {
            find_logs(&entry, &mut stray_logs, &mut anomalies)?;
            strays.push(stray(entry, "not a segment file"));
            continue;
        };
        let pos = match segments.iter().position(|s| s.key.start_offset == start) {
            Some(pos) => pos,
            None => {
                let key = id.segment(start);
                segments.push(SegmentFiles {
                    key,
                    log_path: key.path_in(dir, SegmentFile::Log),
                    index_path: key.path_in(dir, SegmentFile::Index),
                    log_len: None,
                    index_len: None,
                });
                segments.len() - 1
            }
        };
        if let Some(seg) = segments.get_mut(pos) {
            if kind == SegmentFile::Log {
                seg.log_len = Some(len);
            } else {
                seg.index_len = Some(len);
            }
        }
    }
    segments.sort_by_key(|s| s.key.start_offset);
    stray_logs.sort();
    anomalies.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(PartitionLayout {
        id,
        dir: dir.to_path_buf(),
        segments,
        offset_files,
        stray_logs,
        missing_offset_dirs,
        anomalies,
    })
}

/// Every file named `*.log` at or below `entry`, as the server's recursive walk of a
/// partition folder would find it, and every symbolic link on the way (none is
/// followed).
fn find_logs(
    entry: &Entry,
    out: &mut Vec<PathBuf>,
    anomalies: &mut Vec<Anomaly>,
) -> Result<(), LayoutError> {
    match entry.kind {
        EntryKind::Dir => {
            for child in list(&entry.path)? {
                find_logs(&child, out, anomalies)?;
            }
        }
        EntryKind::Symlink => anomalies.push(symlink(entry, "an entry below a partition folder")),
        _ if segment_name::has_log_extension(&entry.path) => out.push(entry.path.clone()),
        _ => {}
    }
    Ok(())
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
    anomalies: &mut Vec<Anomaly>,
) -> Result<OffsetDirs, LayoutError> {
    let mut present = OffsetDirs {
        consumers: false,
        groups: false,
    };
    for group in list(dir)? {
        let kind = match group.name.as_str() {
            "consumers" => {
                present.consumers = true;
                OffsetKind::Consumer
            }
            "groups" => {
                present.groups = true;
                OffsetKind::Group
            }
            _ => {
                find_logs(&group, stray_logs, anomalies)?;
                strays.push(stray(group, "unexpected in an offsets folder"));
                continue;
            }
        };
        let what = match kind {
            OffsetKind::Consumer => "offsets/consumers",
            OffsetKind::Group => "offsets/groups",
        };
        let Some(group) = layout_folder(group, what, anomalies) else {
            continue;
        };
        for file in list(&group.path)? {
            if file.is_symlink() {
                anomalies.push(symlink(&file, "an offset file"));
                continue;
            }
            let Some(len) = file.file_len() else {
                find_logs(&file, stray_logs, anomalies)?;
                strays.push(stray(file, "not an offset file"));
                continue;
            };
            if segment_name::has_log_extension(&file.path) {
                stray_logs.push(file.path.clone());
            }
            let value = if len == 8 {
                let bytes =
                    fsops::read_small(&file.path, 8).map_err(|e| LayoutError::io(&file.path, e))?;
                bytes.first_chunk::<8>().map(|b| u64::from_le_bytes(*b))
            } else {
                None
            };
            out.push(OffsetFile {
                path: file.path,
                kind,
                len,
                value,
            });
        }
    }
    Ok(present)
}
