//! Datagrams from the radio: decode, check the sender, and apply each message to the state.

use heapless::Vec;
use sn_codec::{Instant, Packet, Publish, QoS, ReturnCode, TopicRef};

use super::event::{ClientEvent, Message, MessageTopic, PublishError, bump};
use super::outbox::Request;
use super::topics::{Kind, Reg, Sub};
use super::transmit::Reply;
use super::{Client, State};
use crate::log::{debug, info, warning};

impl<A, const TOPICS: usize, const OUTBOX: usize, const PAYLOAD: usize>
    Client<A, TOPICS, OUTBOX, PAYLOAD>
where
    A: Copy + PartialEq + core::fmt::Debug,
{
    /// A datagram received from `from`. Never fails: malformed datagrams, messages from
    /// addresses other than the gateway (except discovery messages) and replies that match no
    /// request are counted in [`super::Stats`] and dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: A, bytes: &[u8]) {
        bump(&mut self.stats.datagrams_in);
        let packet = match Packet::decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                bump(&mut self.stats.malformed);
                debug!("dropped malformed datagram: {}", e);
                return;
            }
        };
        debug!("<- {}", packet);
        match packet {
            Packet::Advertise { gw_id, duration } => self.on_advertise(now, from, gw_id, duration),
            Packet::GwInfo { gw_id, gw_addr } => self.on_gwinfo(now, from, gw_id, gw_addr),
            Packet::SearchGw { .. } => {
                if self.discovery.is_searching() {
                    self.discovery
                        .heard_searchgw(now, &self.cfg.timers, &mut self.rng);
                }
            }
            other => {
                if self.gateway.is_some_and(|(addr, _)| addr == from) {
                    self.on_gateway_message(now, other);
                } else {
                    bump(&mut self.stats.unexpected);
                }
            }
        }
        self.advance(now);
    }

    fn on_advertise(&mut self, now: Instant, from: A, gw_id: u8, duration: u16) {
        self.discovery
            .on_advertise(now, from, gw_id, duration, self.cfg.timers.n_adv);
        if self.state == State::SearchingGw {
            self.found_gateway(now, from, gw_id);
        } else if self.state == State::Lost && self.gateway.is_some_and(|(a, _)| a == from) {
            // The configured gateway is back: reconnect now rather than after the back-off.
            self.outbox.release_hold();
            self.set_state(State::Connecting);
        }
    }

    fn on_gwinfo(&mut self, now: Instant, from: A, gw_id: u8, gw_addr: &[u8]) {
        if !gw_addr.is_empty() {
            // Another client answered with the gateway's radio address, which this client has no
            // way to turn into an `A`; the gateway's own GWINFO will follow.
            bump(&mut self.stats.unexpected);
            return;
        }
        self.discovery.on_gwinfo(from, gw_id);
        if self.state == State::SearchingGw {
            self.found_gateway(now, from, gw_id);
        }
    }

    /// Queues an acknowledgement; when the queue is full it is dropped (the gateway repeats its
    /// message after its T_RETRY).
    pub(super) fn reply(&mut self, r: Reply) {
        if self.replies.push_back(r).is_err() {
            bump(&mut self.stats.unexpected);
        }
    }

    fn inflight_is(&self, pred: impl Fn(&Request<PAYLOAD>, u16) -> bool) -> bool {
        self.outbox
            .inflight()
            .is_some_and(|i| pred(&i.req, i.msg_id))
    }

    fn on_gateway_message(&mut self, now: Instant, packet: Packet<'_>) {
        let t_retry = self.cfg.timers.t_retry;
        match packet {
            Packet::Connack { return_code } => self.on_connack(now, return_code),
            Packet::WillTopicReq | Packet::WillMsgReq
                if self.inflight_is(|r, _| matches!(r, Request::Connect { .. })) =>
            {
                self.outbox.extend(now, t_retry);
                let r = if packet == Packet::WillTopicReq {
                    Reply::WillTopic
                } else {
                    Reply::WillMsg
                };
                self.reply(r);
            }
            Packet::Regack {
                topic_id,
                msg_id,
                return_code,
            } => self.on_regack(now, topic_id, msg_id, return_code),
            Packet::Register(r) => {
                let code = if r.topic_id == 0 || r.topic_id == 0xFFFF {
                    ReturnCode::InvalidTopicId
                } else if self.topics.learn(r.topic_name, r.topic_id).is_some() {
                    ReturnCode::Accepted
                } else {
                    // Table full of the application's topics, or an unusable name.
                    ReturnCode::Congestion
                };
                self.extend_wake(now);
                self.reply(Reply::Regack {
                    topic_id: r.topic_id,
                    msg_id: r.msg_id,
                    code,
                });
            }
            Packet::Publish(p) => self.on_publish(now, p),
            Packet::Puback {
                topic_id,
                msg_id,
                return_code,
            } => self.on_puback(now, topic_id, msg_id, return_code),
            Packet::Pubrec { msg_id } => {
                let matches = self.inflight_is(|r, id| {
                    id == msg_id
                        && matches!(r, Request::Publish { publish, .. } if publish.qos == QoS::Two)
                });
                if matches {
                    if let Some(i) = self.outbox.inflight_mut()
                        && let Request::Publish { released, .. } = &mut i.req
                    {
                        *released = true;
                        i.retries = 0;
                    }
                    self.outbox.resend();
                } else {
                    // A PUBREC for a flow we finished (our PUBCOMP was lost): release it anyway.
                    self.reply(Reply::Pubrel(msg_id));
                }
            }
            Packet::Pubcomp { msg_id } => {
                let done = self.inflight_is(|r, id| {
                    id == msg_id && matches!(r, Request::Publish { released: true, .. })
                });
                if done {
                    self.publish_done();
                } else {
                    bump(&mut self.stats.unexpected);
                }
            }
            Packet::Pubrel { msg_id } => {
                self.qos2_in.retain(|&m| m != msg_id);
                self.extend_wake(now);
                self.reply(Reply::Pubcomp(msg_id));
            }
            Packet::Suback {
                qos,
                topic_id,
                msg_id,
                return_code,
            } => self.on_suback(now, qos, topic_id, msg_id, return_code),
            Packet::Unsuback { msg_id } => {
                let h = match self.outbox.inflight() {
                    Some(i) if i.msg_id == msg_id => match i.req {
                        Request::Unsubscribe(h) => Some(h),
                        _ => None,
                    },
                    _ => None,
                };
                match h {
                    Some(h) => {
                        let _ = self.outbox.finish();
                        if let Some(s) = self.topics.get_mut(h) {
                            s.sub = Sub::None;
                        }
                        self.topics.release(h);
                        self.emit(ClientEvent::Unsubscribed { topic: h });
                    }
                    None => bump(&mut self.stats.unexpected),
                }
            }
            Packet::Pingreq { .. } => self.reply(Reply::Pingresp),
            Packet::Pingresp => self.on_pingresp(now),
            Packet::Disconnect { .. } => self.on_disconnect(now),
            _ => bump(&mut self.stats.unexpected),
        }
    }

    /// During a wake-up the gateway is busy delivering: T_RETRY of the PINGREQ restarts.
    fn extend_wake(&mut self, now: Instant) {
        if self.state == State::Awake {
            self.outbox.extend(now, self.cfg.timers.t_retry);
        }
    }

    fn on_connack(&mut self, now: Instant, code: ReturnCode) {
        if !self.inflight_is(|r, _| matches!(r, Request::Connect { .. })) {
            bump(&mut self.stats.unexpected);
            return;
        }
        let _ = self.outbox.finish();
        if code.is_accepted() {
            self.connected(now);
        } else {
            warning!("CONNECT rejected ({}); retrying after T_WAIT", code);
            self.emit(ClientEvent::ConnectRejected { code });
            self.outbox.hold(now.saturating_add(self.cfg.timers.t_wait));
        }
    }

    fn on_regack(&mut self, now: Instant, topic_id: u16, msg_id: u16, code: ReturnCode) {
        let h = match self.outbox.inflight() {
            Some(i) if i.msg_id == msg_id => match i.req {
                Request::Register(h) => h,
                _ => return bump(&mut self.stats.unexpected),
            },
            _ => return bump(&mut self.stats.unexpected),
        };
        let _ = self.outbox.finish();
        match code {
            ReturnCode::Accepted if topic_id != 0 && topic_id != 0xFFFF => {
                self.topics.set_id(h, topic_id);
                if let Some(s) = self.topics.get_mut(h) {
                    s.reg = Reg::Done;
                }
                debug!("registered topic {} as id {}", h.index(), topic_id);
                self.emit(ClientEvent::Registered { topic: h, topic_id });
            }
            ReturnCode::Congestion => self.outbox.hold(now.saturating_add(self.cfg.timers.t_wait)),
            other => {
                // An "accepted" with a reserved id is as useless as a rejection.
                let code = if other.is_accepted() {
                    ReturnCode::NotSupported
                } else {
                    other
                };
                if let Some(s) = self.topics.get_mut(h) {
                    s.reg = Reg::Failed;
                }
                warning!("REGISTER rejected ({})", code);
                self.emit(ClientEvent::RegisterRejected { topic: h, code });
            }
        }
    }

    fn on_suback(&mut self, now: Instant, qos: QoS, topic_id: u16, msg_id: u16, code: ReturnCode) {
        let h = match self.outbox.inflight() {
            Some(i) if i.msg_id == msg_id => match i.req {
                Request::Subscribe(h, _) => h,
                _ => return bump(&mut self.stats.unexpected),
            },
            _ => return bump(&mut self.stats.unexpected),
        };
        let _ = self.outbox.finish();
        match code {
            ReturnCode::Accepted => {
                let is_name = self.topics.get(h).is_some_and(|s| s.kind == Kind::Name);
                if is_name && topic_id != 0 && topic_id != 0xFFFF {
                    self.topics.set_id(h, topic_id);
                }
                if let Some(s) = self.topics.get_mut(h) {
                    s.sub = Sub::Done(qos);
                }
                self.emit(ClientEvent::Subscribed { topic: h, qos });
            }
            ReturnCode::Congestion => self.outbox.hold(now.saturating_add(self.cfg.timers.t_wait)),
            other => {
                if let Some(s) = self.topics.get_mut(h) {
                    s.sub = Sub::Failed;
                }
                warning!("SUBSCRIBE rejected ({})", other);
                self.emit(ClientEvent::SubscribeRejected {
                    topic: h,
                    code: other,
                });
            }
        }
    }

    fn on_publish(&mut self, now: Instant, p: Publish<'_>) {
        self.extend_wake(now);
        let topic = match p.topic {
            TopicRef::Normal(id) => match self.topics.find_id(id) {
                Some(h) => MessageTopic::Topic(h),
                None => {
                    // Unknown id (spec 6.10 step 5): the gateway re-registers and tries again.
                    if p.qos != QoS::MinusOne {
                        self.reply(Reply::Puback {
                            topic_id: id,
                            msg_id: p.msg_id,
                            code: ReturnCode::InvalidTopicId,
                        });
                    }
                    return;
                }
            },
            TopicRef::Predefined(id) => MessageTopic::Predefined(id),
            TopicRef::Short(s) => MessageTopic::Short(s),
            TopicRef::Name(_) => return bump(&mut self.stats.unexpected),
        };
        let duplicate = p.qos == QoS::Two && self.qos2_in.iter().any(|&m| m == p.msg_id);
        match p.qos {
            QoS::One => self.reply(Reply::Puback {
                topic_id: p.topic.id_field(),
                msg_id: p.msg_id,
                code: ReturnCode::Accepted,
            }),
            QoS::Two => {
                if !duplicate {
                    if self.qos2_in.is_full() {
                        let _ = self.qos2_in.pop_front();
                    }
                    let _ = self.qos2_in.push_back(p.msg_id);
                }
                self.reply(Reply::Pubrec(p.msg_id));
            }
            QoS::Zero | QoS::MinusOne => {}
        }
        if duplicate {
            return;
        }
        match Vec::from_slice(p.data) {
            Ok(payload) => {
                self.emit(ClientEvent::Message(Message {
                    topic,
                    payload,
                    qos: p.qos,
                    retain: p.retain,
                }));
            }
            Err(_) => bump(&mut self.stats.oversized),
        }
    }

    fn on_puback(&mut self, now: Instant, topic_id: u16, msg_id: u16, code: ReturnCode) {
        // A PUBACK answers QoS 1; for QoS 2 it can only carry a rejection.
        let ours = msg_id != 0
            && self.inflight_is(|r, id| {
                id == msg_id
                    && matches!(r, Request::Publish { publish, released: false }
                        if publish.qos == QoS::One || !code.is_accepted())
            });
        if !ours {
            // A QoS 0 publish rejected for its topic id: register the name again.
            if code == ReturnCode::InvalidTopicId
                && let Some(h) = self.topics.find_id(topic_id)
                && let Some(s) = self.topics.get_mut(h)
                && s.reg == Reg::Done
            {
                s.id = None;
                s.reg = Reg::Wanted;
                return;
            }
            return bump(&mut self.stats.unexpected);
        }
        let Some(i) = self.outbox.finish() else {
            return;
        };
        let Request::Publish { mut publish, .. } = i.req else {
            return;
        };
        match code {
            ReturnCode::Accepted => {
                self.emit(ClientEvent::Published {
                    token: publish.token,
                    qos: publish.qos,
                    retries: i.total_retries,
                });
            }
            ReturnCode::Congestion => {
                self.outbox.hold(now.saturating_add(self.cfg.timers.t_wait));
                if let Err(p) = self.outbox.push_front(publish) {
                    self.emit(ClientEvent::PublishFailed {
                        token: p.token,
                        reason: PublishError::Rejected(code),
                    });
                }
            }
            ReturnCode::InvalidTopicId if !publish.reregistered => {
                // The gateway forgot the id (spec 6.6): register again, then repeat once.
                let reg = match publish.topic {
                    super::PubTopic::Registered(h) => self.topics.get_mut(h),
                    _ => None,
                };
                match reg {
                    Some(s) => {
                        s.id = None;
                        s.reg = Reg::Wanted;
                        publish.reregistered = true;
                        info!(
                            "topic id {} unknown to the gateway: registering again",
                            topic_id
                        );
                        if let Err(p) = self.outbox.push_front(publish) {
                            self.emit(ClientEvent::PublishFailed {
                                token: p.token,
                                reason: PublishError::Rejected(code),
                            });
                        }
                    }
                    None => self.emit(ClientEvent::PublishFailed {
                        token: publish.token,
                        reason: PublishError::Rejected(code),
                    }),
                }
            }
            other => {
                warning!("PUBLISH rejected ({})", other);
                self.emit(ClientEvent::PublishFailed {
                    token: publish.token,
                    reason: PublishError::Rejected(other),
                });
            }
        }
    }

    /// The QoS 1/2 publish in flight completed.
    fn publish_done(&mut self) {
        if let Some(i) = self.outbox.finish()
            && let Request::Publish { publish, .. } = i.req
        {
            self.emit(ClientEvent::Published {
                token: publish.token,
                qos: publish.qos,
                retries: i.total_retries,
            });
        }
    }

    fn on_pingresp(&mut self, now: Instant) {
        let req = self.outbox.inflight().map(|i| i.req.clone());
        match req {
            Some(Request::Ping) => {
                let _ = self.outbox.finish();
            }
            Some(Request::WakePing) => {
                let _ = self.outbox.finish();
                self.fall_asleep(now);
                self.emit(ClientEvent::BackToSleep);
            }
            _ => bump(&mut self.stats.unexpected),
        }
    }

    fn on_disconnect(&mut self, now: Instant) {
        let req = self.outbox.inflight().map(|i| i.req.clone());
        match (req, self.state) {
            (Some(Request::Sleep(d)), _) => {
                let _ = self.outbox.finish();
                self.sleep_duration = d;
                self.fall_asleep(now);
                info!("asleep for {} s", d);
                self.emit(ClientEvent::Asleep { duration: d });
            }
            (Some(Request::Disconnect), _) => {
                let _ = self.outbox.finish();
                self.set_state(State::Disconnected);
                info!("disconnected");
                self.emit(ClientEvent::Disconnected {
                    reason: super::DisconnectReason::Requested,
                });
            }
            (_, State::Active | State::Registering | State::Connecting | State::Awake) => {
                self.session_lost(now)
            }
            // Asleep (a repeated answer), or no session at all.
            _ => bump(&mut self.stats.unexpected),
        }
    }
}
