//! [`Throttle`]: lets a repeated warning through at most once per period, process-wide.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lets an event through at most once per `period` and counts the ones held back; usable in a
/// `static`.
#[derive(Debug)]
pub(crate) struct Throttle {
    period: Duration,
    last: Mutex<Option<Instant>>,
    held_back: AtomicU64,
}

impl Throttle {
    /// A throttle that lets the first event through.
    pub(crate) const fn new(period: Duration) -> Self {
        Throttle {
            period,
            last: Mutex::new(None),
            held_back: AtomicU64::new(0),
        }
    }

    /// Whether an event now may go through: `Some(n)` with the number of events held back
    /// since the last one that went through, `None` when this one is held back.
    pub(crate) fn ready(&self) -> Option<u64> {
        self.ready_at(Instant::now())
    }

    /// [`Throttle::ready`] at `now`.
    pub(crate) fn ready_at(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(t) if now.saturating_duration_since(t) < self.period => {
                self.held_back.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.held_back.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_period_goes_through_and_the_rest_are_counted() {
        let t = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(t.ready_at(t0), Some(0));
        assert_eq!(t.ready_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.ready_at(t0 + Duration::from_secs(59)), None);
        assert_eq!(t.ready_at(t0 + Duration::from_secs(60)), Some(2));
        assert_eq!(t.ready_at(t0 + Duration::from_secs(61)), None);
        assert_eq!(t.ready_at(t0 + Duration::from_secs(130)), Some(1));
    }
}
