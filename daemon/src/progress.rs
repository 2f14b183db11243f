//! A progress bar on stderr for long scans, shown only when stderr is a terminal so
//! that logs and pipes stay clean. It appears once the size of the scan is known.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::OnceLock;

/// Below this many bytes a scan is quick enough not to need a bar.
const MIN_BYTES_FOR_BAR: u64 = 256 << 20;

pub struct TerminalProgress {
    what: &'static str,
    bar: OnceLock<Option<ProgressBar>>,
}

impl TerminalProgress {
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            bar: OnceLock::new(),
        }
    }

    fn make(&self, total: u64) -> Option<ProgressBar> {
        if total < MIN_BYTES_FOR_BAR || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(self.what);
        Some(bar)
    }

    pub fn finish(&self) {
        if let Some(Some(bar)) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

impl recovery::pipeline::Progress for TerminalProgress {
    fn start(&self, total_bytes: u64) {
        self.bar.get_or_init(|| self.make(total_bytes));
    }

    fn advance(&self, bytes: u64) {
        if let Some(Some(bar)) = self.bar.get() {
            bar.inc(bytes);
        }
    }
}
