//! Events from a client's upstream link: connection results, acknowledgements, messages.

use sn_codec::{Instant, ReturnCode};

use super::flow::Flow;
use super::session::Session;
use super::session::{ConnectPhase, State};
use super::upstream::Token;
use super::upstream::{BrokerRefusal, LinkId, UpstreamCmd, UpstreamEvent};
use super::{Gateway, SessionId, connect, downlink, subscribe, uplink};

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
                if let Some((s, mut f)) = self.flow(sid, now) {
                    subscribe::on_suback(s, &mut f, token, granted);
                }
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
        lost: Vec<Token>,
    ) {
        if let Some((s, mut f)) = self.flow(sid, now) {
            link_up(s, &mut f, session_present, &lost);
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

/// The session's link is connected: requests the broker lost go again, subscriptions are
/// restored when the broker lost them (or the gateway re-opened the link), and a connecting
/// client is accepted.
fn link_up(s: &mut Session, f: &mut Flow<'_>, session_present: bool, lost: &[Token]) {
    s.link_up = true;
    let restore = !session_present || std::mem::take(&mut s.restore_on_up);
    uplink::resend_lost(s, f, lost);
    if restore {
        subscribe::resubscribe_all(s, f);
    }
    if s.state == State::Connecting(ConnectPhase::Upstream) {
        if s.sleep.is_some() {
            // Will update while asleep/awake: back to sleep with the new link.
            s.state = State::Asleep;
        } else {
            connect::accept(s, f);
        }
    } else if s.state == State::Active {
        downlink::pump(s, f);
    }
}
