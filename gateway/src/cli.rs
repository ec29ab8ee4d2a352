//! The command line of `mqtt-sn-gateway` ([`Cli`]): which configuration file to read, a few
//! overrides of its values, logging, and the subcommand.
//!
//! Override values are kept as given and checked by [`Cli::settings`], so a bad value is a
//! [`ConfigError::Flag`] naming the flag, checked with the same rules as the file's keys.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
pub use sn_config::logging::LogFormat;

use crate::config::{self, ConfigError, MulticastInterface, Overrides, SHIPPED, Settings};

/// Configuration file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/gateway.toml";

/// `--version`: the version and the build's features.
#[cfg(feature = "embedded-broker")]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (features: tls-rustls-ring, embedded-broker)"
);
/// `--version`: the version and the build's features.
#[cfg(not(feature = "embedded-broker"))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (features: tls-rustls-ring)");

/// Where the packaged service reads its configuration (`packaging/systemd/mqtt-sn-gateway.service`):
/// `pair`, `clients` and `unpair` look there when the working directory has no
/// `config/gateway.toml`.
pub const SERVICE_CONFIG: &str = "/etc/mqtt-sn-gateway/gateway.toml";

/// The registry file the packaged service is given with `--registry`.
pub const SERVICE_REGISTRY: &str = "/var/lib/mqtt-sn-gateway/clients.toml";

/// Name shown in messages when the compiled-in configuration is used.
const BUILT_IN: &str = "<built-in config/gateway.toml>";

