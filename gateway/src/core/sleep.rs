//! Sleeping clients (§11): DISCONNECT with a duration, PINGREQ(ClientId) wake-ups, buffered
//! delivery inside the wake window, and the sleep timer.

use std::time::Duration;

use sn_codec::{Instant, Packet};

use super::addr::PeerAddr;
use super::event::GatewayEvent;
use super::session::State;
use super::{Gateway, SessionId};

impl Gateway {
    /// DISCONNECT(duration): Asleep (from Active, Awake or Asleep with a new duration).
    pub(super) fn go_to_sleep(&mut self, now: Instant, sid: SessionId, duration: u16) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !matches!(s.state, State::Active | State::Asleep | State::Awake) {
            return;
        }
        let d = Duration::from_secs(u64::from(duration));
        s.sleep = Some(d);
        s.state = State::Asleep;
        s.state_deadline = Some(now.saturating_add(self.cfg.tolerance.supervise(d)));
        let (client_id, peer) = (s.client_id.clone(), s.peer.clone());
        self.send_to_session(sid, &Packet::Disconnect { duration: None });
        self.event(GatewayEvent::ClientAsleep {
            client_id,
            peer,
            duration,
        });
        self.reschedule(sid);
    }

    /// PINGREQ carrying a ClientId: finds the session it names, moving it to the sender's
    /// address when allowed. Answers DISCONNECT when there is nothing to wake.
    pub(super) fn pingreq_with_id(
        &mut self,
        now: Instant,
        from: &PeerAddr,
        id: &[u8],
    ) -> Option<SessionId> {
        let sid = std::str::from_utf8(id)
            .ok()
            .and_then(|id| self.by_client.get(id))
            .copied();
        let live = sid
            .and_then(|sid| self.sessions.get(&sid))
            .filter(|s| s.state.is_live());
        let Some(s) = live else {
            self.send(from, &Packet::Disconnect { duration: None });
            return None;
        };
        let sid = sid?;
        if &s.peer != from {
            if !self.cfg.sleep.allow_wake_from_new_address {
                self.send(from, &Packet::Disconnect { duration: None });
                return None;
            }
            self.rebind(sid, from.clone());
        }
        self.touch(now, sid);
        Some(sid)
    }

    /// A wake-up PINGREQ (or a PINGREQ of an Active client, answered at once).
    pub(super) fn on_wake_pingreq(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        match s.state {
            State::Asleep => {
                s.state = State::Awake;
                s.state_deadline = None;
                let (client_id, peer, buffered) = (
                    s.client_id.clone(),
                    s.peer.clone(),
                    s.queue.len() + usize::from(s.inflight.is_some()),
                );
                self.event(GatewayEvent::ClientAwake {
                    client_id,
                    peer,
                    buffered,
                });
                self.resend_inflight(now, sid);
            }
            State::Awake => self.resend_inflight(now, sid),
            State::Active => {
                self.send_to_session(sid, &Packet::Pingresp);
            }
            _ => {}
        }
        self.reschedule(sid);
    }

    /// Everything delivered and acknowledged: PINGRESP, and Asleep again.
    pub(super) fn finish_wake(&mut self, now: Instant, sid: SessionId) {
        self.back_to_sleep(now, sid, true);
    }

    /// Back to Asleep with the sleep timer restarted; PINGRESP only when the buffer is drained.
    pub(super) fn back_to_sleep(&mut self, now: Instant, sid: SessionId, drained: bool) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let d = s.sleep.unwrap_or_default();
        s.state = State::Asleep;
        s.state_deadline = Some(now.saturating_add(self.cfg.tolerance.supervise(d)));
        if drained {
            self.send_to_session(sid, &Packet::Pingresp);
        }
        self.reschedule(sid);
    }
}
