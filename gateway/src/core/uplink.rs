//! Client → broker: REGISTER and PUBLISH at QoS 0, 1, 2 and −1 from a connected client, with
//! duplicate suppression and acknowledgement only after the broker's (`docs/protocol.md`,
//! "Topic ids" and "Client publishes").

use bytes::Bytes;
use sn_codec::{Instant, MsgType, Packet, Publish, QoS, Register, ReturnCode, TopicRef};

use super::event::DropReason;
use super::session::{Uplink, UplinkStage};
use super::topics;
use super::upstream::{Token, UpstreamCmd};
use super::{Gateway, SessionId};

/// Most remembered replies per client (for retransmitted requests).
const RECENT_REPLIES: usize = 16;

impl Gateway {
    pub(super) fn on_register(&mut self, _now: Instant, sid: SessionId, r: Register<'_>) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let (topic_id, rc) = match topics::topic_name(r.topic_name) {
            Err(_) => (0, ReturnCode::NotSupported),
            Ok(name) => {
                match s.registry.id_for(
                    name,
                    true,
                    &self.cfg.predefined,
                    self.cfg.max_topics_per_client,
                ) {
                    Ok(id) => (id, ReturnCode::Accepted),
                    Err(_) => (0, ReturnCode::Congestion),
                }
            }
        };
        self.send_to_session(
            sid,
            &Packet::Regack {
                topic_id,
                msg_id: r.msg_id,
                return_code: rc,
            },
        );
    }

    /// The MQTT-SN topic name a client's PUBLISH refers to.
    /// The upstream topic (prefix applied, one allocation) a client's PUBLISH refers to.
    fn resolve_uplink_topic(&mut self, sid: SessionId, topic: TopicRef<'_>) -> Option<String> {
        let prefix = &self.cfg.upstream.topic_prefix;
        let s = self.table.get_mut(sid)?;
        match topic {
            TopicRef::Normal(id) => {
                let name = topics::to_upstream(prefix, s.registry.name(id)?);
                s.registry.confirm(id);
                Some(name)
            }
            TopicRef::Predefined(id) => self
                .cfg
                .predefined
                .topic(Some(s.client_id()), id)
                .map(|t| topics::to_upstream(prefix, t)),
            TopicRef::Short(n) => topics::topic_name(&n)
                .ok()
                .map(|t| topics::to_upstream(prefix, t)),
            TopicRef::Name(_) => None,
        }
    }

    pub(super) fn on_publish(&mut self, now: Instant, sid: SessionId, p: Publish<'_>) {
        let Some(topic) = self.resolve_uplink_topic(sid, p.topic) else {
            if p.qos != QoS::MinusOne {
                let reply = Packet::Puback {
                    topic_id: p.topic.id_field(),
                    msg_id: p.msg_id,
                    return_code: ReturnCode::InvalidTopicId,
                };
                self.send_to_session(sid, &reply);
            }
            let peer = self.table.get(sid).map(|s| s.peer().clone());
            return self.drop_from(peer, DropReason::UnknownTopicId);
        };
        let client_id = self
            .table
            .get(sid)
            .map(|s| s.client_id())
            .unwrap_or_default();
        let name = topics::from_upstream(&self.cfg.upstream.topic_prefix, &topic).unwrap_or(&topic);
        if !self.may_publish(client_id, name) {
            if p.qos != QoS::MinusOne {
                let reply = Packet::Puback {
                    topic_id: p.topic.id_field(),
                    msg_id: p.msg_id,
                    return_code: ReturnCode::NotSupported,
                };
                self.send_to_session(sid, &reply);
            }
            let peer = self.table.get(sid).map(|s| s.peer().clone());
            return self.drop_from(peer, DropReason::TopicNotAllowed);
        }
        self.out
            .stats
            .count_publish(p.qos, super::stats::Direction::Upstream);
        match p.qos {
            QoS::MinusOne | QoS::Zero => self.publish_qos0(sid, topic, p.data, p.retain),
            QoS::One | QoS::Two => self.publish_reliable(now, sid, topic, p),
        }
    }

    fn publish_qos0(&mut self, sid: SessionId, topic: String, data: &[u8], retain: bool) {
        let Some(s) = self.table.get(sid) else {
            return;
        };
        let Some(link) = s.link() else { return };
        let token = self.new_token();
        self.out.command(UpstreamCmd::Publish {
            link,
            token,
            topic,
            payload: Bytes::copy_from_slice(data),
            qos: 0,
            retain,
        });
    }

    fn publish_reliable(&mut self, now: Instant, sid: SessionId, topic: String, p: Publish<'_>) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let qos = if p.qos == QoS::Two { 2 } else { 1 };
        // A retransmission of a message still in flight: not published again; a QoS 2 message
        // the broker already accepted gets its PUBREC again.
        if let Some(u) = s
            .uplink
            .values()
            .find(|u| u.msg_id == p.msg_id && u.qos == qos)
        {
            if u.qos == 2 && u.stage != UplinkStage::Sent {
                let msg_id = u.msg_id;
                self.send_to_session(sid, &Packet::Pubrec { msg_id });
            }
            return;
        }
        // A retransmission of a message already completed: the same answer again.
        if let Some(&(_, _, kind, topic_id)) = s.recent_replies.iter().find(|(id, at, kind, _)| {
            *id == p.msg_id
                && now
                    < at.saturating_add(
                        self.cfg.t_retry.saturating_mul(u32::from(self.cfg.n_retry)),
                    )
                && (*kind == MsgType::Puback && qos == 1 || *kind == MsgType::Pubcomp && qos == 2)
        }) {
            let reply = if kind == MsgType::Puback {
                Packet::Puback {
                    topic_id,
                    msg_id: p.msg_id,
                    return_code: ReturnCode::Accepted,
                }
            } else {
                Packet::Pubrec { msg_id: p.msg_id }
            };
            self.send_to_session(sid, &reply);
            return;
        }
        let too_many = s.outstanding_requests() >= self.cfg.max_inflight_from_client;
        if too_many || s.uplink.len() >= self.cfg.uplink_buffer || s.link().is_none() {
            if too_many {
                let peer = Some(s.peer().clone());
                self.drop_from(peer, DropReason::TooManyInflight);
            }
            let reply = Packet::Puback {
                topic_id: p.topic.id_field(),
                msg_id: p.msg_id,
                return_code: ReturnCode::Congestion,
            };
            self.send_to_session(sid, &reply);
            return;
        }
        let token = self.new_token();
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.uplink.insert(
            token,
            Uplink {
                msg_id: p.msg_id,
                topic_id: p.topic.id_field(),
                topic,
                payload: Bytes::copy_from_slice(p.data),
                qos,
                retain: p.retain,
                stage: UplinkStage::Sent,
            },
        );
        self.resubmit_uplink(sid, token);
    }

    /// Sends (again) an uplink publish on the session's current link.
    pub(super) fn resubmit_uplink(&mut self, sid: SessionId, token: Token) {
        let Some(s) = self.table.get(sid) else {
            return;
        };
        let (Some(link), Some(u)) = (s.link(), s.uplink.get(&token)) else {
            return;
        };
        // A QoS 2 message the broker already completed needs nothing more upstream.
        if u.stage == UplinkStage::Completed {
            return;
        }
        self.out.command(UpstreamCmd::Publish {
            link,
            token,
            topic: u.topic.clone(),
            payload: u.payload.clone(),
            qos: u.qos,
            retain: u.retain,
        });
    }

    /// Requests the broker will never answer after a reconnect (publishes, subscribes and
    /// unsubscribes sent before it) go out again, in their original order.
    pub(super) fn resend_lost(&mut self, sid: SessionId, lost: &[Token]) {
        for token in lost {
            let Some(s) = self.table.get(sid) else {
                return;
            };
            let Some(link) = s.link() else { return };
            if s.uplink.contains_key(token) {
                self.resubmit_uplink(sid, *token);
            } else if let Some(p) = s.pending_subs.get(token) {
                let qos = s.subscriptions.get(&p.filter).map_or(0, |(_, q)| *q);
                let filter = topics::to_upstream(&self.cfg.upstream.topic_prefix, &p.filter);
                self.out.command(UpstreamCmd::Subscribe {
                    link,
                    token: *token,
                    filter,
                    qos,
                });
            } else if let Some(filter) = s.pending_unsubs.get(token) {
                let filter = filter.clone();
                self.out.command(UpstreamCmd::Unsubscribe {
                    link,
                    token: *token,
                    filter,
                });
            }
        }
    }

    pub(super) fn on_publish_received(&mut self, now: Instant, sid: SessionId, token: Token) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let Some(u) = s.uplink.get_mut(&token) else {
            return;
        };
        if u.qos == 2 && u.stage == UplinkStage::Sent {
            u.stage = UplinkStage::Received;
            let msg_id = u.msg_id;
            self.send_to_session(sid, &Packet::Pubrec { msg_id });
        }
        let _ = now;
    }

    pub(super) fn on_publish_done(&mut self, now: Instant, sid: SessionId, token: Token) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let Some(u) = s.uplink.get_mut(&token) else {
            return;
        };
        match (u.qos, u.stage) {
            (1, _) => {
                let (msg_id, topic_id) = (u.msg_id, u.topic_id);
                s.uplink.remove(&token);
                remember(s, now, msg_id, MsgType::Puback, topic_id);
                let reply = Packet::Puback {
                    topic_id,
                    msg_id,
                    return_code: ReturnCode::Accepted,
                };
                self.send_to_session(sid, &reply);
            }
            // The broker completed before PUBREC reached the client: send it now.
            (_, UplinkStage::Sent) => {
                u.stage = UplinkStage::Completed;
                let msg_id = u.msg_id;
                self.send_to_session(sid, &Packet::Pubrec { msg_id });
            }
            (_, UplinkStage::Received) => u.stage = UplinkStage::Completed,
            (_, UplinkStage::Released) => {
                let msg_id = u.msg_id;
                s.uplink.remove(&token);
                remember(s, now, msg_id, MsgType::Pubcomp, 0);
                self.send_to_session(sid, &Packet::Pubcomp { msg_id });
            }
            (_, UplinkStage::Completed) => {}
        }
    }

    pub(super) fn on_pubrel(&mut self, now: Instant, sid: SessionId, msg_id: u16) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let found = s
            .uplink
            .iter_mut()
            .find(|(_, u)| u.msg_id == msg_id && u.qos == 2);
        match found {
            Some((&token, u)) => match u.stage {
                UplinkStage::Completed => {
                    s.uplink.remove(&token);
                    remember(s, now, msg_id, MsgType::Pubcomp, 0);
                    self.send_to_session(sid, &Packet::Pubcomp { msg_id });
                }
                UplinkStage::Received => u.stage = UplinkStage::Released,
                // PUBREL before our PUBREC: a confused client; wait for the broker.
                UplinkStage::Sent | UplinkStage::Released => {}
            },
            // Unknown or already completed: PUBCOMP, as MQTT prescribes for a repeated PUBREL.
            None => {
                self.send_to_session(sid, &Packet::Pubcomp { msg_id });
            }
        }
    }
}

fn remember(
    s: &mut super::session::Session,
    now: Instant,
    msg_id: u16,
    kind: MsgType,
    topic_id: u16,
) {
    if s.recent_replies.len() >= RECENT_REPLIES {
        s.recent_replies.pop_front();
    }
    s.recent_replies.push_back((msg_id, now, kind, topic_id));
}
