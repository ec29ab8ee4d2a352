//! Outgoing datagrams: [`Client::poll_transmit`] encodes, in this order, the acknowledgements
//! owed to the gateway, the request in flight, queued QoS −1 publishes, and SEARCHGW.

use sn_codec::{
    Connect, Instant, Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef, Unsubscribe,
    WillTopic,
};

use super::Client;
use super::event::{ClientEvent, PubTopic, PublishError, bump};
use super::outbox::{OutPublish, Request};
use super::topics::{Kind, Reg};
use crate::log::debug;

/// Where a datagram from [`Client::poll_transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<A> {
    /// Unicast to the gateway at this address.
    Gateway(A),
    /// Broadcast (multicast on IP) with this radius in hops (SEARCHGW).
    Broadcast {
        /// Hops (0 = whole network).
        radius: u8,
    },
}

/// One datagram written into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<A> {
    /// Octets written at the start of the buffer.
    pub len: usize,
    /// Where to send them.
    pub to: Destination<A>,
}

/// An acknowledgement or prompted answer owed to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    Regack {
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    Puback {
        topic_id: u16,
        msg_id: u16,
        code: ReturnCode,
    },
    Pubrec(u16),
    Pubrel(u16),
    Pubcomp(u16),
    Pingresp,
    WillTopic,
    WillMsg,
}

/// Outcome of encoding the request in flight.
enum Sent {
    /// Nothing was due.
    Nothing,
    /// Written: `len` octets.
    Written(usize),
    /// Could not be written: the request was abandoned.
    Failed,
}

impl<A, const TOPICS: usize, const OUTBOX: usize, const PAYLOAD: usize>
    Client<A, TOPICS, OUTBOX, PAYLOAD>
