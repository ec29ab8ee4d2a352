//! Aggregating upstream mode (`docs/architecture.md`, "The upstream seam"): every client keeps a
//! link id of its own in the core, but the link is *virtual*. [`Aggregator`] sits between the
//! session code and the connector and carries every virtual link over the gateway's own MQTT
//! connection ([`LinkId::GATEWAY`]), so a site with thousands of motes holds one broker
//! connection instead of thousands.
//!
//! What it does with the core's commands:
//! - `Open` of a virtual link answers at once: `LinkUp` (no broker session to resume, so the
//!   core restores the client's subscriptions) while the shared link is up, `Refused` otherwise
//!   (the client gets CONNACK "rejected: congestion").
//! - `Publish` travels on the shared link under the same token; the broker's acknowledgement
//!   goes back to the virtual link that sent it.
//! - `Subscribe` adds the client to a reference-counted union per filter and subscribes the
//!   shared link at the highest QoS any holder asked for. Every client SUBSCRIBE is sent
//!   upstream (the broker then sends the filter's retained messages again); retained messages
//!   that follow a SUBACK go only to the clients that SUBACK answers, so earlier holders get
//!   no duplicates. `Unsubscribe` leaves the union and unsubscribes upstream at zero holders.
//! - `Ack` of a virtual link is dropped: the aggregator acknowledged the broker when it took
//!   custody of the message, as soon as it routed it.
//! - `Close` leaves every filter; a non-graceful close (client Lost) publishes the client's
//!   Will on the shared link, since no broker connection of the client's own can die.
//!
//! Messages arriving on the shared link are matched against the union (exact filters by
//! lookup, wildcard filters by scan) and handed to every matching virtual link at the lower of
//! the message's and that client's QoS, in link order; the broker is acknowledged right away.
//! When the shared link drops, every virtual link reports `LinkDown`; when it comes back, the
//! aggregator subscribes the union again and reports `LinkUp` (session present) to each,
//! listing that client's publishes the broker will never acknowledge.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::outputs::Outputs;
use super::topics;
use super::upstream::{BrokerRefusal, DeliveryId, LinkId, Token, UpstreamCmd, UpstreamEvent, Will};

/// A client's virtual link.
#[derive(Debug, Default)]
struct VirtualLink {
    /// Published on the shared link if the link closes without DISCONNECT.
    will: Option<Will>,
}

/// A client SUBSCRIBE waiting for the broker's SUBACK of the shared subscription.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    link: LinkId,
    token: Token,
    qos: u8,
}

/// One filter of the union.
#[derive(Debug, Default)]
struct SharedFilter {
    /// Virtual links holding the filter, with the QoS each asked for.
    holders: BTreeMap<LinkId, u8>,
    /// Holders whose SUBACK was the latest for this filter: retained messages go to them only.
    retained_for: BTreeSet<LinkId>,
}

/// The aggregating multiplexer. Commands go in through [`Aggregator::command`], connector
/// events through [`Aggregator::event`]; both return the events the core must see, and
/// [`Aggregator::poll`] yields what the connector must do.
#[derive(Debug, Default)]
pub(crate) struct Aggregator {
    links: BTreeMap<LinkId, VirtualLink>,
    filters: BTreeMap<String, SharedFilter>,
    /// The filters of `filters` with `+` or `#` (matched by scan; the others by lookup).
    wildcards: BTreeSet<String>,
    /// Upstream SUBSCRIBEs in flight: filter and the client requests they answer.
    subscribing: BTreeMap<Token, (String, Vec<Waiter>)>,
    /// Client QoS 1/2 publishes on the shared link, by token.
    publishes: BTreeMap<Token, LinkId>,
    /// The aggregator's own requests (shared unsubscribes, Wills at QoS 1/2) awaiting their
    /// answer; their tokens come from the core's one allocator.
    own: BTreeSet<Token>,
    out: VecDeque<UpstreamCmd>,
}

impl Aggregator {
    /// The next command for the connector.
    pub(crate) fn poll(&mut self) -> Option<UpstreamCmd> {
        self.out.pop_front()
    }

    /// A token for a request of the aggregator's own, remembered when the broker answers it.
    fn own_token(&mut self, out: &mut Outputs, answered: bool) -> Token {
        let token = out.token();
        if answered {
            self.own.insert(token);
        }
        token
    }

