//! Gateway custody (`[storage] custody = "gateway"`, `docs/storage.md`, "Custody"): a client's
//! QoS 1/2 publish is acknowledged once the state store holds it durably, and forwarded to the
//! broker when the gateway's own link is up, in custody order (so in order per client). It
//! leaves custody when the broker acknowledged it, or when it has waited longer than
//! `custody_max_age`. The queue is bounded (`custody_max_messages`): a publish beyond is
//! refused with "congestion" and counted, and the client keeps it.
//!
//! Held messages travel on the gateway's own link in both upstream modes, so they do not
//! depend on the client's session (a client that sleeps, disconnects or is lost after its
//! publish was acknowledged still has it delivered).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use sn_codec::{Instant, MsgType, Packet, ReturnCode};

use super::Gateway;
use super::event::{DropReason, GatewayEvent};
use super::flow::Flow;
use super::session::Session;
use super::store::{StoreCmd, StoredMessage};
use super::upstream::{LinkId, MqttQos, Token, UpstreamCmd};

/// What the client is told once its message is durable.
#[derive(Debug, Clone, Copy)]
struct Answer {
    msg_id: u16,
    topic_id: u16,
    qos: MqttQos,
}

/// One message in custody.
#[derive(Debug)]
struct Held {
    client_id: String,
    topic: String,
    payload: Bytes,
    qos: MqttQos,
    retain: bool,
    since: Instant,
    /// The acknowledgement the client is owed once the message is durable (`None`: QoS 0, or
    /// already answered).
    answer: Option<Answer>,
    /// The store reported it durable.
    durable: bool,
    /// The store failed before it was durable: forwarded anyway, and `answer` is given when the
    /// broker acknowledges it.
    answer_after_broker: bool,
    /// Forwarded on the gateway's link, waiting for the broker.
    sent: Option<Token>,
    /// QoS 2: the broker accepted it under this packet id (PUBREC, recorded in the store
    /// before its PUBREL goes out); after a restart only the PUBREL is sent again.
    pubrec: Option<u16>,
}

/// The messages in the gateway's custody.
#[derive(Debug, Default)]
pub(crate) struct Custody {
    held: BTreeMap<u64, Held>,
    /// The last custody sequence number handed out.
    last_seq: u64,
    /// Forwarded messages by the token of their publish.
    sent: BTreeMap<Token, u64>,
    /// QoS 1/2 messages not durable yet, by client and MsgId (a retransmission waits for the
    /// answer instead of being taken again).
    storing: BTreeMap<(String, u16), u64>,
    /// Payload octets held.
    bytes: u64,
    /// Messages held per client.
    per_client: BTreeMap<String, usize>,
    /// QoS 2 messages read back after a restart whose client had no stored session (its
    /// session keeps its own, `Session::qos2_unreleased`), by client and MsgId: the client may
    /// not have heard their PUBREC, and its retransmission (DUP set) is answered, not taken
    /// again, even once the message has left custody. An entry goes when the client sends
    /// PUBREL for the MsgId or a new PUBLISH under it (so at most what one restart read back).
    restored_qos2: BTreeSet<(String, u16)>,
    /// Held messages the store has not reported durable yet.
    not_durable: BTreeSet<u64>,
    /// Held messages that may go to the broker and have not been sent (forwarding walks these,
    /// not every held message).
    ready: BTreeSet<u64>,
    /// The state store cannot write: new publishes get broker custody, and messages taken but
    /// not durable are forwarded and answered after the broker.
    pub(crate) fallback: bool,
}

impl Custody {
    /// Messages held.
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether `client_id` has messages held (its QoS 0 publishes then queue behind them).
    fn holds_for(&self, client_id: &str) -> bool {
        self.per_client.contains_key(client_id)
    }

    /// When the oldest message expires.
    pub(crate) fn next_deadline(&self, max_age: Option<Duration>) -> Option<Instant> {
        let oldest = self.oldest()?;
        max_age.map(|age| oldest.saturating_add(age))
    }

