//! Lossy datagram links: each direction of a link loses, duplicates, delays and reorders
//! datagrams by its own seeded rules ([`Direction`]), and counts what it did ([`LinkStats`]).
//!
//! Probabilities are in parts per million so that every decision is integer arithmetic on the
//! world's PRNG and a seed always gives the same fates.

use super::world::SimRng;

/// One million: the denominator of every probability on a link.
pub const PPM: u32 = 1_000_000;

/// The rules of one direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Direction {
    /// Chance that a datagram is lost, in parts per million.
    pub loss_ppm: u32,
    /// Chance that a delivered datagram arrives twice (the copy gets its own delay).
    pub duplicate_ppm: u32,
    /// Chance that a datagram is held back by `reorder_extra_ms`, so that later ones overtake
    /// it.
    pub reorder_ppm: u32,
    /// Shortest one-way delay, in milliseconds.
    pub delay_min_ms: u64,
    /// Longest one-way delay (before any reordering hold-back), in milliseconds.
    pub delay_max_ms: u64,
    /// Extra delay of a reordered datagram, in milliseconds.
    pub reorder_extra_ms: u64,
}

impl Direction {
    /// No loss, no duplication, no reordering, a fixed delay of `delay_ms`.
    pub const fn perfect(delay_ms: u64) -> Self {
        Direction {
            loss_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            delay_min_ms: delay_ms,
            delay_max_ms: delay_ms,
            reorder_extra_ms: 0,
        }
    }

    /// `loss_percent` % loss, 1 % duplication, 2 % reordering (held back 150 ms), 5–40 ms
    /// delay: a poor radio or a congested Wi-Fi hop.
    pub const fn lossy(loss_percent: u32) -> Self {
        Direction {
            loss_ppm: loss_percent * (PPM / 100),
            duplicate_ppm: PPM / 100,
            reorder_ppm: 2 * (PPM / 100),
            delay_min_ms: 5,
            delay_max_ms: 40,
            reorder_extra_ms: 150,
        }
    }

    /// The delays, from now, of the copies of one datagram that arrive (none: it is lost).
    pub fn fate(&self, rng: &mut SimRng) -> Vec<u64> {
        if rng.chance_ppm(self.loss_ppm) {
            return Vec::new();
        }
        let mut copies = vec![self.delay(rng)];
        if rng.chance_ppm(self.duplicate_ppm) {
            copies.push(self.delay(rng));
        }
        copies
    }

    fn delay(&self, rng: &mut SimRng) -> u64 {
        let base = rng.range(self.delay_min_ms, self.delay_max_ms);
        if rng.chance_ppm(self.reorder_ppm) {
            base.saturating_add(self.reorder_extra_ms)
        } else {
            base
        }
    }
}

/// A link with independent rules for each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkModel {
    /// Towards the gateway (mote → gateway, mote → forwarder, forwarder → gateway).
    pub up: Direction,
    /// Away from the gateway.
    pub down: Direction,
}

impl LinkModel {
    /// The same rules both ways.
    pub const fn symmetric(d: Direction) -> Self {
        LinkModel { up: d, down: d }
    }
}

/// What one direction of a link did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams handed to the link.
    pub sent: u64,
    /// Datagrams lost.
    pub lost: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
}

impl LinkStats {
    /// Counts one datagram handed to the link with the fate `copies`.
    pub fn count(&mut self, copies: usize) {
        self.sent += 1;
        match copies {
            0 => self.lost += 1,
            n => self.duplicated += (n - 1) as u64,
        }
    }
}
