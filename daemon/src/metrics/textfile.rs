//! Files replaced atomically: the node_exporter textfile (`metrics_textfile`) and
//! `last-recover.json`.
//!
//! A reader sees the old file or the new one, never a part: the text goes to a
//! temporary file beside the target (`.<name>.tmp`, which node_exporter ignores since
//! it does not end in `.prom`), created exclusively (so a link planted at that name is
//! never followed), and is renamed over the target. Readable by all (0644): the
//! textfile is read by node_exporter's user.

use anyhow::Context;
use recovery::names::escaped;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Checks a `metrics_textfile` setting: an absolute path to a `*.prom` file (the
/// only files node_exporter reads), outside the data directory.
pub fn check_path(file: &Path, data_dir: &Path) -> anyhow::Result<()> {
    if !file.is_absolute() {
        anyhow::bail!(
            "metrics_textfile {} must be an absolute path",
            escaped(file)
        );
    }
    if file.extension().and_then(|e| e.to_str()) != Some("prom") {
        anyhow::bail!(
            "metrics_textfile {} must end in .prom (node_exporter reads only those)",
            escaped(file)
        );
    }
    let parent = file
        .parent()
        .with_context(|| format!("metrics_textfile {} has no folder", escaped(file)))?;
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let folder = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    if folder.starts_with(&data) {
        anyhow::bail!(
            "metrics_textfile {} is inside the data directory {}: the sidecar never writes there",
            escaped(file),
            escaped(data_dir)
        );
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically; with `durable`, fsyncs the file before
/// the rename and the folder after it.
pub fn replace_file(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".tmp");
    let temp = dir.join(temp_name);
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaced_whole_readable_by_all_and_no_temporary_left() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("iggy-warden.prom");
        replace_file(&file, b"a 1\n", false).unwrap();
        // An old temporary of a killed writer, or a link planted there, is replaced.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".iggy-warden.prom.tmp")).unwrap();
        replace_file(&file, b"a 2\n", true).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"a 2\n");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["iggy-warden.prom", "victim"]);
    }

    #[test]
    fn a_reader_never_sees_a_partial_file() {
        // The target is only ever renamed into place: while a writer replaces it
        // again and again, every read is one of the whole texts written.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.prom");
        let texts: Vec<Vec<u8>> = (0..50u8)
            .map(|i| vec![b'a' + (i % 26); 64 * 1024 + usize::from(i)])
            .collect();
        replace_file(&file, &texts[0], false).unwrap();
        std::thread::scope(|s| {
            let writer = s.spawn(|| {
                for t in &texts {
                    replace_file(&file, t, false).unwrap();
                }
            });
            while !writer.is_finished() {
                let read = std::fs::read(&file).unwrap();
                assert!(
                    texts.contains(&read),
                    "a partial file of {} bytes",
                    read.len()
                );
            }
        });
        assert_eq!(std::fs::read(&file).unwrap(), texts[49]);
    }

    #[test]
    fn textfile_paths_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        assert!(check_path(&dir.path().join("t/iggy-warden.prom"), &data).is_ok());
        assert!(check_path(Path::new("rel/iggy-warden.prom"), &data).is_err());
        assert!(check_path(&dir.path().join("iggy-warden.txt"), &data).is_err());
        let e = check_path(&data.join("x.prom"), &data).unwrap_err();
        assert!(e.to_string().contains("inside the data directory"), "{e}");
    }
}
