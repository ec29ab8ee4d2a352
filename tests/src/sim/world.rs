//! [`World`]: the deterministic simulation. One event queue ordered by (simulated time,
//! sequence number) drives every node through its sans-IO contract:
//!
//! - the gateway core ([`Gateway`]): inputs, then `poll_transmit`, `poll_upstream`,
//!   `poll_event`, `poll_store` drained, then `poll_timeout`;
//! - the forwarder core ([`Forwarder`]), when some motes sit behind it on a radio port;
//! - the motes ([`SimMote`], the `firmware-demo` client), talking to the gateway directly over
//!   UDP or to the forwarder over the radio;
//! - the broker and connector ([`SimBroker`]) at the `UpstreamCmd` / `UpstreamEvent` level.
//!
//! Datagrams cross [`LinkModel`]s that lose, duplicate, delay and reorder them with the
//! world's seeded PRNG ([`SimRng`]); upstream commands and events are handed over at the same
//! instant (the connector lives in the gateway's process; the broker's TCP latency is inside
//! [`SimBroker`]). Nothing reads a clock or an unseeded source, and nothing iterates a hash
//! map, so a seed always gives the same [`Transcript`].
//!
//! Admission limits: every mote's ClientId is put in the gateway's `clients.registry` (the
//! admission policy stays open), so the limits on new sessions of unregistered clients per
//! address and per forwarder, and the idle timeout of silent unregistered sessions, never
//! apply to simulated motes; direct motes also have distinct addresses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use firmware_demo::client::{ClientConfig, Destination as MoteDestination, Timers};
use forwarder::core::{
    Forwarder, ForwarderConfig, NodeAddr, PortId, RadioDest, Transmit as FwdTransmit, WnidScheme,
};
use gateway::core::Gateway;
use gateway::core::addr::{ListenerId, PeerAddr};
use gateway::core::config::{ClientEntry, GatewayConfig};
use gateway::core::event::{Destination, GatewayEvent};
use gateway::core::upstream::{LinkId, UpstreamCmd, UpstreamEvent};
use sn_codec::{Encapsulated, Instant, Packet};

use super::broker::{BrokerConfig, SimBroker};
use super::mote::{MotePlan, SimMote};
use super::network::{Direction, LinkModel, LinkStats, PPM};
use super::transcript::Transcript;

/// The gateway's UDP address.
pub const GATEWAY_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1884));
/// The forwarder's UDP address (towards the gateway).
pub const FORWARDER_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 1885));
/// The address radio motes know their gateway by: the forwarder's radio, which the client
/// type names with a socket address.
pub const RADIO_GATEWAY: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 3), 1));

/// A seeded PRNG (splitmix64): small, fast, and the same sequence on every platform.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi` (`lo` when `hi <= lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        match hi.checked_sub(lo).and_then(|w| w.checked_add(1)) {
            Some(span) if span > 1 => lo + self.next_u64() % span,
            _ => lo,
        }
    }

    /// True with probability `ppm` parts per million.
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.next_u64() % u64::from(PPM) < u64::from(ppm)
    }

    /// An independent generator derived from this one.
    pub fn fork(&mut self) -> SimRng {
        SimRng::new(self.next_u64())
    }
}

/// How a mote reaches the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// UDP straight to the gateway, from an address of its own.
    Direct,
    /// Over the radio to the forwarder, which encapsulates for the gateway.
    Forwarder,
}

/// One mote of a world.
#[derive(Debug, Clone)]
pub struct MoteSpec {
    /// ClientId.
    pub client_id: String,
    /// How it reaches the gateway.
    pub via: Via,
    /// What its application does.
    pub plan: MotePlan,
    /// CONNECT keep-alive, seconds.
    pub keep_alive: u16,
    /// CleanSession of its CONNECTs (a resume from sleep is always 0).
    pub clean_session: bool,
    /// Protocol timers.
    pub timers: Timers,
}

impl MoteSpec {
    /// Keep-alive 60 s, clean session, T_RETRY 5 s, N_RETRY 10 (a lossy network needs more
    /// than the spec's 3 to make a loss of the gateway rare), T_WAIT 20 s.
    pub fn new(client_id: &str, via: Via, plan: MotePlan) -> Self {
        MoteSpec {
            client_id: client_id.to_owned(),
            via,
            plan,
            keep_alive: 60,
            clean_session: true,
            timers: Timers {
                t_retry: Duration::from_secs(5),
                n_retry: 10,
                t_wait: Duration::from_secs(20),
                ..Timers::default()
            },
        }
    }
}

