//! One upstream link: the task that owns a rumqttc [`EventLoop`] for the link's whole life (a
//! new event loop would lose rumqttc's pending state) and the state it shares with the
//! connector ([`LinkShared`]: correlation and outbox).
//!
//! rumqttc makes the connection (TCP, TLS, CONNECT and CONNACK: the event loop's `poll` while
//! it has no network). Once connected, the task drives the connection itself with rumqttc's
//! protocol state ([`MqttState`]) and framing (`Network`): each turn it reads every packet
//! that has arrived and answers them, sends replays and then new requests from the outbox
//! while the inflight window has room, pings every keep-alive, and flushes once. So a burst of
//! publishes costs one write, not one per publish (rumqttc's own loop flushes after every
//! request). Commands reach the task through the outbox and a wake-up; the connector never
//! waits on the task.
//!
//! Lifecycle: optionally wait for a previous link with the same upstream ClientId to finish
//! closing → connect; run the connection; on an error: report, sleep the backoff, connect
//! again → on [`LinkCtl::Close`] either go on until `Outgoing::Disconnect` is sent (graceful,
//! bounded by the close deadline) or stop at once (the event loop is dropped without
//! DISCONNECT, so the broker publishes the Will) → report `Closed`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use rumqttc::{
    ConnectReturnCode, ConnectionError, Disconnect, Event, EventLoop, Outgoing, Packet, PingReq,
    PubAck, PubRec, PubRel, Publish, QoS, Request, StateError, Subscribe, SubscribeReasonCode,
    Unsubscribe,
};
use tokio::sync::{Notify, mpsc::UnboundedSender, watch};
use tokio::time::Instant;

use super::backoff::Backoff;
use super::correlator::{Correlator, IncomingVerdict, OutgoingPublish, Unsent};
use crate::core::upstream::{BrokerRefusal, DeliveryId, LinkId, Token, UpstreamEvent};
use crate::io::fd_limit;

/// What the connector tells a link task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkCtl {
    /// Keep the link connected.
    Run,
    /// End the link.
    Close {
        /// A DISCONNECT has been queued: keep polling until it is sent (or `deadline`).
        graceful: bool,
        /// Latest end of a graceful close.
        deadline: Instant,
    },
}

/// A command for the link, waiting in its outbox until the connection takes it.
#[derive(Debug, Clone)]
pub(crate) enum OutCmd {
    /// PUBLISH.
    Publish {
        token: Token,
        topic: String,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    },
    /// SUBSCRIBE.
    Subscribe {
        token: Token,
        filter: String,
        qos: QoS,
    },
    /// UNSUBSCRIBE.
    Unsubscribe { token: Token, filter: String },
    /// The acknowledgement of an incoming publish (QoS 1: PUBACK, QoS 2: PUBREC).
    Ack { pkid: u16, qos: QoS },
    /// DISCONNECT.
    Disconnect,
}

/// A command about held PUBRECs. Unlike an [`OutCmd`] it never waits for room in the inflight
/// window: it is handled first in every turn.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Control {
    /// Hold the PUBREC of publish `token` until `Release`.
    Hold { token: Token },
    /// Send the PUBREL of publish `token` (now, if its PUBREC is held).
    Release { token: Token },
    /// Send PUBREL for `pkid`, a publish of an earlier run; its PUBCOMP completes `token`.
    Resume { token: Token, pkid: u16 },
    /// The message released under `pkid` is forgotten: the id may be used again.
    Forget { pkid: u16 },
}

/// State shared by the connector and the link task (behind a std `Mutex`, held briefly).
#[derive(Debug, Default)]
pub(crate) struct LinkShared {
    /// Packet id ↔ token bookkeeping.
    pub(crate) corr: Correlator,
    /// Commands not yet taken by the connection, oldest first.
    pub(crate) outbox: VecDeque<OutCmd>,
    /// Control commands, handled first in every turn.
    pub(crate) control: VecDeque<Control>,
}

