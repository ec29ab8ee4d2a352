//! Broker → client: queueing, REGISTER before the first PUBLISH on a topic, one REGISTER or
//! QoS 1/2 PUBLISH in flight per client, retransmission every T_RETRY up to N_RETRY times, and
//! upstream acks released only after the client acknowledged, in the order the messages
//! arrived. Every step is a flow on one session ([`Flow`]).

use bytes::Bytes;
use sn_codec::{Packet, Publish, QoS, Register, ReturnCode, TopicIdType, TopicRef};

use super::config::OverflowPolicy;
use super::event::{DropReason, GatewayEvent, LostReason};
use super::flow::Flow;
use super::session::{Downlink, Inflight, InflightStep, PendingAck, Session, State, SubKind};
use super::sleep;
use super::topics;
use super::upstream::{DeliveryId, MqttQos};

/// A message from the broker for this session.
#[derive(Debug)]
pub(super) struct BrokerMessage<'a> {
    /// For the upstream ack (`None`: nobody upstream waits for one).
    pub(super) delivery: Option<DeliveryId>,
    /// Upstream topic (prefix still applied).
    pub(super) topic: &'a str,
    pub(super) payload: Bytes,
    pub(super) qos: MqttQos,
    pub(super) retain: bool,
}

/// Queues a broker message for the client (bounded; the overflow policy decides what goes) and
/// sends what it can.
pub(super) fn on_message(s: &mut Session, f: &mut Flow<'_>, m: BrokerMessage<'_>) {
    // Acknowledged upstream once the client has it, unless nobody upstream waits for it.
    let delivery = m.delivery;
    if let (Some(d), Some(at)) = (delivery, s.upstream()) {
        s.acks.push_back(PendingAck {
            upstream: at,
            delivery: d,
            done: false,
        });
    }
    let Some(topic) = topics::from_upstream(&f.cfg.upstream.topic_prefix, m.topic) else {
        return discard(s, f, delivery, DropReason::ForeignTopic);
    };
    if s.rejected.contains(topic) {
        return discard(s, f, delivery, DropReason::TopicRejected);
    }
    if let Some(d) = delivery
        && redelivered(s, f, d)
    {
        return;
    }
    let qos = m.qos.to_sn();
    s.last_downlink += 1;
    let msg = Downlink {
        n: s.last_downlink,
        topic: topic.to_owned(),
        payload: m.payload,
        qos,
        retain: m.retain,
        delivery,
        msg_id: None,
        broker_pkid: None,
    };
    let limit = match s.state {
        State::Asleep => f.cfg.sleep.max_buffered,
        _ => f.cfg.downlink_queue,
    };
    if s.queue.len() >= limit {
        let oldest_qos0 = s.queue.iter().position(|m| m.qos == QoS::Zero);
        let victim = match (oldest_qos0, f.cfg.sleep.overflow) {
            (Some(i), _) => s.queue.remove(i),
            (None, OverflowPolicy::DropOldest) => s.queue.pop_front(),
            (None, OverflowPolicy::DropOldestQos0ThenReject) => {
                return discard(s, f, msg.delivery, DropReason::QueueFull);
            }
        };
        if let Some(v) = victim {
            discard(s, f, v.delivery, DropReason::QueueFull);
        }
    }
    s.queue.push_back(msg);
    pump(s, f);
}

/// The broker's redelivery, on a session resumed after a restart, of a QoS 2 message read back
/// from the state store: that message takes the delivery (acknowledged once the client has
/// it, at once if it has already) instead of a second copy going to the client.
fn redelivered(s: &mut Session, f: &mut Flow<'_>, d: DeliveryId) -> bool {
    if d.qos != MqttQos::ExactlyOnce {
        return false;
    }
    let is_it = |m: &Downlink| m.delivery.is_none() && m.broker_pkid == Some(d.pkid);
    if let Some(i) = s.inflight.as_mut().filter(|i| is_it(&i.msg)) {
        i.msg.broker_pkid = None;
        if i.step == InflightStep::Pubcomp {
            complete_ack(s, f, d);
        } else {
            i.msg.delivery = Some(d);
        }
        return true;
    }
    if let Some(m) = s.queue.iter_mut().find(|m| is_it(m)) {
        m.broker_pkid = None;
        m.delivery = Some(d);
        return true;
    }
    false
}

