//! Aggregating upstream mode (`docs/architecture.md`, "The upstream seam"): every client shares
//! the gateway's own MQTT connection ([`LinkId::GATEWAY`]), so a site with thousands of motes
//! holds one broker connection instead of thousands. Sessions are known here by their
//! [`SessionId`]; there are no per-client links.
//!
//! What the seam's requests become:
//! - `open` answers at once: connected while the shared link is up (no broker session to
//!   resume, so the session restores its subscriptions), refused otherwise (a connecting
//!   client gets CONNACK "rejected: congestion"; a connected one waits for the shared link).
//! - `publish` travels on the shared link under the session's token; the broker's answer is
//!   routed back to the session that sent it.
//! - `subscribe` adds the session to a reference-counted union per filter and subscribes the
//!   shared link at the highest QoS any holder asked for. Every client SUBSCRIBE is sent
//!   upstream (the broker then sends the filter's retained messages again); retained messages
//!   that follow a SUBACK go only to the sessions that SUBACK answers, so earlier holders get
//!   no duplicates. `unsubscribe` leaves the union at once (and unsubscribes the shared link at
//!   zero holders).
//! - `ack` does nothing: the broker was acknowledged when the message was routed (custody).
//! - `close` leaves every filter; a close that is not graceful (client Lost) publishes the
//!   client's Will on the shared link, since no broker connection of the client's own can die.
//!
//! Messages arriving on the shared link are matched against the union (exact filters by
//! lookup, wildcard filters by scan) and routed to every matching session at the lower of the
//! message's and that session's QoS, in session order; the broker is acknowledged once the
//! sessions holding it are durably stored (at once without a state database).
//! When the shared link drops, every attached session hears `Down`; when it comes back, the
//! union is subscribed again and each session hears `Up` (session present), listing its
//! publishes the broker will never acknowledge.

use std::collections::{BTreeMap, BTreeSet};

use super::seam::{Answer, Attachment, LinkEvent, Opened, Outgoing, Routed, Seam, upstream_will};
use super::{BrokerRefusal, DeliveryId, LinkId, MqttQos, Token, UpstreamCmd, UpstreamEvent, Will};
use crate::core::config::GatewayConfig;
use crate::core::outputs::Outputs;
use crate::core::session::{Session, SessionId};
use crate::core::topics;

/// A client SUBSCRIBE waiting for the broker's SUBACK of the shared subscription.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    sid: SessionId,
    token: Token,
    qos: MqttQos,
}

/// One filter of the union.
#[derive(Debug, Default)]
struct SharedFilter {
    /// Sessions holding the filter, with the QoS each asked for.
    holders: BTreeMap<SessionId, MqttQos>,
    /// Holders whose SUBACK was the latest for this filter: retained messages go to them only.
    retained_for: BTreeSet<SessionId>,
}

/// Every client over the gateway's one connection.
#[derive(Debug, Default)]
pub(crate) struct Aggregating {
    /// Attached sessions, with the Will published if one is lost.
    attached: BTreeMap<SessionId, Option<Will>>,
    filters: BTreeMap<String, SharedFilter>,
    /// The filters of `filters` with `+` or `#` (matched by scan; the others by lookup).
    wildcards: BTreeSet<String>,
    /// Upstream SUBSCRIBEs in flight: filter and the client requests they answer.
    subscribing: BTreeMap<Token, (String, Vec<Waiter>)>,
    /// Client QoS 1/2 publishes on the shared link, by token.
    publishes: BTreeMap<Token, SessionId>,
    /// Requests of this mode's own (shared unsubscribes, Wills at QoS 1/2) awaiting their
    /// answer; their tokens come from the core's one allocator.
    own: BTreeSet<Token>,
}

/// The session of an attachment this mode made.
fn session_of(at: Attachment) -> Option<SessionId> {
    match at {
        Attachment::Shared(sid) => Some(sid),
        Attachment::Link(_) => None,
    }
}

impl Aggregating {
    /// A token for a request of this mode's own, remembered when the broker answers it.
    fn own_token(&mut self, out: &mut Outputs, answered: bool) -> Token {
        let token = out.token();
        if answered {
            self.own.insert(token);
        }
        token
    }

    /// `sid` leaves `filter`; the last holder unsubscribes the shared link.
    fn leave(&mut self, sid: SessionId, filter: &str, out: &mut Outputs) {
        let Some(entry) = self.filters.get_mut(filter) else {
            return;
        };
        entry.holders.remove(&sid);
        entry.retained_for.remove(&sid);
        if entry.holders.is_empty() {
            self.filters.remove(filter);
            self.wildcards.remove(filter);
            let token = self.own_token(out, true);
            out.command(UpstreamCmd::Unsubscribe {
                link: LinkId::GATEWAY,
                token,
                filter: filter.to_owned(),
            });
        }
    }

