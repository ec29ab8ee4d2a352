//! Discovery (`docs/protocol.md`, "Discovery"): ADVERTISE at once when the upstream becomes
//! healthy and then every T_ADV, none while it is down; SEARCHGW answered with GWINFO — unicast
//! to the searcher and on the multicast group (radius → TTL) — after a short random delay that
//! spreads the answers of several gateways. A SEARCHGW through a forwarder gets an encapsulated
//! unicast GWINFO only.

use std::net::IpAddr;
use std::time::Duration;

use sn_codec::{Instant, Packet};

use super::Gateway;
use super::addr::PeerAddr;
use super::config::RateLimit;
use super::event::{Destination, DropReason};
use super::rate_limit::RateLimiter;

/// Most GWINFO answers waiting for their delay (more SEARCHGWs are answered by those).
const MAX_PENDING_GWINFO: usize = 64;

/// SEARCHGWs answered per source IP address (a searching mote repeats its SEARCHGW after
/// seconds, with backoff; more than this is a flood).
const GWINFO_PER_SOURCE: RateLimit = RateLimit {
    burst: 4,
    per_second: 1,
};

/// SEARCHGWs answered overall.
const GWINFO_TOTAL: RateLimit = RateLimit {
    burst: 20,
    per_second: 10,
};

/// Least time between two multicast GWINFOs: one on the group answers every mote that is
/// searching at the moment, so more would only amplify a flood.
const MULTICAST_GWINFO_INTERVAL: Duration = Duration::from_secs(1);

/// Discovery state of the gateway.
#[derive(Debug, Default)]
pub(crate) struct Discovery {
    /// Next ADVERTISE (None while the upstream is down or discovery is off).
    pub(crate) advertise_at: Option<Instant>,
    /// GWINFO answers due: when, to whom, with which multicast TTL.
    pub(crate) pending: Vec<(Instant, PeerAddr, u8)>,
    /// xorshift64 state for the answer delay (seeded by the shell).
    pub(crate) rng: u64,
    /// Answers per source address.
    by_source: RateLimiter<IpAddr>,
    /// Answers overall.
    total: RateLimiter<()>,
    /// When the last GWINFO went to the multicast group.
    multicast_at: Option<Instant>,
}

impl Discovery {
    pub(crate) fn new(seed: u64) -> Self {
        Discovery {
            advertise_at: None,
            pending: Vec::new(),
            rng: seed | 1,
            by_source: RateLimiter::default(),
            total: RateLimiter::default(),
            multicast_at: None,
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// The earliest discovery deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let pending = self.pending.iter().map(|(at, ..)| *at).min();
        [self.advertise_at, pending].into_iter().flatten().min()
    }
}

impl Gateway {
    /// The upstream became healthy (or not): advertise at once, or stop.
    pub(super) fn discovery_health(&mut self, now: Instant, up: bool) {
        if !up {
            self.discovery.advertise_at = None;
            self.discovery.pending.clear();
        } else if self.cfg.discovery.is_some() {
            self.discovery.advertise_at = Some(now);
            self.discovery_timeout(now);
        }
    }

    pub(super) fn on_searchgw(&mut self, now: Instant, from: PeerAddr, radius: u8) {
        if !self.gateway_link_up {
            return; // No gateway to offer while the upstream is unreachable.
        }
        let (max_delay, max_ttl) = match &self.cfg.discovery {
            Some(d) => (d.max_gwinfo_delay, d.max_gwinfo_ttl.max(1)),
            None => (Duration::ZERO, 1),
        };
        let ttl = if radius == 0 {
            max_ttl
        } else {
            radius.min(max_ttl)
        };
        if self.discovery.pending.iter().any(|(_, p, _)| *p == from) {
            return;
        }
        if self.discovery.pending.len() >= MAX_PENDING_GWINFO {
            return;
        }
        let source = from.socket_addr().ip().to_canonical();
        let d = &mut self.discovery;
        if !d.by_source.allow(&source, GWINFO_PER_SOURCE, now)
            || !d.total.allow(&(), GWINFO_TOTAL, now)
        {
            return self.drop_from(Some(from), DropReason::RateLimited);
        }
        let span = u64::try_from(max_delay.as_millis()).unwrap_or(u64::MAX);
        let delay = if span == 0 {
            0
        } else {
            self.discovery.next_random() % (span + 1)
        };
        self.discovery
            .pending
            .push((now.saturating_add(Duration::from_millis(delay)), from, ttl));
        self.discovery_timeout(now);
    }

    /// Sends what discovery has due.
    pub(super) fn discovery_timeout(&mut self, now: Instant) {
        let gw_id = self.cfg.gateway_id;
        if let (Some(at), Some(d)) = (self.discovery.advertise_at, &self.cfg.discovery)
            && at <= now
        {
            let secs = d.advertise_interval.as_secs();
            let duration = u16::try_from(secs).unwrap_or(u16::MAX);
            let adv = Packet::Advertise { gw_id, duration };
            self.out.send_to(
                Destination::Multicast {
                    listener: None,
                    ttl: None,
                },
                &adv,
            );
            self.discovery.advertise_at = Some(now.saturating_add(d.advertise_interval));
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.discovery.pending)
            .into_iter()
            .partition(|(at, ..)| *at <= now);
        self.discovery.pending = later;
        let gwinfo = Packet::GwInfo {
            gw_id,
            gw_addr: &[],
        };
        for (_, to, ttl) in due {
            self.send(&to, &gwinfo);
            let multicast_due = self
                .discovery
                .multicast_at
                .is_none_or(|at| now >= at.saturating_add(MULTICAST_GWINFO_INTERVAL));
            if let PeerAddr::Udp { listener, .. } = to
                && multicast_due
            {
                self.discovery.multicast_at = Some(now);
                self.out.send_to(
                    Destination::Multicast {
                        listener: Some(listener),
                        ttl: Some(ttl),
                    },
                    &gwinfo,
                );
            }
        }
    }
}
