//! A simulated mote: the `firmware-demo` MQTT-SN client ([`MoteClient`]) with a small
//! application on top that follows a [`MotePlan`]: publish numbered messages, take commands,
//! sleep and wake in cycles. It keeps the client's sans-IO contract and records what happened
//! to every publish and every message in a [`MoteReport`].
//!
//! Topics: data goes to `motes/<id>/data` (registered), with payload `<id>/<seq>`; commands
//! come on `motes/<id>/cmd`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use firmware_demo::client::{
    Client, ClientConfig, ClientEvent, PubTopic, PublishError, State, SubTopic, TopicHandle,
    Transmit,
};
use firmware_demo::sn_codec::{Instant, QoS};

use super::world::SimRng;

/// The client type of every simulated mote: socket addresses, 8 topics, 8 queued publishes,
/// 64-octet payloads.
pub type MoteClient = Client<SocketAddr, 8, 8, 64>;

/// Sleeping between windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepPlan {
    /// Sleep duration announced in DISCONNECT, in seconds; the mote wakes after it.
    pub asleep_s: u16,
}

/// What a mote's application does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MotePlan {
    /// Data messages to publish in all.
    pub publishes: u32,
    /// QoS of message `n` is `qos[n % qos.len()]` (QoS 1 when empty).
    pub qos: Vec<QoS>,
    /// Random gap between two publishes (awake motes), in milliseconds: `(min, max)`.
    pub gap_ms: (u64, u64),
    /// The mote starts (CONNECT) at a random time up to this, in milliseconds.
    pub start_within_ms: u64,
    /// Subscribe to `motes/<id>/cmd` at this QoS.
    pub commands: Option<QoS>,
    /// Sleep cycles: connect, publish one message, sleep, wake to fetch buffered messages,
    /// resume the session, publish the next one, and so on.
    pub sleep: Option<SleepPlan>,
}

/// A message the mote received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Simulated time, in milliseconds.
    pub at: u64,
    /// Payload as text (lossy).
    pub payload: String,
    /// QoS it arrived with.
    pub qos: QoS,
    /// The client's state when it arrived (`Awake`: buffered while the mote slept).
    pub state: State,
}

/// What happened at one mote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoteReport {
    /// Sequence numbers handed to the client, in order.
    pub queued: Vec<u32>,
    /// Publishes the gateway acknowledged (or, at QoS 0, sent): sequence number and QoS.
    pub acked: Vec<(u32, QoS)>,
    /// Publishes given up, with the reason.
    pub failed: Vec<(u32, PublishError)>,
    /// Messages received.
    pub received: Vec<Received>,
    /// CONNACKs accepted (resumed or not).
    pub connects: u32,
    /// CONNACKs of resumed sleeping sessions.
    pub resumes: u32,
    /// Completed wake-ups (PINGRESP after the buffered messages).
    pub wakes: u32,
    /// Times the gateway was given up on.
    pub gateway_losses: u32,
    /// Unsolicited DISCONNECTs from the gateway.
    pub disconnected_by_gateway: u32,
}

/// Where a sleeping mote is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connected (or connecting): publish this window's message, then sleep.
    Window { published: bool },
    /// DISCONNECT(duration) asked for.
    GoingToSleep,
    /// Asleep until `wake_at`.
    Sleeping { wake_at: u64 },
    /// Wake-up PINGREQ sent; buffered messages arriving.
    Waking,
    /// CONNECT sent to resume the session.
    Resuming,
}

/// One simulated mote.
#[derive(Debug)]
pub struct SimMote {
    id: String,
    client: MoteClient,
    plan: MotePlan,
    rng: SimRng,
    start_at: u64,
    started: bool,
    data: Option<TopicHandle>,
    next_publish_at: Option<u64>,
    next_seq: u32,
    /// Publish tokens in flight → (sequence number, QoS).
    tokens: BTreeMap<u32, (u32, QoS)>,
    phase: Option<Phase>,
    report: MoteReport,
}