/// MQTT-SN v1.2 gateway: turns every sensor mote into an MQTT session at an upstream broker.
///
/// Reads its settings from a TOML file (see config/gateway.toml for every key); the flags below
/// override a few of them.
#[derive(Debug, Clone, Parser)]
#[command(name = "mqtt-sn-gateway", version = VERSION)]
pub struct Cli {
    /// Configuration file [default: config/gateway.toml; when that file does not exist, the
    /// compiled-in copy of the shipped config/gateway.toml is used]. A file given here (or in
    /// the environment variable) must exist.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "MQTT_SN_GATEWAY_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Client registry file (paired motes), instead of `clients.registry` of the
    /// configuration; pairing rewrites it, so its directory must be writable.
    #[arg(
        long,
        global = true,
        env = "MQTT_SN_GATEWAY_REGISTRY",
        value_name = "FILE"
    )]
    pub registry: Option<PathBuf>,

    /// UDP address to listen on, e.g. `0.0.0.0:1883` or `[::1]:10000`. Repeatable; replaces every
    /// `[[listeners.udp]]` of the file (their multicast settings included).
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    pub listen: Vec<String>,

    /// Upstream broker, `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` (default ports 1883 /
    /// 8883); replaces upstream.url. mqtts:// needs upstream.tls.ca_file in the file.
    #[arg(long, global = true, value_name = "URL")]
    pub upstream: Option<String>,

    /// `transparent` (one MQTT connection per mote, the default) or `aggregating` (one shared
    /// connection for every mote); replaces upstream.mode.
    #[arg(long, global = true, value_name = "MODE")]
    pub upstream_mode: Option<String>,

    /// GwId announced in ADVERTISE and GWINFO (0..=255); replaces gateway.id.
    #[arg(long, global = true, value_name = "N")]
    pub gateway_id: Option<String>,

    /// Global predefined topic id, e.g. 1=site/status (id 1..=65534, decimal or 0x hex; the
    /// topic must not contain + or #). Repeatable; replaces a file entry with the same id.
    #[arg(long, global = true, value_name = "ID=TOPIC")]
    pub predefined: Vec<String>,

    /// Discovery multicast group, e.g. `225.1.1.1:1884` or `[ff02::1:1]:1884`: set on every
    /// listener of that address family (its port must differ from theirs); turns discovery
    /// (ADVERTISE, multicast GWINFO) on.
    #[arg(long, global = true, value_name = "GROUP:PORT")]
    pub advertise: Option<String>,

    /// Interface for the discovery group: an IPv4 address (e.g. `192.168.4.1`, `127.0.0.1`) or,
    /// for an IPv6 group, an interface index.
    #[arg(long, global = true, value_name = "ADDR|INDEX")]
    pub advertise_interface: Option<String>,

    /// ADVERTISE period T_ADV, whole seconds with a unit (e.g. `900s`, `15m`); turns discovery
    /// on.
    #[arg(long, global = true, value_name = "DURATION")]
    pub advertise_interval: Option<String>,

    /// Local HTTP endpoint (Prometheus metrics, /healthz, status page, admin API for `pair` and
    /// `clients`), e.g. `127.0.0.1:8087`, or `off`; replaces http.listen. The subcommands `pair`
    /// and `clients` talk to this address.
    #[arg(long, global = true, value_name = "ADDR:PORT|off")]
    pub http: Option<String>,

    /// State database (sessions that survive a restart), or `off` to keep everything in
    /// memory; replaces storage.path [default: $STATE_DIRECTORY/state.db under systemd, else
    /// state.db beside the configuration file, else off].
    #[arg(
        long,
        global = true,
        env = "MQTT_SN_GATEWAY_STORAGE",
        value_name = "FILE|off"
    )]
    pub storage: Option<String>,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives such as
    /// "info,gateway=debug". The embedded broker's own lines are off unless the filter names
    /// it ("info,rumqttd=warn").
    #[arg(
        long,
        global = true,
        env = "MQTT_SN_GATEWAY_LOG",
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
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the gateway (the default when no subcommand is given).
    Run,
    /// Validate the configuration (file plus overrides), print a summary of the effective
    /// settings and exit 0; on error print the message and exit 2.
    CheckConfig,
    /// Open the pairing window of the running gateway: unknown motes that CONNECT within it are
    /// let in and appended to the registry file. Talks to the gateway's HTTP endpoint (the
    /// `[http] listen` address of the same configuration, or `--http`), on the same host.
    Pair {
        /// How long the window stays open, e.g. `90s`, `2m` (at most 24h).
        #[arg(long = "for", value_name = "DURATION", default_value = "2m")]
        duration: String,
    },
    /// List the motes the running gateway knows: state (active, asleep, lost, …), address,
    /// last seen, message counts. Talks to the gateway's HTTP endpoint like `pair`.
    Clients,
    /// Remove a paired mote from the registry file (`--registry`, or `[clients] registry` of
    /// the configuration, as the daemon finds it), keeping the file's comments; then reload
    /// the running gateway (`systemctl reload mqtt-sn-gateway`, or SIGHUP) so that it refuses
    /// the mote's next CONNECT. Removing the last mote writes `allow_empty = true` into the
    /// file, which lets that reload empty the registry. Exit 1 when the mote is not in the file.
    Unpair {
        /// The mote's MQTT-SN ClientId, as in its `client_id` entry.
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
    },
}

impl Cli {
    /// The subcommand, [`Command::Run`] when none was given.
    pub fn action(&self) -> Command {
        self.command.clone().unwrap_or(Command::Run)
    }

    /// The file [`Cli::settings`] reads; `None` when it falls back to the compiled-in
    /// configuration (no `--config` and no `config/gateway.toml` in the working directory).
    pub fn config_file(&self) -> Option<PathBuf> {
        self.config_file_with_default(Path::new(DEFAULT_CONFIG))
    }

