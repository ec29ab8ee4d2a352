//! The demo application: a temperature/humidity [`Sensor`] that reports a reading every
//! interval, optionally sleeps between readings, and obeys a command topic.
//!
//! The sensor owns a [`Client`] and has the same sans-IO contract (`handle_datagram`,
//! `handle_timeout`, `poll_transmit`, `poll_event`, `poll_timeout`; drain transmits, then events,
//! after every input), so a shell drives it exactly like a bare client.
//!
//! # Behaviour
//!
//! - Readings go to `<prefix>/<client-id>/reading` (registered), a predefined topic id or a
//!   short topic name, at the configured QoS, as text:
//!   `id=mote-1 seq=3 t=21.43 h=45.1 led=off int=5 ts=12345`, padded with `.` to a size.
//!   QoS −1 needs no connection at all.
//! - Commands arrive on `<prefix>/<client-id>/cmd`: `interval=N` (seconds) and
//!   `led=on|off|toggle`. Anything else is reported and ignored.
//! - Sleep cycle ([`SleepCycle`]): after connecting, the sensor stays awake for `awake`
//!   (publishing when readings fall due), then sleeps; when it is time to wake it sends the
//!   wake-up PINGREQ, takes the buffered commands, resumes the session with CONNECT and starts
//!   the next window. With `asleep: None` it sleeps until the next reading is due.
//! - `max_readings`: after that many readings (all acknowledged) the sensor disconnects and
//!   reports [`SensorEvent::Finished`].

mod reading;

use core::time::Duration;

use heapless::{Deque, String};
use sn_codec::{Instant, QoS};

use reading::ReadingText;
pub use reading::{Command, FakeSensor, ParsedReading, Sample, parse_command, parse_reading};

use crate::client::{
    Client, ClientConfig, ClientEvent, CommandError, ConfigError, MessageTopic, PubTopic,
    PublishToken, State, SubTopic, TopicHandle, Transmit,
};
use crate::rng::Rng;

/// Longest topic prefix, in octets.
pub const MAX_PREFIX_LEN: usize = 24;

/// Events buffered between two drains of [`Sensor::poll_event`].
const SENSOR_EVENTS: usize = 16;

/// Where readings go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicMode {
    /// `<prefix>/<client-id>/reading`, registered with REGISTER.
    Registered,
    /// A predefined topic id (configured at the gateway).
    Predefined(u16),
    /// A two-character short topic name.
    Short([u8; 2]),
}

/// The awake/asleep rhythm of a sleeping sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepCycle {
    /// How long to stay connected after each wake-up (0: just long enough for one reading).
    pub awake: Duration,
    /// How long to sleep; `None` = until the next reading is due.
    pub asleep: Option<Duration>,
}

/// The sensor's behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorConfig {
    /// First level of the reading and command topics (e.g. `motes`).
    pub topic_prefix: String<MAX_PREFIX_LEN>,
    /// Where readings go.
    pub topic_mode: TopicMode,
    /// QoS of readings (−1 only with predefined or short topics).
    pub qos: QoS,
    /// Reporting interval (changed by `interval=N`).
    pub interval: Duration,
    /// Largest random delay before the first reading (spreads many motes out).
    pub first_reading_within: Duration,
    /// Subscribe to `<prefix>/<client-id>/cmd` (not with QoS −1: no session).
    pub commands: bool,
    /// Sleep between readings (ignored with QoS −1, which needs no session).
    pub sleep: Option<SleepCycle>,
    /// Pad each reading's payload with `.` to this many octets.
    pub payload_size: usize,
    /// Stop after this many readings.
    pub max_readings: Option<u32>,
}

impl SensorConfig {
    /// Registered readings at QoS 1 every `interval`, commands on, no sleep.
    pub fn new(topic_prefix: &str, interval: Duration) -> Result<Self, ConfigError> {
        Ok(SensorConfig {
            topic_prefix: String::try_from(topic_prefix).map_err(|_| ConfigError::InvalidTopic)?,
            topic_mode: TopicMode::Registered,
            qos: QoS::One,
            interval,
            first_reading_within: interval,
            commands: true,
            sleep: None,
            payload_size: 0,
            max_readings: None,
        })
    }
}

