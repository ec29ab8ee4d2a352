//! One simulated mote: a [`Sensor`] driven over a UDP socket by the drive loop of the sans-IO
//! contract, with its events turned into log lines (demo) and counters (swarm).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant as TokioInstant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::net::Heard;
use super::report::MoteSummary;
use super::serial::{Outbound, SERIAL_PEER};
use crate::app::{Command, Sensor, SensorEvent};
use crate::client::{ClientEvent, Destination, PublishToken, State};
use crate::sn_codec::{Instant, QoS};

/// Payload capacity of a simulated mote (`--payload` is limited to it).
pub const SIM_PAYLOAD: usize = 512;

/// The simulated mote type: socket addresses, 8 topics, 8 queued publishes, 512-octet payloads.
pub type SimSensor = Sensor<SocketAddr, 8, 8, SIM_PAYLOAD>;

/// Counters shared by all motes, for progress lines while a swarm runs.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) sent: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// What every mote task shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    /// The simulation clock's epoch: mote time is milliseconds since then.
    pub(crate) epoch: TokioInstant,
    pub(crate) cancel: CancellationToken,
    pub(crate) progress: Arc<Progress>,
    /// Where SEARCHGW broadcasts go (the multicast group), if discovery is on.
    pub(crate) broadcast_to: Option<SocketAddr>,
    /// Log every event at info level (demo) rather than only problems.
    pub(crate) chatty: bool,
    /// Longest wait for the gateway's DISCONNECT after a stop.
    pub(crate) linger: Duration,
}

impl Shared {
    pub(crate) fn now(&self) -> Instant {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        Instant::from_millis(ms)
    }

    fn deadline(&self, t: Instant) -> TokioInstant {
        self.epoch + Duration::from_millis(t.as_millis())
    }
}

/// Per-mote bookkeeping while it runs.
struct Tracker {
    summary: MoteSummary,
    /// Readings in flight: token and when the reading was taken.
    in_flight: VecDeque<(PublishToken, Instant, u32)>,
}

impl Tracker {
    fn on_event(&mut self, now: Instant, e: &SensorEvent<SIM_PAYLOAD>, shared: &Shared) {
        let chatty = shared.chatty;
        match e {
            SensorEvent::Reading { seq, token, sample } => {
                self.summary.sent += 1;
                shared.progress.sent.fetch_add(1, Ordering::Relaxed);
                if self.in_flight.len() >= 64 {
                    self.in_flight.pop_front();
                }
                self.in_flight.push_back((*token, now, *seq));
                if chatty {
                    info!("reading #{seq}: {sample}");
                }
            }
            SensorEvent::ReadingDropped { seq, error } => {
                self.summary.sent += 1;
                self.summary.failed += 1;
                shared.progress.sent.fetch_add(1, Ordering::Relaxed);
                shared.progress.failed.fetch_add(1, Ordering::Relaxed);
                warn!("reading #{seq} dropped: {error}");
            }
            SensorEvent::Command(c) => {
                self.summary.commands += 1;
                match c {
                    Command::Led(on) => info!("command: LED {}", if *on { "on" } else { "off" }),
                    Command::Interval(d) => info!("command: reporting every {} s", d.as_secs()),
                }
            }
            SensorEvent::CommandRejected => {
                warn!("ignored a message on the command topic that is not a command")
            }
            SensorEvent::Finished => {
                if chatty {
                    info!("finished");
                }
            }
            SensorEvent::Client(c) => self.on_client_event(now, c, shared),
        }
    }

    fn take_in_flight(&mut self, token: PublishToken) -> Option<(Instant, u32)> {
        let pos = self.in_flight.iter().position(|(t, ..)| *t == token)?;
        self.in_flight.remove(pos).map(|(_, at, seq)| (at, seq))
    }

    fn on_client_event(&mut self, now: Instant, e: &ClientEvent<SIM_PAYLOAD>, shared: &Shared) {
        let chatty = shared.chatty;
        match e {
            ClientEvent::Published {
                token,
                qos,
                retries,
            } => {
                let Some((at, seq)) = self.take_in_flight(*token) else {
                    return;
                };
                self.summary.completed += 1;
                shared.progress.completed.fetch_add(1, Ordering::Relaxed);
                if *retries > 0 {
                    self.summary.retried += 1;
                }
                let ms = now.as_millis().saturating_sub(at.as_millis());
                if *qos >= QoS::One {
                    self.summary.latencies_ms.push(ms);
                }
                if chatty {
                    match qos {
                        QoS::One | QoS::Two => {
                            info!(
                                "reading #{seq} acknowledged (QoS {qos}, {ms} ms, {retries} retransmissions)"
                            )
                        }
                        _ => info!("reading #{seq} sent (QoS {qos})"),
                    }
                }
            }
            ClientEvent::PublishFailed { token, reason } => {
                if let Some((_, seq)) = self.take_in_flight(*token) {
                    self.summary.failed += 1;
                    shared.progress.failed.fetch_add(1, Ordering::Relaxed);
                    warn!("reading #{seq} failed: {reason:?}");
                }
            }
            ClientEvent::Connected { .. } => self.summary.connects += 1,
            ClientEvent::GatewayLost { .. } => self.summary.gateway_losses += 1,
            ClientEvent::Registered { topic_id, .. } if chatty => {
                info!("registered the reading topic as id {topic_id}")
            }
            ClientEvent::Subscribed { qos, .. } if chatty => {
                info!("subscribed to the command topic (QoS {qos})")
            }
            ClientEvent::SubscribeRejected { code, .. } => {
                warn!("command topic subscription rejected: {code}")
            }
            ClientEvent::RegisterRejected { code, .. } => {
                warn!("reading topic registration rejected: {code}")
            }
            ClientEvent::Awake if chatty => info!("awake: fetching buffered messages"),
            ClientEvent::BackToSleep => {
                self.summary.wake_ups += 1;
                if chatty {
                    info!("all buffered messages received");
                }
            }
            _ => {}
        }
    }
}

