//! Events from a client's upstream link: connection results, acknowledgements, messages.

use sn_codec::{Instant, ReturnCode};

use super::session::{ConnectPhase, State};
use super::upstream::{BrokerRefusal, LinkId, UpstreamCmd, UpstreamEvent};
use super::{Gateway, SessionId, downlink, uplink};

impl Gateway {
    pub(super) fn upstream_event(&mut self, now: Instant, event: UpstreamEvent) {
        let link = match &event {
            UpstreamEvent::LinkUp { link, .. }
            | UpstreamEvent::LinkDown { link, .. }
            | UpstreamEvent::Refused { link, .. }
            | UpstreamEvent::SubAck { link, .. }
            | UpstreamEvent::UnsubAck { link, .. }
            | UpstreamEvent::PublishDone { link, .. }
            | UpstreamEvent::PublishReceived { link, .. }
            | UpstreamEvent::Message { link, .. }
            | UpstreamEvent::Closed { link } => *link,
        };
        if link == LinkId::GATEWAY {
            return self.gateway_link_event(now, event);
        }
        let Some(sid) = self.table.find_link(link) else {
            // A link the core already let go of: acknowledge what it still delivers so the
            // broker is not left waiting.
            if let UpstreamEvent::Message {
                delivery,
                qos: 1..=2,
                ..
            } = event
            {
                self.out.command(UpstreamCmd::Ack { link, delivery });
            }
            return;
        };
        match event {
            UpstreamEvent::LinkUp {
                session_present,
                lost,
                ..
            } => self.on_link_up(now, sid, session_present, lost),
            UpstreamEvent::LinkDown { .. } => self.on_link_down(now, sid, None),
            UpstreamEvent::Refused { refusal, .. } => self.on_link_down(now, sid, Some(refusal)),
            UpstreamEvent::SubAck { token, granted, .. } => {
                self.on_suback(now, sid, token, granted)
            }
            UpstreamEvent::UnsubAck { token, .. } => {
                if let Some(s) = self.table.get_mut(sid) {
                    s.pending_unsubs.remove(&token);
                }
            }
            UpstreamEvent::Closed { .. } => {}
            UpstreamEvent::PublishDone { token, .. } => {
                if let Some((s, mut f)) = self.flow(sid, now) {
                    uplink::on_publish_done(s, &mut f, token);
                }
            }
            UpstreamEvent::PublishReceived { token, .. } => {
                if let Some((s, mut f)) = self.flow(sid, now) {
                    uplink::on_publish_received(s, &mut f, token);
                }
            }
            UpstreamEvent::Message {
                link,
                delivery,
                topic,
                payload,
                qos,
                retain,
            } => {
                let m = downlink::BrokerMessage {
                    link,
                    delivery,
                    topic: &topic,
                    payload,
                    qos,
                    retain,
                };
                if let Some((s, mut f)) = self.flow(sid, now) {
                    downlink::on_message(s, &mut f, m);
                }
            }
        }
        self.reschedule(sid);
    }

    fn on_link_up(
        &mut self,
        now: Instant,
        sid: SessionId,
        session_present: bool,
        lost: Vec<super::upstream::Token>,
    ) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.link_up = true;
        let restore = !session_present || std::mem::take(&mut s.restore_on_up);
        if let Some((s, mut f)) = self.flow(sid, now) {
            uplink::resend_lost(s, &mut f, &lost);
        }
        if restore {
            self.resubscribe_all(sid);
        }
        let Some(s) = self.table.get(sid) else {
            return;
        };
        if s.state == State::Connecting(ConnectPhase::Upstream) {
            let resumed_sleeper = s.sleep.is_some();
            if resumed_sleeper {
                // Will update while asleep/awake: back to sleep with the new link.
                if let Some(s) = self.table.get_mut(sid) {
                    s.state = State::Asleep;
                }
            } else {
                self.accept_connect(now, sid);
            }
        } else if s.state == State::Active
            && let Some((s, mut f)) = self.flow(sid, now)
        {
            downlink::pump(s, &mut f);
        }
    }

    /// The link failed or was refused. While connecting, the client gets a CONNACK with a
    /// meaningful code; afterwards the connector keeps retrying and the session waits.
    fn on_link_down(&mut self, _now: Instant, sid: SessionId, refusal: Option<BrokerRefusal>) {
        let Some(s) = self.table.get_mut(sid) else {
            return;
        };
        s.link_up = false;
        if s.state != State::Connecting(ConnectPhase::Upstream) || s.sleep.is_some() {
            return;
        }
        let code = match refusal {
            None | Some(BrokerRefusal::ServerUnavailable) => ReturnCode::Congestion,
            Some(_) => ReturnCode::NotSupported,
        };
        let (peer, client_id) = (s.peer().clone(), s.client_id().to_owned());
        self.end_session(sid, true);
        self.refuse_connect(&peer, client_id, code);
    }
}