/// Everything a world is made of.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// Seeds the network, the motes and the gateway.
    pub seed: u64,
    /// The gateway core's configuration (the motes' ClientIds are added to its registry).
    pub gateway: GatewayConfig,
    /// The broker's timing.
    pub broker: BrokerConfig,
    /// Direct motes ↔ gateway.
    pub direct: LinkModel,
    /// Radio motes ↔ forwarder.
    pub radio: LinkModel,
    /// Forwarder ↔ gateway.
    pub backhaul: LinkModel,
    /// The forwarder's configuration (its ports and gateway are set by the world).
    pub forwarder: ForwarderConfig,
    /// The motes.
    pub motes: Vec<MoteSpec>,
}

impl WorldConfig {
    /// Default gateway and forwarder, perfect 5 ms links, no motes.
    pub fn new(seed: u64) -> Self {
        let perfect = LinkModel::symmetric(Direction::perfect(5));
        WorldConfig {
            seed,
            gateway: GatewayConfig::default(),
            broker: BrokerConfig::default(),
            direct: perfect,
            radio: perfect,
            backhaul: perfect,
            forwarder: ForwarderConfig::default(),
            motes: Vec::new(),
        }
    }
}

/// A node of the world, for timers and transcript lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NodeId {
    Gateway,
    Forwarder,
    Broker,
    Mote(usize),
}

/// Something that happens at a simulated instant.
#[derive(Debug)]
enum Action {
    /// A datagram reaches the gateway's listener.
    GatewayDatagram { from: SocketAddr, bytes: Vec<u8> },
    /// The connector reports to the gateway core.
    GatewayUpstream(UpstreamEvent),
    /// The gateway core's command reaches the connector.
    BrokerCommand(UpstreamCmd),
    /// A datagram from the gateway reaches the forwarder's socket.
    ForwarderDatagram { bytes: Vec<u8> },
    /// A radio frame from a mote reaches the forwarder.
    ForwarderRadio { mote: usize, bytes: Vec<u8> },
    /// A datagram reaches a mote.
    MoteDatagram {
        mote: usize,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    /// A node's timer.
    Timer(NodeId),
}

/// One hop direction of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hop {
    /// Direct mote → gateway.
    DirectUp,
    /// Gateway → direct mote.
    DirectDown,
    /// Radio mote → forwarder.
    RadioUp,
    /// Forwarder → radio mote.
    RadioDown,
    /// Forwarder → gateway.
    BackhaulUp,
    /// Gateway → forwarder.
    BackhaulDown,
}

/// Where one mote is on the network.
#[derive(Debug, Clone)]
struct Place {
    via: Via,
    /// Its UDP address (direct motes).
    udp: SocketAddr,
    /// Its radio link address (radio motes).
    link: Vec<u8>,
}

/// The simulation; see the module documentation.
#[derive(Debug)]
pub struct World {
    now: u64,
    rng: SimRng,
    queue: BTreeMap<(u64, u64), Action>,
    next_seq: u64,
    timers: BTreeMap<NodeId, u64>,
    /// Timer firings at the same instant, per node (a livelock guard).
    same_instant: BTreeMap<NodeId, (u64, u32)>,
    gateway: Gateway,
    forwarder: Option<Forwarder>,
    broker: SimBroker,
    motes: Vec<SimMote>,
    places: Vec<Place>,
    by_udp: BTreeMap<SocketAddr, usize>,
    by_link: BTreeMap<Vec<u8>, usize>,
    direct: LinkModel,
    radio: LinkModel,
    backhaul: LinkModel,
    hops: BTreeMap<Hop, LinkStats>,
    transcript: Transcript,
    gateway_events: Vec<(u64, GatewayEvent)>,
    anomalies: Vec<String>,
    backend_seen: usize,
    actions: u64,
    buf: Vec<u8>,
}

/// The lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A datagram as one transcript field: the decoded message and every octet.
fn describe(bytes: &[u8]) -> String {
    let decoded = match bytes {
        [len, 0xFE, ..] if *len != 0x01 => match Encapsulated::decode(bytes) {
            Ok(e) => match e.decode_inner() {
                Ok(p) => format!("ENCAP wnid={} {p}", hex(e.wnid)),
                Err(err) => format!("ENCAP wnid={} <{err}>", hex(e.wnid)),
            },
            Err(err) => format!("<{err}>"),
        },
        _ => match Packet::decode(bytes) {
            Ok(p) => p.to_string(),
            Err(err) => format!("<{err}>"),
        },
    };
    format!("{decoded} [{}]", hex(bytes))
}

