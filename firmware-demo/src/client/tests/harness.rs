//! A scripted gateway and a simulated clock around one [`Client`]: the test plays the gateway,
//! delivers packets, jumps the clock to the client's next deadline, and asserts on the exact
//! datagrams and events the client produced.

use core::time::Duration;
use std::vec::Vec;

use sn_codec::{Instant, Packet};

use crate::client::{Client, ClientConfig, ClientEvent, Destination, State, Timers};

/// Radio address of the first gateway.
pub(super) const GW: u8 = 1;
/// Radio address of a second gateway.
pub(super) const GW2: u8 = 2;
/// Payload capacity of the test client.
pub(super) const P: usize = 64;

pub(super) type TestClient = Client<u8, 8, 4, P>;

/// The client, the clock, and everything the client produced that the test has not looked at.
pub(super) struct World {
    pub(super) c: TestClient,
    pub(super) now: Instant,
    sent: Vec<(Destination<u8>, Vec<u8>)>,
    events: Vec<ClientEvent<P>>,
}

/// Test timers: T_RETRY 1 s, N_RETRY 2, T_SEARCHGW 2 s, back-off 4 s → 60 s, N_ADV 2,
/// T_WAIT 30 s.
pub(super) fn timers() -> Timers {
    Timers {
        t_retry: Duration::from_secs(1),
        n_retry: 2,
        t_searchgw: Duration::from_secs(2),
        search_backoff_initial: Duration::from_secs(4),
        search_backoff_max: Duration::from_secs(60),
        n_adv: 2,
        t_wait: Duration::from_secs(30),
    }
}

/// A configuration for `mote-1` with a fixed gateway [`GW`] (id 7) and the test timers.
pub(super) fn fixed_config() -> ClientConfig<u8, P> {
    let mut cfg = ClientConfig::new("mote-1").unwrap();
    cfg.gateway = Some((GW, 7));
    cfg.timers = timers();
    cfg.keep_alive = 30;
    cfg
}

