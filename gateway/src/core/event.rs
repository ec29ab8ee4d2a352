//! What the core hands to its shell besides datagrams and upstream commands: [`Transmit`]
//! headers and [`GatewayEvent`]s for logs, metrics and tests.

use std::fmt;
use std::net::SocketAddr;

use sn_codec::{DecodeError, MsgType};

use super::addr::{ListenerId, PeerAddr};

/// Where an encoded datagram goes. Encapsulation for forwarded nodes is already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// One address through one listener.
    Unicast {
        /// The socket to send from.
        listener: ListenerId,
        /// The address to send to.
        addr: SocketAddr,
    },
    /// The discovery multicast group of a listener, or of every listener that has one.
    Multicast {
        /// The socket to send from; `None` = every listener with a multicast group.
        listener: Option<ListenerId>,
        /// Multicast TTL / IPv6 hop limit; `None` = the listener's configured TTL.
        ttl: Option<u8>,
    },
}

/// A datagram written into the caller's buffer by `Gateway::poll_transmit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where it goes.
    pub to: Destination,
    /// Octets written at the start of the buffer.
    pub len: usize,
    /// The MQTT-SN message type (the inner one for an encapsulated message), for metrics.
    pub msg_type: MsgType,
}

/// Why a datagram or a message was dropped. Bounded set: used as a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The datagram did not decode.
    Malformed(DecodeError),
    /// Larger than `max_packet_size`.
    TooLarge,
    /// A message the gateway never accepts from a client (e.g. ADVERTISE, CONNACK).
    UnexpectedType,
    /// A message that does not fit the session's state.
    UnexpectedInState,
    /// From an address without a session.
    UnknownClient,
    /// Encapsulated message from a forwarder not on the allow-list.
    ForwarderNotAllowed,
    /// QoS −1 disabled, sender not allowed, or topic unusable.
    QosMinus1Rejected,
    /// A downlink message too large for the client's transport.
    TooLargeForClient,
    /// A downlink message dropped because a queue or sleep buffer was full.
    QueueFull,
    /// A message for a topic the client rejected in a REGACK.
    TopicRejected,
    /// A PUBLISH naming a topic id the client never registered (or an unknown predefined id).
    UnknownTopicId,
    /// A CONNECT from a ClientId the registry does not know (registered-only policy).
    NotRegistered,
    /// A CONNECT from another address than the one the ClientId is pinned to.
    PinnedElsewhere,
    /// A PUBLISH or SUBSCRIBE outside the client's allowed topics.
    TopicNotAllowed,
    /// More outstanding requests than `max_inflight_from_client`.
    TooManyInflight,
    /// A CONNECT or wake-up PINGREQ for a session bound to another address, refused because
    /// the operator did not allow address changes.
    AddressChangeRefused,
    /// A PINGREQ naming a session that is not asleep, from an address the session is not
    /// bound to (a wake-up is only meaningful for an asleep session).
    NotAsleep,
    /// More new sessions from one address or forwarder than the admission limits allow.
    RateLimited,
    /// A retained QoS −1 publish while `qos_minus1.allow_retain` is off.
    RetainNotAllowed,
    /// The registry file could not be written, so a pairing was not completed.
    PairingNotSaved,
    /// A broker message on a topic outside the configured topic prefix (mountpoint).
    ForeignTopic,
    /// A broker message for a client whose topic-id table is full (no id to REGISTER).
    TopicIdsExhausted,
    /// A message the client refused in its PUBACK (a return code other than "invalid topic
    /// id").
    ClientRejected,
    /// A client publish refused because the gateway's custody queue is full.
    CustodyFull,
    /// A message in the gateway's custody dropped after `custody_max_age` without reaching the
    /// broker.
    CustodyExpired,
}

