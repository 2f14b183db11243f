//! The systemd notification protocol, through `sd-notify` 0.5.
//!
//! `READY=1` once the start-up reconciliation is journaled, `STATUS=` with what is
//! watched, `WATCHDOG=1` at half of `WATCHDOG_USEC` — but only while the core's
//! heartbeat is fresh, so a core stuck in I/O or a deadlock is restarted by systemd
//! rather than kept alive by a healthy timer — and `STOPPING=1` on shutdown.
//! Without `NOTIFY_SOCKET` every call is a no-op. A failed send is logged, never fatal:
//! the sidecar's job is the journal, not the notification.

use sd_notify::NotifyState;
use std::time::Duration;

/// systemd's watchdog settings, read once at start.
#[derive(Clone, Copy, Debug)]
pub struct Watchdog {
    /// `WATCHDOG_USEC`: systemd kills the service after this long without a ping.
    pub timeout: Duration,
}

impl Watchdog {
    pub fn from_env() -> Option<Self> {
        sd_notify::watchdog_enabled()
            .filter(|d| !d.is_zero())
            .map(|timeout| Self { timeout })
    }

    /// Pings go out at half the timeout, as sd_watchdog_enabled(3) recommends.
    pub fn ping_every(&self) -> Duration {
        self.timeout / 2
    }

    /// The core must have beaten within this long for a ping to be sent: the timeout
    /// minus one ping period, so a stuck core misses the deadline.
    pub fn max_beat_age(&self) -> Duration {
        self.timeout - self.ping_every()
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("cannot notify systemd: {e}");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// Asks for more start-up time while the first reconciliation runs (a large data
/// directory seen for the first time can take longer than `TimeoutStartSec`).
pub fn extend_start(by: Duration) {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    send(&[NotifyState::ExtendTimeoutUsec(usec)]);
}