/// The rumqttc request for `cmd`, recorded for correlation (before rumqttc can report its
/// `Outgoing` event).
fn request(corr: &mut Correlator, cmd: OutCmd) -> Request {
    match cmd {
        OutCmd::Publish {
            token,
            topic,
            payload,
            qos,
            retain,
        } => {
            corr.push_publish(token, qos as u8);
            let mut publish = Publish::from_bytes(topic, qos, payload);
            publish.retain = retain;
            Request::Publish(publish)
        }
        OutCmd::Subscribe { token, filter, qos } => {
            corr.push_subscribe(token);
            Request::Subscribe(Subscribe::new(filter, qos))
        }
        OutCmd::Unsubscribe { token, filter } => {
            corr.push_unsubscribe(token);
            Request::Unsubscribe(Unsubscribe::new(filter))
        }
        OutCmd::Ack { pkid, qos } => {
            corr.delivery_acked(pkid, qos as u8);
            match qos {
                QoS::ExactlyOnce => Request::PubRec(PubRec::new(pkid)),
                _ => Request::PubAck(PubAck::new(pkid)),
            }
        }
        OutCmd::Disconnect => Request::Disconnect(Disconnect),
    }
}

/// Locks the shared state; a poisoned lock (a panic elsewhere) still holds consistent data.
pub(crate) fn lock(shared: &Mutex<LinkShared>) -> MutexGuard<'_, LinkShared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one poll (or a run of the connection) produced.
enum Polled {
    Event(Event),
    Error(ConnectionError),
    /// DISCONNECT was sent: the link is done.
    Done,
    /// Close without DISCONNECT (or the connector is gone).
    Abort,
    /// The graceful close deadline passed.
    Deadline,
}

/// What woke the connection's turn.
enum Woke {
    /// The control channel changed (`false`: the connector is gone).
    Ctl(bool),
    /// A packet arrived (or reading failed).
    Read(Result<Packet, StateError>),
    /// Commands were queued.
    Commands,
    /// A keep-alive period has passed: PINGREQ.
    Ping,
    /// The graceful close deadline passed.
    Deadline,
}

/// Most packets read in one turn before the turn's replies are flushed.
const READ_BATCH: usize = 64;

/// Whether the link keeps running after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Done,
}

/// The task of one link. Built by the connector, consumed by [`LinkTask::run`].
pub(crate) struct LinkTask {
    pub(crate) link: LinkId,
    pub(crate) eventloop: EventLoop,
    pub(crate) shared: Arc<Mutex<LinkShared>>,
    /// Woken when the connector queues commands in the outbox.
    pub(crate) wake: Arc<Notify>,
    pub(crate) events: UnboundedSender<UpstreamEvent>,
    pub(crate) ctl: watch::Receiver<LinkCtl>,
    pub(crate) backoff: Backoff,
    /// Completion signal of a previous link with the same ClientId that is still closing;
    /// carries that link's incoming QoS 2 ids still awaiting PUBREL.
    pub(crate) wait_for: Option<watch::Receiver<Vec<u16>>>,
    /// Dropped when the task ends (also on abort or panic): wakes the next link's `wait_for`.
    /// Set to [`Correlator::awaiting_pubrel`] just before.
    pub(crate) done: watch::Sender<Vec<u16>>,
    /// The connector's connection permits (see `MAX_CONNECTING`).
    pub(crate) connecting: Arc<tokio::sync::Semaphore>,
    /// Packet ids of held publishes released (PUBREL sent) and not yet forgotten by the core.
    pub(crate) reserved: std::collections::BTreeSet<u16>,
    /// A publish rumqttc gave a reserved packet id: written once the id is forgotten (nothing
    /// else is taken from the outbox meanwhile, so the order holds).
    pub(crate) deferred: Option<Packet>,
    /// Failed attempts by kind, and the gateway link's last one.
    pub(crate) diagnosis: Arc<super::diagnosis::Diagnosis>,
    /// The broker's URL, for log lines.
    pub(crate) broker: Arc<str>,
    /// The link uses TLS.
    pub(crate) tls: bool,
    /// The upstream ClientId it connects under (named in log lines).
    pub(crate) client_id: String,
}

