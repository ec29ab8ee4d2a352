//! Counters the core keeps as it works, read by the shell for metrics and status pages.
//! Bounded label sets only: message types, QoS levels, directions, drop reasons, states.

use std::collections::BTreeMap;

use sn_codec::{MsgType, QoS};

/// Direction of an application message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Client → broker.
    Upstream,
    /// Broker → client.
    Downstream,
}

impl Direction {
    /// `upstream` or `downstream`.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        }
    }
}

/// Monotonic counters (never reset while the gateway runs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received from clients and forwarders, by (inner) message type.
    pub packets_in: BTreeMap<MsgType, u64>,
    /// Datagrams sent, by (inner) message type.
    pub packets_out: BTreeMap<MsgType, u64>,
    /// Application messages by QoS and direction.
    pub publishes: BTreeMap<(QoS, Direction), u64>,
    /// Drops by reason label.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Retransmissions to clients, by message type.
    pub retransmissions: BTreeMap<MsgType, u64>,
    /// Upstream connections lost (all links).
    pub upstream_disconnects: u64,
    /// Upstream connections (re)established (all links).
    pub upstream_connects: u64,
    /// Messages accepted despite a known encoder mistake in their Length field (a long form
    /// two octets short of the datagram).
    pub length_quirks: u64,
}

impl Stats {
    pub(crate) fn count_in(&mut self, t: MsgType) {
        *self.packets_in.entry(t).or_default() += 1;
    }

    pub(crate) fn count_out(&mut self, t: MsgType) {
        *self.packets_out.entry(t).or_default() += 1;
    }

    pub(crate) fn count_publish(&mut self, qos: QoS, d: Direction) {
        *self.publishes.entry((qos, d)).or_default() += 1;
    }

    pub(crate) fn count_drop(&mut self, reason: &'static str) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    pub(crate) fn count_retransmission(&mut self, t: MsgType) {
        *self.retransmissions.entry(t).or_default() += 1;
    }
}

/// Gauges computed from the current sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Sessions by state name (`active`, `asleep`, …).
    pub clients: BTreeMap<&'static str, u64>,
    /// Messages waiting in sleep buffers.
    pub sleep_buffered: u64,
    /// Messages waiting in downlink queues of awake clients (plus the one in flight).
    pub downlink_queued: u64,
    /// Client links connected upstream.
    pub links_up: u64,
    /// Client links opened but not connected.
    pub links_down: u64,
    /// Client publishes in the gateway's custody, not yet acknowledged by the broker.
    pub custody_messages: u64,
    /// Payload octets of those.
    pub custody_bytes: u64,
    /// How long the oldest of them has waited (zero when there is none).
    pub custody_oldest: std::time::Duration,
}
