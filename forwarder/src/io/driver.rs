//! The drive loop: owns the core, feeds it gateway datagrams, radio items and timeouts, and
//! drains its outputs after every input, as the core's calling contract requires
//! (`docs/architecture.md`, "The shell").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sn_codec::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::stats::ForwarderHandle;
use super::udp::{self, MAX_DATAGRAM};
use crate::core::wnid::hex;
use crate::core::{Forwarder, ForwarderEvent, NodeAddr, PortId, RadioDest, Transmit};
use crate::radio::{RadioItem, RadioOut};

/// Drop warnings of one kind are logged at most this often (the rest at debug level).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Longest period of the counter summary (a year).
const MAX_REPORT_PERIOD: Duration = Duration::from_secs(365 * 24 * 3600);

/// What the receive and port tasks feed the driver.
#[derive(Debug)]
pub(crate) enum Input {
    /// A datagram on the gateway socket or the discovery group.
    Gateway {
        /// Its source.
        from: SocketAddr,
        /// Its octets.
        bytes: Vec<u8>,
    },
    /// Something a radio port decoded.
    Radio {
        /// The port.
        port: PortId,
        /// The item.
        item: RadioItem,
    },
}

/// How the driver reaches one radio port.
#[derive(Debug)]
pub(crate) enum PortSink {
    /// A serial port task.
    Serial(mpsc::Sender<RadioOut>),
    /// A UDP radio socket.
    Udp {
        /// The socket.
        socket: Arc<UdpSocket>,
        /// Where broadcasts go; `None` = every known node of the port.
        broadcast: Option<SocketAddr>,
    },
}

/// The drive loop's state.
pub(crate) struct Driver {
    pub(crate) core: Forwarder,
    pub(crate) gateway_socket: Arc<UdpSocket>,
    pub(crate) group: Option<SocketAddr>,
    pub(crate) ports: Vec<PortSink>,
    pub(crate) handle: ForwarderHandle,
    pub(crate) stats_interval: Option<Duration>,
    last_warn: BTreeMap<&'static str, tokio::time::Instant>,
    start: tokio::time::Instant,
}

impl Driver {
    pub(crate) fn new(
        core: Forwarder,
        gateway_socket: Arc<UdpSocket>,
        group: Option<SocketAddr>,
        ports: Vec<PortSink>,
        handle: ForwarderHandle,
        stats_interval: Option<Duration>,
    ) -> Self {
        Driver {
            core,
            gateway_socket,
            group,
            ports,
            handle,
            stats_interval,
            last_warn: BTreeMap::new(),
            start: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Runs until `cancel` fires.
    pub(crate) async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        cancel: CancellationToken,
    ) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut report = self.stats_interval.filter(|d| !d.is_zero()).map(|period| {
            // Clamped so that `now + period` cannot overflow the clock.
            let period = period.min(MAX_REPORT_PERIOD);
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        self.drain(&mut buf).await;
        loop {
            let deadline = self
                .core
                .poll_timeout()
                .map(|at| self.start + Duration::from_millis(at.as_millis()));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(input) = inputs.recv() => self.input(input),
                _ = sleep => {
                    let now = self.now();
                    self.core.handle_timeout(now);
                }
                _ = tick(&mut report) => info!(stats = %self.handle.stats(), "counters"),
            }
            self.drain(&mut buf).await;
        }
        info!(stats = %self.handle.stats(), "forwarder stopped");
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::Gateway { from, bytes } => {
                self.handle.update(|s| s.from_gateway += 1);
                self.core.handle_gateway_datagram(now, from, &bytes);
            }
            Input::Radio { port, item } => {
                let index = usize::from(port.0);
                match item {
                    RadioItem::Frame { node, message } => {
                        self.handle.update_port(index, |p| p.frames_in += 1);
                        debug!(port = index, %node, len = message.len(), "frame from node");
                        self.core.handle_radio_frame(now, port, &node, &message);
                    }
                    RadioItem::Dropped(kind) => {
                        self.handle.update(|s| {
                            s.drop(kind.label());
                            if let Some(p) = s.port(index) {
                                *p.frame_errors.entry(kind.label()).or_default() += 1;
                            }
                        });
                        self.warn_limited(kind.label(), index, "damaged frame dropped");
                    }
                    RadioItem::TxStatus(o) if !o.delivered => {
                        self.handle.update(|s| {
                            s.drop("tx_status_failure");
                            if let Some(p) = s.port(index) {
                                p.tx_failures += 1;
                            }
                        });
                        let node = o.node.map(|n| hex(&n)).unwrap_or_default();
                        if self.may_warn("tx_status_failure") {
                            warn!(port = index, %node, frame_id = o.frame_id, status = ?o.status, "radio could not deliver a frame");
                        } else {
                            debug!(port = index, %node, frame_id = o.frame_id, status = ?o.status, "radio could not deliver a frame");
                        }
                    }
                    RadioItem::TxStatus(o) => {
                        debug!(port = index, frame_id = o.frame_id, "delivered");
                    }
                    RadioItem::Ignored { frame_type } => {
                        debug!(port = index, frame_type, "radio frame ignored");
                    }
                }
            }
        }
    }

