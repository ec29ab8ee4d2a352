//! The open-file limit (`RLIMIT_NOFILE`). In transparent mode every mote is a TCP connection
//! to the broker, and every connection is a file descriptor; a process that runs out of them
//! can neither open upstream connections nor accept HTTP ones.
//!
//! [`prepare`] raises the soft limit to the hard limit at start and warns when the result is
//! below what the configuration needs ([`FdBudget`]); [`warn_exhausted`] reports a failure
//! for want of descriptors at most once a minute.

use std::time::Duration;

use crate::core::config::{GatewayConfig, UpstreamMode};
use crate::io::config::{IoConfig, Scheme};
use crate::io::http::MAX_CONNECTIONS;
use crate::io::throttle::Throttle;

/// Descriptors the gateway needs whatever the number of motes: UDP listeners, the gateway's
/// own broker link, the HTTP listener, the runtime's epoll and wake-up descriptors, standard
/// streams, the registry file while it is rewritten, and spare.
pub const FIXED_FDS: u64 = 32;

/// `EMFILE`: the process has reached its open-file limit (same number on Linux, the BSDs and
/// macOS).
const EMFILE: i32 = 24;

/// `ENFILE`: the system-wide file table is full.
const ENFILE: i32 = 23;

/// What a configuration needs from the open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// Upstream connections that scale with the motes: `max_clients` in transparent mode,
    /// none in aggregating mode (the one shared link is in [`FIXED_FDS`]).
    pub upstream: u64,
    /// Descriptors per upstream connection: 2 with the embedded broker (it holds the other
    /// end in this process), else 1.
    pub per_connection: u64,
    /// HTTP connections served at once (0: the endpoint is off).
    pub http: u64,
}

impl FdBudget {
    /// The budget of a configuration.
    pub fn of(core: &GatewayConfig, io: &IoConfig) -> Self {
        FdBudget {
            upstream: match core.upstream.mode {
                UpstreamMode::Transparent => core.max_clients as u64,
                UpstreamMode::Aggregating => 0,
            },
            per_connection: if io.upstream.scheme == Scheme::Embedded {
                2
            } else {
                1
            },
            http: if io.http.is_some() {
                MAX_CONNECTIONS as u64
            } else {
                0
            },
        }
    }

    /// Descriptors needed in all.
    pub fn needed(&self) -> u64 {
        self.upstream * self.per_connection + self.http + FIXED_FDS
    }

    /// The warning to log when the soft limit `soft` is below [`FdBudget::needed`]; `None`
    /// when it suffices.
    pub fn warning(&self, soft: u64) -> Option<String> {
        let needed = self.needed();
        if soft >= needed {
            return None;
        }
        let mut parts = Vec::new();
        if self.upstream > 0 {
            parts.push(if self.per_connection == 2 {
                format!(
                    "2 x {} upstream connections in transparent mode (the embedded broker holds \
                     the other end)",
                    self.upstream
                )
            } else {
                format!(
                    "{} upstream connections in transparent mode ([gateway] max_clients)",
                    self.upstream
                )
            });
        }
        if self.http > 0 {
            parts.push(format!("{} HTTP connections", self.http));
        }
        parts.push(format!(
            "{FIXED_FDS} for listeners, the broker link and spare"
        ));
        Some(format!(
            "the open-file limit of this process is {soft}, below the {needed} this configuration \
             needs ({}): motes beyond it cannot connect upstream and the HTTP endpoint stops \
             accepting. Raise it to at least {needed}: LimitNOFILE={needed} (or more) in the \
             systemd unit (`systemctl edit mqtt-sn-gateway`), or `ulimit -n {needed}` before \
             starting the gateway; or lower [gateway] max_clients, or use aggregating mode",
            parts.join(" + ")
        ))
    }
}

/// Raises the soft open-file limit to the hard limit, logs what it did (INFO), and logs a
/// warning when the limit is below what `core` and `io` need. Call it once at start, before
/// the gateway opens its sockets.
pub fn prepare(core: &GatewayConfig, io: &IoConfig) {
    let soft = match raise() {
        Ok(Raised { from, to, hard }) if to > from => {
            tracing::info!(
                from,
                to,
                hard = %show(hard),
                "open-file limit: raised the soft limit to the hard limit"
            );
            to
        }
        Ok(Raised { to, hard, .. }) => {
            tracing::info!(soft = to, hard = %show(hard), "open-file limit: unchanged");
            to
        }
        Err(RaiseError { soft, error }) => {
            tracing::warn!(
                soft = %show(soft),
                %error,
                "open-file limit: cannot raise the soft limit to the hard limit"
            );
            soft
        }
    };
    let budget = FdBudget::of(core, io);
    match budget.warning(soft) {
        Some(w) => tracing::warn!("{w}"),
        None => tracing::debug!(
            soft = %show(soft),
            needed = budget.needed(),
            "open-file limit suffices"
        ),
    }
}

/// A limit for the log: `unlimited` for infinity.
fn show(limit: u64) -> String {
    if limit == u64::MAX {
        "unlimited".into()
    } else {
        limit.to_string()
    }
}

