//! [`Session`]: everything the gateway keeps about one client, and its state machine's states.
//! The [`SessionTable`] owns the sessions; only it changes a session's ClientId, address, link
//! and timer filing, which it indexes.

mod table;

pub(crate) use table::{SessionId, SessionTable};

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use sn_codec::{Instant, QoS};

use super::addr::PeerAddr;
use super::config::GatewayConfig;
use super::topic_ids::TopicIds;
use super::upstream::seam::Attachment;
use super::upstream::{DeliveryId, MqttQos, Token};

/// Where a client is in its life cycle, from the gateway's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// CONNECT received; prompting for the Will or waiting for the broker's CONNACK.
    Connecting(ConnectPhase),
    /// Connected and awake.
    Active,
    /// Sleeping (DISCONNECT with a duration); messages are buffered.
    Asleep,
    /// Woken by PINGREQ(ClientId) to fetch its buffered messages.
    Awake,
    /// Disconnected cleanly; remembered for a CleanSession=0 reconnect.
    Disconnected,
    /// Lost (keep-alive, sleep timer or retries); remembered for a CleanSession=0 reconnect.
    Lost,
}

/// Steps of a connection setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectPhase {
    /// WILLTOPICREQ sent.
    WillTopic,
    /// WILLMSGREQ sent.
    WillMsg,
    /// Upstream link opened; waiting for the broker.
    Upstream,
    /// A client admitted by the pairing window, waiting until the shell has written it to the
    /// registry file; `will` tells whether its CONNECT asked for Will prompting.
    Pairing {
        /// The CONNECT's Will flag.
        will: bool,
    },
}

/// The names of the states, as logs, metrics labels, `clients` listings and the status page
/// show them; defined here only.
pub(crate) mod state_names {
    /// [`super::State::Connecting`].
    pub(crate) const CONNECTING: &str = "connecting";
    /// [`super::State::Active`].
    pub(crate) const ACTIVE: &str = "active";
    /// [`super::State::Asleep`].
    pub(crate) const ASLEEP: &str = "asleep";
    /// [`super::State::Awake`].
    pub(crate) const AWAKE: &str = "awake";
    /// [`super::State::Disconnected`].
    pub(crate) const DISCONNECTED: &str = "disconnected";
    /// [`super::State::Lost`].
    pub(crate) const LOST: &str = "lost";
    /// Every state, in life-cycle order.
    pub(crate) const ALL: [&str; 6] = [CONNECTING, ACTIVE, ASLEEP, AWAKE, DISCONNECTED, LOST];
}

impl State {
    /// A short lowercase name for logs and the status page.
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Connecting(_) => state_names::CONNECTING,
            State::Active => state_names::ACTIVE,
            State::Asleep => state_names::ASLEEP,
            State::Awake => state_names::AWAKE,
            State::Disconnected => state_names::DISCONNECTED,
            State::Lost => state_names::LOST,
        }
    }

    /// The client is reachable (not Disconnected or Lost).
    pub(crate) fn is_live(self) -> bool {
        !matches!(self, State::Disconnected | State::Lost)
    }
}

/// The client's Will as the gateway stores it (MQTT-SN names, before the prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct WillSpec {
    /// Topic, QoS, retain. `None` = no Will.
    pub(crate) topic: Option<(String, MqttQos, bool)>,
    /// Message (a WILLMSGUPD may set it before a topic exists; it takes effect with one).
    pub(crate) msg: Bytes,
}

/// A subscription the client holds, to restore it upstream after a session loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SubKind {
    /// Topic name or filter (TopicIdType 0b00).
    Name,
    /// Predefined id.
    Predefined(u16),
    /// Two-character short name.
    Short,
}

/// A QoS 1/2 PUBLISH from the client that the broker has not completed.
#[derive(Debug, Clone)]
pub(crate) struct Uplink {
    pub(crate) msg_id: u16,
    pub(crate) topic_id: u16,
    /// Upstream topic (prefix applied).
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    /// QoS 1 or 2.
    pub(crate) qos: MqttQos,
    pub(crate) retain: bool,
    pub(crate) stage: UplinkStage,
    /// QoS 2 with a state store: the packet id the broker accepted it under (its PUBREC, held
    /// by the link until the session record holding it is committed); `None` once the broker
    /// completed it.
    pub(crate) pkid: Option<u16>,
    /// QoS 2: its PUBREC was recorded in the session, so the exchange survives a restart
    /// (the client's MsgId is kept until its PUBREL).
    pub(crate) durable: bool,
}

