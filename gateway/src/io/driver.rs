//! The drive loop: owns the core, feeds it datagrams, upstream events and timeouts, and drains
//! its outputs after every input, as the core's calling contract requires
//! (`docs/architecture.md`, "The shell").

use super::upstream::diagnosis::UpstreamReport;
use std::net::SocketAddr;
use std::time::Duration;

use sn_codec::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::log_events::LogLimiter;
use super::udp::Listener;
use super::upstream::UpstreamConnector;
use crate::core::addr::{ListenerId, PeerAddr};
use crate::core::event::{Destination, GatewayEvent};
use crate::core::upstream::UpstreamEvent;
use crate::core::{ClientInfo, Gateway};

/// Largest datagram received or sent.
const MAX_DATAGRAM: usize = 65_535 + 512;

/// What the running gateway looks like right now, without the client list: counters, gauges,
/// the upstream state. Cheap to take however many clients there are (for `/healthz` and
/// `/metrics`, which are polled).
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Datagrams received on all sockets.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams that could not be sent.
    pub send_errors: u64,
    /// The core's counters (packets by type, publishes by QoS and direction, drops by reason,
    /// retransmissions, upstream connects and disconnects).
    pub core: crate::core::stats::Stats,
    /// Sessions by state, buffered messages, links.
    pub gauges: crate::core::stats::Gauges,
    /// Whether the gateway's own upstream link is up.
    pub upstream_up: bool,
    /// When the status was taken, on the clock of [`ClientInfo::last_seen`] (time since the
    /// gateway started).
    pub now: Instant,
    /// How long the pairing window stays open (`None`: closed).
    pub pairing: Option<Duration>,
    /// Clients in the running registry (paired ones included).
    pub registered_clients: usize,
    /// The state database (`None`: no store, everything in memory).
    pub storage: Option<StorageStatus>,
    /// The broker, failed connection attempts by kind, and why the gateway's own link is down.
    pub upstream: UpstreamReport,
    /// How motes reach the broker.
    pub upstream_mode: crate::core::config::UpstreamMode,
}

/// The state database's counters, as `/metrics` and `/healthz` show them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageStatus {
    /// Transactions committed (one fsync each).
    pub commits: u64,
    /// Records written or deleted.
    pub records: u64,
    /// Batches that failed to commit.
    pub failures: u64,
    /// The last batch failed (disk full, read-only) and nothing was committed since.
    pub failing: bool,
    /// Size of the database and its write-ahead log.
    pub bytes: u64,
}

impl StorageStatus {
    /// The counters of `writer` and the size of its files.
    fn of(writer: &super::store::Writer) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let st = writer.stats();
        StorageStatus {
            commits: st.commits.load(Relaxed),
            records: st.records.load(Relaxed),
            failures: st.failures.load(Relaxed),
            failing: st.failing.load(Relaxed),
            bytes: super::store::disk_bytes(writer.path()),
        }
    }
}

/// The [`Status`] and every client the gateway knows (for the status page and the client
/// list of the admin API).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Counters, gauges and the upstream state.
    pub status: Status,
    /// Every client the gateway knows.
    pub clients: Vec<ClientInfo>,
}

/// A request to the running driver.
#[derive(Debug)]
pub(crate) enum Control {
    /// Send back a fresh status (no client list).
    Status(tokio::sync::oneshot::Sender<Status>),
    /// Send back a fresh snapshot (the status and the client list).
    Snapshot(tokio::sync::oneshot::Sender<Snapshot>),
    /// Open the pairing window for this long; answers how long it stays open.
    OpenPairing(Duration, tokio::sync::oneshot::Sender<Duration>),
    /// Replace the client registry, predefined topics, credentials and TLS identities
    /// (SIGHUP).
    Reload(Box<crate::core::config::GatewayConfig>),
}

/// A handle on the running gateway, for status pages, metrics and tests.
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    control: mpsc::Sender<Control>,
}

impl GatewayHandle {
    pub(crate) fn new() -> (Self, mpsc::Receiver<Control>) {
        let (control, rx) = mpsc::channel(64);
        (GatewayHandle { control }, rx)
    }

