//! What the core asks the shell to send ([`Transmit`]) and tells it happened
//! ([`ForwarderEvent`], [`DropReason`]).

use std::fmt;
use std::net::SocketAddr;

use super::PortId;
use super::wnid::{NodeAddr, hex};

/// Where a radio frame goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RadioDest {
    /// To one node.
    Unicast(NodeAddr),
    /// To every node in range, at most `radius` hops away (0 = the whole network).
    Broadcast {
        /// Hop limit, 0..=3 (from the Encapsulated Ctrl octet or the relay setting).
        radius: u8,
    },
}

/// One datagram or frame the shell must send; its octets are in the buffer given to
/// [`Forwarder::poll_transmit`](super::Forwarder::poll_transmit), `len` long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// An Encapsulated message (or a relayed SEARCHGW) for the gateway, over UDP.
    ToGateway {
        /// The gateway's address.
        to: SocketAddr,
        /// Octets in the buffer.
        len: usize,
    },
    /// A SEARCHGW of the forwarder's own gateway discovery, to the discovery multicast group.
    ToDiscoveryGroup {
        /// Octets in the buffer.
        len: usize,
    },
    /// A bare MQTT-SN message for the radio network; the radio layer frames it.
    ToRadio {
        /// The radio port.
        port: PortId,
        /// Node or broadcast.
        to: RadioDest,
        /// Octets in the buffer.
        len: usize,
    },
}

/// Why the core dropped something. Every drop is also a [`ForwarderEvent::Dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// A frame from a node whose content is not one MQTT-SN message (its Length field disagrees
    /// with the frame, or it is itself Encapsulated). **Fault:** the node or line noise.
    MalformedFrame,
    /// A datagram from the gateway that is not a valid Encapsulated message, or whose inner
    /// message is malformed. **Fault:** the gateway.
    MalformedEncapsulation,
    /// A message from the gateway for a WNID no port knows (never heard, or expired).
    /// **Fault:** nobody (the node went quiet); the gateway retransmits or gives up.
    UnknownNode,
    /// A frame from a node while no gateway is known (discovery still searching).
    /// **Fault:** network. The node retries.
    NoGateway,
    /// A datagram on the gateway socket from an address that is not the gateway.
    /// **Fault:** a foreign sender.
    ForeignSource,
    /// A plain (not Encapsulated) message from the gateway other than ADVERTISE or GWINFO.
    /// **Fault:** the gateway.
    NotEncapsulated,
    /// The outgoing queue was full (the shell did not drain it). **Fault:** ours.
    QueueFull,
    /// A message longer than the shell's buffer, or a WNID longer than 252 octets.
    /// **Fault:** the sender.
    TooLarge,
    /// A frame whose link address does not fit the port's WNID scheme. **Fault:** the radio
    /// layer.
    BadNodeAddress,
}

impl DropReason {
    /// Stable snake_case label for counters and logs.
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::MalformedFrame => "malformed_frame",
            DropReason::MalformedEncapsulation => "malformed_encapsulation",
            DropReason::UnknownNode => "unknown_node",
            DropReason::NoGateway => "no_gateway",
            DropReason::ForeignSource => "foreign_source",
            DropReason::NotEncapsulated => "not_encapsulated",
            DropReason::QueueFull => "queue_full",
            DropReason::TooLarge => "too_large",
            DropReason::BadNodeAddress => "bad_node_address",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Something the shell may log or count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwarderEvent {
    /// A node was heard for the first time (or again after it expired).
    NodeAdded {
        /// Its port.
        port: PortId,
        /// Its WNID.
        wnid: Vec<u8>,
    },
    /// A known WNID was heard on another port or from another link address.
    NodeMoved {
        /// The new port.
        port: PortId,
        /// Its WNID.
        wnid: Vec<u8>,
    },
    /// A node was idle for the configured time and was forgotten.
    NodeExpired {
        /// Its WNID.
        wnid: Vec<u8>,
    },
    /// The table was full: the least recently heard node was forgotten to make room.
    NodeEvicted {
        /// Its WNID.
        wnid: Vec<u8>,
    },
    /// Something was dropped.
    Dropped {
        /// Why.
        reason: DropReason,
        /// The radio port it came from or was meant for, if any.
        port: Option<PortId>,
    },
    /// Discovery found a gateway (from its ADVERTISE or GWINFO).
    GatewayFound {
        /// The address frames now go to.
        addr: SocketAddr,
    },
    /// The discovered gateway missed its ADVERTISE deadline; discovery starts again.
    GatewayLost {
        /// Its address.
        addr: SocketAddr,
    },
    /// An ADVERTISE or GWINFO from a gateway was broadcast on the radio ports.
    Relayed {
        /// The message type code (0x00 ADVERTISE, 0x02 GWINFO).
        msg_type: u8,
    },
}

impl fmt::Display for ForwarderEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwarderEvent::NodeAdded { port, wnid } => {
                write!(f, "node {} added on port {}", hex(wnid), port.0)
            }
            ForwarderEvent::NodeMoved { port, wnid } => {
                write!(f, "node {} moved to port {}", hex(wnid), port.0)
            }
            ForwarderEvent::NodeExpired { wnid } => write!(f, "node {} expired", hex(wnid)),
            ForwarderEvent::NodeEvicted { wnid } => write!(f, "node {} evicted", hex(wnid)),
            ForwarderEvent::Dropped { reason, port } => match port {
                Some(p) => write!(f, "dropped ({reason}) on port {}", p.0),
                None => write!(f, "dropped ({reason})"),
            },
            ForwarderEvent::GatewayFound { addr } => write!(f, "gateway found at {addr}"),
            ForwarderEvent::GatewayLost { addr } => write!(f, "gateway at {addr} lost"),
            ForwarderEvent::Relayed { msg_type } => {
                write!(f, "relayed message type 0x{msg_type:02x} to the radio")
            }
        }
    }
}
