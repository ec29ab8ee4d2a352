//! The sans-IO MQTT-SN v1.2 client: [`Client`].
//!
//! # Calling contract
//!
//! The client never reads a clock, never touches a radio and never allocates. The caller owns
//! both and drives the client with four kinds of calls (the shape every core here has:
//! `docs/architecture.md`, "The core's calling contract"):
//!
//! | Kind | Methods | Rule |
//! |---|---|---|
//! | constructor | [`Client::new`] | the only place a seed enters (discovery jitter) |
//! | inputs | [`Client::handle_datagram`], [`Client::handle_timeout`], and the commands ([`Client::connect`], [`Client::publish`], [`Client::sleep`], …) | take `now`; never fail because of what a peer sent; a spurious `handle_timeout` is harmless |
//! | outputs | [`Client::poll_transmit`], then [`Client::poll_event`] | drained **completely**, in this order, after **every** input |
//! | deadline | [`Client::poll_timeout`] | call `handle_timeout` when it is reached; it may change after any input |
//!
//! A driver loop, on a microcontroller or on a host:
//!
//! ```text
//! loop {
//!     while let Some(t) = client.poll_transmit(now, &mut buf) { radio.send(t.to, &buf[..t.len]) }
//!     while let Some(e) = client.poll_event() { app.on(e) }
//!     select { datagram(from, bytes) => client.handle_datagram(now, from, bytes),
//!              client.poll_timeout() reached => client.handle_timeout(now) }
//! }
//! ```
//!
//! `A` is the radio's address type: the client remembers the gateway's address and sends
//! unicast there ([`Destination::Gateway`]); only SEARCHGW is a broadcast.
//!
//! # Behaviour
//!
//! - One request in flight at a time (spec 6.13), supervised by T_RETRY / N_RETRY; publishes
//!   queue behind it in order (capacity `OUTBOX`). After N_RETRY the request is abandoned and
//!   the gateway considered lost: the client picks another known gateway or searches again
//!   (with a configured gateway: waits with back-off and reconnects). Queued publishes survive.
//! - Registrations and subscriptions live in a topic table (capacity `TOPICS`); after every new
//!   session they are repeated before application publishes go out (state Registering).
//! - QoS −1 publishes need no connection, only a gateway address.
//! - Sleep: [`Client::sleep`] sends DISCONNECT(Duration); [`Client::wake`] sends
//!   PINGREQ(ClientId), takes the buffered messages and falls asleep again at PINGRESP;
//!   [`Client::connect`] resumes the session.
//! - Bad input never panics: undecodable datagrams, datagrams from strangers and replies that
//!   match nothing are counted in [`Stats`] and dropped.

mod config;
mod discovery;
mod event;
mod inbound;
mod lifecycle;
mod outbox;
mod sleep;
mod state;
mod topics;
mod transmit;

use heapless::{Deque, Vec};
use sn_codec::{Instant, QoS};

pub use config::{
    ClientConfig, ConfigError, EVENT_QUEUE, MAX_CLIENT_ID_LEN, MAX_GATEWAYS, MAX_TOPIC_LEN, Timers,
    Will,
};
pub use event::{
    ClientEvent, CommandError, DisconnectReason, LossReason, Message, MessageTopic, PubTopic,
    PublishError, PublishToken, Stats, SubTopic, TopicHandle,
};
pub use state::State;
pub use transmit::{Destination, Transmit};

use discovery::Discovery;
use event::bump;
use outbox::{OutPublish, Outbox};
use topics::{Kind, Reg, Sub, TopicTable, valid_name};
use transmit::Reply;

use crate::rng::Rng;

/// Acknowledgements owed to the gateway, waiting for `poll_transmit`.
const REPLY_QUEUE: usize = 8;
/// Incoming QoS 2 MsgIds remembered until PUBREL (duplicate suppression).
const QOS2_IN: usize = 4;

