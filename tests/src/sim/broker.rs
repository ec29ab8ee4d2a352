//! An in-memory MQTT 3.1.1 broker together with the gateway's upstream connector, spoken to at
//! the level of the gateway core's [`UpstreamCmd`]s and [`UpstreamEvent`]s.
//!
//! [`SimBroker`] has two halves joined by a simulated TCP connection per link (a fixed one-way
//! latency, in order, nothing lost while the connection lives):
//!
//! - The **connector** honours the core's contract the way the production connector does:
//!   commands of a link go out in order; while a link is down they wait; a reconnect reports
//!   `LinkUp` with `session_present` and, in submission order, the `lost` tokens (QoS 1/2
//!   publishes sent but not acknowledged and those that were waiting when the connection broke,
//!   when the broker lost the session; sent but unanswered subscribes and unsubscribes after
//!   every reconnect); with a present session it re-sends unacknowledged publishes (with their
//!   packet ids) and PUBRELs; incoming QoS 2 duplicates are dropped; an `Open` for a ClientId
//!   whose previous link is still closing waits for that close. It also checks the core's side
//!   of the contract and records every breach in [`SimBroker::violations`] (an `Ack` out of
//!   receive order, a command for a link that is not open, a second `Open` of a link).
//! - The **broker** keeps a session per MQTT ClientId (clean or persistent), subscriptions with
//!   `+` and `#`, QoS 0/1/2 delivery with packet ids and in-flight state re-sent on a resumed
//!   session, retained messages, and Wills published when a connection dies without
//!   DISCONNECT. An incoming QoS 2 message is routed when its PUBLISH arrives and its packet id
//!   is remembered until PUBREL, so a re-sent PUBLISH is not routed again (unless the session
//!   was discarded meanwhile).
//!
//! A **backend subscriber** ([`SimBroker::backend_subscribe`]) stands for an application
//! attached to the broker directly: it receives every routed message that matches its filters
//! once, at the lower of the message's and the subscription's QoS, and
//! [`SimBroker::backend_received`] lists what it got. [`SimBroker::backend_publish`] is that
//! application publishing.
//!
//! [`SimBroker::bounce`] breaks the TCP connection of a link: whatever is on the wire is lost,
//! the broker sees a dead connection (Will, clean session discarded), the connector reports
//! `LinkDown` and reconnects after the given time.
//!
//! Driving: commands go in with [`SimBroker::command`]; [`SimBroker::poll_timeout`] says when
//! [`SimBroker::handle_timeout`] is due; [`SimBroker::poll_event`] yields the events for the
//! core, drained after every input. Everything is ordered by (time, sequence number): the
//! same inputs give the same outputs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use gateway::core::upstream::{
    DeliveryId, LinkId, MqttQos, Token, UpstreamCmd, UpstreamEvent, Will,
};

/// Timing of the broker and of its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerConfig {
    /// One-way latency of every connection, in milliseconds.
    pub latency_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig { latency_ms: 2 }
    }
}

/// A message the backend subscriber received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Simulated time of receipt, in milliseconds.
    pub at: u64,
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS of the delivery.
    pub qos: u8,
    /// Retain flag as delivered.
    pub retain: bool,
}

/// A message inside the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    topic: String,
    payload: Bytes,
    qos: u8,
    retain: bool,
}

/// Packets from the connector to the broker.
#[derive(Debug, Clone)]
enum ToBroker {
    Connect {
        client_id: String,
        clean: bool,
        will: Option<Will>,
    },
    Publish {
        pkid: u16,
        msg: Msg,
    },
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe {
        pkid: u16,
        filter: String,
        qos: u8,
    },
    Unsubscribe {
        pkid: u16,
        filter: String,
    },
    Disconnect,
}

/// Packets from the broker to the connector.
#[derive(Debug, Clone)]
enum ToClient {
    ConnAck { session_present: bool },
    Publish { pkid: u16, msg: Msg },
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    SubAck { pkid: u16, granted: u8 },
    UnsubAck(u16),
}

/// What the broker's timeline holds.
#[derive(Debug, Clone)]
enum Item {
    /// A packet reaches the broker on connection `epoch` of `link`.
    Broker {
        link: LinkId,
        epoch: u64,
        pkt: ToBroker,
    },
    /// A packet reaches the connector.
    Client {
        link: LinkId,
        epoch: u64,
        pkt: ToClient,
    },
    /// The broker notices that connection `epoch` of `link` died without DISCONNECT.
    Dropped { link: LinkId, epoch: u64 },
    /// The connector's reconnect timer.
    Reconnect { link: LinkId, epoch: u64 },
    /// A closing link is closed for good.
    Closed { link: LinkId },
}