impl DropReason {
    /// A short snake_case label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::Malformed(_) => "malformed",
            DropReason::TooLarge => "too_large",
            DropReason::UnexpectedType => "unexpected_type",
            DropReason::UnexpectedInState => "unexpected_in_state",
            DropReason::UnknownClient => "unknown_client",
            DropReason::ForwarderNotAllowed => "forwarder_not_allowed",
            DropReason::QosMinus1Rejected => "qos_minus1_rejected",
            DropReason::TooLargeForClient => "too_large_for_client",
            DropReason::QueueFull => "queue_full",
            DropReason::TopicRejected => "topic_rejected",
            DropReason::UnknownTopicId => "unknown_topic_id",
            DropReason::TooManyInflight => "too_many_inflight",
            DropReason::NotRegistered => "not_registered",
            DropReason::PinnedElsewhere => "pinned_elsewhere",
            DropReason::TopicNotAllowed => "topic_not_allowed",
            DropReason::AddressChangeRefused => "address_change_refused",
            DropReason::NotAsleep => "not_asleep",
            DropReason::RateLimited => "rate_limited",
            DropReason::RetainNotAllowed => "retain_not_allowed",
            DropReason::PairingNotSaved => "pairing_not_saved",
            DropReason::ForeignTopic => "foreign_topic",
            DropReason::TopicIdsExhausted => "topic_ids_exhausted",
            DropReason::ClientRejected => "client_rejected",
            DropReason::CustodyFull => "custody_full",
            DropReason::CustodyExpired => "custody_expired",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Malformed(e) => write!(f, "malformed: {e}"),
            other => f.write_str(other.label()),
        }
    }
}

/// Why a client was declared Lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// No message within the keep-alive supervision time.
    KeepAliveExpired,
    /// Did not wake within its sleep duration (plus tolerance).
    SleepExpired,
    /// A retransmitted REGISTER/PUBLISH/PUBREL was never answered.
    RetriesExhausted,
    /// An unregistered client sent nothing within `unregistered_idle_timeout` of its CONNECT.
    SilentAfterConnect,
    /// The session table was full and a registered client needed the place of this
    /// unregistered one.
    Evicted,
}

/// Something worth a log line, a metric or a test assertion.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GatewayEvent {
    /// A client is connected (CONNACK accepted sent).
    ClientConnected {
        /// Its ClientId.
        client_id: String,
        /// Its address.
        peer: PeerAddr,
    },
    /// A connect attempt was refused (CONNACK with a non-zero code sent).
    ConnectRefused {
        /// The ClientId (lossy text).
        client_id: String,
        /// Its address.
        peer: PeerAddr,
        /// The CONNACK return code sent.
        code: u8,
    },
    /// A client unknown to the registry connected during the pairing window: the shell adds it
    /// to the registry file and then answers with `Gateway::pairing_saved` (the client is
    /// admitted only once the entry is written).
    ClientPaired {
        /// Its ClientId.
        client_id: String,
        /// Where it connected from.
        peer: PeerAddr,
    },
    /// A client went to sleep.
    ClientAsleep {
        /// Its ClientId.
        client_id: String,
        /// Its address.
        peer: PeerAddr,
        /// Sleep duration in seconds.
        duration: u16,
    },
    /// A sleeping client woke up to fetch messages.
    ClientAwake {
        /// Its ClientId.
        client_id: String,
        /// Its address.
        peer: PeerAddr,
        /// Messages waiting for it.
        buffered: usize,
    },
    /// A client disconnected cleanly.
    ClientDisconnected {
        /// Its ClientId.
        client_id: String,
        /// Its address.
        peer: PeerAddr,
    },
    /// A client was declared Lost; its upstream link was dropped so the broker publishes its Will.
    ClientLost {
        /// Its ClientId.
        client_id: String,
        /// Its address.
        peer: PeerAddr,
        /// Why.
        reason: LostReason,
    },
    /// A session moved to a new address (takeover, NAT rebinding).
    ClientMoved {
        /// Its ClientId.
        client_id: String,
        /// The old address.
        from: PeerAddr,
        /// The new address.
        to: PeerAddr,
    },
    /// A datagram or message was dropped.
    Dropped {
        /// Who sent it (or for whom it was meant).
        peer: Option<PeerAddr>,
        /// Why.
        reason: DropReason,
    },
    /// A message was retransmitted to a client.
    Retransmitted {
        /// The client.
        client_id: String,
        /// Its address.
        peer: PeerAddr,
        /// What was sent again.
        msg_type: MsgType,
    },
    /// Whether the upstream is usable (gates discovery, readiness).
    UpstreamHealth {
        /// True when the gateway's own link is up.
        up: bool,
    },
    /// A client's message was accepted despite the known long-form Length mistake of a widely
    /// used mote library (reported once per session).
    LengthQuirk {
        /// The client's address.
        peer: PeerAddr,
    },
    /// The state store failed (`active`: custody falls back to the broker) or writes again.
    CustodyFallback {
        /// True while the store cannot write.
        active: bool,
    },
    /// A client publish in the gateway's custody waited longer than `custody_max_age` for the
    /// broker and was dropped.
    CustodyExpired {
        /// The client that published it.
        client_id: String,
        /// Its upstream topic.
        topic: String,
    },
}
