//! A crash loop: the released binary is killed with SIGKILL at seeded random moments (as a
//! power loss) and started again, over and over, while motes publish QoS 1 and QoS 2 and
//! sleeping motes have commands pending. Nothing a mote got an acknowledgement for may be lost,
//! QoS 2 readings arrive exactly once, and every command the broker took reaches its mote.
//!
//! The motes behave as a careful firmware would: retransmit with DUP after a silence, send
//! PUBREL again until PUBCOMP, connect again (CleanSession=0) when the gateway no longer knows
//! them, and retry later when it answers "congestion".

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::QoS as MqttQoS;
use sn_codec::{Connect, Packet, Publish, QoS, ReturnCode, Subscribe, TopicRef};
use sn_tests::daemon::{Daemon, DaemonOptions};
use sn_tests::{Mosquitto, SnClient, Subscriber};
use tokio::time::Instant;

/// The seed of the kill schedule (printed, so a failure can be replayed), unless
/// `SN_CRASH_SEED` (decimal or `0x` hexadecimal) names another one.
const SEED: u64 = 0x5eed_c0de_2026;

/// The kill schedule's seed for this run.
fn seed() -> u64 {
    let Ok(text) = std::env::var("SN_CRASH_SEED") else {
        return SEED;
    };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("SN_CRASH_SEED={text:?} is not a number"))
}
/// How many times the gateway is killed.
const KILLS: usize = 20;
/// A mote's patience for one reply before it retransmits.
const PATIENCE: Duration = Duration::from_millis(400);

/// A small deterministic generator (xorshift64*) for the kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }
}

/// CONNECT (CleanSession=0) until the gateway accepts it.
async fn connect(mote: &SnClient, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "{name}: no CONNACK for 60 s");
        mote.send(&Packet::Connect(Connect {
            will: false,
            clean_session: false,
            duration: 120,
            client_id: name.as_bytes(),
        }))
        .await
        .unwrap();
        let until = Instant::now() + PATIENCE;
        while let Some(reply) = mote
            .recv_within(until.saturating_duration_since(Instant::now()))
            .await
            .unwrap()
        {
            if let Ok(Packet::Connack { return_code }) = reply.packet() {
                if return_code == ReturnCode::Accepted {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
        }
    }
}

/// A mote publishing readings `<name>:<seq>` at `qos` on predefined topic 1 until `stop` says so, each
/// one acknowledged (PUBACK, or PUBREC then PUBCOMP) before the next (the one under way when
/// told to stop is finished). Returns how many were acknowledged: readings `0..n`.
async fn publisher(
    gateway: SocketAddr,
    name: String,
    qos: QoS,
    stop: tokio::sync::watch::Receiver<bool>,
) -> u32 {
    let mote = SnClient::new(gateway).await.unwrap();
    connect(&mote, &name).await;
    let mut seq = 0u32;
    while !*stop.borrow() {
        let msg_id = u16::try_from(seq % 60_000).unwrap() + 1;
        let data = format!("{name}:{seq}");
        let mut dup = false;
        let mut released = false;
        let give_up = Instant::now() + Duration::from_secs(60);
        'attempt: loop {
            assert!(Instant::now() < give_up, "{name}:{seq} unanswered for 60 s");
            let packet = if released {
                Packet::Pubrel { msg_id }
            } else {
                Packet::Publish(Publish {
                    dup,
                    qos,
                    retain: false,
                    topic: TopicRef::Predefined(1),
                    msg_id,
                    data: data.as_bytes(),
                })
            };
            mote.send(&packet).await.unwrap();
            let until = Instant::now() + PATIENCE;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                let Some(reply) = mote.recv_within(left).await.unwrap() else {
                    // Silence (the gateway is down or restarting): send again.
                    dup = true;
                    continue 'attempt;
                };
                match reply.packet() {
                    Ok(Packet::Puback {
                        msg_id: m,
                        return_code,
                        ..
                    }) if m == msg_id => match return_code {
                        ReturnCode::Accepted if qos == QoS::One => break 'attempt,
                        ReturnCode::Congestion => {
                            // Not taken (the broker link is not up yet): a new try later.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            dup = false;
                            continue 'attempt;
                        }
                        other => panic!("{name}:{seq} refused with {other:?}"),
                    },
                    Ok(Packet::Pubrec { msg_id: m }) if m == msg_id && qos == QoS::Two => {
                        released = true;
                        continue 'attempt;
                    }
                    Ok(Packet::Pubcomp { msg_id: m }) if m == msg_id && released => {
                        break 'attempt;
                    }
                    Ok(Packet::Disconnect { .. }) => {
                        // The gateway does not know this mote (its session was not stored
                        // yet when it was killed): connect again, then go on where it was.
                        connect(&mote, &name).await;
                        dup = true;
                        continue 'attempt;
                    }
                    // Anything else (a late answer to an earlier try) is not the answer.
                    _ => {}
                }
            }
        }
        seq += 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    seq
}