/// A request of the core waiting for its answer.
#[derive(Debug, Clone)]
struct Req {
    seq: u64,
    token: Token,
    kind: ReqKind,
}

#[derive(Debug, Clone)]
enum ReqKind {
    Publish(Msg),
    Subscribe { filter: String, qos: u8 },
    Unsubscribe { filter: String },
}

impl Req {
    /// Requests that the broker acknowledges (and so can be lost).
    fn acknowledged(&self) -> bool {
        match &self.kind {
            ReqKind::Publish(m) => m.qos > 0,
            _ => true,
        }
    }
}

/// Something the connector has not put on the wire yet.
#[derive(Debug, Clone)]
enum Unsent {
    Req(Req),
    Ack(DeliveryId),
}

/// Where an incoming QoS 2 message is between PUBLISH and PUBREL (connector side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    Delivered,
    AckQueued,
    AckSent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the close of another link with the same ClientId.
    WaitingForClose,
    Connecting,
    Up,
    Down,
    Closing,
}

/// The connector's state of one link.
#[derive(Debug)]
struct Conn {
    client_id: String,
    clean: bool,
    will: Option<Will>,
    phase: Phase,
    /// Generation of the TCP connection; packets of older ones are discarded.
    epoch: u64,
    next_seq: u64,
    next_pkid: u16,
    unsent: VecDeque<Unsent>,
    /// How many of the first `unsent` entries were waiting when the connection broke (they
    /// are dropped if the broker lost the session).
    unsent_at_loss: usize,
    awaiting_ack: BTreeMap<u16, Req>,
    awaiting_comp: BTreeMap<u16, Req>,
    subs_sent: BTreeMap<u16, Req>,
    unsubs_sent: BTreeMap<u16, Req>,
    incoming_qos2: BTreeMap<u16, Inbound>,
    /// QoS 1/2 messages handed to the core on this connection and not acknowledged yet, in
    /// receive order.
    unacked: VecDeque<DeliveryId>,
}

impl Conn {
    fn pkid_in_use(&self, id: u16) -> bool {
        self.awaiting_ack.contains_key(&id)
            || self.awaiting_comp.contains_key(&id)
            || self.subs_sent.contains_key(&id)
            || self.unsubs_sent.contains_key(&id)
    }

    fn next_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if !self.pkid_in_use(self.next_pkid) {
                return self.next_pkid;
            }
        }
    }
}

/// Stage of a message the broker sent to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutStage {
    /// PUBLISH sent, PUBACK (QoS 1) or PUBREC (QoS 2) due.
    AwaitAck,
    /// PUBREL sent, PUBCOMP due.
    AwaitComp,
}

/// The broker's session of one MQTT ClientId.
#[derive(Debug, Default)]
struct Session {
    persistent: bool,
    /// The live connection.
    conn: Option<(LinkId, u64)>,
    will: Option<Will>,
    subs: BTreeMap<String, u8>,
    /// Incoming QoS 2 packet ids between PUBLISH and PUBREL.
    in_qos2: BTreeSet<u16>,
    /// Outgoing QoS 1/2 messages in flight, by packet id, and the order they were sent in.
    out: BTreeMap<u16, (Msg, OutStage)>,
    out_order: VecDeque<u16>,
    /// QoS 1/2 messages for an offline persistent session.
    queued: VecDeque<Msg>,
    next_pkid: u16,
}

impl Session {
    fn next_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if !self.out.contains_key(&self.next_pkid) {
                return self.next_pkid;
            }
        }
    }
}

/// Counters of the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Connections accepted.
    pub connects: u64,
    /// Connections broken by [`SimBroker::bounce`].
    pub bounces: u64,
    /// Messages routed (publishes accepted from clients, Wills and backend publishes).
    pub routed: u64,
    /// QoS 2 publishes recognised as duplicates on receipt and not routed again.
    pub qos2_duplicates: u64,
    /// Wills published.
    pub wills: u64,
    /// Tokens reported in `LinkUp::lost`.
    pub lost_tokens: u64,
    /// PUBLISHes and PUBRELs the connector re-sent on a resumed session.
    pub replayed: u64,
}

/// The simulated broker and connector; see the module documentation.
#[derive(Debug)]
pub struct SimBroker {
    cfg: BrokerConfig,
    timeline: BTreeMap<(u64, u64), Item>,
    next_item: u64,
    conns: BTreeMap<LinkId, Conn>,
    sessions: BTreeMap<String, Session>,
    /// Live connections at the broker: (link, epoch) → ClientId.
    live: BTreeMap<(LinkId, u64), String>,
    retained: BTreeMap<String, Msg>,
    backend_filters: BTreeMap<String, u8>,
    backend: Vec<Delivery>,
    events: VecDeque<UpstreamEvent>,
    violations: Vec<String>,
    stats: BrokerStats,
}

