//! The host shell of `mote-sim` (feature `std`): many [`crate::app::Sensor`]s, each on its own
//! UDP socket and tokio task, talking to a real gateway; optionally a subscriber at the broker
//! that checks what arrived. [`run`] is the whole simulation as a library call, so integration
//! tests run it in-process; [`cli`] is the command line of the binary.
//!
//! Each mote's clock is the time since the run started (one epoch for all motes), its seed is
//! `seed + index`, and SEARCHGW goes to the multicast group while one shared listener on the
//! group relays ADVERTISE, GWINFO and other motes' SEARCHGW to every mote (the radio broadcast
//! medium). Stopping (cancel token, `--duration`, Ctrl-C) makes every mote disconnect
//! gracefully, waiting at most `linger` for the gateway's DISCONNECT.
//!
//! File descriptors: one socket per mote. `ulimit -n` must exceed the number of motes (plus a
//! few dozen); the error message says so when it does not.

mod broker;
pub mod cli;
mod mote;
mod net;
mod report;
pub mod serial;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::broadcast;
use tokio::time::Instant as TokioInstant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use mote::{SIM_PAYLOAD, SimSensor};
pub use report::{BrokerReport, MoteSummary, Percentiles, Report};

use crate::app::{SensorConfig, SleepCycle};
use crate::client::{ClientConfig, Timers, Will};
use crate::sn_codec::QoS;

/// How the motes reach the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Directly over UDP.
    Udp(UdpNetwork),
    /// Through a forwarder's serial port.
    Serial(SerialNetwork),
}

/// The serial path: the line the forwarder listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialNetwork {
    /// Serial device or pseudo-terminal path.
    pub path: String,
    /// Baud rate (irrelevant on a pseudo-terminal).
    pub baud: u32,
    /// The forwarder's framing for this line.
    pub framing: serial::Framing,
    /// Find the gateway with SEARCHGW through the forwarder (otherwise assume it, GwId
    /// `gateway_id`).
    pub discovery: bool,
    /// GwId assumed without discovery.
    pub gateway_id: u8,
}

/// Direct UDP to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpNetwork {
    /// The gateway's address, known in advance (no discovery).
    pub gateway: Option<SocketAddr>,
    /// GwId assumed for `gateway`.
    pub gateway_id: u8,
    /// Discovery: the multicast group (SEARCHGW goes there; ADVERTISE and GWINFO come from
    /// there) and the interface to use.
    pub search: Option<(SocketAddrV4, Ipv4Addr)>,
    /// Local address the motes' sockets bind to (port 0).
    pub bind: IpAddr,
    /// SEARCHGW radius, also the multicast TTL.
    pub radius: u8,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Network.
    pub network: Network,
    /// Number of motes.
    pub motes: usize,
    /// ClientIds are this prefix plus the mote number (1-based, zero-padded to a common width).
    pub client_prefix: String,
    /// Sensor behaviour shared by all motes (its `sleep` is replaced per mote, see below).
    pub sensor: SensorConfig,
    /// Sleep cycle of the sleeping motes.
    pub sleep_cycle: Option<SleepCycle>,
    /// How many motes (the last ones) use `sleep_cycle`.
    pub sleepers: usize,
    /// Each mote registers a Will `<prefix>/<id>/status` = `offline`.
    pub will: bool,
    /// CONNECT keep-alive, seconds.
    pub keep_alive: u16,
    /// Protocol timers.
    pub timers: Timers,
    /// Stop after this long (None: until cancelled or every mote finished).
    pub duration: Option<Duration>,
    /// Spread mote start-ups over this long.
    pub ramp: Duration,
    /// Seed of mote 0 (mote i uses seed + i).
    pub seed: u64,
    /// `(url, filter)` of a subscriber at the broker.
    pub broker: Option<(String, String)>,
    /// Log every mote event at info level (demo).
    pub chatty: bool,
    /// Print progress lines to stderr every few seconds (swarm).
    pub progress: bool,
    /// Longest wait for the gateway's DISCONNECT when stopping.
    pub linger: Duration,
}