    /// Takes a command from the core; returns events to feed back into it.
    /// `shared_up`: the gateway's own link is connected (the gateway keeps that state).
    pub(crate) fn command(
        &mut self,
        cmd: UpstreamCmd,
        events: &mut Vec<UpstreamEvent>,
        out: &mut Outputs,
        shared_up: bool,
    ) {
        if command_link(&cmd) == LinkId::GATEWAY {
            self.out.push_back(cmd);
            return;
        }
        match cmd {
            UpstreamCmd::Open { link, will, .. } => {
                self.links.insert(link, VirtualLink { will });
                events.push(if shared_up {
                    UpstreamEvent::LinkUp {
                        link,
                        session_present: false,
                        lost: Vec::new(),
                    }
                } else {
                    UpstreamEvent::Refused {
                        link,
                        refusal: BrokerRefusal::ServerUnavailable,
                    }
                });
            }
            UpstreamCmd::Close { link, graceful } => {
                if let Some(v) = self.links.remove(&link) {
                    self.leave_all(link, out);
                    if !graceful && let Some(will) = v.will {
                        let token = self.own_token(out, will.qos >= 1);
                        self.out.push_back(UpstreamCmd::Publish {
                            link: LinkId::GATEWAY,
                            token,
                            topic: will.topic,
                            payload: will.payload,
                            qos: will.qos,
                            retain: will.retain,
                        });
                    }
                }
                events.push(UpstreamEvent::Closed { link });
            }
            UpstreamCmd::Publish {
                link,
                token,
                topic,
                payload,
                qos,
                retain,
            } => {
                if qos >= 1 {
                    self.publishes.insert(token, link);
                }
                self.out.push_back(UpstreamCmd::Publish {
                    link: LinkId::GATEWAY,
                    token,
                    topic,
                    payload,
                    qos,
                    retain,
                });
            }
            UpstreamCmd::Subscribe {
                link,
                token,
                filter,
                qos,
            } => self.subscribe(Waiter { link, token, qos }, filter, out),
            UpstreamCmd::Unsubscribe {
                link,
                token,
                filter,
            } => {
                self.leave(link, &filter, out);
                events.push(UpstreamEvent::UnsubAck { link, token });
            }
            // Custody was taken when the message was routed.
            UpstreamCmd::Ack { .. } => {}
        }
    }

    fn subscribe(&mut self, w: Waiter, filter: String, out: &mut Outputs) {
        if topics::is_wildcard(&filter) {
            self.wildcards.insert(filter.clone());
        }
        let entry = self.filters.entry(filter.clone()).or_default();
        entry.holders.insert(w.link, w.qos);
        let qos = entry.holders.values().copied().max().unwrap_or(w.qos);
        let token = self.own_token(out, false);
        self.subscribing.insert(token, (filter.clone(), vec![w]));
        self.out.push_back(UpstreamCmd::Subscribe {
            link: LinkId::GATEWAY,
            token,
            filter,
            qos,
        });
    }

    /// `link` leaves `filter`; the last holder unsubscribes the shared link.
    fn leave(&mut self, link: LinkId, filter: &str, out: &mut Outputs) {
        let Some(entry) = self.filters.get_mut(filter) else {
            return;
        };
        entry.holders.remove(&link);
        entry.retained_for.remove(&link);
        if entry.holders.is_empty() {
            self.filters.remove(filter);
            self.wildcards.remove(filter);
            let token = self.own_token(out, true);
            self.out.push_back(UpstreamCmd::Unsubscribe {
                link: LinkId::GATEWAY,
                token,
                filter: filter.to_owned(),
            });
        }
    }

    fn leave_all(&mut self, link: LinkId, out: &mut Outputs) {
        let held: Vec<String> = self
            .filters
            .iter()
            .filter(|(_, f)| f.holders.contains_key(&link))
            .map(|(name, _)| name.clone())
            .collect();
        for filter in held {
            self.leave(link, &filter, out);
        }
        for (_, waiters) in self.subscribing.values_mut() {
            waiters.retain(|w| w.link != link);
        }
        self.publishes.retain(|_, l| *l != link);
    }

    /// Takes an event of the shared link; returns the events the core must see (the shared
    /// link's own, and those of the virtual links).
    /// `was_up`: the gateway's own link was connected before this event (the gateway keeps
    /// that state and updates it when it handles the shared link's own event).
    pub(crate) fn event(
        &mut self,
        e: UpstreamEvent,
        events: &mut Vec<UpstreamEvent>,
        out: &mut Outputs,
        was_up: bool,
    ) {
        match e {
            UpstreamEvent::LinkUp {
                link,
                session_present,
                lost,
            } => self.shared_link_up(link, session_present, lost, events, out, was_up),
            UpstreamEvent::LinkDown { .. } | UpstreamEvent::Refused { .. } => {
                let reason = match &e {
                    UpstreamEvent::LinkDown { reason, .. } => reason.clone(),
                    _ => "the broker refused the shared link".to_owned(),
                };
                events.push(e);
                if was_up {
                    for &link in self.links.keys() {
                        events.push(UpstreamEvent::LinkDown {
                            link,
                            reason: reason.clone(),
                        });
                    }
                }
            }
            UpstreamEvent::SubAck { token, granted, .. } => {
                let Some((filter, waiters)) = self.subscribing.remove(&token) else {
                    return events.push(UpstreamEvent::SubAck {
                        link: LinkId::GATEWAY,
                        token,
                        granted,
                    });
                };
                self.suback(&filter, waiters, granted, events, out);
            }
            UpstreamEvent::UnsubAck { token, .. } | UpstreamEvent::PublishDone { token, .. }
                if self.own.remove(&token) => {}
            UpstreamEvent::PublishDone { link, token } => {
                let link = self.publishes.remove(&token).unwrap_or(link);
                events.push(UpstreamEvent::PublishDone { link, token });
            }
            UpstreamEvent::PublishReceived { link, token } => {
                let link = self.publishes.get(&token).copied().unwrap_or(link);
                events.push(UpstreamEvent::PublishReceived { link, token });
            }
            UpstreamEvent::Message {
                link,
                delivery,
                topic,
                payload,
                qos,
                retain,
            } => {
                for (to, granted) in self.recipients(&topic, retain) {
                    let qos = qos.min(granted);
                    events.push(UpstreamEvent::Message {
                        link: to,
                        // The broker is acknowledged below, at custody: the session has
                        // nothing to acknowledge.
                        delivery: DeliveryId { pkid: 0, qos: 0 },
                        topic: topic.clone(),
                        payload: payload.clone(),
                        qos,
                        retain,
                    });
                }
                if delivery.qos >= 1 {
                    self.out.push_back(UpstreamCmd::Ack { link, delivery });
                }
            }
            other => events.push(other),
        }
    }

