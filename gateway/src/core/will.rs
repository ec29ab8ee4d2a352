//! Will updates (`docs/protocol.md`, "Will updates"): WILLTOPICUPD / WILLMSGUPD change the Will
//! for real by re-opening the upstream session with CleanSession=0 and the new Will (MQTT 3.1.1
//! cannot change it in place).

use bytes::Bytes;
use sn_codec::{Instant, Packet, ReturnCode, WillTopic};

use super::flow::Flow;
use super::session::{Session, WillSpec};
use super::topics;
use super::upstream::MqttQos;
use super::{Gateway, SessionId, uplink};

impl Gateway {
    /// WILLTOPICUPD: the Will topic changes (empty: the Will is deleted) and the link is
    /// re-opened with it; a bad topic name is refused with WILLTOPICRESP 0x03.
    pub(super) fn on_will_topic_upd(
        &mut self,
        now: Instant,
        sid: SessionId,
        t: Option<WillTopic<'_>>,
    ) {
        if self.step(sid, now, |s, f| update_will_topic(s, f, t)) == Some(true) {
            self.reopen_for_will(now, sid);
            self.step(sid, now, |s, f| {
                f.reply(
                    s,
                    &Packet::WillTopicResp {
                        return_code: ReturnCode::Accepted,
                    },
                )
            });
        }
    }

    /// WILLMSGUPD: the Will message changes; with a Will topic the link is re-opened with it.
    pub(super) fn on_will_msg_upd(&mut self, now: Instant, sid: SessionId, msg: &[u8]) {
        if self.step(sid, now, |s, _| update_will_msg(s, msg)) == Some(true) {
            self.reopen_for_will(now, sid);
        }
        self.step(sid, now, |s, f| {
            f.reply(
                s,
                &Packet::WillMsgResp {
                    return_code: ReturnCode::Accepted,
                },
            )
        });
    }

    /// MQTT 3.1.1 cannot change a Will in place: re-open the link with CleanSession=0 and the
    /// new Will. Subscriptions stay at the broker; messages in flight are redelivered there.
    fn reopen_for_will(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        if s.upstream().is_none() {
            return;
        }
        // Upstream deliveries of the old link can no longer be acknowledged; the broker
        // redelivers them on the new link.
        s.acks.clear();
        s.queue.retain(|m| m.delivery.is_none());
        if s.inflight
            .as_ref()
            .is_some_and(|i| i.msg.delivery.is_some())
        {
            s.inflight = None;
        }
        s.restore_on_up = true;
        s.clean_session = false;
        self.attach_upstream(now, sid, false);
        // Publishes not yet completed go again on the new link.
        self.step(sid, now, |s, f| {
            let pending: Vec<_> = s.uplink.keys().copied().collect();
            for token in pending {
                uplink::resubmit_uplink(s, f, token);
            }
        });
    }
}

/// Stores the topic of a WILLTOPICUPD; false (and WILLTOPICRESP 0x03) for a bad topic name.
fn update_will_topic(s: &mut Session, f: &mut Flow<'_>, t: Option<WillTopic<'_>>) -> bool {
    let Some(t) = t else {
        s.will = WillSpec::default();
        return true;
    };
    match topics::topic_name(t.topic) {
        Ok(name) => {
            s.will.topic = Some((name.to_owned(), MqttQos::from_sn(t.qos), t.retain));
            true
        }
        Err(_) => {
            let refusal = Packet::WillTopicResp {
                return_code: ReturnCode::NotSupported,
            };
            f.reply(s, &refusal);
            false
        }
    }
}

/// Stores the message of a WILLMSGUPD; true when the Will has a topic (so it takes effect).
fn update_will_msg(s: &mut Session, msg: &[u8]) -> bool {
    s.will.msg = Bytes::copy_from_slice(msg);
    s.will.topic.is_some()
}
