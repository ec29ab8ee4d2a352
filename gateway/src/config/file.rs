//! Serde shapes of the gateway's TOML file (`File*`), one struct per table.
//!
//! Only the shape is checked here: unknown keys, types and duration strings. Ranges, defaults
//! and cross-field rules belong to `validate.rs`. Values whose position matters in error
//! messages are `toml::Spanned`; integers are read as [`Int`] (any `i64`) so that out-of-range
//! values get our own message (with position) instead of a type error.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use sn_config::duration::Dur;
use toml::Spanned;

/// The whole file. Every table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// `[gateway]`: identity and per-client limits.
    #[serde(default)]
    pub(crate) gateway: FileGateway,
    /// `[listeners]`: the sockets clients and forwarders send to.
    #[serde(default)]
    pub(crate) listeners: FileListeners,
    /// `[upstream]`: the MQTT broker.
    #[serde(default)]
    pub(crate) upstream: FileUpstream,
    /// `[timers]`: retransmission and supervision.
    #[serde(default)]
    pub(crate) timers: FileTimers,
    /// `[sleep]`: sleeping clients.
    #[serde(default)]
    pub(crate) sleep: FileSleep,
    /// `[discovery]`: ADVERTISE and SEARCHGW answers.
    #[serde(default)]
    pub(crate) discovery: FileDiscovery,
    /// `[qos_minus1]`: publishing without a connection.
    #[serde(default)]
    pub(crate) qos_minus1: FileQosMinus1,
    /// `[forwarders]`: who may send Encapsulated messages.
    #[serde(default)]
    pub(crate) forwarders: FileForwarders,
    /// `[[predefined]]`: predefined topic ids.
    #[serde(default)]
    pub(crate) predefined: Vec<FilePredefined>,
    /// `[clients]`: admission policy and the registry of paired clients.
    #[serde(default)]
    pub(crate) clients: FileClients,
    /// `[http]`: the local HTTP endpoint (metrics, health, status page, admin API).
    #[serde(default)]
    pub(crate) http: FileHttp,
    /// `[limits]`: what strangers may cost the gateway.
    #[serde(default)]
    pub(crate) limits: FileLimits,
    /// `[storage]`: the state database.
    #[serde(default)]
    pub(crate) storage: FileStorage,
}

/// `[storage]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileStorage {
    /// The database file (relative to the configuration's directory), or `"off"`.
    pub(crate) path: Option<Spanned<String>>,
    /// How long the writer gathers records before one commit.
    pub(crate) batch_window: Option<Spanned<Dur>>,
    /// The most records in one commit.
    pub(crate) batch_max: Option<Spanned<Int>>,
    /// `"broker"` or `"gateway"`: when a client's QoS 1/2 publish is acknowledged.
    pub(crate) custody: Option<Spanned<String>>,
    /// Most messages in gateway custody.
    pub(crate) custody_max_messages: Option<Spanned<Int>>,
    /// Oldest a message in gateway custody may get (`"0s"`: no limit).
    pub(crate) custody_max_age: Option<Spanned<Dur>>,
    /// Hold QoS 0 publishes too while the broker cannot be reached.
    pub(crate) queue_qos0: Option<bool>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileLimits {
    /// New sessions of unregistered ClientIds per source IP address.
    pub(crate) new_sessions_per_address: Option<FileRateLimit>,
    /// New sessions of unregistered ClientIds behind one forwarder.
    pub(crate) new_sessions_per_forwarder: Option<FileRateLimit>,
    /// Drop an unregistered client silent since its CONNECT after this (`"0s"`: never).
    pub(crate) unregistered_idle_timeout: Option<Spanned<Dur>>,
}

/// `{ burst = N, per_second = M }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRateLimit {
    /// Most at once.
    pub(crate) burst: Spanned<Int>,
    /// Sustained rate per second.
    pub(crate) per_second: Spanned<Int>,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileHttp {
    /// `ADDRESS:PORT` of the endpoint, or `"off"` (default `"127.0.0.1:8087"`).
    pub(crate) listen: Option<Spanned<String>>,
}

