//! Discovery of an Iggy 0.6 data directory: which partitions, segments and consumer
//! offset files exist, and which files do not belong.
//!
//! Discovery only lists and stats; it reads no segment bytes. Files it does not
//! recognise are reported as strays and never touched by any later step. The server's
//! own `logs/`, `runtime/` and `backup/` folders are not data and are skipped.

mod entry;
mod error;
mod listing;
mod root;

pub use error::LayoutError;
pub use listing::LISTING_MARGIN;
pub use root::{check_root, classify_root, Root};

use crate::fsops::{self, EntryKind};
use crate::parallel::{map_ordered, IO_THREADS};
use crate::state_inspect::StateInspection;
use entry::{list, numeric_name, Entry};
use journal::{segment_name, OffsetsListing, PartitionId, SegmentFile, SegmentKey};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Top-level folders that hold no stream data.
const IGNORED_TOP_LEVEL: [&str; 3] = ["logs", "runtime", "backup"];

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
    /// What a guided listing found settled in the offsets folders, or took from the
    /// journal's listing: for `recover` to journal. Not part of reports.
    #[serde(skip)]
    pub offsets_listing: Option<OffsetsListing>,
}

/// What a guided listing knows of the partitions' offsets folders from the journal
/// (`journal::listing`), and how long folders must be unchanged for a listing of
/// them to be kept.
#[derive(Clone, Copy, Debug)]
pub struct OffsetsGuide<'a> {
    pub known: &'a HashMap<PartitionId, OffsetsListing>,
    pub margin: Duration,
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
    /// The files' stamps as listed, for a journal-guided run to compare with the
    /// journaled ones; not part of reports.
    #[serde(skip)]
    pub log_stamp: Option<journal::FileStamp>,
    #[serde(skip)]
    pub index_stamp: Option<journal::FileStamp>,
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
    discover_guided(root, None, None, &|_| {})
}

/// [`discover`], trusting `state/log` up to where a journal says it was verified (see
/// [`crate::state_log::parse_guided`]), and with `offsets`, taking a partition's
/// offsets folders from the journal's listing when their stamps are unchanged (and
/// noting a settled listing of those it reads, in
/// [`PartitionLayout::offsets_listing`]). `listed` is called with each partition as
/// soon as its folder is read, on the listing's threads (a guided run starts the
/// reads of its analysis there: `readahead::advise`).
pub fn discover_guided(
    root: &Path,
    state_log: Option<crate::state_log::Trusted>,
    offsets: Option<OffsetsGuide<'_>>,
    listed: &(dyn Fn(&PartitionLayout) + Sync),
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
    let (mut partitions, found) = read_partitions(&folders, offsets, listed)?;
    strays.extend(found);
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

/// [`discover`] narrowed to the partition folders `ids`, without the state files
/// (`state` left empty) or what lies outside those folders: what the check after a
/// repair reads again, which should not cost a listing of every partition when a
/// few were repaired. A folder of `ids` that is gone is an error.
pub fn discover_partitions(
    root: &Path,
    ids: &BTreeSet<PartitionId>,
) -> Result<DataDir, LayoutError> {
    let version = check_root(root)?;
    let folders: Vec<(PartitionId, PathBuf)> = ids
        .iter()
        .map(|id| (*id, root.join(id.rel_dir())))
        .collect();
    let (partitions, strays) = read_partitions(&folders, None, &|_| {})?;
    Ok(DataDir {
        root: root.to_path_buf(),
        version,
        partitions,
        strays,
        state: StateInspection::default(),
        anomalies: Vec::new(),
    })
}

/// Reads the partition `folders`, in parallel: on a cold cache each one is a few
/// reads from the disk, and a thousand of them one after another was most of a
/// guided recovery's time. In the order of `folders`, with the strays found in them.
fn read_partitions(
    folders: &[(PartitionId, PathBuf)],
    offsets: Option<OffsetsGuide<'_>>,
    listed: &(dyn Fn(&PartitionLayout) + Sync),
) -> Result<(Vec<PartitionLayout>, Vec<Stray>), LayoutError> {
    let read = map_ordered(folders, IO_THREADS, |(id, dir)| {
        let mut found = Vec::new();
        let partition = read_partition(*id, dir, offsets, &mut found)?;
        listed(&partition);
        Ok::<_, LayoutError>((partition, found))
    })?;
    let (partitions, strays): (Vec<_>, Vec<Vec<Stray>>) = read.into_iter().unzip();
    Ok((partitions, strays.into_iter().flatten().collect()))
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

/// Finds the partition folders under `streams/`, reporting strays on the way. Topic
/// folders are walked on [`IO_THREADS`] threads: after a reboot each listing waits on
/// the disk, and a data directory holds many topics.
fn walk_streams(
    streams: &Path,
    partitions: &mut Vec<(PartitionId, PathBuf)>,
    strays: &mut Vec<Stray>,
    anomalies: &mut Vec<Anomaly>,
) -> Result<(), LayoutError> {
    let mut topics = Vec::new();
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
                if let Some(topic_entry) = layout_folder(topic_entry, "a topic folder", anomalies) {
                    topics.push((stream, topic, topic_entry.path));
                }
            }
        }
    }
    let walked = map_ordered(&topics, IO_THREADS, |(stream, topic, dir)| {
        walk_topic(*stream, *topic, dir)
    })?;
    for found in walked {
        partitions.extend(found.partitions);
        strays.extend(found.strays);
        anomalies.extend(found.anomalies);
    }
    Ok(())
}

