//! The gateway's own upstream link: QoS −1 traffic, the retained status topic, and the
//! upstream health that gates discovery.

use bytes::Bytes;
use sn_codec::Instant;

use super::config::UpstreamMode;
use super::event::GatewayEvent;
use super::session::SessionId;
use super::upstream::seam::Attachment;
use super::upstream::{LinkId, MqttQos, UpstreamCmd, UpstreamEvent, Will};
use super::{Gateway, uplink};

impl Gateway {
    pub(super) fn gateway_link_event(&mut self, now: Instant, event: UpstreamEvent) {
        match event {
            UpstreamEvent::LinkUp {
                lost,
                session_present,
                ..
            } => {
                let was_up = self.gateway_link_up;
                self.gateway_link_up = true;
                // Owed PUBRELs first (the clients' and custody's): one must go out before any
                // new publish can take the packet id the broker still holds a message under.
                self.resume_shared_pubrels(now, session_present);
                self.custody_link_up(&lost, session_present);
                self.publish_status(b"online");
                if !was_up {
                    self.event(GatewayEvent::UpstreamHealth { up: true });
                    self.discovery_health(now, true);
                }
            }
            UpstreamEvent::PubrecHeld { token, pkid, .. } => self.custody_pubrec(token, pkid),
            UpstreamEvent::PublishDone { token, .. } => {
                self.custody_done(now, token);
            }
            UpstreamEvent::LinkDown { .. } | UpstreamEvent::Refused { .. }
                if self.gateway_link_up =>
            {
                self.gateway_link_up = false;
                self.event(GatewayEvent::UpstreamHealth { up: false });
                self.discovery_health(now, false);
            }
            UpstreamEvent::Message {
                link,
                delivery,
                qos: MqttQos::AtLeastOnce | MqttQos::ExactlyOnce,
                ..
            } => {
                self.out.command(UpstreamCmd::Ack { link, delivery });
            }
            _ => {}
        }
    }

    /// Aggregating mode: the shared link is up. With the broker's session, the PUBRELs the
    /// clients' sessions owe on it from before a restart go out; without it they mean nothing
    /// any more. (Transparent links resume their own, `uplink::resume_owed`.)
    fn resume_shared_pubrels(&mut self, now: Instant, session_present: bool) {
        if self.cfg.upstream.mode != UpstreamMode::Aggregating {
            return;
        }
        let owing: Vec<SessionId> = self
            .table
            .iter()
            .filter(|(_, s)| !s.pubrels_owed.is_empty())
            .map(|(sid, _)| sid)
            .collect();
        for sid in owing {
            self.step(sid, now, |s, f| {
                let at = Attachment::Shared(sid);
                uplink::resume_owed_on(s, f, at, LinkId::GATEWAY, session_present);
            });
        }
    }

    /// Publishes the gateway's retained status (`online`, or `offline` at a graceful stop).
    pub(super) fn publish_status(&mut self, status: &'static [u8]) {
        let topic = self.status_topic();
        let token = self.new_token();
        self.out.command(UpstreamCmd::Publish {
            link: LinkId::GATEWAY,
            token,
            topic,
            payload: Bytes::from_static(status),
            qos: MqttQos::AtLeastOnce,
            retain: true,
        });
    }

    /// `<topic_prefix>gateway/<id>/status`: `online` (retained) while the gateway runs,
    /// `offline` after a graceful stop, and Will `offline` for a crash.
    fn status_topic(&self) -> String {
        let up = &self.cfg.upstream;
        format!("{}gateway/{}/status", up.topic_prefix, self.cfg.gateway_id)
    }

    /// Opens the gateway's own link. In aggregating mode with a state store it carries every
    /// client, so it keeps a persistent session (clean session off, under the stable
    /// `gateway_client_id`): the broker keeps the shared subscriptions and queues messages
    /// while the link is down or the gateway restarts, and QoS 2 publishes cut by a bounce are
    /// completed, not repeated. Otherwise it starts clean, as nothing of it would be resumed.
    pub(super) fn open_gateway_link(&mut self) {
        let up = &self.cfg.upstream;
        let persistent = up.mode == UpstreamMode::Aggregating && self.cfg.persist_sessions;
        let cmd = UpstreamCmd::Open {
            link: LinkId::GATEWAY,
            client_id: up.gateway_client_id.clone(),
            clean_session: !persistent,
            keep_alive: up.keep_alive,
            will: Some(Will {
                topic: self.status_topic(),
                payload: Bytes::from_static(b"offline"),
                qos: MqttQos::AtLeastOnce,
                retain: true,
            }),
            credentials: up.credentials.clone(),
            identity: None,
        };
        self.out.command(cmd);
    }
}