impl SimConfig {
    /// The ClientId of mote `i` (0-based).
    pub fn client_id(&self, i: usize) -> String {
        let width = self.motes.to_string().len();
        format!("{}{:0width$}", self.client_prefix, i + 1)
    }

    fn mote(&self, i: usize) -> Result<(ClientConfig<SocketAddr, SIM_PAYLOAD>, SensorConfig)> {
        let id = self.client_id(i);
        let mut c = ClientConfig::new(&id).map_err(|e| anyhow::anyhow!("client id {id:?}: {e}"))?;
        match &self.network {
            Network::Udp(n) => {
                c.gateway = n.gateway.map(|a| (a, n.gateway_id));
                c.search_radius = n.radius;
            }
            Network::Serial(n) => {
                c.gateway = (!n.discovery).then_some((serial::SERIAL_PEER, n.gateway_id));
            }
        }
        c.keep_alive = self.keep_alive;
        c.timers = self.timers;
        if self.will {
            let topic = format!("{}/{id}/status", self.sensor.topic_prefix);
            c.will = Some(
                Will::new(&topic, b"offline", QoS::One, false)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
        }
        let mut s = self.sensor.clone();
        s.sleep = if i >= self.motes.saturating_sub(self.sleepers) {
            self.sleep_cycle
        } else {
            None
        };
        Ok((c, s))
    }
}

/// Opens the serial line, starts its hub, and returns one link per mote.
fn serial_links(
    n: &SerialNetwork,
    motes: usize,
    cancel: CancellationToken,
) -> Result<Vec<mote::Link>> {
    use tokio_serial::SerialPortBuilderExt;
    let port = tokio_serial::new(&n.path, n.baud)
        .open_native_async()
        .with_context(|| format!("open the serial line {}", n.path))?;
    let (out_tx, out_rx) = tokio::sync::mpsc::channel(1024);
    let mut inbound = Vec::with_capacity(motes);
    let mut links = Vec::with_capacity(motes);
    for index in 0..motes {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        inbound.push(tx);
        links.push(mote::Link::Serial {
            index,
            out: out_tx.clone(),
            inbound: rx,
        });
    }
    tokio::spawn(serial::Hub::new(n.framing, inbound).run(port, out_rx, cancel));
    Ok(links)
}

/// Runs the motes until `cancel` fires, `duration` passes, or every mote finished; then stops
/// them gracefully and reports.
pub async fn run(cfg: SimConfig, cancel: CancellationToken) -> Result<Report> {
    match &cfg.network {
        Network::Udp(n) if n.gateway.is_none() && n.search.is_none() => {
            bail!("give the gateway address (--gateway) or a discovery group (--search)");
        }
        Network::Serial(n) if !n.framing.is_shared() && cfg.motes > 1 => {
            bail!(
                "framing {:?} carries one mote per serial line; use slip-addressed or xbee",
                n.framing
            );
        }
        _ => {}
    }
    if cfg.sensor.payload_size > SIM_PAYLOAD {
        bail!(
            "payload size {} exceeds the simulator's {SIM_PAYLOAD}-octet limit",
            cfg.sensor.payload_size
        );
    }
    // Fail early on a configuration every mote would reject.
    if cfg.motes > 0 {
        let (c, s) = cfg.mote(0)?;
        // Built and dropped without logging: only the mote tasks speak.
        let probe = tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
            SimSensor::new(c, s, crate::sn_codec::Instant::ZERO, 0).map(drop)
        });
        probe.map_err(|e| anyhow::anyhow!("mote configuration: {e}"))?;
    }
    let epoch = TokioInstant::now();
    let watch = match &cfg.broker {
        Some((url, filter)) => Some(broker::BrokerWatch::start(url, filter, epoch).await?),
        None => None,
    };
    let udp = match &cfg.network {
        Network::Udp(n) => Some(n.clone()),
        Network::Serial(_) => None,
    };
    let search = udp.as_ref().and_then(|n| n.search);
    let progress = Arc::new(mote::Progress::default());
    let shared = mote::Shared {
        epoch,
        cancel: cancel.clone(),
        progress: progress.clone(),
        broadcast_to: search.map(|(g, _)| SocketAddr::V4(g)),
        chatty: cfg.chatty,
        linger: cfg.linger,
    };
    let group_tx = match search {
        Some((group, iface)) => {
            let sock = net::group_listener(group, iface)
                .with_context(|| format!("listen on the discovery group {group}"))?;
            let (tx, _) = broadcast::channel(4096);
            tokio::spawn(net::fan_out(sock, tx.clone()));
            Some(tx)
        }
        None => None,
    };
    let iface = search.map(|(_, i)| i);
    let mut serial_links = match &cfg.network {
        Network::Serial(n) => serial_links(n, cfg.motes, cancel.clone())?,
        Network::Udp(_) => Vec::new(),
    }
    .into_iter();
    let mut tasks = Vec::with_capacity(cfg.motes);
    for i in 0..cfg.motes {
        let link = match &udp {
            Some(n) => {
                let sock = net::mote_socket(n.bind, iface, u32::from(n.radius.max(1)));
                mote::Link::Udp(sock.with_context(|| {
                    format!(
                        "socket for mote {} (one UDP socket per mote: is `ulimit -n` above {}?)",
                        i + 1,
                        cfg.motes + 64
                    )
                })?)
            }
            None => serial_links.next().context("serial link")?,
        };
        let (c, s) = cfg.mote(i)?;
        let group = group_tx.as_ref().map(broadcast::Sender::subscribe);
        let shared = shared.clone();
        let offset = if cfg.motes > 1 {
            cfg.ramp.mul_f64(i as f64 / cfg.motes as f64)
        } else {
            Duration::ZERO
        };
        let seed = cfg.seed.wrapping_add(i as u64);
        let span = tracing::info_span!("mote", id = %c.client_id);
        tasks.push(tokio::spawn(
            async move {
                let id = c.client_id.to_string();
                tokio::select! {
                    () = shared.cancel.cancelled() => return MoteSummary { client_id: id, clean_exit: true, ..MoteSummary::default() },
                    () = tokio::time::sleep(offset) => {}
                }
                match SimSensor::new(c, s, shared.now(), seed) {
                    Ok(sensor) => mote::run(Box::new(sensor), link, group, shared).await,
                    Err(e) => {
                        tracing::error!("cannot start: {e}");
                        MoteSummary { client_id: id, ..MoteSummary::default() }
                    }
                }
            }
            .instrument(span),
        ));
    }
    if let Some(d) = cfg.duration {
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(epoch + d).await;
            c.cancel();
        });
    }
    if cfg.progress {
        let (c, p) = (cancel.clone(), progress.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tokio::select! {
                    () = c.cancelled() => return,
                    _ = tick.tick() => eprintln!(
                        "[{:>5.1} s] readings {} completed {} failed {}",
                        epoch.elapsed().as_secs_f64(),
                        p.sent.load(Ordering::Relaxed),
                        p.completed.load(Ordering::Relaxed),
                        p.failed.load(Ordering::Relaxed)
                    ),
                }
            }
        });
    }
    // The run's length is measured up to the stop, not including the graceful shutdown.
    let stopped_ms = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    {
        let (c, at) = (cancel.clone(), stopped_ms.clone());
        tokio::spawn(async move {
            c.cancelled().await;
            let ms = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            at.store(ms, Ordering::Relaxed);
        });
    }
    let mut summaries = Vec::with_capacity(tasks.len());
    for t in tasks {
        summaries.push(t.await.unwrap_or_default());
    }
    let elapsed = epoch
        .elapsed()
        .min(Duration::from_millis(stopped_ms.load(Ordering::Relaxed)));
    cancel.cancel();
    let broker = match watch {
        Some(w) => Some(w.finish(Duration::from_millis(500)).await),
        None => None,
    };
    Ok(Report::from_motes(
        cfg.sensor.qos.level(),
        elapsed,
        summaries,
        broker,
    ))
}
