//! The command line of `mqtt-sn-forwarder` ([`Cli`]): which configuration file to read, the
//! radio ports and gateway as overrides, logging, and the subcommand.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
pub use sn_config::logging::LogFormat;

use crate::config::{self, ConfigError, Overrides, SHIPPED, Settings};

/// Configuration file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/forwarder.toml";

/// Name shown in messages when the compiled-in configuration is used.
const BUILT_IN: &str = "<built-in config/forwarder.toml>";

/// MQTT-SN v1.2 forwarder: relays a radio network (XBee API, SLIP, raw serial, UDP) to an
/// MQTT-SN gateway in Encapsulated messages.
///
/// Reads its settings from a TOML file (see config/forwarder.toml for every key); --radio and
/// --gateway override the file.
#[derive(Debug, Clone, Parser)]
#[command(name = "mqtt-sn-forwarder", version)]
pub struct Cli {
    /// Configuration file [default: config/forwarder.toml; when that file does not exist, the
    /// compiled-in copy of the shipped config/forwarder.toml is used].
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "MQTT_SN_FORWARDER_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Radio port URI, repeatable; replaces every [[ports]] of the file. Examples:
    /// serial:///dev/ttyUSB0?baud=115200&framing=xbee&api=2&flow=hardware,
    /// serial:///dev/ttyACM0?framing=slip&wnid=01, serial:///dev/ttyACM1?framing=slip&addressed=true,
    /// serial:///dev/ttyS0?framing=raw&wnid=0a, udp://0.0.0.0:10000.
    #[arg(long, global = true, value_name = "URI")]
    pub radio: Vec<String>,

    /// Gateway ADDR:PORT; replaces forwarder.gateway (without either, the gateway is
    /// discovered on the multicast group).
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    pub gateway: Option<String>,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives such as
    /// "info,forwarder=debug".
    #[arg(
        long,
        global = true,
        env = "MQTT_SN_FORWARDER_LOG",
        default_value = "info",
        value_name = "LEVEL"
    )]
    pub log: String,

    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the forwarder (the default when no subcommand is given).
    Run,
    /// Validate the configuration (file plus overrides), print the effective settings and exit
    /// 0; on error print the message and exit 2.
    CheckConfig,
}

impl Cli {
    /// The subcommand, [`Command::Run`] when none was given.
    pub fn action(&self) -> Command {
        self.command.unwrap_or(Command::Run)
    }

    /// The file [`Cli::settings`] reads; `None` when it falls back to the compiled-in copy.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.config_file_with_default(Path::new(DEFAULT_CONFIG))
    }

    /// Loads the configuration (see [`Cli::config_file`]) and applies the overrides.
    ///
    /// # Errors
    /// [`ConfigError::Flag`] for a bad `--radio` or `--gateway`; otherwise as
    /// [`config::load`].
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        self.settings_with_default(Path::new(DEFAULT_CONFIG))
    }

    fn config_file_with_default(&self, default: &Path) -> Option<PathBuf> {
        sn_config::config_file(self.config.as_deref(), default)
    }

    fn settings_with_default(&self, default: &Path) -> Result<Settings, ConfigError> {
        let ov = self.overrides()?;
        match self.config_file_with_default(default) {
            Some(path) => config::load_with(&path, &ov),
            None => config::parse_with(SHIPPED, Path::new(BUILT_IN), &ov),
        }
    }

    fn overrides(&self) -> Result<Overrides, ConfigError> {
        let radios = self
            .radio
            .iter()
            .map(|u| config::uri::parse_radio_uri(u).map_err(|r| ConfigError::flag("--radio", r)))
            .collect::<Result<Vec<_>, _>>()?;
        let gateway = self
            .gateway
            .as_deref()
            .map(|g| {
                g.parse::<SocketAddr>().map_err(|_| {
                    ConfigError::flag("--gateway", format!("{g:?} is not an ADDR:PORT"))
                })
            })
            .transpose()?;
        Ok(Overrides { radios, gateway })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::io::config::PortKind;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("mqtt-sn-forwarder").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn without_a_file_the_shipped_config_is_used_and_flags_override_it() {
        let c = cli(&[
            "--radio",
            "udp://127.0.0.1:0",
            "--gateway",
            "127.0.0.1:10000",
            "check-config",
        ]);
        assert_eq!(c.action(), Command::CheckConfig);
        let missing = Path::new("/nonexistent/forwarder.toml");
        assert_eq!(c.config_file_with_default(missing), None);
        let s = c.settings_with_default(missing).unwrap();
        assert_eq!(s.core.gateway, Some("127.0.0.1:10000".parse().unwrap()));
        assert_eq!(s.io.ports.len(), 1);
        assert!(matches!(s.io.ports[0].kind, PortKind::Udp(_)));
        assert_eq!(s.core.ports.len(), 1);
        let shipped = cli(&[]).settings_with_default(missing).unwrap();
        assert_eq!(shipped.io.ports.len(), 1);
        assert_eq!(shipped.core.gateway, None);
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let missing = Path::new("/nonexistent/forwarder.toml");
        let e = cli(&["--radio", "serial:///dev/x?framing=raw"])
            .settings_with_default(missing)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("invalid value for --radio:"),
            "{e}"
        );
        let e = cli(&["--gateway", "localhost"])
            .settings_with_default(missing)
            .unwrap_err();
        assert!(e.to_string().contains("--gateway"), "{e}");
        let e = cli(&[
            "--radio",
            "udp://127.0.0.1:5000",
            "--radio",
            "udp://127.0.0.1:5000",
        ])
        .settings_with_default(missing)
        .unwrap_err();
        assert!(e.to_string().contains("same device"), "{e}");
    }
}
