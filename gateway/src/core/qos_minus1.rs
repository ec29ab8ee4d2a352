//! QoS −1 PUBLISH from senders without a session (§10).

use bytes::Bytes;
use sn_codec::{Instant, Publish, TopicRef};

use super::Gateway;
use super::addr::PeerAddr;
use super::event::DropReason;
use super::topics;
use super::upstream::{LinkId, UpstreamCmd};

impl Gateway {
    /// QoS −1 from a sender without a session: predefined (global) id, short name, or the
    /// non-standard long-topic form; published at QoS 0 through the gateway's own link. Never
    /// answered, not even on error.
    pub(super) fn on_publish_minus1(&mut self, _now: Instant, from: PeerAddr, p: Publish<'_>) {
        let q = &self.cfg.qos_minus1;
        let allowed = q.enabled
            && q.allow
                .as_ref()
                .is_none_or(|a| a.contains(&from.socket_addr().ip()));
        if !allowed {
            return self.drop_from(Some(from), DropReason::QosMinus1Rejected);
        }
        // The upstream topic is built once, prefix included.
        let prefix = &self.cfg.upstream.topic_prefix;
        let (topic, data): (String, &[u8]) = match p.topic {
            TopicRef::Predefined(id) => match self.cfg.predefined.topic(None, id) {
                Some(t) => (topics::to_upstream(prefix, t), p.data),
                None => return self.drop_from(Some(from), DropReason::QosMinus1Rejected),
            },
            TopicRef::Short(n) => match topics::topic_name(&n) {
                Ok(t) => (topics::to_upstream(prefix, t), p.data),
                Err(_) => return self.drop_from(Some(from), DropReason::QosMinus1Rejected),
            },
            TopicRef::Normal(len) if q.long_topic_form => {
                let split = p.data.split_at_checked(usize::from(len));
                match split.and_then(|(name, rest)| {
                    topics::topic_name(name)
                        .ok()
                        .map(|n| (topics::to_upstream(prefix, n), rest))
                }) {
                    Some((t, rest)) => (t, rest),
                    None => return self.drop_from(Some(from), DropReason::QosMinus1Rejected),
                }
            }
            _ => return self.drop_from(Some(from), DropReason::QosMinus1Rejected),
        };
        self.stats
            .count_publish(sn_codec::QoS::MinusOne, super::stats::Direction::Upstream);
        let token = self.new_token();
        self.cmds.push_back(UpstreamCmd::Publish {
            link: LinkId::GATEWAY,
            token,
            topic,
            payload: Bytes::copy_from_slice(data),
            qos: 0,
            retain: p.retain,
        });
    }
}