/// Progress of an uplink QoS 1/2 publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UplinkStage {
    /// Sent upstream, no answer yet.
    Sent,
    /// QoS 2: broker sent PUBREC, gateway sent PUBREC to the client.
    Received,
    /// QoS 2: client sent PUBREL before the broker completed.
    Released,
    /// QoS 2: broker completed before the client's PUBREL.
    Completed,
}

/// A packet id the broker accepted a QoS 2 publish of the client under (PUBREC) whose PUBCOMP
/// has not come, outside the publish's own exchange (read back after a restart, or left when
/// the client's connection was reset): its PUBREL is sent again on a resumed broker session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OwedPubrel {
    /// The `Resume` (or the original publish) its PUBCOMP reports under.
    pub(crate) token: Option<Token>,
    /// The link it was resumed on (`None`: not on any link of this run yet).
    pub(crate) link: Option<super::upstream::LinkId>,
}

/// Most QoS 2 MsgIds kept per client awaiting its PUBREL (a client that never releases them
/// cannot grow the session without bound; the lowest goes first).
pub(crate) const MAX_UNRELEASED: usize = 64;

/// A subscription request waiting for the broker's SUBACK.
#[derive(Debug, Clone)]
pub(crate) struct PendingSub {
    pub(crate) msg_id: u16,
    /// Topic id for the SUBACK (0 for wildcards and short names).
    pub(crate) topic_id: u16,
    pub(crate) filter: String,
    /// Restoring a subscription after a session loss: no SUBACK to the client.
    pub(crate) silent: bool,
}

/// A message from the broker on its way to the client.
#[derive(Debug, Clone)]
pub(crate) struct Downlink {
    /// MQTT-SN topic name (prefix removed).
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    /// For the upstream ack (QoS 1/2).
    pub(crate) delivery: Option<DeliveryId>,
    /// Order of arrival in this session (tells the state store the buffer changed).
    pub(crate) n: u64,
    /// The MsgId it went to the client under before a restart (sent again under it, with
    /// DUP set, so the client can tell a repetition).
    pub(crate) msg_id: Option<u16>,
    /// Transparent mode, read back after a restart: the packet id the broker delivered it
    /// under, so the broker's redelivery on the resumed session is this message, not another.
    pub(crate) broker_pkid: Option<u16>,
}

/// The one gateway-initiated exchange in flight towards the client: at most one REGISTER or
/// QoS 1/2 PUBLISH (or its PUBREL) is outstanding per client.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub(crate) msg: Downlink,
    pub(crate) msg_id: u16,
    pub(crate) step: InflightStep,
    pub(crate) sent_at: Instant,
    pub(crate) retries: u8,
    /// A QoS 2 PUBLISH or PUBREL not sent yet: it waits until the session record with its
    /// MsgId and phase is committed (`downlink::send_held`).
    pub(crate) held: bool,
}

/// What the gateway waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflightStep {
    /// REGACK for a REGISTER of `topic_id`, before the PUBLISH.
    Regack { topic_id: u16 },
    /// PUBACK (QoS 1) or PUBREC (QoS 2) for a PUBLISH.
    Publish {
        topic_id: u16,
        id_type: sn_codec::TopicIdType,
    },
    /// PUBCOMP for a PUBREL.
    Pubcomp,
}

/// An incoming upstream delivery whose ack must wait for earlier ones (acks go in order).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingAck {
    /// The presence it arrived on (acknowledged only while the session still has it).
    pub(crate) upstream: Attachment,
    pub(crate) delivery: DeliveryId,
    pub(crate) done: bool,
}