where
    A: Copy + PartialEq + core::fmt::Debug,
{
    /// The next datagram to send, written into `buf` (1024 octets are plenty for the default
    /// capacities; anything that does not fit is dropped and counted in
    /// [`super::Stats::encode_errors`]). Call until it returns `None` after every input.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit<A>> {
        loop {
            let t = self.next_transmit(now, buf)?;
            if let Some(t) = t {
                bump(&mut self.stats.datagrams_out);
                if let Destination::Gateway(_) = t.to {
                    self.last_tx = now;
                }
                return Some(t);
            }
        }
    }

    /// Whether [`Client::poll_transmit`] has something to send.
    pub fn has_transmit(&self) -> bool {
        let gw = self.gateway.is_some();
        (gw && (!self.replies.is_empty() || self.outbox.send_pending() || !self.minus1.is_empty()))
            || self.discovery.send_pending()
    }

    /// `None`: nothing left. `Some(None)`: something was dropped, try again.
    fn next_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Option<Transmit<A>>> {
        if let Some(r) = self.replies.pop_front() {
            return Some(self.send_reply(r, buf));
        }
        match self.send_request(now, buf) {
            Sent::Written(len) => {
                let gw = self.gateway.map(|(a, _)| a)?;
                return Some(Some(Transmit {
                    len,
                    to: Destination::Gateway(gw),
                }));
            }
            Sent::Failed => {
                self.advance(now);
                return Some(None);
            }
            Sent::Nothing => {}
        }
        if let Some((gw, _)) = self.gateway
            && let Some(p) = self.minus1.pop_front()
        {
            let topic = match p.topic {
                PubTopic::Predefined(id) => Some(TopicRef::Predefined(id)),
                PubTopic::Short(s) => Some(TopicRef::Short(s)),
                PubTopic::Registered(_) => None,
            };
            let written = topic.and_then(|t| encode(&publish_packet(&p, t, 0, false), buf));
            return Some(match written {
                Some(len) => {
                    self.emit(ClientEvent::Published {
                        token: p.token,
                        qos: QoS::MinusOne,
                        retries: 0,
                    });
                    Some(Transmit {
                        len,
                        to: Destination::Gateway(gw),
                    })
                }
                None => {
                    bump(&mut self.stats.encode_errors);
                    self.emit(ClientEvent::PublishFailed {
                        token: p.token,
                        reason: PublishError::TooLarge,
                    });
                    None
                }
            });
        }
        if self.discovery.take_send() {
            bump(&mut self.stats.searches);
            let radius = self.cfg.search_radius;
            let len = encode(&Packet::SearchGw { radius }, buf)?;
            debug!("-> SEARCHGW radius={}", radius);
            return Some(Some(Transmit {
                len,
                to: Destination::Broadcast { radius },
            }));
        }
        None
    }

    fn send_reply(&mut self, r: Reply, buf: &mut [u8]) -> Option<Transmit<A>> {
        let (gw, _) = self.gateway?;
        let packet = match r {
            Reply::Regack {
                topic_id,
                msg_id,
                code,
            } => Packet::Regack {
                topic_id,
                msg_id,
                return_code: code,
            },
            Reply::Puback {
                topic_id,
                msg_id,
                code,
            } => Packet::Puback {
                topic_id,
                msg_id,
                return_code: code,
            },
            Reply::Pubrec(msg_id) => Packet::Pubrec { msg_id },
            Reply::Pubrel(msg_id) => Packet::Pubrel { msg_id },
            Reply::Pubcomp(msg_id) => Packet::Pubcomp { msg_id },
            Reply::Pingresp => Packet::Pingresp,
            Reply::WillTopic => Packet::WillTopic(self.cfg.will.as_ref().map(|w| WillTopic {
                qos: w.qos,
                retain: w.retain,
                topic: w.topic.as_bytes(),
            })),
            Reply::WillMsg => Packet::WillMsg {
                msg: self.cfg.will.as_ref().map_or(&[][..], |w| &w.message[..]),
            },
        };
        match encode(&packet, buf) {
            Some(len) => {
                debug!("-> {}", packet);
                Some(Transmit {
                    len,
                    to: Destination::Gateway(gw),
                })
            }
            None => {
                bump(&mut self.stats.encode_errors);
                None
            }
        }
    }

    /// Encodes the request in flight if it is due.
    fn send_request(&mut self, now: Instant, buf: &mut [u8]) -> Sent {
        if self.gateway.is_none() || !self.outbox.send_pending() {
            return Sent::Nothing;
        }
        let t_retry = self.cfg.timers.t_retry;
        let Some(i) = self.outbox.take_send(now, t_retry) else {
            return Sent::Nothing;
        };
        let (msg_id, dup) = (i.msg_id, i.retries > 0);
        let cfg = &self.cfg;
        let packet = match &i.req {
            Request::Connect { resume } => Some(Packet::Connect(Connect {
                // A resume keeps the stored Will (the gateway treats a CONNECT while asleep
                // as a wake signal and keeps the session): no prompting needed.
                will: cfg.will.is_some() && !resume,
                clean_session: cfg.clean_session && !resume,
                duration: cfg.keep_alive,
                client_id: cfg.client_id.as_bytes(),
            })),
            Request::Register(h) => self.topics.get(*h).map(|s| {
                Packet::Register(Register {
                    topic_id: 0,
                    msg_id,
                    topic_name: s.name.as_bytes(),
                })
            }),
            Request::Subscribe(h, qos) => self.topics.get(*h).map(|s| {
                let topic = slot_ref(s.kind, s.name.as_bytes());
                Packet::Subscribe(Subscribe {
                    dup,
                    qos: *qos,
                    msg_id,
                    topic,
                })
            }),
            Request::Unsubscribe(h) => self.topics.get(*h).map(|s| {
                Packet::Unsubscribe(Unsubscribe {
                    msg_id,
                    topic: slot_ref(s.kind, s.name.as_bytes()),
                })
            }),
            Request::Publish { released: true, .. } => Some(Packet::Pubrel { msg_id }),
            Request::Publish {
                publish,
                released: false,
            } => {
                let topic = match publish.topic {
                    PubTopic::Predefined(id) => Some(TopicRef::Predefined(id)),
                    PubTopic::Short(s) => Some(TopicRef::Short(s)),
                    PubTopic::Registered(h) => self
                        .topics
                        .get(h)
                        .filter(|s| s.reg == Reg::Done)
                        .and_then(|s| s.id)
                        .map(TopicRef::Normal),
                };
                topic.map(|t| publish_packet(publish, t, msg_id, dup && publish.qos != QoS::Zero))
            }
            Request::Ping => Some(Packet::Pingreq { client_id: None }),
            Request::WakePing => Some(Packet::Pingreq {
                client_id: Some(cfg.client_id.as_bytes()),
            }),
            Request::Sleep(d) => Some(Packet::Disconnect { duration: Some(*d) }),
            Request::Disconnect => Some(Packet::Disconnect { duration: None }),
        };
        // A registered topic whose id was withdrawn meanwhile (PUBACK 0x02 to a QoS 0 publish):
        // the publish goes back to the queue and waits for the new REGISTER.
        let unresolved = packet.is_none() && matches!(&i.req, Request::Publish { .. });
        let written = packet.and_then(|p| {
            let len = encode(&p, buf)?;
            if dup {
                debug!("-> {} (retransmission)", p);
            } else {
                debug!("-> {}", p);
            }
            Some(len)
        });
        let is_qos0 =
            matches!(&i.req, Request::Publish { publish, .. } if publish.qos == QoS::Zero);
        match written {
            Some(len) => {
                if is_qos0 {
                    // Fire and forget: done once handed to the radio.
                    if let Some(i) = self.outbox.finish()
                        && let Request::Publish { publish, .. } = i.req
                    {
                        self.emit(ClientEvent::Published {
                            token: publish.token,
                            qos: QoS::Zero,
                            retries: 0,
                        });
                    }
                    self.advance(now);
                }
                Sent::Written(len)
            }
            None if unresolved => {
                if let Some(i) = self.outbox.finish() {
                    self.requeue(i);
                }
                Sent::Failed
            }
            None if unresolved => {
                if let Some(i) = self.outbox.finish() {
                    self.requeue(i);
                }
                Sent::Failed
            }
            None => {
                bump(&mut self.stats.encode_errors);
                // Requests that carry application data are abandoned; control messages (which
                // always fit a sane buffer) stay in flight and run into N_RETRY.
                let abandon = matches!(
                    self.outbox.inflight().map(|i| &i.req),
                    Some(
                        Request::Publish { .. }
                            | Request::Register(_)
                            | Request::Subscribe(..)
                            | Request::Unsubscribe(_)
                    )
                );
                if abandon && let Some(i) = self.outbox.finish() {
                    match i.req {
                        Request::Publish { publish, .. } => self.emit(ClientEvent::PublishFailed {
                            token: publish.token,
                            reason: PublishError::TooLarge,
                        }),
                        Request::Register(h) => {
                            if let Some(s) = self.topics.get_mut(h) {
                                s.reg = Reg::Failed;
                            }
                        }
                        Request::Subscribe(h, _) | Request::Unsubscribe(h) => {
                            if let Some(s) = self.topics.get_mut(h) {
                                s.sub = super::topics::Sub::Failed;
                            }
                        }
                        _ => {}
                    }
                }
                Sent::Failed
            }
        }
    }
}

/// The topic reference of a subscription slot.
fn slot_ref(kind: Kind, name: &[u8]) -> TopicRef<'_> {
    match kind {
        Kind::Name => TopicRef::Name(name),
        Kind::Predefined(id) => TopicRef::Predefined(id),
        Kind::Short(s) => TopicRef::Short(s),
    }
}

fn publish_packet<'a, const P: usize>(
    p: &'a OutPublish<P>,
    topic: TopicRef<'a>,
    msg_id: u16,
    dup: bool,
) -> Packet<'a> {
    Packet::Publish(Publish {
        dup,
        qos: p.qos,
        retain: p.retain,
        topic,
        msg_id,
        data: &p.payload,
    })
}

fn encode(packet: &Packet<'_>, buf: &mut [u8]) -> Option<usize> {
    packet.encode(buf).ok()
}