/// What one topic folder holds: its partition folders, and what does not belong.
#[derive(Default)]
struct TopicFound {
    partitions: Vec<(PartitionId, PathBuf)>,
    strays: Vec<Stray>,
    anomalies: Vec<Anomaly>,
}

fn walk_topic(stream: u32, topic: u32, dir: &Path) -> Result<TopicFound, LayoutError> {
    let mut found = TopicFound::default();
    for p in list(dir)? {
        if p.name != "partitions" {
            found.strays.push(stray(p, "unexpected in a topic folder"));
            continue;
        }
        let Some(p) = layout_folder(p, "partitions", &mut found.anomalies) else {
            continue;
        };
        for part_entry in list(&p.path)? {
            let Some(partition) = numeric_name(&part_entry) else {
                found
                    .strays
                    .push(stray(part_entry, "not a numbered partition folder"));
                continue;
            };
            let Some(part_entry) =
                layout_folder(part_entry, "a partition folder", &mut found.anomalies)
            else {
                continue;
            };
            let id = PartitionId::new(stream, topic, partition);
            found.partitions.push((id, part_entry.path));
        }
    }
    Ok(found)
}

fn read_partition(
    id: PartitionId,
    dir: &Path,
    guide: Option<OffsetsGuide<'_>>,
    strays: &mut Vec<Stray>,
) -> Result<PartitionLayout, LayoutError> {
    let mut segments: Vec<SegmentFiles> = Vec::new();
    let mut offset_files = Vec::new();
    let mut stray_logs = Vec::new();
    let mut anomalies = Vec::new();
    let mut offsets_listing = None;
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
            let (missing, listing) = offsets_folder(
                id,
                &entry.path,
                guide,
                &mut offset_files,
                &mut stray_logs,
                strays,
                &mut anomalies,
            )?;
            missing_offset_dirs.extend(missing);
            offsets_listing = listing;
            continue;
        }
        let segment = entry.file_len().and_then(|len| {
            segment_name::parse(&entry.name).map(|(start, kind)| (start, kind, len))
        });
        let Some((start, kind, len)) = segment else {
            find_logs(&entry, &mut stray_logs, &mut anomalies)?;
            let why = if crate::work_names::is_work_name(&entry.name) {
                "left by an iggy-warden run that was stopped: a temporary copy, or a file \
                 set aside to be removed once saved to the quarantine (see `restore \
                 --list`)"
            } else {
                "not a segment file"
            };
            strays.push(stray(entry, why));
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
                    log_stamp: None,
                    index_stamp: None,
                });
                segments.len() - 1
            }
        };
        if let Some(seg) = segments.get_mut(pos) {
            if kind == SegmentFile::Log {
                seg.log_len = Some(len);
                seg.log_stamp = entry.stamp;
            } else {
                seg.index_len = Some(len);
                seg.index_stamp = entry.stamp;
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
        offsets_listing,
    })
}