    /// A fresh status (counters, gauges, upstream state; no client list); `None` once the
    /// gateway has stopped.
    pub async fn status(&self) -> Option<Status> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control.send(Control::Status(tx)).await.ok()?;
        rx.await.ok()
    }

    /// A fresh snapshot: the status and every client (one entry per session, built on each
    /// call; ask for [`GatewayHandle::status`] when the clients are not needed). `None` once
    /// the gateway has stopped.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control.send(Control::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Opens the pairing window: unknown clients that connect within `duration` are admitted
    /// and appended to the registry file. Returns how long the window stays open; `None` once
    /// the gateway has stopped.
    pub async fn open_pairing(&self, duration: Duration) -> Option<Duration> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control
            .send(Control::OpenPairing(duration, tx))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Replaces the client registry, predefined topics, credentials and per-client TLS
    /// identities without dropping sessions (what SIGHUP does); upstream links opened after it
    /// use the new credentials and identities. `false` once the gateway has stopped.
    pub async fn reload(&self, config: crate::core::config::GatewayConfig) -> bool {
        self.control
            .send(Control::Reload(Box::new(config)))
            .await
            .is_ok()
    }
}

/// Counters the shell itself keeps.
#[derive(Debug, Default)]
struct IoCounters {
    datagrams_in: u64,
    datagrams_out: u64,
    send_errors: u64,
}

/// Datagrams read from one socket before the drive loop looks at its other inputs again.
const RECV_BATCH: usize = 64;

/// Upstream events handled before the drive loop looks at its other inputs again.
const UPSTREAM_BATCH: usize = 64;

/// One socket the drive loop receives on, and the listener it belongs to.
struct Receiver {
    listener: ListenerId,
    socket: std::sync::Arc<tokio::net::UdpSocket>,
}

/// Every socket of every listener (the unicast one, then the multicast one if any).
fn receivers(listeners: &[Listener]) -> Vec<Receiver> {
    let mut out = Vec::new();
    for (i, l) in listeners.iter().enumerate() {
        let listener = ListenerId(u8::try_from(i).unwrap_or(u8::MAX));
        for socket in std::iter::once(l.unicast.clone()).chain(l.multicast.clone()) {
            out.push(Receiver { listener, socket });
        }
    }
    out
}

