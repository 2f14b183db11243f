//! `last-recover.json` in the state directory: what the last `recover` did, written
//! by `recover` when it ends and exported by the sidecar as metrics.
//!
//! Written atomically: a fresh temporary file beside it (created exclusively, so a
//! link planted there is never followed), fsynced, renamed over the old one, and the
//! folder fsynced. Read defensively, since anything in the state directory may have
//! been written by someone else: a symlink is not followed, only a regular file of at
//! most [`MAX_LEN`] bytes is read, and every value is checked (the format number,
//! the mode, which becomes a label). A file that fails any check is ignored with the
//! reason; it never stops the sidecar.

use recovery::names::escaped;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "last-recover.json";

/// Largest file read: a real one is a few hundred bytes.
pub const MAX_LEN: u64 = 64 * 1024;

/// The record's format; a file of another format is ignored.
pub const FORMAT: u32 = 1;

/// Longest error text kept in the record.
const MAX_ERROR_LEN: usize = 1024;

/// The mode label when `recover` failed before it knew its mode (a bad config file).
pub const UNKNOWN_MODE: &str = "unknown";

/// What one `recover` run did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverRecord {
    pub format: u32,
    /// `tolerate-tail`, `point-in-time`, `salvage`, `absolute`, or [`UNKNOWN_MODE`].
    pub mode: String,
    /// 0 ready to start, 3 an operator must decide, 2 error.
    pub exit_code: u8,
    /// When it ended, in milliseconds since the Unix epoch.
    pub finished_unix_ms: u64,
    pub duration_ms: u64,
    /// Repairs made, those an earlier run journaled and this one finished included.
    pub repairs: u64,
    pub bytes_quarantined: u64,
    /// Valid messages in the data directory after the run.
    pub messages_kept: u64,
    /// Valid messages the repairs moved out of the data directory (into quarantine).
    pub messages_lost: u64,
    /// Partitions (or the state files) that need an operator.
    pub refusals: u64,
    /// Stored consumer and group offsets past their partition's end after the run
    /// (`recovery::offsets_ahead`): their consumers will skip messages. Absent from
    /// records written before it was counted.
    #[serde(default)]
    pub consumer_offsets_ahead: u64,
    /// Why it failed (exit 2), shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RecoverRecord {
    /// `error` shortened to [`MAX_ERROR_LEN`] bytes, on a character boundary.
    pub fn with_error(mut self, error: &str) -> Self {
        let mut end = error.len().min(MAX_ERROR_LEN);
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        self.error = error.get(..end).map(str::to_string);
        self
    }
}

/// Why a `last-recover.json` was ignored.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path} is a symlink: not followed")]
    Symlink { path: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is larger than the {MAX_LEN} bytes it may have ({len} bytes)")]
    TooBig { path: String, len: u64 },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a recover record: {source}")]
    Invalid {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is in format {found}, not {FORMAT}")]
    Format { path: String, found: u32 },
    #[error("{path} names an unknown mode {mode:?}")]
    Mode { path: String, mode: String },
}

pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// The record in `state_dir`; `Ok(None)` when there is none.
pub fn read(state_dir: &Path) -> Result<Option<RecoverRecord>, ReadError> {
    let path = path_in(state_dir);
    let name = || escaped(&path).to_string();
    // O_NOFOLLOW: a symlink fails with ELOOP instead of being followed. O_NONBLOCK:
    // opening a FIFO does not wait for a writer.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ReadError::Symlink { path: name() })
        }
        Err(source) => {
            return Err(ReadError::Io {
                path: name(),
                source,
            })
        }
    };
    let meta = file.metadata().map_err(|source| ReadError::Io {
        path: name(),
        source,
    })?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile { path: name() });
    }
    if meta.len() > MAX_LEN {
        return Err(ReadError::TooBig {
            path: name(),
            len: meta.len(),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            path: name(),
            source,
        })?;
    if bytes.len() as u64 > MAX_LEN {
        // It grew while read.
        return Err(ReadError::TooBig {
            path: name(),
            len: bytes.len() as u64,
        });
    }
    let record: RecoverRecord =
        serde_json::from_slice(&bytes).map_err(|source| ReadError::Invalid {
            path: name(),
            source,
        })?;
    if record.format != FORMAT {
        return Err(ReadError::Format {
            path: name(),
            found: record.format,
        });
    }
    if record.mode != UNKNOWN_MODE && record.mode.parse::<recovery::plan::Mode>().is_err() {
        return Err(ReadError::Mode {
            path: name(),
            mode: record.mode.chars().take(64).collect(),
        });
    }
    Ok(Some(record))
}