impl LinkTask {
    /// Runs the link until it is closed, then reports `Closed`.
    pub(crate) async fn run(mut self) {
        let link = self.link;
        let proceed = match self.wait_for.take() {
            Some(previous) => match wait_previous(&mut self.ctl, previous).await {
                Some(awaiting_pubrel) => {
                    lock(&self.shared)
                        .corr
                        .inherit_awaiting_pubrel(&awaiting_pubrel);
                    true
                }
                None => false,
            },
            None => true,
        };
        if proceed {
            self.poll_loop().await;
        }
        let LinkTask {
            eventloop,
            events,
            done,
            shared,
            ..
        } = self;
        done.send_replace(lock(&shared).corr.awaiting_pubrel());
        // Close the connection before telling anyone.
        drop(eventloop);
        tracing::debug!(%link, "upstream link closed");
        let _ = events.send(UpstreamEvent::Closed { link });
        drop(done);
    }

    async fn poll_loop(&mut self) {
        let mut closing: Option<Instant> = None;
        let mut connected_since: Option<Instant> = None;
        let mut permit = None;
        loop {
            let polled = if self.eventloop.network.is_some() {
                self.connected(&mut closing, &mut connected_since).await
            } else {
                // Not connected: the next poll connects; wait for a permit first.
                if permit.is_none() && closing.is_none() {
                    let acquire = self.connecting.clone().acquire_owned();
                    match unless_closed(&mut self.ctl, acquire).await {
                        Some(Ok(p)) => permit = Some(p),
                        _ => return,
                    }
                }
                poll_once(&mut self.eventloop, &mut self.ctl, &mut closing).await
            };
            match polled {
                Polled::Event(event) => {
                    if self.handle(event, &mut connected_since) == Flow::Done {
                        return;
                    }
                    if connected_since.is_some() {
                        permit = None;
                    }
                }
                Polled::Error(error) => {
                    permit = None;
                    if self.after_error(&mut connected_since) == Flow::Done || closing.is_some() {
                        return;
                    }
                    let connected_for = connected_since.take().map(|t| t.elapsed());
                    let delay = self.backoff.after_failure(connected_for);
                    self.report_error(&error, connected_for.is_some(), delay);
                    tracing::debug!(link = %self.link, ?delay, "upstream reconnect backoff");
                    if unless_closed(&mut self.ctl, tokio::time::sleep(delay))
                        .await
                        .is_none()
                    {
                        return;
                    }
                }
                Polled::Done | Polled::Abort | Polled::Deadline => return,
            }
        }
    }

    /// Drives the connection rumqttc made until it fails or the link ends: each turn sends
    /// what may go, hands the events to [`LinkTask::handle`], then waits for a packet, a
    /// command, the keep-alive or the control channel.
    async fn connected(
        &mut self,
        closing: &mut Option<Instant>,
        connected_since: &mut Option<Instant>,
    ) -> Polled {
        let keep_alive = self.eventloop.mqtt_options.keep_alive();
        let flush_timeout =
            Duration::from_secs(self.eventloop.network_options().connection_timeout());
        let ping = tokio::time::sleep(keep_alive);
        tokio::pin!(ping);
        loop {
            if let Err(e) = self.send_waiting(flush_timeout).await {
                return self.failed(e);
            }
            if self.dispatch(connected_since) == Flow::Done {
                return Polled::Done;
            }
            if (self.can_send() && self.deferred.is_none() && !lock(&self.shared).outbox.is_empty())
                || !lock(&self.shared).control.is_empty()
            {
                // Events queued commands (a QoS 2 re-ack): send them first.
                continue;
            }
            let Some(network) = self.eventloop.network.as_mut() else {
                return self.failed(StateError::ConnectionAborted.into());
            };
            let deadline = *closing;
            let woke = tokio::select! {
                biased;
                changed = self.ctl.changed() => Woke::Ctl(changed.is_ok()),
                read = network.read() => Woke::Read(read),
                () = self.wake.notified() => Woke::Commands,
                () = &mut ping, if !keep_alive.is_zero() => Woke::Ping,
                () = until(deadline), if deadline.is_some() => Woke::Deadline,
            };
            let turn = match woke {
                Woke::Ctl(false) => return Polled::Abort,
                Woke::Ctl(true) => match *self.ctl.borrow_and_update() {
                    LinkCtl::Run => Ok(()),
                    LinkCtl::Close {
                        graceful: false, ..
                    } => return Polled::Abort,
                    LinkCtl::Close {
                        graceful: true,
                        deadline,
                    } => {
                        *closing = Some(deadline);
                        Ok(())
                    }
                },
                Woke::Read(Ok(packet)) => self.incoming(packet, flush_timeout).await,
                Woke::Read(Err(e)) => Err(e.into()),
                Woke::Commands => Ok(()),
                Woke::Ping => {
                    // As rumqttc: a ping every keep-alive period, whatever else was sent.
                    ping.as_mut().reset(Instant::now() + keep_alive);
                    match self.write(Request::PingReq(PingReq)).await {
                        Ok(_) => self.flush(flush_timeout).await,
                        Err(e) => Err(e),
                    }
                }
                Woke::Deadline => return Polled::Deadline,
            };
            if let Err(e) = turn {
                return self.failed(e);
            }
        }
    }