/// Connects (CleanSession=0), subscribes to `topic` at `qos` and goes to sleep for 30 s,
/// starting over until every step is accepted.
async fn fall_asleep(mote: &SnClient, name: &str, topic: &str, qos: QoS) {
    'again: loop {
        connect(mote, name).await;
        let packets = [
            Packet::Subscribe(Subscribe {
                dup: false,
                qos,
                msg_id: 1,
                topic: TopicRef::Name(topic.as_bytes()),
            }),
            Packet::Disconnect { duration: Some(30) },
        ];
        for p in &packets {
            mote.send(p).await.unwrap();
            let until = Instant::now() + Duration::from_secs(2);
            loop {
                let left = until.saturating_duration_since(Instant::now());
                let Some(reply) = mote.recv_within(left).await.unwrap() else {
                    continue 'again;
                };
                match (p, reply.packet()) {
                    (
                        Packet::Subscribe(_),
                        Ok(Packet::Suback {
                            return_code: ReturnCode::Accepted,
                            ..
                        }),
                    )
                    | (Packet::Disconnect { .. }, Ok(Packet::Disconnect { .. })) => break,
                    (_, Ok(Packet::Suback { .. })) => {
                        // Refused while the broker link comes up: try again.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue 'again;
                    }
                    _ => {}
                }
            }
        }
        return;
    }
}