/// Waits until one of the sockets has a datagram; returns its index.
async fn readable(receivers: &[Receiver]) -> usize {
    std::future::poll_fn(|cx| {
        for (i, r) in receivers.iter().enumerate() {
            if r.socket.poll_recv_ready(cx).is_ready() {
                return std::task::Poll::Ready(i);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The files the drive loop writes to, off the loop.
#[derive(Debug, Default)]
pub(crate) struct Stores {
    /// Where paired clients are appended (`None`: pairing is not saved).
    pub(crate) registry_file: Option<std::path::PathBuf>,
    /// The state database's writer (`None`: no store).
    pub(crate) state: Option<super::store::Writer>,
    /// Where the writer reports custody messages made durable.
    pub(crate) durable: Option<mpsc::UnboundedReceiver<super::store::StoreReport>>,
}

/// The outcome of writing a paired client to the registry file: its ClientId, and why the
/// write failed (`None`: saved).
type PairingResult = (String, Option<String>);

/// What the drive loop owns besides the core: sockets, the upstream connector, buffers,
/// counters, and the registry writes in progress.
struct Driver<'c, C: UpstreamConnector> {
    listeners: Vec<Listener>,
    connector: &'c mut C,
    /// Encoding buffer for outgoing datagrams.
    out: Vec<u8>,
    counters: IoCounters,
    /// Where paired clients are appended (`None`: pairing is not saved).
    registry_file: Option<std::path::PathBuf>,
    /// The state database's writer (`None`: no store).
    state: Option<super::store::Writer>,
    /// Registry writes report back here (they run on blocking threads, off the loop).
    pairing_done: mpsc::UnboundedSender<PairingResult>,
    /// Keeps floods of per-datagram events out of the journal.
    log: LogLimiter,
}

/// Runs the core until `cancel` fires; then shuts it down gracefully.
pub(crate) async fn drive<C: UpstreamConnector>(
    mut core: Gateway,
    listeners: Vec<Listener>,
    connector: &mut C,
    mut upstream_rx: mpsc::UnboundedReceiver<UpstreamEvent>,
    cancel: CancellationToken,
    mut control: mpsc::Receiver<Control>,
    stores: Stores,
) {
    let start = tokio::time::Instant::now();
    let now =
        || Instant::from_millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let receivers = receivers(&listeners);
    let mut inbuf = vec![0u8; MAX_DATAGRAM];
    let (pairing_done, mut pairing_rx) = mpsc::unbounded_channel();
    let has_durable = stores.durable.is_some();
    let mut durable_rx = stores
        .durable
        .unwrap_or_else(|| mpsc::unbounded_channel().1);
    let mut d = Driver {
        listeners,
        connector,
        out: vec![0u8; MAX_DATAGRAM],
        counters: IoCounters::default(),
        registry_file: stores.registry_file,
        state: stores.state,
        pairing_done,
        log: LogLimiter::default(),
    };
    d.drain(&mut core).await;
    let timer = tokio::time::sleep_until(start);
    tokio::pin!(timer);
    let watchdog_period = super::notify::watchdog_period();
    let mut watchdog = tokio::time::interval(watchdog_period.unwrap_or(Duration::from_secs(3600)));
    loop {
        let deadline = core
            .poll_timeout()
            .map(|at| start + Duration::from_millis(at.as_millis()));
        // One timer for the whole loop, moved only when the core's deadline moves (registering
        // a new one on every wake costs more than the datagram it serves).
        if let Some(d) = deadline
            && d != timer.deadline()
        {
            timer.as_mut().reset(d);
        }
        // Order matters under a flood: timers, the watchdog and operator requests come before
        // more datagrams, so that a busy socket cannot starve them.
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = &mut timer, if deadline.is_some() => core.handle_timeout(now()),
            _ = watchdog.tick(), if watchdog_period.is_some() => super::notify::watchdog(),
            Some(c) = control.recv() => d.control(&mut core, c, now()),
            Some((client_id, error)) = pairing_rx.recv() => {
                if let Some(error) = &error {
                    warn!(client_id, error = %error, "the paired client could not be saved to the registry file; it is refused until the file can be written");
                }
                core.pairing_saved(now(), &client_id, error.is_none());
            }
            Some(report) = durable_rx.recv(), if has_durable => match report {
                super::store::StoreReport::Durable(upto) => core.handle_durable(now(), upto),
                super::store::StoreReport::Committed(n) => core.handle_store_committed(now(), n),
                super::store::StoreReport::Failing => core.handle_store_failing(now(), true),
                super::store::StoreReport::Recovered => core.handle_store_failing(now(), false),
            },
            Some(e) = upstream_rx.recv() => {
                core.handle_upstream(now(), e);
                // More events that are already waiting, each drained as the core requires.
                for _ in 1..UPSTREAM_BATCH {
                    d.drain(&mut core).await;
                    match upstream_rx.try_recv() {
                        Ok(e) => core.handle_upstream(now(), e),
                        Err(_) => break,
                    }
                }
            }
            i = readable(&receivers) => {
                let Some(r) = receivers.get(i) else { continue };
                // Read what the socket holds (up to a batch) into one reused buffer.
                let mut drained = false;
                for _ in 0..RECV_BATCH {
                    match r.socket.try_recv_from(&mut inbuf) {
                        Ok((n, from)) => {
                            d.counters.datagrams_in += 1;
                            let peer = PeerAddr::Udp { listener: r.listener, addr: from };
                            core.handle_datagram(now(), peer, inbuf.get(..n).unwrap_or_default());
                            d.drain(&mut core).await;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            drained = true;
                            break;
                        }
                        // ICMP errors (port unreachable) surface here on Linux; keep going.
                        Err(e) => debug!(error = %e, "udp receive error"),
                    }
                }
                // A socket still full after a whole batch: let the HTTP endpoint and the
                // upstream links run before the next one (on this single-threaded runtime an
                // always readable socket would starve them). A drained socket waits anyway.
                if !drained {
                    tokio::task::yield_now().await;
                }
            }
        }
        d.drain(&mut core).await;
    }
    core.handle_shutdown(now());
    d.drain(&mut core).await;
    // What the state database still has to write is committed before the gateway exits.
    if let Some(writer) = d.state.take() {
        let _ = tokio::task::spawn_blocking(move || writer.close()).await;
    }
}

fn status(
    core: &Gateway,
    io: &IoCounters,
    store: Option<&super::store::Writer>,
    upstream: UpstreamReport,
    now: Instant,
) -> Status {
    Status {
        upstream,
        upstream_mode: core.config().upstream.mode,
        datagrams_in: io.datagrams_in,
        datagrams_out: io.datagrams_out,
        send_errors: io.send_errors,
        core: core.stats().clone(),
        gauges: core.gauges(now),
        upstream_up: core.upstream_up(),
        now,
        pairing: core
            .pairing_until(now)
            .map(|until| until.saturating_duration_since(now)),
        registered_clients: core.config().clients.registry.len(),
        storage: store.map(StorageStatus::of),
    }
}

impl<C: UpstreamConnector> Driver<'_, C> {
    /// Answers a request from a [`GatewayHandle`].
    fn control(&mut self, core: &mut Gateway, c: Control, now: Instant) {
        match c {
            Control::Status(reply) => {
                let upstream = self.connector.report();
                let _ = reply.send(status(
                    core,
                    &self.counters,
                    self.state.as_ref(),
                    upstream,
                    now,
                ));
            }
            Control::Snapshot(reply) => {
                let upstream = self.connector.report();
                let _ = reply.send(Snapshot {
                    status: status(core, &self.counters, self.state.as_ref(), upstream, now),
                    clients: core.clients(),
                });
            }
            Control::OpenPairing(duration, reply) => {
                core.open_pairing(now, duration);
                info!(seconds = duration.as_secs(), "pairing window open");
                let left = core
                    .pairing_until(now)
                    .map(|u| u.saturating_duration_since(now));
                let _ = reply.send(left.unwrap_or_default());
            }
            Control::Reload(config) => {
                core.reload(&config);
                self.connector.reload();
                info!(
                    clients = config.clients.registry.len(),
                    "client registry and predefined topics reloaded"
                );
            }
        }
    }

    /// Drains the core's outputs: datagrams, upstream commands, state records, events.
    async fn drain(&mut self, core: &mut Gateway) {
        while let Some(t) = core.poll_transmit(&mut self.out) {
            let bytes = self.out.get(..t.len).unwrap_or_default();
            let result = match t.to {
                Destination::Unicast { listener, addr } => {
                    match self.listeners.get(usize::from(listener.0)) {
                        Some(l) => send(l, bytes, addr).await,
                        None => Ok(()),
                    }
                }
                Destination::Multicast { listener, ttl } => {
                    let mut r = Ok(());
                    for (i, l) in self.listeners.iter().enumerate() {
                        if listener.is_some_and(|want| usize::from(want.0) != i) {
                            continue;
                        }
                        if let Some(group) = &l.group {
                            let _ = l.set_multicast_ttl(ttl.unwrap_or(group.ttl));
                            r = r.and(send(l, bytes, group.group).await);
                        }
                    }
                    r
                }
            };
            match result {
                Ok(()) => self.counters.datagrams_out += 1,
                Err(e) => {
                    self.counters.send_errors += 1;
                    debug!(error = %e, "udp send failed");
                }
            }
        }
        while let Some(cmd) = core.poll_upstream() {
            self.connector.execute(cmd);
        }
        while let Some(cmd) = core.poll_store() {
            if let Some(w) = &self.state {
                w.send(cmd);
            }
        }
        while let Some(e) = core.poll_event() {
            self.log.log(&e);
            if let GatewayEvent::ClientPaired { client_id, peer } = &e {
                self.save_paired(client_id, peer);
            }
        }
    }

    /// Appends a paired client to the registry file on a blocking thread (the file is
    /// flushed to disk, which may take a while on an SD card); the core hears the outcome
    /// through `pairing_done`. Without a registry file the pairing is not saved, and the
    /// client is admitted at once.
    fn save_paired(&self, client_id: &str, peer: &PeerAddr) {
        let done = self.pairing_done.clone();
        let client_id = client_id.to_owned();
        let Some(path) = self.registry_file.clone() else {
            let _ = done.send((client_id, None));
            return;
        };
        let note = format!("paired from {peer}");
        tokio::task::spawn_blocking(move || {
            let error = crate::config::registry::append_client(&path, &client_id, &note)
                .err()
                .map(|e| format!("cannot write {}: {e}", path.display()));
            let _ = done.send((client_id, error));
        });
    }
}

async fn send(l: &Listener, bytes: &[u8], to: SocketAddr) -> std::io::Result<()> {
    match l.unicast.try_send_to(bytes, to) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            l.unicast.send_to(bytes, to).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}
