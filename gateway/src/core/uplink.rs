//! Client → broker: REGISTER and PUBLISH at QoS 0, 1, 2 and −1 from a connected client, with
//! duplicate suppression and acknowledgement only after the broker's (`docs/protocol.md`,
//! "Topic ids" and "Client publishes").

use bytes::Bytes;
use sn_codec::{Instant, MsgType, Packet, Publish, QoS, Register, ReturnCode, TopicRef};

use super::config::CustodyMode;
use super::custody;
use super::event::DropReason;
use super::flow::Flow;
use super::policy;
use super::session::OwedPubrel;
use super::session::{Session, Uplink, UplinkStage};
use super::topics;
use super::upstream::seam::Attachment;
use super::upstream::seam::Outgoing;
use super::upstream::{LinkId, MqttQos, Token, UpstreamCmd};

/// Most remembered replies per client (for retransmitted requests).
const RECENT_REPLIES: usize = 16;

/// REGISTER: a topic id for the client's topic name (REGACK 0x03 for a bad name, 0x01 when
/// the client's table is full).
pub(super) fn on_register(s: &mut Session, f: &mut Flow<'_>, r: Register<'_>) {
    let (topic_id, rc) = match topics::topic_name(r.topic_name) {
        Err(_) => (0, ReturnCode::NotSupported),
        Ok(name) => {
            match s
                .topic_ids
                .id_for(name, true, &f.cfg.predefined, f.cfg.max_topics_per_client)
            {
                Ok(id) => (id, ReturnCode::Accepted),
                Err(_) => (0, ReturnCode::Congestion),
            }
        }
    };
    let reply = Packet::Regack {
        topic_id,
        msg_id: r.msg_id,
        return_code: rc,
    };
    f.reply(s, &reply);
}

