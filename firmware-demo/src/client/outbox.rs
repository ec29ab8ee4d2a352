//! The outbox: queued publishes plus the one request in flight (spec 6.13: a client has at most
//! one outstanding request), supervised by T_RETRY / N_RETRY.
//!
//! The request in flight is chosen by the client ([`super::Client`]'s `advance`); this module
//! only keeps it, says when it must be (re)transmitted, and counts retries.

use core::time::Duration;

use heapless::{Deque, Vec};
use sn_codec::{Instant, QoS};

use super::event::{CommandError, PubTopic, PublishToken, TopicHandle};

/// A publish waiting in the outbox (owned copy of the payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutPublish<const P: usize> {
    pub(crate) token: PublishToken,
    pub(crate) topic: PubTopic,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) payload: Vec<u8, P>,
    /// Already re-sent once after a re-REGISTER (PUBACK 0x02): a second 0x02 fails it.
    pub(crate) reregistered: bool,
}

/// What is in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request<const P: usize> {
    /// CONNECT (`resume`: from sleep, CleanSession = 0).
    Connect { resume: bool },
    /// REGISTER of a topic table slot.
    Register(TopicHandle),
    /// SUBSCRIBE of a topic table slot.
    Subscribe(TopicHandle, QoS),
    /// UNSUBSCRIBE of a topic table slot.
    Unsubscribe(TopicHandle),
    /// QoS 1 / 2 PUBLISH; `released` once PUBREC arrived and PUBREL is the message to repeat.
    Publish {
        publish: OutPublish<P>,
        released: bool,
    },
    /// Keep-alive PINGREQ.
    Ping,
    /// Wake-up PINGREQ with the ClientId.
    WakePing,
    /// DISCONNECT with a sleep duration in seconds.
    Sleep(u16),
    /// DISCONNECT.
    Disconnect,
}

/// The request in flight and its retransmission state.
#[derive(Debug, Clone)]
pub(crate) struct Inflight<const P: usize> {
    pub(crate) req: Request<P>,
    pub(crate) msg_id: u16,
    /// Retransmissions in the current step (a QoS 2 flow restarts the count at PUBREL).
    pub(crate) retries: u8,
    /// Retransmissions of the whole flow, for reporting.
    pub(crate) total_retries: u8,
    /// When T_RETRY expires (None until first sent).
    deadline: Option<Instant>,
    /// A (re)transmission is due.
    send_due: bool,
}

/// What a T_RETRY expiry means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expiry<const P: usize> {
    /// Nothing expired.
    None,
    /// Send the request again.
    Retransmit,
    /// N_RETRY exhausted: the request, taken out of the outbox.
    Exhausted(Inflight<P>),
}

impl<const P: usize> PartialEq for Inflight<P> {
    fn eq(&self, other: &Self) -> bool {
        self.req == other.req && self.msg_id == other.msg_id && self.retries == other.retries
    }
}

impl<const P: usize> Eq for Inflight<P> {}

/// The outbox; see the module doc.
#[derive(Debug, Clone)]
pub(crate) struct Outbox<const N: usize, const P: usize> {
    queue: Deque<OutPublish<P>, N>,
    inflight: Option<Inflight<P>>,
    /// Earliest time a new request may start (T_WAIT after congestion, reconnect delays).
    hold_until: Option<Instant>,
    last_msg_id: u16,
}

impl<const N: usize, const P: usize> Outbox<N, P> {
    pub(crate) const fn new() -> Self {
        Outbox {
            queue: Deque::new(),
            inflight: None,
            hold_until: None,
            last_msg_id: 0,
        }
    }

    /// A fresh MsgId (1..=0xFFFF; 0 is never issued).
    pub(crate) fn next_msg_id(&mut self) -> u16 {
        self.last_msg_id = self.last_msg_id.checked_add(1).unwrap_or(1);
        self.last_msg_id
    }

    /// Queues a publish at the back.
    pub(crate) fn push(&mut self, p: OutPublish<P>) -> Result<(), CommandError> {
        self.queue.push_back(p).map_err(|_| CommandError::QueueFull)
    }

    /// Puts a publish back at the front (after a failed attempt); `Err` gives it back when the
    /// queue is full.
    pub(crate) fn push_front(&mut self, p: OutPublish<P>) -> Result<(), OutPublish<P>> {
        self.queue.push_front(p)
    }

    pub(crate) fn front(&self) -> Option<&OutPublish<P>> {
        self.queue.front()
    }

    pub(crate) fn pop_front(&mut self) -> Option<OutPublish<P>> {
        self.queue.pop_front()
    }

    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn inflight(&self) -> Option<&Inflight<P>> {
        self.inflight.as_ref()
    }

    pub(crate) fn inflight_mut(&mut self) -> Option<&mut Inflight<P>> {
        self.inflight.as_mut()
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.inflight.is_none()
    }