/// What [`raise`] did.
struct Raised {
    from: u64,
    to: u64,
    hard: u64,
}

/// Why [`raise`] failed, with the soft limit in force (`u64::MAX` when unknown).
struct RaiseError {
    soft: u64,
    error: std::io::Error,
}

#[cfg(unix)]
fn raise() -> Result<Raised, RaiseError> {
    use rlimit::Resource;
    let (from, hard) = rlimit::getrlimit(Resource::NOFILE).map_err(|error| RaiseError {
        soft: u64::MAX,
        error,
    })?;
    // An unlimited hard limit cannot be the soft limit of open files: the kernel caps it.
    let ceiling = if hard == rlimit::INFINITY {
        kernel_max()
    } else {
        hard
    };
    if from >= ceiling {
        return Ok(Raised {
            from,
            to: from,
            hard,
        });
    }
    let to =
        rlimit::increase_nofile_limit(ceiling).map_err(|error| RaiseError { soft: from, error })?;
    Ok(Raised { from, to, hard })
}

#[cfg(not(unix))]
fn raise() -> Result<Raised, RaiseError> {
    Err(RaiseError {
        soft: u64::MAX,
        error: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "no open-file limit on this platform",
        ),
    })
}

/// The kernel's ceiling for a process's open-file limit (Linux: `fs.nr_open`).
#[cfg(unix)]
fn kernel_max() -> u64 {
    if cfg!(target_os = "linux") {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            // The kernel's default.
            .unwrap_or(1 << 20)
    } else {
        u64::MAX
    }
}

/// Whether `error` (or an error it wraps) says the process or system is out of file
/// descriptors (`EMFILE`, `ENFILE`: "Too many open files").
pub(crate) fn is_exhausted(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(EMFILE | ENFILE))
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Warnings about exhausted file descriptors: at most one a minute, process-wide.
static EXHAUSTED_WARNING: Throttle = Throttle::new(Duration::from_secs(60));

/// Logs, at most once a minute, a warning that `what` failed because the process is out of
/// file descriptors, with the limit in force and how to raise it.
pub(crate) fn warn_exhausted(what: &str, error: &dyn std::fmt::Display) {
    let Some(held_back) = EXHAUSTED_WARNING.ready() else {
        return;
    };
    let limit = current_soft().map_or_else(|| "unknown".into(), show);
    tracing::warn!(
        %error,
        open_file_limit = %limit,
        similar_failures_since_last_warning = held_back,
        "{what} failed: out of file descriptors. Raise the open-file limit (LimitNOFILE= in the \
         systemd unit, or `ulimit -n`), lower [gateway] max_clients, or use aggregating mode"
    );
}

/// The soft open-file limit in force.
fn current_soft() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn budget(mode: UpstreamMode, scheme: Scheme, http: bool, max_clients: usize) -> FdBudget {
        let mut core = GatewayConfig::default();
        core.upstream.mode = mode;
        core.max_clients = max_clients;
        let mut io = IoConfig::default();
        io.upstream.scheme = scheme;
        if !http {
            io.http = None;
        }
        FdBudget::of(&core, &io)
    }

    #[test]
    fn transparent_mode_needs_one_descriptor_per_mote_plus_http_and_the_fixed_part() {
        let b = budget(UpstreamMode::Transparent, Scheme::Mqtt, true, 1000);
        assert_eq!(b.needed(), 1000 + 64 + 32);
        assert_eq!(b.warning(1096), None);
        assert_eq!(b.warning(65536), None);
        let w = b.warning(1024).unwrap();
        for want in [
            "1024",
            "1096",
            "1000 upstream connections",
            "64 HTTP connections",
            "LimitNOFILE=1096",
            "ulimit -n 1096",
        ] {
            assert!(w.contains(want), "{want:?} missing in {w}");
        }
    }

    #[test]
    fn the_embedded_broker_counts_twice_and_aggregating_mode_only_the_fixed_part() {
        let b = budget(UpstreamMode::Transparent, Scheme::Embedded, true, 1000);
        assert_eq!(b.needed(), 2000 + 64 + 32);
        assert!(b.warning(1100).unwrap().contains("2 x 1000"));
        let b = budget(UpstreamMode::Aggregating, Scheme::Mqtts, true, 10_000);
        assert_eq!(b.needed(), 64 + 32);
        assert_eq!(b.warning(1024), None);
        assert!(b.warning(64).unwrap().contains("below the 96"));
        let b = budget(UpstreamMode::Aggregating, Scheme::Mqtt, false, 10_000);
        assert_eq!(b.needed(), 32);
    }

    #[test]
    fn exhaustion_is_found_in_wrapped_errors() {
        #[derive(Debug, thiserror::Error)]
        #[error("connect: {0}")]
        struct Wrapper(#[source] std::io::Error);
        let emfile = std::io::Error::from_raw_os_error(EMFILE);
        assert!(is_exhausted(&emfile));
        assert!(is_exhausted(&Wrapper(std::io::Error::from_raw_os_error(
            ENFILE
        ))));
        assert!(!is_exhausted(&Wrapper(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
    }
}
