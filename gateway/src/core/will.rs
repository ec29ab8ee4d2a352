//! Will updates (`docs/protocol.md`, "Will updates"): WILLTOPICUPD / WILLMSGUPD change the Will
//! for real by re-opening the upstream session with CleanSession=0 and the new Will (MQTT 3.1.1
//! cannot change it in place).

use bytes::Bytes;
use sn_codec::{Instant, Packet, ReturnCode, WillTopic};

use super::session::WillSpec;
use super::topics;
use super::upstream::MqttQos;
use super::{Gateway, SessionId, uplink};

impl Gateway {
    pub(super) fn on_will_topic_upd(
        &mut self,
        now: Instant,
        sid: SessionId,
        t: Option<WillTopic<'_>>,
    ) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        let new_topic = match t {
            None => None,
            Some(t) => match topics::topic_name(t.topic) {
                Ok(name) => Some((name.to_owned(), MqttQos::from_sn(t.qos), t.retain)),
                Err(_) => {
                    self.send_to_session(
                        sid,
                        &Packet::WillTopicResp {
                            return_code: ReturnCode::NotSupported,
                        },
                    );
                    return;
                }
            },
        };
        if new_topic.is_none() {
            s.will = WillSpec::default();
        } else {
            s.will.topic = new_topic;
        }
        self.reopen_for_will(now, sid);
        self.send_to_session(
            sid,
            &Packet::WillTopicResp {
                return_code: ReturnCode::Accepted,
            },
        );
    }

    pub(super) fn on_will_msg_upd(&mut self, now: Instant, sid: SessionId, msg: &[u8]) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.will.msg = Bytes::copy_from_slice(msg);
        if s.will.topic.is_some() {
            self.reopen_for_will(now, sid);
        }
        self.send_to_session(
            sid,
            &Packet::WillMsgResp {
                return_code: ReturnCode::Accepted,
            },
        );
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