    /// Whether the inflight window takes new requests (as rumqttc: not while full, nor while a
    /// publish waits for a packet id still in use).
    fn can_send(&self) -> bool {
        self.eventloop.state.inflight() < self.eventloop.mqtt_options.inflight()
            && self.eventloop.state.collision.is_none()
    }

    /// Sends the session's replays, then commands from the outbox while the window has room;
    /// one flush for all of them.
    async fn send_waiting(&mut self, flush_timeout: Duration) -> Result<(), ConnectionError> {
        let mut wrote = self.control().await?;
        if let Some(packet) = self.deferred.take() {
            if publish_id(&packet).is_some_and(|id| self.reserved.contains(&id)) {
                self.deferred = Some(packet);
            } else {
                self.write_packet(packet).await?;
                wrote = true;
            }
        }
        while let Some(request) = self.eventloop.pending.pop_front() {
            wrote |= self.write(request).await?;
        }
        while self.can_send() && self.deferred.is_none() {
            let request = {
                let mut guard = lock(&self.shared);
                let shared = &mut *guard;
                let Some(cmd) = shared.outbox.pop_front() else {
                    break;
                };
                request(&mut shared.corr, cmd)
            };
            wrote |= self.write(request).await?;
        }
        if wrote {
            self.flush(flush_timeout).await?;
        }
        Ok(())
    }

    /// Handles the control commands (held PUBRECs); true if anything was written.
    async fn control(&mut self) -> Result<bool, ConnectionError> {
        let mut wrote = false;
        loop {
            let (cmd, pkid) = {
                let mut guard = lock(&self.shared);
                let shared = &mut *guard;
                let Some(cmd) = shared.control.pop_front() else {
                    break;
                };
                let pkid = match &cmd {
                    Control::Hold { token } => {
                        shared.corr.hold(*token);
                        None
                    }
                    Control::Release { token } => shared.corr.release(*token),
                    Control::Resume { token, pkid } if self.resumable(*pkid) => {
                        shared.corr.resume(*token, *pkid);
                        Some(*pkid)
                    }
                    Control::Forget { pkid } => {
                        self.reserved.remove(pkid);
                        None
                    }
                    _ => None,
                };
                (cmd, pkid)
            };
            match (cmd, pkid) {
                (Control::Release { token }, Some(pkid)) => {
                    // The held PUBREC goes to rumqttc now; it answers PUBREL.
                    self.reserved.insert(pkid);
                    let pubrec = Packet::PubRec(PubRec::new(pkid));
                    if let Some(pubrel) = self.eventloop.state.handle_incoming_packet(pubrec)? {
                        self.write_packet(pubrel).await?;
                        wrote = true;
                    }
                    // The publisher may now be told the broker has it.
                    self.emit(UpstreamEvent::PublishReceived {
                        link: self.link,
                        token,
                    });
                }
                (Control::Resume { pkid, .. }, Some(_)) => {
                    self.reserved.insert(pkid);
                    wrote |= self.write(Request::PubRel(PubRel::new(pkid))).await?;
                }
                (Control::Resume { token, pkid }, None) => {
                    // rumqttc tracks packet ids up to its inflight window only.
                    tracing::error!(link = %self.link, pkid, "cannot resume a QoS 2 publish \
                        beyond the inflight window (upstream.inflight was lowered?); its PUBREL \
                        is not sent");
                    self.emit(UpstreamEvent::PublishDone {
                        link: self.link,
                        token,
                    });
                }
                _ => {}
            }
        }
        Ok(wrote)
    }