    /// When the oldest held message was taken: the first in custody order, as messages are
    /// taken in time order (and read back in it after a restart).
    fn oldest(&self) -> Option<Instant> {
        self.held.values().next().map(|h| h.since)
    }

    /// Count, octets and the oldest message's age, for the gauges.
    pub(crate) fn gauges(&self, now: Instant) -> (u64, u64, Duration) {
        let oldest = self
            .oldest()
            .map(|since| now.saturating_duration_since(since))
            .unwrap_or_default();
        (self.held.len() as u64, self.bytes, oldest)
    }

    fn insert(&mut self, seq: u64, h: Held) {
        self.bytes += h.payload.len() as u64;
        *self.per_client.entry(h.client_id.clone()).or_default() += 1;
        self.held.insert(seq, h);
    }

    fn remove(&mut self, seq: u64) -> Option<Held> {
        let h = self.held.remove(&seq)?;
        self.not_durable.remove(&seq);
        self.ready.remove(&seq);
        self.bytes = self.bytes.saturating_sub(h.payload.len() as u64);
        if let Some(n) = self.per_client.get_mut(&h.client_id) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&h.client_id);
            }
        }
        if let Some(token) = h.sent {
            self.sent.remove(&token);
        }
        if let Some(a) = h.answer {
            self.storing.remove(&(h.client_id.clone(), a.msg_id));
        }
        Some(h)
    }
}

/// A client publish the flow hands to custody.
#[derive(Debug)]
pub(super) struct Taken<'a> {
    /// Upstream topic (prefix applied).
    pub(super) topic: String,
    pub(super) payload: &'a [u8],
    pub(super) qos: MqttQos,
    pub(super) retain: bool,
    /// MsgId and the TopicId field of the PUBLISH (for the PUBACK).
    pub(super) msg_id: u16,
    pub(super) topic_id: u16,
}

/// Whether a QoS 2 MsgId of `s` is one a previous run took into custody for a client without
/// a stored session (answered PUBREC on a retransmission; a new publish under it, `forget`,
/// ends that).
pub(super) fn restored(s: &Session, f: &Flow<'_>, msg_id: u16) -> bool {
    !f.custody.restored_qos2.is_empty()
        && f.custody
            .restored_qos2
            .contains(&(s.client_id().to_owned(), msg_id))
}

/// The client released MsgId `msg_id` (PUBREL), or published anew under it: a message of a
/// previous run under it is no longer one it could retransmit.
pub(super) fn forget_restored(s: &Session, f: &mut Flow<'_>, msg_id: u16) {
    if !f.custody.restored_qos2.is_empty() {
        f.custody
            .restored_qos2
            .remove(&(s.client_id().to_owned(), msg_id));
    }
}

/// Whether a QoS 0 publish of `s` goes into custody: only with `queue_qos0`, and only while the
/// broker cannot be reached or earlier messages of the client wait (its order is kept).
pub(super) fn holds_qos0(s: &Session, f: &Flow<'_>) -> bool {
    f.cfg.custody.queue_qos0 && (!f.shared_up || f.custody.holds_for(s.client_id()))
}

/// Takes a client publish into custody: stored, then answered once durable. A retransmission
/// of one being stored waits for that answer; a full queue refuses it with "congestion".
pub(super) fn take(s: &mut Session, f: &mut Flow<'_>, m: Taken<'_>) {
    let reliable = m.qos.is_acknowledged();
    if reliable
        && f.custody
            .storing
            .contains_key(&(s.client_id().to_owned(), m.msg_id))
    {
        return;
    }
    if f.custody.len() >= f.cfg.custody.max_messages {
        f.out.drop(Some(s.peer().clone()), DropReason::CustodyFull);
        if reliable {
            let reply = Packet::Puback {
                topic_id: m.topic_id,
                msg_id: m.msg_id,
                return_code: ReturnCode::Congestion,
            };
            f.reply(s, &reply);
        }
        return;
    }
    let msg_id = m.msg_id;
    let answer = reliable.then_some(Answer {
        msg_id,
        topic_id: m.topic_id,
        qos: m.qos,
    });
    let seq = f
        .custody
        .hold(f.out, f.now, s.client_id().to_owned(), m, answer);
    if reliable {
        f.custody
            .storing
            .insert((s.client_id().to_owned(), msg_id), seq);
    }
}