/// Drops a downlink message by policy: counted, and acknowledged upstream so the broker does
/// not redeliver it forever.
fn discard(s: &mut Session, f: &mut Flow<'_>, delivery: Option<DeliveryId>, reason: DropReason) {
    f.out.drop(Some(s.peer().clone()), reason);
    release(s, f, delivery);
}

/// Acknowledges upstream a downlink message that was already counted as dropped (e.g. by the
/// send that could not encode it).
fn release(s: &mut Session, f: &mut Flow<'_>, delivery: Option<DeliveryId>) {
    if let Some(d) = delivery {
        complete_ack(s, f, d);
    }
}

/// Marks an upstream delivery as done and releases every ack that is now at the front.
fn complete_ack(s: &mut Session, f: &mut Flow<'_>, delivery: DeliveryId) {
    if let Some(a) = s
        .acks
        .iter_mut()
        .find(|a| !a.done && a.delivery == delivery)
    {
        a.done = true;
    }
    while s.acks.front().is_some_and(|a| a.done) {
        if let Some(a) = s.acks.pop_front()
            && Some(a.upstream) == s.upstream()
        {
            f.up.ack(a.upstream, a.delivery, f.out);
        }
    }
}

/// Sends queued messages while nothing is in flight (Active or Awake only); an awake client
/// whose queue is empty goes back to sleep.
pub(super) fn pump(s: &mut Session, f: &mut Flow<'_>) {
    loop {
        if !matches!(s.state, State::Active | State::Awake) || s.inflight.is_some() {
            return;
        }
        let Some(msg) = s.queue.pop_front() else {
            if s.state == State::Awake {
                sleep::back_to_sleep(s, f, true);
            }
            return;
        };
        // Which topic reference the client knows for this topic.
        let known = if let Some(id) = f.cfg.predefined.id_of(s.client_id(), &msg.topic) {
            Some(TopicRef::Predefined(id))
        } else if let (Some(short), Some((SubKind::Short, _))) =
            (short_bytes(&msg.topic), s.subscriptions.get(&msg.topic))
        {
            Some(TopicRef::Short(short))
        } else {
            match s.topic_ids.lookup(&msg.topic) {
                Some((id, true)) => Some(TopicRef::Normal(id)),
                _ => None,
            }
        };
        match known {
            Some(topic) => send_publish(s, f, msg, topic),
            None => send_register(s, f, msg),
        }
    }
}

fn send_register(s: &mut Session, f: &mut Flow<'_>, msg: Downlink) {
    let Ok(topic_id) = s.topic_ids.id_for(
        &msg.topic,
        false,
        &f.cfg.predefined,
        f.cfg.max_topics_per_client,
    ) else {
        return discard(s, f, msg.delivery, DropReason::TopicIdsExhausted);
    };
    let msg_id = s.take_msg_id();
    let reg = Packet::Register(Register {
        topic_id,
        msg_id,
        topic_name: msg.topic.as_bytes(),
    });
    if !f.reply(s, &reg) {
        // Counted by the send.
        return release(s, f, msg.delivery);
    }
    s.inflight = Some(Inflight {
        msg,
        msg_id,
        step: InflightStep::Regack { topic_id },
        sent_at: f.now,
        retries: 0,
        held: false,
    });
}

fn send_publish(s: &mut Session, f: &mut Flow<'_>, msg: Downlink, topic: TopicRef<'_>) {
    let msg_id = match (msg.qos, msg.msg_id) {
        (QoS::Zero, _) => 0,
        // Sent under this MsgId before a restart: the client may have it.
        (_, Some(msg_id)) => msg_id,
        _ => s.take_msg_id(),
    };
    let step = InflightStep::Publish {
        topic_id: topic.id_field(),
        id_type: topic.id_type(),
    };
    // A QoS 2 message's MsgId is recorded before it goes: after a crash it is sent again under
    // the same one, which the client recognises.
    let held = msg.qos == QoS::Two && f.records(s);
    if held {
        f.out.send_held_after_store(s.client_id(), f.now);
    } else {
        let p = Packet::Publish(Publish {
            dup: msg.msg_id.is_some(),
            qos: msg.qos,
            retain: msg.retain,
            topic,
            msg_id,
            data: &msg.payload,
        });
        if !f.reply(s, &p) {
            // Counted by the send.
            return release(s, f, msg.delivery);
        }
        f.out
            .stats
            .count_publish(msg.qos, super::stats::Direction::Downstream);
        if msg.qos == QoS::Zero {
            return;
        }
    }
    s.inflight = Some(Inflight {
        msg,
        msg_id,
        step,
        sent_at: f.now,
        retries: 0,
        held,
    });
}

