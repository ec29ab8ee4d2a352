//! [`Correlator`]: maps rumqttc packet ids back to core [`Token`]s and de-duplicates incoming
//! QoS 2 messages. Plain data, no I/O: the link task feeds it the event loop's events, the
//! connector feeds it the requests it hands to rumqttc.
//!
//! rumqttc's state assigns packet ids itself; the id shows up as `Outgoing::Publish(pkid)`,
//! in the order the link task handed the requests over. So each request kind has a FIFO of tokens in
//! the order the requests entered rumqttc's channel, and each `Outgoing` event maps the FIFO
//! front to the packet id it reports.
//!
//! Cases beyond the simple mapping (all from rumqttc 0.25.1's source):
//! - **Replay**: after a reconnect with a present session rumqttc re-sends un-acked QoS 1/2
//!   publishes with their old id; an `Outgoing::Publish` for an id still awaiting its ack is a
//!   replay and maps nothing.
//! - **QoS 0** publishes report id 0: the FIFO front is popped, nothing is awaited.
//! - **QoS 2 after PUBREC** leaves rumqttc's publish slot free, so a new publish may reuse the
//!   id while PUBCOMP is outstanding: publishes awaiting PUBACK/PUBREC and those awaiting
//!   PUBCOMP are kept in separate maps.
//! - **Subscribe/unsubscribe ids** are not checked for collisions by rumqttc: the maps keep a
//!   queue per id. They are never replayed after a reconnect, so every sent but un-answered one
//!   is reported lost on the next CONNACK, whatever `session_present` says.
//! - **Collision** (`Outgoing::AwaitAck(pkid)`): the publish handed over waits in rumqttc
//!   until `pkid` is acked, then is sent as `Outgoing::Publish(pkid)`.
//! - **Connection lost**: rumqttc's `clean` moves un-acked requests to `pending`; on a CONNACK
//!   with `session_present = false` it drops them, silently (which is why the core keeps its
//!   own copy until the broker's ack). Requests in `pending` that were never sent would be the
//!   oldest entries of each FIFO; the link task counts them ([`Unsent`]) when the connection
//!   drops. (It hands rumqttc a request only when it can write it at once, so there are none
//!   today; commands that could not go out wait in the link's outbox instead.)
//!
//! Incoming QoS 2 (rumqttc hands over every re-sent PUBLISH again): each id is tracked from
//! PUBLISH to PUBREL as delivered → ack queued → ack sent (`Outgoing::PubRec`). A re-sent
//! PUBLISH is dropped, and answered with a second PUBREC only if the first one went out on a
//! connection that dropped (the broker re-sends PUBLISH only when it never got the PUBREC); a
//! needless second PUBREC would make the broker send a second PUBREL, which rumqttc rejects.
//! Ids whose PUBREC is queued or sent are what [`Correlator::awaiting_pubrel`] hands to the
//! rumqttc workaround for upstream issue #664.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::core::upstream::Token;

/// One request the core made, in the order of submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Req {
    /// Submission order across all request kinds of the link (orders the `lost` list).
    seq: u64,
    token: Token,
    /// Publish QoS; 1 for subscribes and unsubscribes (they are always acknowledged).
    qos: u8,
}

/// Requests rumqttc holds in its `pending` queue without ever having sent them (moved there
/// from the request channel when the connection dropped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Unsent {
    /// Publishes with packet id 0 (never assigned one).
    pub(crate) publishes: usize,
    /// Subscribes.
    pub(crate) subscribes: usize,
    /// Unsubscribes.
    pub(crate) unsubscribes: usize,
}

/// What an `Outgoing::Publish(pkid)` meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutgoingPublish {
    /// A new QoS 1/2 publish now awaits its ack under this id.
    Mapped(Token),
    /// A QoS 0 publish went out; nothing follows.
    Qos0(Token),
    /// A replay of a publish that already has this id.
    Replay,
    /// No request was waiting: a bookkeeping mismatch (logged by the caller).
    Unknown,
}