    /// Whether rumqttc's state can track a PUBREL for `pkid`.
    fn resumable(&self, pkid: u16) -> bool {
        pkid != 0 && pkid <= self.eventloop.mqtt_options.inflight()
    }

    /// Reads every packet that has arrived (up to [`READ_BATCH`]), answering each through
    /// rumqttc's state, and flushes the answers once.
    async fn incoming(
        &mut self,
        first: Packet,
        flush_timeout: Duration,
    ) -> Result<(), ConnectionError> {
        let mut next = Some(first);
        let mut read = 0;
        while let Some(packet) = next.take() {
            let held = match &packet {
                Packet::PubRec(rec) => lock(&self.shared).corr.hold_pubrec(rec.pkid),
                Packet::PubRel(rel) if !lock(&self.shared).corr.knows_incoming(rel.pkid) => {
                    // A QoS 2 message the gateway acknowledged before a restart: MQTT
                    // prescribes PUBCOMP, where rumqttc would drop the connection.
                    expect_pubrel(&mut self.eventloop, rel.pkid);
                    None
                }
                _ => None,
            };
            if let (Some(token), Packet::PubRec(rec)) = (held, &packet) {
                // Not handed to rumqttc: no PUBREL until the core's `Release`.
                self.emit(UpstreamEvent::PubrecHeld {
                    link: self.link,
                    token,
                    pkid: rec.pkid,
                });
            } else if let Some(reply) = self.eventloop.state.handle_incoming_packet(packet)? {
                self.write_packet(reply).await?;
            }
            read += 1;
            if read >= READ_BATCH {
                break;
            }
            let Some(network) = self.eventloop.network.as_mut() else {
                break;
            };
            next = match network.read().now_or_never() {
                Some(Ok(packet)) => Some(packet),
                Some(Err(e)) => return Err(e.into()),
                None => None,
            };
        }
        self.flush(flush_timeout).await
    }

    /// Hands `request` to rumqttc's state and writes the packet it yields (true if any). A
    /// publish under a reserved packet id is deferred instead.
    async fn write(&mut self, request: Request) -> Result<bool, ConnectionError> {
        match self.eventloop.state.handle_outgoing_packet(request)? {
            Some(packet) if publish_id(&packet).is_some_and(|id| self.reserved.contains(&id)) => {
                self.deferred = Some(packet);
                Ok(false)
            }
            Some(packet) => self.write_packet(packet).await.map(|()| true),
            None => Ok(false),
        }
    }

    async fn write_packet(&mut self, packet: Packet) -> Result<(), ConnectionError> {
        let Some(network) = self.eventloop.network.as_mut() else {
            return Err(StateError::ConnectionAborted.into());
        };
        Ok(network.write(packet).await?)
    }

    async fn flush(&mut self, timeout: Duration) -> Result<(), ConnectionError> {
        let Some(network) = self.eventloop.network.as_mut() else {
            return Err(StateError::ConnectionAborted.into());
        };
        match tokio::time::timeout(timeout, network.flush()).await {
            Ok(done) => Ok(done?),
            Err(_) => Err(ConnectionError::FlushTimeout),
        }
    }

    /// Hands the events rumqttc's state produced to [`LinkTask::handle`].
    fn dispatch(&mut self, connected_since: &mut Option<Instant>) -> Flow {
        while let Some(event) = self.eventloop.state.events.pop_front() {
            if self.handle(event, connected_since) == Flow::Done {
                return Flow::Done;
            }
        }
        Flow::Continue
    }

