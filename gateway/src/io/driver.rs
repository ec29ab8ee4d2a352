//! The drive loop: owns the core, feeds it datagrams, upstream events and timeouts, and drains
//! its outputs after every input (architecture.md §4.2).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sn_codec::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::udp::Listener;
use super::upstream::UpstreamConnector;
use crate::core::addr::{ListenerId, PeerAddr};
use crate::core::event::{Destination, GatewayEvent};
use crate::core::upstream::UpstreamEvent;
use crate::core::{ClientInfo, Gateway};

/// Largest datagram received or sent.
const MAX_DATAGRAM: usize = 65_535 + 512;

/// Counters of what the gateway did, for tests, status and metrics.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Datagrams received, by listener socket kind.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams that could not be sent.
    pub send_errors: u64,
    /// Drops by reason label.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Messages retransmitted to clients.
    pub retransmissions: u64,
    /// Whether the gateway's own upstream link is up.
    pub upstream_up: bool,
    /// The clients, refreshed after every input.
    pub clients: Vec<ClientInfo>,
}

/// A shared view of the running gateway.
#[derive(Debug, Clone, Default)]
pub struct GatewayHandle {
    stats: Arc<Mutex<Stats>>,
}

impl GatewayHandle {
    /// A copy of the current counters.
    pub fn stats(&self) -> Stats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut Stats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }
}

/// One received datagram.
struct Datagram {
    listener: ListenerId,
    from: SocketAddr,
    bytes: Vec<u8>,
}

/// Spawns one receive task per socket; they feed the driver through `tx`.
fn spawn_receivers(listeners: &[Listener], tx: mpsc::Sender<Datagram>, cancel: &CancellationToken) {
    for (i, l) in listeners.iter().enumerate() {
        let listener = ListenerId(u8::try_from(i).unwrap_or(u8::MAX));
        let sockets = std::iter::once(l.unicast.clone()).chain(l.multicast.clone());
        for socket in sockets {
            let (tx, cancel) = (tx.clone(), cancel.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                loop {
                    let received = tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = socket.recv_from(&mut buf) => r,
                    };
                    match received {
                        Ok((n, from)) => {
                            let bytes = buf.get(..n).unwrap_or_default().to_vec();
                            if tx
                                .send(Datagram {
                                    listener,
                                    from,
                                    bytes,
                                })
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        // ICMP errors (port unreachable) surface here on Linux; keep going.
                        Err(e) => debug!(error = %e, "udp receive error"),
                    }
                }
            });
        }
    }
}

/// Runs the core until `cancel` fires; then shuts it down gracefully.
pub(crate) async fn drive<C: UpstreamConnector>(
    mut core: Gateway,
    listeners: Vec<Listener>,
    connector: &mut C,
    mut upstream_rx: mpsc::UnboundedReceiver<UpstreamEvent>,
    cancel: CancellationToken,
    handle: GatewayHandle,
) {
    let start = tokio::time::Instant::now();
    let now =
        || Instant::from_millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let (tx, mut rx) = mpsc::channel::<Datagram>(4096);
    let recv_cancel = cancel.child_token();
    spawn_receivers(&listeners, tx, &recv_cancel);
    let mut out = vec![0u8; MAX_DATAGRAM];
    drain(&mut core, &listeners, connector, &mut out, &handle).await;
    loop {
        let deadline = core
            .poll_timeout()
            .map(|at| start + Duration::from_millis(at.as_millis()));
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(d) = rx.recv() => {
                handle.update(|s| s.datagrams_in += 1);
                let peer = PeerAddr::Udp { listener: d.listener, addr: d.from };
                core.handle_datagram(now(), peer, &d.bytes);
            }
            Some(e) = upstream_rx.recv() => core.handle_upstream(now(), e),
            _ = sleep => core.handle_timeout(now()),
        }
        drain(&mut core, &listeners, connector, &mut out, &handle).await;
    }
    recv_cancel.cancel();
    core.handle_shutdown(now());
    drain(&mut core, &listeners, connector, &mut out, &handle).await;
}

/// Drains the core's outputs: datagrams, upstream commands, events.
async fn drain<C: UpstreamConnector>(
    core: &mut Gateway,
    listeners: &[Listener],
    connector: &mut C,
    buf: &mut [u8],
    handle: &GatewayHandle,
) {
    let mut sent = 0u64;
    let mut errors = 0u64;
    while let Some(t) = core.poll_transmit(buf) {
        let bytes = buf.get(..t.len).unwrap_or_default();
        let result = match t.to {
            Destination::Unicast { listener, addr } => match listeners.get(usize::from(listener.0))
            {
                Some(l) => send(l, bytes, addr).await,
                None => Ok(()),
            },
            Destination::Multicast { listener, ttl } => {
                let mut r = Ok(());
                for (i, l) in listeners.iter().enumerate() {
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
            Ok(()) => sent += 1,
            Err(e) => {
                errors += 1;
                debug!(error = %e, "udp send failed");
            }
        }
    }
    while let Some(cmd) = core.poll_upstream() {
        connector.execute(cmd);
    }
    let mut events = Vec::new();
    while let Some(e) = core.poll_event() {
        events.push(e);
    }
    let clients = core.clients();
    let upstream_up = core.upstream_up();
    handle.update(|s| {
        s.datagrams_out += sent;
        s.send_errors += errors;
        s.upstream_up = upstream_up;
        for e in &events {
            match e {
                GatewayEvent::Dropped { reason, .. } => {
                    *s.dropped.entry(reason.label()).or_default() += 1
                }
                GatewayEvent::Retransmitted { .. } => s.retransmissions += 1,
                _ => {}
            }
        }
        s.clients = clients;
    });
    for e in events {
        log_event(&e);
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

fn log_event(e: &GatewayEvent) {
    match e {
        GatewayEvent::ClientConnected { client_id, peer } => {
            info!(client_id, addr = %peer, "client connected")
        }
        GatewayEvent::ConnectRefused {
            client_id,
            peer,
            code,
        } => {
            warn!(client_id, addr = %peer, code, "connect refused")
        }
        GatewayEvent::ClientAsleep {
            client_id,
            duration,
        } => info!(client_id, duration, "client asleep"),
        GatewayEvent::ClientAwake {
            client_id,
            buffered,
        } => info!(client_id, buffered, "client awake"),
        GatewayEvent::ClientDisconnected { client_id } => info!(client_id, "client disconnected"),
        GatewayEvent::ClientLost { client_id, reason } => warn!(client_id, ?reason, "client lost"),
        GatewayEvent::ClientMoved {
            client_id,
            from,
            to,
        } => info!(client_id, %from, %to, "client moved"),
        // Peer misbehaviour is logged at debug level only: it must not flood the journal.
        GatewayEvent::Dropped { peer, reason } => {
            debug!(addr = ?peer.as_ref().map(ToString::to_string), %reason, "dropped")
        }
        GatewayEvent::Retransmitted {
            client_id,
            msg_type,
        } => debug!(client_id, %msg_type, "retransmitted"),
        GatewayEvent::UpstreamHealth { up } => info!(up, "upstream health"),
    }
}