/// How a mote reaches the network.
pub(crate) enum Link {
    /// Its own UDP socket.
    Udp(UdpSocket),
    /// A serial line shared through the hub ([`super::serial`]).
    Serial {
        /// This mote's number on the line.
        index: usize,
        /// To the hub.
        out: mpsc::Sender<Outbound>,
        /// From the hub.
        inbound: mpsc::Receiver<Vec<u8>>,
    },
}

impl Link {
    /// The next datagram and its sender (`None` on a transient error or a closed line).
    async fn recv(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, Vec<u8>)> {
        match self {
            Link::Udp(sock) => match sock.recv_from(buf).await {
                Ok((n, from)) => Some((from, buf.get(..n).unwrap_or_default().to_vec())),
                // ICMP port unreachable from a gateway that is down surfaces here: ignore.
                Err(e) => {
                    tracing::debug!("receive error: {e}");
                    None
                }
            },
            Link::Serial { inbound, .. } => match inbound.recv().await {
                Some(m) => Some((SERIAL_PEER, m)),
                None => std::future::pending().await,
            },
        }
    }

    async fn send(&self, to: Destination<SocketAddr>, bytes: &[u8], shared: &Shared) {
        match self {
            Link::Udp(sock) => {
                let to = match to {
                    Destination::Gateway(a) => a,
                    Destination::Broadcast { .. } => match shared.broadcast_to {
                        Some(g) => g,
                        None => return,
                    },
                };
                if let Err(e) = sock.send_to(bytes, to).await {
                    tracing::debug!("send to {to} failed: {e}");
                }
            }
            Link::Serial { index, out, .. } => {
                let broadcast = matches!(to, Destination::Broadcast { .. });
                let msg = Outbound {
                    mote: *index,
                    broadcast,
                    message: bytes.to_vec(),
                };
                let _ = out.send(msg).await;
            }
        }
    }
}

/// Sends everything the sensor has to send.
async fn flush(sensor: &mut SimSensor, link: &Link, shared: &Shared, buf: &mut [u8]) {
    let now = shared.now();
    while let Some(t) = sensor.poll_transmit(now, buf) {
        if let Some(bytes) = buf.get(..t.len) {
            link.send(t.to, bytes, shared).await;
        }
    }
}

/// The next datagram heard on the multicast group (pending forever without one).
async fn heard(rx: &mut Option<broadcast::Receiver<Heard>>) -> Option<Heard> {
    let Some(r) = rx else {
        return std::future::pending().await;
    };
    loop {
        match r.recv().await {
            Ok(h) => return Some(h),
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => {
                *rx = None;
                return None;
            }
        }
    }
}

/// Drives one mote until it finishes, or until the run is cancelled and its session closed (at
/// most `shared.linger` later).
pub(crate) async fn run(
    mut sensor: Box<SimSensor>,
    mut link: Link,
    mut group: Option<broadcast::Receiver<Heard>>,
    shared: Shared,
) -> MoteSummary {
    let client_id = sensor.client().config().client_id.to_string();
    let mut t = Tracker {
        summary: MoteSummary {
            client_id,
            ..MoteSummary::default()
        },
        in_flight: VecDeque::new(),
    };
    let mut buf = vec![0u8; 2048];
    let mut rbuf = vec![0u8; 2048];
    let mut stop_by: Option<TokioInstant> = None;
    loop {
        flush(&mut sensor, &link, &shared, &mut buf).await;
        let now = shared.now();
        while let Some(e) = sensor.poll_event() {
            t.on_event(now, &e, &shared);
        }
        if sensor.is_finished() {
            break;
        }
        let wake = sensor.poll_timeout().map(|d| shared.deadline(d));
        tokio::select! {
            biased;
            () = shared.cancel.cancelled(), if stop_by.is_none() => {
                stop_by = Some(TokioInstant::now() + shared.linger);
                sensor.stop(shared.now());
            }
            () = tokio::time::sleep_until(stop_by.unwrap_or_else(TokioInstant::now)), if stop_by.is_some() => break,
            r = link.recv(&mut rbuf) => {
                if let Some((from, bytes)) = r {
                    sensor.handle_datagram(shared.now(), from, &bytes);
                }
            }
            h = heard(&mut group) => {
                if let Some(h) = h {
                    sensor.handle_datagram(shared.now(), h.0, &h.1);
                }
            }
            () = tokio::time::sleep_until(wake.unwrap_or_else(TokioInstant::now)), if wake.is_some() => {
                sensor.handle_timeout(shared.now());
            }
        }
    }
    let stats = sensor.client().stats();
    t.summary.retransmissions = u64::from(stats.retransmissions);
    t.summary.malformed = u64::from(stats.malformed);
    t.summary.led = sensor.led();
    t.summary.interval = sensor.interval();
    t.summary.clean_exit = sensor.is_finished() && sensor.client().state() == State::Disconnected;
    t.summary
}
