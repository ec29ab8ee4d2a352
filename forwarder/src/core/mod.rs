//! The sans-IO forwarder core: node table, encapsulation, broadcast relay and gateway discovery.
//! No sockets, no serial ports, no clock: time comes in as `now`.
//!
//! # Calling contract
//!
//! ```text
//! let mut fwd = Forwarder::new(config, now);
//! loop {
//!     wait for: a radio frame, a gateway datagram, or fwd.poll_timeout()
//!     fwd.handle_radio_frame(now, port, node, bytes)     // one MQTT-SN message from a node
//!     fwd.handle_gateway_datagram(now, from, bytes)      // a datagram on the gateway socket
//!                                                        // or the discovery group
//!     fwd.handle_timeout(now)                            // spurious calls are harmless
//!     then drain completely, in this order:
//!         while let Some(t) = fwd.poll_transmit(&mut buf) { send buf[..t.len] }
//!         while let Some(e) = fwd.poll_event() { log, count }
//! }
//! ```
//!
//! - Every frame from a node is wrapped in an Encapsulated message (Ctrl = 0) whose WNID names
//!   the node ([`WnidScheme`]) and sent to the gateway. The inner message is not interpreted;
//!   only its Length field is checked against the frame, so line noise that a framing without
//!   integrity check (raw) lets through is dropped here.
//! - Every Encapsulated message from the gateway is unwrapped: a non-empty WNID is sent to the
//!   port and link address the node was last heard on; an empty WNID is broadcast on every port
//!   with radius = Ctrl bits 1–0.
//! - Plain ADVERTISE and GWINFO from a gateway are broadcast on every port (radius
//!   `relay_radius`) when `relay_advertise` is on; an identical message within
//!   [`RELAY_DEDUPE`] is relayed once (the gateway answers a SEARCHGW both unicast and on the
//!   group).
//! - Without a configured gateway, the core sends SEARCHGW to the discovery group (backing off
//!   from `search_initial` to `search_max`) until an ADVERTISE or GWINFO names a gateway; a
//!   gateway found by ADVERTISE is lost after `missed_advertise_limit` silent periods.
//! - Peer input never makes an input method fail; drops are [`ForwarderEvent::Dropped`].
//! - Deterministic: the same inputs give the same outputs.

pub mod config;
pub mod event;
pub mod nodes;
pub mod wnid;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use sn_codec::{Encapsulated, Instant, Packet};

pub use self::config::{DiscoverySettings, ForwarderConfig};
pub use self::event::{DropReason, ForwarderEvent, RadioDest, Transmit};
pub use self::nodes::NodeEntry;
use self::nodes::{NodeTable, Touch};
pub use self::wnid::{NodeAddr, WnidScheme};

/// Identical relayed ADVERTISE / GWINFO within this window are broadcast once.
pub const RELAY_DEDUPE: Duration = Duration::from_secs(1);

/// MsgType codes the core looks at.
const ADVERTISE: u8 = 0x00;
const SEARCHGW: u8 = 0x01;
const GWINFO: u8 = 0x02;
const ENCAPSULATED: u8 = 0xFE;

/// A radio port, numbered in configuration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u8);

/// Where a queued output goes.
#[derive(Debug, Clone)]
enum Dest {
    Gateway(SocketAddr),
    Group,
    Radio(PortId, RadioDest),
}

/// The gateway frames go to.
#[derive(Debug, Clone, Copy)]
struct GatewayState {
    addr: SocketAddr,
    last_heard: Instant,
    /// How long the gateway may stay silent (discovered by ADVERTISE only).
    lifetime: Option<Duration>,
}

/// The discovery search schedule.
#[derive(Debug, Clone, Copy)]
struct Search {
    next: Instant,
    interval: Duration,
}

/// The forwarder state machine; see the module documentation for the calling contract.
#[derive(Debug)]
pub struct Forwarder {
    cfg: ForwarderConfig,
    nodes: NodeTable,
    queue: VecDeque<(Dest, Vec<u8>)>,
    events: VecDeque<ForwarderEvent>,
    gateway: Option<GatewayState>,
    search: Option<Search>,
    last_relay: Option<(Instant, Vec<u8>)>,
}

/// The MsgType of a bare MQTT-SN message whose Length field matches `bytes` exactly.
fn message_type(bytes: &[u8]) -> Option<u8> {
    let (total, msg_type) = match bytes {
        [0x01, hi, lo, t, ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), *t),
        [0x01, ..] => return None,
        [len, t, ..] => (usize::from(*len), *t),
        _ => return None,
    };
    (total == bytes.len() && total >= 2).then_some(msg_type)
}

