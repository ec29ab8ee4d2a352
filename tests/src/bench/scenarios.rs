//! The benchmark scenarios of issue 8. Each sets up a fresh mosquitto and release gateway,
//! loads them, and returns one [`Outcome`] line.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sn_codec::{Packet, QoS};

use super::collector::{Collector, quantile};
use super::motes::{self, Mote};
use super::procs::{self, GatewayOptions, GatewayProcess, ProcUsage};
use crate::mosquitto::Mosquitto;
use crate::mqtt;

/// One result line.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Scenario name and parameters.
    pub name: String,
    /// Messages (or operations) sent.
    pub sent: u64,
    /// Distinct messages delivered / operations completed.
    pub delivered: u64,
    /// Duplicates seen.
    pub duplicates: u64,
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// Latency percentiles in microseconds: p50, p99, max.
    pub latency_us: Option<(u32, u32, u32)>,
    /// CPU and memory over the measured phase.
    pub gateway: ProcUsage,
    /// Broker CPU.
    pub broker: ProcUsage,
    /// Load generator CPU.
    pub loadgen: ProcUsage,
    /// Extra `key=value` fields.
    pub extra: Vec<(String, String)>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let pct = |u: &ProcUsage| 100.0 * u.cpu_s / secs;
        write!(
            f,
            "{} mode={} sent={} delivered={} rate={:.0}/s loss={} dups={}",
            self.name,
            super::procs::upstream_mode(),
            self.sent,
            self.delivered,
            self.delivered as f64 / secs,
            self.sent.saturating_sub(self.delivered),
            self.duplicates
        )?;
        if let Some((p50, p99, max)) = self.latency_us {
            write!(f, " p50={p50}us p99={p99}us max={max}us")?;
        }
        let per_msg = if self.delivered > 0 {
            self.gateway.cpu_s * 1e6 / self.delivered as f64
        } else {
            0.0
        };
        write!(
            f,
            " gw_cpu={:.0}% gw_us_per_msg={per_msg:.2} gw_peak_rss={:.1}MiB broker_cpu={:.0}% loadgen_cpu={:.0}%",
            pct(&self.gateway),
            self.gateway.peak_rss_kib as f64 / 1024.0,
            pct(&self.broker),
            pct(&self.loadgen),
        )?;
        if self.gateway.write_bytes > 0 && self.delivered > 0 {
            write!(
                f,
                " gw_disk_bytes_per_msg={:.1}",
                self.gateway.write_bytes as f64 / self.delivered as f64
            )?;
        }
        for (k, v) in &self.extra {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// A broker and a gateway, ready (the gateway's own status topic says `online`).
pub(super) struct Rig {
    /// The broker.
    pub(super) broker: Mosquitto,
    /// The gateway.
    pub(super) gateway: GatewayProcess,
    /// The gateway's MQTT-SN address.
    pub(super) gw_addr: std::net::SocketAddr,
}

/// What a [`Rig`]'s gateway runs with beyond the bench's defaults.
#[derive(Debug, Default)]
pub(super) struct RigOptions {
    /// The configuration file (`None`: room for the large scenarios — 20 000 clients, deep
    /// sleep buffers — and no HTTP endpoint). A registry is read from `bench-clients.toml`
    /// beside it.
    pub(super) config: Option<String>,
    /// The contents of `bench-clients.toml`, if any.
    pub(super) registry: Option<String>,
    /// The process: log, systemd watchdog, further arguments (after the predefined topics
    /// `1=bench/t` and `2=bench/fan`).
    pub(super) process: GatewayOptions,
}

impl Rig {
    async fn start() -> Result<Rig> {
        Rig::start_with(RigOptions::default()).await
    }

    /// Starts a broker and a gateway configured by `options`.
    pub(super) async fn start_with(options: RigOptions) -> Result<Rig> {
        let broker = Mosquitto::start_with(crate::MosquittoOptions {
            extra_config: vec![
                "max_queued_messages 100000".into(),
                "max_inflight_messages 100".into(),
                // Without it mosquitto's small writes to the subscriber wait for its delayed
                // ACKs (Nagle): latency tails up to 40 ms that are the broker's, not the gateway's.
                "set_tcp_nodelay true".into(),
            ],
            ..Default::default()
        })
        .await?;
        let port = crate::free_udp_port()?;
        // Room for the large scenarios: 20 000 clients, deep sleep buffers; no HTTP endpoint.
        // Every bench mote is an unregistered client on 127.0.0.1: the limits that protect a
        // real site from strangers (new sessions per address, silent clients) are lifted.
        // (A gateway older than `[limits]`, given with --gateway-bin, refuses this file; the
        // connect-flood scenario writes its own.)
        let config = broker.dir().join("bench-gateway.toml");
        std::fs::write(
            &config,
            options.config.as_deref().unwrap_or(
                "[gateway]\nmax_clients = 20000\ndownlink_queue = 64\n[http]\nlisten = \"off\"\n\
                 [clients]\nregistry = \"bench-clients.toml\"\n\
                 [limits]\nnew_sessions_per_address = { burst = 1000000, per_second = 1000000 }\n\
                 unregistered_idle_timeout = \"0s\"\n",
            ),
        )?;
        if let Some(registry) = &options.registry {
            std::fs::write(broker.dir().join("bench-clients.toml"), registry)?;
        }
        let mut process = options.process;
        let mut args: Vec<String> = [
            "--config",
            &config.to_string_lossy(),
            "--predefined",
            "1=bench/t",
            "--predefined",
            "2=bench/fan",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.append(&mut process.args);
        process.args = args;
        let gateway = GatewayProcess::start(port, &broker.url(), &process).await?;
        let mut status = mqtt::Subscriber::connect(
            &broker.url(),
            "bench-ready",
            &[("gateway/+/status", rumqttc::QoS::AtLeastOnce)],
        )
        .await?;
        let online = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(m) = status.next_message(Duration::from_secs(10)).await {
                if m.payload == b"online" {
                    return true;
                }
            }
            false
        })
        .await;
        if !matches!(online, Ok(true)) {
            let log = process
                .log_file
                .as_ref()
                .and_then(|path| std::fs::read_to_string(path).ok())
                .map(|log| format!("; its log:\n{log}"))
                .unwrap_or_default();
            bail!("the gateway did not come up within 10 s{log}");
        }
        let _ = status.disconnect().await;
        Ok(Rig {
            broker,
            gateway,
            gw_addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// CPU and memory of the gateway, the broker and this process.
    pub(super) fn usage(&self) -> Result<(ProcUsage, ProcUsage, ProcUsage)> {
        Ok((
            procs::usage(Some(self.gateway.pid))?,
            procs::usage(Some(self.broker.pid().context("broker pid")?))?,
            procs::usage(None)?,
        ))
    }

    fn collector(&self, filter: &str) -> Result<Collector> {
        Collector::start("127.0.0.1", self.broker.port(), filter)
    }

    /// Stops the gateway (the broker stops when dropped).
    pub(super) async fn stop(self) {
        self.gateway.stop().await;
    }
}

fn diff(a: ProcUsage, b: ProcUsage) -> ProcUsage {
    ProcUsage {
        cpu_s: b.cpu_s - a.cpu_s,
        peak_rss_kib: b.peak_rss_kib,
        rss_kib: b.rss_kib,
        write_bytes: b.write_bytes.saturating_sub(a.write_bytes),
        syscw: b.syscw.saturating_sub(a.syscw),
    }
}

/// Fills the CPU fields of `o` from usage before and after.
pub(super) fn account(
    o: &mut Outcome,
    before: (ProcUsage, ProcUsage, ProcUsage),
    after: (ProcUsage, ProcUsage, ProcUsage),
) {
    o.gateway = diff(before.0, after.0);
    o.broker = diff(before.1, after.1);
    o.loadgen = diff(before.2, after.2);
}

/// Open-loop publish throughput (QoS −1 or 0) from `n` motes at `rate` for `secs`.
pub async fn throughput(qos: QoS, n: usize, rate: u64, secs: u64) -> Result<Outcome> {
    let rig = Rig::start().await?;
    let motes = motes::motes(n, rig.gw_addr).await?;
    if qos == QoS::Zero {
        motes::connect_all(&motes, "bench-").await?;
    }
    let collector = rig.collector("bench/t")?;
    let total = rate * secs;
    let before = rig.usage()?;
    let start = Instant::now();
    let sent = motes::publish_open_loop(&motes, qos, 1, rate, total).await?;
    collector.wait_for(sent, Duration::from_secs(2)).await;
    let elapsed = start.elapsed();
    let after = rig.usage()?;
    let mut seen = collector.snapshot();
    let mut o = Outcome {
        name: format!("throughput qos={} motes={n} target={rate}/s", qos.level()),
        sent,
        delivered: seen.unique(),
        duplicates: seen.duplicates,
        elapsed,
        latency_us: Some(percentiles(&mut seen.latencies_us)),
        ..Default::default()
    };
    account(&mut o, before, after);
    rig.stop().await;
    Ok(o)
}

fn percentiles(v: &mut [u32]) -> (u32, u32, u32) {
    (quantile(v, 0.5), quantile(v, 0.99), quantile(v, 1.0))
}

/// Closed-loop QoS 1 or 2: `n` motes, one message in flight each, for `secs`; with
/// `kept_sessions` the motes connect with CleanSession=0 (stored sessions: a QoS 2 exchange
/// waits for its record at each step).
pub async fn reliable(qos: QoS, n: usize, secs: u64, kept_sessions: bool) -> Result<Outcome> {
    let rig = Rig::start().await?;
    let motes = motes::motes(n, rig.gw_addr).await?;
    motes::connect_all_sessions(&motes, "bench-", !kept_sessions).await?;
    let before = rig.usage()?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, m) in motes.iter().enumerate() {
        let m: Arc<Mote> = m.clone();
        tasks.spawn(async move {
            let mut rtts = Vec::new();
            let mut msg_id: u16 = 0;
            while Instant::now() < deadline {
                msg_id = msg_id.checked_add(1).unwrap_or(1);
                let seq = (i as u64) << 40 | u64::from(msg_id);
                match m.publish_reliable(qos, 1, msg_id, seq).await {
                    Ok(rtt) => rtts.push(u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX)),
                    Err(_) => break,
                }
            }
            rtts
        });
    }
    let mut rtts = Vec::new();
    while let Some(r) = tasks.join_next().await {
        rtts.extend(r?);
    }
    let elapsed = start.elapsed();
    let after = rig.usage()?;
    let done = rtts.len() as u64;
    let mut o = Outcome {
        name: format!(
            "reliable qos={} motes={n} in_flight=1{}",
            qos.level(),
            if kept_sessions {
                " clean_session=0"
            } else {
                ""
            }
        ),
        sent: done,
        delivered: done,
        elapsed,
        latency_us: Some(percentiles(&mut rtts)),
        extra: vec![("latency".into(), "ack-round-trip".into())],
        ..Default::default()
    };
    account(&mut o, before, after);
    rig.stop().await;
    Ok(o)
}

/// `n` motes CONNECT at once: time until all have CONNACK, CONNACK round-trip percentiles.
pub async fn connect_storm(n: usize) -> Result<Outcome> {
    let rig = Rig::start().await?;
    let motes = motes::motes(n, rig.gw_addr).await?;
    let before = rig.usage()?;
    let start = Instant::now();
    let rtts = motes::connect_all(&motes, "storm-").await?;
    let elapsed = start.elapsed();
    let after = rig.usage()?;
    let mut us: Vec<u32> = rtts
        .iter()
        .map(|d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX))
        .collect();
    let mut o = Outcome {
        name: format!("connect-storm motes={n}"),
        sent: n as u64,
        delivered: rtts.len() as u64,
        elapsed,
        latency_us: Some(percentiles(&mut us)),
        extra: vec![("all_connected_ms".into(), elapsed.as_millis().to_string())],
        ..Default::default()
    };
    account(&mut o, before, after);
    rig.stop().await;
    Ok(o)
}