    fn leave_all(&mut self, sid: SessionId, out: &mut Outputs) {
        let held: Vec<String> = self
            .filters
            .iter()
            .filter(|(_, f)| f.holders.contains_key(&sid))
            .map(|(name, _)| name.clone())
            .collect();
        for filter in held {
            self.leave(sid, &filter, out);
        }
        for (_, waiters) in self.subscribing.values_mut() {
            waiters.retain(|w| w.sid != sid);
        }
        self.publishes.retain(|_, s| *s != sid);
    }

    fn shared_link_up(
        &mut self,
        session_present: bool,
        lost: Vec<Token>,
        was_up: bool,
        out: &mut Outputs,
        to: &mut Vec<Routed>,
    ) {
        let mut own_lost = Vec::new();
        let mut client_lost: BTreeMap<SessionId, Vec<Token>> = BTreeMap::new();
        for token in lost {
            match self.publishes.get(&token) {
                Some(sid) => client_lost.entry(*sid).or_default().push(token),
                None if self.own.remove(&token) => {}
                None => own_lost.push(token),
            }
        }
        to.push(Routed::Gateway(UpstreamEvent::LinkUp {
            link: LinkId::GATEWAY,
            session_present,
            lost: own_lost,
        }));
        // Subscribe the union again (the broker may have lost it), carrying over the clients
        // still waiting for a SUBACK.
        let mut waiting: BTreeMap<String, Vec<Waiter>> = BTreeMap::new();
        for (_, (filter, waiters)) in std::mem::take(&mut self.subscribing) {
            waiting.entry(filter).or_default().extend(waiters);
        }
        if !session_present || !waiting.is_empty() {
            let union: Vec<(String, MqttQos)> = self
                .filters
                .iter()
                .filter(|(name, _)| !session_present || waiting.contains_key(*name))
                .map(|(name, f)| {
                    (
                        name.clone(),
                        f.holders.values().copied().max().unwrap_or_default(),
                    )
                })
                .collect();
            for (filter, qos) in union {
                let token = self.own_token(out, false);
                let waiters = waiting.remove(&filter).unwrap_or_default();
                self.subscribing.insert(token, (filter.clone(), waiters));
                out.command(UpstreamCmd::Subscribe {
                    link: LinkId::GATEWAY,
                    token,
                    filter,
                    qos,
                });
            }
        }
        if was_up && client_lost.is_empty() {
            return;
        }
        for &sid in self.attached.keys() {
            let lost = client_lost.remove(&sid).unwrap_or_default();
            to.push(Routed::Session(
                sid,
                LinkEvent::Up {
                    session_present: true,
                    lost,
                },
            ));
        }
    }

    fn suback(
        &mut self,
        filter: &str,
        waiters: Vec<Waiter>,
        granted: Option<MqttQos>,
        out: &mut Outputs,
        to: &mut Vec<Routed>,
    ) {
        if let Some(entry) = self.filters.get_mut(filter) {
            entry.retained_for = waiters.iter().map(|w| w.sid).collect();
        }
        for w in &waiters {
            let granted = granted.map(|g| g.min(w.qos));
            to.push(Routed::Session(
                w.sid,
                LinkEvent::SubAck {
                    token: w.token,
                    granted,
                },
            ));
        }
        if granted.is_none() {
            for w in waiters {
                self.leave(w.sid, filter, out);
            }
        }
    }

    /// The sessions a message on `topic` goes to, each with its QoS (the highest among its
    /// matching filters), in session order.
    fn recipients(&self, topic: &str, retain: bool) -> BTreeMap<SessionId, MqttQos> {
        let mut to = BTreeMap::new();
        let exact = self.filters.get_key_value(topic);
        let wildcards = self
            .wildcards
            .iter()
            .filter(|name| topics::matches(name, topic))
            .filter_map(|name| self.filters.get_key_value(name));
        for (_, f) in exact.into_iter().chain(wildcards) {
            for (&sid, &qos) in &f.holders {
                if retain && !f.retained_for.contains(&sid) {
                    continue;
                }
                let best = to.entry(sid).or_insert(qos);
                *best = (*best).max(qos);
            }
        }
        to
    }
}

impl Seam for Aggregating {
    fn open(
        &mut self,
        sid: SessionId,
        s: &Session,
        cfg: &GatewayConfig,
        _clean_session: bool,
        shared_up: bool,
        _out: &mut Outputs,
    ) -> Opened {
        self.attached.insert(sid, upstream_will(cfg, s));
        let at = Attachment::Shared(sid);
        if shared_up {
            Opened::Now(at)
        } else {
            Opened::Refused(at, BrokerRefusal::ServerUnavailable)
        }
    }

    fn close(&mut self, at: Attachment, graceful: bool, out: &mut Outputs) {
        let Some(sid) = session_of(at) else { return };
        let Some(will) = self.attached.remove(&sid) else {
            return;
        };
        self.leave_all(sid, out);
        if !graceful && let Some(will) = will {
            let token = self.own_token(out, will.qos.is_acknowledged());
            out.command(UpstreamCmd::Publish {
                link: LinkId::GATEWAY,
                token,
                topic: will.topic,
                payload: will.payload,
                qos: will.qos,
                retain: will.retain,
            });
        }
    }

