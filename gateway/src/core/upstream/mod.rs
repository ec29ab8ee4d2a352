//! The vocabulary between the core and the upstream connector: [`UpstreamCmd`]s the core asks
//! for, [`UpstreamEvent`]s the connector reports. MQTT packet ids never reach the core; it
//! correlates through its own [`Token`]s.
//!
//! Contract for a connector (see `crate::io::upstream` for the rumqttc one):
//! - Commands for one link are executed in order. `Open` starts a link that reconnects with
//!   backoff by itself until `Close`; every (re)connection reports `LinkUp` or `Refused`, every
//!   loss `LinkDown`.
//! - A `Publish` reports `PublishDone` once the broker acknowledged it (QoS 1: PUBACK, QoS 2:
//!   PUBCOMP; QoS 0: nothing). If the broker answers a reconnect with `session_present = false`,
//!   QoS 1/2 publishes and subscriptions that were sent but not acknowledged are reported in
//!   `LinkUp::lost` and the core submits them again. Subscribes and unsubscribes that were sent
//!   but not answered are reported lost after every reconnect, also with
//!   `session_present = true` (the rumqttc connector cannot re-send them; repeating one is
//!   harmless).
//! - Incoming messages are acknowledged only by `Ack`, which the core sends in receive order.
//! - An `Open` for an upstream ClientId whose previous link is still closing waits for that
//!   close first (so the broker never sees a takeover).
//!
//! Session code does not speak this vocabulary directly: it goes through the [`seam`], whose
//! two implementations ([`transparent`], [`aggregating`]) turn its requests into commands and
//! route the events back to sessions.

pub(crate) mod aggregating;
pub(crate) mod seam;
pub(crate) mod transparent;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::config::{ClientIdentity, Credentials};

/// One upstream MQTT connection. `LinkId::GATEWAY` is the gateway's own link (QoS −1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

impl LinkId {
    /// The gateway's own link, used for QoS −1 traffic.
    pub const GATEWAY: LinkId = LinkId(0);
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link-{}", self.0)
    }
}

/// An MQTT QoS level on the broker side (MQTT-SN's QoS −1 never travels upstream as such).
/// Ordered, so the lower of two levels is `min`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MqttQos {
    /// QoS 0: at most once, nothing is acknowledged.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: at least once (PUBACK).
    AtLeastOnce = 1,
    /// QoS 2: exactly once (PUBREC, PUBREL, PUBCOMP).
    ExactlyOnce = 2,
}

impl MqttQos {
    /// The level as MQTT encodes it (0, 1 or 2).
    pub fn level(self) -> u8 {
        self as u8
    }

    /// The QoS of level `level`; `None` above 2.
    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            0 => Some(MqttQos::AtMostOnce),
            1 => Some(MqttQos::AtLeastOnce),
            2 => Some(MqttQos::ExactlyOnce),
            _ => None,
        }
    }

    /// The broker-side level of an MQTT-SN QoS: −1 and 0 are both at most once.
    pub fn from_sn(qos: sn_codec::QoS) -> Self {
        match qos {
            sn_codec::QoS::MinusOne | sn_codec::QoS::Zero => MqttQos::AtMostOnce,
            sn_codec::QoS::One => MqttQos::AtLeastOnce,
            sn_codec::QoS::Two => MqttQos::ExactlyOnce,
        }
    }

    /// The same level in MQTT-SN.
    pub fn to_sn(self) -> sn_codec::QoS {
        match self {
            MqttQos::AtMostOnce => sn_codec::QoS::Zero,
            MqttQos::AtLeastOnce => sn_codec::QoS::One,
            MqttQos::ExactlyOnce => sn_codec::QoS::Two,
        }
    }

    /// QoS 1 or 2: the receiver acknowledges.
    pub fn is_acknowledged(self) -> bool {
        self != MqttQos::AtMostOnce
    }
}

impl fmt::Display for MqttQos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.level())
    }
}

/// A core-side id for one publish, subscribe or unsubscribe request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);

/// Identifies one incoming message on one link for its later acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryId {
    /// The MQTT packet id (0 for QoS 0).
    pub pkid: u16,
    /// The QoS the message arrived with upstream (what its acknowledgement is: PUBACK for 1,
    /// PUBREC for 2; nothing for 0).
    pub qos: MqttQos,
}

/// An MQTT Will for an upstream CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Upstream topic (prefix applied).
    pub topic: String,
    /// Will payload.
    pub payload: Bytes,
    /// QoS of the Will message.
    pub qos: MqttQos,
    /// Publish retained.
    pub retain: bool,
}