impl Forwarder {
    /// A forwarder with no known nodes; with no configured gateway it starts searching at once.
    pub fn new(cfg: ForwarderConfig, now: Instant) -> Self {
        let nodes = NodeTable::new(cfg.max_nodes, cfg.node_idle_timeout);
        let gateway = cfg.gateway.map(|addr| GatewayState {
            addr,
            last_heard: now,
            lifetime: None,
        });
        let search = cfg.gateway.is_none().then_some(Search {
            next: now,
            interval: cfg.discovery.search_initial,
        });
        Forwarder {
            cfg,
            nodes,
            queue: VecDeque::new(),
            events: VecDeque::new(),
            gateway,
            search,
            last_relay: None,
        }
    }

    /// The settings the core runs with.
    pub fn config(&self) -> &ForwarderConfig {
        &self.cfg
    }

    /// The gateway frames currently go to.
    pub fn gateway(&self) -> Option<SocketAddr> {
        self.gateway.map(|g| g.addr)
    }

    /// Number of known nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Every known node (WNID and where it is), in WNID order.
    pub fn nodes(&self) -> impl Iterator<Item = (&[u8], &NodeEntry)> {
        self.nodes.iter().map(|(w, e)| (w.as_slice(), e))
    }

    /// One MQTT-SN message `bytes` from node `node` on radio port `port`.
    pub fn handle_radio_frame(
        &mut self,
        now: Instant,
        port: PortId,
        node: &NodeAddr,
        bytes: &[u8],
    ) {
        self.handle_timeout(now);
        let Some(scheme) = self.cfg.ports.get(usize::from(port.0)) else {
            return self.drop_for(DropReason::BadNodeAddress, Some(port));
        };
        let Some(wnid) = scheme.wnid_of(node) else {
            return self.drop_for(DropReason::BadNodeAddress, Some(port));
        };
        let msg_type = match message_type(bytes) {
            Some(ENCAPSULATED) | None => {
                return self.drop_for(DropReason::MalformedFrame, Some(port));
            }
            Some(t) => t,
        };
        match self.nodes.touch(now, &wnid, port, node) {
            Touch::Refreshed => {}
            Touch::Moved => self.events.push_back(ForwarderEvent::NodeMoved {
                port,
                wnid: wnid.clone(),
            }),
            Touch::Added { evicted } => {
                if let Some((old, _)) = evicted {
                    self.events
                        .push_back(ForwarderEvent::NodeEvicted { wnid: old });
                }
                self.events.push_back(ForwarderEvent::NodeAdded {
                    port,
                    wnid: wnid.clone(),
                });
            }
        }
        let Some(gw) = self.gateway else {
            if msg_type == SEARCHGW
                && let Some(s) = &mut self.search
            {
                // A node is looking for a gateway: search now rather than at the next retry.
                s.next = now;
                self.handle_timeout(now);
            }
            return self.drop_for(DropReason::NoGateway, Some(port));
        };
        let encap = Encapsulated {
            radius: 0,
            wnid: &wnid,
            inner: bytes,
        };
        let mut out = vec![0u8; encap.encoded_len()];
        match encap.encode(&mut out) {
            Ok(n) => {
                out.truncate(n);
                self.push(Dest::Gateway(gw.addr), out, Some(port));
            }
            Err(_) => self.drop_for(DropReason::TooLarge, Some(port)),
        }
    }