/// Partition `id`'s folder `offsets`: taken from the journal's listing when the
/// folders' stamps are its own, else read (and, in a guided listing, its listing
/// noted when settled). Gives the folders it lacks, and the listing.
fn offsets_folder(
    id: PartitionId,
    offsets: &Path,
    guide: Option<OffsetsGuide<'_>>,
    offset_files: &mut Vec<OffsetFile>,
    stray_logs: &mut Vec<PathBuf>,
    strays: &mut Vec<Stray>,
    anomalies: &mut Vec<Anomaly>,
) -> Result<(Vec<PathBuf>, Option<OffsetsListing>), LayoutError> {
    let known = guide.and_then(|g| g.known.get(&id));
    if let Some(found) = known.and_then(|l| listing::unchanged(offsets, l)) {
        let kinds = [OffsetKind::Consumer, OffsetKind::Group];
        for (kind, files) in kinds.into_iter().zip(found) {
            for (path, len) in files {
                offset_files.push(offset_file(path, kind, len)?);
            }
        }
        return Ok((Vec::new(), known.cloned()));
    }
    let before = guide.and_then(|_| listing::stamps(offsets));
    let marks = (strays.len(), stray_logs.len(), anomalies.len());
    let first_file = offset_files.len();
    let present = read_offsets(offsets, offset_files, stray_logs, strays, anomalies)?;
    let missing = [("consumers", present.consumers), ("groups", present.groups)]
        .into_iter()
        .filter(|(_, found)| !found)
        .map(|(name, _)| offsets.join(name))
        .collect::<Vec<_>>();
    let Some(guide) = guide else {
        return Ok((missing, None));
    };
    let clean = missing.is_empty() && marks == (strays.len(), stray_logs.len(), anomalies.len());
    let files = offset_files.get(first_file..).filter(|_| clean);
    let listing = listing::settled(offsets, before, files.and_then(listed_names), guide.margin);
    Ok((missing, listing))
}

/// The names of offset `files` as a listing holds them, consumers' then groups';
/// `None` when one is not UTF-8.
fn listed_names(files: &[OffsetFile]) -> Option<[Vec<String>; 2]> {
    let mut out = [Vec::new(), Vec::new()];
    for f in files {
        let name = f.path.file_name()?.to_str()?.to_string();
        let [consumers, groups] = &mut out;
        match f.kind {
            OffsetKind::Consumer => consumers.push(name),
            OffsetKind::Group => groups.push(name),
        }
    }
    Some(out)
}

/// The length of a consumer or group offset file: one little-endian u64.
pub const OFFSET_FILE_LEN: u64 = 8;

/// An offset file of `len` bytes, with its value read when it has the 8 bytes of one.
fn offset_file(path: PathBuf, kind: OffsetKind, len: u64) -> Result<OffsetFile, LayoutError> {
    let value = if len == OFFSET_FILE_LEN {
        let bytes = fsops::read_small(&path, 8).map_err(|e| LayoutError::io(&path, e))?;
        bytes.first_chunk::<8>().map(|b| u64::from_le_bytes(*b))
    } else {
        None
    };
    Ok(OffsetFile {
        path,
        kind,
        len,
        value,
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
            out.push(offset_file(file.path, kind, len)?);
        }
    }
    Ok(present)
}

#[cfg(test)]
mod tests;
