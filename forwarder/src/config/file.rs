//! Serde shapes of the forwarder's TOML file (`File*`), one struct per table.
//!
//! Only the shape is checked here: unknown keys, types and duration strings. Ranges, defaults
//! and cross-field rules belong to `validate.rs`. Values whose position matters in error
//! messages are `toml::Spanned`; integers are read as `i64` so that out-of-range values get our
//! own message (with position) instead of a type error.

use serde::Deserialize;
use sn_config::duration::Dur;
use toml::Spanned;

/// The whole file. Every table is optional, but at least one port is needed (here or from
/// `--radio`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// `[forwarder]`: where frames go and how many nodes are remembered.
    #[serde(default)]
    pub(crate) forwarder: FileForwarder,
    /// `[discovery]`: the gateways' multicast group.
    #[serde(default)]
    pub(crate) discovery: FileDiscovery,
    /// `[serial]`: reopening of serial devices.
    #[serde(default)]
    pub(crate) serial: FileSerial,
    /// `[[ports]]`: the radio ports.
    #[serde(default)]
    pub(crate) ports: Vec<Spanned<FilePort>>,
}

/// `[forwarder]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileForwarder {
    /// Gateway `ADDRESS:PORT`; absent = discover it on the `[discovery]` group.
    pub(crate) gateway: Option<Spanned<String>>,
    /// Local `ADDRESS:PORT` of the gateway-side socket (default `"0.0.0.0:0"`).
    pub(crate) bind: Option<Spanned<String>>,
    /// Broadcast ADVERTISE / GWINFO heard from gateways on the radio ports (default true).
    pub(crate) relay_advertise: Option<bool>,
    /// Hop limit of relayed broadcasts, 0..=3, 0 = whole network (default 0).
    pub(crate) relay_radius: Option<Spanned<i64>>,
    /// Most nodes remembered (default 1024).
    pub(crate) max_nodes: Option<Spanned<i64>>,
    /// A node not heard for this long is forgotten (default `"1h"`).
    pub(crate) node_idle_timeout: Option<Spanned<Dur>>,
    /// Messages waiting in the core at most (default 1024).
    pub(crate) max_queue: Option<Spanned<i64>>,
    /// Period of the counter summary in the log, `"0s"` = only at shutdown (default `"5m"`).
    pub(crate) stats_interval: Option<Spanned<Dur>>,
}

/// `[discovery]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDiscovery {
    /// IPv4 multicast group `ADDRESS:PORT` (default `"225.1.1.1:1884"`).
    pub(crate) group: Option<Spanned<String>>,
    /// IPv4 address of the interface to join on and send from (default `"0.0.0.0"`).
    pub(crate) interface: Option<Spanned<String>>,
    /// TTL of the forwarder's SEARCHGW, 1..=255 (default 1).
    pub(crate) ttl: Option<Spanned<i64>>,
    /// Radius field of the forwarder's SEARCHGW, 0..=255 (default 1).
    pub(crate) radius: Option<Spanned<i64>>,
    /// First delay between searches, doubled up to `search_max` (default `"1s"`).
    pub(crate) search_initial: Option<Spanned<Dur>>,
    /// Longest delay between searches (default `"5m"`).
    pub(crate) search_max: Option<Spanned<Dur>>,
    /// ADVERTISE periods a discovered gateway may miss, 1..=100 (default 3).
    pub(crate) missed_advertise_limit: Option<Spanned<i64>>,
}

/// `[serial]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSerial {
    /// First delay before reopening a lost device (default `"250ms"`).
    pub(crate) reopen_initial: Option<Spanned<Dur>>,
    /// Longest delay between reopen attempts (default `"30s"`).
    pub(crate) reopen_max: Option<Spanned<Dur>>,
}

/// One `[[ports]]` entry: exactly one of `path`, `udp`, `uri`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilePort {
    /// Name in logs and counters (default: the path or address).
    pub(crate) name: Option<Spanned<String>>,
    /// Serial device path.
    pub(crate) path: Option<Spanned<String>>,
    /// UDP radio port: `ADDRESS:PORT` to bind.
    pub(crate) udp: Option<Spanned<String>>,
    /// The whole port as a `--radio` URI.
    pub(crate) uri: Option<Spanned<String>>,
    /// Serial baud rate (default 115200).
    pub(crate) baud: Option<Spanned<i64>>,
    /// `"none"`, `"hardware"` or `"software"` (default `"none"`).
    pub(crate) flow_control: Option<Spanned<String>>,
    /// `"xbee-api2"`, `"xbee-api1"`, `"slip"`, `"slip-addressed"` or `"raw"` (default
    /// `"xbee-api2"`).
    pub(crate) framing: Option<Spanned<String>>,
    /// WNID of the one node on a `slip` or `raw` line, hex octets.
    pub(crate) wnid: Option<Spanned<String>>,
    /// UDP port: where broadcasts go (default: every known node of the port).
    pub(crate) broadcast: Option<Spanned<String>>,
}