    /// Starts a request (replacing nothing: the caller checked [`Outbox::is_idle`]).
    pub(crate) fn start(&mut self, req: Request<P>, msg_id: u16) {
        self.inflight = Some(Inflight {
            req,
            msg_id,
            retries: 0,
            total_retries: 0,
            deadline: None,
            send_due: true,
        });
    }

    /// Takes the request out of flight.
    pub(crate) fn finish(&mut self) -> Option<Inflight<P>> {
        self.inflight.take()
    }

    /// Asks for a transmission of the current request at the next `poll_transmit` (the next
    /// message of a QoS 2 flow, or a re-send) without counting a retry.
    pub(crate) fn resend(&mut self) {
        if let Some(i) = &mut self.inflight {
            i.send_due = true;
        }
    }

    /// The request if it is due for (re)transmission; arms T_RETRY.
    pub(crate) fn take_send(&mut self, now: Instant, t_retry: Duration) -> Option<&Inflight<P>> {
        let i = self.inflight.as_mut().filter(|i| i.send_due)?;
        i.send_due = false;
        i.deadline = Some(now.saturating_add(t_retry));
        Some(i)
    }

    /// Whether a transmission is waiting for `poll_transmit`.
    pub(crate) fn send_pending(&self) -> bool {
        self.inflight.as_ref().is_some_and(|i| i.send_due)
    }

    /// The gateway is alive and working on our request (Will prompting, buffered messages
    /// during a wake-up): restart T_RETRY without a retransmission.
    pub(crate) fn extend(&mut self, now: Instant, t_retry: Duration) {
        if let Some(i) = &mut self.inflight
            && i.deadline.is_some()
        {
            i.deadline = Some(now.saturating_add(t_retry));
        }
    }

    /// Handles the expiry of T_RETRY.
    pub(crate) fn on_timeout(&mut self, now: Instant, n_retry: u8) -> Expiry<P> {
        let Some(i) = &mut self.inflight else {
            return Expiry::None;
        };
        if i.send_due || i.deadline.is_none_or(|d| d > now) {
            return Expiry::None;
        }
        if i.retries < n_retry {
            i.retries = i.retries.saturating_add(1);
            i.total_retries = i.total_retries.saturating_add(1);
            i.send_due = true;
            i.deadline = None;
            Expiry::Retransmit
        } else {
            self.inflight.take().map_or(Expiry::None, Expiry::Exhausted)
        }
    }

    /// The T_RETRY deadline of the request in flight.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.inflight.as_ref().and_then(|i| i.deadline)
    }

    /// Holds new requests back until `until` (T_WAIT, reconnect delay).
    pub(crate) fn hold(&mut self, until: Instant) {
        self.hold_until = Some(until);
    }

    /// Whether new requests are held back at `now` (clears an expired hold).
    pub(crate) fn held(&mut self, now: Instant) -> bool {
        match self.hold_until {
            Some(t) if t > now => true,
            _ => {
                self.hold_until = None;
                false
            }
        }
    }

    /// The end of the hold, if any.
    pub(crate) fn hold_deadline(&self) -> Option<Instant> {
        self.hold_until
    }

    /// Drops the hold.
    pub(crate) fn release_hold(&mut self) {
        self.hold_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn a_request_is_retransmitted_n_retry_times_then_given_up() {
        let mut o = Outbox::<2, 8>::new();
        let t = Duration::from_secs(10);
        o.start(Request::Ping, 0);
        assert!(o.take_send(ms(0), t).is_some());
        assert!(o.take_send(ms(0), t).is_none(), "sent once");
        assert_eq!(o.on_timeout(ms(9_999), 2), Expiry::None);
        assert_eq!(o.on_timeout(ms(10_000), 2), Expiry::Retransmit);
        assert_eq!(o.take_send(ms(10_000), t).unwrap().retries, 1);
        assert_eq!(o.on_timeout(ms(20_000), 2), Expiry::Retransmit);
        assert!(o.take_send(ms(20_000), t).is_some());
        assert!(matches!(o.on_timeout(ms(30_000), 2), Expiry::Exhausted(i) if i.retries == 2));
        assert!(o.is_idle());
    }

    #[test]
    fn msg_ids_skip_zero_and_the_queue_is_bounded() {
        let mut o = Outbox::<1, 8>::new();
        o.last_msg_id = 0xFFFF;
        assert_eq!(o.next_msg_id(), 1);
        let p = OutPublish {
            token: PublishToken(1),
            topic: PubTopic::Predefined(1),
            qos: QoS::One,
            retain: false,
            payload: Vec::new(),
            reregistered: false,
        };
        assert!(o.push(p.clone()).is_ok());
        assert_eq!(o.push(p.clone()), Err(CommandError::QueueFull));
        assert!(o.push_front(p).is_err());
        assert!(o.pop_front().is_some());
        o.hold(ms(5));
        assert!(o.held(ms(4)));
        assert!(!o.held(ms(5)));
        assert_eq!(o.hold_deadline(), None);
    }
}