    fn may_warn(&mut self, key: &'static str) -> bool {
        let now = tokio::time::Instant::now();
        match self.last_warn.get(key) {
            Some(last) if now.duration_since(*last) < WARN_EVERY => false,
            _ => {
                self.last_warn.insert(key, now);
                true
            }
        }
    }

    fn warn_limited(&mut self, kind: &'static str, port: usize, what: &str) {
        if self.may_warn(kind) {
            warn!(port, kind, "{what}");
        } else {
            debug!(port, kind, "{what}");
        }
    }

    async fn drain(&mut self, buf: &mut [u8]) {
        while let Some(t) = self.core.poll_transmit(buf) {
            match t {
                Transmit::ToGateway { to, len } => {
                    let bytes = buf.get(..len).unwrap_or_default();
                    self.gateway_send(bytes, to).await;
                }
                Transmit::ToDiscoveryGroup { len } => {
                    if let Some(group) = self.group {
                        let bytes = buf.get(..len).unwrap_or_default();
                        self.gateway_send(bytes, group).await;
                    }
                }
                Transmit::ToRadio { port, to, len } => {
                    let bytes = Bytes::copy_from_slice(buf.get(..len).unwrap_or_default());
                    self.radio_send(port, to, bytes).await;
                }
            }
        }
        while let Some(e) = self.core.poll_event() {
            self.event(e);
        }
        let nodes = self.core.node_count();
        let gateway = self.core.gateway();
        self.handle.update(|s| {
            s.nodes = nodes;
            s.gateway = gateway;
        });
    }

    async fn gateway_send(&mut self, bytes: &[u8], to: SocketAddr) {
        match udp::send(&self.gateway_socket, bytes, to).await {
            Ok(()) => self.handle.update(|s| s.to_gateway += 1),
            Err(e) => {
                self.handle.update(|s| s.send_errors += 1);
                if self.may_warn("gateway_send") {
                    warn!(%to, error = %e, "cannot send to the gateway");
                }
            }
        }
    }

    async fn radio_send(&mut self, port: PortId, to: RadioDest, message: Bytes) {
        let index = usize::from(port.0);
        if let Some(PortSink::Serial(tx)) = self.ports.get(index) {
            let sent = tx.try_send(RadioOut { to, message });
            if sent.is_err() {
                self.handle.update(|s| s.drop("port_down"));
            }
            return;
        }
        match self.ports.get(index) {
            Some(PortSink::Serial(_)) | None => {}
            Some(PortSink::Udp { socket, broadcast }) => {
                let targets: Vec<SocketAddr> = match (&to, broadcast) {
                    (RadioDest::Unicast(NodeAddr::Udp(addr)), _) => vec![*addr],
                    (RadioDest::Unicast(_), _) => Vec::new(),
                    (RadioDest::Broadcast { .. }, Some(b)) => vec![*b],
                    (RadioDest::Broadcast { .. }, None) => self
                        .core
                        .nodes()
                        .filter(|(_, e)| e.port == port)
                        .filter_map(|(_, e)| match e.addr {
                            NodeAddr::Udp(a) => Some(a),
                            _ => None,
                        })
                        .collect(),
                };
                let socket = socket.clone();
                for addr in targets {
                    match udp::send(&socket, &message, addr).await {
                        Ok(()) => self.handle.update_port(index, |p| p.frames_out += 1),
                        Err(e) => {
                            self.handle.update(|s| s.send_errors += 1);
                            debug!(port = index, %addr, error = %e, "udp radio send failed");
                        }
                    }
                }
            }
        }
    }

    fn event(&mut self, e: ForwarderEvent) {
        match &e {
            ForwarderEvent::Dropped { reason, port } => {
                let label = reason.label();
                self.handle.update(|s| s.drop(label));
                let port = port.map(|p| i64::from(p.0)).unwrap_or(-1);
                if self.may_warn(label) {
                    warn!(port, reason = label, "dropped");
                } else {
                    debug!(port, reason = label, "dropped");
                }
            }
            ForwarderEvent::NodeAdded { .. } | ForwarderEvent::NodeMoved { .. } => info!("{e}"),
            ForwarderEvent::NodeExpired { .. } | ForwarderEvent::NodeEvicted { .. } => info!("{e}"),
            ForwarderEvent::GatewayFound { .. } | ForwarderEvent::GatewayLost { .. } => {
                info!("{e}")
            }
            _ => debug!("{e}"),
        }
    }
}

/// The next tick of `report`, or never.
async fn tick(report: &mut Option<tokio::time::Interval>) {
    match report {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}
