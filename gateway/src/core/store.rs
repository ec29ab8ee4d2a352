//! The vocabulary between the core and the state store: what the core asks the shell to keep
//! so that a restart (or a power loss) does not forget a client that asked to be remembered
//! (CleanSession=0). The core stays free of I/O: it queues [`StoreCmd`]s, which the shell
//! drains with [`super::Gateway::poll_store`] and writes in batches; after a restart the shell
//! hands the records it finds back through [`super::Gateway::restore`].
//!
//! `docs/architecture.md`, "State that survives a restart", says what is kept and when.

use std::time::Duration;

use bytes::Bytes;

use super::addr::PeerAddr;
use super::upstream::MqttQos;

/// The life-cycle state a session is restored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredState {
    /// Connected: restored active, its keep-alive supervision starting at the restart.
    Active,
    /// Sleeping (also awake or connecting from sleep): restored asleep, its sleep timer
    /// starting at the restart.
    Asleep,
    /// Disconnected cleanly; remembered for a reconnect.
    Disconnected,
    /// Lost; remembered for a reconnect.
    Lost,
}

impl StoredState {
    /// The name stored in the database (`docs/` shows them).
    pub fn name(self) -> &'static str {
        match self {
            StoredState::Active => "active",
            StoredState::Asleep => "asleep",
            StoredState::Disconnected => "disconnected",
            StoredState::Lost => "lost",
        }
    }

    /// The state of a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            StoredState::Active,
            StoredState::Asleep,
            StoredState::Disconnected,
            StoredState::Lost,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// How a client named a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredTopicKind {
    /// A topic name or filter.
    Name,
    /// A two-character short name.
    Short,
    /// A predefined topic id.
    Predefined(u16),
}

/// One subscription of a stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The MQTT-SN topic filter (no upstream prefix).
    pub filter: String,
    /// How the client named it.
    pub kind: StoredTopicKind,
    /// The QoS granted (or asked for while the broker had not answered).
    pub qos: MqttQos,
}

/// One normal topic id of a stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTopicId {
    /// The id (never 0x0000 or 0xFFFF).
    pub id: u16,
    /// The MQTT-SN topic name.
    pub name: String,
    /// The client is known to have the mapping.
    pub confirmed: bool,
}

/// A message for a client kept in its record: buffered while it sleeps when nobody upstream
/// holds it any more (the gateway acknowledged the broker when it took it, as in aggregating
/// mode, or it is QoS 0), or a QoS 2 message in flight to it (with its MsgId and phase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDownlink {
    /// MQTT-SN topic name (prefix removed).
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS towards the client.
    pub qos: MqttQos,
    /// Retain flag.
    pub retain: bool,
    /// The MsgId it went to the client under (the message in flight), sent again under it.
    pub msg_id: Option<u16>,
    /// QoS 2: the client answered PUBREC; only the PUBREL is owed.
    pub released: bool,
    /// Transparent mode: the packet id the broker delivered it under (it is redelivered under
    /// it on the resumed session until the gateway acknowledged it).
    pub broker_pkid: Option<u16>,
}

/// Everything a restart needs to resume one CleanSession=0 session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// MQTT-SN ClientId (the key).
    pub client_id: String,
    /// Where it was in its life cycle.
    pub state: StoredState,
    /// Keep-alive supervision period.
    pub keep_alive: Option<Duration>,
    /// Sleep duration (asleep).
    pub sleep: Option<Duration>,
    /// The address it is (or was last) bound to.
    pub peer: PeerAddr,
    /// Will topic, QoS and retain flag (`None`: no Will).
    pub will_topic: Option<(String, MqttQos, bool)>,
    /// Will message.
    pub will_msg: Bytes,
    /// Subscriptions, in filter order.
    pub subscriptions: Vec<StoredSubscription>,
    /// Normal topic ids, in id order.
    pub topic_ids: Vec<StoredTopicId>,
    /// Messages buffered while asleep that only the gateway holds, in delivery order (empty
    /// unless asleep).
    pub buffered: Vec<StoredDownlink>,
    /// QoS 2 MsgIds of the client the gateway accepted (PUBREC sent or owed) that the client
    /// has not released with PUBREL, ascending: a retransmission after a restart is answered,
    /// not taken again.
    pub qos2_unreleased: Vec<u16>,
    /// Packet ids the broker accepted a QoS 2 publish of the client under and has not
    /// completed (PUBCOMP), ascending: their PUBREL is sent again on the resumed broker
    /// session after a restart.
    pub pubrels_owed: Vec<u16>,
}

/// A client publish in the gateway's custody: acknowledged to the client once stored, deleted
/// once the broker acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Custody order (the key; increasing, so per-client order is kept).
    pub seq: u64,
    /// The ClientId that published it.
    pub client_id: String,
    /// Upstream topic (prefix applied).
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS towards the broker.
    pub qos: MqttQos,
    /// Retain flag.
    pub retain: bool,
    /// How long it had been held when it was read back (zero when written).
    pub age: Duration,
    /// The client's MsgId (0 for QoS 0 and −1).
    pub msg_id: u16,
    /// QoS 2: the packet id the broker accepted it under (PUBREC), when that was recorded;
    /// only the PUBREL is owed then (always `None` when written).
    pub pubrec: Option<u16>,
}

/// What the core asks the store to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreCmd {
    /// Insert or replace the session of `record.client_id`.
    PutSession(Box<SessionRecord>),
    /// Forget the session of `client_id` (it ended with CleanSession=1, was evicted, or its
    /// client connected again with CleanSession=1).
    DeleteSession {
        /// The ClientId.
        client_id: String,
    },
    /// Keep a message in custody. The store reports its `seq` back through
    /// [`super::Gateway::handle_durable`] once it is durable.
    PutMessage(Box<StoredMessage>),
    /// A QoS 2 message in custody was accepted by the broker under `pkid` (PUBREC), or must be
    /// published afresh (`None`). The store reports it durable through the command count
    /// ([`super::Gateway::handle_store_committed`]).
    SetPubrec {
        /// The message's `seq`.
        seq: u64,
        /// The packet id.
        pkid: Option<u16>,
    },
    /// A message left custody (the broker acknowledged it, or it was dropped).
    DeleteMessage {
        /// Its `seq`.
        seq: u64,
    },
}