/// The same without a gateway: discovery.
pub(super) fn discovery_config() -> ClientConfig<u8, P> {
    let mut cfg = fixed_config();
    cfg.gateway = None;
    cfg
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) fn encode(p: &Packet<'_>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = p.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

impl World {
    pub(super) fn new(cfg: ClientConfig<u8, P>) -> Self {
        Self::with_seed(cfg, 1)
    }

    pub(super) fn with_seed(cfg: ClientConfig<u8, P>, seed: u64) -> Self {
        let c = Client::new(cfg, Instant::ZERO, seed).unwrap();
        World {
            c,
            now: Instant::ZERO,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Drains transmits, then events (the contract's order).
    pub(super) fn drain(&mut self) {
        let mut buf = [0u8; 512];
        while let Some(t) = self.c.poll_transmit(self.now, &mut buf) {
            self.sent.push((t.to, buf[..t.len].to_vec()));
        }
        assert!(!self.c.has_transmit(), "poll_transmit stopped early");
        while let Some(e) = self.c.poll_event() {
            self.events.push(e);
        }
        if let Some(t) = self.c.poll_timeout() {
            assert!(
                t >= self.now,
                "poll_timeout {t} is in the past (now {})",
                self.now
            );
        }
    }

    /// Runs a command (or anything else on the client), then drains.
    pub(super) fn with<R>(&mut self, f: impl FnOnce(&mut TestClient, Instant) -> R) -> R {
        let r = f(&mut self.c, self.now);
        self.drain();
        r
    }

    /// Delivers a packet from radio address `from`.
    pub(super) fn deliver_from(&mut self, from: u8, p: &Packet<'_>) {
        let bytes = encode(p);
        self.c.handle_datagram(self.now, from, &bytes);
        self.drain();
    }

    /// Delivers a packet from the gateway [`GW`].
    pub(super) fn deliver(&mut self, p: &Packet<'_>) {
        self.deliver_from(GW, p);
    }

    /// Delivers raw bytes.
    pub(super) fn deliver_raw(&mut self, from: u8, bytes: &[u8]) {
        self.c.handle_datagram(self.now, from, bytes);
        self.drain();
    }

    /// Jumps to the client's next deadline (which must exist) and fires it.
    pub(super) fn fire(&mut self) -> Instant {
        let t = self.c.poll_timeout().expect("the client has a deadline");
        self.now = t;
        self.c.handle_timeout(t);
        self.drain();
        t
    }

    /// Advances the clock by `d`, firing every deadline on the way.
    pub(super) fn run_for(&mut self, d: Duration) {
        let end = self.now.saturating_add(d);
        let mut fired = 0;
        while let Some(t) = self.c.poll_timeout().filter(|&t| t <= end) {
            fired += 1;
            assert!(
                fired < 10_000,
                "the deadline {t} keeps firing without progress"
            );
            self.now = t;
            self.c.handle_timeout(t);
            self.drain();
        }
        self.now = end;
        self.c.handle_timeout(end);
        self.drain();
    }

    /// The datagrams produced since the last call.
    pub(super) fn take_sent(&mut self) -> Vec<(Destination<u8>, Vec<u8>)> {
        std::mem::take(&mut self.sent)
    }

    /// The events produced since the last call.
    pub(super) fn take_events(&mut self) -> Vec<ClientEvent<P>> {
        std::mem::take(&mut self.events)
    }

    /// Asserts that exactly these packets went to `to`, in order.
    pub(super) fn expect_sent_to(&mut self, to: Destination<u8>, expected: &[Packet<'_>]) {
        let sent = self.take_sent();
        let want: Vec<(Destination<u8>, Vec<u8>)> =
            expected.iter().map(|p| (to, encode(p))).collect();
        assert_eq!(
            sent,
            want,
            "\n  sent: {}\n  want: {}",
            show(&sent),
            show(&want)
        );
    }

    /// Asserts that exactly these packets went to the gateway [`GW`].
    pub(super) fn expect_sent(&mut self, expected: &[Packet<'_>]) {
        self.expect_sent_to(Destination::Gateway(GW), expected);
    }

    /// Asserts that nothing was sent.
    pub(super) fn expect_silence(&mut self) {
        self.expect_sent(&[]);
    }

    /// Asserts that these events (and no others) were produced.
    pub(super) fn expect_events(&mut self, expected: &[ClientEvent<P>]) {
        assert_eq!(self.take_events(), expected);
    }

    /// Connects `mote-1` (no Will) to the fixed gateway; leaves the client Active (or
    /// Registering when topics are pending) with nothing unread.
    pub(super) fn connected(cfg: ClientConfig<u8, P>) -> Self {
        let mut w = World::new(cfg);
        w.with(|c, now| c.connect(now)).unwrap();
        let sent = w.take_sent();
        assert!(
            matches!(&sent[..], [(_, b)] if matches!(Packet::decode(b), Ok(Packet::Connect(_))))
        );
        w.deliver(&Packet::Connack {
            return_code: sn_codec::ReturnCode::Accepted,
        });
        w.take_events();
        assert!(matches!(w.c.state(), State::Active | State::Registering));
        w
    }
}

/// CONNECT of `mote-1`, keep-alive 30 s, no Will.
pub(super) fn connect_packet(clean: bool) -> Packet<'static> {
    Packet::Connect(sn_codec::Connect {
        will: false,
        clean_session: clean,
        duration: 30,
        client_id: b"mote-1",
    })
}

fn show(v: &[(Destination<u8>, Vec<u8>)]) -> std::string::String {
    let parts: Vec<std::string::String> = v
        .iter()
        .map(|(to, b)| match Packet::decode(b) {
            Ok(p) => std::format!("{to:?} {p}"),
            Err(e) => std::format!("{to:?} <{e}>"),
        })
        .collect();
    parts.join(" | ")
}
