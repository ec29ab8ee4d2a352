//! Restart to ready with many stored sessions: the state database is filled with `sessions`
//! CleanSession=0 records (a share of them asleep with three buffered commands each, every one
//! with a Will, two subscriptions and two topic ids), then the gateway is started on it and timed until it tells systemd it is ready
//! (`READY=1` on the notify socket, sent once the listeners are bound and the stored sessions
//! are back in the table).

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use gateway::core::addr::{ListenerId, PeerAddr};
use gateway::core::store::{
    SessionRecord, StoreCmd, StoredState, StoredSubscription, StoredTopicId, StoredTopicKind,
};
use gateway::core::upstream::MqttQos;
use gateway::io::store::{self, StorageConfig, StorageLocation};

use super::procs::{self, GatewayOptions, GatewayProcess, ProcUsage};
use super::scenarios::Outcome;
use crate::Mosquitto;

/// How long the gateway may take to become ready before the run fails.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// The stored record of bench session `i`.
fn record(i: usize, asleep: bool) -> SessionRecord {
    let port = 20_000 + u16::try_from(i % 40_000).unwrap_or(0);
    let third = u8::try_from(i / 40_000 % 250).unwrap_or(0);
    SessionRecord {
        client_id: format!("stored-{i:05}"),
        state: if asleep {
            StoredState::Asleep
        } else {
            StoredState::Active
        },
        keep_alive: Some(Duration::from_secs(300)),
        sleep: asleep.then_some(Duration::from_secs(3600)),
        peer: PeerAddr::Udp {
            listener: ListenerId(0),
            addr: std::net::SocketAddr::from(([127, 0, third, 1], port)),
        },
        will_topic: Some((format!("bench/will/{i}"), MqttQos::AtLeastOnce, false)),
        will_msg: Bytes::from_static(b"gone"),
        subscriptions: vec![
            StoredSubscription {
                filter: format!("bench/cmd/{i}"),
                kind: StoredTopicKind::Name,
                qos: MqttQos::AtLeastOnce,
            },
            StoredSubscription {
                filter: "bench/all/#".into(),
                kind: StoredTopicKind::Name,
                qos: MqttQos::AtMostOnce,
            },
        ],
        topic_ids: vec![
            StoredTopicId {
                id: 1,
                name: format!("bench/cmd/{i}"),
                confirmed: true,
            },
            StoredTopicId {
                id: 2,
                name: format!("bench/data/{i}"),
                confirmed: true,
            },
        ],
        // An asleep session has three commands waiting for it.
        buffered: (0..if asleep { 3 } else { 0 })
            .map(|k| gateway::core::store::StoredDownlink {
                topic: format!("bench/cmd/{i}"),
                payload: Bytes::from(format!("command {k}")),
                qos: MqttQos::AtLeastOnce,
                retain: false,
                msg_id: None,
                released: false,
                broker_pkid: None,
            })
            .collect(),
        qos2_unreleased: Vec::new(),
        pubrels_owed: Vec::new(),
    }
}

/// Fills a state database with `sessions` records, `asleep_percent` of them asleep; returns
/// its size in bytes.
fn fill(path: &std::path::Path, sessions: usize, asleep_percent: usize) -> Result<u64> {
    let opened = store::open(
        path,
        &StorageConfig {
            location: StorageLocation::Path(path.to_owned()),
            ..StorageConfig::default()
        },
        None,
    )?;
    for i in 0..sessions {
        let asleep = i % 100 < asleep_percent;
        opened
            .writer
            .send(StoreCmd::PutSession(Box::new(record(i, asleep))));
    }
    opened.writer.close();
    Ok(store::disk_bytes(path))
}

/// One run: fill, start, time to `READY=1`.
pub async fn restart(sessions: usize, asleep_percent: usize) -> Result<Outcome> {
    let broker = Mosquitto::start().await?;
    let dir = tempfile::tempdir().context("temporary directory")?;
    let db = dir.path().join("state.db");
    let bytes = fill(&db, sessions, asleep_percent)?;
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "[gateway]\nmax_clients = 20000\n[http]\nlisten = \"off\"\n[storage]\npath = \"state.db\"\n",
    )?;
    let log = dir.path().join("gateway.log");
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).context("bind the notify socket")?;
    notify.set_read_timeout(Some(READY_WITHIN))?;
    let start = Instant::now();
    let gateway = GatewayProcess::start(
        crate::free_udp_port()?,
        &broker.url(),
        &GatewayOptions {
            args: vec!["--config".into(), config.display().to_string()],
            log: Some("info".into()),
            log_file: Some(log.clone()),
            watchdog: Some((notify_path, Duration::from_secs(60))),
        },
    )
    .await?;
    let ready = tokio::task::spawn_blocking(move || -> Result<Duration> {
        let mut buf = [0u8; 4096];
        loop {
            let n = notify
                .recv(&mut buf)
                .context("no READY=1 from the gateway")?;
            let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
            if text.lines().any(|l| l == "READY=1") {
                return Ok(start.elapsed());
            }
        }
    })
    .await??;
    let usage = procs::usage(Some(gateway.pid)).unwrap_or_default();
    gateway.stop().await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let restored = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("restored="))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    if restored != sessions as u64 {
        bail!("the gateway restored {restored} of {sessions} stored sessions; its log:\n{text}");
    }
    Ok(Outcome {
        name: format!("restart sessions={sessions} asleep={asleep_percent}%"),
        sent: sessions as u64,
        delivered: restored,
        duplicates: 0,
        elapsed: ready,
        latency_us: None,
        gateway: ProcUsage {
            // CPU until ready (the process is stopped right after).
            ..usage
        },
        broker: ProcUsage::default(),
        loadgen: ProcUsage::default(),
        extra: vec![
            ("ready_ms".into(), format!("{}", ready.as_millis())),
            ("db_bytes".into(), bytes.to_string()),
        ],
    })
}
