//! [`IoConfig`]: the typed settings of the tokio shell (sockets, serial ports, timings).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use crate::core::{ForwarderConfig, WnidScheme};
use crate::radio::Framing;

/// Everything the shell needs besides the core's [`ForwarderConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct IoConfig {
    /// Local address of the gateway-side UDP socket (port 0 = any).
    pub bind: SocketAddr,
    /// The discovery multicast group: SEARCHGW goes there when no gateway is configured, and
    /// ADVERTISE / GWINFO are heard there. `None` = no multicast at all.
    pub group: Option<GroupConfig>,
    /// Radio ports, numbered in this order (`PortId(0)`, …).
    pub ports: Vec<PortConfig>,
    /// First delay before reopening a serial port that failed or vanished.
    pub reopen_initial: Duration,
    /// Longest delay between two reopen attempts.
    pub reopen_max: Duration,
    /// Period of the counter summary in the log; `None` = only at shutdown.
    pub stats_interval: Option<Duration>,
}

impl Default for IoConfig {
    fn default() -> Self {
        IoConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            group: Some(GroupConfig::default()),
            ports: Vec::new(),
            reopen_initial: Duration::from_millis(250),
            reopen_max: Duration::from_secs(30),
            stats_interval: Some(Duration::from_secs(300)),
        }
    }
}

/// The IPv4 discovery multicast group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// Group address and port (the gateways' discovery group, default `225.1.1.1:1884`).
    pub group: SocketAddrV4,
    /// Address of the interface to join on and send from (`0.0.0.0` = the system's choice).
    pub interface: Ipv4Addr,
    /// TTL of the forwarder's SEARCHGW.
    pub ttl: u8,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            group: SocketAddrV4::new(Ipv4Addr::new(225, 1, 1, 1), 1884),
            interface: Ipv4Addr::UNSPECIFIED,
            ttl: 1,
        }
    }
}

/// One radio port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Name used in logs and counters (default: the device path or the UDP address).
    pub name: String,
    /// Serial or UDP.
    pub kind: PortKind,
}

/// The kinds of radio port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortKind {
    /// A serial device (USB radio dongle, UART).
    Serial(SerialConfig),
    /// Nodes sending plain MQTT-SN datagrams over UDP.
    Udp(UdpRadioConfig),
}

/// A serial radio port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConfig {
    /// Device path, e.g. `/dev/ttyUSB0` (a symlink such as `/dev/serial/by-id/…` is followed at
    /// every reopen).
    pub path: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// Flow control.
    pub flow: FlowControl,
    /// Framing on the line.
    pub framing: Framing,
    /// WNID of the one node on the line (plain SLIP and raw); `None` otherwise.
    pub wnid: Option<Vec<u8>>,
}

/// Serial flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowControl {
    /// None.
    None,
    /// RTS/CTS.
    Hardware,
    /// XON/XOFF (unusable with unescaped binary framings).
    Software,
}

/// A UDP radio port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRadioConfig {
    /// Address to bind, e.g. `0.0.0.0:10000` (port 0 = any, for tests).
    pub bind: SocketAddr,
    /// Where broadcasts go (e.g. a multicast group the nodes joined); `None` = to every node
    /// of this port the forwarder knows.
    pub broadcast: Option<SocketAddr>,
}

impl PortConfig {
    /// How the core names this port's nodes.
    pub fn wnid_scheme(&self) -> WnidScheme {
        match &self.kind {
            PortKind::Udp(_) => WnidScheme::UdpAddress,
            PortKind::Serial(s) => match (s.framing, &s.wnid) {
                (Framing::Xbee { .. } | Framing::Slip { addressed: true }, _) => {
                    WnidScheme::LinkAddress
                }
                (_, Some(w)) => WnidScheme::Fixed(w.clone()),
                // Validation requires a WNID here; a hand-built config without one gets 0x01.
                (_, None) => WnidScheme::Fixed(vec![0x01]),
            },
        }
    }
}

/// A validated configuration: the core's settings and the shell's.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Settings of the sans-IO core (its `ports` match `io.ports`).
    pub core: ForwarderConfig,
    /// Settings of the tokio shell.
    pub io: IoConfig,
}

impl Settings {
    /// Settings for `ports` with defaults elsewhere; the core's port list is derived from
    /// `ports`.
    pub fn new(gateway: Option<SocketAddr>, ports: Vec<PortConfig>) -> Self {
        let core = ForwarderConfig {
            ports: ports.iter().map(PortConfig::wnid_scheme).collect(),
            gateway,
            ..ForwarderConfig::default()
        };
        Settings {
            core,
            io: IoConfig {
                ports,
                ..IoConfig::default()
            },
        }
    }

    /// Re-derives the core's port list from `io.ports` (after editing them).
    pub fn sync_ports(&mut self) {
        self.core.ports = self.io.ports.iter().map(PortConfig::wnid_scheme).collect();
    }
}
