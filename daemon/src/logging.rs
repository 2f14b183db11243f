//! Logging through `tracing`, set up once for every command.
//!
//! On a terminal: human-readable lines with colours. Under systemd, stderr is a
//! journal stream (systemd sets `JOURNAL_STREAM` to its device and inode): then the
//! native journald protocol is used, so levels become journal priorities and fields
//! stay structured; if the journal socket cannot be reached, plain lines without
//! timestamps or colours (the journal adds its own timestamps). A pipe or a file gets
//! plain timestamped lines. `IGGY_WARDEN_LOG` takes an `EnvFilter` (default `info`).

use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("IGGY_WARDEN_LOG").unwrap_or_else(|_| EnvFilter::new("info"))
}

pub fn init() {
    if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(layer) => {
                // Fields keep their own names (`SEGMENT=`, `PARTITION=`, ...) rather than
                // `F_SEGMENT=`: `journalctl -u iggy-warden SEGMENT=0/0/0@0` finds them.
                let layer = layer.with_field_prefix(None);
                let _ = tracing_subscriber::registry()
                    .with(filter())
                    .with(layer)
                    .try_init();
                return;
            }
            Err(_) => {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(filter())
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .without_time()
                    .try_init();
                return;
            }
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Whether stderr is the journal stream systemd announced in `JOURNAL_STREAM`
/// (`<device>:<inode>`). Comparing the inode, not just the variable's presence, keeps
/// a child that inherited the variable but whose stderr was redirected on plain lines.
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = parse_journal_stream(&value.to_string_lossy()) else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    // /proc/self/fd/2 resolves to the descriptor's own inode, sockets included.
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(meta) => meta.dev() == dev && meta.ino() == ino,
        Err(_) => false,
    }
}

fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.trim().parse().ok()?, ino.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_is_device_colon_inode() {
        assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8"), None);
        assert_eq!(parse_journal_stream("a:1"), None);
    }
}