    fn shared_link_up(
        &mut self,
        link: LinkId,
        session_present: bool,
        lost: Vec<Token>,
        events: &mut Vec<UpstreamEvent>,
        out: &mut Outputs,
        was_up: bool,
    ) {
        let mut own_lost = Vec::new();
        let mut client_lost: BTreeMap<LinkId, Vec<Token>> = BTreeMap::new();
        for token in lost {
            match self.publishes.get(&token) {
                Some(l) => client_lost.entry(*l).or_default().push(token),
                None if self.own.remove(&token) => {}
                None => own_lost.push(token),
            }
        }
        events.push(UpstreamEvent::LinkUp {
            link,
            session_present,
            lost: own_lost,
        });
        // Subscribe the union again (the broker may have lost it), carrying over the clients
        // still waiting for a SUBACK.
        let mut waiting: BTreeMap<String, Vec<Waiter>> = BTreeMap::new();
        for (_, (filter, waiters)) in std::mem::take(&mut self.subscribing) {
            waiting.entry(filter).or_default().extend(waiters);
        }
        if !session_present || !waiting.is_empty() {
            let union: Vec<(String, u8)> = self
                .filters
                .iter()
                .filter(|(name, _)| !session_present || waiting.contains_key(*name))
                .map(|(name, f)| (name.clone(), f.holders.values().copied().max().unwrap_or(0)))
                .collect();
            for (filter, qos) in union {
                let token = self.own_token(out, false);
                let waiters = waiting.remove(&filter).unwrap_or_default();
                self.subscribing.insert(token, (filter.clone(), waiters));
                self.out.push_back(UpstreamCmd::Subscribe {
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
        for &l in self.links.keys() {
            events.push(UpstreamEvent::LinkUp {
                link: l,
                session_present: true,
                lost: client_lost.remove(&l).unwrap_or_default(),
            });
        }
    }

    fn suback(
        &mut self,
        filter: &str,
        waiters: Vec<Waiter>,
        granted: Option<u8>,
        events: &mut Vec<UpstreamEvent>,
        out: &mut Outputs,
    ) {
        let mut refused = Vec::new();
        if let Some(entry) = self.filters.get_mut(filter) {
            entry.retained_for = waiters.iter().map(|w| w.link).collect();
        }
        for w in waiters {
            if granted.is_none() {
                refused.push(w.link);
            }
            events.push(UpstreamEvent::SubAck {
                link: w.link,
                token: w.token,
                granted: granted.map(|g| g.min(w.qos)),
            });
        }
        for link in refused {
            self.leave(link, filter, out);
        }
    }

    /// The virtual links a message on `topic` goes to, each with its QoS (the highest among
    /// its matching filters), in link order.
    fn recipients(&self, topic: &str, retain: bool) -> BTreeMap<LinkId, u8> {
        let mut to = BTreeMap::new();
        let exact = self.filters.get_key_value(topic);
        let wildcards = self
            .wildcards
            .iter()
            .filter(|name| topics::matches(name, topic))
            .filter_map(|name| self.filters.get_key_value(name));
        for (_, f) in exact.into_iter().chain(wildcards) {
            for (&link, &qos) in &f.holders {
                if retain && !f.retained_for.contains(&link) {
                    continue;
                }
                let best = to.entry(link).or_insert(qos);
                *best = (*best).max(qos);
            }
        }
        to
    }
}

fn command_link(cmd: &UpstreamCmd) -> LinkId {
    match cmd {
        UpstreamCmd::Open { link, .. }
        | UpstreamCmd::Subscribe { link, .. }
        | UpstreamCmd::Unsubscribe { link, .. }
        | UpstreamCmd::Publish { link, .. }
        | UpstreamCmd::Ack { link, .. }
        | UpstreamCmd::Close { link, .. } => *link,
    }
}