/// An MQTT-SN v1.2 client; see the module documentation for the calling contract.
///
/// Capacities: `TOPICS` topic table entries, `OUTBOX` queued publishes (and as many queued
/// QoS −1 publishes), `PAYLOAD` octets per payload (and per Will message).
#[derive(Debug, Clone)]
pub struct Client<A, const TOPICS: usize = 8, const OUTBOX: usize = 4, const PAYLOAD: usize = 64> {
    cfg: ClientConfig<A, PAYLOAD>,
    state: State,
    /// The application wants a session (connect() called, disconnect() not since).
    want_session: bool,
    /// The next CONNECT resumes a sleeping session.
    resume: bool,
    rng: Rng,
    /// The current gateway: address and GwId.
    gateway: Option<(A, u8)>,
    discovery: Discovery<A>,
    topics: TopicTable<TOPICS>,
    outbox: Outbox<OUTBOX, PAYLOAD>,
    minus1: Deque<OutPublish<PAYLOAD>, OUTBOX>,
    replies: Deque<Reply, REPLY_QUEUE>,
    events: Deque<ClientEvent<PAYLOAD>, EVENT_QUEUE>,
    qos2_in: Deque<u16, QOS2_IN>,
    /// A sleep() or disconnect() waiting for the outbox to drain.
    pending_sleep: Option<u16>,
    pending_disconnect: bool,
    /// Sleep duration last confirmed by the gateway, in seconds.
    sleep_duration: u16,
    /// Last datagram sent to the gateway (keep-alive).
    last_tx: Instant,
    /// Reconnect attempts to a configured gateway since the last CONNACK (back-off exponent).
    reconnects: u8,
    next_token: u32,
    stats: Stats,
}

impl<A, const TOPICS: usize, const OUTBOX: usize, const PAYLOAD: usize>
    Client<A, TOPICS, OUTBOX, PAYLOAD>
