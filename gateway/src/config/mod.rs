//! Configuration: TOML file → validated [`GatewayConfig`] + [`IoConfig`] ([`Settings`]).
//!
//! Pipeline: the text is deserialized into the `File*` shapes of `file.rs` (unknown keys, wrong
//! types and bad duration strings fail here, with their position), then `validate.rs` fills
//! defaults, checks ranges and cross-field rules and checks that TLS files are readable. Only
//! the first problem is reported; every [`ConfigError`] names the file and, when the value is
//! in the file, its line and column.
//!
//! Durations are strings with a unit: `"250ms"`, `"10s"`, `"15m"`, `"2h"`. Relative TLS file
//! paths are taken from the configuration file's directory.
//!
//! ```
//! use std::path::Path;
//! let s = gateway::config::parse("[gateway]\nid = 7\n", Path::new("inline.toml")).unwrap();
//! assert_eq!(s.core.gateway_id, 7);
//! assert_eq!(s.core.upstream.gateway_client_id, "mqtt-sn-gateway-7");
//! let e = gateway::config::parse("[gateway]\nid = 300\n", Path::new("inline.toml")).unwrap_err();
//! assert!(e.to_string().starts_with("inline.toml:2:6: invalid value for gateway.id"));
//! ```

mod file;
pub mod registry;
mod summary;
mod validate;
mod values;

use std::path::Path;

pub(crate) use sn_config::duration::parse as parse_duration;
pub use sn_config::{ConfigError, Position};
pub(crate) use validate::{MulticastInterface, Overrides};
pub(crate) use values::{http_listen, predefined_flag, socket_addr, upstream_url};

use crate::core::config::GatewayConfig;
use crate::io::config::IoConfig;

/// The shipped example configuration (`config/gateway.toml`), compiled in. The binary falls
/// back to it when the default config path does not exist.
pub const SHIPPED: &str = include_str!("../../../config/gateway.toml");

/// A validated configuration: the core's settings and the shell's.
///
/// `Display` prints a human-readable summary of the effective settings (passwords redacted),
/// as shown by `mqtt-sn-gateway check-config`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Settings of the sans-IO core.
    pub core: GatewayConfig,
    /// Settings of the tokio shell (sockets, broker endpoint, TLS).
    pub io: IoConfig,
    /// The client registry file as read (whether it exists, its clients, `allow_empty`), for
    /// the checks of a reload.
    pub registry: registry::RegistryStatus,
}

/// Reads and validates the file at `path`.
///
/// # Errors
///
/// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Parse`] for TOML syntax,
/// unknown keys and wrong types, [`ConfigError::Invalid`] for values out of range or
/// contradicting each other.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    load_with(path, &Overrides::default())
}

/// Validates `text` as if read from `path` (used in messages and to resolve relative TLS
/// paths).
///
/// # Errors
///
/// As [`load`], without [`ConfigError::Read`].
pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
    parse_with(text, path, &Overrides::default())
}

/// [`load`] with command-line overrides applied.
pub(crate) fn load_with(path: &Path, ov: &Overrides) -> Result<Settings, ConfigError> {
    parse_with(&sn_config::read(path)?, path, ov)
}

/// [`parse`] with command-line overrides applied.
pub(crate) fn parse_with(text: &str, path: &Path, ov: &Overrides) -> Result<Settings, ConfigError> {
    let file: file::FileConfig = sn_config::from_toml(text, path)?;
    validate::validate(file, text, path, ov)
}

#[cfg(test)]
mod tests;