/// The session record holding the held message in flight is committed: it goes to the client
/// now (a client asleep meanwhile gets it when it wakes). One that does not fit the client's
/// transport is dropped and counted.
pub(super) fn send_held(s: &mut Session, f: &mut Flow<'_>) {
    let Some(i) = s.inflight.as_mut().filter(|i| i.held) else {
        return;
    };
    i.held = false;
    i.sent_at = f.now;
    i.retries = 0;
    let publish = matches!(i.step, InflightStep::Publish { .. });
    let (qos, dup) = (i.msg.qos, i.msg.msg_id.is_some());
    if !matches!(s.state, State::Active | State::Awake) {
        return;
    }
    if send_inflight(s, f, dup).is_none() {
        // Counted by the send.
        if let Some(i) = s.inflight.take() {
            release(s, f, i.msg.delivery);
        }
        return pump(s, f);
    }
    if publish {
        f.out
            .stats
            .count_publish(qos, super::stats::Direction::Downstream);
    }
}

/// REGACK for the gateway's REGISTER: the PUBLISH follows, or the topic is rejected until the
/// client subscribes again.
pub(super) fn on_regack(
    s: &mut Session,
    f: &mut Flow<'_>,
    topic_id: u16,
    msg_id: u16,
    rc: ReturnCode,
) {
    let matches = s
        .inflight
        .as_ref()
        .is_some_and(|i| i.msg_id == msg_id && i.step == InflightStep::Regack { topic_id });
    if !matches {
        return;
    }
    let Some(inflight) = s.inflight.take() else {
        return;
    };
    if rc.is_accepted() {
        s.topic_ids.confirm(topic_id);
        send_publish(s, f, inflight.msg, TopicRef::Normal(topic_id));
    } else {
        // The client does not want this topic.
        s.topic_ids.remove(topic_id);
        s.rejected.insert(inflight.msg.topic.clone());
        discard(s, f, inflight.msg.delivery, DropReason::TopicRejected);
    }
    pump(s, f);
}

/// PUBACK for the gateway's QoS 1 PUBLISH (or a refusal of a QoS 1/2 one).
pub(super) fn on_puback(
    s: &mut Session,
    f: &mut Flow<'_>,
    topic_id: u16,
    msg_id: u16,
    rc: ReturnCode,
) {
    let matches = s
        .inflight
        .as_ref()
        .is_some_and(|i| i.msg_id == msg_id && matches!(i.step, InflightStep::Publish { .. }));
    if !matches {
        return;
    }
    let Some(inflight) = s.inflight.take() else {
        return;
    };
    match rc {
        ReturnCode::Accepted => {
            if let Some(d) = inflight.msg.delivery {
                complete_ack(s, f, d);
            }
        }
        ReturnCode::InvalidTopicId => {
            // The mapping is wrong: REGISTER again and send it again.
            let normal = matches!(
                inflight.step,
                InflightStep::Publish {
                    id_type: TopicIdType::Normal,
                    ..
                }
            );
            if normal {
                s.topic_ids.unconfirm(topic_id);
                s.queue.push_front(inflight.msg);
            } else {
                discard(s, f, inflight.msg.delivery, DropReason::TopicRejected);
            }
        }
        _ => discard(s, f, inflight.msg.delivery, DropReason::ClientRejected),
    }
    pump(s, f);
}

