//! SUBSCRIBE / UNSUBSCRIBE by topic name or filter, predefined id and short name
//! (`docs/protocol.md`, "Subscriptions").

use sn_codec::{Instant, Packet, QoS, ReturnCode, Subscribe, TopicRef, Unsubscribe};

use super::session::{PendingSub, SubKind};
use super::topics;
use super::upstream::{Token, UpstreamCmd};
use super::{Gateway, SessionId};

impl Gateway {
    pub(super) fn on_subscribe(&mut self, _now: Instant, sid: SessionId, sub: Subscribe<'_>) {
        let qos = match sub.qos {
            QoS::One => 1,
            QoS::Two => 2,
            QoS::Zero | QoS::MinusOne => 0,
        };
        let reject = |this: &mut Self, rc: ReturnCode| {
            let reply = Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: sub.msg_id,
                return_code: rc,
            };
            this.send_to_session(sid, &reply);
        };
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        // A retransmitted SUBSCRIBE still waiting for the broker: answered once, when it comes.
        if s.pending_subs
            .values()
            .any(|p| p.msg_id == sub.msg_id && !p.silent)
        {
            return;
        }
        // Which filter, without allocating anything yet.
        let (filter, kind) = match sub.topic {
            TopicRef::Name(bytes) => match topics::topic_filter(bytes) {
                Ok(filter) => (filter.to_owned(), SubKind::Name),
                Err(_) => return reject(self, ReturnCode::NotSupported),
            },
            TopicRef::Predefined(id) => match self.cfg.predefined.topic(Some(s.client_id()), id) {
                Some(name) => (name.to_owned(), SubKind::Predefined(id)),
                None => return reject(self, ReturnCode::InvalidTopicId),
            },
            TopicRef::Short(n) => match std::str::from_utf8(&n)
                .ok()
                .and_then(|f| topics::topic_filter(f.as_bytes()).ok())
            {
                Some(name) => (name.to_owned(), SubKind::Short),
                None => return reject(self, ReturnCode::NotSupported),
            },
            TopicRef::Normal(_) => return reject(self, ReturnCode::NotSupported),
        };
        if !super::policy::subscribe_allowed(&self.cfg, s.client_id(), &filter) {
            let peer = Some(s.peer().clone());
            self.drop_from(peer, super::event::DropReason::TopicNotAllowed);
            return reject(self, ReturnCode::NotSupported);
        }
        // A concrete name gets its topic id in the SUBACK.
        let topic_id = match kind {
            SubKind::Predefined(id) => id,
            SubKind::Short => 0,
            SubKind::Name if topics::is_wildcard(&filter) => 0,
            SubKind::Name => {
                let (predefined, max) = (&self.cfg.predefined, self.cfg.max_topics_per_client);
                match s.registry.id_for(&filter, true, predefined, max) {
                    Ok(id) => id,
                    Err(_) => return reject(self, ReturnCode::Congestion),
                }
            }
        };
        if s.outstanding_requests() >= self.cfg.max_inflight_from_client {
            let peer = Some(s.peer().clone());
            self.drop_from(peer, super::event::DropReason::TooManyInflight);
            return reject(self, ReturnCode::Congestion);
        }
        let Some(link) = s.link().filter(|_| s.link_up) else {
            return reject(self, ReturnCode::Congestion);
        };
        // A new SUBSCRIBE lifts earlier REGACK rejections: those topics may be delivered again.
        s.rejected.clear();
        let token = self.new_token();
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.pending_subs.insert(
            token,
            PendingSub {
                msg_id: sub.msg_id,
                topic_id,
                filter: filter.clone(),
                silent: false,
            },
        );
        s.subscriptions.insert(filter.clone(), (kind, qos));
        let filter = topics::to_upstream(&self.cfg.upstream.topic_prefix, &filter);
        self.out.command(UpstreamCmd::Subscribe {
            link,
            token,
            filter,
            qos,
        });
    }

    pub(super) fn on_suback(
        &mut self,
        _now: Instant,
        sid: SessionId,
        token: Token,
        granted: Option<u8>,
    ) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
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
                let qos = match g {
                    1 => QoS::One,
                    2 => QoS::Two,
                    _ => QoS::Zero,
                };
                Packet::Suback {
                    qos,
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
        self.send_to_session(sid, &reply);
    }

    pub(super) fn on_unsubscribe(&mut self, _now: Instant, sid: SessionId, u: Unsubscribe<'_>) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let filter = match u.topic {
            TopicRef::Name(bytes) => topics::topic_filter(bytes).ok().map(str::to_owned),
            TopicRef::Predefined(id) => self
                .cfg
                .predefined
                .topic(Some(s.client_id()), id)
                .map(str::to_owned),
            TopicRef::Short(n) => std::str::from_utf8(&n).ok().map(str::to_owned),
            TopicRef::Normal(_) => None,
        };
        if let Some(filter) = filter
            && s.subscriptions.remove(&filter).is_some()
            && let Some(link) = s.link()
        {
            let token = self.new_token();
            let filter = topics::to_upstream(&self.cfg.upstream.topic_prefix, &filter);
            if let Some(s) = self.table.get_mut(sid) {
                s.pending_unsubs.insert(token, filter.clone());
            }
            self.out.command(UpstreamCmd::Unsubscribe {
                link,
                token,
                filter,
            });
        }
        // Always answered, even for unknown topics.
        self.send_to_session(sid, &Packet::Unsuback { msg_id: u.msg_id });
    }

    /// Subscribes every filter of the session again (after the broker lost the session).
    pub(super) fn resubscribe_all(&mut self, sid: SessionId) {
        let Some(s) = self.table.get(sid) else {
            return;
        };
        let Some(link) = s.link() else { return };
        let subs: Vec<(String, u8)> = s
            .subscriptions
            .iter()
            .map(|(f, (_, q))| (f.clone(), *q))
            .collect();
        for (filter, qos) in subs {
            let token = self.new_token();
            let Some(s) = self.table.get_mut(sid) else {
                return;
            };
            s.pending_subs.insert(
                token,
                PendingSub {
                    msg_id: 0,
                    topic_id: 0,
                    filter: filter.clone(),
                    silent: true,
                },
            );
            let filter = topics::to_upstream(&self.cfg.upstream.topic_prefix, &filter);
            self.out.command(UpstreamCmd::Subscribe {
                link,
                token,
                filter,
                qos,
            });
        }
    }
}