    /// Loads the configuration file (see [`Cli::config_file`]) and applies the overrides.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Flag`] for a bad override value; otherwise as [`config::load`].
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        self.settings_with_default(Path::new(DEFAULT_CONFIG))
    }

    /// Where `pair` and `clients` reach the running gateway: its `[http] listen` address from
    /// the configuration of [`Cli::admin_settings`] and the flags (an unspecified address
    /// becomes loopback); `None` when the endpoint is off.
    ///
    /// # Errors
    ///
    /// The configuration errors of [`Cli::settings`].
    pub fn admin_addr(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        Ok(self
            .admin_settings()?
            .io
            .http
            .map(crate::admin_client::connect_addr))
    }

    /// The settings `pair`, `clients` and `unpair` use, those of the gateway they talk to:
    /// `--config`, else `config/gateway.toml` in the working directory, else the packaged
    /// service's [`SERVICE_CONFIG`] (with its [`SERVICE_REGISTRY`] unless `--registry` names
    /// another), else the built-in configuration.
    ///
    /// # Errors
    ///
    /// As [`Cli::settings`].
    pub fn admin_settings(&self) -> Result<Settings, ConfigError> {
        let service = ServicePaths {
            config: Path::new(SERVICE_CONFIG),
            registry: Path::new(SERVICE_REGISTRY),
        };
        self.admin_settings_from(Path::new(DEFAULT_CONFIG), &service)
    }

    /// The configuration file [`Cli::admin_settings`] reads, for messages.
    pub fn admin_config_name(&self) -> String {
        self.admin_config_from(Path::new(DEFAULT_CONFIG), Path::new(SERVICE_CONFIG))
            .map_or_else(|| BUILT_IN.to_owned(), |p| p.display().to_string())
    }

    /// The file of [`Cli::admin_settings`], with `local` and the service's `service` file.
    fn admin_config_from(&self, local: &Path, service: &Path) -> Option<PathBuf> {
        if self.config.is_some() || local.exists() {
            return self.config_file_with_default(local);
        }
        service.exists().then(|| service.to_owned())
    }

    /// [`Cli::admin_settings`] with these places.
    fn admin_settings_from(
        &self,
        local: &Path,
        service: &ServicePaths<'_>,
    ) -> Result<Settings, ConfigError> {
        let mut ov = self.overrides()?;
        let file = self.admin_config_from(local, service.config);
        if file.as_deref() == Some(service.config) && ov.registry.is_none() {
            ov.registry = Some(service.registry.to_owned());
        }
        match file {
            Some(path) => config::load_with(&path, &ov),
            None => config::parse_with(SHIPPED, Path::new(BUILT_IN), &ov),
        }
    }

    /// The name of the configuration in messages: the file, or the built-in copy.
    pub fn config_name(&self) -> String {
        self.config_file()
            .map_or_else(|| BUILT_IN.to_owned(), |p| p.display().to_string())
    }

    /// [`Cli::config_file`] with `default` as the default path.
    fn config_file_with_default(&self, default: &Path) -> Option<PathBuf> {
        sn_config::config_file(self.config.as_deref(), default)
    }

    /// [`Cli::settings`] with `default` as the default path.
    fn settings_with_default(&self, default: &Path) -> Result<Settings, ConfigError> {
        let ov = self.overrides()?;
        match self.config_file_with_default(default) {
            Some(path) => config::load_with(&path, &ov),
            None => config::parse_with(SHIPPED, Path::new(BUILT_IN), &ov),
        }
    }

    /// Parses the override flags.
    fn overrides(&self) -> Result<Overrides, ConfigError> {
        let listen = if self.listen.is_empty() {
            None
        } else {
            let addrs = self.listen.iter().map(|s| config::socket_addr(s));
            Some(
                addrs
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(flag("--listen"))?,
            )
        };
        let upstream = self
            .upstream
            .as_deref()
            .map(config::upstream_url)
            .transpose()
            .map_err(flag("--upstream"))?;
        let upstream_mode = self
            .upstream_mode
            .as_deref()
            .map(|m| {
                crate::core::config::UpstreamMode::from_name(m).ok_or_else(|| {
                    format!("{m:?} is not a mode: expected transparent or aggregating")
                })
            })
            .transpose()
            .map_err(flag("--upstream-mode"))?;
        let gateway_id = self
            .gateway_id
            .as_deref()
            .map(|s| {
                s.parse::<u8>()
                    .map_err(|_| format!("{s:?} is not a gateway id (0..=255)"))
            })
            .transpose()
            .map_err(flag("--gateway-id"))?;
        let predefined = self
            .predefined
            .iter()
            .map(|s| config::predefined_flag(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(flag("--predefined"))?;
        let advertise = self
            .advertise
            .as_deref()
            .map(config::socket_addr)
            .transpose()
            .map_err(flag("--advertise"))?;
        let advertise_interface = self
            .advertise_interface
            .as_deref()
            .map(
                |s| match (s.parse::<std::net::Ipv4Addr>(), s.parse::<u32>()) {
                    (Ok(a), _) => Ok(MulticastInterface::V4(a)),
                    (_, Ok(i)) => Ok(MulticastInterface::Index(i)),
                    _ => Err(format!(
                        "{s:?} is neither an IPv4 address nor an interface index"
                    )),
                },
            )
            .transpose()
            .map_err(flag("--advertise-interface"))?;
        let advertise_interval = self
            .advertise_interval
            .as_deref()
            .map(config::parse_duration)
            .transpose()
            .map_err(flag("--advertise-interval"))?;
        let http = self
            .http
            .as_deref()
            .map(config::http_listen)
            .transpose()
            .map_err(flag("--http"))?;
        let storage = self.storage.as_deref().map(|s| match s {
            "off" => crate::io::store::StorageLocation::Off,
            path => crate::io::store::StorageLocation::Path(PathBuf::from(path)),
        });
        Ok(Overrides {
            storage,
            http,
            listen,
            upstream,
            upstream_mode,
            gateway_id,
            predefined,
            advertise,
            advertise_interface,
            advertise_interval,
            registry: self.registry.clone(),
        })
    }
}

/// The packaged service's files.
#[derive(Debug)]
struct ServicePaths<'a> {
    config: &'a Path,
    registry: &'a Path,
}