/// PUBREC for the gateway's QoS 2 PUBLISH: PUBREL, and the broker's message is acknowledged.
pub(super) fn on_pubrec(s: &mut Session, f: &mut Flow<'_>, msg_id: u16) {
    let Some(i) = s.inflight.as_mut().filter(|i| i.msg_id == msg_id) else {
        return;
    };
    match i.step {
        InflightStep::Publish { .. } if i.msg.qos == QoS::Two && !i.held => {
            i.step = InflightStep::Pubcomp;
            i.sent_at = f.now;
            i.retries = 0;
            let delivery = i.msg.delivery;
            if f.records(s) {
                // The client has it: that is recorded before the PUBREL lets it forget the
                // MsgId, so a restart sends PUBREL again, not the message.
                if let Some(i) = s.inflight.as_mut() {
                    i.held = true;
                }
                f.out.send_held_after_store(s.client_id(), f.now);
            } else {
                f.reply(s, &Packet::Pubrel { msg_id });
            }
            if let Some(d) = delivery {
                complete_ack(s, f, d);
            }
        }
        // A repeated PUBREC: our PUBREL was lost.
        InflightStep::Pubcomp if !i.held => {
            f.reply(s, &Packet::Pubrel { msg_id });
        }
        _ => {}
    }
}

/// PUBCOMP: the QoS 2 exchange is over; the next message may go.
pub(super) fn on_pubcomp(s: &mut Session, f: &mut Flow<'_>, msg_id: u16) {
    if s.inflight
        .as_ref()
        .is_some_and(|i| i.msg_id == msg_id && i.step == InflightStep::Pubcomp)
    {
        s.inflight = None;
        pump(s, f);
    }
}

/// Retransmits the message in flight when T_RETRY has passed. After N_RETRY an awake client
/// goes back to sleep keeping the message; an active one is to be declared Lost (returned).
pub(super) fn retransmit_due(s: &mut Session, f: &mut Flow<'_>) -> Option<LostReason> {
    if !matches!(s.state, State::Active | State::Awake) {
        return None;
    }
    let i = s.inflight.as_mut()?;
    if i.held || f.now < i.sent_at.saturating_add(f.cfg.t_retry) {
        return None;
    }
    if i.retries >= f.cfg.n_retry {
        if s.state == State::Awake {
            if let Some(i) = s.inflight.take()
                && i.step != InflightStep::Pubcomp
            {
                s.queue.push_front(i.msg);
            }
            sleep::back_to_sleep(s, f, false);
            return None;
        }
        return Some(LostReason::RetriesExhausted);
    }
    i.retries += 1;
    i.sent_at = f.now;
    if let Some(msg_type) = send_inflight(s, f, true) {
        f.out.event(GatewayEvent::Retransmitted {
            client_id: s.client_id().to_owned(),
            peer: s.peer().clone(),
            msg_type,
        });
    }
    None
}

/// Sends the message in flight again right away (repeated PINGREQ, wake-up, resume), or
/// starts the queue.
pub(super) fn resend_inflight(s: &mut Session, f: &mut Flow<'_>) {
    match s.inflight.as_mut() {
        // Goes once its record is committed.
        Some(i) if i.held => {}
        Some(i) => {
            i.sent_at = f.now;
            i.retries = 0;
            send_inflight(s, f, true);
        }
        None => pump(s, f),
    }
}

/// Encodes the in-flight message (again: PUBLISH with DUP set when `dup`); `None` when it
/// does not fit the client's transport (counted by the send).
fn send_inflight(s: &mut Session, f: &mut Flow<'_>, dup: bool) -> Option<sn_codec::MsgType> {
    s.inflight.as_ref()?;
    s.tx_count += 1;
    let i = s.inflight.as_ref()?;
    let packet = match i.step {
        InflightStep::Regack { topic_id } => Packet::Register(Register {
            topic_id,
            msg_id: i.msg_id,
            topic_name: i.msg.topic.as_bytes(),
        }),
        InflightStep::Publish { topic_id, id_type } => Packet::Publish(Publish {
            dup,
            qos: i.msg.qos,
            retain: i.msg.retain,
            topic: match id_type {
                TopicIdType::Predefined => TopicRef::Predefined(topic_id),
                TopicIdType::Short => TopicRef::Short(topic_id.to_be_bytes()),
                _ => TopicRef::Normal(topic_id),
            },
            msg_id: i.msg_id,
            data: &i.msg.payload,
        }),
        InflightStep::Pubcomp => Packet::Pubrel { msg_id: i.msg_id },
    };
    f.out.send(s.peer(), &packet).then(|| packet.msg_type())
}

/// The two octets of a 2-character topic name.
fn short_bytes(topic: &str) -> Option<[u8; 2]> {
    <[u8; 2]>::try_from(topic.as_bytes()).ok()
}
