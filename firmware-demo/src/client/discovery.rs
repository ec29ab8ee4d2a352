//! Gateway discovery (`docs/protocol.md`, "The mote client's side"): SEARCHGW after a random
//! delay in `0..=T_SEARCHGW`, repeated with exponential back-off until a GWINFO or ADVERTISE
//! arrives; a SEARCHGW heard from another client during the delay counts as our own (spec 6.1).
//! Also the list of known gateways and the N_ADV supervision of ADVERTISE periods.

use core::time::Duration;

use heapless::Vec;
use sn_codec::Instant;

use super::config::{MAX_GATEWAYS, Timers};
use crate::rng::Rng;

/// A gateway heard of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KnownGateway<A> {
    pub(crate) addr: A,
    pub(crate) gw_id: u8,
    /// T_ADV from its last ADVERTISE.
    adv_period: Option<Duration>,
    /// When it counts as lost for lack of ADVERTISE (None: not supervised).
    adv_deadline: Option<Instant>,
}

/// Where the search is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not searching.
    Idle,
    /// Random delay before the next SEARCHGW.
    Delay { until: Instant },
    /// A SEARCHGW went out (or was heard); waiting for an answer.
    Wait { until: Instant },
}

/// The discovery state; see the module doc.
#[derive(Debug, Clone)]
pub(crate) struct Discovery<A> {
    phase: Phase,
    /// SEARCHGWs sent (or heard) in this search: the back-off exponent.
    attempts: u8,
    send_due: bool,
    known: Vec<KnownGateway<A>, MAX_GATEWAYS>,
}

/// The wait after the `attempts`-th SEARCHGW: `initial · 2^attempts`, capped, with the upper
/// half randomised so that many clients spread out.
pub(crate) fn backoff(timers: &Timers, attempts: u8, rng: &mut Rng) -> Duration {
    let factor = 1u32 << attempts.min(16);
    let full = timers
        .search_backoff_initial
        .checked_mul(factor)
        .unwrap_or(timers.search_backoff_max)
        .min(timers.search_backoff_max);
    let half = full / 2;
    half.saturating_add(rng.duration_up_to(full.saturating_sub(half)))
}

/// When a gateway advertising every `period` counts as lost: N_ADV periods plus a quarter
/// period of slack for jitter.
fn adv_deadline(now: Instant, period: Duration, n_adv: u8) -> Instant {
    let window = period
        .saturating_mul(u32::from(n_adv))
        .saturating_add(period / 4);
    now.saturating_add(window)
}

impl<A: Copy + PartialEq> Discovery<A> {
    pub(crate) const fn new() -> Self {
        Discovery {
            phase: Phase::Idle,
            attempts: 0,
            send_due: false,
            known: Vec::new(),
        }
    }

    /// Starts a search: the first SEARCHGW after a random delay in `0..=T_SEARCHGW`.
    pub(crate) fn start(&mut self, now: Instant, timers: &Timers, rng: &mut Rng) {
        self.attempts = 0;
        self.send_due = false;
        self.phase = Phase::Delay {
            until: now.saturating_add(rng.duration_up_to(timers.t_searchgw)),
        };
    }

    /// Ends the search (a gateway was found or the application gave up).
    pub(crate) fn stop(&mut self) {
        self.phase = Phase::Idle;
        self.send_due = false;
    }