/// The upstream topic (prefix applied, one allocation) a client's PUBLISH refers to.
fn resolve_uplink_topic(s: &mut Session, f: &Flow<'_>, topic: TopicRef<'_>) -> Option<String> {
    let prefix = &f.cfg.upstream.topic_prefix;
    match topic {
        TopicRef::Normal(id) => {
            let name = topics::to_upstream(prefix, s.topic_ids.name(id)?);
            s.topic_ids.confirm(id);
            Some(name)
        }
        TopicRef::Predefined(id) => f
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

/// PUBLISH from a connected client: resolved, checked against its allowed topics, then sent
/// upstream (QoS 1/2 acknowledged to the client only after the broker).
pub(super) fn on_publish(s: &mut Session, f: &mut Flow<'_>, p: Publish<'_>) {
    let refuse = |s: &mut Session, f: &mut Flow<'_>, rc: ReturnCode, reason: DropReason| {
        if p.qos != QoS::MinusOne {
            let reply = Packet::Puback {
                topic_id: p.topic.id_field(),
                msg_id: p.msg_id,
                return_code: rc,
            };
            f.reply(s, &reply);
        }
        f.out.drop(Some(s.peer().clone()), reason);
    };
    let Some(topic) = resolve_uplink_topic(s, f, p.topic) else {
        return refuse(s, f, ReturnCode::InvalidTopicId, DropReason::UnknownTopicId);
    };
    let name = topics::from_upstream(&f.cfg.upstream.topic_prefix, &topic).unwrap_or(&topic);
    if !policy::publish_allowed(f.cfg, s.client_id(), name) {
        return refuse(s, f, ReturnCode::NotSupported, DropReason::TopicNotAllowed);
    }
    f.out
        .stats
        .count_publish(p.qos, super::stats::Direction::Upstream);
    match p.qos {
        QoS::MinusOne | QoS::Zero if custody::holds_qos0(s, f) => {
            let m = custody::Taken {
                topic,
                payload: p.data,
                qos: MqttQos::AtMostOnce,
                retain: p.retain,
                msg_id: p.msg_id,
                topic_id: p.topic.id_field(),
            };
            custody::take(s, f, m);
        }
        QoS::MinusOne | QoS::Zero => publish_qos0(s, f, topic, p.data, p.retain),
        QoS::One | QoS::Two => publish_reliable(s, f, topic, p),
    }
}

fn publish_qos0(s: &Session, f: &mut Flow<'_>, topic: String, data: &[u8], retain: bool) {
    let Some(at) = s.upstream() else { return };
    let token = f.out.token();
    let msg = Outgoing {
        topic,
        payload: Bytes::copy_from_slice(data),
        qos: MqttQos::AtMostOnce,
        retain,
        hold_release: false,
    };
    f.up.publish(at, token, msg, f.out);
}

fn publish_reliable(s: &mut Session, f: &mut Flow<'_>, topic: String, p: Publish<'_>) {
    let qos = MqttQos::from_sn(p.qos);
    // A retransmission of a message still in flight: not published again; a QoS 2 message
    // the broker already accepted gets its PUBREC again.
    if let Some(u) = s
        .uplink
        .values()
        .find(|u| u.msg_id == p.msg_id && u.qos == qos)
    {
        if u.qos == MqttQos::ExactlyOnce && u.stage != UplinkStage::Sent {
            let msg_id = u.msg_id;
            f.reply(s, &Packet::Pubrec { msg_id });
        }
        return;
    }
    // A retransmission of a message already completed: the same answer again.
    let remembered_for = f.cfg.t_retry.saturating_mul(u32::from(f.cfg.n_retry));
    if let Some(&(_, _, kind, topic_id)) = s.recent_replies.iter().find(|(id, at, kind, _)| {
        *id == p.msg_id
            && f.now < at.saturating_add(remembered_for)
            && match qos {
                MqttQos::AtLeastOnce => *kind == MsgType::Puback,
                _ => *kind == MsgType::Pubcomp,
            }
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
        f.reply(s, &reply);
        return;
    }
    if qos == MqttQos::ExactlyOnce
        && (s.qos2_unreleased.contains(&p.msg_id) || custody::restored(s, f, p.msg_id))
    {
        if p.dup {
            // Accepted before (in custody, or before a restart) and not released yet: the
            // client did not hear its PUBREC.
            f.reply(s, &Packet::Pubrec { msg_id: p.msg_id });
            return;
        }
        // A new message under the MsgId: the earlier one is no longer meant.
        s.qos2_unreleased.remove(&p.msg_id);
        custody::forget_restored(s, f, p.msg_id);
    }
    if f.cfg.custody.mode == CustodyMode::Gateway && !f.custody.fallback {
        let m = custody::Taken {
            topic,
            payload: p.data,
            qos,
            retain: p.retain,
            msg_id: p.msg_id,
            topic_id: p.topic.id_field(),
        };
        return custody::take(s, f, m);
    }
    let too_many = s.outstanding_requests() >= f.cfg.max_inflight_from_client;
    if too_many || s.uplink.len() >= f.cfg.uplink_buffer || s.upstream().is_none() {
        if too_many {
            f.out
                .drop(Some(s.peer().clone()), DropReason::TooManyInflight);
        }
        let reply = Packet::Puback {
            topic_id: p.topic.id_field(),
            msg_id: p.msg_id,
            return_code: ReturnCode::Congestion,
        };
        f.reply(s, &reply);
        return;
    }
    let token = f.out.token();
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
            pkid: None,
            durable: false,
        },
    );
    resubmit_uplink(s, f, token);
}

/// Sends (again) an uplink publish on the session's current link.
pub(super) fn resubmit_uplink(s: &Session, f: &mut Flow<'_>, token: Token) {
    let (Some(at), Some(u)) = (s.upstream(), s.uplink.get(&token)) else {
        return;
    };
    // A QoS 2 message the broker already completed needs nothing more upstream.
    if u.stage == UplinkStage::Completed {
        return;
    }
    let msg = Outgoing {
        topic: u.topic.clone(),
        payload: u.payload.clone(),
        qos: u.qos,
        retain: u.retain,
        hold_release: u.qos == MqttQos::ExactlyOnce && f.records(s),
    };
    f.up.publish(at, token, msg, f.out);
}