/// Where an incoming QoS 2 message is between PUBLISH and PUBREL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    /// Handed to the core, not acknowledged yet.
    Delivered,
    /// The core acknowledged it; the PUBREC is in rumqttc's queue.
    AckQueued,
    /// The PUBREC went out (`Outgoing::PubRec`), on this or an earlier connection.
    AckSent,
}

/// What to do with an incoming PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncomingVerdict {
    /// Hand it to the core.
    Deliver,
    /// A QoS 2 duplicate the core has but not yet acknowledged: drop it (the core's `Ack`
    /// answers both).
    Duplicate,
    /// A QoS 2 duplicate whose PUBREC went out on a connection that then dropped before the
    /// broker got it: drop it and send PUBREC again.
    DuplicateReack,
}

/// Packet-id ↔ token bookkeeping of one link. See the module doc.
#[derive(Debug, Default)]
pub(crate) struct Correlator {
    next_seq: u64,
    publishes: VecDeque<Req>,
    subscribes: VecDeque<Req>,
    unsubscribes: VecDeque<Req>,
    /// How many FIFO fronts are in rumqttc's `pending` queue, unsent.
    unsent: Unsent,
    /// A publish rumqttc holds back because its id collided (`Outgoing::AwaitAck`).
    collided: Option<(u16, Req)>,
    awaiting_ack: BTreeMap<u16, Req>,
    awaiting_comp: BTreeMap<u16, Req>,
    subs_sent: BTreeMap<u16, VecDeque<Req>>,
    unsubs_sent: BTreeMap<u16, VecDeque<Req>>,
    /// Incoming QoS 2 ids between PUBLISH and PUBREL.
    incoming_qos2: BTreeMap<u16, Inbound>,
    /// Publishes (by token) whose PUBREC is to be held until `release`.
    hold: BTreeSet<Token>,
    /// Publishes whose PUBREC is held, by packet id.
    held: BTreeMap<u16, Req>,
}