impl Custody {
    /// Takes a message under `key` (the client's ClientId, or a sender's address for QoS −1):
    /// held, and written to the store. Returns its sequence number.
    fn hold(
        &mut self,
        out: &mut super::outputs::Outputs,
        now: Instant,
        key: String,
        m: Taken<'_>,
        answer: Option<Answer>,
    ) -> u64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        let payload = Bytes::copy_from_slice(m.payload);
        let held = Held {
            client_id: key.clone(),
            topic: m.topic.clone(),
            payload: payload.clone(),
            qos: m.qos,
            retain: m.retain,
            since: now,
            answer,
            durable: false,
            answer_after_broker: false,
            sent: None,
            pubrec: None,
        };
        self.insert(seq, held);
        self.not_durable.insert(seq);
        out.store(StoreCmd::PutMessage(Box::new(StoredMessage {
            seq,
            client_id: key,
            topic: m.topic,
            payload,
            qos: m.qos,
            retain: m.retain,
            age: Duration::ZERO,
            msg_id: m.msg_id,
            pubrec: None,
        })));
        seq
    }
}

impl Gateway {
    /// Whether a QoS −1 publish from `from` goes into custody: with `queue_qos0` in gateway
    /// custody, while the broker cannot be reached or earlier ones of the same sender wait.
    pub(super) fn holds_qos_minus1(&self, from: &super::addr::PeerAddr) -> bool {
        let c = &self.cfg.custody;
        c.mode == super::config::CustodyMode::Gateway
            && !self.custody.fallback
            && c.queue_qos0
            && (!self.gateway_link_up || self.custody.holds_for(&qos_minus1_key(from)))
    }

    /// Holds a QoS −1 publish under its sender's address instead of losing it (dropped and
    /// counted when custody is full).
    pub(super) fn hold_qos_minus1(
        &mut self,
        now: Instant,
        from: &super::addr::PeerAddr,
        topic: String,
        payload: &[u8],
        retain: bool,
    ) {
        if self.custody.len() >= self.cfg.custody.max_messages {
            return self.out.drop(Some(from.clone()), DropReason::CustodyFull);
        }
        let key = qos_minus1_key(from);
        let m = Taken {
            topic,
            payload,
            qos: MqttQos::AtMostOnce,
            retain,
            msg_id: 0,
            topic_id: 0,
        };
        self.custody.hold(&mut self.out, now, key, m, None);
    }
}

/// The custody key of a QoS −1 sender (its order is kept like a client's).
fn qos_minus1_key(from: &super::addr::PeerAddr) -> String {
    format!("qos-1 {from}")
}

/// The client's answer to a message now durable: PUBACK (QoS 1) or PUBREC (QoS 2), remembered
/// so a retransmission gets the same answer.
fn answer(s: &mut Session, f: &mut Flow<'_>, a: Answer) {
    let (reply, kind) = match a.qos {
        MqttQos::ExactlyOnce => (Packet::Pubrec { msg_id: a.msg_id }, MsgType::Pubcomp),
        _ => (
            Packet::Puback {
                topic_id: a.topic_id,
                msg_id: a.msg_id,
                return_code: ReturnCode::Accepted,
            },
            MsgType::Puback,
        ),
    };
    super::uplink::remember(s, f.now, a.msg_id, kind, a.topic_id);
    f.reply(s, &reply);
}