/// A sleeping mote subscribed to `cmd/<name>` at `qos`: it wakes with PINGREQ every 600 ms,
/// takes what the gateway has for it and sleeps again, until `done` says stop. At QoS 2 it
/// receives as MQTT-SN prescribes: a MsgId it answered PUBREC for and that the gateway has not
/// released yet is a repetition, not a new message. Returns how often it received each
/// payload.
async fn sleeper(
    gateway: SocketAddr,
    name: String,
    qos: QoS,
    subscribed: tokio::sync::oneshot::Sender<()>,
    mut done: tokio::sync::watch::Receiver<bool>,
) -> BTreeMap<String, u32> {
    let mote = SnClient::new(gateway).await.unwrap();
    let topic = format!("cmd/{name}");
    fall_asleep(&mote, &name, &topic, qos).await;
    let _ = subscribed.send(());
    let mut got = BTreeMap::new();
    let mut unreleased = BTreeSet::new();
    let mut misses = 0;
    while !*done.borrow_and_update() {
        tokio::time::sleep(Duration::from_millis(600)).await;
        mote.send(&Packet::Pingreq {
            client_id: Some(name.as_bytes()),
        })
        .await
        .unwrap();
        loop {
            let Some(reply) = mote.recv_within(PATIENCE).await.unwrap() else {
                misses += 1;
                if misses >= 3 {
                    // The gateway forgot this mote: connect, subscribe and sleep again.
                    fall_asleep(&mote, &name, &topic, qos).await;
                    misses = 0;
                }
                break;
            };
            match reply.packet() {
                Ok(Packet::Publish(p)) if p.qos == QoS::Two => {
                    if unreleased.insert(p.msg_id) {
                        *got.entry(String::from_utf8_lossy(p.data).into_owned())
                            .or_default() += 1;
                    }
                    mote.send(&Packet::Pubrec { msg_id: p.msg_id })
                        .await
                        .unwrap();
                }
                Ok(Packet::Pubrel { msg_id }) => {
                    unreleased.remove(&msg_id);
                    mote.send(&Packet::Pubcomp { msg_id }).await.unwrap();
                }
                Ok(Packet::Publish(p)) => {
                    *got.entry(String::from_utf8_lossy(p.data).into_owned())
                        .or_default() += 1;
                    if p.qos != QoS::Zero {
                        mote.send(&Packet::Puback {
                            topic_id: p.topic.id_field(),
                            msg_id: p.msg_id,
                            return_code: ReturnCode::Accepted,
                        })
                        .await
                        .unwrap();
                    }
                }
                Ok(Packet::Register(r)) => {
                    mote.send(&Packet::Regack {
                        topic_id: r.topic_id,
                        msg_id: r.msg_id,
                        return_code: ReturnCode::Accepted,
                    })
                    .await
                    .unwrap();
                }
                Ok(Packet::Pingresp) => {
                    misses = 0;
                    break;
                }
                Ok(Packet::Disconnect { .. }) => {
                    fall_asleep(&mote, &name, &topic, qos).await;
                    misses = 0;
                    break;
                }
                _ => {}
            }
        }
    }
    got
}

#[tokio::test]
async fn transparent_mode_in_broker_custody_loses_nothing_acknowledged_across_20_kill_9s() {
    crash_loop("", "").await;
}

#[tokio::test]
async fn aggregating_mode_in_gateway_custody_loses_nothing_acknowledged_across_20_kill_9s() {
    crash_loop(
        "mode = \"aggregating\"\n",
        "[storage]\ncustody = \"gateway\"\n",
    )
    .await;
}