/// Requests the broker will never answer after a reconnect (publishes, subscribes and
/// unsubscribes sent before it) go out again, in their original order.
pub(super) fn resend_lost(s: &mut Session, f: &mut Flow<'_>, lost: &[Token]) {
    let Some(at) = s.upstream() else { return };
    for token in lost {
        if let Some(u) = s.uplink.get_mut(token) {
            // The broker lost it: the packet id it had means nothing any more.
            u.pkid = None;
            resubmit_uplink(s, f, *token);
        } else if let Some(p) = s.pending_subs.get(token) {
            let qos = s.subscriptions.get(&p.filter).map(|(_, q)| *q);
            let qos = qos.unwrap_or_default();
            let filter = topics::to_upstream(&f.cfg.upstream.topic_prefix, &p.filter);
            f.up.subscribe(at, *token, filter, qos, f.out);
        } else if let Some(filter) = s.pending_unsubs.get(token) {
            // Asked again under the same token: the answer settles the same entry.
            let _ = f.up.unsubscribe(at, *token, filter.clone(), f.out);
        }
    }
}

/// The broker accepted a held QoS 2 publish under `pkid`: recorded in the session, and the
/// PUBREL goes out once the record is committed (the link then reports `PublishReceived`,
/// and the client gets its PUBREC). A crash before the commit leaves the broker holding an
/// unreleased message, which a retransmission publishes afresh; a crash after it finds the
/// exchange stored.
pub(super) fn on_pubrec_held(s: &mut Session, f: &mut Flow<'_>, token: Token, pkid: u16) {
    let Some(link) = s.upstream().and_then(|at| f.up.link(at)) else {
        return;
    };
    let release = UpstreamCmd::Release { link, token };
    match s.uplink.get_mut(&token) {
        Some(u) if !f.custody.fallback => {
            u.pkid = Some(pkid);
            u.durable = true;
            f.out.after_store(release);
        }
        // Nothing to record (the store cannot write, or the exchange is gone): released now.
        _ => f.out.command(release),
    }
}

/// The broker accepted a QoS 2 publish (PUBREC): the client gets its PUBREC.
pub(super) fn on_publish_received(s: &mut Session, f: &mut Flow<'_>, token: Token) {
    let Some(u) = s.uplink.get_mut(&token) else {
        return;
    };
    if u.qos == MqttQos::ExactlyOnce && u.stage == UplinkStage::Sent {
        u.stage = UplinkStage::Received;
        let msg_id = u.msg_id;
        f.reply(s, &Packet::Pubrec { msg_id });
    }
}

/// The broker completed a publish: PUBACK, or the QoS 2 exchange moves on.
pub(super) fn on_publish_done(s: &mut Session, f: &mut Flow<'_>, token: Token) {
    let Some(pkid) = s.uplink.get_mut(&token).map(|u| u.pkid.take()) else {
        return owed_pubrel_done(s, f, token);
    };
    if let Some(pkid) = pkid {
        forget_pkid(s, f, None, pkid);
    }
    let Some(u) = s.uplink.get_mut(&token) else {
        return;
    };
    match (u.qos, u.stage) {
        (MqttQos::AtLeastOnce, _) => {
            let (msg_id, topic_id) = (u.msg_id, u.topic_id);
            s.uplink.remove(&token);
            remember(s, f.now, msg_id, MsgType::Puback, topic_id);
            let reply = Packet::Puback {
                topic_id,
                msg_id,
                return_code: ReturnCode::Accepted,
            };
            f.reply(s, &reply);
        }
        // The broker completed before PUBREC reached the client: send it now.
        (_, UplinkStage::Sent) => {
            u.stage = UplinkStage::Completed;
            let msg_id = u.msg_id;
            f.reply(s, &Packet::Pubrec { msg_id });
        }
        (_, UplinkStage::Received) => u.stage = UplinkStage::Completed,
        (_, UplinkStage::Released) => {
            let msg_id = u.msg_id;
            s.uplink.remove(&token);
            remember(s, f.now, msg_id, MsgType::Pubcomp, 0);
            f.reply(s, &Packet::Pubcomp { msg_id });
        }
        (_, UplinkStage::Completed) => {}
    }
}

