//! [`Flow`]: what a protocol flow may touch besides the one session it works on — the
//! configuration, the outputs and the time — so that flows borrow their session instead of
//! looking it up again by id.

use sn_codec::{Instant, Packet};

use super::Gateway;
use super::config::GatewayConfig;
use super::custody::Custody;
use super::outputs::Outputs;
use super::session::{Session, SessionId};
use super::upstream::seam::Seam;

/// The context of one flow step.
#[derive(Debug)]
pub(crate) struct Flow<'a> {
    /// The running configuration.
    pub(crate) cfg: &'a GatewayConfig,
    /// Datagrams, upstream commands, events, counters and tokens.
    pub(crate) out: &'a mut Outputs,
    /// The upstream mode: how the session's requests reach the broker.
    pub(crate) up: &'a mut dyn Seam,
    /// Client publishes in the gateway's custody.
    pub(crate) custody: &'a mut Custody,
    /// The gateway's own link is connected.
    pub(crate) shared_up: bool,
    /// The time of the input being handled.
    pub(crate) now: Instant,
}

impl Flow<'_> {
    /// Whether `s` is kept in the state store (CleanSession=0, a store that writes): a QoS 2
    /// exchange with its client then waits for its record before it moves on, so a restart
    /// neither repeats nor loses it.
    pub(crate) fn records(&self, s: &Session) -> bool {
        self.cfg.persist_sessions && !s.clean_session && !self.custody.fallback
    }

    /// Sends `packet` to the session's client (counted in its `tx`); false when it did not fit
    /// the client's transport (then it is counted as dropped).
    pub(crate) fn reply(&mut self, s: &mut Session, packet: &Packet<'_>) -> bool {
        s.tx_count += 1;
        self.out.send(s.peer(), packet)
    }
}

impl Gateway {
    /// Session `sid` and the context a flow needs, borrowed side by side.
    pub(super) fn flow(
        &mut self,
        sid: SessionId,
        now: Instant,
    ) -> Option<(&mut Session, Flow<'_>)> {
        let s = self.table.get_mut(sid)?;
        let flow = Flow {
            cfg: &self.cfg,
            out: &mut self.out,
            up: &mut *self.seam,
            custody: &mut self.custody,
            shared_up: self.gateway_link_up,
            now,
        };
        Some((s, flow))
    }

    /// Runs a flow `step` on session `sid`, then files the session under its (possibly moved)
    /// deadline.
    pub(super) fn step<R>(
        &mut self,
        sid: SessionId,
        now: Instant,
        step: impl FnOnce(&mut Session, &mut Flow<'_>) -> R,
    ) -> Option<R> {
        let (s, mut f) = self.flow(sid, now)?;
        let r = step(s, &mut f);
        self.reschedule(sid);
        Some(r)
    }
}