impl Gateway {
    /// The state store made every message up to custody sequence `upto` durable: their
    /// clients get their acknowledgement, and they are forwarded when the broker can be
    /// reached.
    pub fn handle_durable(&mut self, now: Instant, upto: u64) {
        let mut owed = Vec::new();
        let now_durable: Vec<u64> = self.custody.not_durable.range(..=upto).copied().collect();
        for seq in now_durable {
            self.custody.not_durable.remove(&seq);
            let Some(h) = self.custody.held.get_mut(&seq) else {
                continue;
            };
            h.durable = true;
            if h.sent.is_none() {
                self.custody.ready.insert(seq);
            }
            if h.answer_after_broker {
                // Answered when the broker acknowledges it (the store failed meanwhile).
                continue;
            }
            if let Some(a) = h.answer.take() {
                self.custody
                    .storing
                    .remove(&(h.client_id.clone(), a.msg_id));
                owed.push((h.client_id.clone(), a));
            }
        }
        for (client_id, a) in owed {
            self.answer_client(now, &client_id, a);
        }
        self.forward_custody();
        self.persist_changes();
    }

    /// Forwards every durable message not yet forwarded, in custody order, while the
    /// gateway's link is up.
    pub(super) fn forward_custody(&mut self) {
        if !self.gateway_link_up {
            return;
        }
        for seq in std::mem::take(&mut self.custody.ready) {
            let Some(h) = self.custody.held.get_mut(&seq) else {
                continue;
            };
            let token = self.out.token();
            h.sent = Some(token);
            self.custody.sent.insert(token, seq);
            if let Some(pkid) = h.pubrec {
                // Accepted by the broker before a restart: only its PUBREL is owed.
                self.out.command(UpstreamCmd::Resume {
                    link: LinkId::GATEWAY,
                    token,
                    pkid,
                });
                continue;
            }
            if h.qos == MqttQos::ExactlyOnce && !self.custody.fallback {
                // Its PUBREC is recorded before the PUBREL goes out (`custody_pubrec`).
                self.out.command(UpstreamCmd::HoldRelease {
                    link: LinkId::GATEWAY,
                    token,
                });
            }
            self.out.command(UpstreamCmd::Publish {
                link: LinkId::GATEWAY,
                token,
                topic: h.topic.clone(),
                payload: h.payload.clone(),
                qos: h.qos,
                retain: h.retain,
            });
        }
    }

    /// The gateway's link came up: forwarded messages the broker will never acknowledge go
    /// again, with everything still waiting. Without the broker's session, a packet id it
    /// accepted a QoS 2 message under means nothing any more: the message is published afresh.
    pub(super) fn custody_link_up(&mut self, lost: &[Token], session_present: bool) {
        if !session_present {
            for (&seq, h) in &mut self.custody.held {
                if h.pubrec.take().is_some() {
                    self.out.store(StoreCmd::SetPubrec { seq, pkid: None });
                }
            }
        }
        for token in lost {
            if let Some(seq) = self.custody.sent.remove(token)
                && let Some(h) = self.custody.held.get_mut(&seq)
            {
                h.sent = None;
                self.custody.ready.insert(seq);
            }
        }
        self.forward_custody();
    }

    /// The broker accepted a forwarded QoS 2 message under `pkid` (its PUBREC is held): the
    /// packet id is stored, and the PUBREL goes out once that is durable, so a crash never
    /// makes the gateway publish again a message the broker may already have delivered.
    pub(super) fn custody_pubrec(&mut self, token: Token, pkid: u16) {
        if let Some(&seq) = self.custody.sent.get(&token)
            && let Some(h) = self.custody.held.get_mut(&seq)
            && h.pubrec != Some(pkid)
        {
            h.pubrec = Some(pkid);
            self.out.store(StoreCmd::SetPubrec {
                seq,
                pkid: Some(pkid),
            });
        }
        let release = UpstreamCmd::Release {
            link: LinkId::GATEWAY,
            token,
        };
        self.out.after_store(release);
    }

    /// The broker acknowledged a forwarded message: it leaves custody. False when `token` is
    /// not one of custody's.
    pub(super) fn custody_done(&mut self, now: Instant, token: Token) -> bool {
        let Some(seq) = self.custody.sent.remove(&token) else {
            return false;
        };
        if let Some(h) = self.custody.remove(seq) {
            self.out.store(StoreCmd::DeleteMessage { seq });
            if let Some(pkid) = h.pubrec {
                // Once the deletion is durable, the link may give the packet id to another
                // QoS 2 publish (a PUBREL resumed after a crash must find this one or none).
                let forget = UpstreamCmd::Forget {
                    link: LinkId::GATEWAY,
                    pkid,
                };
                self.out.after_store(forget);
            }
            if h.answer_after_broker
                && let Some(a) = h.answer
            {
                self.answer_client(now, &h.client_id, a);
            }
        }
        true
    }

