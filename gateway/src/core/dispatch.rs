//! Decoding and routing: datagram → (peer, packet) → the session or the session-less handlers.

use sn_codec::{DecodeError, Encapsulated, Instant, MsgType, Packet, QoS, ReturnCode};

use super::addr::{PeerAddr, Wnid};
use super::event::{DropReason, GatewayEvent};
use super::session::State;
use super::{Gateway, SessionId, downlink, subscribe, uplink};

impl Gateway {
    pub(super) fn dispatch(&mut self, now: Instant, from: PeerAddr, bytes: &[u8]) {
        // Encapsulated messages from a forwarder: unwrap, then handle the inner message as if
        // it came from (forwarder, node).
        if let [len, 0xFE, ..] = bytes
            && *len != 0x01
        {
            return self.dispatch_encapsulated(now, from, bytes);
        }
        if bytes.len() > self.cfg.max_packet_size {
            return self.drop_from(Some(from), DropReason::TooLarge);
        }
        match Packet::decode_tolerant(bytes) {
            Ok((packet, quirk)) => {
                if quirk.is_some() {
                    self.length_quirk(&from);
                }
                self.route(now, from, packet)
            }
            Err(e) => self.malformed(now, from, e),
        }
    }

    /// A message accepted despite the known long-form Length mistake: counted, and reported
    /// once per client session (the log says which mote's firmware does it).
    fn length_quirk(&mut self, from: &PeerAddr) {
        self.out.stats.length_quirks += 1;
        let first = match self.table.find_peer(from) {
            Some(sid) => self
                .table
                .get_mut(sid)
                .is_some_and(|s| !std::mem::replace(&mut s.length_quirk_seen, true)),
            None => true,
        };
        if first {
            self.event(GatewayEvent::LengthQuirk { peer: from.clone() });
        }
    }

    fn dispatch_encapsulated(&mut self, now: Instant, from: PeerAddr, bytes: &[u8]) {
        let PeerAddr::Udp { listener, addr } = from else {
            return self.drop_from(
                Some(from),
                DropReason::Malformed(DecodeError::NestedEncapsulation),
            );
        };
        if let Some(allow) = &self.cfg.forwarders.allow
            && !allow.contains(&addr.ip())
        {
            return self.drop_from(Some(from), DropReason::ForwarderNotAllowed);
        }
        let encap = match Encapsulated::decode(bytes) {
            Ok(e) => e,
            Err(e) => return self.drop_from(Some(from), DropReason::Malformed(e)),
        };
        let peer = PeerAddr::Forwarded {
            listener,
            forwarder: addr,
            wnid: Wnid(encap.wnid.into()),
        };
        if encap.inner.len() > self.cfg.max_packet_size {
            return self.drop_from(Some(peer), DropReason::TooLarge);
        }
        match encap.decode_inner_tolerant() {
            Ok((packet, quirk)) => {
                if quirk.is_some() {
                    self.length_quirk(&peer);
                }
                self.route(now, peer, packet)
            }
            Err(e) => self.malformed(now, peer, e),
        }
    }

    /// Malformed input: dropped and counted; the few errors that identify a request get the
    /// reply the protocol prescribes.
    fn malformed(&mut self, now: Instant, from: PeerAddr, e: DecodeError) {
        self.drop_from(Some(from.clone()), DropReason::Malformed(e));
        match e {
            DecodeError::InvalidProtocolId(_) => {
                self.send(
                    &from,
                    &Packet::Connack {
                        return_code: ReturnCode::NotSupported,
                    },
                );
            }
            DecodeError::ReservedTopicIdType {
                msg_type,
                topic_id,
                msg_id,
            } => {
                let Some(sid) = self.table.find_peer(&from) else {
                    return;
                };
                self.touch(now, sid);
                let reply = match msg_type {
                    MsgType::Publish => Packet::Puback {
                        topic_id,
                        msg_id,
                        return_code: ReturnCode::InvalidTopicId,
                    },
                    MsgType::Subscribe => Packet::Suback {
                        qos: QoS::Zero,
                        topic_id: 0,
                        msg_id,
                        return_code: ReturnCode::InvalidTopicId,
                    },
                    MsgType::Unsubscribe => Packet::Unsuback { msg_id },
                    _ => return,
                };
                self.send(&from, &reply);
            }
            _ => {}
        }
    }