/// Everything the gateway keeps about one client.
#[derive(Debug)]
pub(crate) struct Session {
    /// MQTT-SN ClientId (indexed by the table).
    client_id: String,
    /// The address the client is bound to (indexed by the table while the session is live).
    peer: PeerAddr,
    pub(crate) state: State,
    pub(crate) clean_session: bool,
    /// Keep-alive supervision period (None = no supervision).
    pub(crate) keep_alive: Option<Duration>,
    /// Sleep duration while Asleep/Awake.
    pub(crate) sleep: Option<Duration>,
    /// Last datagram from the client.
    pub(crate) last_rx: Instant,
    /// Deadline for the Connecting phase or the sleep timer.
    pub(crate) state_deadline: Option<Instant>,
    pub(crate) will: WillSpec,
    /// How the session reaches the broker (None while prompting, Disconnected or Lost;
    /// indexed by the table).
    upstream: Option<Attachment>,
    pub(crate) link_up: bool,
    /// The link was re-opened by the gateway (Will update): the broker session it finds may
    /// predate some subscriptions, so they are restored on the next LinkUp whatever
    /// `session_present` says (subscribing again is idempotent).
    pub(crate) restore_on_up: bool,
    pub(crate) topic_ids: TopicIds,
    /// Filters with how the client named them and the QoS asked for (then granted).
    pub(crate) subscriptions: BTreeMap<String, (SubKind, MqttQos)>,
    pub(crate) pending_subs: BTreeMap<Token, PendingSub>,
    /// Unsubscriptions waiting for the broker's UNSUBACK (upstream filter).
    pub(crate) pending_unsubs: BTreeMap<Token, String>,
    /// Uplink QoS 1/2 publishes by token.
    pub(crate) uplink: BTreeMap<Token, Uplink>,
    /// QoS 2 MsgIds of the client that the gateway accepted and the client has not released
    /// with PUBREL, beyond those in `uplink` (gateway custody, or read back after a restart):
    /// a retransmission with DUP set is answered PUBREC, not taken again. Stored
    /// (CleanSession=0), bounded by [`MAX_UNRELEASED`].
    pub(crate) qos2_unreleased: BTreeSet<u16>,
    /// Packet ids owed a PUBREL at the broker, by packet id, beyond those in `uplink`. Stored.
    pub(crate) pubrels_owed: BTreeMap<u16, OwedPubrel>,
    /// Last PUBACK/PUBCOMP sent per MsgId, to answer retransmissions identically.
    pub(crate) recent_replies: VecDeque<(u16, Instant, sn_codec::MsgType, u16)>,
    /// Topic names the client rejected in a REGACK (not delivered until the next SUBSCRIBE).
    pub(crate) rejected: BTreeSet<String>,
    /// Messages waiting behind `inflight` (awake) or buffered (asleep).
    pub(crate) queue: VecDeque<Downlink>,
    pub(crate) inflight: Option<Inflight>,
    pub(crate) next_msg_id: u16,
    /// The last [`Downlink::n`] handed out.
    pub(crate) last_downlink: u64,
    /// Upstream acks in receive order.
    pub(crate) acks: VecDeque<PendingAck>,
    /// Messages received from and sent to the client (for `clients` listings).
    pub(crate) rx_count: u64,
    pub(crate) tx_count: u64,
    /// The instant under which this session is filed in the table's timers.
    timer_key: Option<Instant>,
    /// An unregistered client that has sent nothing since its CONNECT was accepted is dropped
    /// at this instant (cleared by its next message).
    pub(crate) silent_until: Option<Instant>,
    /// Digest of the record last handed to the state store (`None`: nothing stored).
    pub(crate) stored: Option<u64>,
    /// The client sent a message with the known long-form Length mistake (reported once).
    pub(crate) length_quirk_seen: bool,
}

impl Session {
    fn new(client_id: String, peer: PeerAddr, now: Instant) -> Self {
        Session {
            client_id,
            peer,
            state: State::Disconnected,
            clean_session: true,
            keep_alive: None,
            sleep: None,
            last_rx: now,
            state_deadline: None,
            will: WillSpec::default(),
            upstream: None,
            link_up: false,
            restore_on_up: false,
            topic_ids: TopicIds::default(),
            subscriptions: BTreeMap::new(),
            pending_subs: BTreeMap::new(),
            pending_unsubs: BTreeMap::new(),
            uplink: BTreeMap::new(),
            qos2_unreleased: BTreeSet::new(),
            pubrels_owed: BTreeMap::new(),
            recent_replies: VecDeque::new(),
            rejected: BTreeSet::new(),
            queue: VecDeque::new(),
            inflight: None,
            next_msg_id: 0,
            last_downlink: 0,
            acks: VecDeque::new(),
            rx_count: 0,
            tx_count: 0,
            timer_key: None,
            silent_until: None,
            stored: None,
            length_quirk_seen: false,
        }
    }

    /// The client's ClientId.
    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The address the client is (or was last) bound to.
    pub(crate) fn peer(&self) -> &PeerAddr {
        &self.peer
    }

