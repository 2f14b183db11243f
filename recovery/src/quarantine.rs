//! The quarantine: where every byte a repair removes is kept, with a manifest that
//! says where it came from, so `restore` can put it back exactly.
//!
//! Layout: `<state dir>/quarantine/<repair id>/bytes` holds the removed bytes and
//! `manifest.json` describes them. The manifest is written last, through a temporary
//! file and a rename, so a manifest that exists always describes bytes already on disk.

use crate::fsops::{file_digest, FileOps};
use journal::{ByteRange, RepairAction, RepairId};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
pub const BYTES: &str = "bytes";
const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("quarantine {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("quarantine manifest {path} is unreadable: {detail}")]
    BadManifest { path: PathBuf, detail: String },
    #[error(
        "quarantined bytes {path} do not match their manifest (expected {expected_len} bytes \
         with XXH3 {expected:#018x})"
    )]
    BytesChanged {
        path: PathBuf,
        expected_len: u64,
        expected: u64,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> QuarantineError + '_ {
    move |source| QuarantineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What one repair removed, and from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub repair: RepairId,
    pub action: RepairAction,
    pub reason: String,
    /// The data directory the repair ran on.
    pub data_dir: PathBuf,
    /// The file the bytes came from, relative to `data_dir`.
    pub file: String,
    /// Where the saved bytes sat in `file`; empty when the repair removed nothing
    /// (it created `file`).
    pub range: ByteRange,
    /// XXH3-64 of the saved bytes.
    pub xxh3: u64,
    /// The file did not exist before the repair: restoring removes it.
    pub created_file: bool,
}

/// The quarantine folder inside a state directory.
#[derive(Clone, Debug)]
pub struct Quarantine {
    dir: PathBuf,
}

impl Quarantine {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("quarantine"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn repair_dir(&self, id: RepairId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    pub fn bytes_path(&self, id: RepairId) -> PathBuf {
        self.repair_dir(id).join(BYTES)
    }

    /// Saves `range` of `data_dir/file` for repair `id` and returns its manifest. When
    /// a complete copy exists already (a rerun after a crash) it is kept as it is.
    #[allow(clippy::too_many_arguments)]
    pub fn save(
        &self,
        fs: &dyn FileOps,
        id: RepairId,
        action: &RepairAction,
        reason: &str,
        data_dir: &Path,
        file: &str,
        range: ByteRange,
        created_file: bool,
    ) -> Result<Manifest, QuarantineError> {
        if let Some(m) = self.load_verified(id)? {
            return Ok(m);
        }
        let dir = self.repair_dir(id);
        fs.create_dir_all(&dir).map_err(io_err(&dir))?;
        let bytes = dir.join(BYTES);
        let xxh3 = if range.is_empty() {
            fs.write_file(&bytes, &mut |_| Ok(()))
                .map_err(io_err(&bytes))?;
            xxhash_rust::xxh3::xxh3_64(&[])
        } else {
            let src = data_dir.join(file);
            fs.copy_range(&src, range, &bytes).map_err(io_err(&src))?
        };
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            repair: id,
            action: action.clone(),
            reason: reason.to_string(),
            data_dir: data_dir.to_path_buf(),
            file: file.to_string(),
            range,
            xxh3,
            created_file,
        };
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| QuarantineError::BadManifest {
                path: dir.join(MANIFEST),
                detail: e.to_string(),
            })?;
        let tmp = dir.join("manifest.json.tmp");
        fs.write_file(&tmp, &mut |w| w.write_all(&json))
            .map_err(io_err(&tmp))?;
        let path = dir.join(MANIFEST);
        fs.rename(&tmp, &path).map_err(io_err(&path))?;
        fs.sync_dir(&dir).map_err(io_err(&dir))?;
        fs.sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok(manifest)
    }

    /// The manifest of repair `id`, `None` when there is none yet.
    pub fn load(&self, id: RepairId) -> Result<Option<Manifest>, QuarantineError> {
        let path = self.repair_dir(id).join(MANIFEST);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| QuarantineError::BadManifest {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if manifest.repair != id {
            return Err(QuarantineError::BadManifest {
                path,
                detail: format!("it describes repair {}, not {id}", manifest.repair),
            });
        }
        Ok(Some(manifest))
    }

    /// The manifest of repair `id` when its saved bytes are complete and unchanged.
    pub fn load_verified(&self, id: RepairId) -> Result<Option<Manifest>, QuarantineError> {
        let Some(m) = self.load(id)? else {
            return Ok(None);
        };
        self.verify(&m)?;
        Ok(Some(m))
    }

    /// Checks that the saved bytes of `m` are the ones its manifest describes.
    pub fn verify(&self, m: &Manifest) -> Result<(), QuarantineError> {
        let path = self.bytes_path(m.repair);
        let found = file_digest(&path).map_err(io_err(&path))?;
        if found != Some((m.range.len(), m.xxh3)) {
            return Err(QuarantineError::BytesChanged {
                path,
                expected_len: m.range.len(),
                expected: m.xxh3,
            });
        }
        Ok(())
    }

    /// Every manifest in the quarantine, oldest repair first.
    pub fn list(&self) -> Result<Vec<Manifest>, QuarantineError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_prefix('r').and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(m) = self.load(RepairId(id))? {
                out.push(m);
            }
        }
        out.sort_by_key(|m| m.repair);
        Ok(out)
    }
}