    /// The connection failed: as rumqttc does, un-acked requests move to `pending`, to be
    /// sent again if the session resumes, and the network is dropped.
    fn failed(&mut self, error: ConnectionError) -> Polled {
        // A deferred publish is in rumqttc's state: `clean` puts it among the replays.
        self.deferred = None;
        self.eventloop.clean();
        Polled::Error(error)
    }

    fn emit(&self, event: UpstreamEvent) {
        // The receiver is gone only when the gateway is shutting down.
        let _ = self.events.send(event);
    }

    /// Reports a failed attempt (or a lost connection, `was_up`): counted by kind, logged, and
    /// for the gateway's own link kept with the time of the next attempt, `delay` from now.
    fn report_error(&self, error: &ConnectionError, was_up: bool, delay: Duration) {
        let link = self.link;
        let failure = super::diagnosis::classify(error, self.tls, was_up);
        self.diagnosis.count(failure);
        if link == LinkId::GATEWAY {
            let now = std::time::SystemTime::now();
            let detail = error.to_string();
            tracing::warn!(broker = %self.broker, reason = failure.label(), %detail,
                retry_in = ?delay, hint = failure.hint(), "upstream broker: {}", failure.words());
            self.diagnosis.set_last(super::diagnosis::LastFailure {
                failure,
                detail,
                at: now,
                retry_at: now + delay,
            });
        }
        match error {
            ConnectionError::ConnectionRefused(code) => {
                let Some(refusal) = refusal(*code) else {
                    return;
                };
                tracing::warn!(%link, client_id = %self.client_id, ?refusal,
                    "upstream broker refused the connection");
                self.emit(UpstreamEvent::Refused { link, refusal });
            }
            other => {
                let reason = other.to_string();
                tracing::info!(%link, client_id = %self.client_id, %reason, "upstream link down");
                if fd_limit::is_exhausted(other) {
                    fd_limit::warn_exhausted("opening an upstream connection", other);
                }
                self.emit(UpstreamEvent::LinkDown { link, reason });
            }
        }
    }

    /// After a poll error: handle the events rumqttc had buffered before failing, then tell the
    /// correlator which requests sit unsent in rumqttc's `pending` queue.
    fn after_error(&mut self, connected_since: &mut Option<Instant>) -> Flow {
        let stale: Vec<Event> = self.eventloop.state.events.drain(..).collect();
        for event in stale {
            if self.handle(event, connected_since) == Flow::Done {
                return Flow::Done;
            }
        }
        let mut unsent = Unsent::default();
        for request in &self.eventloop.pending {
            match request {
                Request::Publish(p) if p.pkid == 0 => unsent.publishes += 1,
                Request::Subscribe(_) => unsent.subscribes += 1,
                Request::Unsubscribe(_) => unsent.unsubscribes += 1,
                _ => {}
            }
        }
        lock(&self.shared).corr.connection_lost(unsent);
        Flow::Continue
    }

