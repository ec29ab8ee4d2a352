//! systemd integration through sd-notify: READY, RELOADING, STOPPING and STATUS, and the
//! watchdog petted from the drive loop (proving that the loop itself is alive). Every call is a
//! no-op when the gateway does not run under systemd (`NOTIFY_SOCKET` unset).

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells systemd the service is ready (`Type=notify`), with a status line.
pub fn ready(status: &str) {
    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd a reload (SIGHUP) is in progress.
pub fn reloading() {
    let _ = sd_notify::notify(&[NotifyState::Reloading]);
}

/// Tells systemd the service is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

/// How often to pet the watchdog: half the interval systemd asked for, if it asked.
pub(crate) fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// Pets the watchdog.
pub(crate) fn watchdog() {
    let _ = sd_notify::notify(&[NotifyState::Watchdog]);
}
