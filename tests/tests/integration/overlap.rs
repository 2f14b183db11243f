//! Work done while a sync round waits for the disk: the executor's rounds are
//! mostly waits, so what needs no durability runs beside them. The check after a
//! repair reads what the page cache holds; a run's manifest is written (and named
//! only once both are durable) while its saved bytes are synced.

use crate::after_repair::repair;
use harness::Fault;
use recovery::fsops::hooked::{Hook, Hooked, Op, Verdict};
use std::io;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// On the real file system (as [`Hooked`]), every sync after step `gate` waits until
/// event `until` (a step, or `write NAME` for a file written whole) has happened,
/// or until 30 s have passed: run one after the other, they would wait it out.
struct Overlap {
    gate: &'static str,
    until: &'static str,
    /// Events seen, in order, and the syncs whose wait ended with `until` seen.
    seen: Mutex<(Vec<String>, u32)>,
    changed: Condvar,
}

impl Overlap {
    fn new(gate: &'static str, until: &'static str) -> Self {
        Self {
            gate,
            until,
            seen: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    fn event(&self, what: String) {
        self.seen.lock().unwrap().0.push(what);
        self.changed.notify_all();
    }

    fn sync(&self) {
        let seen = self.seen.lock().unwrap();
        if !seen.0.iter().any(|s| s == self.gate) {
            return;
        }
        let (mut seen, _) = self
            .changed
            .wait_timeout_while(seen, Duration::from_secs(30), |(events, _)| {
                !events.iter().any(|s| s == self.until)
            })
            .unwrap();
        if seen.0.iter().any(|s| s == self.until) {
            seen.1 += 1;
        }
    }

    /// The events in order, after checking that some sync waited for `until`.
    fn overlapped(&self) -> Vec<String> {
        let (events, overlapped) = &*self.seen.lock().unwrap();
        assert!(
            *overlapped >= 1,
            "no sync after {} overlapped {}: {events:?}",
            self.gate,
            self.until
        );
        events.clone()
    }
}

impl Hook for Overlap {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        if matches!(
            op,
            Op::SyncFile { .. } | Op::SyncDir { .. } | Op::SyncFs { .. }
        ) {
            self.sync();
        }
        Ok(Verdict::Run)
    }
    fn after(&self, op: Op<'_>) {
        let name = || op.path().file_name().unwrap_or_default().to_string_lossy();
        match op {
            Op::WriteFile { .. } => self.event(format!("write {}", name())),
            Op::Rename { .. } => self.event(format!("rename to {}", name())),
            Op::SyncFile { .. } | Op::SyncDir { .. } | Op::SyncFs { .. } => {
                self.event("synced".to_string())
            }
            _ => {}
        }
    }
    fn step(&self, what: &str) {
        self.event(what.to_string());
    }
}

/// Where `name` is in `events`.
fn at(events: &[String], name: &str) -> usize {
    let found = events.iter().position(|s| s == name);
    found.unwrap_or_else(|| panic!("no event {name}: {events:?}"))
}

#[test]
fn the_check_after_the_repair_runs_while_the_changes_are_written_back() {
    let overlap = Overlap::new("sync changes", "check after repair");
    assert!(repair(Fault::TornLogTail, &Hooked(&overlap)).expect("repair runs"));
    let events = overlap.overlapped();
    // The repairs are journaled done after both.
    assert!(at(&events, "check after repair") < at(&events, "journal done"));
}

#[test]
fn the_run_s_manifest_is_written_while_its_saved_bytes_are_synced() {
    let overlap = Overlap::new("sync saved bytes", "write manifest.json.tmp");
    assert!(repair(Fault::TornLogTail, &Hooked(&overlap)).expect("repair runs"));
    let events = overlap.overlapped();
    // Named only after the round's syncs, and before anything is cut.
    let named = at(&events, "rename to manifest.json");
    let written = at(&events, "write manifest.json.tmp");
    let synced = events
        .get(written..named)
        .is_some_and(|between| between.iter().any(|e| e == "synced"));
    assert!(synced, "{events:?}");
    assert!(named < at(&events, "apply changes"), "{events:?}");
}

/// Fails every cut, noting the steps.
#[derive(Default)]
struct FailingCuts(Mutex<Vec<String>>);

impl Hook for FailingCuts {
    fn before(&self, op: Op<'_>) -> io::Result<Verdict> {
        match op {
            Op::Truncate { .. } => Err(io::Error::other("the disk refuses the cut")),
            _ => Ok(Verdict::Run),
        }
    }
    fn step(&self, what: &str) {
        self.0.lock().unwrap().push(what.to_string());
    }
}

#[test]
fn nothing_runs_beside_the_last_round_when_a_change_failed() {
    let failing = FailingCuts::default();
    let err = repair(Fault::TornLogTail, &Hooked(&failing)).unwrap_err();
    assert!(err.to_string().contains("refuses the cut"), "{err}");
    let steps = failing.0.lock().unwrap().clone();
    // The round and the journal still run, for the repairs that did finish.
    assert!(at(&steps, "sync changes") < at(&steps, "journal done"));
    assert!(
        !steps.iter().any(|s| s == "check after repair"),
        "{steps:?}"
    );
}
