//! What the client tells its caller: [`ClientEvent`]s, the handles that name topics and
//! publishes, command errors and counters.

use core::fmt;

use heapless::Vec;
use sn_codec::{QoS, ReturnCode};

/// A topic the client knows, as an index into its topic table. Stable for the client's
/// lifetime for topics the application registered or subscribed to; topics the gateway
/// registered may be evicted when the table fills up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicHandle(pub(crate) u8);

impl TopicHandle {
    /// The table index.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Names one call to [`super::Client::publish`]; unique for the client's lifetime (it wraps
/// after 2³² publishes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishToken(pub u32);

impl fmt::Display for PublishToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a publish goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubTopic {
    /// A topic name registered with [`super::Client::register`] (QoS 0, 1, 2).
    Registered(TopicHandle),
    /// A predefined topic id (any QoS, including −1).
    Predefined(u16),
    /// A two-character short topic name (any QoS, including −1).
    Short([u8; 2]),
}

/// What a subscription names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubTopic<'a> {
    /// A topic name or a filter with `+` / `#`.
    Name(&'a str),
    /// A predefined topic id.
    Predefined(u16),
    /// A two-character short topic name.
    Short([u8; 2]),
}

/// The topic of a message from the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageTopic {
    /// A name in the topic table (from SUBACK or the gateway's REGISTER); look it up with
    /// [`super::Client::topic_name`].
    Topic(TopicHandle),
    /// A predefined topic id.
    Predefined(u16),
    /// A short topic name.
    Short([u8; 2]),
}

/// A message the gateway delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<const PAYLOAD: usize> {
    /// Its topic.
    pub topic: MessageTopic,
    /// The payload.
    pub payload: Vec<u8, PAYLOAD>,
    /// The QoS it arrived with.
    pub qos: QoS,
    /// The broker's retain flag.
    pub retain: bool,
}

/// Why the client gave up on its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// A request went unanswered after N_RETRY retransmissions.
    RetriesExhausted,
    /// N_ADV ADVERTISE periods passed without an ADVERTISE.
    AdvertiseMissed,
}

/// Why a publish did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// No PUBACK / PUBREC / PUBCOMP after N_RETRY retransmissions (the gateway is then
    /// considered lost).
    RetriesExhausted,
    /// The gateway answered with this non-zero return code (and re-registering did not help).
    Rejected(ReturnCode),
    /// The registered topic it names was rejected by the gateway.
    TopicRejected,
    /// The session ended while the publish was in flight and it cannot be repeated safely
    /// (QoS 2 after PUBREC: the broker may already have it), or the queue had no room to keep
    /// it for the next session.
    SessionLost,
    /// It could not be encoded into the caller's transmit buffer.
    TooLarge,
}

/// Why the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The application asked ([`super::Client::disconnect`]).
    Requested,
    /// The gateway sent an unsolicited DISCONNECT (it lost or dropped our session); the client
    /// connects again at once.
    ByGateway,
}

