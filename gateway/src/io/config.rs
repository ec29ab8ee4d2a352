//! [`IoConfig`]: the typed settings of the tokio shell (sockets, upstream endpoint, TLS).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the shell needs besides the core's `GatewayConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct IoConfig {
    /// UDP listeners, numbered in this order (`ListenerId(0)`, …).
    pub listeners: Vec<ListenerConfig>,
    /// The upstream broker.
    pub upstream: UpstreamEndpoint,
    /// The client registry file pairing appends to and SIGHUP reloads (None: no file).
    pub registry_file: Option<PathBuf>,
    /// The local HTTP endpoint (metrics, health, status page, admin API); `None`: off.
    pub http: Option<SocketAddr>,
    /// The state database. [`super::start`] treats an unresolved
    /// [`super::store::StorageLocation::Default`] as off; the binary resolves it first.
    pub storage: super::store::StorageConfig,
}

/// Default address of the HTTP endpoint: loopback only.
pub const DEFAULT_HTTP: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8087,
));

impl Default for IoConfig {
    fn default() -> Self {
        IoConfig {
            listeners: vec![ListenerConfig {
                bind: SocketAddr::from(([0, 0, 0, 0], 1883)),
                multicast: None,
            }],
            upstream: UpstreamEndpoint::default(),
            registry_file: None,
            http: Some(DEFAULT_HTTP),
            storage: super::store::StorageConfig::default(),
        }
    }
}

/// One UDP socket clients (and forwarders) send to.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// Address and port to bind (IPv4 or IPv6).
    pub bind: SocketAddr,
    /// Discovery multicast for this listener, if any.
    pub multicast: Option<MulticastConfig>,
}

/// The discovery multicast group of a listener.
#[derive(Debug, Clone, PartialEq)]
pub struct MulticastConfig {
    /// Group address and port (the port differs from the unicast port).
    pub group: SocketAddr,
    /// Interface: an IPv4 address for IPv4 groups.
    pub interface_v4: Option<std::net::Ipv4Addr>,
    /// Interface index for IPv6 groups (0 = the system's choice).
    pub interface_v6: u32,
    /// TTL / hop limit of ADVERTISE.
    pub ttl: u8,
}

/// URL scheme of the upstream broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `mqtt://`: plain TCP.
    Mqtt,
    /// `mqtts://`: TLS.
    Mqtts,
    /// `embedded://ADDR:PORT`: start the in-process broker there and connect to it (cargo
    /// feature `embedded-broker`).
    Embedded,
}

/// Where the upstream broker is and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamEndpoint {
    /// Plain or TLS.
    pub scheme: Scheme,
    /// Host name or address (also the name checked against the TLS certificate).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS settings (used with `mqtts`).
    pub tls: TlsConfig,
    /// Time allowed for TCP + TLS + MQTT CONNECT.
    pub connect_timeout: Duration,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Largest MQTT packet sent or received.
    pub max_packet_size: usize,
    /// Unacknowledged QoS 1/2 publishes per link.
    pub inflight: u16,
}

impl Default for UpstreamEndpoint {
    fn default() -> Self {
        UpstreamEndpoint {
            // The zero-setup default: the in-process broker when the build has one.
            scheme: if cfg!(feature = "embedded-broker") {
                Scheme::Embedded
            } else {
                Scheme::Mqtt
            },
            host: "127.0.0.1".into(),
            port: 1883,
            tls: TlsConfig::default(),
            connect_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(60),
            max_packet_size: 256 * 1024,
            inflight: 16,
        }
    }
}

/// TLS to the broker (rustls with the ring provider).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust; the system has no default store here, so
    /// `mqtts` needs it.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key: Option<PathBuf>,
    /// Name checked against the server certificate instead of `host`.
    pub server_name: Option<String>,
}