impl SimMote {
    /// A mote with ClientId `cfg.client_id`, started at a random time within the plan's
    /// start window.
    ///
    /// # Errors
    /// The client's configuration error, as text.
    pub fn new(
        cfg: ClientConfig<SocketAddr, 64>,
        plan: MotePlan,
        mut rng: SimRng,
    ) -> Result<Self, String> {
        let id = cfg.client_id.to_string();
        let client = MoteClient::new(cfg, Instant::ZERO, rng.next_u64())
            .map_err(|e| format!("mote {id}: {e}"))?;
        let start_at = rng.range(0, plan.start_within_ms);
        let phase = plan.sleep.map(|_| Phase::Window { published: false });
        Ok(SimMote {
            id,
            client,
            plan,
            rng,
            start_at,
            started: false,
            data: None,
            next_publish_at: None,
            next_seq: 0,
            tokens: BTreeMap::new(),
            phase,
            report: MoteReport::default(),
        })
    }

    /// The ClientId.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client (read-only).
    pub fn client(&self) -> &MoteClient {
        &self.client
    }

    /// What happened so far.
    pub fn report(&self) -> &MoteReport {
        &self.report
    }

    /// Every planned publish has an outcome (acknowledged or failed).
    pub fn done_publishing(&self) -> bool {
        self.next_seq >= self.plan.publishes && self.tokens.is_empty()
    }

    /// A datagram from `from`.
    pub fn handle_datagram(&mut self, now: u64, from: SocketAddr, bytes: &[u8]) {
        self.client
            .handle_datagram(Instant::from_millis(now), from, bytes);
    }

    /// A timer of the mote (client or application) is due.
    pub fn handle_timeout(&mut self, now: u64) {
        let t = Instant::from_millis(now);
        if !self.started && now >= self.start_at {
            self.start(now);
        }
        self.client.handle_timeout(t);
        self.tick(now);
    }

    /// The next datagram; see [`Client::poll_transmit`].
    pub fn poll_transmit(&mut self, now: u64, buf: &mut [u8]) -> Option<Transmit<SocketAddr>> {
        self.client.poll_transmit(Instant::from_millis(now), buf)
    }

