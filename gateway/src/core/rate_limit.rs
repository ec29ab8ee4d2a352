//! Token buckets per key (a source address, a forwarder), bounded in memory: the core's defence
//! against a stranger who sends faster than any mote would.

use std::collections::BTreeMap;

use sn_codec::Instant;

use super::config::RateLimit;

/// Most keys tracked at once; beyond it new keys share one overflow bucket, so a flood from
/// many (spoofed) addresses is limited as a whole and cannot grow the table.
const MAX_KEYS: usize = 4096;

/// Milli-tokens per event (buckets count in thousandths so that slow rates refill smoothly).
const COST: u64 = 1000;

/// One bucket: its fill in milli-tokens at `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    at: Instant,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Self {
        Bucket {
            milli_tokens: u64::from(limit.burst) * COST,
            at: now,
        }
    }

    /// Refills for the time since `at` (one token per second per `per_second`).
    fn refill(&mut self, limit: RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_millis();
        let elapsed = u64::try_from(elapsed).unwrap_or(u64::MAX);
        let cap = u64::from(limit.burst) * COST;
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(u64::from(limit.per_second)))
            .min(cap);
        self.at = self.at.max(now);
    }

    fn take(&mut self, limit: RateLimit, now: Instant) -> bool {
        self.refill(limit, now);
        if self.milli_tokens >= COST {
            self.milli_tokens -= COST;
            true
        } else {
            false
        }
    }

    fn is_full(&self, limit: RateLimit, now: Instant) -> bool {
        let mut b = *self;
        b.refill(limit, now);
        b.milli_tokens >= u64::from(limit.burst) * COST
    }
}

/// Token buckets by key, all with the same [`RateLimit`].
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    buckets: BTreeMap<K, Bucket>,
    /// Shared by the keys that did not fit in the table.
    overflow: Option<Bucket>,
    /// When a full table was last pruned (at most once a second, so that a flood of new keys
    /// does not scan the table for each).
    pruned_at: Option<Instant>,
}

impl<K> Default for RateLimiter<K> {
    fn default() -> Self {
        RateLimiter {
            buckets: BTreeMap::new(),
            overflow: None,
            pruned_at: None,
        }
    }
}

impl<K: Ord + Clone> RateLimiter<K> {
    /// Takes one token from `key`'s bucket; false when it is empty (the event is over the
    /// limit).
    pub(crate) fn allow(&mut self, key: &K, limit: RateLimit, now: Instant) -> bool {
        if let Some(b) = self.buckets.get_mut(key) {
            return b.take(limit, now);
        }
        let recently = self
            .pruned_at
            .is_some_and(|at| now < at.saturating_add(std::time::Duration::from_secs(1)));
        if self.buckets.len() >= MAX_KEYS && !recently {
            self.prune(limit, now);
        }
        if self.buckets.len() >= MAX_KEYS {
            return self
                .overflow
                .get_or_insert_with(|| Bucket::full(limit, now))
                .take(limit, now);
        }
        let mut b = Bucket::full(limit, now);
        let allowed = b.take(limit, now);
        self.buckets.insert(key.clone(), b);
        allowed
    }

    /// Forgets the buckets that have refilled completely (they hold no information).
    pub(crate) fn prune(&mut self, limit: RateLimit, now: Instant) {
        self.pruned_at = Some(now);
        self.buckets.retain(|_, b| !b.is_full(limit, now));
        if self.overflow.is_some_and(|b| b.is_full(limit, now)) {
            self.overflow = None;
        }
    }

    /// Keys tracked now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMIT: RateLimit = RateLimit {
        burst: 3,
        per_second: 2,
    };

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let mut r = RateLimiter::default();
        let t0 = Instant::from_millis(10_000);
        let passed = (0..10).filter(|_| r.allow(&1u32, LIMIT, t0)).count();
        assert_eq!(passed, 3);
        // Two tokens per second: one more after 500 ms, none before.
        assert!(!r.allow(&1, LIMIT, t0.saturating_add(Duration::from_millis(499))));
        assert!(r.allow(&1, LIMIT, t0.saturating_add(Duration::from_millis(500))));
        // Other keys have their own bucket.
        assert!(r.allow(&2, LIMIT, t0));
    }

    #[test]
    fn full_buckets_are_forgotten_and_the_table_stays_bounded() {
        let mut r = RateLimiter::default();
        let t0 = Instant::from_millis(10_000);
        for k in 0..(MAX_KEYS as u32 + 1000) {
            r.allow(&k, LIMIT, t0);
        }
        assert_eq!(r.len(), MAX_KEYS);
        // The keys beyond the table share one bucket: only a burst of them passes.
        let late = (0..100)
            .filter(|k| r.allow(&(1_000_000 + k), LIMIT, t0))
            .count();
        assert!(late <= LIMIT.burst as usize, "{late}");
        r.prune(LIMIT, t0.saturating_add(Duration::from_secs(2)));
        assert_eq!(r.len(), 0);
    }
}
