//! `[limits]`: how many new sessions strangers may open, and how long a silent one stays.

use std::time::Duration;

use super::Ctx;
use crate::config::ConfigError;
use crate::config::file::{FileLimits, FileRateLimit};
use crate::core::config::{AdmissionLimits, RateLimit};

/// Validates `[limits]`, filling defaults.
pub(super) fn validate(cx: &Ctx<'_>, file: &FileLimits) -> Result<AdmissionLimits, ConfigError> {
    let d = AdmissionLimits::default();
    Ok(AdmissionLimits {
        new_sessions_per_address: rate(
            cx,
            &file.new_sessions_per_address,
            "limits.new_sessions_per_address",
            d.new_sessions_per_address,
        )?,
        new_sessions_per_forwarder: rate(
            cx,
            &file.new_sessions_per_forwarder,
            "limits.new_sessions_per_forwarder",
            d.new_sessions_per_forwarder,
        )?,
        unregistered_idle_timeout: match &file.unregistered_idle_timeout {
            None => d.unregistered_idle_timeout,
            v @ Some(_) => Some(cx.dur(
                v,
                "limits.unregistered_idle_timeout",
                Duration::ZERO,
                |_| Ok(()),
            )?)
            .filter(|t| !t.is_zero()),
        },
    })
}

/// `{ burst = N, per_second = M }`, both 1..=1 000 000.
fn rate(
    cx: &Ctx<'_>,
    v: &Option<FileRateLimit>,
    key: &str,
    default: RateLimit,
) -> Result<RateLimit, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    Ok(RateLimit {
        burst: cx.int(
            &Some(v.burst.clone()),
            &format!("{key}.burst"),
            1..=1_000_000,
            default.burst,
        )?,
        per_second: cx.int(
            &Some(v.per_second.clone()),
            &format!("{key}.per_second"),
            1..=1_000_000,
            default.per_second,
        )?,
    })
}