impl SimBroker {
    /// A broker with no sessions and no links.
    pub fn new(cfg: BrokerConfig) -> Self {
        SimBroker {
            cfg,
            timeline: BTreeMap::new(),
            next_item: 0,
            conns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            live: BTreeMap::new(),
            retained: BTreeMap::new(),
            backend_filters: BTreeMap::new(),
            backend: Vec::new(),
            events: VecDeque::new(),
            violations: Vec::new(),
            stats: BrokerStats::default(),
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> BrokerStats {
        self.stats
    }

    /// Breaches of the core's side of the connector contract, as readable lines.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Everything the backend subscriber received, in order.
    pub fn backend_received(&self) -> &[Delivery] {
        &self.backend
    }

    /// The backend subscriber subscribes to `filter` at `qos` (retained messages are not
    /// replayed to it).
    pub fn backend_subscribe(&mut self, filter: &str, qos: u8) {
        self.backend_filters.insert(filter.to_owned(), qos.min(2));
    }

    /// The backend application publishes a message at `now`.
    pub fn backend_publish(
        &mut self,
        now: u64,
        topic: &str,
        payload: &[u8],
        qos: u8,
        retain: bool,
    ) {
        let msg = Msg {
            topic: topic.to_owned(),
            payload: Bytes::copy_from_slice(payload),
            qos: qos.min(2),
            retain,
        };
        self.route(now, msg);
    }

    /// The link currently open for an upstream ClientId, if any.
    pub fn link_of(&self, client_id: &str) -> Option<LinkId> {
        self.conns
            .iter()
            .find(|(_, c)| c.client_id == client_id && c.phase != Phase::Closing)
            .map(|(l, _)| *l)
    }

    /// Whether the broker holds a session for `client_id`.
    pub fn has_session(&self, client_id: &str) -> bool {
        self.sessions.contains_key(client_id)
    }

    /// Sessions (connected or not) holding a subscription that matches `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.sessions
            .values()
            .filter(|s| s.subs.keys().any(|f| matches(f, topic)))
            .count()
    }

    /// Links the connector knows (open, connecting, down or closing).
    pub fn links(&self) -> usize {
        self.conns.len()
    }

    /// Whether `link` is connected.
    pub fn is_up(&self, link: LinkId) -> bool {
        self.conns.get(&link).is_some_and(|c| c.phase == Phase::Up)
    }

    /// When [`SimBroker::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timeline.keys().next().map(|(at, _)| *at)
    }

    /// The next event for the core.
    pub fn poll_event(&mut self) -> Option<UpstreamEvent> {
        self.events.pop_front()
    }

