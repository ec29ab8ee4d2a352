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
    pub network: UdpNetwork,
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
        c.gateway = self.network.gateway.map(|a| (a, self.network.gateway_id));
        c.search_radius = self.network.radius;
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

/// Runs the motes until `cancel` fires, `duration` passes, or every mote finished; then stops
/// them gracefully and reports.
pub async fn run(cfg: SimConfig, cancel: CancellationToken) -> Result<Report> {
    if cfg.network.gateway.is_none() && cfg.network.search.is_none() {
        bail!("give the gateway address (--gateway) or a discovery group (--search)");
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
    let progress = Arc::new(mote::Progress::default());
    let shared = mote::Shared {
        epoch,
        cancel: cancel.clone(),
        progress: progress.clone(),
        broadcast_to: cfg.network.search.map(|(g, _)| SocketAddr::V4(g)),
        chatty: cfg.chatty,
        linger: cfg.linger,
    };
    let group_tx = match cfg.network.search {
        Some((group, iface)) => {
            let sock = net::group_listener(group, iface)
                .with_context(|| format!("listen on the discovery group {group}"))?;
            let (tx, _) = broadcast::channel(4096);
            tokio::spawn(net::fan_out(sock, tx.clone()));
            Some(tx)
        }
        None => None,
    };
    let iface = cfg.network.search.map(|(_, i)| i);
    let mut tasks = Vec::with_capacity(cfg.motes);
    for i in 0..cfg.motes {
        let sock = net::mote_socket(
            cfg.network.bind,
            iface,
            u32::from(cfg.network.radius.max(1)),
        )
        .with_context(|| {
            format!(
                "socket for mote {} (one UDP socket per mote: is `ulimit -n` above {}?)",
                i + 1,
                cfg.motes + 64
            )
        })?;
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
                    Ok(sensor) => mote::run(sensor, sock, group, shared).await,
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
