//! File names as iggy-warden prints them: escaped, so that every name shows on one
//! line, and losslessly, so that the name on disk can be told from the output.
//!
//! A Unix file name is any bytes but `/` and NUL: not necessarily UTF-8, and possibly
//! holding a newline or a terminal escape sequence. `Path::display` replaces invalid
//! bytes by U+FFFD (two different names then print alike), serde refuses to serialize
//! such a path at all, and a newline in a name splits a report line. [`escaped`]
//! prints printable UTF-8 as it is, a backslash as `\\`, and every other byte (a
//! control character, DEL, or a byte that is not part of valid UTF-8) as `\xNN`. The
//! text and the JSON reports show the same escaped string.

use serde::Serializer;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A name or path, displayed escaped (see the module's documentation).
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(&'a [u8]);

/// `path`, escaped for printing.
pub fn escaped(path: &Path) -> Escaped<'_> {
    Escaped(path.as_os_str().as_bytes())
}

/// A string read from disk (a manifest's file name, a reason), escaped for printing:
/// valid UTF-8 already, but it may hold control characters.
pub fn escaped_str(s: &str) -> Escaped<'_> {
    Escaped(s.as_bytes())
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            let valid = chunk.valid();
            // Runs of characters that need no escape are written whole: a report of
            // thousands of paths written a character at a time spent more in the
            // writer than in finding the problems.
            let mut plain = 0;
            for (at, c) in valid.char_indices() {
                if c != '\\' && !c.is_control() {
                    continue;
                }
                f.write_str(valid.get(plain..at).unwrap_or_default())?;
                plain = at + c.len_utf8();
                if c == '\\' {
                    f.write_str("\\\\")?;
                    continue;
                }
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    write!(f, "\\x{b:02x}")?;
                }
            }
            f.write_str(valid.get(plain..).unwrap_or_default())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Serializes a path as its escaped string (for `#[serde(serialize_with)]`).
pub fn serialize_path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&escaped(path))
}

/// Serializes paths as their escaped strings.
pub fn serialize_paths<S: Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| escaped(p).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn show(bytes: &[u8]) -> String {
        escaped(Path::new(OsStr::from_bytes(bytes))).to_string()
    }

    #[test]
    fn plain_names_are_unchanged() {
        assert_eq!(
            show(b"streams/1/00000000000000000000.log"),
            "streams/1/00000000000000000000.log"
        );
        assert_eq!(show("données é".as_bytes()), "données é");
    }

    #[test]
    fn control_characters_invalid_bytes_and_backslashes_are_escaped() {
        assert_eq!(show(b"new\nline"), "new\\x0aline");
        assert_eq!(show(b"bad\xffname"), "bad\\xffname");
        assert_eq!(show(b"esc\x1b[31m"), "esc\\x1b[31m");
        assert_eq!(show(b"del\x7f"), "del\\x7f");
        // A C1 control character is two bytes of UTF-8, both escaped.
        assert_eq!(show("c1\u{85}".as_bytes()), "c1\\xc2\\x85");
        assert_eq!(show(b"back\\slash"), "back\\\\slash");
    }

    /// The escape as defined, one character at a time.
    fn by_character(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    c if c.is_control() => {
                        let mut buf = [0u8; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            out.push_str(&format!("\\x{b:02x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn runs_written_whole_escape_as_each_character_would(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            text in "[a-z\\\\\\n\u{85}é/]{0,32}",
        ) {
            proptest::prop_assert_eq!(show(&bytes), by_character(&bytes));
            proptest::prop_assert_eq!(show(text.as_bytes()), by_character(text.as_bytes()));
        }
    }

    #[test]
    fn escaping_is_lossless() {
        // Two names that Path::display shows alike are told apart.
        assert_ne!(show(b"a\xff"), show(b"a\xfe"));
        assert_ne!(show(b"a\\x0a"), show(b"a\n"));
    }

    #[test]
    fn serializes_as_the_escaped_string() {
        #[derive(serde::Serialize)]
        struct S<'a> {
            #[serde(serialize_with = "serialize_path")]
            p: &'a Path,
        }
        let p = Path::new(OsStr::from_bytes(b"x\xff\n"));
        assert_eq!(
            serde_json::to_string(&S { p }).unwrap(),
            r#"{"p":"x\\xff\\x0a"}"#
        );
    }
}
