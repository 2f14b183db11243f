//! The sidecar under test (`iggy-warden watch`, run as a child) and a scraper of
//! its metrics endpoint.

use crate::BIN;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `iggy-warden watch`, a child of this process, and its metrics scraper if any.
pub(crate) struct Sidecar {
    pub(crate) child: Child,
    state: PathBuf,
    scraper: Option<Scraper>,
}

/// Scrapes the sidecar's metrics endpoint once a second until dropped.
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Scraper {
    fn start(addr: String) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut ok = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut conn) = std::net::TcpStream::connect(&addr) {
                    let _ = conn.write_all(
                        b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n",
                    );
                    let mut body = String::new();
                    if std::io::Read::read_to_string(&mut conn, &mut body).is_ok()
                        && body.ends_with("# EOF\n")
                    {
                        ok += 1;
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            ok
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

fn metrics_on() -> bool {
    std::env::var_os("WATCH_BENCH_METRICS").is_some_and(|v| v == "1")
}

impl Sidecar {
    pub(crate) fn spawn(data: &Path, state: &Path) -> Self {
        Self::spawn_with(data, state, &[])
    }

    pub(crate) fn spawn_with(data: &Path, state: &Path, extra: &[&str]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg("watch").args(extra);
        let mut scrape = None;
        if metrics_on() {
            let root = state.parent().expect("state dir has a parent");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            fs::create_dir_all(root.join("node")).expect("create textfile dir");
            let config = root.join("metrics.toml");
            fs::write(
                &config,
                format!(
                    "metrics_listen = \"127.0.0.1:{port}\"\nmetrics_textfile = \"{}\"\n",
                    root.join("node/iggy-warden.prom").display()
                ),
            )
            .expect("write config");
            cmd.env("IGGY_WARDEN_CONFIG", config);
            scrape = Some(format!("127.0.0.1:{port}"));
        }
        let child = cmd
            .arg("--data-dir")
            .arg(data)
            .arg("--state-dir")
            .arg(state)
            .env("IGGY_WARDEN_LOG", "warn")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start iggy-warden watch");
        Self {
            child,
            state: state.to_path_buf(),
            scraper: scrape.map(Scraper::start),
        }
    }

    pub(crate) fn status(&self) -> Option<String> {
        let mut conn = UnixStream::connect(self.state.join("sidecar.sock")).ok()?;
        conn.write_all(b"STATUS\n").ok()?;
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).ok()?;
        Some(line)
    }

    pub(crate) fn field(&self, name: &str) -> Option<String> {
        let line = self.status()?;
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    pub(crate) fn counter(&self, name: &str) -> u64 {
        self.field(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub(crate) fn wait(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ok: impl FnMut(&Self) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !ok(self) {
            if let Some(status) = self.child.try_wait().expect("poll sidecar") {
                panic!("sidecar exited ({status}) while waiting for {what}");
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn wait_settled(&mut self, timeout: Duration) {
        self.wait("idle", timeout, |s| {
            s.field("state").as_deref() == Some("watching")
                && s.field("idle").as_deref() == Some("true")
                && s.field("sealing").as_deref() == Some("0")
        });
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stop(mut self) {
        if let Some(scraper) = self.scraper.take() {
            let scrapes = scraper.finish();
            println!("metrics on: {scrapes} scrapes answered");
            assert!(scrapes > 0, "metrics were on but no scrape was answered");
        }
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