where
    A: Copy + PartialEq + core::fmt::Debug,
{
    /// A client in state [`State::Disconnected`]; nothing happens until a command.
    ///
    /// # Errors
    /// [`ConfigError`] when the configuration is unusable (see [`ClientConfig`]).
    pub fn new(
        config: ClientConfig<A, PAYLOAD>,
        now: Instant,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Client {
            gateway: config.gateway,
            cfg: config,
            state: State::Disconnected,
            want_session: false,
            resume: false,
            rng: Rng::new(seed),
            discovery: Discovery::new(),
            topics: TopicTable::new(),
            outbox: Outbox::new(),
            minus1: Deque::new(),
            replies: Deque::new(),
            events: Deque::new(),
            qos2_in: Deque::new(),
            pending_sleep: None,
            pending_disconnect: false,
            sleep_duration: 0,
            last_tx: now,
            reconnects: 0,
            next_token: 0,
            stats: Stats::default(),
        })
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The current gateway's address and GwId, if one is known.
    pub fn gateway(&self) -> Option<(A, u8)> {
        self.gateway
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig<A, PAYLOAD> {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The name of a topic table entry (empty for predefined ids and short names).
    pub fn topic_name(&self, topic: TopicHandle) -> Option<&str> {
        self.topics.get(topic).map(|s| s.name.as_str())
    }

    /// The normal topic id of a name in this session, once registered or subscribed.
    pub fn topic_id(&self, topic: TopicHandle) -> Option<u16> {
        self.topics.get(topic).and_then(|s| s.id)
    }

    /// Publishes queued or in flight (QoS −1 included).
    pub fn pending_publishes(&self) -> usize {
        let inflight = matches!(
            self.outbox.inflight().map(|i| &i.req),
            Some(outbox::Request::Publish { .. })
        );
        self.outbox
            .queued()
            .saturating_add(self.minus1.len())
            .saturating_add(usize::from(inflight))
    }

    /// Nothing queued, nothing in flight, no registration or subscription due.
    pub fn is_idle(&self) -> bool {
        self.outbox.is_idle() && self.pending_publishes() == 0 && !self.topics.has_work()
    }

    /// Starts (or keeps) a session: finds a gateway if none is known, connects, repeats the
    /// registrations and subscriptions. From Asleep or Awake it resumes the sleeping session.
    /// A no-op when already connecting or connected.
    pub fn connect(&mut self, now: Instant) -> Result<(), CommandError> {
        self.want_session = true;
        self.pending_disconnect = false;
        self.pending_sleep = None;
        match self.state {
            State::Connecting | State::Registering | State::Active | State::SearchingGw => {}
            State::Asleep | State::Awake => {
                // A wake-up PINGREQ (or a sleep-duration change) in flight is superseded.
                let _ = self.outbox.finish();
                if self.state == State::Asleep {
                    self.discovery
                        .resume_supervision(now, self.cfg.timers.n_adv);
                }
                self.resume = true;
                self.set_state(State::Connecting);
            }
            State::Disconnected | State::Lost => {
                self.outbox.release_hold();
                self.resume = false;
                self.begin_session(now);
            }
        }
        self.advance(now);
        Ok(())
    }

    /// Ends the session: after the request in flight, DISCONNECT is sent; the session ends at the
    /// gateway's DISCONNECT (or after N_RETRY). Queued publishes stay queued for the next
    /// session. While searching or reconnecting, stops at once.
    pub fn disconnect(&mut self, now: Instant) -> Result<(), CommandError> {
        self.want_session = false;
        self.pending_sleep = None;
        match self.state {
            State::Registering | State::Active => {
                // Leaving does not wait for a T_WAIT hold.
                self.outbox.release_hold();
                self.pending_disconnect = true;
            }
            State::Asleep | State::Awake => {
                let _ = self.outbox.finish();
                self.outbox.start(outbox::Request::Disconnect, 0);
            }
            State::Connecting | State::SearchingGw | State::Lost => {
                let _ = self.outbox.finish();
                self.discovery.stop();
                self.outbox.release_hold();
                self.set_state(State::Disconnected);
                self.emit(ClientEvent::Disconnected {
                    reason: DisconnectReason::Requested,
                });
            }
            State::Disconnected => {}
        }
        self.advance(now);
        Ok(())
    }

    /// Registers a topic name (REGISTER now if connected, else after the next CONNACK, and again
    /// after every new session). Registering a name twice returns the same handle.
    pub fn register(&mut self, now: Instant, name: &str) -> Result<TopicHandle, CommandError> {
        if !valid_name(name, false) {
            return Err(CommandError::InvalidTopic);
        }
        let h = self.topics.name_slot(name)?;
        if let Some(slot) = self.topics.get_mut(h)
            && matches!(slot.reg, Reg::None | Reg::Failed)
        {
            slot.reg = if slot.id.is_some() {
                Reg::Done
            } else {
                Reg::Wanted
            };
            if slot.reg == Reg::Done {
                // The gateway registered it already: report it like a REGACK.
                let topic_id = slot.id.unwrap_or(0);
                self.emit(ClientEvent::Registered { topic: h, topic_id });
            }
        }
        self.advance(now);
        Ok(h)
    }

    /// Subscribes (now if connected, else after the next CONNACK, and again after every new
    /// session). For a topic name the SUBACK's topic id is remembered, so messages on it arrive
    /// as [`MessageTopic::Topic`] with this handle.
    pub fn subscribe(
        &mut self,
        now: Instant,
        topic: SubTopic<'_>,
        qos: QoS,
    ) -> Result<TopicHandle, CommandError> {
        if qos == QoS::MinusOne {
            return Err(CommandError::QosNotAllowed);
        }
        let h = match topic {
            SubTopic::Name(name) if valid_name(name, true) => self.topics.name_slot(name)?,
            SubTopic::Name(_) => return Err(CommandError::InvalidTopic),
            SubTopic::Predefined(id) => match self.topics.find_kind(Kind::Predefined(id)) {
                Some(h) => h,
                None => self.topics.insert("", Kind::Predefined(id))?,
            },
            SubTopic::Short(s) => match self.topics.find_kind(Kind::Short(s)) {
                Some(h) => h,
                None => self.topics.insert("", Kind::Short(s))?,
            },
        };
        if let Some(slot) = self.topics.get_mut(h) {
            slot.sub = Sub::Wanted(qos);
        }
        self.advance(now);
        Ok(h)
    }

    /// Ends a subscription (UNSUBSCRIBE when connected; otherwise it is just forgotten).
    pub fn unsubscribe(&mut self, now: Instant, topic: TopicHandle) -> Result<(), CommandError> {
        let connected = self.state.is_connected();
        let slot = self
            .topics
            .get_mut(topic)
            .ok_or(CommandError::UnknownTopic)?;
        slot.sub = match slot.sub {
            Sub::Done(_) if connected => Sub::Unwanted,
            Sub::None => return Err(CommandError::UnknownTopic),
            _ => Sub::None,
        };
        self.topics.release(topic);
        self.advance(now);
        Ok(())
    }

    /// Queues a publish. QoS 0, 1 and 2 go out in order once connected; QoS −1 goes out as
    /// soon as a gateway address is known (searching for one if needed), connected or not.
    ///
    /// The returned token comes back in [`ClientEvent::Published`] or
    /// [`ClientEvent::PublishFailed`].
    pub fn publish(
        &mut self,
        now: Instant,
        topic: PubTopic,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<PublishToken, CommandError> {
        match topic {
            PubTopic::Registered(h) => {
                if qos == QoS::MinusOne {
                    return Err(CommandError::QosNotAllowed);
                }
                let registered = self.topics.get(h).is_some_and(|s| s.reg != Reg::None);
                if !registered {
                    return Err(CommandError::UnknownTopic);
                }
            }
            PubTopic::Predefined(id) if id == 0 || id == 0xFFFF => {
                return Err(CommandError::InvalidTopic);
            }
            PubTopic::Predefined(_) | PubTopic::Short(_) => {}
        }
        // Header (7 octets, 9 in the long form) + payload must fit the radio.
        let total = payload
            .len()
            .saturating_add(if payload.len() > 248 { 9 } else { 7 });
        if total > self.cfg.max_packet {
            return Err(CommandError::TooLarge);
        }
        let payload = Vec::from_slice(payload).map_err(|_| CommandError::TooLarge)?;
        let token = PublishToken(self.next_token);
        let p = OutPublish {
            token,
            topic,
            qos,
            retain,
            payload,
            reregistered: false,
        };
        if qos == QoS::MinusOne {
            self.minus1
                .push_back(p)
                .map_err(|_| CommandError::QueueFull)?;
        } else {
            self.outbox.push(p)?;
        }
        self.next_token = self.next_token.wrapping_add(1);
        self.advance(now);
        Ok(token)
    }

    /// Asks to sleep for `duration` seconds (1..=65535): once the outbox is empty, DISCONNECT
    /// with that Duration goes out; [`ClientEvent::Asleep`] follows the gateway's answer.
    pub fn sleep(&mut self, now: Instant, duration: u16) -> Result<(), CommandError> {
        if duration == 0 {
            return Err(CommandError::InvalidState);
        }
        match self.state {
            State::Registering | State::Active | State::Connecting => {
                self.pending_sleep = Some(duration)
            }
            State::Asleep | State::Awake => {
                // DISCONNECT(d′) while asleep or awake: the gateway keeps the session asleep
                // with the new duration.
                let _ = self.outbox.finish();
                self.outbox.start(outbox::Request::Sleep(duration), 0);
            }
            _ => return Err(CommandError::InvalidState),
        }
        self.advance(now);
        Ok(())
    }

    /// Wakes up from sleep: PINGREQ(ClientId), then the gateway's buffered messages, then
    /// PINGRESP ([`ClientEvent::BackToSleep`]).
    pub fn wake(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.state != State::Asleep || !self.outbox.is_idle() {
            return Err(CommandError::InvalidState);
        }
        self.set_state(State::Awake);
        self.discovery
            .resume_supervision(now, self.cfg.timers.n_adv);
        self.outbox.start(outbox::Request::WakePing, 0);
        self.emit(ClientEvent::Awake);
        self.advance(now);
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent<PAYLOAD>> {
        self.events.pop_front()
    }

    /// Queues an event; the oldest is dropped (and counted) when the queue is full.
    fn emit(&mut self, event: ClientEvent<PAYLOAD>) {
        if let Err(event) = self.events.push_back(event) {
            let _ = self.events.pop_front();
            bump(&mut self.stats.events_dropped);
            let _ = self.events.push_back(event);
        }
    }

    fn set_state(&mut self, state: State) {
        if self.state != state {
            crate::log::debug!("state {} -> {}", self.state, state);
            self.state = state;
        }
    }
}

#[cfg(test)]
mod tests;