/// What the sensor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SensorEvent<const PAYLOAD: usize> {
    /// Something the client reported.
    Client(ClientEvent<PAYLOAD>),
    /// A reading was taken and handed to the client.
    Reading {
        /// Sequence number.
        seq: u32,
        /// The publish, for matching `Published` / `PublishFailed`.
        token: PublishToken,
        /// The values.
        sample: Sample,
    },
    /// A reading could not be queued (outbox full, or the payload does not fit).
    ReadingDropped {
        /// Sequence number.
        seq: u32,
        /// Why.
        error: CommandError,
    },
    /// A command was applied.
    Command(Command),
    /// A message on the command topic that is not a command.
    CommandRejected,
    /// `max_readings` reached, everything acknowledged, session closed.
    Finished,
}

/// Where a sleeping sensor is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cycle {
    /// Connected, publishing until `end` (and, when sleeping until the next reading, at least
    /// until one reading was taken).
    Window { end: Instant, taken: bool },
    /// Waiting for the outbox to drain before DISCONNECT(Duration).
    Draining,
    /// Asleep (or going to sleep) until `wake_at`.
    Sleeping { wake_at: Instant },
    /// Wake-up PINGREQ sent; then CONNECT to resume; waiting for CONNACK.
    Resuming,
}

/// The demo sensor; see the module documentation.
#[derive(Debug, Clone)]
pub struct Sensor<A, const TOPICS: usize = 8, const OUTBOX: usize = 4, const PAYLOAD: usize = 64> {
    client: Client<A, TOPICS, OUTBOX, PAYLOAD>,
    cfg: SensorConfig,
    rng: Rng,
    sensor: FakeSensor,
    interval: Duration,
    next_reading: Instant,
    seq: u32,
    led: bool,
    reading_topic: PubTopic,
    cmd_topic: Option<TopicHandle>,
    cycle: Option<Cycle>,
    finishing: bool,
    finished: bool,
    events: Deque<SensorEvent<PAYLOAD>, SENSOR_EVENTS>,
    events_dropped: u32,
}

impl<A, const TOPICS: usize, const OUTBOX: usize, const PAYLOAD: usize>
    Sensor<A, TOPICS, OUTBOX, PAYLOAD>
