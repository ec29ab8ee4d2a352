//! The sans-IO gateway core: sessions, topic registries, retransmission and keep-alive timers.
//! No sockets, no tokio, no clock: time comes in as an argument, randomness from a seed.
//!
//! # Calling contract
//! [`Gateway`] has three kinds of inputs — [`Gateway::handle_datagram`],
//! [`Gateway::handle_upstream`], [`Gateway::handle_timeout`] (and [`Gateway::handle_shutdown`]) —
//! each taking `now`. After **every** input the caller drains the outputs completely, in this
//! order: [`Gateway::poll_transmit`] (datagrams), [`Gateway::poll_upstream`] (commands for the
//! upstream connector), [`Gateway::poll_event`] (logs, metrics) and, with a state store,
//! [`Gateway::poll_store`] (records to write or delete). Then it asks
//! [`Gateway::poll_timeout`] when to call `handle_timeout` next. Spurious `handle_timeout` calls
//! are harmless. The same inputs in the same order give the same outputs.
//!
//! With a state store, [`Gateway::restore`] hands the stored sessions back before the first
//! input.
//!
//! Peer misbehaviour never makes an input fail: it becomes a reply the protocol prescribes, a
//! [`GatewayEvent::Dropped`], or both.

pub mod addr;
pub mod config;
mod connect;
mod custody;
mod discovery;
mod dispatch;
mod downlink;
pub mod event;
mod flow;
mod gateway_link;
mod link_events;
mod outbox;
mod outputs;
mod persist;
mod policy;
mod qos_minus1;
mod rate_limit;
mod session;
mod sleep;
pub mod stats;
pub mod store;
mod subscribe;
#[cfg(test)]
mod tests;
mod topic_ids;
pub mod topics;
mod uplink;
pub mod upstream;
mod will;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use sn_codec::Instant;

use self::addr::PeerAddr;
use self::config::GatewayConfig;
use self::event::{GatewayEvent, Transmit};
use self::outputs::Outputs;
pub(crate) use self::session::state_names;
use self::session::{Session, SessionId, SessionTable, State};
use self::stats::{Gauges, Stats};
use self::upstream::seam::{Routed, Seam};
use self::upstream::{LinkId, Token, UpstreamCmd, UpstreamEvent};

/// A client as shown by `clients` listings and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// MQTT-SN ClientId.
    pub client_id: String,
    /// Current address.
    pub peer: PeerAddr,
    /// `connecting`, `active`, `asleep`, `awake`, `disconnected` or `lost`.
    pub state: &'static str,
    /// When the client last sent something.
    pub last_seen: Instant,
    /// Messages received from the client.
    pub rx: u64,
    /// Messages sent to the client.
    pub tx: u64,
    /// Messages waiting for it (sleep buffer or downlink queue).
    pub queued: usize,
}

/// The MQTT-SN gateway state machine. See the module documentation for the calling contract.
#[derive(Debug)]
pub struct Gateway {
    cfg: GatewayConfig,
    /// The sessions, their indexes and timers.
    table: SessionTable,
    /// The upstream mode the sessions reach the broker through.
    seam: Box<dyn Seam>,
    /// Scratch space for routing one connector event (kept to avoid an allocation per event).
    routed: Vec<Routed>,
    /// Datagrams, upstream commands, events and counters produced by the inputs.
    out: Outputs,
    /// The gateway's own link (QoS −1) is connected.
    gateway_link_up: bool,
    /// Last unsolicited DISCONNECT per address (rate limit).
    disconnect_sent: BTreeMap<SocketAddr, Instant>,
    /// New sessions of unregistered clients per source IP address.
    new_sessions_by_address: rate_limit::RateLimiter<IpAddr>,
    /// New sessions of unregistered clients per forwarder IP address.
    new_sessions_by_forwarder: rate_limit::RateLimiter<IpAddr>,
    /// Refusals (CONNACK with an error, DISCONNECT to a PINGREQ) per address, so that a flood
    /// of bad requests is not answered datagram for datagram.
    refusals: rate_limit::RateLimiter<SocketAddr>,
    shut_down: bool,
    discovery: discovery::Discovery,
    /// End of the pairing window.
    pairing_until: Option<Instant>,
    /// Client publishes in the gateway's custody (`[storage] custody = "gateway"`).
    custody: custody::Custody,
    /// Upstream commands waiting for state-store commits (broker acks, custody PUBRELs).
    store_waits: persist::StoreWaits,
}