    /// A datagram received from `from` on the gateway socket or the discovery group.
    pub fn handle_gateway_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.handle_timeout(now);
        let is_gateway = self.gateway.is_some_and(|g| g.addr == from);
        if is_gateway && let Some(g) = &mut self.gateway {
            g.last_heard = now;
        }
        if bytes.get(1) == Some(&ENCAPSULATED) {
            if !is_gateway {
                return self.drop_for(DropReason::ForeignSource, None);
            }
            return self.unwrap_encapsulated(bytes);
        }
        match Packet::decode(bytes) {
            Ok(Packet::Advertise { duration, .. }) => {
                let lifetime = Duration::from_secs(u64::from(duration))
                    .saturating_mul(self.cfg.discovery.missed_advertise_limit.max(1));
                self.adopt(now, from, Some(lifetime));
                self.relay(now, ADVERTISE, bytes);
            }
            Ok(Packet::GwInfo { gw_addr, .. }) => {
                if gw_addr.is_empty() {
                    self.adopt(now, from, None);
                }
                self.relay(now, GWINFO, bytes);
            }
            // Our own SEARCHGW looped back on the group, or another forwarder's: not ours.
            Ok(Packet::SearchGw { .. }) => {}
            Ok(_) => self.drop_for(DropReason::NotEncapsulated, None),
            Err(_) => self.drop_for(DropReason::MalformedEncapsulation, None),
        }
    }

    /// Expires idle nodes, repeats discovery searches, notices a silent discovered gateway.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (wnid, _) in self.nodes.expire(now) {
            self.events.push_back(ForwarderEvent::NodeExpired { wnid });
        }
        if let Some(g) = self.gateway
            && let Some(lifetime) = g.lifetime
            && now >= g.last_heard.saturating_add(lifetime)
        {
            self.gateway = None;
            self.events
                .push_back(ForwarderEvent::GatewayLost { addr: g.addr });
            self.search = Some(Search {
                next: now,
                interval: self.cfg.discovery.search_initial,
            });
        }
        if self.gateway.is_none()
            && let Some(s) = &mut self.search
            && now >= s.next
        {
            s.next = now.saturating_add(s.interval);
            s.interval = s
                .interval
                .saturating_mul(2)
                .min(self.cfg.discovery.search_max)
                .max(Duration::from_millis(1));
            let radius = self.cfg.discovery.radius;
            self.push(Dest::Group, vec![0x03, SEARCHGW, radius], None);
        }
    }

    /// The next queued output, written into `buf`. Drain until `None` after every input.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while let Some((dest, bytes)) = self.queue.pop_front() {
            let Some(slot) = buf.get_mut(..bytes.len()) else {
                let port = match &dest {
                    Dest::Radio(p, _) => Some(*p),
                    _ => None,
                };
                self.drop_for(DropReason::TooLarge, port);
                continue;
            };
            slot.copy_from_slice(&bytes);
            let len = bytes.len();
            return Some(match dest {
                Dest::Gateway(to) => Transmit::ToGateway { to, len },
                Dest::Group => Transmit::ToDiscoveryGroup { len },
                Dest::Radio(port, to) => Transmit::ToRadio { port, to, len },
            });
        }
        None
    }

    /// The next event. Drain until `None` after every input.
    pub fn poll_event(&mut self) -> Option<ForwarderEvent> {
        self.events.pop_front()
    }

    /// When the core next wants [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let search = self
            .search
            .filter(|_| self.gateway.is_none())
            .map(|s| s.next);
        let lost = self
            .gateway
            .and_then(|g| g.lifetime.map(|l| g.last_heard.saturating_add(l)));
        [self.nodes.next_expiry(), search, lost]
            .into_iter()
            .flatten()
            .min()
    }

    fn unwrap_encapsulated(&mut self, bytes: &[u8]) {
        let encap = match Encapsulated::decode(bytes) {
            Ok(e) => e,
            Err(_) => return self.drop_for(DropReason::MalformedEncapsulation, None),
        };
        match message_type(encap.inner) {
            Some(ENCAPSULATED) | None => {
                return self.drop_for(DropReason::MalformedEncapsulation, None);
            }
            Some(_) => {}
        }
        if encap.wnid.is_empty() {
            return self.broadcast(encap.radius, encap.inner);
        }
        let Some(entry) = self.nodes.get(encap.wnid) else {
            return self.drop_for(DropReason::UnknownNode, None);
        };
        let dest = Dest::Radio(entry.port, RadioDest::Unicast(entry.addr.clone()));
        let port = entry.port;
        self.push(dest, encap.inner.to_vec(), Some(port));
    }

    fn broadcast(&mut self, radius: u8, message: &[u8]) {
        for i in 0..self.cfg.ports.len() {
            let port = PortId(u8::try_from(i).unwrap_or(u8::MAX));
            let dest = Dest::Radio(
                port,
                RadioDest::Broadcast {
                    radius: radius & 0x03,
                },
            );
            self.push(dest, message.to_vec(), Some(port));
        }
    }

    fn relay(&mut self, now: Instant, msg_type: u8, bytes: &[u8]) {
        if !self.cfg.relay_advertise {
            return;
        }
        if let Some((at, last)) = &self.last_relay
            && last.as_slice() == bytes
            && now < at.saturating_add(RELAY_DEDUPE)
        {
            return;
        }
        self.last_relay = Some((now, bytes.to_vec()));
        self.broadcast(self.cfg.relay_radius, bytes);
        self.events.push_back(ForwarderEvent::Relayed { msg_type });
    }

    fn adopt(&mut self, now: Instant, from: SocketAddr, lifetime: Option<Duration>) {
        if self.cfg.gateway.is_some() {
            return;
        }
        match &mut self.gateway {
            Some(g) if g.addr == from => {
                g.last_heard = now;
                if lifetime.is_some() {
                    g.lifetime = lifetime;
                }
            }
            Some(_) => {}
            None => {
                self.gateway = Some(GatewayState {
                    addr: from,
                    last_heard: now,
                    lifetime,
                });
                self.events
                    .push_back(ForwarderEvent::GatewayFound { addr: from });
            }
        }
    }

    fn push(&mut self, dest: Dest, bytes: Vec<u8>, port: Option<PortId>) {
        if self.queue.len() >= self.cfg.max_queue.max(1) {
            return self.drop_for(DropReason::QueueFull, port);
        }
        self.queue.push_back((dest, bytes));
    }

    fn drop_for(&mut self, reason: DropReason, port: Option<PortId>) {
        self.events
            .push_back(ForwarderEvent::Dropped { reason, port });
    }
}