/// Gateway memory: idle, with `n` connected motes, with `n` sleeping motes holding `buffered`
/// messages each.
pub async fn memory(n: usize, buffered: usize) -> Result<Outcome> {
    let rig = Rig::start().await?;
    let idle = procs::usage(Some(rig.gateway.pid))?.rss_kib;
    let motes = motes::motes(n, rig.gw_addr).await?;
    let start = Instant::now();
    motes::connect_all(&motes, "mem-").await?;
    let connected = procs::usage(Some(rig.gateway.pid))?.rss_kib;
    // Each mote subscribes to its own topic, then sleeps.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, m) in motes.iter().enumerate() {
        let m = m.clone();
        tasks.spawn(async move {
            m.subscribe(&format!("mem/{i}"), QoS::Zero).await?;
            let sleep = Packet::Disconnect {
                duration: Some(3600),
            };
            m.request(&sleep, |p| {
                matches!(p, Packet::Disconnect { .. }).then_some(())
            })
            .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let publisher = mqtt::connect(
        &rig.broker.url(),
        "mem-publisher",
        &mqtt::ClientOptions::default(),
    )
    .await?;
    for round in 0..buffered {
        for i in 0..n {
            publisher
                .client
                .try_publish(
                    format!("mem/{i}"),
                    rumqttc::QoS::AtMostOnce,
                    false,
                    format!("m{round}"),
                )
                .or_else(|_| Ok::<(), anyhow::Error>(()))?;
        }
    }
    let mut publisher = publisher;
    // Flush the publisher, then give the broker and gateway a bounded moment to deliver.
    let _ = publisher.next_publish(Duration::from_secs(3)).await;
    let sleeping = procs::usage(Some(rig.gateway.pid))?;
    let mut o = Outcome {
        name: format!("memory motes={n} buffered_each={buffered}"),
        sent: n as u64,
        delivered: n as u64,
        elapsed: start.elapsed(),
        extra: vec![
            (
                "idle_rss_mib".into(),
                format!("{:.1}", idle as f64 / 1024.0),
            ),
            (
                "connected_rss_mib".into(),
                format!("{:.1}", connected as f64 / 1024.0),
            ),
            (
                "sleeping_rss_mib".into(),
                format!("{:.1}", sleeping.rss_kib as f64 / 1024.0),
            ),
        ],
        ..Default::default()
    };
    o.gateway = sleeping;
    rig.stop().await;
    Ok(o)
}

/// One broker publish delivered to `n` subscribed motes.
pub async fn fan_out(n: usize) -> Result<Outcome> {
    let rig = Rig::start().await?;
    let motes = motes::motes(n, rig.gw_addr).await?;
    motes::connect_all(&motes, "fan-").await?;
    let mut subs = tokio::task::JoinSet::new();
    for m in &motes {
        let m = m.clone();
        subs.spawn(async move { m.subscribe("bench/fan", QoS::Zero).await });
    }
    while let Some(r) = subs.join_next().await {
        r??;
    }
    let before = rig.usage()?;
    let mut tasks = tokio::task::JoinSet::new();
    for m in &motes {
        let m = m.clone();
        tasks.spawn(async move {
            m.recv(Duration::from_secs(30), |p| match p {
                Packet::Publish(p) => motes::parse_payload(p.data),
                _ => None,
            })
            .await
        });
    }
    let start = Instant::now();
    mqtt::publish(
        &rig.broker.url(),
        "bench/fan",
        &motes::payload(0),
        rumqttc::QoS::AtMostOnce,
        false,
    )
    .await?;
    let mut lat = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        let (_, sent_ns) = r??;
        lat.push(u32::try_from(motes::now_ns().saturating_sub(sent_ns) / 1000).unwrap_or(u32::MAX));
    }
    let elapsed = start.elapsed();
    let after = rig.usage()?;
    let mut o = Outcome {
        name: format!("fan-out motes={n}"),
        sent: n as u64,
        delivered: lat.len() as u64,
        elapsed,
        latency_us: Some(percentiles(&mut lat)),
        extra: vec![("all_delivered_ms".into(), elapsed.as_millis().to_string())],
        ..Default::default()
    };
    account(&mut o, before, after);
    rig.stop().await;
    Ok(o)
}

/// QoS 0 from `n` motes at increasing rates for `secs` each: the highest rate without loss.
pub async fn sweep(n: usize, rates: &[u64], secs: u64) -> Result<Vec<Outcome>> {
    let mut out = Vec::new();
    for &rate in rates {
        let o = throughput(QoS::Zero, n, rate, secs).await?;
        let lossless = o.sent == o.delivered;
        out.push(o);
        if !lossless {
            break;
        }
    }
    Ok(out)
}