/// The crash loop with these `[upstream]` lines and this configuration.
async fn crash_loop(upstream: &str, config: &str) {
    let broker = Mosquitto::start().await.unwrap();
    let options = DaemonOptions {
        config: format!("{config}[[predefined]]\nid = 1\ntopic = \"crash/readings\"\n"),
        upstream: format!("backoff_max = \"500ms\"\n{upstream}"),
        ..Default::default()
    };
    let mut daemon = Daemon::start(&broker.url(), options).await.unwrap();
    let mut readings = Subscriber::connect(
        &broker.url(),
        "crash-readings",
        &[("crash/readings", MqttQoS::ExactlyOnce)],
    )
    .await
    .unwrap();
    let seed = seed();
    eprintln!("crash loop: seed {seed:#x}, {KILLS} kills (SN_CRASH_SEED replays it)");
    let mut rng = Rng(seed);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);

    let mut publishers = tokio::task::JoinSet::new();
    for (i, qos) in [QoS::One, QoS::One, QoS::Two, QoS::Two]
        .into_iter()
        .enumerate()
    {
        let level = if qos == QoS::Two { 2 } else { 1 };
        let name = format!("crash-qos{level}-{i}");
        let gw = daemon.udp;
        let stop = stop.clone();
        publishers.spawn(async move {
            let acked = publisher(gw, name.clone(), qos, stop).await;
            (name, qos, acked)
        });
    }
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let mut sleepers = tokio::task::JoinSet::new();
    let mut sleeper_names = Vec::new();
    // One sleeper takes its commands at QoS 1, the other at QoS 2 (exactly once).
    for (i, qos) in [QoS::One, QoS::Two].into_iter().enumerate() {
        let name = format!("crash-sleeper-{i}");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = sleeper(daemon.udp, name.clone(), qos, tx, done_rx.clone());
        let task_name = name.clone();
        sleepers.spawn(async move { (task_name, qos, task.await) });
        rx.await.unwrap();
        sleeper_names.push((name, qos));
    }
    // Commands for the sleepers, each taken by the broker (PUBACK, PUBCOMP) while the gateway
    // crashes.
    let url = broker.url();
    let names = sleeper_names.clone();
    let commands_stop = stop.clone();
    let commands = tokio::spawn(async move {
        let mut sent: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut n = 0;
        while !*commands_stop.borrow() {
            for (name, qos) in &names {
                let payload = format!("c{n}");
                let qos = if *qos == QoS::Two {
                    MqttQoS::ExactlyOnce
                } else {
                    MqttQoS::AtLeastOnce
                };
                sn_tests::mqtt::publish(
                    &url,
                    &format!("cmd/{name}"),
                    payload.as_bytes(),
                    qos,
                    false,
                )
                .await
                .unwrap();
                sent.entry(name.clone()).or_default().insert(payload);
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        sent
    });

    for kill in 0..KILLS {
        tokio::time::sleep(rng.millis(150, 1_500)).await;
        daemon
            .kill_and_restart()
            .await
            .unwrap_or_else(|e| panic!("restart after kill {kill}: {e:#}"));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_tx.send(true).unwrap();

    // Every acknowledged reading at the broker, QoS 2 ones exactly once.
    let mut acked = BTreeMap::new();
    while let Some(done) = publishers.join_next().await {
        let (name, qos, n) = done.unwrap();
        assert!(n > 10, "{name} had only {n} readings acknowledged");
        acked.insert(name, (qos, n));
    }
    let mut seen: BTreeMap<String, BTreeMap<u32, u32>> = BTreeMap::new();
    while let Some(m) = readings.next_message(Duration::from_secs(5)).await {
        let text = m.payload_str();
        let (name, seq) = text.rsplit_once(':').unwrap();
        *seen
            .entry(name.to_owned())
            .or_default()
            .entry(seq.parse().unwrap())
            .or_default() += 1;
    }
    for (name, (qos, n)) in &acked {
        let got = seen.get(name).cloned().unwrap_or_default();
        let missing: Vec<u32> = (0..*n).filter(|s| !got.contains_key(s)).collect();
        assert!(
            missing.is_empty(),
            "{name}: acknowledged readings missing at the broker: {missing:?}"
        );
        let beyond: Vec<&u32> = got.keys().filter(|s| **s >= *n).collect();
        assert!(beyond.is_empty(), "{name}: readings never sent: {beyond:?}");
        if *qos == QoS::Two {
            let twice: Vec<(&u32, &u32)> = got.iter().filter(|(_, c)| **c > 1).collect();
            assert!(
                twice.is_empty(),
                "{name}: QoS 2 readings delivered more than once: {twice:?}"
            );
        }
        eprintln!("{name}: {n} acknowledged, all at the broker");
    }

    // Every command the broker took reaches its sleeper.
    let sent = commands.await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    done_tx.send(true).unwrap();
    while let Some(done) = sleepers.join_next().await {
        let (name, qos, got) = done.unwrap();
        let want = &sent[&name];
        let missing: Vec<&String> = want.iter().filter(|c| !got.contains_key(*c)).collect();
        assert!(
            missing.is_empty(),
            "{name}: commands missing: {missing:?} (got {} of {})",
            want.len() - missing.len(),
            want.len()
        );
        if qos == QoS::Two {
            let twice: Vec<(&String, &u32)> = got.iter().filter(|(_, n)| **n > 1).collect();
            assert!(
                twice.is_empty(),
                "{name}: QoS 2 commands received more than once: {twice:?}"
            );
        }
        eprintln!("{name}: all {} commands delivered", want.len());
    }
    daemon.stop().await;
}
