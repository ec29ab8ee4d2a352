//! QoS −1 PUBLISH from senders without a session (`docs/protocol.md`, "QoS −1").

use bytes::Bytes;
use sn_codec::{Instant, Publish, TopicRef};

use super::addr::PeerAddr;
use super::config::{Admission, ClientEntry};
use super::event::DropReason;
use super::upstream::{LinkId, MqttQos, UpstreamCmd};
use super::{Gateway, policy, topics};

impl Gateway {
    /// QoS −1 from a sender without a session: predefined id, short name, or (when enabled) the
    /// non-standard long-topic form; published at QoS 0 through the gateway's own link. Never
    /// answered, not even on error.
    ///
    /// Who may publish follows the admission policy: with `registered-only`, only addresses
    /// listed in `qos_minus1.allow` or pinned by a registry entry, and a pinned entry's
    /// allowed topics and predefined ids apply. The Retain flag needs `allow_retain`.
    pub(super) fn on_publish_minus1(&mut self, now: Instant, from: PeerAddr, p: Publish<'_>) {
        let q = &self.cfg.qos_minus1;
        let listed = q
            .allow
            .as_ref()
            .map(|a| a.contains(&from.socket_addr().ip().to_canonical()));
        if !q.enabled || listed == Some(false) {
            return self.drop_from(Some(from), DropReason::QosMinus1Rejected);
        }
        if p.retain && !q.allow_retain {
            return self.drop_from(Some(from), DropReason::RetainNotAllowed);
        }
        // The registry entries that recognise the sender by its pinned address.
        let pinned: Vec<(&str, &ClientEntry)> = self.entries_pinned_to(&from).collect();
        let registered_only = self.cfg.clients.admission == Admission::RegisteredOnly;
        if registered_only && listed != Some(true) && pinned.is_empty() {
            return self.drop_from(Some(from), DropReason::NotRegistered);
        }
        let client = pinned.first().map(|(id, _)| *id);
        let (name, data): (&str, &[u8]) = match p.topic {
            TopicRef::Predefined(id) => match self.cfg.predefined.topic(client, id) {
                Some(t) => (t, p.data),
                None => return self.drop_from(Some(from), DropReason::QosMinus1Rejected),
            },
            TopicRef::Short(ref n) => match topics::topic_name(n) {
                Ok(t) => (t, p.data),
                Err(_) => return self.drop_from(Some(from), DropReason::QosMinus1Rejected),
            },
            TopicRef::Normal(len) if q.long_topic_form => {
                let split = p.data.split_at_checked(usize::from(len));
                match split.and_then(|(name, rest)| topics::topic_name(name).ok().zip(Some(rest))) {
                    Some((t, rest)) => (t, rest),
                    None => return self.drop_from(Some(from), DropReason::QosMinus1Rejected),
                }
            }
            _ => return self.drop_from(Some(from), DropReason::QosMinus1Rejected),
        };
        // A pinned sender publishes within what one of its entries allows; a listed address
        // (the operator's explicit allowance) anywhere.
        let within = listed == Some(true)
            || pinned.is_empty()
            || pinned
                .iter()
                .any(|(_, e)| policy::allowed(e.publish.as_deref(), name));
        if !within {
            return self.drop_from(Some(from), DropReason::TopicNotAllowed);
        }
        // The upstream topic is built once, prefix included.
        let topic = topics::to_upstream(&self.cfg.upstream.topic_prefix, name);
        self.out
            .stats
            .count_publish(sn_codec::QoS::MinusOne, super::stats::Direction::Upstream);
        if self.holds_qos_minus1(&from) {
            return self.hold_qos_minus1(now, &from, topic, data, p.retain);
        }
        let payload = Bytes::copy_from_slice(data);
        let token = self.new_token();
        self.out.command(UpstreamCmd::Publish {
            link: LinkId::GATEWAY,
            token,
            topic,
            payload,
            qos: MqttQos::AtMostOnce,
            retain: p.retain,
        });
    }
}