    pub(crate) fn is_searching(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// The next search deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Idle => None,
            Phase::Delay { until } | Phase::Wait { until } => Some(until),
        }
    }

    /// Moves to the wait after a SEARCHGW (ours, or one heard from another client).
    fn searched(&mut self, now: Instant, timers: &Timers, rng: &mut Rng) {
        let wait = backoff(timers, self.attempts, rng);
        self.attempts = self.attempts.saturating_add(1);
        self.phase = Phase::Wait {
            until: now.saturating_add(wait),
        };
    }

    /// Timer expiry: the delay (or the wait for an answer) is over, a SEARCHGW is due.
    pub(crate) fn on_timeout(&mut self, now: Instant, timers: &Timers, rng: &mut Rng) {
        if self.deadline().is_some_and(|d| d <= now) {
            self.send_due = true;
            self.searched(now, timers, rng);
        }
    }

    /// Another client's SEARCHGW: during our random delay it replaces ours (spec 6.1).
    pub(crate) fn heard_searchgw(&mut self, now: Instant, timers: &Timers, rng: &mut Rng) {
        if let Phase::Delay { .. } = self.phase {
            self.searched(now, timers, rng);
        }
    }

    /// Whether a SEARCHGW should be transmitted now (clears the flag).
    pub(crate) fn take_send(&mut self) -> bool {
        core::mem::take(&mut self.send_due)
    }

    /// Whether a SEARCHGW is waiting to be transmitted.
    pub(crate) fn send_pending(&self) -> bool {
        self.send_due
    }

    fn entry(&mut self, addr: A, gw_id: u8) -> Option<&mut KnownGateway<A>> {
        let pos = self
            .known
            .iter()
            .position(|g| g.addr == addr || g.gw_id == gw_id);
        let index = match pos {
            Some(i) => i,
            None => {
                let fresh = KnownGateway {
                    addr,
                    gw_id,
                    adv_period: None,
                    adv_deadline: None,
                };
                if self.known.push(fresh).is_err() {
                    // Full: the newest entry makes room (older ones were heard first and are
                    // as good as any).
                    let last = self.known.last_mut()?;
                    *last = fresh;
                }
                self.known.len().checked_sub(1)?
            }
        };
        let g = self.known.get_mut(index)?;
        g.addr = addr;
        g.gw_id = gw_id;
        Some(g)
    }

    /// An ADVERTISE: remember the gateway and restart its supervision.
    pub(crate) fn on_advertise(
        &mut self,
        now: Instant,
        addr: A,
        gw_id: u8,
        duration: u16,
        n_adv: u8,
    ) {
        if let Some(g) = self.entry(addr, gw_id) {
            let period = Duration::from_secs(u64::from(duration));
            g.adv_period = (duration > 0).then_some(period);
            g.adv_deadline = g.adv_period.map(|p| adv_deadline(now, p, n_adv));
        }
    }

    /// A GWINFO: remember the gateway.
    pub(crate) fn on_gwinfo(&mut self, addr: A, gw_id: u8) {
        let _ = self.entry(addr, gw_id);
    }

    /// Forgets a gateway (it was lost).
    pub(crate) fn forget(&mut self, addr: A) {
        self.known.retain(|g| g.addr != addr);
    }

    /// The ADVERTISE deadline of the gateway at `addr`.
    pub(crate) fn adv_deadline_of(&self, addr: A) -> Option<Instant> {
        self.known
            .iter()
            .find(|g| g.addr == addr)
            .and_then(|g| g.adv_deadline)
    }

    /// A known gateway that is not overdue, if any.
    pub(crate) fn pick(&self, now: Instant) -> Option<(A, u8)> {
        self.known
            .iter()
            .find(|g| g.adv_deadline.is_none_or(|d| d > now))
            .map(|g| (g.addr, g.gw_id))
    }

    /// The radio is off (asleep): ADVERTISEs cannot be heard, so supervision stops.
    pub(crate) fn pause_supervision(&mut self) {
        for g in self.known.iter_mut() {
            g.adv_deadline = None;
        }
    }

    /// The radio is on again: supervision restarts from now.
    pub(crate) fn resume_supervision(&mut self, now: Instant, n_adv: u8) {
        for g in self.known.iter_mut() {
            g.adv_deadline = g.adv_period.map(|p| adv_deadline(now, p, n_adv));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn searchgw_waits_a_random_delay_then_backs_off_exponentially_with_a_cap() {
        let timers = Timers {
            t_searchgw: Duration::from_secs(5),
            search_backoff_initial: Duration::from_secs(4),
            search_backoff_max: Duration::from_secs(20),
            ..Timers::default()
        };
        let mut rng = Rng::new(1);
        let mut d = Discovery::<u8>::new();
        d.start(ms(0), &timers, &mut rng);
        let first = d.deadline().unwrap();
        assert!(first <= ms(5000));
        assert!(!d.take_send());
        let mut now = first;
        let mut waits = [0u64; 5];
        for w in &mut waits {
            d.on_timeout(now, &timers, &mut rng);
            assert!(d.take_send());
            let next = d.deadline().unwrap();
            *w = next.as_millis() - now.as_millis();
            now = next;
        }
        // Waits lie in [full/2, full] with full = 4, 8, 16, 20, 20 s.
        for (w, full) in waits.iter().zip([4000u64, 8000, 16000, 20000, 20000]) {
            assert!(
                (full / 2..=full).contains(w),
                "{w} not within {full}/2..={full}"
            );
        }
    }

    #[test]
    fn another_clients_searchgw_during_the_delay_replaces_ours() {
        let timers = Timers::default();
        let mut rng = Rng::new(3);
        let mut d = Discovery::<u8>::new();
        d.start(ms(0), &timers, &mut rng);
        d.heard_searchgw(ms(1), &timers, &mut rng);
        assert!(!d.take_send(), "nothing to send: the other SEARCHGW counts");
        assert!(d.deadline().unwrap() >= ms(1 + 2500));
        // During the wait, another SEARCHGW changes nothing.
        let before = d.deadline();
        d.heard_searchgw(ms(2), &timers, &mut rng);
        assert_eq!(d.deadline(), before);
    }

    #[test]
    fn advertise_supervision_allows_n_adv_periods_and_pauses_while_asleep() {
        let mut d = Discovery::<u8>::new();
        d.on_advertise(ms(0), 9, 1, 10, 3);
        assert_eq!(d.adv_deadline_of(9), Some(ms(32_500)));
        assert_eq!(d.pick(ms(32_499)), Some((9, 1)));
        assert_eq!(d.pick(ms(32_500)), None);
        d.pause_supervision();
        assert_eq!(d.adv_deadline_of(9), None);
        d.resume_supervision(ms(100_000), 3);
        assert_eq!(d.adv_deadline_of(9), Some(ms(132_500)));
        d.forget(9);
        assert_eq!(d.pick(ms(0)), None);
    }
}