    /// Drains the client's events and lets the application react to them (which may queue
    /// transmissions). Returns the events as transcript text, one per entry.
    pub fn drain_events(&mut self, now: u64) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(e) = self.client.poll_event() {
            let mut line = String::new();
            let _ = write!(line, "{e:?}");
            lines.push(line);
            self.on_event(now, e);
        }
        if !lines.is_empty() {
            self.tick(now);
        }
        lines
    }

    /// Whether the client has something to send.
    pub fn has_transmit(&self) -> bool {
        self.client.has_transmit()
    }

    /// When [`SimMote::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.started {
            return Some(self.start_at);
        }
        let wake = match self.phase {
            Some(Phase::Sleeping { wake_at }) => Some(wake_at),
            _ => None,
        };
        let publish = if self.plan.sleep.is_none() {
            self.next_publish_at
        } else {
            None
        };
        [
            self.client.poll_timeout().map(Instant::as_millis),
            wake,
            publish,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn start(&mut self, now: u64) {
        self.started = true;
        let t = Instant::from_millis(now);
        if self.plan.publishes > 0 {
            let name = format!("motes/{}/data", self.id);
            self.data = self.client.register(t, &name).ok();
        }
        if let Some(qos) = self.plan.commands {
            let name = format!("motes/{}/cmd", self.id);
            let _ = self.client.subscribe(t, SubTopic::Name(&name), qos);
        }
        let _ = self.client.connect(t);
        if self.plan.sleep.is_none() && self.plan.publishes > 0 {
            self.next_publish_at = Some(now + self.gap());
        }
    }

    fn gap(&mut self) -> u64 {
        self.rng.range(self.plan.gap_ms.0, self.plan.gap_ms.1)
    }

    fn qos_of(&self, seq: u32) -> QoS {
        match self.plan.qos.len() {
            0 => QoS::One,
            n => self.plan.qos[seq as usize % n],
        }
    }

    /// Hands message `next_seq` to the client; false when the outbox is full.
    fn publish_next(&mut self, now: u64) -> bool {
        let Some(topic) = self.data else {
            return false;
        };
        let seq = self.next_seq;
        let qos = self.qos_of(seq);
        let payload = format!("{}/{}", self.id, seq);
        match self.client.publish(
            Instant::from_millis(now),
            PubTopic::Registered(topic),
            payload.as_bytes(),
            qos,
            false,
        ) {
            Ok(token) => {
                self.tokens.insert(token.0, (seq, qos));
                self.report.queued.push(seq);
                self.next_seq += 1;
                true
            }
            Err(_) => false,
        }
    }

    /// The application's own logic after every input.
    fn tick(&mut self, now: u64) {
        if !self.started {
            return;
        }
        match self.plan.sleep {
            None => self.tick_awake(now),
            Some(plan) => self.tick_sleeper(now, plan),
        }
    }

    fn tick_awake(&mut self, now: u64) {
        let Some(at) = self.next_publish_at else {
            return;
        };
        if now < at {
            return;
        }
        if self.next_seq >= self.plan.publishes {
            self.next_publish_at = None;
            return;
        }
        // A full outbox: try again after the next gap.
        self.publish_next(now);
        self.next_publish_at = (self.next_seq < self.plan.publishes).then(|| now + self.gap());
    }

    fn tick_sleeper(&mut self, now: u64, plan: SleepPlan) {
        let t = Instant::from_millis(now);
        match self.phase {
            Some(Phase::Window { published: false })
                if self.client.state() == State::Active && self.client.is_idle() =>
            {
                let more = self.next_seq < self.plan.publishes;
                if !(more && self.publish_next(now)) {
                    self.phase = Some(Phase::Window { published: true });
                    return self.tick_sleeper(now, plan);
                }
                self.phase = Some(Phase::Window { published: true });
            }
            Some(Phase::Window { published: true })
                if self.client.state() == State::Active
                    && self.client.is_idle()
                    && self.client.sleep(t, plan.asleep_s).is_ok() =>
            {
                self.phase = Some(Phase::GoingToSleep);
            }
            Some(Phase::Sleeping { wake_at }) if now >= wake_at => {
                if self.client.wake(t).is_ok() {
                    self.phase = Some(Phase::Waking);
                } else {
                    // Not asleep after all (the client reconnected on its own): wait for it.
                    self.phase = Some(Phase::Window { published: true });
                }
            }
            _ => {}
        }
    }

    fn on_event(&mut self, now: u64, e: ClientEvent<64>) {
        match e {
            ClientEvent::Published { token, qos, .. } => {
                if let Some((seq, _)) = self.tokens.remove(&token.0) {
                    self.report.acked.push((seq, qos));
                }
            }
            ClientEvent::PublishFailed { token, reason } => {
                if let Some((seq, _)) = self.tokens.remove(&token.0) {
                    self.report.failed.push((seq, reason));
                }
            }
            ClientEvent::Message(m) => self.report.received.push(Received {
                at: now,
                payload: String::from_utf8_lossy(&m.payload).into_owned(),
                qos: m.qos,
                state: self.client.state(),
            }),
            ClientEvent::Connected { resumed, .. } => {
                self.report.connects += 1;
                if resumed {
                    self.report.resumes += 1;
                }
                if self.plan.sleep.is_some() {
                    self.phase = Some(Phase::Window { published: false });
                }
            }
            ClientEvent::Asleep { duration } if self.phase == Some(Phase::GoingToSleep) => {
                let wake_at = now + u64::from(duration) * 1000;
                self.phase = Some(Phase::Sleeping { wake_at });
            }
            ClientEvent::BackToSleep => {
                self.report.wakes += 1;
                if self.phase == Some(Phase::Waking)
                    && self.client.connect(Instant::from_millis(now)).is_ok()
                {
                    self.phase = Some(Phase::Resuming);
                }
            }
            ClientEvent::GatewayLost { .. } => self.report.gateway_losses += 1,
            ClientEvent::Disconnected {
                reason: firmware_demo::client::DisconnectReason::ByGateway,
            } => self.report.disconnected_by_gateway += 1,
            _ => {}
        }
    }
}
