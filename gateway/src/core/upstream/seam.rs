//! The upstream seam: the one interface session code calls to reach the broker, with two
//! implementations side by side — [`super::transparent::Transparent`] (a broker connection per
//! client) and [`super::aggregating::Aggregating`] (every client shares the gateway's own
//! connection). Session code never knows which one runs: it asks to open, publish, subscribe,
//! unsubscribe, acknowledge and close, and handles the [`LinkEvent`]s routed back to it.
//! `docs/architecture.md`, "The upstream seam", describes the contract.

use std::fmt;

use bytes::Bytes;

use super::{BrokerRefusal, DeliveryId, LinkId, MqttQos, Token, UpstreamEvent};
use crate::core::config::GatewayConfig;
use crate::core::outputs::Outputs;
use crate::core::session::{Session, SessionId};

/// How a session reaches the broker; the session table indexes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Attachment {
    /// A broker connection of the session's own (transparent mode).
    Link(LinkId),
    /// A share of the gateway's own connection (aggregating mode), known by the session.
    Shared(SessionId),
}

/// The answer to [`Seam::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// The broker answers later with a [`LinkEvent::Up`] or [`LinkEvent::Down`].
    Later(Attachment),
    /// Connected now, with no broker session to resume (subscriptions are restored).
    Now(Attachment),
    /// Refused now, for `BrokerRefusal`; the attachment stays until closed and hears `Up` when
    /// the broker can be reached again.
    Refused(Attachment, BrokerRefusal),
}

/// The answer to a request that may be settled at once ([`Seam::unsubscribe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The broker's answer comes later as a [`LinkEvent`].
    Later,
    /// Done now; no event follows.
    Now,
}

/// A message to publish upstream.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// Upstream topic (prefix applied).
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: MqttQos,
    pub(crate) retain: bool,
    /// QoS 2: hold the broker's PUBREC (report [`LinkEvent::PubrecHeld`], no PUBREL until
    /// `Release`), so the exchange is recorded before the broker delivers it.
    pub(crate) hold_release: bool,
}

/// What a session's upstream presence reports, routed to that session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkEvent {
    /// Connected; `lost` lists requests the broker will never answer (they go again).
    Up {
        session_present: bool,
        lost: Vec<Token>,
    },
    /// Connection lost or refused; the connector retries.
    Down { refusal: Option<BrokerRefusal> },
    /// A subscription was answered (`None`: refused).
    SubAck {
        token: Token,
        granted: Option<MqttQos>,
    },
    /// An unsubscription was answered.
    UnsubAck { token: Token },
    /// A QoS 1/2 publish was completed by the broker.
    PublishDone { token: Token },
    /// A QoS 2 publish was accepted (PUBREC) by the broker (for a held one: its PUBREL is
    /// out).
    PublishReceived { token: Token },
    /// A QoS 2 publish sent with `hold_release` was accepted under `pkid`; its PUBREL waits
    /// for `Release`.
    PubrecHeld { token: Token, pkid: u16 },
    /// A message for the session; `delivery` is what to acknowledge once the client has it
    /// (`None`: nobody upstream waits for an acknowledgement).
    Message {
        delivery: Option<DeliveryId>,
        /// Upstream topic (prefix still applied).
        topic: String,
        payload: Bytes,
        /// QoS towards the client.
        qos: MqttQos,
        retain: bool,
    },
}

/// Where a connector event goes after [`Seam::route`].
#[derive(Debug)]
pub(crate) enum Routed {
    /// The gateway's own link (status, QoS −1, health).
    Gateway(UpstreamEvent),
    /// The session attached by `Attachment::Link` (the table finds it; a link it no longer
    /// knows gets its messages acknowledged).
    Link(LinkId, LinkEvent),
    /// Session `sid`.
    Session(SessionId, LinkEvent),
}

/// The interface between session code and an upstream mode. Every method queues what the
/// connector must do on `out`; tokens come from `out`'s one allocator.
pub(crate) trait Seam: fmt::Debug + Send {
    /// Gives session `sid` a presence at the broker (its ClientId, Will and credentials from
    /// `s` and `cfg`, as the mode needs them). `shared_up`: the gateway's own link is connected.
    fn open(
        &mut self,
        sid: SessionId,
        s: &Session,
        cfg: &GatewayConfig,
        clean_session: bool,
        shared_up: bool,
        out: &mut Outputs,
    ) -> Opened;

    /// Ends a presence: `graceful` without its Will, otherwise the Will is published.
    fn close(&mut self, at: Attachment, graceful: bool, out: &mut Outputs);

    /// Publishes `msg`; QoS 1/2 are answered by `PublishDone` (and `PublishReceived`).
    fn publish(&mut self, at: Attachment, token: Token, msg: Outgoing, out: &mut Outputs);

    /// Subscribes `filter` (prefix applied); answered by `SubAck`.
    fn subscribe(
        &mut self,
        at: Attachment,
        token: Token,
        filter: String,
        qos: MqttQos,
        out: &mut Outputs,
    );

    /// Unsubscribes `filter` (prefix applied).
    fn unsubscribe(
        &mut self,
        at: Attachment,
        token: Token,
        filter: String,
        out: &mut Outputs,
    ) -> Answer;

    /// The broker connection an attachment's publishes travel on (for `Release` and
    /// `Forget`).
    fn link(&self, at: Attachment) -> Option<LinkId>;

    /// After a restart or a reset connection, on a resumed broker session: sends the PUBREL of
    /// a QoS 2 publish the broker accepted under `pkid`; its PUBCOMP is reported as
    /// `PublishDone` for `token`, to this attachment.
    fn resume(&mut self, at: Attachment, token: Token, pkid: u16, out: &mut Outputs);

    /// The client has a message: acknowledge it to the broker (a no-op where the broker was
    /// already answered).
    fn ack(&mut self, at: Attachment, delivery: DeliveryId, out: &mut Outputs);

    /// Sorts a connector event to the gateway's link or to sessions, appending to `to` in the
    /// order they must be handled. `shared_up`: the gateway's own link was connected before
    /// this event.
    fn route(
        &mut self,
        event: UpstreamEvent,
        shared_up: bool,
        out: &mut Outputs,
        to: &mut Vec<Routed>,
    );
}

/// The session's Will as the broker gets it (prefix applied), if it has one.
pub(crate) fn upstream_will(cfg: &GatewayConfig, s: &Session) -> Option<super::Will> {
    let prefix = &cfg.upstream.topic_prefix;
    s.will
        .topic
        .as_ref()
        .map(|(topic, qos, retain)| super::Will {
            topic: crate::core::topics::to_upstream(prefix, topic),
            payload: s.will.msg.clone(),
            qos: *qos,
            retain: *retain,
        })
}
