//! The core's side of alerts (`alerts.rs` has the alerts themselves, the board and
//! the stalled-write watch): raising and clearing them as verification passes find
//! and lose their signatures, journaling them, and folding them back from the journal.

use crate::watch::alert_history::load;
use crate::watch::alerts::{Active, Alert, AlertKind, Finding, Pending};
use crate::watch::core::Core;
use crate::watch::notify_systemd;
use journal::{Record, SegmentKey};

impl Core {
    /// Folds the journal's alerts into the board (at start and after a lease). A
    /// journal that cannot be read for it leaves no alert in force, logged.
    pub(super) fn load_alerts(&mut self) {
        let Some(journal) = &self.journal else {
            return;
        };
        match load(journal.journal()) {
            Ok(active) => {
                for a in active.values() {
                    tracing::error!(
                        partition = %a.partition(),
                        segment = %a.segment,
                        file = %a.file,
                        byte = a.byte,
                        kind = a.kind.name(),
                        "alert still in force (raised before): {}",
                        a.message()
                    );
                }
                self.status.alerts.replace(active);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the journal's alerts: none in force");
                self.status.alerts.replace(Active::new());
            }
        }
        notify_systemd::status(&self.status.human());
    }

    /// Raises an alert unless one of the segment and kind is in force: logs it at
    /// error level, journals it, shows it in systemd's status line.
    pub(super) fn raise(&mut self, segment: SegmentKey, finding: Finding, detail: &str) {
        if self.status.alerts.is_active(segment, finding.kind) {
            return;
        }
        let file = if finding.in_index {
            segment.rel_index()
        } else {
            segment.rel_log()
        };
        let alert = Alert {
            kind: finding.kind,
            segment,
            file: file.clone(),
            byte: finding.byte,
            detail: detail.to_string(),
            raised_unix_micros: journal::record::now_micros(),
        };
        tracing::error!(
            partition = %segment.partition,
            segment = %segment,
            file = %file,
            byte = finding.byte,
            kind = finding.kind.name(),
            "{}",
            alert.message()
        );
        self.outbox.push(Record::AlertRaised {
            segment,
            kind: finding.kind.name().to_string(),
            file,
            byte: finding.byte,
            detail: detail.to_string(),
            raised_unix_micros: alert.raised_unix_micros,
        });
        self.status.alerts.insert(alert);
        notify_systemd::status(&self.status.human());
    }

    /// Clears the alerts of `segment` (of `kind`, or all): journaled and logged.
    pub(super) fn clear_alerts(&mut self, segment: SegmentKey, kind: Option<AlertKind>, why: &str) {
        let gone = self
            .status
            .alerts
            .remove(|a| a.segment == segment && kind.is_none_or(|k| k == a.kind));
        if gone.is_empty() {
            return;
        }
        for a in &gone {
            tracing::info!(
                partition = %segment.partition,
                segment = %segment,
                kind = a.kind.name(),
                "alert {} on segment {segment} cleared: {why}",
                a.kind
            );
        }
        self.outbox.push(Record::AlertsCleared {
            partition: segment.partition,
            segment: Some(segment),
            kind: kind.map(|k| k.name().to_string()),
            reason: why.to_string(),
        });
        notify_systemd::status(&self.status.human());
    }

    /// A verification pass begins: segments left pending are looked at again, even
    /// without a write event (a stalled writer sends none). Only a pass that `counts`
    /// (one per checkpoint interval) brings a stalled write nearer its alert; the
    /// others only look again, which confirms an index ahead of its log sooner.
    pub(super) fn begin_verify_pass(&mut self, counts: bool) {
        if self.stalls.in_pass {
            self.stalls.counting |= counts;
            return;
        }
        self.stalls.in_pass = true;
        self.stalls.counting = counts;
        let keys: Vec<SegmentKey> = self.stalls.pending.keys().copied().collect();
        self.work.all_written(keys);
    }

    pub(super) fn end_verify_pass(&mut self) {
        self.stalls.in_pass = false;
        self.stalls.counting = false;
    }

    /// Verification of `key` stopped before the end of what was written, at `pos`.
    /// After [`StallWatch::grace`] counted passes without change with log bytes after `pos`,
    /// the `stalled-write` alert.
    pub(super) fn note_waiting(
        &mut self,
        key: SegmentKey,
        pos: u64,
        log_len: u64,
        index_len: Option<u64>,
        why: &str,
    ) {
        let now = Pending {
            pos,
            log_len,
            index_len,
            passes: 0,
        };
        let passes = match self.stalls.pending.get(&key) {
            Some(p) if (p.pos, p.log_len, p.index_len) == (pos, log_len, index_len) => {
                p.passes.saturating_add(u32::from(self.stalls.counting))
            }
            _ => 0,
        };
        self.stalls.pending.insert(key, Pending { passes, ..now });
        if passes >= self.stalls.grace && log_len > pos {
            let detail = format!(
                "{why}; valid messages end at byte {pos} of {log_len}, nothing written for \
                 {passes} checkpoint intervals"
            );
            self.raise(
                key,
                Finding {
                    kind: AlertKind::StalledWrite,
                    byte: pos,
                    in_index: false,
                },
                &detail,
            );
        }
    }

    /// Verification of `key` reached the end of what was written, or it was sealed
    /// whole: a stalled write is over.
    pub(super) fn note_settled(&mut self, key: SegmentKey, why: &str) {
        self.stalls.pending.remove(&key);
        self.clear_alerts(key, Some(AlertKind::StalledWrite), why);
    }

    /// The segment is gone: its alerts are over.
    pub(super) fn segment_gone(&mut self, key: SegmentKey) {
        self.stalls.pending.remove(&key);
        self.clear_alerts(key, None, "the segment was deleted");
    }

    /// Stops watching `key` for stalls (damage found, or sealed).
    pub(super) fn forget_pending(&mut self, key: SegmentKey) {
        self.stalls.pending.remove(&key);
    }
}
