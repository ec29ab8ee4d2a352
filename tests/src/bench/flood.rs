//! The CONNECT flood of issue 12 as a benchmark: one UDP port sends CONNECTs with random
//! ClientIds and keep-alive 0 at a fixed rate while paired motes publish QoS 1 readings, the
//! operator's monitoring polls `/metrics` and systemd waits for the watchdog. The result line
//! says what the flood cost each of them, and what it did to the gateway's memory, log and
//! session table.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gateway::admin_client::AdminError;
use sn_codec::{Connect, Packet, Publish, QoS, ReturnCode, TopicRef};

use super::motes::{self, Mote};
use super::procs::{self, GatewayOptions};
use super::scenarios::{Outcome, Rig, RigOptions, account};
use crate::daemon::watchdog_pings_in;
use crate::sn_client::encode;

/// T_RETRY of a paired mote: how long it waits for a PUBACK or CONNACK before sending again.
pub const MOTE_T_RETRY: Duration = Duration::from_secs(1);

/// N_RETRY of a paired mote: retransmissions of a PUBLISH before it takes its session for
/// lost and connects again.
pub const MOTE_N_RETRY: u32 = 3;

/// Keep-alive of the paired motes' sessions, seconds.
const MOTE_KEEP_ALIVE: u16 = 60;

/// Predefined topic id of the readings (the rig's `1=bench/t`).
const READINGS_TOPIC: u16 = 1;

/// How often `/metrics` is asked for during the flood (a new request waits for the previous
/// one, like a scraper that does not overlap its scrapes).
pub const METRICS_EVERY: Duration = Duration::from_millis(500);

/// How long a `/metrics` request may take before it counts as timed out.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// How long after the end of the flood memory and the session table are read.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Length of the flood's ClientIds (hex digits).
const FLOOD_ID_LEN: usize = 16;

/// What to flood with and what runs beside it.
#[derive(Debug, Clone, Copy)]
pub struct FloodParams {
    /// CONNECTs per second from the one flooding port.
    pub rate: u64,
    /// Duration of the flood.
    pub duration: Duration,
    /// Paired motes (registered ClientIds) publishing during the flood.
    pub motes: usize,
    /// Readings per second of each paired mote.
    pub publish_rate: f64,
    /// The watchdog interval the gateway is told (`WATCHDOG_USEC`); it pets every half.
    pub watchdog: Duration,
}