impl Gateway {
    /// A gateway with no sessions. Queues the `Open` of the gateway's own upstream link.
    /// `seed` drives the only randomness (the GWINFO answer delay); tests pass a fixed one.
    pub fn new(cfg: GatewayConfig, _now: Instant, seed: u64) -> Self {
        let seam: Box<dyn Seam> = match cfg.upstream.mode {
            config::UpstreamMode::Transparent => {
                Box::new(upstream::transparent::Transparent::new())
            }
            config::UpstreamMode::Aggregating => {
                Box::new(upstream::aggregating::Aggregating::default())
            }
        };
        let out = Outputs::new(cfg.max_packet_size);
        let mut table = SessionTable::default();
        if cfg.persist_sessions {
            table.track_changes();
        }
        let mut gw = Gateway {
            cfg,
            table,
            seam,
            routed: Vec::new(),
            out,
            gateway_link_up: false,
            disconnect_sent: BTreeMap::new(),
            new_sessions_by_address: rate_limit::RateLimiter::default(),
            new_sessions_by_forwarder: rate_limit::RateLimiter::default(),
            refusals: rate_limit::RateLimiter::default(),
            shut_down: false,
            discovery: discovery::Discovery::new(seed),
            pairing_until: None,
            custody: custody::Custody::default(),
            store_waits: persist::StoreWaits::default(),
        };
        gw.open_gateway_link();
        gw
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &GatewayConfig {
        &self.cfg
    }

    /// A datagram arrived on a listener.
    pub fn handle_datagram(&mut self, now: Instant, from: PeerAddr, bytes: &[u8]) {
        if self.shut_down {
            return;
        }
        self.dispatch(now, from, bytes);
        self.persist_changes();
    }

    /// The upstream connector reported something.
    pub fn handle_upstream(&mut self, now: Instant, event: UpstreamEvent) {
        match &event {
            UpstreamEvent::LinkUp { .. } => self.out.stats.upstream_connects += 1,
            UpstreamEvent::LinkDown { .. } => self.out.stats.upstream_disconnects += 1,
            _ => {}
        }
        let mut routed = std::mem::take(&mut self.routed);
        self.seam
            .route(event, self.gateway_link_up, &mut self.out, &mut routed);
        for r in routed.drain(..) {
            match r {
                Routed::Gateway(e) => self.gateway_link_event(now, e),
                Routed::Link(link, e) => self.link_event(now, link, e),
                Routed::Session(sid, e) => self.session_link_event(now, sid, e),
            }
        }
        self.routed = routed;
        self.persist_changes();
    }

    /// Time has reached (or passed) [`Gateway::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(sid) = self.table.pop_due(now) {
            self.session_timeout(now, sid);
            self.reschedule(sid);
        }
        if self.discovery.next_deadline().is_some_and(|at| at <= now) {
            self.discovery_timeout(now);
        }
        self.prune_disconnect_limits(now);
        if self
            .custody
            .next_deadline(self.cfg.custody.max_age)
            .is_some_and(|at| at <= now)
        {
            self.expire_custody(now);
        }
        self.persist_changes();
    }

    /// Graceful shutdown: every upstream link is closed with DISCONNECT, so no Will is
    /// published for clients that were fine. Inputs after this are ignored.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        self.shut_down = true;
        for at in self.table.shut_down() {
            self.seam.close(at, true, &mut self.out);
        }
        // A graceful DISCONNECT publishes no Will: say `offline` first.
        if self.gateway_link_up {
            self.publish_status(b"offline");
        }
        self.out.command(UpstreamCmd::Close {
            link: LinkId::GATEWAY,
            graceful: true,
        });
        self.discovery = discovery::Discovery::new(0);
    }

    /// The next datagram to send, written into `buf` (64 KiB always suffices). A datagram that
    /// does not fit `buf` is skipped.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        self.out.next_datagram(buf)
    }

    /// The next command for the upstream connector.
    pub fn poll_upstream(&mut self) -> Option<UpstreamCmd> {
        self.out.next_command()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<GatewayEvent> {
        self.out.next_event()
    }

    /// When [`Gateway::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self.table.next_deadline();
        let custody = self.custody.next_deadline(self.cfg.custody.max_age);
        [sessions, self.discovery.next_deadline(), custody]
            .into_iter()
            .flatten()
            .min()
    }

    /// The clients the gateway knows, in ClientId order.
    pub fn clients(&self) -> Vec<ClientInfo> {
        self.table
            .in_client_order()
            .map(|s| ClientInfo {
                client_id: s.client_id().to_owned(),
                peer: s.peer().clone(),
                state: s.state.name(),
                last_seen: s.last_rx,
                rx: s.rx_count,
                tx: s.tx_count,
                queued: s.queue.len(),
            })
            .collect()
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.out.stats
    }

    /// Current gauges at `now` (one pass over the sessions: call it on a timer, not per
    /// datagram).
    pub fn gauges(&self, now: Instant) -> Gauges {
        let mut g = Gauges::default();
        (g.custody_messages, g.custody_bytes, g.custody_oldest) = self.custody.gauges(now);
        for (_, s) in self.table.iter() {
            *g.clients.entry(s.state.name()).or_default() += 1;
            let queued = s.queue.len() as u64 + u64::from(s.inflight.is_some());
            match s.state {
                State::Asleep => g.sleep_buffered += queued,
                _ => g.downlink_queued += queued,
            }
            match (s.upstream(), s.link_up) {
                (Some(_), true) => g.links_up += 1,
                (Some(_), false) => g.links_down += 1,
                _ => {}
            }
        }
        g
    }

    /// True while the gateway's own upstream link is connected.
    pub fn upstream_up(&self) -> bool {
        self.gateway_link_up
    }

    // ----- plumbing shared by the flow modules -----

    fn new_token(&mut self) -> Token {
        self.out.token()
    }

    fn event(&mut self, e: GatewayEvent) {
        self.out.event(e);
    }

    /// Files the session under its earliest deadline.
    fn reschedule(&mut self, sid: SessionId) {
        self.table.reschedule(sid, &self.cfg);
    }

    /// Removes a session and every index pointing at it.
    fn remove_session(&mut self, sid: SessionId) -> Option<Session> {
        self.table.remove(sid)
    }

    /// Checks the session table's indexes and timers (property tests, after every step).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        self.table.check(&self.cfg)
    }

    fn prune_disconnect_limits(&mut self, now: Instant) {
        let t_retry = self.cfg.t_retry;
        self.disconnect_sent
            .retain(|_, at| now < at.saturating_add(t_retry));
        let limits = &self.cfg.limits;
        self.new_sessions_by_address
            .prune(limits.new_sessions_per_address, now);
        self.new_sessions_by_forwarder
            .prune(limits.new_sessions_per_forwarder, now);
        self.refusals.prune(policy::REFUSALS, now);
    }
}
