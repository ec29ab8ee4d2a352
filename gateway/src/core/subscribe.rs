//! SUBSCRIBE / UNSUBSCRIBE by topic name or filter, predefined id and short name, as flows on
//! one session ([`Flow`]).

use sn_codec::{Packet, QoS, ReturnCode, Subscribe, TopicRef, Unsubscribe};

use super::event::DropReason;
use super::flow::Flow;
use super::policy;
use super::session::{PendingSub, Session, SubKind};
use super::topics;
use super::upstream::seam::Answer;
use super::upstream::{MqttQos, Token};

/// SUBSCRIBE: checked, then subscribed upstream; the SUBACK waits for the broker's.
pub(super) fn on_subscribe(s: &mut Session, f: &mut Flow<'_>, sub: Subscribe<'_>) {
    let qos = MqttQos::from_sn(sub.qos);
    let reject = |s: &mut Session, f: &mut Flow<'_>, rc: ReturnCode| {
        let reply = Packet::Suback {
            qos: QoS::Zero,
            topic_id: 0,
            msg_id: sub.msg_id,
            return_code: rc,
        };
        f.reply(s, &reply);
    };
    // A retransmitted SUBSCRIBE still waiting for the broker: answered once, when it comes.
    if s.pending_subs
        .values()
        .any(|p| p.msg_id == sub.msg_id && !p.silent)
    {
        return;
    }
    let (filter, kind) = match sub.topic {
        TopicRef::Name(bytes) => match topics::topic_filter(bytes) {
            Ok(filter) => (filter.to_owned(), SubKind::Name),
            Err(_) => return reject(s, f, ReturnCode::NotSupported),
        },
        TopicRef::Predefined(id) => match f.cfg.predefined.topic(Some(s.client_id()), id) {
            Some(name) => (name.to_owned(), SubKind::Predefined(id)),
            None => return reject(s, f, ReturnCode::InvalidTopicId),
        },
        TopicRef::Short(n) => match std::str::from_utf8(&n)
            .ok()
            .and_then(|f| topics::topic_filter(f.as_bytes()).ok())
        {
            Some(name) => (name.to_owned(), SubKind::Short),
            None => return reject(s, f, ReturnCode::NotSupported),
        },
        TopicRef::Normal(_) => return reject(s, f, ReturnCode::NotSupported),
    };
    if !policy::subscribe_allowed(f.cfg, s.client_id(), &filter) {
        f.out
            .drop(Some(s.peer().clone()), DropReason::TopicNotAllowed);
        return reject(s, f, ReturnCode::NotSupported);
    }
    // A concrete name gets its topic id in the SUBACK.
    let topic_id = match kind {
        SubKind::Predefined(id) => id,
        SubKind::Short => f
            .cfg
            .clients
            .entry(s.client_id())
            .and_then(|e| e.short_topic_suback_id)
            .unwrap_or(f.cfg.short_topic_suback_id)
            .topic_id(&filter),
        SubKind::Name if topics::is_wildcard(&filter) => 0,
        SubKind::Name => {
            let (predefined, max) = (&f.cfg.predefined, f.cfg.max_topics_per_client);
            match s.topic_ids.id_for(&filter, true, predefined, max) {
                Ok(id) => id,
                Err(_) => return reject(s, f, ReturnCode::Congestion),
            }
        }
    };
    if s.outstanding_requests() >= f.cfg.max_inflight_from_client {
        f.out
            .drop(Some(s.peer().clone()), DropReason::TooManyInflight);
        return reject(s, f, ReturnCode::Congestion);
    }
    let Some(at) = s.upstream().filter(|_| s.link_up) else {
        return reject(s, f, ReturnCode::Congestion);
    };
    // A new SUBSCRIBE lifts earlier REGACK rejections.
    s.rejected.clear();
    let token = f.out.token();
    s.pending_subs.insert(
        token,
        PendingSub {
            msg_id: sub.msg_id,
            topic_id,
            filter: filter.clone(),
            silent: false,
        },
    );
    let upstream = topics::to_upstream(&f.cfg.upstream.topic_prefix, &filter);
    s.subscriptions.insert(filter, (kind, qos));
    f.up.subscribe(at, token, upstream, qos, f.out);
}

/// The broker answered a SUBSCRIBE: SUBACK to the client (none for a silent restore).
pub(super) fn on_suback(s: &mut Session, f: &mut Flow<'_>, token: Token, granted: Option<MqttQos>) {
    let Some(p) = s.pending_subs.remove(&token) else {
        return;
    };
    if p.silent {
        return;
    }
    let reply = match granted {
        Some(g) => {
            if let Some(sub) = s.subscriptions.get_mut(&p.filter) {
                sub.1 = g;
            }
            Packet::Suback {
                qos: g.to_sn(),
                topic_id: p.topic_id,
                msg_id: p.msg_id,
                return_code: ReturnCode::Accepted,
            }
        }
        None => {
            s.subscriptions.remove(&p.filter);
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: p.msg_id,
                return_code: ReturnCode::NotSupported,
            }
        }
    };
    f.reply(s, &reply);
}

/// UNSUBSCRIBE: always answered, even for topics the client never subscribed to.
pub(super) fn on_unsubscribe(s: &mut Session, f: &mut Flow<'_>, u: Unsubscribe<'_>) {
    let filter = match u.topic {
        TopicRef::Name(bytes) => topics::topic_filter(bytes).ok().map(str::to_owned),
        TopicRef::Predefined(id) => f
            .cfg
            .predefined
            .topic(Some(s.client_id()), id)
            .map(str::to_owned),
        TopicRef::Short(n) => std::str::from_utf8(&n).ok().map(str::to_owned),
        TopicRef::Normal(_) => None,
    };
    if let Some(filter) = filter
        && s.subscriptions.remove(&filter).is_some()
        && let Some(at) = s.upstream()
    {
        let token = f.out.token();
        let filter = topics::to_upstream(&f.cfg.upstream.topic_prefix, &filter);
        if f.up.unsubscribe(at, token, filter.clone(), f.out) == Answer::Later {
            s.pending_unsubs.insert(token, filter);
        }
    }
    f.reply(s, &Packet::Unsuback { msg_id: u.msg_id });
}

/// Subscribes every filter of the session again (after the broker lost the session).
pub(super) fn resubscribe_all(s: &mut Session, f: &mut Flow<'_>) {
    let Some(at) = s.upstream() else { return };
    let subs: Vec<(String, MqttQos)> = s
        .subscriptions
        .iter()
        .map(|(filter, (_, q))| (filter.clone(), *q))
        .collect();
    for (filter, qos) in subs {
        let token = f.out.token();
        let upstream = topics::to_upstream(&f.cfg.upstream.topic_prefix, &filter);
        s.pending_subs.insert(
            token,
            PendingSub {
                msg_id: 0,
                topic_id: 0,
                filter,
                silent: true,
            },
        );
        f.up.subscribe(at, token, upstream, qos, f.out);
    }
}
