//! Client policy: who may connect (open, or registered only with a pairing window), from where
//! (pinned addresses), and which topics each client may publish to and subscribe within.

use std::time::Duration;

use sn_codec::Instant;

use super::Gateway;
use super::addr::PeerAddr;
use super::config::{Admission, ClientEntry, GatewayConfig, Pin};
use super::topics;

/// Why a CONNECT was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Registered-only policy and the ClientId is not registered.
    NotRegistered,
    /// The ClientId is pinned to another address.
    WrongAddress,
}

impl Gateway {
    /// Opens the pairing window until `now + duration`: unknown clients that connect meanwhile
    /// are admitted and reported as [`super::event::GatewayEvent::ClientPaired`].
    pub fn open_pairing(&mut self, now: Instant, duration: Duration) {
        self.pairing_until = Some(now.saturating_add(duration));
    }

    /// When the pairing window closes, if one is open at `now`.
    pub fn pairing_until(&self, now: Instant) -> Option<Instant> {
        self.pairing_until.filter(|until| now < *until)
    }

    /// Replaces the client registry, predefined topics and per-client credentials (SIGHUP)
    /// without touching sessions. Other settings keep their running values.
    pub fn reload(&mut self, new: &GatewayConfig) {
        self.cfg.clients = new.clients.clone();
        self.cfg.predefined = new.predefined.clone();
        self.cfg.upstream.per_client_credentials = new.upstream.per_client_credentials.clone();
        self.cfg.upstream.credentials = new.upstream.credentials.clone();
    }

    /// Whether `client_id` may connect from `peer` now; `Ok(true)` when it is admitted as a
    /// newly paired client.
    pub(super) fn admit(
        &self,
        now: Instant,
        client_id: &str,
        peer: &PeerAddr,
    ) -> Result<bool, Refusal> {
        match self.cfg.clients.entry(client_id) {
            Some(entry) => match &entry.pin {
                Some(pin) if !pin_matches(pin, peer) => Err(Refusal::WrongAddress),
                _ => Ok(false),
            },
            None if self.pairing_until(now).is_some() => Ok(true),
            None if self.cfg.clients.admission == Admission::Open => Ok(false),
            None => Err(Refusal::NotRegistered),
        }
    }

    /// Whether the client may publish to `topic`.
    pub(super) fn may_publish(&self, client_id: &str, topic: &str) -> bool {
        allowed(
            self.cfg
                .clients
                .entry(client_id)
                .and_then(|e| e.publish.as_deref()),
            topic,
        )
    }
}

/// Whether the client may subscribe to `filter` (it must lie within an allowed filter).
pub(super) fn subscribe_allowed(cfg: &GatewayConfig, client_id: &str, filter: &str) -> bool {
    allowed(
        cfg.clients
            .entry(client_id)
            .and_then(|e| e.subscribe.as_deref()),
        filter,
    )
}

/// `None` allows everything; otherwise some pattern must cover `topic` (a filter's own
/// wildcards must be matched by wildcards of the pattern).
fn allowed(patterns: Option<&[String]>, topic: &str) -> bool {
    patterns.is_none_or(|ps| ps.iter().any(|p| topics::matches(p, topic)))
}

fn pin_matches(pin: &Pin, peer: &PeerAddr) -> bool {
    match (pin, peer) {
        (Pin::Udp { ip, port }, PeerAddr::Udp { addr, .. }) => {
            addr.ip() == *ip && port.is_none_or(|p| p == addr.port())
        }
        (
            Pin::Forwarded { forwarder, wnid },
            PeerAddr::Forwarded {
                forwarder: f,
                wnid: w,
                ..
            },
        ) => f.ip() == *forwarder && *w.0 == **wnid,
        _ => false,
    }
}

/// A registry entry for a newly paired client: pinned to nothing, allowed everything (the
/// operator narrows it in the file).
pub(crate) fn paired_entry() -> ClientEntry {
    ClientEntry::default()
}
