//! Journal handover between the sidecar and the one-shot commands.
//!
//! sled lets one process open a journal at a time, and the sidecar (`watch`) keeps it
//! open while iggy-server runs. `recover` runs as iggy-server's `ExecStartPre` while the
//! sidecar runs (and `replay`, `restore` may be run by hand), so they ask the sidecar,
//! over the unix stream socket `<state dir>/sidecar.sock`, to flush and close the
//! journal, and hand it back by closing the connection.
//!
//! The protocol is one text line each way:
//!
//! | client sends | sidecar answers | and then |
//! |---|---|---|
//! | `RELEASE` | `RELEASED` once the journal is closed and its lock is free | the sidecar waits until the connection closes (the client is done, or died), then reopens the journal and reconciles it with the disk in full |
//! | `RESCAN` | `OK` | the sidecar reconciles journal and disk in full |
//! | `STATUS` | `key=value ...` | counters, for operators and tests |
//! | `STATUS-JSON` | one line of JSON | counters and the alerts in force (`iggy-warden status`) |
//! | `TICK` | `OK` once done | one checkpoint interval's work, at once (for tests) |
//!
//! This file holds the protocol and its client side (`RESCAN` and `STATUS` are
//! plain text: `socat - UNIX-CONNECT:<state dir>/sidecar.sock` will do); the sidecar's
//! side lives in `watch/control.rs`. The connection itself is the lease: the kernel closes it when
//! the client process dies, so a crashed `recover` cannot keep the sidecar stopped.

use anyhow::Context;
use recovery::names::escaped;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File name of the sidecar's control socket inside the state directory.
pub const SOCKET_NAME: &str = "sidecar.sock";
pub const RELEASE: &str = "RELEASE";
pub const RELEASED: &str = "RELEASED";
pub const RESCAN: &str = "RESCAN";
pub const STATUS: &str = "STATUS";
pub const STATUS_JSON: &str = "STATUS-JSON";
pub const TICK: &str = "TICK";
pub const OK: &str = "OK";

/// How long a client waits for the sidecar to release the journal. The sidecar
/// finishes its current unit of work first (a bounded scan), so seconds are plenty.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// Held while the sidecar has released the journal; dropping it hands the journal back.
#[derive(Debug)]
pub struct JournalLease {
    _conn: UnixStream,
}

/// Asks a running sidecar to release the journal. `Ok(None)` when no sidecar listens
/// (no socket, a stale one, or a sidecar that is shutting down and closed the
/// connection without releasing: its journal is about to be free anyway).
pub fn request_journal(state_dir: &Path) -> anyhow::Result<Option<JournalLease>> {
    let path = socket_path(state_dir);
    let Some(mut conn) = connect(&path)? else {
        return Ok(None);
    };
    match exchange(&mut conn, RELEASE, RELEASE_TIMEOUT) {
        Ok(Some(answer)) if answer == RELEASED => {
            tracing::debug!("the sidecar at {} released the journal", escaped(&path));
            Ok(Some(JournalLease { _conn: conn }))
        }
        Ok(None) => {
            tracing::debug!(
                "the sidecar at {} closed the connection without releasing (stopping)",
                escaped(&path)
            );
            Ok(None)
        }
        Ok(Some(other)) => anyhow::bail!(
            "the sidecar at {} answered {other:?} to {RELEASE}; expected {RELEASED}",
            escaped(&path)
        ),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            anyhow::bail!(
                "the sidecar listening on {} did not release the journal within {} s; \
                 is it stuck? (stop it, or remove the socket if no sidecar runs)",
                escaped(&path),
                RELEASE_TIMEOUT.as_secs()
            )
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot ask the sidecar at {} to release the journal",
                escaped(&path)
            )
        }),
    }
}

fn connect(path: &Path) -> anyhow::Result<Option<UnixStream>> {
    match UnixStream::connect(path) {
        Ok(conn) => Ok(Some(conn)),
        // No socket, or a socket file left by a sidecar that is gone.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            Ok(None)
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot connect to the sidecar at {}", escaped(path)))
        }
    }
}

/// Sends one command to a running sidecar and returns its answer line; `Ok(None)`
/// when no sidecar listens on the state directory's socket.
pub fn ask(state_dir: &Path, command: &str, timeout: Duration) -> anyhow::Result<Option<String>> {
    let path = socket_path(state_dir);
    let Some(mut conn) = connect(&path)? else {
        return Ok(None);
    };
    exchange(&mut conn, command, timeout)
        .with_context(|| format!("cannot ask the sidecar at {} for {command}", escaped(&path)))
}

/// Writes `command` and reads one answer line; `Ok(None)` on end of stream.
fn exchange(
    conn: &mut UnixStream,
    command: &str,
    timeout: Duration,
) -> std::io::Result<Option<String>> {
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    conn.write_all(format!("{command}\n").as_bytes())?;
    let mut line = String::new();
    // A borrowed reader: the stream itself must stay with the lease.
    let n = BufReader::new(&*conn).read_line(&mut line)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end().to_string()))
}

/// Waits until no process holds the journal's sled lock, at most `timeout`; true when
/// it is free.
///
/// sled takes an exclusive `flock` on `<journal>/db` and releases it from background
/// threads a moment after the last handle is dropped. The sidecar answers `RELEASED`
/// only once the lock is really free, so the client's open does not race it. Probing
/// with our own `flock` is safe: a lock we get we drop at once, and nobody but the
/// waiting client tries to take it in between.
pub fn wait_journal_unlocked(journal_dir: &Path, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if journal_lock_free(journal_dir) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn journal_lock_free(journal_dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let file = match std::fs::File::open(journal_dir.join("db")) {
        Ok(f) => f,
        // No database file: nothing can hold its lock.
        Err(e) if e.kind() == ErrorKind::NotFound => return true,
        Err(_) => return false,
    };
    // SAFETY: flock on a descriptor we own; it only changes advisory lock state, and
    // the descriptor outlives both calls.
    let got = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if got {
        // SAFETY: as above; closing the file would release it too.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_sidecar_means_no_lease() {
        let dir = tempfile::tempdir().unwrap();
        assert!(request_journal(dir.path()).unwrap().is_none());
        // A stale socket file nobody listens on.
        let listener = std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap();
        drop(listener);
        assert!(request_journal(dir.path()).unwrap().is_none());
    }

    #[test]
    fn lease_lasts_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap();
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(&conn);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "RELEASE\n");
            (&conn).write_all(b"RELEASED\n").unwrap();
            // Returns when the client drops its lease.
            let mut rest = String::new();
            reader.read_line(&mut rest).unwrap();
            rest
        });
        let lease = request_journal(dir.path()).unwrap().expect("lease");
        drop(lease);
        assert_eq!(server.join().unwrap(), "");
    }

    #[test]
    fn a_held_sled_lock_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal::Journal::open(&dir.path().join("journal")).unwrap();
        assert!(!journal_lock_free(&dir.path().join("journal")));
        drop(j);
        assert!(wait_journal_unlocked(
            &dir.path().join("journal"),
            Duration::from_secs(5)
        ));
    }
}