/// The PUBCOMP of a packet id owed a PUBREL outside its exchange: no longer owed.
fn owed_pubrel_done(s: &mut Session, f: &mut Flow<'_>, token: Token) {
    let done = s
        .pubrels_owed
        .iter()
        .find(|(_, o)| o.token == Some(token))
        .map(|(pkid, o)| (*pkid, o.link));
    if let Some((pkid, link)) = done {
        s.pubrels_owed.remove(&pkid);
        // The link it was resumed on (also for a session no longer attached, in aggregating
        // mode), else the session's.
        forget_pkid(s, f, link, pkid);
    }
}

/// The broker completed the QoS 2 publish under `pkid` on `link` (`None`: the session's link):
/// once the session record without it is committed, the link may give the packet id to
/// another publish (a PUBREL resumed after a crash must find this message or none).
fn forget_pkid(s: &Session, f: &mut Flow<'_>, link: Option<LinkId>, pkid: u16) {
    if let Some(link) = link.or_else(|| s.upstream().and_then(|at| f.up.link(at))) {
        f.out.after_store(UpstreamCmd::Forget { link, pkid });
    }
}

/// The session's own broker connection is up (transparent mode; the shared link's are the
/// gateway's to resume, `Gateway::resume_shared_pubrels`): see [`resume_owed_on`].
pub(super) fn resume_owed(s: &mut Session, f: &mut Flow<'_>, session_present: bool) {
    let Some(at) = s.upstream() else { return };
    if let Some(link) = f.up.link(at).filter(|l| *l != LinkId::GATEWAY) {
        resume_owed_on(s, f, at, link, session_present);
    }
}

/// `link`, reached through `at`, is up: with the broker's session present, the PUBRELs owed
/// from before a restart or a reset connection (and not resumed on this link yet) go out
/// first, before any new request can take their packet ids; without it they mean nothing any
/// more.
pub(super) fn resume_owed_on(
    s: &mut Session,
    f: &mut Flow<'_>,
    at: Attachment,
    link: LinkId,
    session_present: bool,
) {
    if !session_present {
        s.pubrels_owed.clear();
        return;
    }
    for (&pkid, owed) in &mut s.pubrels_owed {
        if owed.link != Some(link) {
            let token = f.out.token();
            *owed = OwedPubrel {
                token: Some(token),
                link: Some(link),
            };
            f.up.resume(at, token, pkid, f.out);
        }
    }
}

/// PUBREL from the client (QoS 2, second half).
pub(super) fn on_pubrel(s: &mut Session, f: &mut Flow<'_>, msg_id: u16) {
    s.qos2_unreleased.remove(&msg_id);
    custody::forget_restored(s, f, msg_id);
    let found = s
        .uplink
        .iter_mut()
        .find(|(_, u)| u.msg_id == msg_id && u.qos == MqttQos::ExactlyOnce);
    match found {
        Some((&token, u)) => match u.stage {
            UplinkStage::Completed => {
                s.uplink.remove(&token);
                remember(s, f.now, msg_id, MsgType::Pubcomp, 0);
                f.reply(s, &Packet::Pubcomp { msg_id });
            }
            UplinkStage::Received => u.stage = UplinkStage::Released,
            // PUBREL before our PUBREC: a confused client; wait for the broker.
            UplinkStage::Sent | UplinkStage::Released => {}
        },
        // Unknown or already completed: PUBCOMP, as MQTT prescribes for a repeated PUBREL.
        None => {
            f.reply(s, &Packet::Pubcomp { msg_id });
        }
    }
}

/// Remembers the reply to a completed request, so that a retransmission gets it again.
pub(super) fn remember(s: &mut Session, now: Instant, msg_id: u16, kind: MsgType, topic_id: u16) {
    if s.recent_replies.len() >= RECENT_REPLIES {
        s.recent_replies.pop_front();
    }
    s.recent_replies.push_back((msg_id, now, kind, topic_id));
}