/// Runs the flood once: a fresh broker and gateway (HTTP endpoint on, `--log info` into a
/// file, systemd watchdog, the paired motes in the registry, default limits otherwise).
pub async fn connect_flood(p: FloodParams) -> Result<Outcome> {
    if p.rate == 0
        || p.duration.is_zero()
        || p.publish_rate.is_nan()
        || p.publish_rate <= 0.0
        || p.watchdog.is_zero()
    {
        bail!("connect-flood needs a flood rate, a duration, a publish rate and a watchdog > 0");
    }
    let dir = tempfile::tempdir().context("temporary directory")?;
    let log = dir.path().join("gateway.log");
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path)
        .with_context(|| format!("bind the notify socket {}", notify_path.display()))?;
    let http = SocketAddr::from(([127, 0, 0, 1], crate::free_tcp_port()?));
    let ids: Vec<String> = (0..p.motes).map(|i| format!("paired-{i}")).collect();
    // Only keys the gateways before issue 12 know too, so an older binary can be measured.
    let rig = Rig::start_with(RigOptions {
        config: Some(format!(
            "[http]\nlisten = \"{http}\"\n[clients]\nregistry = \"bench-clients.toml\"\n"
        )),
        registry: Some(
            ids.iter()
                .map(|id| format!("[[client]]\nclient_id = \"{id}\"\n"))
                .collect(),
        ),
        process: GatewayOptions {
            log: Some("info".into()),
            log_file: Some(log.clone()),
            watchdog: Some((notify_path, p.watchdog)),
            ..Default::default()
        },
    })
    .await?;
    let pings = WatchdogRecorder::start(notify)?;
    let motes = motes::motes(p.motes, rig.gw_addr).await?;
    for (m, id) in motes.iter().zip(&ids) {
        m.connect(id, MOTE_KEEP_ALIVE)
            .await
            .with_context(|| format!("paired mote {id} could not connect before the flood"))?;
    }
    gateway::admin_client::request(http, "GET", "/metrics")
        .await
        .context("the gateway's HTTP endpoint did not answer before the flood")?;
    let pid = rig.gateway.pid;
    let rss_before = procs::usage(Some(pid))?.rss_kib;
    let log_start = file_len(&log);
    let before = rig.usage()?;

    let start = Instant::now();
    let deadline = start + p.duration;
    let gw = rig.gw_addr;
    let flood = tokio::task::spawn_blocking(move || flood(gw, p.rate, p.duration));
    let every = Duration::from_secs_f64(1.0 / p.publish_rate);
    let mut publishers = tokio::task::JoinSet::new();
    for (i, (m, id)) in motes.iter().zip(&ids).enumerate() {
        // Staggered over one period, as independent motes are.
        let first = start + every.mul_f64(i as f64 / p.motes as f64);
        publishers.spawn(paired_mote(m.clone(), id.clone(), first, every, deadline));
    }
    let metrics = tokio::spawn(poll_metrics(http, deadline));
    let flood_sent = flood.await?.context("the flood")?;
    let flood_end = Instant::now();
    let after = rig.usage()?;
    let log_flood = file_len(&log).saturating_sub(log_start);
    let mut motes_total = MoteTally::default();
    while let Some(t) = publishers.join_next().await {
        motes_total.add(t??);
    }
    let metrics = metrics.await?;
    if let Some(e) = &metrics.first_error {
        eprintln!("connect-flood: a /metrics request failed during the flood: {e}");
    }

    tokio::time::sleep_until((flood_end + SETTLE).into()).await;
    let settled = procs::usage(Some(pid))?;
    let log_after = file_len(&log).saturating_sub(log_start + log_flood);
    let sessions = match gateway::admin_client::clients(http).await {
        Ok(list) => list.clients.len().to_string(),
        Err(e) => {
            eprintln!("connect-flood: the session table could not be read after the flood: {e}");
            "unknown".to_owned()
        }
    };
    let pings = pings.stop();
    let window_end = Instant::now();
    let max_gap = max_gap(&pings, start, window_end);
    rig.stop().await;

    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    let per_mote_due = (p.duration.as_secs_f64() * p.publish_rate).ceil() as u64;
    let mut o = Outcome {
        name: format!(
            "connect-flood rate={}/s motes={} publish_rate={}/s",
            p.rate, p.motes, p.publish_rate
        ),
        sent: motes_total.sent,
        delivered: motes_total.acked,
        elapsed: flood_end - start,
        ..Default::default()
    };
    account(&mut o, before, after);
    let cpu_after = 100.0 * (settled.cpu_s - after.0.cpu_s) / SETTLE.as_secs_f64();
    let extra = [
        ("flood_sent", flood_sent.to_string()),
        ("readings_due", (per_mote_due * p.motes as u64).to_string()),
        ("retransmissions", motes_total.retransmissions.to_string()),
        ("refused", motes_total.refused.to_string()),
        ("reconnects", motes_total.reconnects.to_string()),
        ("metrics_ok", metrics.ok.to_string()),
        ("metrics_timeouts", metrics.timeouts.to_string()),
        ("metrics_errors", metrics.errors.to_string()),
        ("metrics_max_ms", metrics.max.as_millis().to_string()),
        ("watchdog_usec", p.watchdog.as_micros().to_string()),
        ("wd_max_gap_ms", max_gap.as_millis().to_string()),
        ("rss_before_mib", mib(rss_before)),
        ("rss_peak_mib", mib(after.0.peak_rss_kib)),
        ("rss_after_mib", mib(settled.rss_kib)),
        ("log_bytes", log_flood.to_string()),
        ("log_bytes_after", log_after.to_string()),
        ("sessions_after", sessions),
        ("gw_cpu_after", format!("{cpu_after:.0}%")),
    ];
    o.extra = extra.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Ok(o)
}