    /// Sends a client the acknowledgement it is owed, if it is still connected.
    /// A QoS 2 MsgId is kept in the session until the client's PUBREL (stored with a
    /// CleanSession=0 session), so a retransmission is answered PUBREC and not taken again,
    /// also once the message has left custody and after a restart.
    fn answer_client(&mut self, now: Instant, client_id: &str, a: Answer) {
        let Some(sid) = self.table.find_client(client_id) else {
            return;
        };
        self.step(sid, now, |s, f| {
            if a.qos == MqttQos::ExactlyOnce {
                s.keep_unreleased(a.msg_id);
            }
            if s.state.is_live() {
                answer(s, f, a);
            }
        });
    }

    /// The state store cannot write (`failing`), or can again. While it cannot, new client
    /// publishes get broker custody, and those taken but not durable are forwarded at once and
    /// answered after the broker (nothing acknowledged is lost either way).
    pub fn handle_store_failing(&mut self, now: Instant, failing: bool) {
        self.custody.fallback = failing;
        if failing {
            for &seq in &self.custody.not_durable {
                if let Some(h) = self.custody.held.get_mut(&seq)
                    && h.answer.is_some()
                {
                    h.answer_after_broker = true;
                    if h.sent.is_none() {
                        self.custody.ready.insert(seq);
                    }
                }
            }
            self.forward_custody();
            // Nothing waits for a store that cannot write: broker acks held for it go out.
            self.release_store_waits(now, u64::MAX);
        }
        self.out
            .event(GatewayEvent::CustodyFallback { active: failing });
        self.persist_changes();
    }

    /// Drops messages held longer than `custody_max_age`.
    pub(super) fn expire_custody(&mut self, now: Instant) {
        let Some(max_age) = self.cfg.custody.max_age else {
            return;
        };
        // Held in time order: the expired ones are at the front.
        while let Some((&seq, h)) = self.custody.held.first_key_value()
            && now.saturating_duration_since(h.since) >= max_age
        {
            if let Some(h) = self.custody.remove(seq) {
                self.out.store(StoreCmd::DeleteMessage { seq });
                self.out.drop(None, DropReason::CustodyExpired);
                self.out.event(GatewayEvent::CustodyExpired {
                    client_id: h.client_id,
                    topic: h.topic,
                });
            }
        }
    }

    /// Puts back the messages a previous run held (durable already); they are forwarded once
    /// the gateway's link is up. Their age counts from when they were taken.
    pub fn restore_custody(&mut self, now: Instant, messages: Vec<StoredMessage>) {
        for m in messages {
            let since =
                Instant::from_millis(now.as_millis().saturating_sub(m.age.as_millis() as u64));
            self.custody.last_seq = self.custody.last_seq.max(m.seq);
            if m.qos == MqttQos::ExactlyOnce {
                // The client may not have heard its PUBREC before the restart.
                match self.table.find_client(&m.client_id) {
                    Some(sid) => {
                        if let Some(s) = self.table.get_mut(sid) {
                            s.keep_unreleased(m.msg_id);
                        }
                    }
                    None => {
                        self.custody
                            .restored_qos2
                            .insert((m.client_id.clone(), m.msg_id));
                    }
                }
            }
            self.custody.insert(
                m.seq,
                Held {
                    client_id: m.client_id,
                    topic: m.topic,
                    payload: m.payload,
                    qos: m.qos,
                    retain: m.retain,
                    since,
                    answer: None,
                    durable: true,
                    answer_after_broker: false,
                    sent: None,
                    pubrec: m.pubrec,
                },
            );
            self.custody.ready.insert(m.seq);
        }
        self.forward_custody();
    }
}
