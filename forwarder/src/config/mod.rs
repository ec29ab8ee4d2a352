//! Configuration: TOML file → validated [`Settings`] (the core's `ForwarderConfig` + the shell's
//! `IoConfig`).
//!
//! Pipeline: the text is deserialized into the `File*` shapes of `file.rs` (unknown keys, wrong
//! types and bad duration strings fail here, with their position), then `validate.rs` fills
//! defaults, checks ranges and cross-field rules and applies command-line [`Overrides`]. Only
//! the first problem is reported; every [`ConfigError`] names the file and, when the value is
//! in the file, its line and column. Durations are strings with a unit: `"250ms"`, `"10s"`,
//! `"15m"`, `"2h"`. Serial device paths are not checked: a radio may be plugged in after
//! start.
//!
//! ```
//! use std::path::Path;
//! let text = "[[ports]]\npath = \"/dev/ttyUSB0\"\nframing = \"slip\"\nwnid = \"01\"\n";
//! let s = forwarder::config::parse(text, Path::new("inline.toml")).unwrap();
//! assert_eq!(s.io.ports.len(), 1);
//! let e = forwarder::config::parse("[[ports]]\npath = \"/dev/x\"\nbaud = 0\n", Path::new("inline.toml"))
//!     .unwrap_err();
//! assert!(e.to_string().starts_with("inline.toml:3:8: invalid value for ports[0].baud"), "{e}");
//! ```

mod file;
mod summary;
pub mod uri;
mod validate;

use std::path::Path;

pub use sn_config::{ConfigError, Position};
pub use validate::Overrides;

pub use crate::io::config::Settings;

/// The shipped example configuration (`config/forwarder.toml`), compiled in. The binary falls
/// back to it when the default config path does not exist.
pub const SHIPPED: &str = include_str!("../../../config/forwarder.toml");

/// Reads and validates the file at `path`.
///
/// # Errors
/// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Parse`] for TOML syntax,
/// unknown keys and wrong types, [`ConfigError::Invalid`] for values out of range or
/// contradicting each other.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    load_with(path, &Overrides::default())
}

/// Validates `text` as if read from `path` (used in messages).
///
/// # Errors
/// As [`load`], without [`ConfigError::Read`].
pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
    parse_with(text, path, &Overrides::default())
}

/// [`load`] with command-line overrides applied.
///
/// # Errors
/// As [`load`]; [`ConfigError::Flag`] for overrides that clash.
pub fn load_with(path: &Path, ov: &Overrides) -> Result<Settings, ConfigError> {
    parse_with(&sn_config::read(path)?, path, ov)
}

/// [`parse`] with command-line overrides applied.
///
/// # Errors
/// As [`load_with`], without [`ConfigError::Read`].
pub fn parse_with(text: &str, path: &Path, ov: &Overrides) -> Result<Settings, ConfigError> {
    let file: file::FileConfig = sn_config::from_toml(text, path)?;
    validate::validate(file, text, path, ov)
}
