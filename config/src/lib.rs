//! Plumbing shared by the `mqtt-sn-gateway` and `mqtt-sn-forwarder` binaries, kept once so the
//! two cannot drift apart:
//!
//! - [`ConfigError`] and [`Position`]: configuration errors that name the file with
//!   `line:column`, or the flag; [`read`] and [`from_toml`] produce them;
//! - [`duration`]: durations in the TOML files and flags (`"250ms"`, `"10s"`, `"15m"`, `"2h"`);
//! - [`logging`]: the `tracing` subscriber on stderr (`--log`, `--log-format`);
//! - [`shutdown`]: SIGINT / SIGTERM → cancellation;
//! - [`output`]: subcommand output (`check-config`) that survives a closed pipe.
//!
//! The directory of this crate also holds the shipped configuration files and the valid and
//! invalid fixtures the binaries' tests read; they are not part of the library.
#![forbid(unsafe_code)]

pub mod duration;
mod error;
pub mod logging;
pub mod output;
pub mod shutdown;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, Position, from_toml, read};

/// The configuration file a binary reads: `explicit` (`--config` or its environment variable)
/// when given, else `default` unless it does not exist; `None` means "use the compiled-in copy
/// of the shipped file". A `default` whose existence cannot be checked is still returned, so
/// that reading it reports why.
pub fn config_file(explicit: Option<&Path>, default: &Path) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None if default.try_exists().unwrap_or(true) => Some(default.to_path_buf()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_file_wins_and_a_missing_default_means_built_in() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml");
        let missing = Path::new("/nonexistent/sn-config/x.toml");
        assert_eq!(
            config_file(Some(missing), &here),
            Some(missing.to_path_buf())
        );
        assert_eq!(config_file(None, &here), Some(here.clone()));
        assert_eq!(config_file(None, missing), None);
    }
}