impl Correlator {
    /// An empty correlator.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn req(&mut self, token: Token, qos: u8) -> Req {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        Req { seq, token, qos }
    }

    /// A publish is handed to rumqttc's state.
    pub(crate) fn push_publish(&mut self, token: Token, qos: u8) {
        let req = self.req(token, qos);
        self.publishes.push_back(req);
    }

    /// A subscribe is handed to rumqttc's state.
    pub(crate) fn push_subscribe(&mut self, token: Token) {
        let req = self.req(token, 1);
        self.subscribes.push_back(req);
    }

    /// An unsubscribe is handed to rumqttc's state.
    pub(crate) fn push_unsubscribe(&mut self, token: Token) {
        let req = self.req(token, 1);
        self.unsubscribes.push_back(req);
    }

    /// `Outgoing::Publish(pkid)`.
    pub(crate) fn outgoing_publish(&mut self, pkid: u16) -> OutgoingPublish {
        if pkid == 0 {
            return match pop_sent(&mut self.publishes, &mut self.unsent.publishes) {
                Some(req) => OutgoingPublish::Qos0(req.token),
                None => OutgoingPublish::Unknown,
            };
        }
        if self.awaiting_ack.contains_key(&pkid) {
            return OutgoingPublish::Replay;
        }
        let req = match self.collided.take() {
            Some((id, req)) if id == pkid => Some(req),
            other => {
                self.collided = other;
                pop_sent(&mut self.publishes, &mut self.unsent.publishes)
            }
        };
        match req {
            Some(req) => {
                self.awaiting_ack.insert(pkid, req);
                OutgoingPublish::Mapped(req.token)
            }
            None => OutgoingPublish::Unknown,
        }
    }

    /// `Outgoing::AwaitAck(pkid)`: the next publish collided with an id still in use and waits
    /// inside rumqttc.
    pub(crate) fn await_ack(&mut self, pkid: u16) {
        if self.collided.is_some() {
            // rumqttc takes no new request while a collision is pending; nothing to do.
            return;
        }
        if let Some(req) = pop_sent(&mut self.publishes, &mut self.unsent.publishes) {
            self.collided = Some((pkid, req));
        }
    }

    /// `Outgoing::Subscribe(pkid)`.
    pub(crate) fn outgoing_subscribe(&mut self, pkid: u16) -> Option<Token> {
        let req = pop_sent(&mut self.subscribes, &mut self.unsent.subscribes)?;
        self.subs_sent.entry(pkid).or_default().push_back(req);
        Some(req.token)
    }

    /// `Outgoing::Unsubscribe(pkid)`.
    pub(crate) fn outgoing_unsubscribe(&mut self, pkid: u16) -> Option<Token> {
        let req = pop_sent(&mut self.unsubscribes, &mut self.unsent.unsubscribes)?;
        self.unsubs_sent.entry(pkid).or_default().push_back(req);
        Some(req.token)
    }

    /// `Incoming::PubAck(pkid)`: the QoS 1 publish is done.
    pub(crate) fn puback(&mut self, pkid: u16) -> Option<Token> {
        self.awaiting_ack.remove(&pkid).map(|r| r.token)
    }

    /// `Incoming::PubRec(pkid)`: the QoS 2 publish is received; PUBCOMP follows.
    pub(crate) fn pubrec(&mut self, pkid: u16) -> Option<Token> {
        let req = self.awaiting_ack.remove(&pkid)?;
        self.awaiting_comp.insert(pkid, req);
        Some(req.token)
    }

    /// `Incoming::PubComp(pkid)`: the QoS 2 publish is done.
    pub(crate) fn pubcomp(&mut self, pkid: u16) -> Option<Token> {
        let req = self.awaiting_comp.remove(&pkid)?;
        self.hold.remove(&req.token);
        Some(req.token)
    }

    /// The PUBREC of publish `token` is to be held until [`Correlator::release`].
    pub(crate) fn hold(&mut self, token: Token) {
        self.hold.insert(token);
    }

    /// An incoming PUBREC for `pkid`: the token of its publish if the PUBREC is to be held
    /// (not handed to rumqttc, which would answer PUBREL at once).
    pub(crate) fn hold_pubrec(&mut self, pkid: u16) -> Option<Token> {
        let token = self.awaiting_ack.get(&pkid)?.token;
        if !self.hold.contains(&token) {
            return None;
        }
        let req = self.awaiting_ack.remove(&pkid)?;
        self.held.insert(pkid, req);
        Some(token)
    }

    /// `Release` of publish `token`: the packet id of its held PUBREC, to hand to rumqttc now
    /// (PUBCOMP follows), or `None` when it has not arrived (it will then pass at once).
    pub(crate) fn release(&mut self, token: Token) -> Option<u16> {
        self.hold.remove(&token);
        let pkid = self
            .held
            .iter()
            .find(|(_, r)| r.token == token)
            .map(|(pkid, _)| *pkid)?;
        let req = self.held.remove(&pkid)?;
        self.awaiting_comp.insert(pkid, req);
        Some(pkid)
    }

    /// `Resume`: a PUBREL for `pkid` (a publish of an earlier run) is sent; its PUBCOMP
    /// reports `token` done.
    pub(crate) fn resume(&mut self, token: Token, pkid: u16) {
        let req = self.req(token, 2);
        self.awaiting_comp.insert(pkid, req);
    }

    /// `Incoming::SubAck(pkid)`.
    pub(crate) fn suback(&mut self, pkid: u16) -> Option<Token> {
        pop_keyed(&mut self.subs_sent, pkid)
    }

    /// `Incoming::UnsubAck(pkid)`.
    pub(crate) fn unsuback(&mut self, pkid: u16) -> Option<Token> {
        pop_keyed(&mut self.unsubs_sent, pkid)
    }

    /// The connection dropped; `unsent` says what rumqttc now holds in `pending` unsent.
    pub(crate) fn connection_lost(&mut self, unsent: Unsent) {
        self.unsent = Unsent {
            publishes: unsent.publishes.min(self.publishes.len()),
            subscribes: unsent.subscribes.min(self.subscribes.len()),
            unsubscribes: unsent.unsubscribes.min(self.unsubscribes.len()),
        };
    }

    /// A CONNACK. Returns, in submission order, the tokens of requests the broker will never
    /// answer: with `session_present = false` every sent or unsent-but-dropped QoS 1/2
    /// publish, subscribe and unsubscribe; with `session_present = true` only the subscribes
    /// and unsubscribes that were sent and not answered (rumqttc never replays those).
    /// When `session_present` is false the caller must also clear rumqttc's `state.collision`.
    pub(crate) fn connack(&mut self, session_present: bool) -> Vec<Token> {
        let mut lost: Vec<Req> = Vec::new();
        lost.extend(std::mem::take(&mut self.subs_sent).into_values().flatten());
        lost.extend(
            std::mem::take(&mut self.unsubs_sent)
                .into_values()
                .flatten(),
        );
        let held = std::mem::take(&mut self.held);
        if session_present {
            // rumqttc replays their PUBLISH; the broker answers PUBREC again.
            self.awaiting_ack.extend(held);
        } else {
            lost.extend(held.into_values());
            lost.extend(std::mem::take(&mut self.awaiting_ack).into_values());
            lost.extend(std::mem::take(&mut self.awaiting_comp).into_values());
            lost.extend(self.collided.take().map(|(_, r)| r));
            lost.extend(self.publishes.drain(..self.unsent.publishes));
            lost.extend(self.subscribes.drain(..self.unsent.subscribes));
            lost.extend(self.unsubscribes.drain(..self.unsent.unsubscribes));
            self.incoming_qos2.clear();
        }
        self.unsent = Unsent::default();
        for r in &lost {
            self.hold.remove(&r.token);
        }
        lost.retain(|r| r.qos > 0);
        lost.sort_by_key(|r| r.seq);
        lost.into_iter().map(|r| r.token).collect()
    }

    /// An incoming PUBLISH with `pkid` and `qos`: deliver it or drop a QoS 2 duplicate (rumqttc
    /// hands over every duplicate).
    pub(crate) fn incoming_publish(&mut self, pkid: u16, qos: u8) -> IncomingVerdict {
        if qos != 2 {
            return IncomingVerdict::Deliver;
        }
        match self.incoming_qos2.get_mut(&pkid) {
            None => {
                self.incoming_qos2.insert(pkid, Inbound::Delivered);
                IncomingVerdict::Deliver
            }
            Some(Inbound::Delivered | Inbound::AckQueued) => IncomingVerdict::Duplicate,
            Some(state @ Inbound::AckSent) => {
                // The broker re-sends PUBLISH only if it never got the PUBREC.
                *state = Inbound::AckQueued;
                IncomingVerdict::DuplicateReack
            }
        }
    }

    /// Whether the incoming QoS 2 exchange `pkid` is one of this link's (a PUBREL for any other
    /// is for an exchange of an earlier run of the gateway, which the broker's resumed session
    /// remembers).
    pub(crate) fn knows_incoming(&self, pkid: u16) -> bool {
        self.incoming_qos2.contains_key(&pkid)
    }

    /// An incoming PUBREL: the QoS 2 exchange for `pkid` is over.
    pub(crate) fn incoming_pubrel(&mut self, pkid: u16) {
        self.incoming_qos2.remove(&pkid);
    }

    /// The core's acknowledgement of the incoming message `pkid` with `qos` is queued.
    pub(crate) fn delivery_acked(&mut self, pkid: u16, qos: u8) {
        if let (2, Some(state @ Inbound::Delivered)) = (qos, self.incoming_qos2.get_mut(&pkid)) {
            *state = Inbound::AckQueued;
        }
    }

    /// `Outgoing::PubRec(pkid)`: the acknowledgement went out.
    pub(crate) fn outgoing_pubrec(&mut self, pkid: u16) {
        if let Some(state) = self.incoming_qos2.get_mut(&pkid) {
            *state = Inbound::AckSent;
        }
    }

    /// Incoming QoS 2 ids whose PUBREC is sent or queued: the broker may send PUBREL for them
    /// after a reconnect. rumqttc forgets them on every disconnect and would take that PUBREL
    /// for a protocol error (upstream issue #664), so the link task re-registers them in
    /// rumqttc's state on a CONNACK with `session_present`.
    pub(crate) fn awaiting_pubrel(&self) -> Vec<u16> {
        self.incoming_qos2
            .iter()
            .filter(|(_, state)| **state != Inbound::Delivered)
            .map(|(pkid, _)| *pkid)
            .collect()
    }

    /// Takes over [`Correlator::awaiting_pubrel`] of the previous link of the same session
    /// (its queued PUBRECs died with it, so all count as sent: a re-sent PUBLISH is re-acked).
    pub(crate) fn inherit_awaiting_pubrel(&mut self, pkids: &[u16]) {
        for pkid in pkids {
            self.incoming_qos2.insert(*pkid, Inbound::AckSent);
        }
    }

    /// Requests submitted and not yet answered or reported lost.
    #[cfg(test)]
    pub(crate) fn outstanding(&self) -> usize {
        self.publishes.len()
            + self.subscribes.len()
            + self.unsubscribes.len()
            + usize::from(self.collided.is_some())
            + self.awaiting_ack.len()
            + self.awaiting_comp.len()
            + self.subs_sent.values().map(VecDeque::len).sum::<usize>()
            + self.unsubs_sent.values().map(VecDeque::len).sum::<usize>()
    }
}

