//! Client policy: who may connect (open, or registered only with a pairing window), from where
//! (pinned addresses), and which topics each client may publish to and subscribe within.

use std::time::Duration;

use sn_codec::Instant;

use super::Gateway;
use super::addr::PeerAddr;
use super::config::{Admission, ClientEntry, GatewayConfig, Pin, RateLimit};
use super::topics;

/// Refusals answered per address: a few at once, then one a second; the rest are only
/// counted. A mote retrying its CONNECT every T_RETRY always gets its answer.
pub(super) const REFUSALS: RateLimit = RateLimit {
    burst: 4,
    per_second: 1,
};

/// Why a CONNECT was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdmissionRefusal {
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

    /// Replaces the client registry, predefined topics, per-client credentials and per-client
    /// TLS identities (SIGHUP) without touching sessions: links opened from now on use the new
    /// credentials and identities, open links keep theirs. Other settings keep their running
    /// values.
    pub fn reload(&mut self, new: &GatewayConfig) {
        self.cfg.clients = new.clients.clone();
        self.cfg.predefined = new.predefined.clone();
        self.cfg.upstream.per_client_credentials = new.upstream.per_client_credentials.clone();
        self.cfg.upstream.credentials = new.upstream.credentials.clone();
        self.cfg.upstream.per_client_identity = new.upstream.per_client_identity.clone();
        // Their defaults follow the admission policy, which a reload may change.
        self.cfg.allow_address_change = new.allow_address_change;
        self.cfg.sleep.allow_wake_from_new_address = new.sleep.allow_wake_from_new_address;
    }

    /// Whether `client_id` may connect from `peer` now; `Ok(true)` when it is admitted as a
    /// newly paired client.
    pub(super) fn admit(
        &self,
        now: Instant,
        client_id: &str,
        peer: &PeerAddr,
    ) -> Result<bool, AdmissionRefusal> {
        match self.cfg.clients.entry(client_id) {
            Some(entry) => match &entry.pin {
                Some(pin) if !pin_matches(pin, peer) => Err(AdmissionRefusal::WrongAddress),
                _ => Ok(false),
            },
            None if self.pairing_until(now).is_some() => Ok(true),
            None if self.cfg.clients.admission == Admission::Open => Ok(false),
            None => Err(AdmissionRefusal::NotRegistered),
        }
    }

    /// Whether a pin in the registry forbids `client_id` at `peer` (unpinned and unknown
    /// clients are allowed anywhere).
    pub(super) fn pinned_elsewhere(&self, client_id: &str, peer: &PeerAddr) -> bool {
        self.cfg
            .clients
            .entry(client_id)
            .and_then(|e| e.pin.as_ref())
            .is_some_and(|pin| !pin_matches(pin, peer))
    }

    /// Whether the registry knows `client_id`.
    pub(super) fn is_registered(&self, client_id: &str) -> bool {
        self.cfg.clients.entry(client_id).is_some()
    }

    /// Takes a token for a new session of an unregistered client from `peer`: per source IP
    /// address, or per forwarder for nodes behind one. False when over the limit.
    pub(super) fn allow_new_session(&mut self, now: Instant, peer: &PeerAddr) -> bool {
        let limits = &self.cfg.limits;
        match peer {
            PeerAddr::Udp { addr, .. } => self.new_sessions_by_address.allow(
                &addr.ip().to_canonical(),
                limits.new_sessions_per_address,
                now,
            ),
            PeerAddr::Forwarded { forwarder, .. } => self.new_sessions_by_forwarder.allow(
                &forwarder.ip().to_canonical(),
                limits.new_sessions_per_forwarder,
                now,
            ),
        }
    }

    /// Takes a token for a refusal sent to `peer`'s address; false when the address has had
    /// its share and the refusal is only counted.
    pub(super) fn allow_refusal(&mut self, now: Instant, peer: &PeerAddr) -> bool {
        self.refusals.allow(&peer.socket_addr(), REFUSALS, now)
    }

    /// The registry entries pinned to `peer`, with their ClientIds: how a sender without a
    /// session is recognised.
    pub(super) fn entries_pinned_to<'a>(
        &'a self,
        peer: &'a PeerAddr,
    ) -> impl Iterator<Item = (&'a str, &'a ClientEntry)> + 'a {
        self.cfg.clients.registry.iter().filter_map(move |(id, e)| {
            e.pin
                .as_ref()
                .filter(|pin| pin_matches(pin, peer))
                .map(|_| (id.as_str(), e))
        })
    }
}

/// Whether the client may publish to `topic`.
pub(super) fn publish_allowed(cfg: &GatewayConfig, client_id: &str, topic: &str) -> bool {
    allowed(
        cfg.clients
            .entry(client_id)
            .and_then(|e| e.publish.as_deref()),
        topic,
    )
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
pub(super) fn allowed(patterns: Option<&[String]>, topic: &str) -> bool {
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
