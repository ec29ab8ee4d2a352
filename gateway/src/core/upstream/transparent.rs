//! Transparent upstream mode: every client gets a broker connection of its own, under its own
//! (prefixed) ClientId, with its Will and credentials; the broker sees each mote as an MQTT
//! client. Commands map one to one onto the connector's; events are routed by link.

use super::seam::{Answer, Attachment, LinkEvent, Opened, Outgoing, Routed, Seam, upstream_will};
use super::{DeliveryId, LinkId, MqttQos, Token, UpstreamCmd, UpstreamEvent};
use crate::core::config::GatewayConfig;
use crate::core::outputs::Outputs;
use crate::core::session::{Session, SessionId};
use crate::core::topics;

/// A broker connection per client.
#[derive(Debug)]
pub(crate) struct Transparent {
    /// The last link id handed out (0 is the gateway's own).
    last_link: u64,
}

impl Transparent {
    /// No client links yet.
    pub(crate) fn new() -> Self {
        Transparent { last_link: 0 }
    }
}

/// The link of an attachment this mode made.
fn link_of(at: Attachment) -> Option<LinkId> {
    match at {
        Attachment::Link(link) => Some(link),
        Attachment::Shared(_) => None,
    }
}

impl Seam for Transparent {
    fn open(
        &mut self,
        _sid: SessionId,
        s: &Session,
        cfg: &GatewayConfig,
        clean_session: bool,
        _shared_up: bool,
        out: &mut Outputs,
    ) -> Opened {
        self.last_link += 1;
        let link = LinkId(self.last_link);
        let up = &cfg.upstream;
        out.command(UpstreamCmd::Open {
            link,
            client_id: topics::to_upstream(&up.client_id_prefix, s.client_id()),
            clean_session,
            keep_alive: up.keep_alive,
            will: upstream_will(cfg, s),
            credentials: up
                .per_client_credentials
                .get(s.client_id())
                .or(up.credentials.as_ref())
                .cloned(),
            identity: up.per_client_identity.get(s.client_id()).cloned(),
        });
        Opened::Later(Attachment::Link(link))
    }

    fn close(&mut self, at: Attachment, graceful: bool, out: &mut Outputs) {
        if let Some(link) = link_of(at) {
            out.command(UpstreamCmd::Close { link, graceful });
        }
    }

    fn publish(&mut self, at: Attachment, token: Token, msg: Outgoing, out: &mut Outputs) {
        if let Some(link) = link_of(at) {
            if msg.hold_release {
                out.command(UpstreamCmd::HoldRelease { link, token });
            }
            out.command(UpstreamCmd::Publish {
                link,
                token,
                topic: msg.topic,
                payload: msg.payload,
                qos: msg.qos,
                retain: msg.retain,
            });
        }
    }

    fn subscribe(
        &mut self,
        at: Attachment,
        token: Token,
        filter: String,
        qos: MqttQos,
        out: &mut Outputs,
    ) {
        if let Some(link) = link_of(at) {
            out.command(UpstreamCmd::Subscribe {
                link,
                token,
                filter,
                qos,
            });
        }
    }

    fn unsubscribe(
        &mut self,
        at: Attachment,
        token: Token,
        filter: String,
        out: &mut Outputs,
    ) -> Answer {
        match link_of(at) {
            Some(link) => {
                out.command(UpstreamCmd::Unsubscribe {
                    link,
                    token,
                    filter,
                });
                Answer::Later
            }
            None => Answer::Now,
        }
    }

    fn ack(&mut self, at: Attachment, delivery: DeliveryId, out: &mut Outputs) {
        if let Some(link) = link_of(at) {
            out.command(UpstreamCmd::Ack { link, delivery });
        }
    }

    fn link(&self, at: Attachment) -> Option<LinkId> {
        link_of(at)
    }

    fn resume(&mut self, at: Attachment, token: Token, pkid: u16, out: &mut Outputs) {
        if let Some(link) = link_of(at) {
            out.command(UpstreamCmd::Resume { link, token, pkid });
        }
    }

    fn route(
        &mut self,
        event: UpstreamEvent,
        _shared_up: bool,
        _out: &mut Outputs,
        to: &mut Vec<Routed>,
    ) {
        if event.link() == LinkId::GATEWAY {
            return to.push(Routed::Gateway(event));
        }
        let (link, e) = match event {
            UpstreamEvent::LinkUp {
                link,
                session_present,
                lost,
            } => (
                link,
                LinkEvent::Up {
                    session_present,
                    lost,
                },
            ),
            UpstreamEvent::LinkDown { link, .. } => (link, LinkEvent::Down { refusal: None }),
            UpstreamEvent::Refused { link, refusal } => (
                link,
                LinkEvent::Down {
                    refusal: Some(refusal),
                },
            ),
            UpstreamEvent::SubAck {
                link,
                token,
                granted,
            } => (link, LinkEvent::SubAck { token, granted }),
            UpstreamEvent::UnsubAck { link, token } => (link, LinkEvent::UnsubAck { token }),
            UpstreamEvent::PublishDone { link, token } => (link, LinkEvent::PublishDone { token }),
            UpstreamEvent::PublishReceived { link, token } => {
                (link, LinkEvent::PublishReceived { token })
            }
            UpstreamEvent::PubrecHeld { link, token, pkid } => {
                (link, LinkEvent::PubrecHeld { token, pkid })
            }
            UpstreamEvent::Message {
                link,
                delivery,
                topic,
                payload,
                qos,
                retain,
            } => (
                link,
                LinkEvent::Message {
                    delivery: delivery.qos.is_acknowledged().then_some(delivery),
                    topic,
                    payload,
                    qos,
                    retain,
                },
            ),
            // The session let go of the link before it closed: nothing to do.
            UpstreamEvent::Closed { .. } => return,
        };
        to.push(Routed::Link(link, e));
    }
}