/// Pops the FIFO front for a request that has just been sent; if it was counted as unsent (it
/// came out of rumqttc's `pending`), the count shrinks with it.
fn pop_sent(fifo: &mut VecDeque<Req>, unsent: &mut usize) -> Option<Req> {
    let req = fifo.pop_front()?;
    *unsent = unsent.saturating_sub(1);
    Some(req)
}

fn pop_keyed(map: &mut BTreeMap<u16, VecDeque<Req>>, pkid: u16) -> Option<Token> {
    let queue = map.get_mut(&pkid)?;
    let req = queue.pop_front();
    if queue.is_empty() {
        map.remove(&pkid);
    }
    req.map(|r| r.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u64) -> Token {
        Token(n)
    }

    #[test]
    fn qos1_publishes_map_in_request_order() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 1);
        c.push_publish(t(2), 1);
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(1)));
        assert_eq!(c.outgoing_publish(2), OutgoingPublish::Mapped(t(2)));
        assert_eq!(c.puback(2), Some(t(2)));
        assert_eq!(c.puback(1), Some(t(1)));
        assert_eq!(c.puback(1), None);
        assert_eq!(c.outstanding(), 0);
    }

    #[test]
    fn qos0_publish_reports_id_zero_and_is_just_popped() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 0);
        c.push_publish(t(2), 1);
        assert_eq!(c.outgoing_publish(0), OutgoingPublish::Qos0(t(1)));
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(2)));
        assert_eq!(c.outstanding(), 1);
    }

    #[test]
    fn replay_of_a_mapped_id_is_ignored() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 1);
        c.push_publish(t(2), 1);
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(1)));
        c.connection_lost(Unsent {
            publishes: 1,
            ..Unsent::default()
        });
        assert!(c.connack(true).is_empty());
        // rumqttc replays pkid 1, then sends the unsent one with a new id.
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Replay);
        assert_eq!(c.outgoing_publish(2), OutgoingPublish::Mapped(t(2)));
        assert_eq!(c.puback(1), Some(t(1)));
        assert_eq!(c.puback(2), Some(t(2)));
    }

    #[test]
    fn qos2_flow_and_id_reuse_while_pubcomp_is_outstanding() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 2);
        c.push_publish(t(2), 1);
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(1)));
        assert_eq!(c.pubrec(1), Some(t(1)));
        // The slot is free in rumqttc: a new publish gets id 1 while PUBCOMP 1 is due.
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(2)));
        assert_eq!(c.pubcomp(1), Some(t(1)));
        assert_eq!(c.puback(1), Some(t(2)));
        assert_eq!(c.outstanding(), 0);
    }

    #[test]
    fn subscribes_and_unsubscribes_have_their_own_fifos() {
        let mut c = Correlator::new();
        c.push_subscribe(t(1));
        c.push_publish(t(2), 1);
        c.push_unsubscribe(t(3));
        // Ids come from one counter in rumqttc.
        assert_eq!(c.outgoing_subscribe(1), Some(t(1)));
        assert_eq!(c.outgoing_publish(2), OutgoingPublish::Mapped(t(2)));
        assert_eq!(c.outgoing_unsubscribe(3), Some(t(3)));
        assert_eq!(c.unsuback(3), Some(t(3)));
        assert_eq!(c.suback(1), Some(t(1)));
        assert_eq!(c.puback(2), Some(t(2)));
        assert_eq!(c.suback(1), None);
    }

    #[test]
    fn colliding_subscribe_ids_resolve_oldest_first() {
        let mut c = Correlator::new();
        c.push_subscribe(t(1));
        c.push_subscribe(t(2));
        assert_eq!(c.outgoing_subscribe(4), Some(t(1)));
        assert_eq!(c.outgoing_subscribe(4), Some(t(2)));
        assert_eq!(c.suback(4), Some(t(1)));
        assert_eq!(c.suback(4), Some(t(2)));
    }

    #[test]
    fn collision_maps_the_held_publish_when_it_is_finally_sent() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 1);
        c.push_publish(t(2), 1);
        c.push_publish(t(3), 1);
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(1)));
        // t(2) collides on id 1, t(3) still in the channel.
        c.await_ack(1);
        assert_eq!(c.puback(1), Some(t(1)));
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(2)));
        assert_eq!(c.outgoing_publish(2), OutgoingPublish::Mapped(t(3)));
        assert_eq!(c.puback(1), Some(t(2)));
        assert_eq!(c.puback(2), Some(t(3)));
    }

    #[test]
    fn session_lost_reports_sent_and_unsent_requests_in_submission_order() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 1); // sent, un-acked
        c.push_subscribe(t(2)); // sent, un-acked
        c.push_publish(t(3), 2); // sent, PUBREC'd
        c.push_publish(t(4), 0); // unsent QoS 0: not reported
        c.push_publish(t(5), 1); // unsent
        c.push_unsubscribe(t(6)); // unsent
        c.push_publish(t(7), 1); // submitted after the drop: still in the channel
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(1)));
        assert_eq!(c.outgoing_subscribe(2), Some(t(2)));
        assert_eq!(c.outgoing_publish(3), OutgoingPublish::Mapped(t(3)));
        assert_eq!(c.pubrec(3), Some(t(3)));
        c.connection_lost(Unsent {
            publishes: 2,
            subscribes: 0,
            unsubscribes: 1,
        });
        assert_eq!(c.connack(false), vec![t(1), t(2), t(3), t(5), t(6)]);
        // The request that stayed in the channel goes out normally.
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(7)));
        assert_eq!(c.outstanding(), 1);
    }

    #[test]
    fn session_present_reports_only_unanswered_subscriptions() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 1);
        c.push_subscribe(t(2));
        c.push_unsubscribe(t(3));
        c.push_subscribe(t(4));
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(1)));
        assert_eq!(c.outgoing_subscribe(2), Some(t(2)));
        assert_eq!(c.outgoing_unsubscribe(3), Some(t(3)));
        c.connection_lost(Unsent {
            subscribes: 1,
            ..Unsent::default()
        });
        assert_eq!(c.connack(true), vec![t(2), t(3)]);
        // The unsent subscribe comes out of rumqttc's pending queue.
        assert_eq!(c.outgoing_subscribe(5), Some(t(4)));
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Replay);
        assert_eq!(c.puback(1), Some(t(1)));
    }

    #[test]
    fn collided_publish_is_lost_with_the_session() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 1);
        c.push_publish(t(2), 1);
        assert_eq!(c.outgoing_publish(1), OutgoingPublish::Mapped(t(1)));
        c.await_ack(1);
        c.connection_lost(Unsent::default());
        assert_eq!(c.connack(false), vec![t(1), t(2)]);
        assert_eq!(c.outstanding(), 0);
    }

    #[test]
    fn first_connack_loses_nothing() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 1);
        c.push_subscribe(t(2));
        assert!(c.connack(false).is_empty());
        assert_eq!(c.outgoing_subscribe(1), Some(t(2)));
        assert_eq!(c.outgoing_publish(2), OutgoingPublish::Mapped(t(1)));
    }

    #[test]
    fn unsent_counts_are_clamped_to_the_fifo() {
        let mut c = Correlator::new();
        c.push_publish(t(1), 1);
        c.connection_lost(Unsent {
            publishes: 5,
            subscribes: 5,
            unsubscribes: 5,
        });
        assert_eq!(c.connack(false), vec![t(1)]);
    }

    #[test]
    fn unknown_ids_resolve_nothing() {
        let mut c = Correlator::new();
        assert_eq!(c.outgoing_publish(3), OutgoingPublish::Unknown);
        assert_eq!(c.outgoing_publish(0), OutgoingPublish::Unknown);
        assert_eq!(c.puback(3), None);
        assert_eq!(c.pubrec(3), None);
        assert_eq!(c.pubcomp(3), None);
        assert_eq!(c.suback(3), None);
        assert_eq!(c.unsuback(3), None);
        assert_eq!(c.outgoing_subscribe(3), None);
    }

    #[test]
    fn qos2_duplicates_are_dropped_until_pubrel() {
        let mut c = Correlator::new();
        assert_eq!(c.incoming_publish(7, 2), IncomingVerdict::Deliver);
        assert_eq!(c.incoming_publish(7, 2), IncomingVerdict::Duplicate);
        c.delivery_acked(7, 2);
        // The PUBREC is still queued: it answers the duplicate too.
        assert_eq!(c.incoming_publish(7, 2), IncomingVerdict::Duplicate);
        c.outgoing_pubrec(7);
        // Sent, yet the broker re-sends PUBLISH: that PUBREC was lost; send it once more.
        assert_eq!(c.incoming_publish(7, 2), IncomingVerdict::DuplicateReack);
        assert_eq!(c.incoming_publish(7, 2), IncomingVerdict::Duplicate);
        c.incoming_pubrel(7);
        assert_eq!(c.incoming_publish(7, 2), IncomingVerdict::Deliver);
        // QoS 1 duplicates are the core's business (at least once).
        assert_eq!(c.incoming_publish(7, 1), IncomingVerdict::Deliver);
        assert_eq!(c.incoming_publish(7, 1), IncomingVerdict::Deliver);
    }

    #[test]
    fn ids_awaiting_pubrel_are_the_acknowledged_ones_and_carry_over() {
        let mut c = Correlator::new();
        for pkid in [1, 2, 3] {
            assert_eq!(c.incoming_publish(pkid, 2), IncomingVerdict::Deliver);
        }
        c.delivery_acked(2, 2);
        c.delivery_acked(3, 2);
        c.outgoing_pubrec(3);
        assert_eq!(c.awaiting_pubrel(), vec![2, 3]);
        c.incoming_pubrel(3);
        assert_eq!(c.awaiting_pubrel(), vec![2]);

        let mut next = Correlator::new();
        next.inherit_awaiting_pubrel(&c.awaiting_pubrel());
        assert_eq!(next.awaiting_pubrel(), vec![2]);
        // The PUBREC queued on the old link is gone: a re-sent PUBLISH is re-acked, once.
        assert_eq!(next.incoming_publish(2, 2), IncomingVerdict::DuplicateReack);
        assert_eq!(next.incoming_publish(2, 2), IncomingVerdict::Duplicate);
    }

    #[test]
    fn new_session_forgets_incoming_qos2_ids() {
        let mut c = Correlator::new();
        assert_eq!(c.incoming_publish(7, 2), IncomingVerdict::Deliver);
        c.connack(true);
        assert_eq!(c.incoming_publish(7, 2), IncomingVerdict::Duplicate);
        c.connack(false);
        assert_eq!(c.incoming_publish(7, 2), IncomingVerdict::Deliver);
    }
}