/// `[gateway]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileGateway {
    /// GwId in ADVERTISE and GWINFO, 0..=255 (default 1).
    pub(crate) id: Option<Spanned<Int>>,
    /// Longest accepted ClientId in octets, 1..=64 (default 23).
    pub(crate) client_id_max_len: Option<Spanned<Int>>,
    /// Most sessions at once (default 256).
    pub(crate) max_clients: Option<Spanned<Int>>,
    /// Most normal topic ids per client (default 128).
    pub(crate) max_topics_per_client: Option<Spanned<Int>>,
    /// Largest datagram accepted from a client, 16..=65535 (default 1024).
    pub(crate) max_packet_size: Option<Spanned<Int>>,
    /// Requests a client may have outstanding at once (default 8).
    pub(crate) max_inflight_from_client: Option<Spanned<Int>>,
    /// Messages queued towards one client behind the one in flight (default 32).
    pub(crate) downlink_queue: Option<Spanned<Int>>,
    /// Unacknowledged QoS 1/2 publishes kept per client (default 32).
    pub(crate) uplink_buffer: Option<Spanned<Int>>,
    /// A CONNECT with the ClientId of a live session from a new address takes the session over
    /// (default: true with the open policy, false with registered-only).
    pub(crate) allow_address_change: Option<bool>,
    /// TopicId of a SUBACK for a short topic name: `"name"` (its two octets) or `"zero"`.
    pub(crate) short_topic_suback_id: Option<Spanned<String>>,
    /// How long a disconnected or lost CleanSession=0 session is remembered (`"0s"`: until its
    /// place is needed).
    pub(crate) remember_disconnected_for: Option<Spanned<Dur>>,
}

/// `[listeners]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileListeners {
    /// `[[listeners.udp]]`: UDP sockets; absent = one on `0.0.0.0:1883`.
    pub(crate) udp: Option<Spanned<Vec<FileUdpListener>>>,
}

/// One `[[listeners.udp]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileUdpListener {
    /// `ADDRESS:PORT` to bind, e.g. `"0.0.0.0:1883"` or `"[::]:1883"`.
    pub(crate) bind: Spanned<String>,
    /// Discovery multicast on this listener.
    pub(crate) multicast: Option<FileMulticast>,
}

/// `multicast = { … }` of a UDP listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileMulticast {
    /// Group `ADDRESS:PORT`, e.g. `"225.1.1.1:1884"` or `"[ff02::1:1]:1884"`.
    pub(crate) group: Spanned<String>,
    /// IPv4 groups: address of the interface to join on (default: the system's choice).
    pub(crate) interface: Option<Spanned<String>>,
    /// IPv6 groups: interface index to join on (default 0 = the system's choice).
    pub(crate) interface_index: Option<Spanned<Int>>,
    /// TTL / hop limit of ADVERTISE, 1..=255 (default 1).
    pub(crate) ttl: Option<Spanned<Int>>,
}

/// `[upstream]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileUpstream {
    /// `mqtt://host[:port]` or `mqtts://host[:port]` (default `mqtt://127.0.0.1:1883`).
    pub(crate) url: Option<Spanned<String>>,
    /// `"transparent"` (one MQTT connection per client, default) or `"aggregating"` (one
    /// shared connection).
    pub(crate) mode: Option<Spanned<String>>,
    /// Prepended to every MQTT-SN ClientId upstream (default empty).
    pub(crate) client_id_prefix: Option<Spanned<String>>,
    /// Prepended to every topic upstream, stripped coming down (default empty).
    pub(crate) topic_prefix: Option<Spanned<String>>,
    /// MQTT keep-alive of every upstream link, `"0s"` or 1 s..=65535 s (default `"60s"`).
    pub(crate) keep_alive: Option<Spanned<Dur>>,
    /// Username for every link without a per-client entry.
    pub(crate) username: Option<Spanned<String>>,
    /// Password that goes with `username`.
    pub(crate) password: Option<Spanned<String>>,
    /// Time allowed for TCP + TLS + MQTT CONNECT (default `"5s"`).
    pub(crate) connect_timeout: Option<Spanned<Dur>>,
    /// First reconnect delay (default `"250ms"`).
    pub(crate) backoff_initial: Option<Spanned<Dur>>,
    /// Longest reconnect delay (default `"60s"`).
    pub(crate) backoff_max: Option<Spanned<Dur>>,
    /// Unacknowledged QoS 1/2 publishes per link, 1..=65535 (default 16).
    pub(crate) inflight: Option<Spanned<Int>>,
    /// Largest MQTT packet sent or received (default 262144).
    pub(crate) max_packet_size: Option<Spanned<Int>>,
    /// MQTT ClientId of the gateway's own link (default `"mqtt-sn-gateway-<id>"`).
    pub(crate) gateway_client_id: Option<Spanned<String>>,
    /// TLS settings for `mqtts://`.
    pub(crate) tls: Option<FileTls>,
    /// `[[upstream.clients]]`: credentials for one MQTT-SN ClientId.
    #[serde(default)]
    pub(crate) clients: Vec<FileClientCredentials>,
}

/// `tls = { … }` of `[upstream]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTls {
    /// PEM file of the CA certificates to trust (required for `mqtts://`).
    pub(crate) ca_file: Option<Spanned<String>>,
    /// PEM client certificate chain (needs `client_key`).
    pub(crate) client_cert: Option<Spanned<String>>,
    /// PEM private key of the client certificate (needs `client_cert`).
    pub(crate) client_key: Option<Spanned<String>>,
    /// Name checked against the broker's certificate instead of the URL's host.
    pub(crate) server_name: Option<Spanned<String>>,
}