    /// Turns one rumqttc event into core events, then retries the outbox.
    fn handle(&mut self, event: Event, connected_since: &mut Option<Instant>) -> Flow {
        let link = self.link;
        let mut out: Vec<UpstreamEvent> = Vec::new();
        let mut flow = Flow::Continue;
        {
            let mut guard = lock(&self.shared);
            let shared = &mut *guard;
            let corr = &mut shared.corr;
            match event {
                Event::Incoming(Packet::ConnAck(ack)) => {
                    *connected_since = Some(Instant::now());
                    if link == LinkId::GATEWAY {
                        self.diagnosis.clear_last();
                    }
                    let lost = corr.connack(ack.session_present);
                    if !ack.session_present {
                        // A new broker session: no id of the old one means anything.
                        self.reserved.clear();
                    }
                    if ack.session_present {
                        for pkid in corr.awaiting_pubrel() {
                            expect_pubrel(&mut self.eventloop, pkid);
                        }
                    } else {
                        // A publish held back by an id collision is reported lost; rumqttc
                        // would otherwise send it into the new session on an ack that never
                        // comes.
                        self.eventloop.state.collision = None;
                    }
                    tracing::info!(%link, client_id = %self.client_id,
                        session_present = ack.session_present,
                        lost = lost.len(), "upstream link up");
                    out.push(UpstreamEvent::LinkUp {
                        link,
                        session_present: ack.session_present,
                        lost,
                    });
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let qos = super::from_rumqttc(p.qos);
                    match corr.incoming_publish(p.pkid, qos.level()) {
                        IncomingVerdict::Deliver => out.push(UpstreamEvent::Message {
                            link,
                            delivery: DeliveryId { pkid: p.pkid, qos },
                            topic: p.topic,
                            payload: p.payload,
                            qos,
                            retain: p.retain,
                        }),
                        IncomingVerdict::Duplicate => {
                            tracing::debug!(%link, pkid = p.pkid, "QoS 2 duplicate dropped");
                        }
                        IncomingVerdict::DuplicateReack => {
                            tracing::debug!(%link, pkid = p.pkid, "QoS 2 duplicate re-acked");
                            shared.outbox.push_back(OutCmd::Ack {
                                pkid: p.pkid,
                                qos: p.qos,
                            });
                        }
                    }
                }
                Event::Incoming(Packet::PubAck(ack)) => {
                    if let Some(token) = corr.puback(ack.pkid) {
                        out.push(UpstreamEvent::PublishDone { link, token });
                    }
                }
                Event::Incoming(Packet::PubRec(rec)) => {
                    if let Some(token) = corr.pubrec(rec.pkid) {
                        out.push(UpstreamEvent::PublishReceived { link, token });
                    }
                }
                Event::Incoming(Packet::PubComp(comp)) => {
                    if let Some(token) = corr.pubcomp(comp.pkid) {
                        out.push(UpstreamEvent::PublishDone { link, token });
                    }
                }
                Event::Incoming(Packet::PubRel(rel)) => corr.incoming_pubrel(rel.pkid),
                Event::Incoming(Packet::SubAck(ack)) => {
                    if let Some(token) = corr.suback(ack.pkid) {
                        let granted = match ack.return_codes.first() {
                            Some(SubscribeReasonCode::Success(qos)) => {
                                Some(super::from_rumqttc(*qos))
                            }
                            _ => None,
                        };
                        out.push(UpstreamEvent::SubAck {
                            link,
                            token,
                            granted,
                        });
                    }
                }
                Event::Incoming(Packet::UnsubAck(ack)) => {
                    if let Some(token) = corr.unsuback(ack.pkid) {
                        out.push(UpstreamEvent::UnsubAck { link, token });
                    }
                }
                Event::Outgoing(Outgoing::Publish(pkid)) => {
                    let matched = corr.outgoing_publish(pkid) != OutgoingPublish::Unknown;
                    warn_unmatched(link, "publish", pkid, matched);
                }
                Event::Outgoing(Outgoing::AwaitAck(pkid)) => corr.await_ack(pkid),
                Event::Outgoing(Outgoing::Subscribe(pkid)) => {
                    let matched = corr.outgoing_subscribe(pkid).is_some();
                    warn_unmatched(link, "subscribe", pkid, matched);
                }
                Event::Outgoing(Outgoing::Unsubscribe(pkid)) => {
                    let matched = corr.outgoing_unsubscribe(pkid).is_some();
                    warn_unmatched(link, "unsubscribe", pkid, matched);
                }
                Event::Outgoing(Outgoing::PubRec(pkid)) => corr.outgoing_pubrec(pkid),
                Event::Outgoing(Outgoing::Disconnect) => flow = Flow::Done,
                _ => {}
            }
        }
        for event in out {
            self.emit(event);
        }
        flow
    }
}

