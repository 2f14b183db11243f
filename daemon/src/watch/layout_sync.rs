//! How the core keeps its model in step with the data directory's layout: which
//! folders and segment files exist, as inotify events and listings report them.
//!
//! Events name a folder or a file; this turns them into partition syncs (a listing
//! compared with the model, `reconcile/`), journals what changed, and marks the
//! segments that need verifying or sealing in the core's worklist. Folders that are
//! not what the server makes (a file where a folder should be, a folder that cannot
//! be read) are layout anomalies: noted and shown, never fatal, since recovery checks
//! the directory itself.

use crate::watch::core::Core;
use crate::watch::place::{classify, Place};
use crate::watch::reconcile::{list_partition, sync_partition, Listing, PartitionChanges, Phase};
use crate::watch::tracker::Tracker;
use journal::{PartitionId, Record, SegmentKey};
use recovery::names::escaped;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Core {
    pub(super) fn handle_fs(
        &mut self,
        rescan: Option<String>,
        dirs: BTreeSet<PathBuf>,
        partitions: BTreeSet<PartitionId>,
        written: std::collections::HashSet<SegmentKey>,
    ) -> anyhow::Result<()> {
        if let Some(reason) = rescan {
            tracing::warn!(reason = %reason, "{reason}: reconciling the whole data directory");
            if !self.full_reconcile(&reason)? {
                self.shared.post(|i| {
                    i.rescan.get_or_insert(reason);
                });
            }
            // The reconciliation looked at everything the other entries point at.
            return Ok(());
        }
        let mut to_sync: BTreeSet<PartitionId> = partitions;
        for dir in dirs {
            self.sync_dir(&dir, &mut to_sync)?;
        }
        for key in written {
            match self.model.get_mut(&key) {
                None => {
                    to_sync.insert(key.partition);
                }
                Some(Phase::Open(_)) => {
                    self.work.written(key);
                }
                Some(Phase::Sealing(s)) => {
                    s.next_try = Instant::now();
                    if s.gave_up {
                        s.gave_up = false;
                        s.attempts = 0;
                    }
                    self.work.seal(key);
                }
                Some(Phase::Sealed { .. }) => {
                    self.check_sealed(key, &mut to_sync)?;
                }
            }
        }
        for pid in to_sync {
            self.sync_one(pid, false)?;
        }
        Ok(())
    }

    /// A sealed segment was written to: if its files changed, it is open again.
    pub(super) fn check_sealed(
        &mut self,
        key: SegmentKey,
        to_sync: &mut BTreeSet<PartitionId>,
    ) -> anyhow::Result<()> {
        let dir = self.partition_dir(key.partition);
        let len = |p: PathBuf| std::fs::metadata(p).ok().map(|m| m.len());
        let log_len = len(crate::watch::tracker::log_path(&dir, &key));
        let index_len = len(crate::watch::tracker::index_path(&dir, &key));
        let Some(Phase::Sealed {
            log_len: l,
            index_len: i,
        }) = self.model.get_mut(&key)
        else {
            return Ok(());
        };
        if log_len == Some(*l) && index_len == Some(*i) {
            return Ok(());
        }
        if log_len.is_none() {
            to_sync.insert(key.partition);
            return Ok(());
        }
        tracing::info!(
            segment = %key,
            partition = %key.partition,
            "sealed segment {key} changed on disk: verifying it again"
        );
        if let Some(phase) = self.model.get_mut(&key) {
            *phase = Phase::open(Tracker::new(key));
        }
        self.outbox.push(Record::SegmentOpened { segment: key });
        self.work.written(key);
        // A sync seals it again when it is not the newest.
        to_sync.insert(key.partition);
        Ok(())
    }

    /// Notes a layout anomaly at `path`: logged and counted when it appears, shown in
    /// the status while it lasts. The sidecar goes on without what it could not see;
    /// recovery checks the data directory itself.
    pub(super) fn layout_anomaly(
        &self,
        path: &Path,
        what: &'static str,
        detail: &dyn std::fmt::Display,
    ) {
        if self.status.layout_anomaly(&self.rel(path), what) {
            tracing::warn!(
                path = %escaped(path),
                anomaly = what,
                "layout anomaly: {} ({what}: {detail}); the sidecar goes on without it and \
                 journals the rest",
                escaped(path)
            );
        }
    }

    /// `path` was read fine: anomalies noted there or above it are over.
    pub(super) fn layout_ok(&self, path: &Path) {
        let rel = self.rel(path);
        if self.status.layout_resolved(&rel) {
            tracing::info!(
                path = %escaped(path),
                "layout anomaly at or above {} resolved",
                escaped(path)
            );
        }
    }

    /// Something that is not a folder (`kind`) stands where the layout has one.
    pub(super) fn not_a_folder_at(&self, path: &Path, kind: std::fs::FileType) {
        if kind.is_symlink() {
            self.layout_anomaly(
                path,
                "symlink",
                &"a symlink where the layout has a folder (not followed)",
            );
        } else {
            self.layout_anomaly(
                path,
                "not-a-folder",
                &"a file where the layout has a folder",
            );
        }
    }

    /// `path` relative to the data directory, escaped (`.` for the directory itself).
    pub(super) fn rel(&self, path: &Path) -> String {
        match path.strip_prefix(&self.settings.data_dir) {
            Ok(r) if r.as_os_str().is_empty() => ".".to_string(),
            Ok(r) => escaped(r).to_string(),
            Err(_) => escaped(path).to_string(),
        }
    }

    /// The nearest of `dir` and the folders above it (below the data directory) that
    /// exists but is not a folder: what stands where a folder should be.
    pub(super) fn not_a_folder(&self, dir: &Path) -> PathBuf {
        let mut at = dir;
        while let Some(parent) = at.parent() {
            if std::fs::symlink_metadata(at).is_ok_and(|m| !m.is_dir())
                || !parent.starts_with(&self.settings.data_dir)
            {
                break;
            }
            at = parent;
        }
        at.to_path_buf()
    }

    /// Watches `dir` and every stream, topic and partition folder below it, each before
    /// it is listed (so nothing created in between is missed); returns the partitions.
    pub(super) fn watch_tree(
        &mut self,
        dir: &Path,
        found: &mut Vec<PartitionId>,
    ) -> anyhow::Result<()> {
        if !self.watch_dir(dir)? {
            return Ok(());
        }
        if let Place::Partition(pid) = classify(&self.settings.data_dir, dir) {
            found.push(pid);
            return Ok(());
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                self.layout_anomaly(&self.not_a_folder(dir), "not-a-folder", &e);
                return Ok(());
            }
            Err(e) => {
                self.layout_anomaly(dir, "unreadable", &e);
                return Ok(());
            }
        };
        self.layout_ok(dir);
        let mut children = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.layout_anomaly(dir, "unreadable", &e);
                    break;
                }
            };
            let path = entry.path();
            if !matches!(
                classify(&self.settings.data_dir, &path),
                Place::Hierarchy | Place::Partition(_)
            ) {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => children.push(path),
                Ok(t) => self.not_a_folder_at(&path, t),
                Err(e) => self.layout_anomaly(&path, "unreadable", &e),
            }
        }
        children.sort();
        for child in children {
            self.status.beat();
            self.watch_tree(&child, found)?;
        }
        Ok(())
    }

    /// A stream, topic or partition folder appeared, vanished or moved.
    pub(super) fn sync_dir(
        &mut self,
        dir: &Path,
        to_sync: &mut BTreeSet<PartitionId>,
    ) -> anyhow::Result<()> {
        let place = classify(&self.settings.data_dir, dir);
        // Symlinks are not followed: a folder found by listing is not either.
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {
                let mut found = Vec::new();
                self.watch_tree(dir, &mut found)?;
                to_sync.extend(found);
            }
            other => {
                // Its watch went with it; forget the path so a new folder there is
                // watched.
                self.unwatch_dir(dir);
                match other {
                    // Nothing stands there any more: an anomaly there is over.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.layout_ok(dir),
                    Ok(m) => self.not_a_folder_at(dir, m.file_type()),
                    Err(e) => self.layout_anomaly(dir, "unreadable", &e),
                }
            }
        }
        // Partitions we know under this folder: some may be gone with it.
        let prefix = dir
            .strip_prefix(&self.settings.data_dir)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let under: Vec<PartitionId> = self
            .model
            .partitions
            .keys()
            .filter(|p| match place {
                Place::Partition(q) => **p == q,
                _ => Path::new(&p.rel_dir()).starts_with(&prefix),
            })
            .copied()
            .collect();
        to_sync.extend(under);
        Ok(())
    }

    /// Lists one partition and journals what changed. A partition folder that cannot
    /// be listed is a layout anomaly, never fatal: when something else stands where
    /// the folder was (a file), its segments are gone and journaled deleted; when it
    /// cannot be read, the journal keeps what it knew, and a later reconciliation
    /// looks again.
    pub(super) fn sync_one(&mut self, pid: PartitionId, full: bool) -> anyhow::Result<()> {
        // A segment created, deleted or renamed: look at the files by name again.
        self.open_files.forget_partition(pid);
        let dir = self.partition_dir(pid);
        match list_partition(&dir, full) {
            Ok(listing) => {
                self.layout_ok(&dir);
                self.apply_sync(pid, listing.as_ref(), full);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                self.layout_anomaly(&self.not_a_folder(&dir), "not-a-folder", &e);
                self.apply_sync(pid, None, full);
            }
            Err(e) => self.layout_anomaly(&dir, "unreadable", &e),
        }
        Ok(())
    }

    pub(super) fn apply_sync(&mut self, pid: PartitionId, listing: Option<&Listing>, full: bool) {
        let part = self.model.partitions.entry(pid).or_default();
        let PartitionChanges {
            records,
            opened,
            to_seal,
            deleted,
        } = sync_partition(part, pid, listing, full);
        if part.segments.is_empty() {
            self.model.partitions.remove(&pid);
        }
        for key in &deleted {
            self.work.deleted(*key);
            self.segment_gone(*key);
        }
        for key in to_seal {
            self.work.seal(key);
        }
        self.work.all_written(opened);
        self.outbox.extend(records);
    }
}
