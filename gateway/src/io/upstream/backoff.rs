//! Reconnect delays: exponential backoff with ±20 % jitter.
//!
//! rumqttc reconnects on the very next `poll()` after an error (against a closed port, thousands
//! of attempts a second), so the link task sleeps [`Backoff::next_delay`] after every failure.
//! The calculator reads no clock and draws its jitter from an injected [`XorShift64`], so tests
//! fix the seed and get exact sequences.

use std::time::Duration;

/// A connection that stayed up at least this long resets the backoff to its initial delay.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Shortest delay ever returned, whatever the configuration says (never hot-loop).
const MIN_DELAY: Duration = Duration::from_millis(10);

/// Jitter: the delay is multiplied by a factor in `[1 - JITTER, 1 + JITTER)`.
const JITTER: f64 = 0.2;

/// A small xorshift64* generator: jitter needs no cryptographic quality.
#[derive(Debug, Clone)]
pub(crate) struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// A generator from `seed` (mixed with splitmix64, so nearby seeds give unrelated streams;
    /// seed 0 is valid).
    pub(crate) fn new(seed: u64) -> Self {
        let mut state = splitmix64(seed);
        if state == 0 {
            state = 0x9E37_79B9_7F4A_7C15;
        }
        XorShift64 { state }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform value in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        // 53 random mantissa bits.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// splitmix64: derives well-mixed seeds (one per link) from one base seed.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Exponential backoff: `initial`, doubling up to `max`, each delay jittered by ±20 % and
/// capped at `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    /// Un-jittered delay the next failure gets.
    current: Duration,
    rng: XorShift64,
}

impl Backoff {
    /// A backoff starting at `initial` (at least 10 ms) and never above `max` (at least
    /// `initial`).
    pub(crate) fn new(initial: Duration, max: Duration, rng: XorShift64) -> Self {
        let initial = initial.max(MIN_DELAY);
        let max = max.max(initial);
        Backoff {
            initial,
            max,
            current: initial,
            rng,
        }
    }

    /// The delay to sleep after a failure; the following failure gets twice the base delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = base.saturating_mul(2).min(self.max);
        let factor = 1.0 - JITTER + 2.0 * JITTER * self.rng.next_unit();
        base.mul_f64(factor).clamp(MIN_DELAY, self.max)
    }

    /// The delay after a failure of a connection that had been up for `connected_for`
    /// (`None`: it never came up). A connection stable for [`STABLE_AFTER`] resets the backoff.
    pub(crate) fn after_failure(&mut self, connected_for: Option<Duration>) -> Duration {
        if connected_for.is_some_and(|d| d >= STABLE_AFTER) {
            self.reset();
        }
        self.next_delay()
    }

    /// Back to the initial delay.
    pub(crate) fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn within(d: Duration, base: Duration) -> bool {
        d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2)
    }

    #[test]
    fn delays_double_from_initial_within_jitter() {
        let mut b = Backoff::new(ms(250), Duration::from_secs(60), XorShift64::new(1));
        for base in [250, 500, 1000, 2000, 4000, 8000, 16000, 32000] {
            let d = b.next_delay();
            assert!(within(d, ms(base)), "{d:?} not within 20 % of {base} ms");
        }
    }

    #[test]
    fn delays_never_exceed_max() {
        let max = Duration::from_secs(60);
        let mut b = Backoff::new(ms(250), max, XorShift64::new(7));
        for _ in 0..100 {
            assert!(b.next_delay() <= max);
        }
        // At the cap the jitter still spreads the delays below max.
        let d = b.next_delay();
        assert!(d >= max.mul_f64(0.8));
    }

    #[test]
    fn jitter_actually_varies() {
        let mut rng = XorShift64::new(42);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let mut b = Backoff::new(ms(1000), ms(1000), rng.clone());
            seen.insert(b.next_delay());
            rng.next_u64();
        }
        assert!(
            seen.len() > 10,
            "jitter produced only {} values",
            seen.len()
        );
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Backoff::new(ms(250), ms(60_000), XorShift64::new(99));
        let mut b = Backoff::new(ms(250), ms(60_000), XorShift64::new(99));
        for _ in 0..20 {
            assert_eq!(a.next_delay(), b.next_delay());
        }
    }

    #[test]
    fn stable_connection_resets_short_one_does_not() {
        let mut b = Backoff::new(ms(250), ms(60_000), XorShift64::new(3));
        for _ in 0..5 {
            b.next_delay();
        }
        let d = b.after_failure(Some(Duration::from_secs(5)));
        assert!(within(d, ms(8000)), "{d:?}");
        let d = b.after_failure(Some(STABLE_AFTER));
        assert!(within(d, ms(250)), "{d:?}");
        let d = b.after_failure(None);
        assert!(within(d, ms(500)), "{d:?}");
    }

    #[test]
    fn zero_initial_is_floored() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO, XorShift64::new(0));
        for _ in 0..10 {
            assert!(b.next_delay() >= MIN_DELAY);
        }
    }

    #[test]
    fn unit_values_are_in_range() {
        let mut rng = XorShift64::new(0);
        for _ in 0..10_000 {
            let u = rng.next_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