where
    A: Copy + PartialEq + core::fmt::Debug,
{
    /// A sensor with its client; it starts at once (connecting, or for QoS −1 just waiting for
    /// the first reading).
    ///
    /// # Errors
    /// [`ConfigError`] from the client; [`ConfigError::InvalidTopic`] when the topics built from
    /// the prefix and ClientId are too long or invalid; [`ConfigError::InvalidQos`] for QoS −1
    /// with a registered topic.
    pub fn new(
        client_cfg: ClientConfig<A, PAYLOAD>,
        cfg: SensorConfig,
        now: Instant,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        let mut client = Client::new(client_cfg, now, seed)?;
        let mut rng = Rng::new(seed ^ 0x5EED_5EED);
        let minus1 = cfg.qos == QoS::MinusOne;
        let id: String<{ crate::client::MAX_CLIENT_ID_LEN }> = client.config().client_id.clone();
        let topic = |leaf: &str| -> Result<String<{ crate::client::MAX_TOPIC_LEN }>, ConfigError> {
            let mut t = String::new();
            for part in [cfg.topic_prefix.as_str(), "/", id.as_str(), "/", leaf] {
                t.push_str(part).map_err(|_| ConfigError::InvalidTopic)?;
            }
            Ok(t)
        };
        let reading_topic = match cfg.topic_mode {
            TopicMode::Registered if minus1 => return Err(ConfigError::InvalidQos),
            TopicMode::Registered => {
                let name = topic("reading")?;
                PubTopic::Registered(
                    client
                        .register(now, &name)
                        .map_err(|_| ConfigError::InvalidTopic)?,
                )
            }
            TopicMode::Predefined(id) => PubTopic::Predefined(id),
            TopicMode::Short(s) => PubTopic::Short(s),
        };
        let cmd_topic = if cfg.commands && !minus1 {
            let name = topic("cmd")?;
            Some(
                client
                    .subscribe(now, SubTopic::Name(&name), QoS::One)
                    .map_err(|_| ConfigError::InvalidTopic)?,
            )
        } else {
            None
        };
        if !minus1 {
            let _ = client.connect(now);
        }
        let first = now.saturating_add(rng.duration_up_to(cfg.first_reading_within));
        let cycle = if minus1 {
            None
        } else {
            cfg.sleep.map(|_| Cycle::Resuming)
        };
        Ok(Sensor {
            sensor: FakeSensor::new(&mut rng),
            rng,
            interval: cfg.interval.max(Duration::from_millis(1)),
            next_reading: first,
            seq: 0,
            led: false,
            reading_topic,
            cmd_topic,
            cycle,
            finishing: false,
            finished: false,
            client,
            cfg,
            events: Deque::new(),
            events_dropped: 0,
        })
    }

    /// The client (read-only).
    pub fn client(&self) -> &Client<A, TOPICS, OUTBOX, PAYLOAD> {
        &self.client
    }

    /// The client, to issue commands directly (e.g. a graceful [`Client::disconnect`]).
    pub fn client_mut(&mut self) -> &mut Client<A, TOPICS, OUTBOX, PAYLOAD> {
        &mut self.client
    }

    /// The LED state.
    pub fn led(&self) -> bool {
        self.led
    }

    /// The current reporting interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Readings taken so far.
    pub fn readings(&self) -> u32 {
        self.seq
    }

    /// Events dropped because they were not drained in time.
    pub fn events_dropped(&self) -> u32 {
        self.events_dropped
    }

    /// Whether `max_readings` was reached and the session closed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Stops for good: no more readings; the session is closed with DISCONNECT (what is still
    /// queued is not sent). [`SensorEvent::Finished`] follows once the gateway confirmed (or at
    /// once without a session).
    pub fn stop(&mut self, now: Instant) {
        self.finishing = true;
        if self.client.state() == State::Disconnected {
            if !self.finished {
                self.finished = true;
                self.emit(SensorEvent::Finished);
            }
        } else {
            let _ = self.client.disconnect(now);
        }
        self.collect(now);
    }

    /// A datagram from the radio.
    pub fn handle_datagram(&mut self, now: Instant, from: A, bytes: &[u8]) {
        self.client.handle_datagram(now, from, bytes);
        self.tick(now);
    }

    /// Timer expiry (client timers and the sensor's own).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        self.tick(now);
    }

    /// The next datagram; see [`Client::poll_transmit`].
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit<A>> {
        // Sending completes QoS 0 / −1 publishes, which can make the outbox idle: time to sleep
        // or to finish. What that queues must go out in this same drain, so when the client had
        // nothing left, ask once more (each round either sends or changes nothing).
        for _ in 0..4 {
            let t = self.client.poll_transmit(now, buf);
            self.collect(now);
            self.step_cycle(now);
            self.step_finish(now);
            self.collect(now);
            if t.is_some() {
                return t;
            }
            if !self.client.has_transmit() {
                return None;
            }
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SensorEvent<PAYLOAD>> {
        self.events.pop_front()
    }

    /// When [`Sensor::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = if self.finished || self.finishing {
            None
        } else {
            match self.cycle {
                None => Some(self.next_reading),
                // The end of the window counts once it can end (see step_cycle); while the
                // session is being re-established the Connected event restarts the window.
                Some(Cycle::Window { end, taken }) if self.client.state().is_connected() => {
                    let can_end = taken || self.cfg.sleep.is_some_and(|s| s.asleep.is_some());
                    Some(if can_end {
                        self.next_reading.min(end)
                    } else {
                        self.next_reading
                    })
                }
                Some(Cycle::Sleeping { wake_at }) if self.client.state() == State::Asleep => {
                    Some(wake_at)
                }
                Some(_) => None,
            }
        };
        [self.client.poll_timeout(), own]
            .into_iter()
            .flatten()
            .min()
    }

    fn emit(&mut self, e: SensorEvent<PAYLOAD>) {
        if let Err(e) = self.events.push_back(e) {
            let _ = self.events.pop_front();
            self.events_dropped = self.events_dropped.saturating_add(1);
            let _ = self.events.push_back(e);
        }
    }

    /// Moves client events into the sensor's queue, each followed by what the sensor made of
    /// it.
    fn collect(&mut self, now: Instant) {
        while let Some(e) = self.client.poll_event() {
            let follow_up = self.react(now, &e);
            self.emit(SensorEvent::Client(e));
            if let Some(f) = follow_up {
                self.emit(f);
            }
        }
    }

    fn react(&mut self, now: Instant, e: &ClientEvent<PAYLOAD>) -> Option<SensorEvent<PAYLOAD>> {
        match e {
            ClientEvent::Connected { .. } => {
                if let Some(sleep) = self.cfg.sleep.filter(|_| self.cycle.is_some()) {
                    let end = now.saturating_add(sleep.awake);
                    self.cycle = Some(Cycle::Window { end, taken: false });
                }
                None
            }
            // Buffered commands are in; resume the session for this window's readings.
            ClientEvent::BackToSleep if !self.finishing => {
                let _ = self.client.connect(now);
                self.cycle = Some(Cycle::Resuming);
                None
            }
            ClientEvent::Message(m) if Some(m.topic) == self.cmd_topic.map(MessageTopic::Topic) => {
                match parse_command(&m.payload, self.led) {
                    Some(c) => {
                        self.apply(now, c);
                        Some(SensorEvent::Command(c))
                    }
                    None => Some(SensorEvent::CommandRejected),
                }
            }
            ClientEvent::Disconnected {
                reason: crate::client::DisconnectReason::Requested,
            } if self.finishing && !self.finished => {
                self.finished = true;
                Some(SensorEvent::Finished)
            }
            _ => None,
        }
    }

    fn apply(&mut self, now: Instant, c: Command) {
        match c {
            Command::Led(on) => self.led = on,
            Command::Interval(d) => {
                self.interval = d;
                let soonest = now.saturating_add(d);
                if self.next_reading > soonest {
                    self.next_reading = soonest;
                }
            }
        }
    }

    /// Whether readings may be taken now.
    fn sampling(&self) -> bool {
        if self.finishing || self.finished {
            return false;
        }
        match self.cycle {
            None => true,
            Some(Cycle::Window { .. }) => self.client.state().is_connected(),
            Some(_) => false,
        }
    }

    /// The sensor's own logic, after every input.
    fn tick(&mut self, now: Instant) {
        self.collect(now);
        if self.sampling() && self.next_reading <= now {
            self.take_reading(now);
        }
        self.step_cycle(now);
        self.step_finish(now);
        self.collect(now);
    }

    fn take_reading(&mut self, now: Instant) {
        let seq = self.seq;
        self.seq = self.seq.saturating_add(1);
        let next = self.next_reading.saturating_add(self.interval);
        self.next_reading = if next <= now {
            now.saturating_add(self.interval)
        } else {
            next
        };
        if self.cfg.max_readings.is_some_and(|max| self.seq >= max) {
            self.finishing = true;
        }
        if let Some(Cycle::Window { taken, .. }) = &mut self.cycle {
            *taken = true;
        }
        let sample = self.sensor.sample(&mut self.rng);
        let text = ReadingText {
            client_id: self.client.config().client_id.as_str(),
            seq,
            sample,
            led: self.led,
            interval: self.interval,
            timestamp_ms: now.as_millis(),
        };
        let Some(payload) = text.render::<PAYLOAD>(self.cfg.payload_size) else {
            return self.emit(SensorEvent::ReadingDropped {
                seq,
                error: CommandError::TooLarge,
            });
        };
        match self
            .client
            .publish(now, self.reading_topic, &payload, self.cfg.qos, false)
        {
            Ok(token) => self.emit(SensorEvent::Reading { seq, token, sample }),
            Err(error) => self.emit(SensorEvent::ReadingDropped { seq, error }),
        }
    }

    fn step_cycle(&mut self, now: Instant) {
        let Some(sleep) = self.cfg.sleep else { return };
        match self.cycle {
            Some(Cycle::Window { end, taken })
                if now >= end && !self.finishing && (taken || sleep.asleep.is_some()) =>
            {
                self.cycle = Some(Cycle::Draining)
            }
            Some(Cycle::Sleeping { wake_at })
                if now >= wake_at
                    && self.client.state() == State::Asleep
                    && self.client.wake(now).is_ok() =>
            {
                self.cycle = Some(Cycle::Resuming);
            }
            _ => {}
        }
        if self.cycle == Some(Cycle::Draining)
            && self.client.state() == State::Active
            && self.client.is_idle()
        {
            let span = match sleep.asleep {
                Some(d) => d,
                None => self.next_reading.saturating_duration_since(now),
            };
            let secs = span
                .as_millis()
                .div_ceil(1000)
                .clamp(1, u128::from(u16::MAX));
            let duration = u16::try_from(secs).unwrap_or(u16::MAX);
            if self.client.sleep(now, duration).is_ok() {
                let wake_at = now.saturating_add(span.max(Duration::from_millis(1)));
                self.cycle = Some(Cycle::Sleeping { wake_at });
            }
        }
    }

    fn step_finish(&mut self, now: Instant) {
        if !self.finishing || self.finished || !self.client.is_idle() {
            return;
        }
        match self.client.state() {
            State::Active | State::Registering | State::Asleep => {
                let _ = self.client.disconnect(now);
            }
            State::Disconnected if self.cfg.qos == QoS::MinusOne => {
                self.finished = true;
                self.emit(SensorEvent::Finished);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