    /// How the session reaches the broker, if it does.
    pub(crate) fn upstream(&self) -> Option<Attachment> {
        self.upstream
    }

    /// The earliest instant the session needs attention: its state deadline (connection
    /// setup, sleep timer), keep-alive supervision, a retransmission, the end of an
    /// unregistered client's silence allowance, or (disconnected or lost) the end of the time
    /// it is remembered. The timers and the timeout handling both use
    /// this one rule.
    pub(crate) fn deadline(&self, cfg: &GatewayConfig) -> Option<Instant> {
        let keep_alive = match self.state {
            State::Active => self
                .keep_alive
                .map(|k| self.last_rx.saturating_add(cfg.tolerance.supervise(k))),
            _ => None,
        };
        let silent = match self.state {
            State::Active => self.silent_until,
            _ => None,
        };
        // A remembered session is forgotten after a long silence.
        let forget = match self.state {
            State::Disconnected | State::Lost => cfg
                .remember_disconnected_for
                .map(|d| self.last_rx.saturating_add(d)),
            _ => None,
        };
        let retry = match self.state {
            State::Active | State::Awake => self
                .inflight
                .as_ref()
                .filter(|i| !i.held)
                .map(|i| i.sent_at.saturating_add(cfg.t_retry)),
            _ => None,
        };
        [self.state_deadline, keep_alive, retry, silent, forget]
            .into_iter()
            .flatten()
            .min()
    }

    /// A fresh MsgId for a gateway-initiated message: 1..=0xFFFF, never 0.
    pub(crate) fn take_msg_id(&mut self) -> u16 {
        self.next_msg_id = self.next_msg_id.checked_add(1).unwrap_or(1).max(1);
        self.next_msg_id
    }

    /// Client requests waiting for the broker (QoS 1/2 publishes, subscriptions).
    pub(crate) fn outstanding_requests(&self) -> usize {
        self.uplink.len() + self.pending_subs.values().filter(|p| !p.silent).count()
    }

    /// Forgets every exchange tied to the client's connection and upstream link: messages in
    /// flight both ways, queued messages, upstream acks and requests waiting, the sleep.
    /// A QoS 2 exchange whose PUBREC was recorded outlives the connection: the client's MsgId
    /// stays until its PUBREL, and the broker's packet id is owed a PUBREL.
    pub(crate) fn reset_exchanges(&mut self) {
        self.inflight = None;
        self.queue.clear();
        self.acks.clear();
        for (token, u) in std::mem::take(&mut self.uplink) {
            if !u.durable {
                continue;
            }
            if u.stage != UplinkStage::Released {
                self.keep_unreleased(u.msg_id);
            }
            if let Some(pkid) = u.pkid {
                let owed = OwedPubrel {
                    token: Some(token),
                    link: None,
                };
                self.pubrels_owed.insert(pkid, owed);
            }
        }
        self.pending_subs.clear();
        self.pending_unsubs.clear();
        self.sleep = None;
    }

    /// The session ended (DISCONNECT, or Lost when not `graceful`): nothing is exchanged any
    /// more and no deadline is left; what a CleanSession=0 reconnect resumes stays.
    pub(crate) fn end(&mut self, graceful: bool) {
        self.reset_exchanges();
        self.link_up = false;
        self.state_deadline = None;
        self.silent_until = None;
        self.state = if graceful {
            State::Disconnected
        } else {
            State::Lost
        };
    }

    /// Remembers QoS 2 MsgId `msg_id` of the client until its PUBREL (the lowest is forgotten
    /// when [`MAX_UNRELEASED`] are kept).
    pub(crate) fn keep_unreleased(&mut self, msg_id: u16) {
        if self.qos2_unreleased.len() >= MAX_UNRELEASED && !self.qos2_unreleased.contains(&msg_id) {
            self.qos2_unreleased.pop_first();
        }
        self.qos2_unreleased.insert(msg_id);
    }

    /// Forgets registrations, subscriptions and queued messages (CleanSession=1).
    pub(crate) fn clear_state(&mut self) {
        self.qos2_unreleased.clear();
        self.pubrels_owed.clear();
        self.topic_ids.clear();
        self.subscriptions.clear();
        self.pending_subs.clear();
        self.pending_unsubs.clear();
        self.rejected.clear();
        self.will = WillSpec::default();
    }
}