/// One `[[upstream.clients]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileClientCredentials {
    /// MQTT-SN ClientId these credentials are for.
    pub(crate) client_id: Spanned<String>,
    /// MQTT username of that client's link.
    pub(crate) username: Spanned<String>,
    /// MQTT password of that client's link.
    pub(crate) password: Option<String>,
}

/// `[timers]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTimers {
    /// T_RETRY: retransmission timer, > 0 (default `"10s"`).
    pub(crate) t_retry: Option<Spanned<Dur>>,
    /// N_RETRY: retransmissions before giving up, 1..=20 (default 3).
    pub(crate) n_retry: Option<Spanned<Int>>,
    /// Supervision tolerance for long periods, percent (default 10).
    pub(crate) keep_alive_tolerance_long_percent: Option<Spanned<Int>>,
    /// Supervision tolerance for short periods, percent (default 50).
    pub(crate) keep_alive_tolerance_short_percent: Option<Spanned<Int>>,
    /// Where the short-period tolerance stops growing (default `"90s"`).
    pub(crate) keep_alive_tolerance_short_cap: Option<Spanned<Dur>>,
    /// Clamp for client keep-alive (0 and larger values become this; default `"1h"`, `"0s"` =
    /// no clamp).
    pub(crate) max_keep_alive: Option<Spanned<Dur>>,
}

/// `[sleep]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSleep {
    /// Messages buffered per sleeping client (default 64).
    pub(crate) max_buffered: Option<Spanned<Int>>,
    /// What a full buffer does (default `"drop_oldest_qos0_then_reject"`).
    pub(crate) overflow: Option<FileOverflow>,
    /// A wake-up PINGREQ from a new address moves an asleep session (default: true with the
    /// open policy, false with registered-only).
    pub(crate) allow_wake_from_new_address: Option<bool>,
}

/// `sleep.overflow` values.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FileOverflow {
    /// Drop the oldest QoS 0 message, then refuse new ones.
    DropOldestQos0ThenReject,
    /// Drop the oldest message whatever its QoS.
    DropOldest,
}

/// `[discovery]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDiscovery {
    /// Send ADVERTISE and answer SEARCHGW (default false).
    pub(crate) enabled: Option<bool>,
    /// T_ADV: ADVERTISE period, whole seconds 1 s..=65535 s (default `"15m"`).
    pub(crate) advertise_interval: Option<Spanned<Dur>>,
    /// Largest multicast TTL of a GWINFO answer, 1..=255 (default 8).
    pub(crate) max_gwinfo_ttl: Option<Spanned<Int>>,
    /// Largest random delay before answering SEARCHGW (default `"200ms"`).
    pub(crate) max_gwinfo_delay: Option<Spanned<Dur>>,
}

/// `[qos_minus1]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileQosMinus1 {
    /// Accept QoS −1 publishes (default true).
    pub(crate) enabled: Option<bool>,
    /// Accept the non-standard long-topic form (default false).
    pub(crate) long_topic_form: Option<bool>,
    /// Accept the Retain flag on QoS −1 publishes (default false).
    pub(crate) allow_retain: Option<bool>,
    /// Source IP addresses allowed to publish at QoS −1; absent = anyone.
    pub(crate) allow: Option<Vec<Spanned<String>>>,
}

/// `[clients]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileClients {
    /// `"open"` (any ClientId, default) or `"registered-only"`.
    pub(crate) policy: Option<FileAdmission>,
    /// The registry file of paired clients, relative to this file (default `clients.toml`).
    pub(crate) registry: Option<Spanned<String>>,
}

/// `clients.policy` values.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FileAdmission {
    /// Any client may connect.
    Open,
    /// Only registered clients (and new ones during a pairing window).
    RegisteredOnly,
}

/// `[forwarders]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileForwarders {
    /// Forwarder IP addresses allowed to send Encapsulated messages; absent = anyone.
    pub(crate) allow: Option<Vec<Spanned<String>>>,
}

/// One `[[predefined]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilePredefined {
    /// Topic id, 1..=65534.
    pub(crate) id: Spanned<Int>,
    /// Concrete topic name (no `+` or `#`).
    pub(crate) topic: Spanned<String>,
    /// ClientIds this id is for; absent or `["*"]` = every client (global).
    pub(crate) clients: Option<Spanned<Vec<Spanned<String>>>>,
}

/// An integer as written in the file; ranges are checked by `validate.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int(pub(crate) i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_i64(IntVisitor)
    }
}

/// Serde visitor accepting integers only (its `expecting` text is what operators read).
struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = Int;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
        Ok(Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
        i64::try_from(v)
            .map(Int)
            .map_err(|_| E::custom(format!("{v} is too large")))
    }
}