/// One `poll()`, watching the control channel without cancelling the poll on a graceful close
/// (it goes on under the close deadline).
async fn poll_once(
    eventloop: &mut EventLoop,
    ctl: &mut watch::Receiver<LinkCtl>,
    closing: &mut Option<Instant>,
) -> Polled {
    let poll = eventloop.poll();
    tokio::pin!(poll);
    loop {
        if let Some(deadline) = *closing {
            return match tokio::time::timeout_at(deadline, &mut poll).await {
                Ok(Ok(event)) => Polled::Event(event),
                Ok(Err(error)) => Polled::Error(error),
                Err(_) => Polled::Deadline,
            };
        }
        tokio::select! {
            result = &mut poll => {
                return match result {
                    Ok(event) => Polled::Event(event),
                    Err(error) => Polled::Error(error),
                };
            }
            changed = ctl.changed() => {
                if changed.is_err() {
                    return Polled::Abort;
                }
                match *ctl.borrow_and_update() {
                    LinkCtl::Run => {}
                    LinkCtl::Close { graceful: false, .. } => return Polled::Abort,
                    LinkCtl::Close { graceful: true, deadline } => *closing = Some(deadline),
                }
            }
        }
    }
}

/// The packet id of a QoS 1/2 PUBLISH.
fn publish_id(packet: &Packet) -> Option<u16> {
    match packet {
        Packet::Publish(p) if p.pkid != 0 => Some(p.pkid),
        _ => None,
    }
}

/// Sleeps until `at` (for ever without one).
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs `work` unless a close arrives first: `None` (stop) then. Used where the link has no
/// connection (waiting for a connection permit, sleeping the backoff), so a graceful close
/// ends the link at once too.
async fn unless_closed<T>(
    ctl: &mut watch::Receiver<LinkCtl>,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            changed = ctl.changed() => {
                if changed.is_err() || *ctl.borrow_and_update() != LinkCtl::Run {
                    return None;
                }
            }
        }
    }
}

/// Waits until the previous link with the same ClientId has ended and returns its incoming
/// QoS 2 ids awaiting PUBREL; `None` if this link is closed meanwhile.
async fn wait_previous(
    ctl: &mut watch::Receiver<LinkCtl>,
    mut previous: watch::Receiver<Vec<u16>>,
) -> Option<Vec<u16>> {
    loop {
        tokio::select! {
            changed = previous.changed() => {
                if changed.is_err() {
                    // The sender is gone; its last value stays readable.
                    return Some(previous.borrow().clone());
                }
            }
            changed = ctl.changed() => {
                if changed.is_err() || *ctl.borrow_and_update() != LinkCtl::Run {
                    return None;
                }
            }
        }
    }
}

/// Makes rumqttc accept a PUBREL for `pkid` on the new connection: its state forgets incoming
/// QoS 2 ids on every disconnect and would treat the broker's re-sent PUBREL as unsolicited,
/// drop the connection, and loop like that forever (upstream issue #664). Feeding its state a
/// stand-in PUBLISH registers the id (manual acks: nothing is sent); the event that produces
/// is removed again.
fn expect_pubrel(eventloop: &mut EventLoop, pkid: u16) {
    let before = eventloop.state.events.len();
    let mut stand_in = Publish::new("", QoS::ExactlyOnce, Vec::new());
    stand_in.pkid = pkid;
    if let Err(error) = eventloop
        .state
        .handle_incoming_packet(Packet::Publish(stand_in))
    {
        tracing::warn!(pkid, %error, "could not re-register an incoming QoS 2 id");
    }
    eventloop.state.events.truncate(before);
}

/// An outgoing request rumqttc reported that no submitted request matches: bookkeeping is off.
fn warn_unmatched(link: LinkId, what: &str, pkid: u16, matched: bool) {
    if !matched {
        tracing::warn!(%link, pkid, "outgoing {what} without a matching request");
    }
}

fn refusal(code: ConnectReturnCode) -> Option<BrokerRefusal> {
    Some(match code {
        ConnectReturnCode::Success => return None,
        ConnectReturnCode::RefusedProtocolVersion => BrokerRefusal::UnacceptableProtocolVersion,
        ConnectReturnCode::BadClientId => BrokerRefusal::IdentifierRejected,
        ConnectReturnCode::ServiceUnavailable => BrokerRefusal::ServerUnavailable,
        ConnectReturnCode::BadUserNamePassword => BrokerRefusal::BadCredentials,
        ConnectReturnCode::NotAuthorized => BrokerRefusal::NotAuthorized,
    })
}