    fn route(&mut self, now: Instant, from: PeerAddr, packet: Packet<'_>) {
        self.out.stats.count_in(packet.msg_type());
        // Messages that need no session.
        match packet {
            Packet::Connect(c) => return self.on_connect(now, from, c),
            Packet::SearchGw { radius } => return self.on_searchgw(now, from, radius),
            Packet::Publish(p)
                if p.qos == QoS::MinusOne && self.table.find_peer(&from).is_none() =>
            {
                return self.on_publish_minus1(now, from, p);
            }
            Packet::Pingreq {
                client_id: Some(id),
            } => {
                if let Some(sid) = self.pingreq_with_id(now, &from, id) {
                    return self.on_wake_pingreq(now, sid);
                }
                return;
            }
            Packet::Advertise { .. } | Packet::GwInfo { .. } => return, // other gateways, clients
            _ => {}
        }
        let Some(sid) = self.table.find_peer(&from) else {
            return self.unknown_peer(now, from);
        };
        self.touch(now, sid);
        let state = self.table.get(sid).map(|s| s.state);
        match (state, packet) {
            (Some(State::Connecting(_)), Packet::WillTopic(t)) => self.on_will_topic(now, sid, t),
            (Some(State::Connecting(_)), Packet::WillMsg { msg }) => {
                self.on_will_msg(now, sid, msg)
            }
            (Some(State::Connecting(_)), other) => {
                self.drop_from(Some(from), DropReason::UnexpectedInState);
                let _ = other;
            }
            (_, Packet::Register(r)) => {
                if let Some((s, mut f)) = self.flow(sid, now) {
                    uplink::on_register(s, &mut f, r);
                }
            }
            (
                _,
                Packet::Regack {
                    topic_id,
                    msg_id,
                    return_code,
                },
            ) => {
                self.step(sid, now, |s, f| {
                    downlink::on_regack(s, f, topic_id, msg_id, return_code)
                });
            }
            (_, Packet::Publish(p)) => {
                if let Some((s, mut f)) = self.flow(sid, now) {
                    uplink::on_publish(s, &mut f, p);
                }
            }
            (
                _,
                Packet::Puback {
                    topic_id,
                    msg_id,
                    return_code,
                },
            ) => {
                self.step(sid, now, |s, f| {
                    downlink::on_puback(s, f, topic_id, msg_id, return_code)
                });
            }
            (_, Packet::Pubrec { msg_id }) => {
                self.step(sid, now, |s, f| downlink::on_pubrec(s, f, msg_id));
            }
            (_, Packet::Pubrel { msg_id }) => {
                if let Some((s, mut f)) = self.flow(sid, now) {
                    uplink::on_pubrel(s, &mut f, msg_id);
                }
            }
            (_, Packet::Pubcomp { msg_id }) => {
                self.step(sid, now, |s, f| downlink::on_pubcomp(s, f, msg_id));
            }
            (_, Packet::Subscribe(sub)) => {
                if let Some((s, mut f)) = self.flow(sid, now) {
                    subscribe::on_subscribe(s, &mut f, sub);
                }
            }
            (_, Packet::Unsubscribe(u)) => {
                if let Some((s, mut f)) = self.flow(sid, now) {
                    subscribe::on_unsubscribe(s, &mut f, u);
                }
            }
            (_, Packet::Pingreq { client_id: None }) => self.on_pingreq(now, sid),
            (_, Packet::Pingresp) => {}
            (_, Packet::Disconnect { duration }) => self.on_disconnect(now, sid, duration),
            (_, Packet::WillTopicUpd(t)) => self.on_will_topic_upd(now, sid, t),
            (_, Packet::WillMsgUpd { msg }) => self.on_will_msg_upd(now, sid, msg),
            (_, _) => self.drop_from(Some(from), DropReason::UnexpectedType),
        }
    }

    /// Records activity of a session's client.
    pub(super) fn touch(&mut self, now: Instant, sid: SessionId) {
        if let Some(s) = self.table.get_mut(sid) {
            s.last_rx = now;
            s.rx_count += 1;
            if s.silent_until.take().is_some() {
                self.reschedule(sid);
            }
        }
    }

    /// A message from an address without a session: DISCONNECT, at most once per T_RETRY per
    /// address, so QoS 0 publishers notice a gateway restart.
    fn unknown_peer(&mut self, now: Instant, from: PeerAddr) {
        self.drop_from(Some(from.clone()), DropReason::UnknownClient);
        let addr = from.socket_addr();
        let limited = self
            .disconnect_sent
            .get(&addr)
            .is_some_and(|at| now < at.saturating_add(self.cfg.t_retry));
        if limited || self.disconnect_sent.len() >= 4096 {
            return;
        }
        self.disconnect_sent.insert(addr, now);
        self.send(&from, &Packet::Disconnect { duration: None });
    }

    pub(super) fn drop_from(&mut self, peer: Option<PeerAddr>, reason: DropReason) {
        self.out.drop(peer, reason);
    }

    /// Queues a packet to a peer, bounded by the client transport's size limit.
    pub(super) fn send(&mut self, to: &PeerAddr, packet: &Packet<'_>) -> bool {
        self.out.send(to, packet)
    }

    /// Queues a packet to a session's client.
    pub(super) fn send_to_session(&mut self, sid: SessionId, packet: &Packet<'_>) -> bool {
        let Some(s) = self.table.get_mut(sid) else {
            return false;
        };
        s.tx_count += 1;
        // The same as `Flow::reply`, without cloning the address.
        self.out.send(s.peer(), packet)
    }
}