/// Writes `record` as `state_dir/last-recover.json`, atomically and durably.
pub fn write(state_dir: &Path, record: &RecoverRecord) -> io::Result<()> {
    let mut json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    json.push(b'\n');
    super::textfile::replace_file(&path_in(state_dir), &json, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RecoverRecord {
        RecoverRecord {
            format: FORMAT,
            mode: "salvage".into(),
            exit_code: 0,
            finished_unix_ms: 1_764_590_000_000,
            duration_ms: 1234,
            repairs: 2,
            bytes_quarantined: 4096,
            messages_kept: 18_000,
            messages_lost: 3,
            refusals: 0,
            consumer_offsets_ahead: 1,
            error: None,
        }
    }

    /// A record written before the count existed still reads, as none ahead.
    #[test]
    fn a_record_without_the_offsets_count_reads_as_none_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let mut json = serde_json::to_value(record()).unwrap();
        json.as_object_mut()
            .unwrap()
            .remove("consumer_offsets_ahead");
        std::fs::write(path_in(dir.path()), json.to_string()).unwrap();
        let read = read(dir.path()).unwrap().expect("read");
        assert_eq!(read.consumer_offsets_ahead, 0);
        assert_eq!(read.messages_kept, 18_000);
    }

    #[test]
    fn round_trip_replaces_the_old_record_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), &record()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(record()));
        let failed = RecoverRecord {
            exit_code: 2,
            mode: UNKNOWN_MODE.into(),
            ..record()
        }
        .with_error(&"é".repeat(2000));
        write(dir.path(), &failed).unwrap();
        let back = read(dir.path()).unwrap().unwrap();
        assert_eq!(back, failed);
        assert_eq!(back.error.as_deref().map(str::len), Some(MAX_ERROR_LEN));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
    }

    #[test]
    fn a_leftover_temporary_or_a_link_planted_at_its_name_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".last-recover.json.tmp")).unwrap();
        write(dir.path(), &record()).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(read(dir.path()).unwrap(), Some(record()));
    }

    #[test]
    fn hostile_files_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let good = serde_json::to_vec(&record()).unwrap();

        // A symlink to a valid record is not followed.
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::write(&elsewhere, &good).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(matches!(read(dir.path()), Err(ReadError::Symlink { .. })));
        std::fs::remove_file(&path).unwrap();

        // Too big, even when it would parse.
        let mut big = good.clone();
        big.extend(std::iter::repeat_n(b' ', MAX_LEN as usize));
        std::fs::write(&path, &big).unwrap();
        let e = read(dir.path()).unwrap_err();
        assert!(matches!(e, ReadError::TooBig { .. }), "{e}");

        // A folder, a FIFO.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(matches!(read(dir.path()), Err(ReadError::NotAFile { .. })));
        std::fs::remove_dir(&path).unwrap();
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; mkfifo only creates the FIFO.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(read(dir.path()), Err(ReadError::NotAFile { .. })));
        std::fs::remove_file(&path).unwrap();

        // Garbage, truncation, wrong types, another format, a mode that is no mode.
        let cases: Vec<Vec<u8>> = vec![
            vec![0xff, 0x00, 0x13],
            good[..good.len() / 2].to_vec(),
            b"[]".to_vec(),
            br#"{"format":1}"#.to_vec(),
            String::from_utf8(good.clone())
                .unwrap()
                .replace("\"exit_code\":0", "\"exit_code\":300")
                .into_bytes(),
            String::from_utf8(good.clone())
                .unwrap()
                .replace("\"format\":1", "\"format\":2")
                .into_bytes(),
            String::from_utf8(good.clone())
                .unwrap()
                .replace("\"salvage\"", "\"x\\\"} 1\\nevil 2\"")
                .into_bytes(),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            std::fs::write(&path, bytes).unwrap();
            let e = read(dir.path()).expect_err(&format!("case {i} must be refused"));
            assert!(e.to_string().contains(FILE_NAME), "case {i}: {e}");
        }
        // Fields it does not know (a newer writer) are ignored.
        let mut newer: serde_json::Value = serde_json::from_slice(&good).unwrap();
        newer["extra"] = serde_json::json!({"a": 1});
        std::fs::write(&path, serde_json::to_vec(&newer).unwrap()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(record()));
    }
}