impl World {
    /// Builds the world at time 0: registers every mote's ClientId at the gateway, creates the
    /// gateway (its own upstream link opens at once), the forwarder if a mote needs it, and the
    /// motes, each starting at a random time within its plan's start window.
    ///
    /// # Errors
    /// A mote configuration the client rejects.
    pub fn new(mut cfg: WorldConfig) -> Result<Self, String> {
        let mut rng = SimRng::new(cfg.seed);
        for m in &cfg.motes {
            cfg.gateway
                .clients
                .registry
                .insert(m.client_id.clone(), ClientEntry::default());
        }
        let gateway = Gateway::new(cfg.gateway.clone(), Instant::ZERO, rng.next_u64());
        let radio_motes = cfg.motes.iter().any(|m| m.via == Via::Forwarder);
        let forwarder = radio_motes.then(|| {
            let mut f = cfg.forwarder.clone();
            f.ports = vec![WnidScheme::LinkAddress];
            f.gateway = Some(GATEWAY_ADDR);
            Forwarder::new(f, Instant::ZERO)
        });
        let mut motes = Vec::with_capacity(cfg.motes.len());
        let mut places = Vec::with_capacity(cfg.motes.len());
        let mut by_udp = BTreeMap::new();
        let mut by_link = BTreeMap::new();
        for (i, spec) in cfg.motes.iter().enumerate() {
            let [_, _, hi, lo] = u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes();
            let udp = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 1, hi, lo), 20_000));
            let link = vec![0x52, hi, lo];
            let mut c = ClientConfig::<SocketAddr, 64>::new(&spec.client_id)
                .map_err(|e| format!("mote {}: {e}", spec.client_id))?;
            let gw = match spec.via {
                Via::Direct => GATEWAY_ADDR,
                Via::Forwarder => RADIO_GATEWAY,
            };
            c.gateway = Some((gw, cfg.gateway.gateway_id));
            c.keep_alive = spec.keep_alive;
            c.clean_session = spec.clean_session;
            c.timers = spec.timers;
            motes.push(SimMote::new(c, spec.plan.clone(), rng.fork())?);
            match spec.via {
                Via::Direct => by_udp.insert(udp, i),
                Via::Forwarder => by_link.insert(link.clone(), i),
            };
            places.push(Place {
                via: spec.via,
                udp,
                link,
            });
        }
        let mut w = World {
            now: 0,
            rng,
            queue: BTreeMap::new(),
            next_seq: 0,
            timers: BTreeMap::new(),
            same_instant: BTreeMap::new(),
            gateway,
            forwarder,
            broker: SimBroker::new(cfg.broker),
            motes,
            places,
            by_udp,
            by_link,
            direct: cfg.direct,
            radio: cfg.radio,
            backhaul: cfg.backhaul,
            hops: BTreeMap::new(),
            transcript: Transcript::default(),
            gateway_events: Vec::new(),
            anomalies: Vec::new(),
            backend_seen: 0,
            actions: 0,
            buf: vec![0; 65_536],
        };
        w.drain_gateway();
        if w.forwarder.is_some() {
            w.drain_forwarder();
        }
        for i in 0..w.motes.len() {
            let at = w.motes[i].poll_timeout();
            w.arm(NodeId::Mote(i), at);
        }
        Ok(w)
    }

    // ----- observation -----

    /// Simulated time, in milliseconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The motes, in configuration order.
    pub fn motes(&self) -> &[SimMote] {
        &self.motes
    }

    /// The gateway core.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The forwarder core, if the world has one.
    pub fn forwarder(&self) -> Option<&Forwarder> {
        self.forwarder.as_ref()
    }

    /// The broker.
    pub fn broker(&self) -> &SimBroker {
        &self.broker
    }

    /// Everything that happened, a line each.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The gateway core's events with their times.
    pub fn gateway_events(&self) -> &[(u64, GatewayEvent)] {
        &self.gateway_events
    }

    /// Oddities of the run that are not the product's doing to judge (e.g. a datagram for an
    /// address nobody has, a timer that keeps firing at one instant).
    pub fn anomalies(&self) -> &[String] {
        &self.anomalies
    }

    /// What each network hop did.
    pub fn hop_stats(&self) -> &BTreeMap<Hop, LinkStats> {
        &self.hops
    }

    /// Actions processed so far.
    pub fn actions(&self) -> u64 {
        self.actions
    }

    // ----- scenario steps -----

    /// The backend application subscribes to `filter` at `qos`.
    pub fn backend_subscribe(&mut self, filter: &str, qos: u8) {
        self.broker.backend_subscribe(filter, qos);
        self.transcript.push(
            self.now,
            "backend",
            &format!("subscribe {filter} qos={qos}"),
        );
    }

    /// The backend application publishes now.
    pub fn backend_publish(&mut self, topic: &str, payload: &[u8], qos: u8, retain: bool) {
        self.transcript.push(
            self.now,
            "backend",
            &format!(
                "publish {topic} qos={qos} retain={retain} {:?}",
                String::from_utf8_lossy(payload)
            ),
        );
        self.broker
            .backend_publish(self.now, topic, payload, qos, retain);
        self.drain_broker();
    }

    /// Breaks the broker connection of `link` now; it reconnects `down_for_ms` later.
    pub fn bounce(&mut self, link: LinkId, down_for_ms: u64) {
        self.transcript.push(
            self.now,
            "broker",
            &format!("bounce {link} for {down_for_ms} ms"),
        );
        self.broker.bounce(self.now, link, down_for_ms);
        self.drain_broker();
    }

    // ----- running -----

    /// Processes everything due up to `t` (milliseconds); time is then `t`.
    pub fn run_until(&mut self, t: u64) {
        while self
            .queue
            .first_key_value()
            .is_some_and(|((at, _), _)| *at <= t)
        {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Runs while `busy` says so, at most until `limit` (milliseconds). Returns true when
    /// `busy` turned false before the limit.
    pub fn run_while(&mut self, limit: u64, mut busy: impl FnMut(&World) -> bool) -> bool {
        while busy(self) {
            match self.queue.first_key_value() {
                Some(((at, _), _)) if *at <= limit => self.step(),
                _ => {
                    self.now = self.now.max(limit);
                    return !busy(self);
                }
            }
        }
        true
    }

    fn schedule(&mut self, at: u64, action: Action) {
        self.queue.insert((at, self.next_seq), action);
        self.next_seq += 1;
    }

    fn arm(&mut self, node: NodeId, at: Option<u64>) {
        let Some(at) = at else {
            self.timers.remove(&node);
            return;
        };
        let mut at = at.max(self.now);
        if at == self.now {
            // A node that asks for its timer at the very instant it just handled, again and
            // again, would stall the world: after 100 times it waits a millisecond.
            let entry = self.same_instant.entry(node).or_insert((self.now, 0));
            if entry.0 == self.now {
                entry.1 += 1;
            } else {
                *entry = (self.now, 1);
            }
            if entry.1 > 100 {
                self.anomalies
                    .push(format!("t={} {node:?} timer keeps firing", self.now));
                at += 1;
            }
        }
        if self.timers.get(&node) != Some(&at) {
            self.timers.insert(node, at);
            self.schedule(at, Action::Timer(node));
        }
    }

    fn step(&mut self) {
        let Some(((at, _), action)) = self.queue.pop_first() else {
            return;
        };
        self.now = self.now.max(at);
        self.actions += 1;
        match action {
            Action::GatewayDatagram { from, bytes } => {
                self.transcript
                    .push(self.now, "gw", &format!("<- {from} {}", describe(&bytes)));
                let peer = PeerAddr::Udp {
                    listener: ListenerId(0),
                    addr: from,
                };
                self.gateway
                    .handle_datagram(Instant::from_millis(self.now), peer, &bytes);
                self.drain_gateway();
            }
            Action::GatewayUpstream(e) => {
                self.transcript.push(self.now, "gw", &format!("<- {e:?}"));
                self.gateway
                    .handle_upstream(Instant::from_millis(self.now), e);
                self.drain_gateway();
            }
            Action::BrokerCommand(cmd) => {
                self.transcript
                    .push(self.now, "broker", &format!("<- {cmd:?}"));
                self.broker.command(self.now, cmd);
                self.drain_broker();
            }
            Action::ForwarderDatagram { bytes } => {
                self.transcript
                    .push(self.now, "fwd", &format!("<- gw {}", describe(&bytes)));
                if let Some(f) = &mut self.forwarder {
                    f.handle_gateway_datagram(Instant::from_millis(self.now), GATEWAY_ADDR, &bytes);
                }
                self.drain_forwarder();
            }
            Action::ForwarderRadio { mote, bytes } => {
                let who = self.motes.get(mote).map_or("?", |m| m.id()).to_owned();
                self.transcript
                    .push(self.now, "fwd", &format!("<- {who} {}", describe(&bytes)));
                let node = NodeAddr::Link(self.places[mote].link.clone());
                if let Some(f) = &mut self.forwarder {
                    f.handle_radio_frame(Instant::from_millis(self.now), PortId(0), &node, &bytes);
                }
                self.drain_forwarder();
            }
            Action::MoteDatagram { mote, from, bytes } => {
                let who = self.motes[mote].id().to_owned();
                self.transcript
                    .push(self.now, &who, &format!("<- {from} {}", describe(&bytes)));
                self.motes[mote].handle_datagram(self.now, from, &bytes);
                self.drain_mote(mote);
            }
            Action::Timer(node) => {
                if self.timers.get(&node) != Some(&at) {
                    return; // superseded
                }
                self.timers.remove(&node);
                match node {
                    NodeId::Gateway => {
                        self.gateway.handle_timeout(Instant::from_millis(self.now));
                        self.drain_gateway();
                    }
                    NodeId::Forwarder => {
                        if let Some(f) = &mut self.forwarder {
                            f.handle_timeout(Instant::from_millis(self.now));
                        }
                        self.drain_forwarder();
                    }
                    NodeId::Broker => {
                        self.broker.handle_timeout(self.now);
                        self.drain_broker();
                    }
                    NodeId::Mote(i) => {
                        self.motes[i].handle_timeout(self.now);
                        self.drain_mote(i);
                    }
                }
            }
        }
    }

    /// Hands `bytes` to a network hop; every copy that survives becomes `deliver(bytes)` after
    /// its delay.
    fn send(&mut self, hop: Hop, who: &str, bytes: Vec<u8>, deliver: impl Fn(Vec<u8>) -> Action) {
        let dir = match hop {
            Hop::DirectUp => self.direct.up,
            Hop::DirectDown => self.direct.down,
            Hop::RadioUp => self.radio.up,
            Hop::RadioDown => self.radio.down,
            Hop::BackhaulUp => self.backhaul.up,
            Hop::BackhaulDown => self.backhaul.down,
        };
        let copies = dir.fate(&mut self.rng);
        self.hops.entry(hop).or_default().count(copies.len());
        let fate = match copies.len() {
            0 => "lost".to_owned(),
            1 => format!("+{}ms", copies[0]),
            _ => format!(
                "+{}ms dup +{}ms",
                copies[0],
                copies.get(1).copied().unwrap_or(0)
            ),
        };
        self.transcript.push(
            self.now,
            who,
            &format!("-> {hop:?} {fate} {}", describe(&bytes)),
        );
        for delay in copies {
            self.schedule(self.now + delay, deliver(bytes.clone()));
        }
    }

    fn drain_gateway(&mut self) {
        while let Some(t) = self.gateway.poll_transmit(&mut self.buf) {
            let bytes = self.buf[..t.len].to_vec();
            match t.to {
                Destination::Unicast { addr, .. } if addr == FORWARDER_ADDR => {
                    self.send(Hop::BackhaulDown, "gw", bytes, |bytes| {
                        Action::ForwarderDatagram { bytes }
                    });
                }
                Destination::Unicast { addr, .. } => match self.by_udp.get(&addr).copied() {
                    Some(mote) => {
                        self.send(Hop::DirectDown, "gw", bytes, |bytes| Action::MoteDatagram {
                            mote,
                            from: GATEWAY_ADDR,
                            bytes,
                        })
                    }
                    None => self.anomalies.push(format!(
                        "t={} gateway sent to {addr}, which nobody has: {}",
                        self.now,
                        describe(&bytes)
                    )),
                },
                Destination::Multicast { .. } => self.transcript.push(
                    self.now,
                    "gw",
                    &format!("-> multicast (not simulated) {}", describe(&bytes)),
                ),
            }
        }
        while let Some(cmd) = self.gateway.poll_upstream() {
            self.schedule(self.now, Action::BrokerCommand(cmd));
        }
        while let Some(e) = self.gateway.poll_event() {
            self.transcript
                .push(self.now, "gw", &format!("event {e:?}"));
            self.gateway_events.push((self.now, e));
        }
        // The simulated site has no state database: what the gateway would store is dropped
        // (a restart is not simulated).
        while self.gateway.poll_store().is_some() {}
        let at = self.gateway.poll_timeout().map(Instant::as_millis);
        self.arm(NodeId::Gateway, at);
    }

    fn drain_broker(&mut self) {
        while let Some(e) = self.broker.poll_event() {
            self.schedule(self.now, Action::GatewayUpstream(e));
        }
        let received = self.broker.backend_received();
        let new: Vec<String> = received[self.backend_seen..]
            .iter()
            .map(|d| {
                format!(
                    "received {} qos={} {:?}",
                    d.topic,
                    d.qos,
                    String::from_utf8_lossy(&d.payload)
                )
            })
            .collect();
        self.backend_seen = received.len();
        for line in new {
            self.transcript.push(self.now, "backend", &line);
        }
        let at = self.broker.poll_timeout();
        self.arm(NodeId::Broker, at);
    }

    fn drain_forwarder(&mut self) {
        let Some(f) = self.forwarder.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(t) = f.poll_transmit(&mut self.buf) {
            let len = match &t {
                FwdTransmit::ToGateway { len, .. }
                | FwdTransmit::ToDiscoveryGroup { len }
                | FwdTransmit::ToRadio { len, .. } => *len,
            };
            out.push((t, self.buf[..len].to_vec()));
        }
        let mut events = Vec::new();
        while let Some(e) = f.poll_event() {
            events.push(e);
        }
        let at = f.poll_timeout().map(Instant::as_millis);
        for (t, bytes) in out {
            match t {
                FwdTransmit::ToGateway { .. } => {
                    self.send(Hop::BackhaulUp, "fwd", bytes, |bytes| {
                        Action::GatewayDatagram {
                            from: FORWARDER_ADDR,
                            bytes,
                        }
                    });
                }
                FwdTransmit::ToDiscoveryGroup { .. } => self.transcript.push(
                    self.now,
                    "fwd",
                    &format!("-> discovery group (not simulated) {}", describe(&bytes)),
                ),
                FwdTransmit::ToRadio { to, .. } => {
                    let targets: Vec<usize> = match to {
                        RadioDest::Unicast(NodeAddr::Link(a)) => {
                            self.by_link.get(&a).copied().into_iter().collect()
                        }
                        RadioDest::Unicast(other) => {
                            self.anomalies.push(format!(
                                "t={} forwarder sent to {other}, which nobody has",
                                self.now
                            ));
                            Vec::new()
                        }
                        RadioDest::Broadcast { .. } => self.by_link.values().copied().collect(),
                    };
                    for mote in targets {
                        self.send(Hop::RadioDown, "fwd", bytes.clone(), |bytes| {
                            Action::MoteDatagram {
                                mote,
                                from: RADIO_GATEWAY,
                                bytes,
                            }
                        });
                    }
                }
            }
        }
        for e in events {
            self.transcript.push(self.now, "fwd", &format!("event {e}"));
        }
        self.arm(NodeId::Forwarder, at);
    }

    fn drain_mote(&mut self, i: usize) {
        let who = self.motes[i].id().to_owned();
        // Each round sends or reacts; a client that neither sends nor reacts is done. The
        // bound only guards against a client that claims to have something and never sends.
        for _ in 0..1_000 {
            while let Some(t) = self.motes[i].poll_transmit(self.now, &mut self.buf) {
                let bytes = self.buf[..t.len].to_vec();
                match (t.to, self.places[i].via) {
                    (MoteDestination::Gateway(_), Via::Direct) => {
                        let from = self.places[i].udp;
                        self.send(Hop::DirectUp, &who, bytes, |bytes| {
                            Action::GatewayDatagram { from, bytes }
                        });
                    }
                    (MoteDestination::Gateway(_), Via::Forwarder) => {
                        self.send(Hop::RadioUp, &who, bytes, |bytes| Action::ForwarderRadio {
                            mote: i,
                            bytes,
                        });
                    }
                    (MoteDestination::Broadcast { .. }, _) => self.transcript.push(
                        self.now,
                        &who,
                        &format!("-> broadcast (not simulated) {}", describe(&bytes)),
                    ),
                }
            }
            let lines = self.motes[i].drain_events(self.now);
            let reacted = !lines.is_empty();
            for l in lines {
                self.transcript.push(self.now, &who, &format!("event {l}"));
            }
            if !reacted && !self.motes[i].has_transmit() {
                break;
            }
        }
        let at = self.motes[i].poll_timeout();
        self.arm(NodeId::Mote(i), at);
    }
}
