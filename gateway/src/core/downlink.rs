//! Broker → client: queueing, REGISTER before the first PUBLISH on a topic, one REGISTER or
//! QoS 1/2 PUBLISH in flight per client, retransmission after T_RETRY (N_RETRY times), and
//! upstream acks released only after the client acknowledged, in the order the messages
//! arrived (`docs/protocol.md`, "Delivering to a client" and "Retransmission").

use bytes::Bytes;
use sn_codec::{Instant, Packet, Publish, QoS, Register, ReturnCode, TopicIdType, TopicRef};

use super::config::OverflowPolicy;
use super::event::{DropReason, GatewayEvent, LostReason};
use super::session::{Downlink, Inflight, InflightStep, PendingAck, State, SubKind};
use super::topics;
use super::upstream::{DeliveryId, LinkId, UpstreamCmd};
use super::{Gateway, SessionId};

impl Gateway {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_message(
        &mut self,
        now: Instant,
        sid: SessionId,
        link: LinkId,
        delivery: DeliveryId,
        topic: &str,
        payload: Bytes,
        qos: u8,
        retain: bool,
    ) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let reliable = qos >= 1;
        if reliable {
            s.acks.push_back(PendingAck {
                link,
                delivery,
                done: false,
            });
        }
        let delivery = reliable.then_some(delivery);
        let Some(topic) = topics::from_upstream(&self.cfg.upstream.topic_prefix, topic) else {
            return self.discard(sid, delivery, DropReason::ForeignTopic);
        };
        if s.rejected.contains(topic) {
            return self.discard(sid, delivery, DropReason::TopicRejected);
        }
        let qos = match qos {
            0 => QoS::Zero,
            1 => QoS::One,
            _ => QoS::Two,
        };
        let msg = Downlink {
            topic: topic.to_owned(),
            payload,
            qos,
            retain,
            delivery,
        };
        let limit = match s.state {
            State::Asleep => self.cfg.sleep.max_buffered,
            _ => self.cfg.downlink_queue,
        };
        if s.queue.len() >= limit {
            let oldest_qos0 = s.queue.iter().position(|m| m.qos == QoS::Zero);
            let victim = match (oldest_qos0, self.cfg.sleep.overflow) {
                (Some(i), _) => s.queue.remove(i),
                (None, OverflowPolicy::DropOldest) => s.queue.pop_front(),
                (None, OverflowPolicy::DropOldestQos0ThenReject) => {
                    return self.discard(sid, msg.delivery, DropReason::QueueFull);
                }
            };
            if let Some(v) = victim {
                self.discard(sid, v.delivery, DropReason::QueueFull);
            }
        }
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.queue.push_back(msg);
        self.pump(now, sid);
    }

    /// Drops a downlink message by policy: counted, and acknowledged upstream so the broker
    /// does not redeliver it forever.
    fn discard(&mut self, sid: SessionId, delivery: Option<DeliveryId>, reason: DropReason) {
        let peer = self.table.get(sid).map(|s| s.peer().clone());
        self.drop_from(peer, reason);
        self.release(sid, delivery);
    }

    /// Acknowledges upstream a downlink message that was already counted as dropped (e.g. by
    /// the send that could not encode it).
    fn release(&mut self, sid: SessionId, delivery: Option<DeliveryId>) {
        if let Some(d) = delivery {
            self.complete_ack(sid, d);
        }
    }

    /// Marks an upstream delivery as done and releases every ack that is now at the front.
    pub(super) fn complete_ack(&mut self, sid: SessionId, delivery: DeliveryId) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        if let Some(a) = s
            .acks
            .iter_mut()
            .find(|a| !a.done && a.delivery == delivery)
        {
            a.done = true;
        }
        while s.acks.front().is_some_and(|a| a.done) {
            if let Some(a) = s.acks.pop_front()
                && Some(a.link) == s.link()
            {
                self.out.command(UpstreamCmd::Ack {
                    link: a.link,
                    delivery: a.delivery,
                });
            }
        }
    }

    /// Sends queued messages while nothing is in flight (Active or Awake only).
    pub(super) fn pump(&mut self, now: Instant, sid: SessionId) {
        loop {
            let Some(s) = self.table.get_mut(sid) else {
                return;
            };
            if !matches!(s.state, State::Active | State::Awake) || s.inflight.is_some() {
                return;
            }
            let Some(msg) = s.queue.pop_front() else {
                if s.state == State::Awake {
                    self.finish_wake(now, sid);
                }
                return;
            };
            // Which topic reference the client knows for this topic.
            let known = if let Some(id) = self.cfg.predefined.id_of(s.client_id(), &msg.topic) {
                Some(TopicRef::Predefined(id))
            } else if let (Some(short), Some((SubKind::Short, _))) =
                (short_bytes(&msg.topic), s.subscriptions.get(&msg.topic))
            {
                Some(TopicRef::Short(short))
            } else {
                match s.registry.lookup(&msg.topic) {
                    Some((id, true)) => Some(TopicRef::Normal(id)),
                    _ => None,
                }
            };
            match known {
                Some(topic) => self.send_publish(now, sid, msg, topic),
                None => self.send_register(now, sid, msg),
            }
        }
    }

    fn send_register(&mut self, now: Instant, sid: SessionId, msg: Downlink) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let Ok(topic_id) = s.registry.id_for(
            &msg.topic,
            false,
            &self.cfg.predefined,
            self.cfg.max_topics_per_client,
        ) else {
            return self.discard(sid, msg.delivery, DropReason::TopicIdsExhausted);
        };
        let msg_id = s.take_msg_id();
        let reg = Packet::Register(Register {
            topic_id,
            msg_id,
            topic_name: msg.topic.as_bytes(),
        });
        if !self.send_to_session(sid, &reg) {
            // Counted by the send.
            return self.release(sid, msg.delivery);
        }
        if let Some(s) = self.table.get_mut(sid) {
            s.inflight = Some(Inflight {
                msg,
                msg_id,
                step: InflightStep::Regack { topic_id },
                sent_at: now,
                retries: 0,
            });
        }
    }

    fn send_publish(&mut self, now: Instant, sid: SessionId, msg: Downlink, topic: TopicRef<'_>) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let msg_id = if msg.qos == QoS::Zero {
            0
        } else {
            s.take_msg_id()
        };
        let p = Packet::Publish(Publish {
            dup: false,
            qos: msg.qos,
            retain: msg.retain,
            topic,
            msg_id,
            data: &msg.payload,
        });
        if !self.send_to_session(sid, &p) {
            // Counted by the send.
            return self.release(sid, msg.delivery);
        }
        self.out
            .stats
            .count_publish(msg.qos, super::stats::Direction::Downstream);
        if msg.qos == QoS::Zero {
            return;
        }
        let step = InflightStep::Publish {
            topic_id: topic.id_field(),
            id_type: topic.id_type(),
        };
        if let Some(s) = self.table.get_mut(sid) {
            s.inflight = Some(Inflight {
                msg,
                msg_id,
                step,
                sent_at: now,
                retries: 0,
            });
        }
    }

    pub(super) fn on_regack(
        &mut self,
        now: Instant,
        sid: SessionId,
        topic_id: u16,
        msg_id: u16,
        rc: ReturnCode,
    ) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
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
            s.registry.confirm(topic_id);
            self.send_publish(now, sid, inflight.msg, TopicRef::Normal(topic_id));
        } else {
            // The client does not want this topic name (not the filter): forget its id and
            // deliver nothing more on it until the client's next SUBSCRIBE.
            s.registry.remove(topic_id);
            s.rejected.insert(inflight.msg.topic.clone());
            self.discard(sid, inflight.msg.delivery, DropReason::TopicRejected);
        }
        self.pump(now, sid);
    }

    pub(super) fn on_puback(
        &mut self,
        now: Instant,
        sid: SessionId,
        topic_id: u16,
        msg_id: u16,
        rc: ReturnCode,
    ) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
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
                    self.complete_ack(sid, d);
                }
            }
            ReturnCode::InvalidTopicId => {
                // The mapping is wrong: mark the id unconfirmed, so the message goes out again
                // after a fresh REGISTER.
                let normal = matches!(
                    inflight.step,
                    InflightStep::Publish {
                        id_type: TopicIdType::Normal,
                        ..
                    }
                );
                if normal {
                    s.registry.unconfirm(topic_id);
                    s.queue.push_front(inflight.msg);
                } else {
                    self.discard(sid, inflight.msg.delivery, DropReason::TopicRejected);
                }
            }
            _ => self.discard(sid, inflight.msg.delivery, DropReason::ClientRejected),
        }
        self.pump(now, sid);
    }

    pub(super) fn on_pubrec(&mut self, now: Instant, sid: SessionId, msg_id: u16) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let Some(i) = s.inflight.as_mut().filter(|i| i.msg_id == msg_id) else {
            return;
        };
        match i.step {
            InflightStep::Publish { .. } if i.msg.qos == QoS::Two => {
                i.step = InflightStep::Pubcomp;
                i.sent_at = now;
                i.retries = 0;
                let delivery = i.msg.delivery;
                self.send_to_session(sid, &Packet::Pubrel { msg_id });
                if let Some(d) = delivery {
                    self.complete_ack(sid, d);
                }
            }
            // A repeated PUBREC: our PUBREL was lost.
            InflightStep::Pubcomp => {
                self.send_to_session(sid, &Packet::Pubrel { msg_id });
            }
            _ => {}
        }
    }

    pub(super) fn on_pubcomp(&mut self, now: Instant, sid: SessionId, msg_id: u16) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        if s.inflight
            .as_ref()
            .is_some_and(|i| i.msg_id == msg_id && i.step == InflightStep::Pubcomp)
        {
            s.inflight = None;
            self.pump(now, sid);
        }
    }

    /// Retransmits the message in flight when T_RETRY has passed; after N_RETRY the client is
    /// Lost (Active) or goes back to sleep keeping the message (Awake).
    pub(super) fn retransmit_due(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        if !matches!(s.state, State::Active | State::Awake) {
            return;
        }
        let Some(i) = s.inflight.as_mut() else { return };
        if now < i.sent_at.saturating_add(self.cfg.t_retry) {
            return;
        }
        if i.retries >= self.cfg.n_retry {
            if s.state == State::Awake {
                if let Some(i) = s.inflight.take()
                    && i.step != InflightStep::Pubcomp
                {
                    s.queue.push_front(i.msg);
                }
                return self.back_to_sleep(now, sid, false);
            }
            return self.lose(sid, LostReason::RetriesExhausted);
        }
        i.retries += 1;
        i.sent_at = now;
        let (client_id, peer) = (s.client_id().to_owned(), s.peer().clone());
        let msg_type = self.send_inflight(sid, true);
        if let Some(msg_type) = msg_type {
            self.event(GatewayEvent::Retransmitted {
                client_id,
                peer,
                msg_type,
            });
        }
    }

    /// Sends the message in flight again right away (repeated PINGREQ, wake-up, resume).
    pub(super) fn resend_inflight(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        match s.inflight.as_mut() {
            Some(i) => {
                i.sent_at = now;
                i.retries = 0;
                self.send_inflight(sid, true);
            }
            None => self.pump(now, sid),
        }
    }

    /// Encodes the in-flight message again (PUBLISH with DUP set when `dup`).
    fn send_inflight(&mut self, sid: SessionId, dup: bool) -> Option<sn_codec::MsgType> {
        let s = self.table.get_mut(sid)?;
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
        let peer = s.peer().clone();
        self.out.send(&peer, &packet);
        Some(packet.msg_type())
    }
}

/// The two octets of a 2-character topic name.
fn short_bytes(topic: &str) -> Option<[u8; 2]> {
    <[u8; 2]>::try_from(topic.as_bytes()).ok()
}
