//! `state/info`: the server's version record.
//!
//! iggy-server 0.6.0 reads the whole file at start and decodes it with bincode 2's
//! standard configuration (`shard/system/storage.rs`): a `SystemInfo` of a version
//! string, a hash string and a list of migrations (id u32, name, hash, applied-at
//! u64), integers as varints (a byte below 251, else a marker 251/252/253 and a u16,
//! u32 or u64), strings and lists prefixed with their varint length. Bytes after the
//! record are ignored. A missing file is created afresh; a file that does not decode
//! makes the server panic at start ("Failed to load system info from disk"). It
//! rewrites the file at every start without a rename, so a crash can leave it empty
//! or cut short: the server then recreates it if it is taken away.

use serde::Serialize;

/// What `state/info` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Info {
    Missing,
    Sound {
        version: String,
    },
    /// Does not decode: the server would not start.
    Bad {
        len: u64,
        /// The version string, when it decodes.
        version: Option<String>,
        /// Where decoding failed.
        offset: u64,
        detail: String,
        /// Empty, or a cut-short record of a 0.6 version: what a crash during the
        /// server's rewrite leaves. Anything else may be another format: never
        /// repaired.
        crash_like: bool,
    },
}

/// Decodes the record; `Err((offset, detail, ran_out))` where it fails.
fn decode(bytes: &[u8]) -> Result<String, (u64, String, bool, Option<String>)> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.string().map_err(|e| (r.at, e.0, e.1, None))?;
    let fail = |r: &Reader<'_>, e: (String, bool)| (r.at, e.0, e.1, Some(version.clone()));
    r.string().map_err(|e| fail(&r, e))?;
    let migrations = r.varint().map_err(|e| fail(&r, e))?;
    for _ in 0..migrations {
        r.varint().map_err(|e| fail(&r, e))?;
        r.string().map_err(|e| fail(&r, e))?;
        r.string().map_err(|e| fail(&r, e))?;
        r.varint().map_err(|e| fail(&r, e))?;
    }
    Ok(version)
}

/// Judges the bytes of `state/info`.
pub fn judge(bytes: &[u8]) -> Info {
    let len = bytes.len() as u64;
    match decode(bytes) {
        Ok(version) if is_version(&version) => Info::Sound { version },
        Ok(version) => Info::Bad {
            len,
            version: Some(version.clone()),
            offset: 0,
            detail: format!("version {version:?} is not a version number"),
            crash_like: false,
        },
        Err((offset, detail, ran_out, version)) => {
            // A cut-short 0.6 record: everything read fits, then the file ends.
            let crash_like =
                len == 0 || ran_out && version.as_deref().is_some_and(|v| v.starts_with("0.6."));
            Info::Bad {
                len,
                version,
                offset,
                detail,
                crash_like,
            }
        }
    }
}

/// `major.minor.patch`, each a number, as 0.6.0's `SemanticVersion` parses it.
pub fn is_version(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: u64,
}

/// What failed, and whether because the bytes ran out.
type Fail = (String, bool);

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Result<&[u8], Fail> {
        let from = usize::try_from(self.at).map_err(|_| ("too long".to_string(), false))?;
        let to = usize::try_from(n)
            .ok()
            .and_then(|n| from.checked_add(n))
            .filter(|to| *to <= self.bytes.len())
            .ok_or_else(|| (format!("the file ends before byte {}", self.at + n), true))?;
        self.at += n;
        self.bytes
            .get(from..to)
            .ok_or_else(|| ("out of range".to_string(), true))
    }

    fn varint(&mut self) -> Result<u64, Fail> {
        let marker = *self.take(1)?.first().unwrap_or(&0);
        let wide = |r: &mut Self, n: u64| -> Result<u64, Fail> {
            let raw = r.take(n)?;
            let mut buf = [0u8; 8];
            for (b, v) in buf.iter_mut().zip(raw) {
                *b = *v;
            }
            Ok(u64::from_le_bytes(buf))
        };
        match marker {
            0..=250 => Ok(u64::from(marker)),
            251 => wide(self, 2),
            252 => wide(self, 4),
            253 => wide(self, 8),
            _ => Err((format!("invalid integer marker {marker}"), false)),
        }
    }

    fn string(&mut self) -> Result<String, Fail> {
        let len = self.varint()?;
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(str::to_string)
            .map_err(|_| ("a string that is not UTF-8".to_string(), false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(version: &str) -> Vec<u8> {
        let mut b = vec![version.len() as u8];
        b.extend(version.as_bytes());
        b.push(19);
        b.extend(b"3476900567878811119");
        b.push(0);
        b
    }

    #[test]
    fn judges_sound_cut_and_foreign_records() {
        let sound = written("0.6.0");
        assert_eq!(
            judge(&sound),
            Info::Sound {
                version: "0.6.0".into()
            }
        );
        for cut in 0..sound.len() {
            match judge(&sound[..cut]) {
                Info::Bad { crash_like, .. } => {
                    // The version string itself cut short says nothing of the format.
                    assert_eq!(crash_like, cut == 0 || cut >= 6, "{cut}");
                }
                other => panic!("{cut}: {other:?}"),
            }
        }
        assert!(matches!(
            judge(&[0xff, 1, 2]),
            Info::Bad {
                crash_like: false,
                ..
            }
        ));
        assert!(matches!(
            judge(&written("x.y")),
            Info::Bad {
                crash_like: false,
                ..
            }
        ));
    }
}
