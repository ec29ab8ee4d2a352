//! A small seeded PRNG (xorshift64*) for discovery jitter and the demo sensor's fake readings.
//!
//! Not cryptographic: it only spreads transmissions in time and makes readings look alive. The
//! seed comes from the caller ([`crate::client::Client::new`]), so tests are reproducible.

use core::time::Duration;

/// xorshift64* generator. Any seed is fine (zero is remapped).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (mixed with splitmix64 so nearby seeds diverge at once).
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..=max` (`0` when `max` is 0).
    pub fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(span) => self.next_u64() % span,
            None => self.next_u64(),
        }
    }

    /// A duration in `0..=max`, with millisecond resolution.
    pub fn duration_up_to(&mut self, max: Duration) -> Duration {
        let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.up_to(ms))
    }

    /// A value in `-span..=span`.
    pub fn signed(&mut self, span: i32) -> i32 {
        let span = span.unsigned_abs();
        let width = u64::from(span).saturating_mul(2);
        let v = self.up_to(width);
        // v ≤ 2·span ≤ 2·2³¹, so both conversions fit.
        i32::try_from(i64::try_from(v).unwrap_or(0) - i64::from(span)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_values_stay_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            let x = a.up_to(10);
            assert_eq!(x, b.up_to(10));
            assert!(x <= 10);
            let s = a.signed(5);
            assert_eq!(s, b.signed(5));
            assert!((-5..=5).contains(&s));
        }
        assert_eq!(Rng::new(0).up_to(0), 0);
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        assert!(a.duration_up_to(Duration::from_secs(5)) <= Duration::from_secs(5));
    }
}