/// The `--for` of `pair`: a duration with a unit, 1 s..=24 h, whole seconds.
///
/// # Errors
///
/// [`ConfigError::Flag`] naming `--for`.
pub fn pairing_duration(s: &str) -> Result<std::time::Duration, ConfigError> {
    let d = config::parse_duration(s).map_err(flag("--for"))?;
    if d.subsec_nanos() != 0 || d.as_secs() == 0 || d.as_secs() > 24 * 3600 {
        return Err(flag("--for")(format!(
            "{s:?}: expected whole seconds from 1s to 24h, e.g. 90s or 2m"
        )));
    }
    Ok(d)
}

/// Turns a reason into a [`ConfigError::Flag`] for `flag`.
fn flag(flag: &'static str) -> impl Fn(String) -> ConfigError {
    move |reason| ConfigError::flag(flag, reason)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use clap::CommandFactory;

    use super::*;
    use crate::io::config::Scheme;

    /// The shipped file, by absolute path (independent of the working directory).
    fn shipped() -> String {
        format!("{}/../config/gateway.toml", env!("CARGO_MANIFEST_DIR"))
    }

    /// Parses `args` after the program name and the shipped `--config`.
    fn cli(args: &[&str]) -> Cli {
        let config = shipped();
        let mut all = vec!["mqtt-sn-gateway", "--config", config.as_str()];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    /// The `ConfigError::Flag` that `args` produce.
    fn flag_error(args: &[&str]) -> (String, String) {
        match cli(args).settings() {
            Err(ConfigError::Flag { flag, reason }) => (flag, reason),
            other => panic!("{args:?}: expected a flag error, got {other:?}"),
        }
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_documents_every_flag_and_subcommand() {
        let help = Cli::command().render_long_help().to_string();
        for s in [
            "--config",
            "MQTT_SN_GATEWAY_CONFIG",
            "--listen",
            "--upstream",
            "--upstream-mode",
            "--gateway-id",
            "--predefined",
            "--log ",
            "MQTT_SN_GATEWAY_LOG",
            "--log-format",
            "check-config",
            "run",
            "pair",
            "clients",
            "unpair",
            "--http",
        ] {
            assert!(help.contains(s), "--help lacks {s}:\n{help}");
        }
    }

    #[test]
    fn no_subcommand_means_run_and_defaults_apply() {
        let c = Cli::try_parse_from(["mqtt-sn-gateway"]).unwrap();
        assert_eq!(c.action(), Command::Run);
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.listen.is_empty() && c.predefined.is_empty());
        let c = Cli::try_parse_from(["mqtt-sn-gateway", "check-config", "--log-format", "json"])
            .unwrap();
        assert_eq!(c.action(), Command::CheckConfig);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let c =
            Cli::try_parse_from(["mqtt-sn-gateway", "check-config", "--config", "x.toml"]).unwrap();
        assert_eq!(c.config, Some(PathBuf::from("x.toml")));
        assert_eq!(c.config_file(), Some(PathBuf::from("x.toml")));
    }

    #[test]
    fn unknown_log_formats_and_flags_are_rejected_by_the_parser() {
        assert!(Cli::try_parse_from(["mqtt-sn-gateway", "--log-format", "xml"]).is_err());
        assert!(Cli::try_parse_from(["mqtt-sn-gateway", "--udp-port", "1"]).is_err());
        assert!(Cli::try_parse_from(["mqtt-sn-gateway", "serve"]).is_err());
    }

    #[test]
    fn without_overrides_the_file_is_used_as_is() {
        let s = cli(&[]).settings().unwrap();
        assert_eq!(s, config::load(Path::new(&shipped())).unwrap());
    }

    #[test]
    fn listen_replaces_the_files_listeners_with_ipv4_and_ipv6() {
        let s = cli(&["--listen", "127.0.0.1:10000", "--listen", "[::1]:10000"])
            .settings()
            .unwrap();
        let binds: Vec<SocketAddr> = s.io.listeners.iter().map(|l| l.bind).collect();
        assert_eq!(
            binds,
            [
                "127.0.0.1:10000".parse().unwrap(),
                "[::1]:10000".parse().unwrap()
            ]
        );
        assert!(s.io.listeners.iter().all(|l| l.multicast.is_none()));
    }

    #[test]
    fn bad_listen_values_name_the_flag() {
        for bad in [
            "1883",
            "localhost:1883",
            "0.0.0.0",
            "::1:1883",
            "0.0.0.0:99999",
        ] {
            let (flag, reason) = flag_error(&["--listen", bad]);
            assert_eq!(flag, "--listen");
            assert!(reason.contains(bad), "{reason}");
        }
        let (_, reason) = flag_error(&["--listen", "[::1]:1", "--listen", "[::1]:1"]);
        assert!(reason.contains("twice"), "{reason}");
    }

    #[test]
    fn upstream_replaces_the_url() {
        let s = cli(&["--upstream", "mqtt://broker.local"])
            .settings()
            .unwrap();
        assert_eq!(s.io.upstream.scheme, Scheme::Mqtt);
        assert_eq!(
            (s.io.upstream.host.as_str(), s.io.upstream.port),
            ("broker.local", 1883)
        );
        let s = cli(&["--upstream", "mqtt://[::1]:11883"])
            .settings()
            .unwrap();
        assert_eq!(
            (s.io.upstream.host.as_str(), s.io.upstream.port),
            ("::1", 11883)
        );
    }

    #[test]
    fn bad_upstream_values_name_the_flag() {
        let (flag, reason) = flag_error(&["--upstream", "http://broker"]);
        assert_eq!(flag, "--upstream");
        assert!(reason.contains("unsupported scheme"), "{reason}");
        let (_, reason) = flag_error(&["--upstream", "broker:1883"]);
        assert!(reason.contains("mqtt://"), "{reason}");
        // The shipped file has no CA file, and no system trust store is used.
        let (flag, reason) = flag_error(&["--upstream", "mqtts://broker"]);
        assert_eq!(flag, "--upstream");
        assert!(reason.contains("ca_file"), "{reason}");
    }

    #[test]
    fn upstream_mode_flag_replaces_the_mode() {
        use crate::core::config::UpstreamMode;
        let s = cli(&["--upstream-mode", "aggregating"]).settings().unwrap();
        assert_eq!(s.core.upstream.mode, UpstreamMode::Aggregating);
        let (flag, reason) = flag_error(&["--upstream-mode", "shared"]);
        assert_eq!(flag, "--upstream-mode");
        assert!(reason.contains("transparent or aggregating"), "{reason}");
    }

    #[test]
    fn gateway_id_replaces_the_id_and_the_default_gateway_client_id() {
        let s = cli(&["--gateway-id", "42"]).settings().unwrap();
        assert_eq!(s.core.gateway_id, 42);
        assert_eq!(s.core.upstream.gateway_client_id, "mqtt-sn-gateway-42");
        for bad in ["256", "-1", "x", ""] {
            let (flag, _) = flag_error(&[&format!("--gateway-id={bad}")]);
            assert_eq!(flag, "--gateway-id");
        }
    }

    #[test]
    fn predefined_adds_global_ids() {
        let s = cli(&[
            "--predefined",
            "1=site/status",
            "--predefined",
            "0x20=site/cmd",
        ])
        .settings()
        .unwrap();
        assert_eq!(s.core.predefined.topic(None, 1), Some("site/status"));
        assert_eq!(s.core.predefined.topic(Some("any"), 32), Some("site/cmd"));
    }

    #[test]
    fn bad_predefined_values_name_the_flag() {
        for bad in ["0=a", "65535=a", "1=a/+/b", "1=a/#", "1=", "1", "one=a"] {
            let (flag, _) = flag_error(&["--predefined", bad]);
            assert_eq!(flag, "--predefined", "{bad}");
        }
        let (_, reason) = flag_error(&["--predefined", "1=a", "--predefined", "1=b"]);
        assert!(reason.contains("twice"), "{reason}");
        let (_, reason) = flag_error(&["--predefined", "1=a", "--predefined", "2=a"]);
        assert!(reason.contains("already predefined"), "{reason}");
    }

    #[test]
    fn http_moves_or_turns_off_the_endpoint_and_pair_takes_a_duration() {
        let s = cli(&["--http", "0.0.0.0:9000"]).settings().unwrap();
        assert_eq!(s.io.http, Some("0.0.0.0:9000".parse().unwrap()));
        assert_eq!(cli(&["--http", "off"]).settings().unwrap().io.http, None);
        let (flag, reason) = flag_error(&["--http", "8087"]);
        assert_eq!(flag, "--http");
        assert!(reason.contains("\"off\""), "{reason}");
        let c = Cli::try_parse_from(["mqtt-sn-gateway", "pair", "--for", "90s"]).unwrap();
        assert_eq!(
            c.action(),
            Command::Pair {
                duration: "90s".into()
            }
        );
        let c = Cli::try_parse_from(["mqtt-sn-gateway", "pair"]).unwrap();
        assert_eq!(
            c.action(),
            Command::Pair {
                duration: "2m".into()
            }
        );
        let c = Cli::try_parse_from(["mqtt-sn-gateway", "clients", "--http", "off"]).unwrap();
        assert_eq!(c.action(), Command::Clients);
        assert_eq!(c.admin_addr().unwrap(), None);
        let c = cli(&["--http", "0.0.0.0:9000", "clients"]);
        assert_eq!(
            c.admin_addr().unwrap(),
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(pairing_duration("2m").unwrap().as_secs(), 120);
        for bad in ["0s", "1500ms", "25h", "soon", "120"] {
            assert!(pairing_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_default_file_falls_back_to_the_built_in_config() {
        let c = Cli::try_parse_from(["mqtt-sn-gateway", "--gateway-id", "3"]).unwrap();
        let c = Cli { config: None, ..c };
        let missing = Path::new("/nonexistent/mqtt-sn-gateway/gateway.toml");
        assert_eq!(c.config_file_with_default(missing), None);
        let s = c.settings_with_default(missing).unwrap();
        assert_eq!(s.core.gateway_id, 3);
        assert_eq!(s.io.listeners[0].bind, "0.0.0.0:1883".parse().unwrap());
    }

    #[test]
    fn an_explicit_missing_file_is_an_error() {
        let c =
            Cli::try_parse_from(["mqtt-sn-gateway", "--config", "/nonexistent/g.toml"]).unwrap();
        let e = c.settings().unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/g.toml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn advertise_flags_turn_discovery_on_for_the_matching_listeners() {
        let c = cli(&[
            "--listen",
            "127.0.0.1:20000",
            "--listen",
            "[::1]:20000",
            "--advertise",
            "225.1.1.1:1884",
            "--advertise-interface",
            "127.0.0.1",
            "--advertise-interval",
            "30s",
        ]);
        let s = c.settings().unwrap();
        let d = s.core.discovery.expect("discovery on");
        assert_eq!(d.advertise_interval, std::time::Duration::from_secs(30));
        let m = s.io.listeners[0]
            .multicast
            .as_ref()
            .expect("IPv4 listener joined");
        assert_eq!(m.group, "225.1.1.1:1884".parse::<SocketAddr>().unwrap());
        assert_eq!(m.interface_v4, Some(std::net::Ipv4Addr::LOCALHOST));
        assert_eq!(m.ttl, 1);
        assert!(
            s.io.listeners[1].multicast.is_none(),
            "the IPv6 listener is another family"
        );
    }

    #[test]
    fn bad_advertise_values_name_the_flag() {
        for (args, flag_name) in [
            (&["--advertise", "10.0.0.1:1884"][..], "--advertise"),
            (
                &[
                    "--listen",
                    "127.0.0.1:1884",
                    "--advertise",
                    "225.1.1.1:1884",
                ][..],
                "--advertise",
            ),
            (&["--advertise", "nonsense"][..], "--advertise"),
            (
                &["--advertise-interface", "eth0"][..],
                "--advertise-interface",
            ),
            (
                &["--advertise-interface", "127.0.0.1"][..],
                "--advertise-interface",
            ),
            (
                &["--advertise-interval", "1.5s"][..],
                "--advertise-interval",
            ),
            (
                &["--advertise-interval", "soon"][..],
                "--advertise-interval",
            ),
        ] {
            let (flag, reason) = flag_error(args);
            assert_eq!(flag, flag_name, "{args:?}: {reason}");
        }
    }

    #[test]
    fn unpair_takes_a_client_id_and_finds_the_registry_like_the_daemon() {
        let c = cli(&["unpair", "mote-7"]);
        assert_eq!(
            c.action(),
            Command::Unpair {
                client_id: "mote-7".into()
            }
        );
        let beside_config = Path::new(&shipped()).with_file_name("clients.toml");
        assert_eq!(c.settings().unwrap().registry.path, beside_config);
        let c = cli(&["unpair", "mote-7", "--registry", "/srv/clients.toml"]);
        assert_eq!(
            c.settings().unwrap().registry.path,
            PathBuf::from("/srv/clients.toml")
        );
        assert!(Cli::try_parse_from(["mqtt-sn-gateway", "unpair"]).is_err());
    }

    #[test]
    fn the_admin_commands_find_the_configuration_the_packaged_service_uses() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("config/gateway.toml");
        let service = ServicePaths {
            config: &dir.path().join("etc/gateway.toml"),
            registry: &dir.path().join("var/clients.toml"),
        };
        let bare = |args: &[&str]| {
            let mut all = vec!["mqtt-sn-gateway"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).unwrap()
        };
        let registry = |c: &Cli| {
            c.admin_settings_from(&local, &service)
                .unwrap()
                .registry
                .path
        };
        // Neither file: the built-in configuration.
        let c = bare(&["clients"]);
        assert_eq!(c.admin_config_from(&local, service.config), None);
        // The service's file (and its registry) when the working directory has none.
        std::fs::create_dir_all(service.config.parent().unwrap()).unwrap();
        std::fs::write(service.config, "[http]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
        assert_eq!(
            c.admin_config_from(&local, service.config).as_deref(),
            Some(service.config)
        );
        let s = c.admin_settings_from(&local, &service).unwrap();
        assert_eq!(s.io.http, Some("127.0.0.1:9999".parse().unwrap()));
        assert_eq!(s.registry.path, service.registry);
        // --registry still wins.
        let c = bare(&["unpair", "m", "--registry", "/srv/clients.toml"]);
        assert_eq!(registry(&c), PathBuf::from("/srv/clients.toml"));
        // A config/gateway.toml in the working directory comes first, with its own registry.
        std::fs::create_dir_all(local.parent().unwrap()).unwrap();
        std::fs::write(&local, "").unwrap();
        let c = bare(&["clients"]);
        assert_eq!(
            c.admin_config_from(&local, service.config),
            Some(local.clone())
        );
        assert_eq!(registry(&c), local.with_file_name("clients.toml"));
        // And --config names the file outright.
        let c = cli(&["clients"]);
        assert_eq!(
            c.admin_config_from(&local, service.config),
            Some(PathBuf::from(shipped()))
        );
    }

    #[test]
    fn registry_replaces_the_registry_path() {
        let path = "/var/lib/mqtt-sn-gateway/clients.toml";
        let s = cli(&["--registry", path]).settings().unwrap();
        assert_eq!(s.io.registry_file, Some(PathBuf::from(path)));
    }
}
