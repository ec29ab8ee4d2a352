//! Sleeping clients: DISCONNECT with a duration, PINGREQ(ClientId) wake-ups, buffered delivery
//! inside the wake window, and the sleep timer (`docs/protocol.md`, "Sleeping clients").

use std::time::Duration;

use sn_codec::{Instant, Packet};

use super::addr::PeerAddr;
use super::event::{DropReason, GatewayEvent};
use super::flow::Flow;
use super::session::{Session, State};
use super::{Gateway, SessionId, downlink};

impl Gateway {
    /// DISCONNECT(duration): Asleep (from Active, Awake or Asleep with a new duration).
    pub(super) fn go_to_sleep(&mut self, now: Instant, sid: SessionId, duration: u16) {
        self.step(sid, now, |s, f| go_to_sleep(s, f, duration));
    }

    /// PINGREQ carrying a ClientId. From the session's own address it is an ordinary PINGREQ
    /// (a wake-up for an asleep session). From another address it wakes only an asleep
    /// session, only when the operator allows wake-ups from new addresses, and never against a
    /// pin in the registry; anything else is refused with DISCONNECT and leaves the session
    /// alone (a wake-up is not proof of identity).
    pub(super) fn pingreq_with_id(
        &mut self,
        now: Instant,
        from: &PeerAddr,
        id: &[u8],
    ) -> Option<SessionId> {
        let sid = std::str::from_utf8(id)
            .ok()
            .and_then(|id| self.table.find_client(id));
        let found = sid.and_then(|sid| Some((sid, self.table.get(sid)?)));
        let Some((sid, s)) = found.filter(|(_, s)| s.state.is_live()) else {
            self.drop_from(Some(from.clone()), DropReason::UnknownClient);
            self.refuse_pingreq(now, from);
            return None;
        };
        if self.pinned_elsewhere(s.client_id(), from) {
            self.drop_from(Some(from.clone()), DropReason::PinnedElsewhere);
            self.refuse_pingreq(now, from);
            return None;
        }
        if s.peer() != from {
            let refusal = if s.state != State::Asleep {
                Some(DropReason::NotAsleep)
            } else if !self.cfg.sleep.allow_wake_from_new_address {
                Some(DropReason::AddressChangeRefused)
            } else {
                None
            };
            if let Some(reason) = refusal {
                self.drop_from(Some(from.clone()), reason);
                self.refuse_pingreq(now, from);
                return None;
            }
            self.rebind(sid, from.clone());
        }
        self.touch(now, sid);
        Some(sid)
    }

    /// DISCONNECT to a PINGREQ that wakes nothing, as often as the refusal limit allows.
    fn refuse_pingreq(&mut self, now: Instant, to: &PeerAddr) {
        if self.allow_refusal(now, to) {
            self.send(to, &Packet::Disconnect { duration: None });
        }
    }

    /// A wake-up PINGREQ (or a PINGREQ of an Active client, answered at once).
    pub(super) fn on_wake_pingreq(&mut self, now: Instant, sid: SessionId) {
        self.step(sid, now, wake);
    }
}

/// DISCONNECT(duration) from an Active, Awake or Asleep client: Asleep with the sleep timer
/// (re)started; messages for it are buffered from now on.
fn go_to_sleep(s: &mut Session, f: &mut Flow<'_>, duration: u16) {
    if !matches!(s.state, State::Active | State::Asleep | State::Awake) {
        return;
    }
    let d = Duration::from_secs(u64::from(duration));
    s.sleep = Some(d);
    s.state = State::Asleep;
    s.state_deadline = Some(f.now.saturating_add(f.cfg.tolerance.supervise(d)));
    f.reply(s, &Packet::Disconnect { duration: None });
    f.out.event(GatewayEvent::ClientAsleep {
        client_id: s.client_id().to_owned(),
        peer: s.peer().clone(),
        duration,
    });
}

/// A PINGREQ of the client: an asleep client wakes and gets its buffered messages (PINGRESP
/// after the last is acknowledged); an awake one gets the message in flight again; an active
/// one gets PINGRESP. False (nothing sent) for a client in any other state.
pub(super) fn wake(s: &mut Session, f: &mut Flow<'_>) -> bool {
    match s.state {
        State::Asleep => {
            s.state = State::Awake;
            s.state_deadline = None;
            f.out.event(GatewayEvent::ClientAwake {
                client_id: s.client_id().to_owned(),
                peer: s.peer().clone(),
                buffered: s.queue.len() + usize::from(s.inflight.is_some()),
            });
            downlink::resend_inflight(s, f);
        }
        State::Awake => downlink::resend_inflight(s, f),
        State::Active => {
            f.reply(s, &Packet::Pingresp);
        }
        _ => return false,
    }
    true
}

/// Back to Asleep with the sleep timer restarted; PINGRESP only when the buffer is drained
/// (everything delivered and acknowledged). The caller refiles the session.
pub(super) fn back_to_sleep(s: &mut Session, f: &mut Flow<'_>, drained: bool) {
    let d = s.sleep.unwrap_or_default();
    s.state = State::Asleep;
    s.state_deadline = Some(f.now.saturating_add(f.cfg.tolerance.supervise(d)));
    if drained {
        f.reply(s, &Packet::Pingresp);
    }
}
