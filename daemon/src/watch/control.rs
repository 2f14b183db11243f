//! The sidecar's side of the control socket `<state dir>/sidecar.sock` (protocol in
//! `handover.rs`).
//!
//! Each connection is served by its own task. `RELEASE` takes the lease (one holder at
//! a time; a second client waits its turn), asks the core to close the journal, answers
//! `RELEASED`, then waits for the connection to end — EOF, an error, or the client
//! process dying — and tells the core to resume. The socket is created 0600 and the
//! state directory's permissions do the rest: whoever may write the journal may ask
//! for it.
//!
//! A client has [`IDLE_TIMEOUT`] to send its command and take the answer; one that
//! connects and says nothing is disconnected then, so idle connections cannot pile
//! up. Only a lease, once granted, lasts as long as its connection.

use crate::handover::{OK, RELEASE, RELEASED, RESCAN, STATUS, STATUS_JSON, TICK};
use crate::watch::events::{Command, Shared};
use crate::watch::status::Status;
use anyhow::Context;
use recovery::names::escaped;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

/// Longest command line accepted.
const MAX_LINE: u64 = 256;

/// How long a connection may take to send its command, and to take an answer.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The bound socket; removed again when dropped.
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the socket, replacing a stale one. A socket someone still answers on means
/// another sidecar runs: refused.
pub fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another sidecar answers on {}; only one may watch a state directory",
                escaped(path)
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", escaped(path)))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", escaped(path)))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", escaped(path)))?;
    Ok(ControlSocket {
        listener,
        path: path.to_path_buf(),
    })
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: &UnixListener, shared: Arc<Shared>, status: Arc<Status>) {
    let lease = Arc::new(Mutex::new(()));
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                let (shared, status, lease) = (shared.clone(), status.clone(), lease.clone());
                tokio::spawn(async move {
                    if let Err(e) = handle(conn, shared, status, lease).await {
                        tracing::debug!(error = %e, "control connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(
    conn: UnixStream,
    shared: Arc<Shared>,
    status: Arc<Status>,
    lease: Arc<Mutex<()>>,
) -> std::io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut reader = BufReader::new(read.take(MAX_LINE));
    let mut line = String::new();
    match tokio::time::timeout(IDLE_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(read) => {
            read?;
        }
        Err(_) => {
            tracing::debug!(
                "control connection idle for {} s: closed",
                IDLE_TIMEOUT.as_secs()
            );
            return Ok(());
        }
    }
    let mut write = TimedWriter(&mut write);
    match line.trim() {
        RELEASE => {
            let _held = lease.lock().await;
            let (tx, rx) = tokio::sync::oneshot::channel();
            shared.command(Command::Release(tx));
            // Dropped unanswered when the core is stopping: just close.
            if rx.await.is_err() {
                return Ok(());
            }
            let answered = write.write_all(format!("{RELEASED}\n").as_bytes()).await;
            if answered.is_ok() {
                // The lease lasts until the client closes (or dies).
                let mut rest = reader.into_inner().into_inner();
                let mut sink = [0u8; 64];
                while matches!(rest.read(&mut sink).await, Ok(n) if n > 0) {}
            }
            shared.command(Command::Resume);
            tracing::info!("journal lease ended");
            Ok(())
        }
        RESCAN => {
            shared.command(Command::Rescan);
            write.write_all(format!("{OK}\n").as_bytes()).await
        }
        STATUS => {
            let pending = shared.lock().has_fs_work();
            let mut text = status.line();
            if pending {
                text = text.replace("idle=true", "idle=false");
            }
            write.write_all(format!("{text}\n").as_bytes()).await
        }
        STATUS_JSON => {
            let pending = shared.lock().has_fs_work();
            let mut value = status.json();
            if let (true, Some(obj)) = (pending, value.as_object_mut()) {
                obj.insert("idle".into(), serde_json::Value::Bool(false));
            }
            write.write_all(format!("{value}\n").as_bytes()).await
        }
        TICK => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            shared.command(Command::Tick(tx));
            // Dropped unanswered when the core is stopping: just close.
            if rx.await.is_err() {
                return Ok(());
            }
            write.write_all(format!("{OK}\n").as_bytes()).await
        }
        other => {
            write
                .write_all(format!("ERROR unknown command {other:?}\n").as_bytes())
                .await
        }
    }
}

/// Writes an answer, giving up after [`IDLE_TIMEOUT`] on a client that does not read.
struct TimedWriter<'a>(&'a mut tokio::net::unix::OwnedWriteHalf);

impl TimedWriter<'_> {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match tokio::time::timeout(IDLE_TIMEOUT, self.0.write_all(bytes)).await {
            Ok(r) => r,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that never sends a command is closed after the idle timeout.
    /// Tokio's clock is paused: the runtime jumps to the timer once every task
    /// waits, so no wall-clock time passes.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn an_idle_connection_is_closed_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let socket = bind(&dir.path().join("sidecar.sock")).unwrap();
        let shared = Shared::new();
        let status = Arc::new(Status::default());
        let server = serve(&socket.listener, shared, status);
        let client = async {
            let mut idle = UnixStream::connect(dir.path().join("sidecar.sock"))
                .await
                .unwrap();
            let started = tokio::time::Instant::now();
            let mut buf = [0u8; 16];
            // EOF: the sidecar closed the connection.
            assert_eq!(idle.read(&mut buf).await.unwrap(), 0);
            assert!(started.elapsed() >= IDLE_TIMEOUT);
            // A client that talks is still answered.
            let mut busy = UnixStream::connect(dir.path().join("sidecar.sock"))
                .await
                .unwrap();
            busy.write_all(b"STATUS\n").await.unwrap();
            let mut answer = String::new();
            BufReader::new(busy).read_line(&mut answer).await.unwrap();
            assert!(answer.starts_with("state=reconciling"), "{answer}");
        };
        tokio::select! {
            _ = server => unreachable!("the server never returns"),
            _ = client => {}
        }
    }
}