/// Something the caller may want to know; drained with [`super::Client::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent<const PAYLOAD: usize> {
    /// Looking for a gateway (SEARCHGW after a random delay).
    SearchingGateway,
    /// A gateway was chosen (from GWINFO, ADVERTISE or the configuration).
    GatewayFound {
        /// Its GwId.
        gw_id: u8,
    },
    /// CONNACK accepted.
    Connected {
        /// The gateway's GwId.
        gw_id: u8,
        /// The CONNECT resumed a sleeping session (registrations and subscriptions kept).
        resumed: bool,
    },
    /// CONNACK with a rejection; the client tries again after T_WAIT.
    ConnectRejected {
        /// The gateway's return code.
        code: ReturnCode,
    },
    /// REGACK accepted.
    Registered {
        /// The topic.
        topic: TopicHandle,
        /// The id the gateway assigned.
        topic_id: u16,
    },
    /// REGACK with a rejection (other than congestion, which is retried after T_WAIT).
    RegisterRejected {
        /// The topic.
        topic: TopicHandle,
        /// The gateway's return code.
        code: ReturnCode,
    },
    /// SUBACK accepted.
    Subscribed {
        /// The subscription's table entry.
        topic: TopicHandle,
        /// Granted QoS.
        qos: QoS,
    },
    /// SUBACK with a rejection (other than congestion).
    SubscribeRejected {
        /// The subscription's table entry.
        topic: TopicHandle,
        /// The gateway's return code.
        code: ReturnCode,
    },
    /// UNSUBACK received.
    Unsubscribed {
        /// The former subscription's table entry.
        topic: TopicHandle,
    },
    /// A publish completed: QoS 1 PUBACK, QoS 2 PUBCOMP, or QoS 0 / −1 handed to the radio.
    Published {
        /// The publish.
        token: PublishToken,
        /// Its QoS.
        qos: QoS,
        /// Retransmissions it needed.
        retries: u8,
    },
    /// A publish was given up.
    PublishFailed {
        /// The publish.
        token: PublishToken,
        /// Why.
        reason: PublishError,
    },
    /// A message from the gateway.
    Message(Message<PAYLOAD>),
    /// The gateway confirmed DISCONNECT(Duration): the client is asleep.
    Asleep {
        /// The sleep duration announced, in seconds.
        duration: u16,
    },
    /// The wake-up PINGREQ went out; buffered messages follow.
    Awake,
    /// PINGRESP after a wake-up: every buffered message was delivered; asleep again.
    BackToSleep,
    /// The session ended.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// The gateway is considered lost; the client looks for one (or reconnects) by itself.
    GatewayLost {
        /// Its GwId.
        gw_id: u8,
        /// Why.
        reason: LossReason,
    },
}

/// Why a command was refused. Nothing was queued.
///
/// **Fault:** the application. **Recovery:** as each variant says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The outbox is full. **Recovery:** wait for `Published` / `PublishFailed` events.
    QueueFull,
    /// The payload exceeds the client's `PAYLOAD` capacity or the radio's `max_packet`.
    /// **Recovery:** send less.
    TooLarge,
    /// The topic name is empty, longer than [`super::MAX_TOPIC_LEN`], or a wildcard filter
    /// where a topic name is needed. **Recovery:** fix the name.
    InvalidTopic,
    /// The topic table is full. **Recovery:** raise `TOPICS`.
    TopicTableFull,
    /// The handle names no registered topic. **Recovery:** use a handle from `register`.
    UnknownTopic,
    /// QoS −1 with a registered topic (only predefined ids and short names work without a
    /// connection), or a QoS the message cannot have. **Recovery:** pick another QoS or topic.
    QosNotAllowed,
    /// The command makes no sense in the current state (e.g. `wake` while not asleep).
    /// **Recovery:** check [`super::Client::state`] first.
    InvalidState,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::QueueFull => "the outbox is full",
            Self::TooLarge => "the message is too large",
            Self::InvalidTopic => "invalid topic name",
            Self::TopicTableFull => "the topic table is full",
            Self::UnknownTopic => "unknown topic handle",
            Self::QosNotAllowed => "this QoS is not allowed here",
            Self::InvalidState => "not possible in the current state",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CommandError {}

/// Counters kept by the client (all saturate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams_in: u32,
    /// Datagrams that did not decode (dropped).
    pub malformed: u32,
    /// Decoded messages that made no sense in the current state, or came from an address that
    /// is not the gateway (dropped).
    pub unexpected: u32,
    /// Datagrams produced by `poll_transmit`.
    pub datagrams_out: u32,
    /// Retransmissions (requests sent again after T_RETRY).
    pub retransmissions: u32,
    /// SEARCHGW broadcasts.
    pub searches: u32,
    /// Gateways given up on.
    pub gateway_losses: u32,
    /// Messages from the gateway too large for `PAYLOAD` (acknowledged, not delivered).
    pub oversized: u32,
    /// Events dropped because the caller did not drain them in time.
    pub events_dropped: u32,
    /// Messages that could not be encoded into the caller's buffer (dropped).
    pub encode_errors: u32,
}

/// Adds one, saturating.
pub(crate) fn bump(counter: &mut u32) {
    *counter = counter.saturating_add(1);
}