/// What the core asks the connector to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamCmd {
    /// Start a link (and keep it connected until `Close`).
    Open {
        /// The new link.
        link: LinkId,
        /// Upstream MQTT ClientId (prefix applied).
        client_id: String,
        /// MQTT clean session.
        clean_session: bool,
        /// MQTT keep-alive of the link.
        keep_alive: Duration,
        /// MQTT Will.
        will: Option<Will>,
        /// Username and password.
        credentials: Option<Credentials>,
        /// TLS client certificate of this link, instead of the endpoint's (mqtts only).
        identity: Option<ClientIdentity>,
    },
    /// Subscribe on a link.
    Subscribe {
        /// The link.
        link: LinkId,
        /// Correlates the `SubAck`.
        token: Token,
        /// Upstream filter (prefix applied).
        filter: String,
        /// Requested QoS.
        qos: MqttQos,
    },
    /// Unsubscribe on a link.
    Unsubscribe {
        /// The link.
        link: LinkId,
        /// Correlates the `UnsubAck`.
        token: Token,
        /// Upstream filter (prefix applied).
        filter: String,
    },
    /// Publish on a link.
    Publish {
        /// The link.
        link: LinkId,
        /// Correlates the `PublishDone`.
        token: Token,
        /// Upstream topic (prefix applied).
        topic: String,
        /// Payload.
        payload: Bytes,
        /// QoS.
        qos: MqttQos,
        /// Retain flag.
        retain: bool,
    },
    /// The QoS 2 publish `token` (the next `Publish` with it) is answered by the broker with
    /// PUBREC: report [`UpstreamEvent::PubrecHeld`] and send no PUBREL until `Release`, so
    /// the gateway can record the PUBREC durably first (exactly once across a crash).
    HoldRelease {
        /// The link.
        link: LinkId,
        /// The publish.
        token: Token,
    },
    /// Send the PUBREL of a publish whose PUBREC was held (or will not be held, if it has not
    /// arrived yet).
    Release {
        /// The link.
        link: LinkId,
        /// The publish.
        token: Token,
    },
    /// After a restart, on a resumed session: the broker answered a QoS 2 publish with PUBREC
    /// under `pkid` in an earlier run; send PUBREL for it and report `PublishDone` for `token`
    /// on PUBCOMP.
    Resume {
        /// The link.
        link: LinkId,
        /// Correlates the `PublishDone`.
        token: Token,
        /// The packet id the broker holds the publish under.
        pkid: u16,
    },
    /// The message released under `pkid` (`Release` or `Resume`) is forgotten durably: a new
    /// publish may use the packet id again. Until then the link holds back a publish rumqttc
    /// gives that id, so a PUBREL resumed after a crash can never release a different message.
    Forget {
        /// The link.
        link: LinkId,
        /// The packet id.
        pkid: u16,
    },
    /// Acknowledge an incoming QoS 1/2 message (PUBACK / PUBREC to the broker).
    Ack {
        /// The link it arrived on.
        link: LinkId,
        /// Which message.
        delivery: DeliveryId,
    },
    /// End a link: `graceful` sends DISCONNECT (no Will); otherwise the connection is dropped so
    /// that the broker publishes the Will.
    Close {
        /// The link.
        link: LinkId,
        /// DISCONNECT first.
        graceful: bool,
    },
}

/// Why the broker refused a connection (MQTT 3.1.1 CONNACK codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRefusal {
    /// 0x01.
    UnacceptableProtocolVersion,
    /// 0x02.
    IdentifierRejected,
    /// 0x03.
    ServerUnavailable,
    /// 0x04.
    BadCredentials,
    /// 0x05.
    NotAuthorized,
}

/// What the connector reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamEvent {
    /// The link is connected (after the broker's CONNACK).
    LinkUp {
        /// The link.
        link: LinkId,
        /// The broker still had the session.
        session_present: bool,
        /// Requests sent before the reconnect that the broker will never acknowledge, in
        /// submission order: QoS 1/2 publishes only when `session_present` is false,
        /// un-answered subscribes and unsubscribes after any reconnect. The core submits them
        /// again.
        lost: Vec<Token>,
    },
    /// The connection was lost or could not be made; the connector retries with backoff.
    LinkDown {
        /// The link.
        link: LinkId,
        /// Human-readable cause, for logs.
        reason: String,
    },
    /// The broker refused the connection; the connector retries with backoff.
    Refused {
        /// The link.
        link: LinkId,
        /// The broker's reason.
        refusal: BrokerRefusal,
    },
    /// A subscription was answered.
    SubAck {
        /// The link.
        link: LinkId,
        /// The request.
        token: Token,
        /// Granted QoS, `None` when the broker refused (0x80).
        granted: Option<MqttQos>,
    },
    /// An unsubscription was answered.
    UnsubAck {
        /// The link.
        link: LinkId,
        /// The request.
        token: Token,
    },
    /// The broker acknowledged a QoS 1/2 publish (PUBACK / PUBCOMP).
    PublishDone {
        /// The link.
        link: LinkId,
        /// The request.
        token: Token,
    },
    /// The broker accepted a QoS 2 publish (PUBREC): the gateway may answer PUBREC.
    PublishReceived {
        /// The link.
        link: LinkId,
        /// The request.
        token: Token,
    },
    /// The broker accepted a QoS 2 publish under `HoldRelease` (PUBREC) with packet id
    /// `pkid`; its PUBREL waits for `Release`.
    PubrecHeld {
        /// The link.
        link: LinkId,
        /// The request.
        token: Token,
        /// Its packet id.
        pkid: u16,
    },
    /// A message from the broker (QoS 2 duplicates already removed).
    Message {
        /// The link it arrived on.
        link: LinkId,
        /// For the later `Ack` (QoS 1/2).
        delivery: DeliveryId,
        /// Upstream topic (prefix still applied).
        topic: String,
        /// Payload.
        payload: Bytes,
        /// QoS.
        qos: MqttQos,
        /// Retain flag.
        retain: bool,
    },
    /// The link is closed for good after a `Close`.
    Closed {
        /// The link.
        link: LinkId,
    },
}

impl UpstreamEvent {
    /// The link the event is about.
    pub fn link(&self) -> LinkId {
        match self {
            UpstreamEvent::LinkUp { link, .. }
            | UpstreamEvent::LinkDown { link, .. }
            | UpstreamEvent::Refused { link, .. }
            | UpstreamEvent::SubAck { link, .. }
            | UpstreamEvent::UnsubAck { link, .. }
            | UpstreamEvent::PublishDone { link, .. }
            | UpstreamEvent::PublishReceived { link, .. }
            | UpstreamEvent::PubrecHeld { link, .. }
            | UpstreamEvent::Message { link, .. }
            | UpstreamEvent::Closed { link } => *link,
        }
    }
}