/// Sends CONNECTs (random 16-hex-digit ClientIds, keep-alive 0, clean session) from one UDP
/// port to `gateway` at `rate` for `duration`; returns how many were sent.
fn flood(gateway: SocketAddr, rate: u64, duration: Duration) -> Result<u64> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").context("bind the flood socket")?;
    let mut packet = encode(&Packet::Connect(Connect {
        will: false,
        clean_session: true,
        duration: 0,
        client_id: &[b'0'; FLOOD_ID_LEN],
    }));
    let id_at = packet.len() - FLOOD_ID_LEN;
    // xorshift64, seeded from the clock: every run floods with other ClientIds.
    let mut x = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            & u128::from(u64::MAX),
    )
    .unwrap_or(1)
        | 1;
    let start = Instant::now();
    motes::pace(
        rate,
        |_| start.elapsed() < duration,
        |_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for (i, digit) in packet.iter_mut().skip(id_at).enumerate() {
                *digit = b"0123456789abcdef"[((x >> (60 - 4 * i)) & 0xF) as usize];
            }
            socket
                .send_to(&packet, gateway)
                .context("send a flood CONNECT")?;
            Ok(())
        },
    )
}

/// What the paired motes did and got.
#[derive(Debug, Default, Clone, Copy)]
struct MoteTally {
    /// Readings sent (first transmissions).
    sent: u64,
    /// Readings acknowledged (PUBACK accepted).
    acked: u64,
    /// PUBLISHes sent again after T_RETRY.
    retransmissions: u64,
    /// PUBACKs with a refusing return code.
    refused: u64,
    /// Times a mote connected again (its session taken for lost).
    reconnects: u64,
}

impl MoteTally {
    fn add(&mut self, o: MoteTally) {
        self.sent += o.sent;
        self.acked += o.acked;
        self.retransmissions += o.retransmissions;
        self.refused += o.refused;
        self.reconnects += o.reconnects;
    }
}

/// A paired mote: a QoS 1 reading due every `every` from `first` until `deadline`, one in
/// flight, each retransmitted after [`MOTE_T_RETRY`] up to [`MOTE_N_RETRY`] times. Readings
/// that come due while one is in flight wait their turn. No PUBACK after every retransmission,
/// a DISCONNECT or a PUBACK refusing for another reason than congestion make the mote connect
/// again before its next reading. The reading in flight at the deadline is seen through.
async fn paired_mote(
    m: Arc<Mote>,
    id: String,
    first: Instant,
    every: Duration,
    deadline: Instant,
) -> Result<MoteTally> {
    let mut t = MoteTally::default();
    let mut connected = true;
    let mut msg_id: u16 = 0;
    let mut due = first;
    while due < deadline && Instant::now() < deadline {
        tokio::time::sleep_until(due.into()).await;
        due += every;
        if !connected {
            t.reconnects += 1;
            if !reconnect(&m, &id, deadline).await? {
                break;
            }
        }
        msg_id = msg_id.checked_add(1).unwrap_or(1);
        let data = motes::payload(t.sent);
        let mut answered = false;
        for attempt in 0..=MOTE_N_RETRY {
            let publish = Publish {
                dup: attempt > 0,
                qos: QoS::One,
                retain: false,
                topic: TopicRef::Predefined(READINGS_TOPIC),
                msg_id,
                data: &data,
            };
            m.send(&Packet::Publish(publish)).await?;
            if attempt == 0 {
                t.sent += 1;
            } else {
                t.retransmissions += 1;
            }
            let answer = m
                .recv(MOTE_T_RETRY, |p| match p {
                    Packet::Puback {
                        msg_id: acked,
                        return_code,
                        ..
                    } if acked == msg_id => Some(Some(return_code)),
                    Packet::Disconnect { .. } => Some(None),
                    _ => None,
                })
                .await;
            match answer {
                Ok(Some(ReturnCode::Accepted)) => {
                    t.acked += 1;
                    answered = true;
                }
                Ok(Some(ReturnCode::Congestion)) => {
                    t.refused += 1;
                    answered = true;
                }
                Ok(Some(_)) => t.refused += 1,
                // DISCONNECT: the session is gone.
                Ok(None) => {}
                // T_RETRY expired.
                Err(_) => continue,
            }
            break;
        }
        connected = answered;
    }
    Ok(t)
}

