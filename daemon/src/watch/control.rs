//! The sidecar's side of the control socket `<state dir>/sidecar.sock` (protocol in
//! `handover.rs`).
//!
//! Each connection is served by its own task. `RELEASE` takes the lease (one holder at
//! a time; a second client waits its turn), asks the core to close the journal, answers
//! `RELEASED`, then waits for the connection to end — EOF, an error, or the client
//! process dying — and tells the core to resume. The socket is created 0600 and the
//! state directory's permissions do the rest: whoever may write the journal may ask
//! for it.

use crate::handover::{OK, RELEASE, RELEASED, RESCAN, STATUS};
use crate::watch::events::{Command, Shared};
use crate::watch::status::Status;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

/// Longest command line accepted.
const MAX_LINE: u64 = 256;

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
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
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
                        tracing::debug!("control connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("control socket: {e}");
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
    reader.read_line(&mut line).await?;
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
        other => {
            write
                .write_all(format!("ERROR unknown command {other:?}\n").as_bytes())
                .await
        }
    }
}
