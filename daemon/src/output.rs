//! A command's report on stdout: through one buffered writer (a report of thousands
//! of lines written a line, one system call, at a time took longer than finding
//! them), and a reader that went away (`… | head`) ends the report, not the
//! command, whose exit code still says what it found or did. (`println!` panics
//! on a closed pipe: exit 101 and a backtrace.)

use anyhow::Context;
use std::io::{self, Write};

/// Runs `write` on stdout.
pub fn to_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> anyhow::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the report to stdout")
        }
        _ => Ok(()),
    }
}

/// `value` as pretty JSON on stdout, one object.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    to_stdout(|out| writeln!(out, "{text}"))
}