/// CONNECT again (same ClientId, clean session) every [`MOTE_T_RETRY`] until accepted or
/// `deadline`; whether it was accepted.
async fn reconnect(m: &Mote, id: &str, deadline: Instant) -> Result<bool> {
    let connect = Packet::Connect(Connect {
        will: false,
        clean_session: true,
        duration: MOTE_KEEP_ALIVE,
        client_id: id.as_bytes(),
    });
    while Instant::now() < deadline {
        m.send(&connect).await?;
        let answer = m
            .recv(MOTE_T_RETRY, |p| match p {
                Packet::Connack { return_code } => Some(return_code),
                _ => None,
            })
            .await;
        match answer {
            Ok(ReturnCode::Accepted) => return Ok(true),
            // Refused: wait T_RETRY before trying again.
            Ok(_) => tokio::time::sleep(MOTE_T_RETRY).await,
            Err(_) => {}
        }
    }
    Ok(false)
}

/// How `/metrics` fared during the flood.
#[derive(Debug, Default)]
struct MetricsTally {
    /// Requests answered (2xx) within [`METRICS_TIMEOUT`].
    ok: u64,
    /// Requests without a complete answer within [`METRICS_TIMEOUT`].
    timeouts: u64,
    /// Requests that failed otherwise (refused connection, error status).
    errors: u64,
    /// Slowest answered request.
    max: Duration,
    /// The first failure other than a timeout.
    first_error: Option<String>,
}

/// Asks for `/metrics` every [`METRICS_EVERY`] (never two at once) until `until`.
async fn poll_metrics(http: SocketAddr, until: Instant) -> MetricsTally {
    let mut t = MetricsTally::default();
    let mut next = Instant::now();
    while next < until {
        tokio::time::sleep_until(next.into()).await;
        let asked = Instant::now();
        let answer = tokio::time::timeout(
            METRICS_TIMEOUT,
            gateway::admin_client::request(http, "GET", "/metrics"),
        )
        .await;
        match answer {
            Ok(Ok(_)) => {
                t.ok += 1;
                t.max = t.max.max(asked.elapsed());
            }
            Err(_) | Ok(Err(AdminError::Timeout(_))) => t.timeouts += 1,
            Ok(Err(e)) => {
                t.errors += 1;
                t.first_error.get_or_insert_with(|| e.to_string());
            }
        }
        next = (next + METRICS_EVERY).max(Instant::now());
    }
    t
}

/// Receives on the notify socket on a thread of its own and notes when each watchdog ping
/// arrived.
struct WatchdogRecorder {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Instant>>,
}

impl WatchdogRecorder {
    fn start(socket: UnixDatagram) -> Result<Self> {
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let mut pings = Vec::new();
                let mut buf = [0u8; 4096];
                while !stopped.load(Ordering::Relaxed) {
                    if let Ok(n) = socket.recv(&mut buf)
                        && watchdog_pings_in(buf.get(..n).unwrap_or_default()) > 0
                    {
                        pings.push(Instant::now());
                    }
                }
                pings
            })?;
        Ok(WatchdogRecorder { stop, thread })
    }

    /// Stops receiving; the arrival time of every ping.
    fn stop(self) -> Vec<Instant> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The longest time between two consecutive pings within `from..=to`, counting from the last
/// ping before `from` (or `from`) and up to `to` (a gateway that stopped petting shows).
fn max_gap(pings: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut last = pings
        .iter()
        .rev()
        .find(|t| **t <= from)
        .copied()
        .unwrap_or(from);
    let mut max = Duration::ZERO;
    for &t in pings.iter().filter(|t| **t > from && **t <= to) {
        max = max.max(t - last);
        last = t;
    }
    max.max(to.saturating_duration_since(last))
}

/// Size of a file, 0 when it cannot be read.
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