    fn publish(&mut self, at: Attachment, token: Token, msg: Outgoing, out: &mut Outputs) {
        let Some(sid) = session_of(at) else { return };
        if msg.qos.is_acknowledged() {
            self.publishes.insert(token, sid);
        }
        if msg.hold_release {
            out.command(UpstreamCmd::HoldRelease {
                link: LinkId::GATEWAY,
                token,
            });
        }
        out.command(UpstreamCmd::Publish {
            link: LinkId::GATEWAY,
            token,
            topic: msg.topic,
            payload: msg.payload,
            qos: msg.qos,
            retain: msg.retain,
        });
    }

    fn subscribe(
        &mut self,
        at: Attachment,
        token: Token,
        filter: String,
        qos: MqttQos,
        out: &mut Outputs,
    ) {
        let Some(sid) = session_of(at) else { return };
        if topics::is_wildcard(&filter) {
            self.wildcards.insert(filter.clone());
        }
        let entry = self.filters.entry(filter.clone()).or_default();
        entry.holders.insert(sid, qos);
        let shared_qos = entry.holders.values().copied().max().unwrap_or(qos);
        let shared_token = self.own_token(out, false);
        let waiter = Waiter { sid, token, qos };
        self.subscribing
            .insert(shared_token, (filter.clone(), vec![waiter]));
        out.command(UpstreamCmd::Subscribe {
            link: LinkId::GATEWAY,
            token: shared_token,
            filter,
            qos: shared_qos,
        });
    }

    fn unsubscribe(
        &mut self,
        at: Attachment,
        _token: Token,
        filter: String,
        out: &mut Outputs,
    ) -> Answer {
        if let Some(sid) = session_of(at) {
            self.leave(sid, &filter, out);
        }
        Answer::Now
    }

    /// Custody was taken when the message was routed: the broker has its answer already.
    fn ack(&mut self, _at: Attachment, _delivery: DeliveryId, _out: &mut Outputs) {}

    fn link(&self, _at: Attachment) -> Option<LinkId> {
        Some(LinkId::GATEWAY)
    }

    fn resume(&mut self, at: Attachment, token: Token, pkid: u16, out: &mut Outputs) {
        let Some(sid) = session_of(at) else { return };
        self.publishes.insert(token, sid);
        out.command(UpstreamCmd::Resume {
            link: LinkId::GATEWAY,
            token,
            pkid,
        });
    }

    fn route(
        &mut self,
        event: UpstreamEvent,
        was_up: bool,
        out: &mut Outputs,
        to: &mut Vec<Routed>,
    ) {
        match event {
            UpstreamEvent::LinkUp {
                session_present,
                lost,
                ..
            } => self.shared_link_up(session_present, lost, was_up, out, to),
            UpstreamEvent::LinkDown { .. } | UpstreamEvent::Refused { .. } => {
                to.push(Routed::Gateway(event));
                if was_up {
                    for &sid in self.attached.keys() {
                        to.push(Routed::Session(sid, LinkEvent::Down { refusal: None }));
                    }
                }
            }
            UpstreamEvent::SubAck { token, granted, .. } => match self.subscribing.remove(&token) {
                Some((filter, waiters)) => self.suback(&filter, waiters, granted, out, to),
                None => to.push(Routed::Gateway(event)),
            },
            UpstreamEvent::UnsubAck { token, .. } | UpstreamEvent::PublishDone { token, .. }
                if self.own.remove(&token) => {}
            UpstreamEvent::PublishDone { token, .. } => match self.publishes.remove(&token) {
                Some(sid) => to.push(Routed::Session(sid, LinkEvent::PublishDone { token })),
                None => to.push(Routed::Gateway(event)),
            },
            UpstreamEvent::PublishReceived { token, .. } => match self.publishes.get(&token) {
                Some(&sid) => to.push(Routed::Session(sid, LinkEvent::PublishReceived { token })),
                None => to.push(Routed::Gateway(event)),
            },
            // A client's held PUBREC goes to its session; custody's to the gateway.
            UpstreamEvent::PubrecHeld { token, pkid, .. } => match self.publishes.get(&token) {
                Some(&sid) => to.push(Routed::Session(sid, LinkEvent::PubrecHeld { token, pkid })),
                None => to.push(Routed::Gateway(event)),
            },
            UpstreamEvent::Message {
                link,
                delivery,
                topic,
                payload,
                qos,
                retain,
            } => {
                for (sid, granted) in self.recipients(&topic, retain) {
                    let message = LinkEvent::Message {
                        delivery: None,
                        topic: topic.clone(),
                        payload: payload.clone(),
                        qos: qos.min(granted),
                        retain,
                    };
                    to.push(Routed::Session(sid, message));
                }
                if delivery.qos.is_acknowledged() {
                    // After the sessions that now hold it are stored, if they are kept.
                    out.ack_after_store(link, delivery);
                }
            }
            other => to.push(Routed::Gateway(other)),
        }
    }
}