    /// Processes everything due at or before `now`.
    pub fn handle_timeout(&mut self, now: u64) {
        while let Some(entry) = self.timeline.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let item = entry.remove();
            self.item(now, item);
        }
    }

    fn at(&mut self, at: u64, item: Item) {
        self.timeline.insert((at, self.next_item), item);
        self.next_item += 1;
    }

    fn violation(&mut self, now: u64, what: String) {
        self.violations.push(format!("t={now} {what}"));
    }

    // ----- connector -----

    /// A command from the core.
    pub fn command(&mut self, now: u64, cmd: UpstreamCmd) {
        match cmd {
            UpstreamCmd::Open {
                link,
                client_id,
                clean_session,
                will,
                ..
            } => self.open(now, link, client_id, clean_session, will),
            UpstreamCmd::Close { link, graceful } => self.close(now, link, graceful),
            UpstreamCmd::Publish {
                link,
                token,
                topic,
                payload,
                qos,
                retain,
            } => {
                let msg = Msg {
                    topic,
                    payload,
                    qos: qos.level(),
                    retain,
                };
                self.request(now, link, token, ReqKind::Publish(msg));
            }
            UpstreamCmd::Subscribe {
                link,
                token,
                filter,
                qos,
            } => self.request(
                now,
                link,
                token,
                ReqKind::Subscribe {
                    filter,
                    qos: qos.level(),
                },
            ),
            UpstreamCmd::Unsubscribe {
                link,
                token,
                filter,
            } => self.request(now, link, token, ReqKind::Unsubscribe { filter }),
            UpstreamCmd::Ack { link, delivery } => self.ack(now, link, delivery),
            // Only custody with a state database holds PUBRECs; the simulated site has none.
            UpstreamCmd::HoldRelease { link, .. }
            | UpstreamCmd::Release { link, .. }
            | UpstreamCmd::Resume { link, .. }
            | UpstreamCmd::Forget { link, .. } => self.violation(
                now,
                format!("held-PUBREC command on {link} from a gateway without a state database"),
            ),
        }
    }

    fn open(&mut self, now: u64, link: LinkId, client_id: String, clean: bool, will: Option<Will>) {
        if self.conns.contains_key(&link) {
            return self.violation(now, format!("Open of {link}, which is already open"));
        }
        let closing = self
            .conns
            .values()
            .any(|c| c.client_id == client_id && c.phase == Phase::Closing);
        if let Some((other, _)) = self
            .conns
            .iter()
            .find(|(_, c)| c.client_id == client_id && c.phase != Phase::Closing)
        {
            let other = *other;
            self.violation(
                now,
                format!("Open of {link} for {client_id:?}, still open on {other}"),
            );
        }
        self.conns.insert(
            link,
            Conn {
                client_id,
                clean,
                will,
                phase: Phase::WaitingForClose,
                epoch: 0,
                next_seq: 0,
                next_pkid: 0,
                unsent: VecDeque::new(),
                unsent_at_loss: 0,
                awaiting_ack: BTreeMap::new(),
                awaiting_comp: BTreeMap::new(),
                subs_sent: BTreeMap::new(),
                unsubs_sent: BTreeMap::new(),
                incoming_qos2: BTreeMap::new(),
                unacked: VecDeque::new(),
            },
        );
        if !closing {
            self.start_connect(now, link);
        }
    }

    fn start_connect(&mut self, now: u64, link: LinkId) {
        let lat = self.cfg.latency_ms;
        let Some(c) = self.conns.get_mut(&link) else {
            return;
        };
        c.epoch += 1;
        c.phase = Phase::Connecting;
        let pkt = ToBroker::Connect {
            client_id: c.client_id.clone(),
            clean: c.clean,
            will: c.will.clone(),
        };
        let epoch = c.epoch;
        self.at(now + lat, Item::Broker { link, epoch, pkt });
    }

    fn close(&mut self, now: u64, link: LinkId, graceful: bool) {
        let lat = self.cfg.latency_ms;
        let Some(c) = self.conns.get_mut(&link) else {
            return self.violation(now, format!("Close of {link}, which is not open"));
        };
        if c.phase == Phase::Closing {
            return self.violation(now, format!("second Close of {link}"));
        }
        let connected = matches!(c.phase, Phase::Up | Phase::Connecting);
        c.phase = Phase::Closing;
        let epoch = c.epoch;
        if connected {
            let item = if graceful {
                Item::Broker {
                    link,
                    epoch,
                    pkt: ToBroker::Disconnect,
                }
            } else {
                Item::Dropped { link, epoch }
            };
            self.at(now + lat, item);
            self.at(now + lat, Item::Closed { link });
        } else {
            self.at(now, Item::Closed { link });
        }
    }

    fn request(&mut self, now: u64, link: LinkId, token: Token, kind: ReqKind) {
        let Some(c) = self.conns.get_mut(&link) else {
            return self.violation(
                now,
                format!("request {token:?} on {link}, which is not open"),
            );
        };
        if c.phase == Phase::Closing {
            return self.violation(now, format!("request {token:?} on {link} after its Close"));
        }
        let req = Req {
            seq: c.next_seq,
            token,
            kind,
        };
        c.next_seq += 1;
        if c.phase == Phase::Up {
            self.send_req(now, link, req);
        } else if let Some(c) = self.conns.get_mut(&link) {
            c.unsent.push_back(Unsent::Req(req));
        }
    }

    fn ack(&mut self, now: u64, link: LinkId, delivery: DeliveryId) {
        let Some(c) = self.conns.get_mut(&link) else {
            return self.violation(
                now,
                format!("Ack {delivery:?} on {link}, which is not open"),
            );
        };
        if delivery.qos == MqttQos::AtMostOnce {
            return self.violation(now, format!("Ack of a QoS 0 message on {link}"));
        }
        if c.phase == Phase::Closing {
            return;
        }
        match c.unacked.iter().position(|d| *d == delivery) {
            Some(0) => {
                c.unacked.pop_front();
            }
            Some(n) => {
                let first = c.unacked.front().copied();
                c.unacked.remove(n);
                self.violation(
                    now,
                    format!("Ack {delivery:?} on {link} before the earlier {first:?}"),
                );
            }
            // Received on an earlier connection: the broker re-sends it if it still wants the
            // acknowledgement, so acknowledging it now is harmless.
            None => {}
        }
        let Some(c) = self.conns.get_mut(&link) else {
            return;
        };
        if c.phase == Phase::Up {
            self.send_ack(now, link, delivery);
        } else {
            if delivery.qos == MqttQos::ExactlyOnce
                && let Some(s) = c.incoming_qos2.get_mut(&delivery.pkid)
            {
                *s = Inbound::AckQueued;
            }
            c.unsent.push_back(Unsent::Ack(delivery));
        }
    }

    fn send_ack(&mut self, now: u64, link: LinkId, delivery: DeliveryId) {
        let lat = self.cfg.latency_ms;
        let Some(c) = self.conns.get_mut(&link) else {
            return;
        };
        let pkt = if delivery.qos == MqttQos::ExactlyOnce {
            c.incoming_qos2.insert(delivery.pkid, Inbound::AckSent);
            ToBroker::PubRec(delivery.pkid)
        } else {
            ToBroker::PubAck(delivery.pkid)
        };
        let epoch = c.epoch;
        self.at(now + lat, Item::Broker { link, epoch, pkt });
    }

    fn send_req(&mut self, now: u64, link: LinkId, req: Req) {
        let lat = self.cfg.latency_ms;
        let Some(c) = self.conns.get_mut(&link) else {
            return;
        };
        let pkt = match &req.kind {
            ReqKind::Publish(m) if m.qos == 0 => ToBroker::Publish {
                pkid: 0,
                msg: m.clone(),
            },
            ReqKind::Publish(m) => {
                let pkid = c.next_pkid();
                let pkt = ToBroker::Publish {
                    pkid,
                    msg: m.clone(),
                };
                c.awaiting_ack.insert(pkid, req);
                pkt
            }
            ReqKind::Subscribe { filter, qos } => {
                let pkid = c.next_pkid();
                let pkt = ToBroker::Subscribe {
                    pkid,
                    filter: filter.clone(),
                    qos: *qos,
                };
                c.subs_sent.insert(pkid, req);
                pkt
            }
            ReqKind::Unsubscribe { filter } => {
                let pkid = c.next_pkid();
                let pkt = ToBroker::Unsubscribe {
                    pkid,
                    filter: filter.clone(),
                };
                c.unsubs_sent.insert(pkid, req);
                pkt
            }
        };
        let epoch = c.epoch;
        self.at(now + lat, Item::Broker { link, epoch, pkt });
    }

    /// Breaks the connection of `link` now; the connector reconnects `down_for_ms` later.
    pub fn bounce(&mut self, now: u64, link: LinkId, down_for_ms: u64) {
        let Some(c) = self.conns.get_mut(&link) else {
            return;
        };
        if !matches!(c.phase, Phase::Up | Phase::Connecting) {
            return;
        }
        self.stats.bounces += 1;
        let old = c.epoch;
        // Nothing of the old connection arrives any more, on either side.
        c.epoch += 1;
        c.phase = Phase::Down;
        c.unsent_at_loss = c.unsent.len();
        c.unacked.clear();
        let epoch = c.epoch;
        self.events.push_back(UpstreamEvent::LinkDown {
            link,
            reason: "connection reset (simulated bounce)".into(),
        });
        self.at(now, Item::Dropped { link, epoch: old });
        self.at(now + down_for_ms, Item::Reconnect { link, epoch });
    }

    fn item(&mut self, now: u64, item: Item) {
        match item {
            Item::Broker { link, epoch, pkt } => self.at_broker(now, link, epoch, pkt),
            Item::Client { link, epoch, pkt } => self.at_connector(now, link, epoch, pkt),
            Item::Dropped { link, epoch } => self.connection_died(now, link, epoch, false),
            Item::Reconnect { link, epoch } => {
                if self
                    .conns
                    .get(&link)
                    .is_some_and(|c| c.phase == Phase::Down && c.epoch == epoch)
                {
                    self.start_connect(now, link);
                }
            }
            Item::Closed { link } => {
                let Some(c) = self.conns.remove(&link) else {
                    return;
                };
                self.events.push_back(UpstreamEvent::Closed { link });
                // Like the production connector, the link that waited for this close takes
                // over its incoming QoS 2 ids whose PUBREC was queued or sent (a re-sent
                // PUBLISH is then answered with PUBREC, not delivered again).
                let awaiting_pubrel: Vec<u16> = c
                    .incoming_qos2
                    .iter()
                    .filter(|(_, s)| **s != Inbound::Delivered)
                    .map(|(pkid, _)| *pkid)
                    .collect();
                let waiting: Vec<LinkId> = self
                    .conns
                    .iter()
                    .filter(|(_, w)| {
                        w.client_id == c.client_id && w.phase == Phase::WaitingForClose
                    })
                    .map(|(l, _)| *l)
                    .collect();
                for l in waiting {
                    if let Some(w) = self.conns.get_mut(&l) {
                        for pkid in &awaiting_pubrel {
                            w.incoming_qos2.insert(*pkid, Inbound::AckSent);
                        }
                    }
                    self.start_connect(now, l);
                }
            }
        }
    }

    fn at_connector(&mut self, now: u64, link: LinkId, epoch: u64, pkt: ToClient) {
        let lat = self.cfg.latency_ms;
        let Some(c) = self.conns.get_mut(&link) else {
            return;
        };
        if c.epoch != epoch || !matches!(c.phase, Phase::Up | Phase::Connecting) {
            return;
        }
        match pkt {
            ToClient::ConnAck { session_present } => self.connack(now, link, session_present),
            ToClient::Publish { pkid, msg } => {
                let qos = MqttQos::from_level(msg.qos).unwrap_or(MqttQos::ExactlyOnce);
                let delivery = DeliveryId { pkid, qos };
                if msg.qos == 2 {
                    match c.incoming_qos2.get(&pkid).copied() {
                        None => {
                            c.incoming_qos2.insert(pkid, Inbound::Delivered);
                        }
                        Some(Inbound::Delivered | Inbound::AckQueued) => return,
                        Some(Inbound::AckSent) => {
                            // The broker never got our PUBREC: send it again.
                            let pkt = ToBroker::PubRec(pkid);
                            return self.at(now + lat, Item::Broker { link, epoch, pkt });
                        }
                    }
                }
                if msg.qos > 0 {
                    c.unacked.push_back(delivery);
                }
                self.events.push_back(UpstreamEvent::Message {
                    link,
                    delivery,
                    topic: msg.topic,
                    payload: msg.payload,
                    qos,
                    retain: msg.retain,
                });
            }
            ToClient::PubAck(pkid) => {
                if let Some(r) = c.awaiting_ack.remove(&pkid) {
                    let token = r.token;
                    self.events
                        .push_back(UpstreamEvent::PublishDone { link, token });
                }
            }
            ToClient::PubRec(pkid) => {
                if let Some(r) = c.awaiting_ack.remove(&pkid) {
                    let token = r.token;
                    c.awaiting_comp.insert(pkid, r);
                    self.events
                        .push_back(UpstreamEvent::PublishReceived { link, token });
                }
                if c.awaiting_comp.contains_key(&pkid) {
                    let pkt = ToBroker::PubRel(pkid);
                    self.at(now + lat, Item::Broker { link, epoch, pkt });
                }
            }
            ToClient::PubComp(pkid) => {
                if let Some(r) = c.awaiting_comp.remove(&pkid) {
                    let token = r.token;
                    self.events
                        .push_back(UpstreamEvent::PublishDone { link, token });
                }
            }
            ToClient::PubRel(pkid) => {
                c.incoming_qos2.remove(&pkid);
                let pkt = ToBroker::PubComp(pkid);
                self.at(now + lat, Item::Broker { link, epoch, pkt });
            }
            ToClient::SubAck { pkid, granted } => {
                if let Some(r) = c.subs_sent.remove(&pkid) {
                    let token = r.token;
                    self.events.push_back(UpstreamEvent::SubAck {
                        link,
                        token,
                        granted: MqttQos::from_level(granted),
                    });
                }
            }
            ToClient::UnsubAck(pkid) => {
                if let Some(r) = c.unsubs_sent.remove(&pkid) {
                    let token = r.token;
                    self.events
                        .push_back(UpstreamEvent::UnsubAck { link, token });
                }
            }
        }
    }

    fn connack(&mut self, now: u64, link: LinkId, session_present: bool) {
        let lat = self.cfg.latency_ms;
        let Some(c) = self.conns.get_mut(&link) else {
            return;
        };
        c.phase = Phase::Up;
        c.unacked.clear();
        let mut lost: Vec<Req> = Vec::new();
        lost.extend(std::mem::take(&mut c.subs_sent).into_values());
        lost.extend(std::mem::take(&mut c.unsubs_sent).into_values());
        let at_loss = std::mem::take(&mut c.unsent_at_loss).min(c.unsent.len());
        if !session_present {
            lost.extend(std::mem::take(&mut c.awaiting_ack).into_values());
            lost.extend(std::mem::take(&mut c.awaiting_comp).into_values());
            for u in c.unsent.drain(..at_loss) {
                if let Unsent::Req(r) = u {
                    lost.push(r);
                }
            }
            c.incoming_qos2.clear();
        }
        lost.retain(Req::acknowledged);
        lost.sort_by_key(|r| r.seq);
        self.stats.lost_tokens += lost.len() as u64;
        self.events.push_back(UpstreamEvent::LinkUp {
            link,
            session_present,
            lost: lost.iter().map(|r| r.token).collect(),
        });
        let Some(c) = self.conns.get_mut(&link) else {
            return;
        };
        let epoch = c.epoch;
        if session_present {
            // Re-send what the broker has not acknowledged, in the order it was first sent.
            let mut replay: Vec<(u64, ToBroker)> = Vec::new();
            for (&pkid, r) in &c.awaiting_ack {
                if let ReqKind::Publish(m) = &r.kind {
                    let pkt = ToBroker::Publish {
                        pkid,
                        msg: m.clone(),
                    };
                    replay.push((r.seq, pkt));
                }
            }
            for (&pkid, r) in &c.awaiting_comp {
                replay.push((r.seq, ToBroker::PubRel(pkid)));
            }
            replay.sort_by_key(|(seq, _)| *seq);
            self.stats.replayed += replay.len() as u64;
            for (_, pkt) in replay {
                self.at(now + lat, Item::Broker { link, epoch, pkt });
            }
        }
        let Some(c) = self.conns.get_mut(&link) else {
            return;
        };
        let unsent: Vec<Unsent> = c.unsent.drain(..).collect();
        for u in unsent {
            match u {
                Unsent::Req(r) => self.send_req(now, link, r),
                Unsent::Ack(d) => self.send_ack(now, link, d),
            }
        }
    }

    // ----- broker -----

    fn at_broker(&mut self, now: u64, link: LinkId, epoch: u64, pkt: ToBroker) {
        if let ToBroker::Connect {
            client_id,
            clean,
            will,
        } = pkt
        {
            return self.accept(now, link, epoch, client_id, clean, will);
        }
        let Some(client_id) = self.live.get(&(link, epoch)).cloned() else {
            return;
        };
        let lat = self.cfg.latency_ms;
        let reply = |pkt: ToClient| Item::Client { link, epoch, pkt };
        match pkt {
            ToBroker::Connect { .. } => {}
            ToBroker::Publish { pkid, msg } => match msg.qos {
                0 => self.route(now, msg),
                1 => {
                    self.route(now, msg);
                    self.at(now + lat, reply(ToClient::PubAck(pkid)));
                }
                _ => {
                    let fresh = self
                        .sessions
                        .get_mut(&client_id)
                        .is_some_and(|s| s.in_qos2.insert(pkid));
                    if fresh {
                        self.route(now, msg);
                    } else {
                        self.stats.qos2_duplicates += 1;
                    }
                    self.at(now + lat, reply(ToClient::PubRec(pkid)));
                }
            },
            ToBroker::PubRel(pkid) => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.in_qos2.remove(&pkid);
                }
                self.at(now + lat, reply(ToClient::PubComp(pkid)));
            }
            ToBroker::PubAck(pkid) | ToBroker::PubComp(pkid) => {
                if let Some(s) = self.sessions.get_mut(&client_id)
                    && s.out.remove(&pkid).is_some()
                {
                    s.out_order.retain(|p| *p != pkid);
                }
            }
            ToBroker::PubRec(pkid) => {
                if let Some(s) = self.sessions.get_mut(&client_id)
                    && let Some((_, stage)) = s.out.get_mut(&pkid)
                {
                    *stage = OutStage::AwaitComp;
                    self.at(now + lat, reply(ToClient::PubRel(pkid)));
                }
            }
            ToBroker::Subscribe { pkid, filter, qos } => {
                let granted = qos.min(2);
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.subs.insert(filter.clone(), granted);
                }
                self.at(now + lat, reply(ToClient::SubAck { pkid, granted }));
                let retained: Vec<Msg> = self
                    .retained
                    .values()
                    .filter(|m| matches(&filter, &m.topic))
                    .cloned()
                    .collect();
                for mut m in retained {
                    m.qos = m.qos.min(granted);
                    m.retain = true;
                    self.deliver(now, &client_id, m);
                }
            }
            ToBroker::Unsubscribe { pkid, filter } => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.subs.remove(&filter);
                }
                self.at(now + lat, reply(ToClient::UnsubAck(pkid)));
            }
            ToBroker::Disconnect => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    s.will = None;
                }
                self.connection_died(now, link, epoch, true);
            }
        }
    }

    fn accept(
        &mut self,
        now: u64,
        link: LinkId,
        epoch: u64,
        client_id: String,
        clean: bool,
        will: Option<Will>,
    ) {
        let lat = self.cfg.latency_ms;
        let alive = self
            .conns
            .get(&link)
            .is_some_and(|c| c.epoch == epoch && c.phase == Phase::Connecting);
        if !alive {
            return;
        }
        // Takeover: the session's previous connection is closed (no Will).
        if let Some(old) = self.sessions.get(&client_id).and_then(|s| s.conn) {
            self.violation(
                now,
                format!("broker takeover of {client_id:?}: {} by {link}", old.0),
            );
            if let Some(s) = self.sessions.get_mut(&client_id) {
                s.will = None;
            }
            self.connection_died(now, old.0, old.1, true);
            self.bounce(now, old.0, 1_000);
        }
        if clean {
            self.sessions.remove(&client_id);
        }
        let session_present = self.sessions.contains_key(&client_id);
        let s = self.sessions.entry(client_id.clone()).or_default();
        s.persistent = !clean;
        s.conn = Some((link, epoch));
        s.will = will;
        self.live.insert((link, epoch), client_id.clone());
        self.stats.connects += 1;
        let mut pkts = vec![ToClient::ConnAck { session_present }];
        if session_present {
            for pkid in s.out_order.clone() {
                if let Some((m, stage)) = s.out.get(&pkid) {
                    pkts.push(match stage {
                        OutStage::AwaitAck => ToClient::Publish {
                            pkid,
                            msg: m.clone(),
                        },
                        OutStage::AwaitComp => ToClient::PubRel(pkid),
                    });
                }
            }
        }
        let queued: Vec<Msg> = s.queued.drain(..).collect();
        for pkt in pkts {
            self.at(now + lat, Item::Client { link, epoch, pkt });
        }
        for m in queued {
            self.deliver(now, &client_id, m);
        }
    }

    /// The broker's end of connection `epoch` of `link` is gone (`graceful`: after
    /// DISCONNECT, so without Will).
    fn connection_died(&mut self, now: u64, link: LinkId, epoch: u64, graceful: bool) {
        let Some(client_id) = self.live.remove(&(link, epoch)) else {
            return;
        };
        let Some(s) = self.sessions.get_mut(&client_id) else {
            return;
        };
        if s.conn != Some((link, epoch)) {
            return;
        }
        s.conn = None;
        let will = if graceful { None } else { s.will.take() };
        if !s.persistent {
            self.sessions.remove(&client_id);
        }
        if let Some(w) = will {
            self.stats.wills += 1;
            let msg = Msg {
                topic: w.topic,
                payload: w.payload,
                qos: w.qos.level(),
                retain: w.retain,
            };
            self.route(now, msg);
        }
    }

    /// Routes a message published to the broker: retained store, backend subscriber, and
    /// every session with a matching subscription (once, at the highest matching QoS).
    fn route(&mut self, now: u64, msg: Msg) {
        self.stats.routed += 1;
        if msg.retain {
            if msg.payload.is_empty() {
                self.retained.remove(&msg.topic);
            } else {
                self.retained.insert(msg.topic.clone(), msg.clone());
            }
        }
        let backend = self
            .backend_filters
            .iter()
            .filter(|(f, _)| matches(f, &msg.topic))
            .map(|(_, q)| *q)
            .max();
        if let Some(q) = backend {
            self.backend.push(Delivery {
                at: now,
                topic: msg.topic.clone(),
                payload: msg.payload.clone(),
                qos: msg.qos.min(q),
                retain: false,
            });
        }
        let targets: Vec<(String, u8)> = self
            .sessions
            .iter()
            .filter_map(|(id, s)| {
                s.subs
                    .iter()
                    .filter(|(f, _)| matches(f, &msg.topic))
                    .map(|(_, q)| *q)
                    .max()
                    .map(|q| (id.clone(), q))
            })
            .collect();
        for (id, q) in targets {
            let m = Msg {
                qos: msg.qos.min(q),
                // MQTT 3.1.1: a message routed to an existing subscription loses its retain
                // flag.
                retain: false,
                ..msg.clone()
            };
            self.deliver(now, &id, m);
        }
    }

    /// Sends `m` to the session of `client_id` (or queues it while a persistent session is
    /// offline).
    fn deliver(&mut self, now: u64, client_id: &str, m: Msg) {
        let lat = self.cfg.latency_ms;
        let Some(s) = self.sessions.get_mut(client_id) else {
            return;
        };
        let Some((link, epoch)) = s.conn else {
            if m.qos > 0 {
                s.queued.push_back(m);
            }
            return;
        };
        let pkid = if m.qos == 0 {
            0
        } else {
            let pkid = s.next_pkid();
            s.out.insert(pkid, (m.clone(), OutStage::AwaitAck));
            s.out_order.push_back(pkid);
            pkid
        };
        let pkt = ToClient::Publish { pkid, msg: m };
        self.at(now + lat, Item::Client { link, epoch, pkt });
    }
}

/// MQTT topic matching: `+` is one level, `#` the rest (including the parent level); topics
/// starting with `$` are not matched by a leading wildcard. Written apart from the gateway's own
/// matcher on purpose: the simulated broker is the tests' oracle and must not share its bugs.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_mqtt() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "a/b"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
    }
}
