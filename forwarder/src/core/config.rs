//! [`ForwarderConfig`]: the typed, validated settings of the core.

use std::net::SocketAddr;
use std::time::Duration;

use super::wnid::WnidScheme;

/// Settings of the sans-IO core. Built by `config::load` or by hand in tests; the core clamps
/// nothing but the values documented here.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwarderConfig {
    /// How each radio port names its nodes; the index is the [`PortId`](super::PortId).
    pub ports: Vec<WnidScheme>,
    /// The gateway's address; `None` = find it by SEARCHGW / ADVERTISE on the discovery group.
    pub gateway: Option<SocketAddr>,
    /// Gateway discovery (used when `gateway` is `None`).
    pub discovery: DiscoverySettings,
    /// Broadcast ADVERTISE and GWINFO heard from gateways on the radio ports.
    pub relay_advertise: bool,
    /// Hop limit of relayed ADVERTISE / GWINFO broadcasts, 0..=3 (0 = whole network).
    pub relay_radius: u8,
    /// Most nodes remembered at once (≥ 1); a new node then evicts the least recently heard.
    pub max_nodes: usize,
    /// A node not heard for this long is forgotten. Make it longer than the longest sleep of
    /// your nodes (a sleeping node is only heard again when it wakes).
    pub node_idle_timeout: Duration,
    /// Most messages waiting in the core for the shell (≥ 1); more are dropped.
    pub max_queue: usize,
}

/// How the forwarder looks for a gateway when none is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoverySettings {
    /// Delay before the first repeat of SEARCHGW; doubled after each unanswered search.
    pub search_initial: Duration,
    /// Longest delay between two searches.
    pub search_max: Duration,
    /// Radius field of the forwarder's own SEARCHGW.
    pub radius: u8,
    /// A gateway found by ADVERTISE is considered lost after this many missed ADVERTISE
    /// periods (≥ 1).
    pub missed_advertise_limit: u32,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        DiscoverySettings {
            search_initial: Duration::from_secs(1),
            search_max: Duration::from_secs(300),
            radius: 1,
            missed_advertise_limit: 3,
        }
    }
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        ForwarderConfig {
            ports: Vec::new(),
            gateway: None,
            discovery: DiscoverySettings::default(),
            relay_advertise: true,
            relay_radius: 0,
            max_nodes: 1024,
            node_idle_timeout: Duration::from_secs(3600),
            max_queue: 1024,
        }
    }
}
