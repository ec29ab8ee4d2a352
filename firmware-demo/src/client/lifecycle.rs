//! Session life cycle: choosing the next request, timers, connecting, losing the gateway.

use core::time::Duration;

use sn_codec::Instant;

use super::discovery::backoff;
use super::event::{ClientEvent, DisconnectReason, LossReason, PubTopic, PublishError, bump};
use super::outbox::{Expiry, Inflight, OutPublish, Request};
use super::topics::{Reg, Work};
use super::{Client, State};
use crate::log::{debug, info, warning};

/// Whether a queued publish can go out now.
enum Readiness {
    Ready,
    Wait,
    Failed,
}

impl<A, const TOPICS: usize, const OUTBOX: usize, const PAYLOAD: usize>
    Client<A, TOPICS, OUTBOX, PAYLOAD>
where
    A: Copy + PartialEq + core::fmt::Debug,
{
    /// Handles the expiry of whatever [`Client::poll_timeout`] announced. Calling it early or
    /// twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.outbox.on_timeout(now, self.cfg.timers.n_retry) {
            Expiry::None => {}
            Expiry::Retransmit => {
                bump(&mut self.stats.retransmissions);
                debug!("T_RETRY expired: retransmitting");
            }
            Expiry::Exhausted(i) => self.exhausted(now, i),
        }
        if self.discovery.is_searching() {
            self.discovery
                .on_timeout(now, &self.cfg.timers, &mut self.rng);
        }
        if let Some((addr, _)) = self.gateway
            && self.state != State::Asleep
            && self
                .discovery
                .adv_deadline_of(addr)
                .is_some_and(|d| d <= now)
        {
            self.lose_gateway(now, LossReason::AdvertiseMissed);
        }
        if self.state == State::Lost && !self.outbox.held(now) {
            self.set_state(State::Connecting);
        }
        self.advance(now);
    }

    /// When [`Client::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let keep_alive =
            (self.state.is_connected() && self.outbox.is_idle() && self.cfg.keep_alive > 0)
                .then(|| self.keep_alive_due());
        let adv = match self.gateway {
            Some((addr, _)) if self.state != State::Asleep => self.discovery.adv_deadline_of(addr),
            _ => None,
        };
        // A hold only matters while nothing is in flight (it delays the next request).
        let hold = self
            .outbox
            .hold_deadline()
            .filter(|_| self.outbox.is_idle());
        [
            self.outbox.deadline(),
            hold,
            self.discovery.deadline(),
            adv,
            keep_alive,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// N_RETRY exhausted for the request in flight.
    fn exhausted(&mut self, now: Instant, i: Inflight<PAYLOAD>) {
        warning!("no answer after {} retransmissions, giving up", i.retries);
        match i.req {
            Request::Publish { publish, .. } => {
                self.emit(ClientEvent::PublishFailed {
                    token: publish.token,
                    reason: PublishError::RetriesExhausted,
                });
                self.lose_gateway(now, LossReason::RetriesExhausted);
            }
            Request::Disconnect => {
                self.set_state(State::Disconnected);
                self.emit(ClientEvent::Disconnected {
                    reason: DisconnectReason::Requested,
                });
            }
            _ => self.lose_gateway(now, LossReason::RetriesExhausted),
        }
    }

    /// Starts a session towards the known gateway, or a search for one.
    pub(super) fn begin_session(&mut self, now: Instant) {
        if self.gateway.is_some() {
            self.set_state(State::Connecting);
        } else {
            self.start_search(now);
        }
    }

    /// Uses a known, live gateway or starts SEARCHGW.
    fn start_search(&mut self, now: Instant) {
        if let Some((addr, gw_id)) = self.discovery.pick(now) {
            return self.found_gateway(now, addr, gw_id);
        }
        self.discovery.start(now, &self.cfg.timers, &mut self.rng);
        self.set_state(State::SearchingGw);
        info!("searching for a gateway");
        self.emit(ClientEvent::SearchingGateway);
    }

    /// A gateway was chosen.
    pub(super) fn found_gateway(&mut self, now: Instant, addr: A, gw_id: u8) {
        self.discovery.stop();
        self.gateway = Some((addr, gw_id));
        info!("gateway {} found at {:?}", gw_id, addr);
        self.emit(ClientEvent::GatewayFound { gw_id });
        if self.want_session {
            self.resume = false;
            self.set_state(State::Connecting);
        } else {
            self.set_state(State::Disconnected);
        }
        self.advance(now);
    }

    /// CONNACK accepted.
    pub(super) fn connected(&mut self, _now: Instant) {
        let resumed = core::mem::take(&mut self.resume);
        if !resumed {
            self.topics.new_session();
            self.qos2_in.clear();
        }
        self.reconnects = 0;
        let next = if self.topics.has_work() {
            State::Registering
        } else {
            State::Active
        };
        self.set_state(next);
        let gw_id = self.gateway.map_or(0, |(_, id)| id);
        info!(
            "connected to gateway {}{}",
            gw_id,
            if resumed { " (session resumed)" } else { "" }
        );
        self.emit(ClientEvent::Connected { gw_id, resumed });
    }

    /// Puts an interrupted request back: an unacknowledged publish goes to the front of the
    /// queue; one whose PUBREC already arrived cannot be repeated safely and is reported.
    pub(super) fn requeue(&mut self, i: Inflight<PAYLOAD>) {
        if let Request::Publish { publish, released } = i.req {
            if released {
                self.emit(ClientEvent::PublishFailed {
                    token: publish.token,
                    reason: PublishError::SessionLost,
                });
            } else if let Err(p) = self.outbox.push_front(publish) {
                self.emit(ClientEvent::PublishFailed {
                    token: p.token,
                    reason: PublishError::SessionLost,
                });
            }
        }
    }

    /// The session is gone (DISCONNECT from the gateway while connected or connecting):
    /// connect again after the same randomised, capped back-off as a lost gateway
    /// (`search_backoff_initial` doubling up to `search_backoff_max`, reset by a CONNACK), so
    /// a gateway that keeps refusing is not hammered and motes that all lost their session at
    /// once (a gateway restart) spread their CONNECTs.
    pub(super) fn session_lost(&mut self, now: Instant) {
        if let Some(i) = self.outbox.finish() {
            self.requeue(i);
        }
        warning!("the gateway ended the session; connecting again");
        self.emit(ClientEvent::Disconnected {
            reason: DisconnectReason::ByGateway,
        });
        self.qos2_in.clear();
        self.resume = false;
        self.want_session = true;
        let wait = backoff(&self.cfg.timers, self.reconnects, &mut self.rng);
        self.reconnects = self.reconnects.saturating_add(1);
        self.outbox.hold(now.saturating_add(wait));
        self.set_state(State::Lost);
        self.advance(now);
    }

    /// Gives up on the current gateway.
    pub(super) fn lose_gateway(&mut self, now: Instant, reason: LossReason) {
        let Some((addr, gw_id)) = self.gateway.take() else {
            return;
        };
        bump(&mut self.stats.gateway_losses);
        warning!("gateway {} lost ({:?})", gw_id, reason);
        self.emit(ClientEvent::GatewayLost { gw_id, reason });
        if let Some(i) = self.outbox.finish() {
            self.requeue(i);
        }
        self.replies.clear();
        self.qos2_in.clear();
        self.pending_sleep = None;
        self.resume = false;
        self.discovery.forget(addr);
        self.outbox.release_hold();
        if let Some(fixed) = self.cfg.gateway {
            self.gateway = Some(fixed);
            if self.want_session {
                let wait = backoff(&self.cfg.timers, self.reconnects, &mut self.rng);
                self.reconnects = self.reconnects.saturating_add(1);
                self.outbox.hold(now.saturating_add(wait));
                self.set_state(State::Lost);
            } else {
                self.set_state(State::Disconnected);
            }
        } else if self.want_session || !self.minus1.is_empty() {
            self.start_search(now);
        } else {
            self.set_state(State::Disconnected);
        }
    }

    /// Whether the queued publish at the front can be sent.
    fn readiness(&self, p: &OutPublish<PAYLOAD>) -> Readiness {
        match p.topic {
            PubTopic::Registered(h) => match self.topics.get(h) {
                Some(s) if s.reg == Reg::Done && s.id.is_some() => Readiness::Ready,
                Some(s) if s.reg == Reg::Wanted => Readiness::Wait,
                _ => Readiness::Failed,
            },
            PubTopic::Predefined(_) | PubTopic::Short(_) => Readiness::Ready,
        }
    }

    /// Starts the next request if nothing is in flight (called after every input).
    pub(super) fn advance(&mut self, now: Instant) {
        if self.gateway.is_none() && !self.minus1.is_empty() && self.state == State::Disconnected {
            self.start_search(now);
        }
        if !self.outbox.is_idle() {
            return;
        }
        let held = self.outbox.held(now);
        match self.state {
            State::Connecting if !held => self.outbox.start(
                Request::Connect {
                    resume: self.resume,
                },
                0,
            ),
            State::Registering | State::Active if !held => self.advance_connected(now),
            // During T_WAIT only keep-alive goes out: the session must not time out.
            State::Registering | State::Active => self.keep_alive(now),
            _ => {}
        }
    }

    fn advance_connected(&mut self, now: Instant) {
        if let Some(work) = self.topics.next_work() {
            let msg_id = self.outbox.next_msg_id();
            let req = match work {
                Work::Register(h) => Request::Register(h),
                Work::Subscribe(h, q) => Request::Subscribe(h, q),
                Work::Unsubscribe(h) => Request::Unsubscribe(h),
            };
            return self.outbox.start(req, msg_id);
        }
        self.set_state(State::Active);
        if core::mem::take(&mut self.pending_disconnect) {
            return self.outbox.start(Request::Disconnect, 0);
        }
        while let Some(front) = self.outbox.front() {
            match self.readiness(front) {
                Readiness::Wait => return,
                Readiness::Failed => {
                    if let Some(p) = self.outbox.pop_front() {
                        self.emit(ClientEvent::PublishFailed {
                            token: p.token,
                            reason: PublishError::TopicRejected,
                        });
                    }
                }
                Readiness::Ready => {
                    let Some(p) = self.outbox.pop_front() else {
                        return;
                    };
                    let msg_id = if p.qos == sn_codec::QoS::Zero {
                        0
                    } else {
                        self.outbox.next_msg_id()
                    };
                    return self.outbox.start(
                        Request::Publish {
                            publish: p,
                            released: false,
                        },
                        msg_id,
                    );
                }
            }
        }
        if let Some(d) = self.pending_sleep.take() {
            return self.outbox.start(Request::Sleep(d), 0);
        }
        self.keep_alive(now);
    }

    /// When the next keep-alive PINGREQ is due.
    fn keep_alive_due(&self) -> Instant {
        self.last_tx
            .saturating_add(Duration::from_secs(u64::from(self.cfg.keep_alive)))
    }

    /// Starts a keep-alive PINGREQ if one is due.
    fn keep_alive(&mut self, now: Instant) {
        if self.cfg.keep_alive > 0 && now >= self.keep_alive_due() {
            self.outbox.start(Request::Ping, 0);
        }
    }
}
