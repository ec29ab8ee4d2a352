//! What a session's upstream presence reports ([`LinkEvent`]s, routed by the seam):
//! connection results, acknowledgements, messages.

use sn_codec::{Instant, ReturnCode};

use super::flow::Flow;
use super::session::Session;
use super::session::{ConnectPhase, State};
use super::upstream::seam::{Attachment, LinkEvent};
use super::upstream::{BrokerRefusal, LinkId, Token};
use super::{Gateway, SessionId, connect, downlink, subscribe, uplink};

impl Gateway {
    /// An event of a client's own link (transparent mode).
    pub(super) fn link_event(&mut self, now: Instant, link: LinkId, event: LinkEvent) {
        match self.table.find_link(link) {
            Some(sid) => self.session_link_event(now, sid, event),
            None => {
                // A link the core already let go of: acknowledge what it still delivers so the
                // broker is not left waiting.
                if let LinkEvent::Message {
                    delivery: Some(delivery),
                    ..
                } = event
                {
                    self.seam
                        .ack(Attachment::Link(link), delivery, &mut self.out);
                }
            }
        }
    }

    /// An event for session `sid`'s presence at the broker.
    pub(super) fn session_link_event(&mut self, now: Instant, sid: SessionId, event: LinkEvent) {
        match event {
            LinkEvent::Up {
                session_present,
                lost,
            } => {
                self.step(sid, now, |s, f| link_up(s, f, session_present, &lost));
            }
            LinkEvent::Down { refusal } => self.on_link_down(sid, refusal),
            LinkEvent::SubAck { token, granted } => {
                self.step(sid, now, |s, f| subscribe::on_suback(s, f, token, granted));
            }
            LinkEvent::UnsubAck { token } => {
                if let Some(s) = self.table.get_mut(sid) {
                    s.pending_unsubs.remove(&token);
                }
            }
            LinkEvent::PublishDone { token } => {
                self.step(sid, now, |s, f| uplink::on_publish_done(s, f, token));
            }
            LinkEvent::PublishReceived { token } => {
                self.step(sid, now, |s, f| uplink::on_publish_received(s, f, token));
            }
            LinkEvent::PubrecHeld { token, pkid } => {
                self.step(sid, now, |s, f| uplink::on_pubrec_held(s, f, token, pkid));
            }
            LinkEvent::Message {
                delivery,
                topic,
                payload,
                qos,
                retain,
            } => {
                let m = downlink::BrokerMessage {
                    delivery,
                    topic: &topic,
                    payload,
                    qos,
                    retain,
                };
                self.step(sid, now, |s, f| downlink::on_message(s, f, m));
            }
        }
    }

    /// The link failed or was refused. While connecting, the client gets a CONNACK with a
    /// meaningful code; afterwards the connector keeps retrying and the session waits.
    pub(super) fn on_link_down(&mut self, sid: SessionId, refusal: Option<BrokerRefusal>) {
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
pub(super) fn link_up(s: &mut Session, f: &mut Flow<'_>, session_present: bool, lost: &[Token]) {
    s.link_up = true;
    let restore = !session_present || std::mem::take(&mut s.restore_on_up);
    uplink::resume_owed(s, f, session_present);
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
