//! State that survives a restart, with the released binary, a real mosquitto and a real
//! SQLite file: the gateway is killed with SIGKILL (nothing is flushed or closed, as a power
//! loss) and started again in the same directory.

use std::time::Duration;

use rumqttc::QoS as MqttQoS;
use sn_codec::{Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef};
use sn_tests::daemon::{Daemon, DaemonOptions};
use sn_tests::{Mosquitto, SnClient, Subscriber};

const WAIT: Duration = Duration::from_secs(5);

/// REGISTER `name` as `msg_id`; returns the topic id the gateway gave.
async fn register(mote: &SnClient, msg_id: u16, name: &str) -> u16 {
    mote.send(&Packet::Register(Register {
        topic_id: 0,
        msg_id,
        topic_name: name.as_bytes(),
    }))
    .await
    .unwrap();
    match mote.recv().await.unwrap().packet().unwrap() {
        Packet::Regack {
            topic_id,
            return_code: ReturnCode::Accepted,
            ..
        } => topic_id,
        other => panic!("expected REGACK, got {other}"),
    }
}

/// PUBLISH QoS 1 on a normal topic id; returns the PUBACK's return code.
async fn publish_qos1(mote: &SnClient, topic_id: u16, msg_id: u16, data: &[u8]) -> ReturnCode {
    mote.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Normal(topic_id),
        msg_id,
        data,
    }))
    .await
    .unwrap();
    loop {
        match mote.recv().await.unwrap().packet().unwrap() {
            Packet::Puback {
                msg_id: m,
                return_code,
                ..
            } if m == msg_id => return return_code,
            // A PINGRESP or other traffic is not the answer.
            _ => continue,
        }
    }
}

#[tokio::test]
async fn after_a_kill_9_a_mote_publishes_with_its_old_topic_id_and_a_sleeper_gets_what_was_queued()
{
    let broker = Mosquitto::start().await.unwrap();
    let mut daemon = Daemon::start(&broker.url(), DaemonOptions::default())
        .await
        .unwrap();
    let mut readings = Subscriber::connect(
        &broker.url(),
        "storage-readings",
        &[("site/#", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();

    // A mote that stays connected (CleanSession=0) with a registered topic.
    let keeper = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        keeper.connect("keeper", false, 600).await.unwrap(),
        ReturnCode::Accepted
    );
    let site_a = register(&keeper, 1, "site/a").await;
    assert_eq!(
        publish_qos1(&keeper, site_a, 2, b"before").await,
        ReturnCode::Accepted
    );
    let got = readings.next_message(WAIT).await.expect("reading before");
    assert_eq!(got.payload_str(), "before");

    // A sleeping mote (CleanSession=0) subscribed to its commands at QoS 1.
    let sleeper = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        sleeper.connect("sleeper", false, 600).await.unwrap(),
        ReturnCode::Accepted
    );
    sleeper
        .send(&Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::One,
            msg_id: 1,
            topic: TopicRef::Name(b"cmd/sleeper"),
        }))
        .await
        .unwrap();
    let command_id = match sleeper.recv().await.unwrap().packet().unwrap() {
        Packet::Suback {
            return_code: ReturnCode::Accepted,
            topic_id,
            ..
        } => topic_id,
        other => panic!("expected SUBACK, got {other}"),
    };
    assert_ne!(command_id, 0, "a topic name gets its id in the SUBACK");
    sleeper
        .send(&Packet::Disconnect {
            duration: Some(600),
        })
        .await
        .unwrap();
    sleeper
        .expect(&Packet::Disconnect { duration: None })
        .await
        .unwrap();
    // The stored records are written within the batch window; give the writer a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;

    daemon.kill_and_restart().await.unwrap();
    assert!(daemon.dir().join("state.db").exists());
    assert!(
        daemon.log().contains("restored=2"),
        "both sessions resumed: {}",
        daemon.log()
    );

    // A command for the sleeper, published after the restart: the broker delivers it on the
    // re-opened persistent session, and the gateway buffers it for the sleeping mote.
    sn_tests::mqtt::publish(
        &broker.url(),
        "cmd/sleeper",
        b"open valve",
        MqttQoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();

    // The keeper never reconnected: its topic id still works.
    assert_eq!(
        publish_qos1(&keeper, site_a, 3, b"after").await,
        ReturnCode::Accepted
    );
    let got = readings.next_message(WAIT).await.expect("reading after");
    assert_eq!(got.payload_str(), "after");

    // The sleeper wakes with a PINGREQ and gets the command, under the topic id it was given
    // before the restart.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sleeper
        .send(&Packet::Pingreq {
            client_id: Some(b"sleeper"),
        })
        .await
        .unwrap();
    // The topic id the SUBACK gave before the restart is still known to both sides: the
    // command comes without a REGISTER.
    let topic_id = command_id;
    match sleeper.recv().await.unwrap().packet().unwrap() {
        Packet::Publish(p) => {
            assert_eq!(p.topic, TopicRef::Normal(topic_id));
            assert_eq!(p.data, b"open valve");
            sleeper
                .send(&Packet::Puback {
                    topic_id,
                    msg_id: p.msg_id,
                    return_code: ReturnCode::Accepted,
                })
                .await
                .unwrap();
        }
        other => panic!("expected PUBLISH, got {other}"),
    }
    sleeper.expect(&Packet::Pingresp).await.unwrap();

    // A new registration is stored (a wake-up is not: the sleeper is stored asleep either
    // way); the operator sees the store at work.
    register(&keeper, 4, "site/b").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = gateway::admin_client::request(daemon.http, "GET", "/metrics")
        .await
        .unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("mqttsn_gateway_storage_enabled 1"),
        "{metrics}"
    );
    let commits = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mqttsn_gateway_storage_commits_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("a commit count");
    assert!(commits >= 1, "the registration was written: {metrics}");
    daemon.stop().await;
}

#[tokio::test]
async fn storage_off_forgets_sessions_at_a_restart() {
    let broker = Mosquitto::start().await.unwrap();
    let options = DaemonOptions {
        config: "[storage]\npath = \"off\"\n".into(),
        ..Default::default()
    };
    let mut daemon = Daemon::start(&broker.url(), options).await.unwrap();
    let keeper = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        keeper.connect("keeper", false, 600).await.unwrap(),
        ReturnCode::Accepted
    );
    let site_a = register(&keeper, 1, "site/a").await;
    daemon.kill_and_restart().await.unwrap();
    assert!(!daemon.dir().join("state.db").exists());
    keeper
        .send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Normal(site_a),
            msg_id: 2,
            data: b"after",
        }))
        .await
        .unwrap();
    // Without a store the restarted gateway has no session for it: DISCONNECT, so the mote
    // connects again.
    keeper
        .expect(&Packet::Disconnect { duration: None })
        .await
        .unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn a_damaged_state_file_is_moved_aside_and_the_gateway_starts_afresh() {
    let broker = Mosquitto::start().await.unwrap();
    let mut daemon = Daemon::start(&broker.url(), DaemonOptions::default())
        .await
        .unwrap();
    let keeper = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        keeper.connect("keeper", false, 600).await.unwrap(),
        ReturnCode::Accepted
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Scribble over the database's first page while the gateway is down.
    let db = daemon.dir().join("state.db");
    daemon
        .kill_and_restart_with(|| {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = db.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(&p);
            }
            std::fs::write(&db, vec![0x5a; 8192]).unwrap();
        })
        .await
        .unwrap();
    let log = daemon.log();
    assert!(log.contains("moved aside"), "{log}");
    let kept: Vec<_> = std::fs::read_dir(daemon.dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("state.db.bad-"))
        .collect();
    assert!(!kept.is_empty(), "the damaged file is kept beside");
    // The fresh store works: the mote connects and is stored again.
    let mote = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        mote.connect("fresh", false, 600).await.unwrap(),
        ReturnCode::Accepted
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_state_file_of_a_newer_gateway_stops_the_start_with_a_message_naming_it() {
    let broker = Mosquitto::start().await.unwrap();
    let mut daemon = Daemon::start(&broker.url(), DaemonOptions::default())
        .await
        .unwrap();
    let db = daemon.dir().join("state.db");
    let result = daemon
        .kill_and_restart_with(|| {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        })
        .await;
    assert!(result.is_err(), "the gateway must not start");
    let log = daemon.log();
    assert!(log.contains("state.db"), "{log}");
    assert!(log.contains("newer"), "{log}");
}

/// Reading `seq` of mote `name` (`<name>:<seq>`) at QoS 1 on predefined topic 1 (MsgId
/// `seq % 60 000 + 1`); returns the PUBACK's return code.
pub(crate) async fn publish_reading(mote: &SnClient, name: &str, seq: u32) -> ReturnCode {
    let data = format!("{name}:{seq}");
    let msg_id = u16::try_from(seq % 60_000).unwrap() + 1;
    mote.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Predefined(1),
        msg_id,
        data: data.as_bytes(),
    }))
    .await
    .unwrap();
    loop {
        match mote.recv().await.unwrap().packet().unwrap() {
            Packet::Puback {
                msg_id: m,
                return_code,
                ..
            } if m == msg_id => return return_code,
            _ => continue,
        }
    }
}

/// Motes publishing QoS 1 readings ([`publish_reading`]) one after the other, each waiting for
/// its PUBACK; returns how many each got accepted.
async fn publish_readings(
    mote: SnClient,
    name: String,
    every: Duration,
    until: tokio::time::Instant,
) -> (String, u32) {
    let mut seq = 0u32;
    while tokio::time::Instant::now() < until {
        let rc = publish_reading(&mote, &name, seq).await;
        assert_eq!(rc, ReturnCode::Accepted, "{name} #{seq}");
        seq += 1;
        tokio::time::sleep(every).await;
    }
    (name, seq)
}

#[tokio::test]
async fn a_60_s_broker_outage_in_gateway_custody_loses_nothing_and_keeps_each_motes_order() {
    let mut broker = Mosquitto::start_with(sn_tests::MosquittoOptions {
        persistence: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let options = DaemonOptions {
        config: "[storage]\ncustody = \"gateway\"\n\
                 [[predefined]]\nid = 1\ntopic = \"site/readings\"\n"
            .into(),
        upstream: "backoff_max = \"2s\"\n".into(),
        ..Default::default()
    };
    let daemon = Daemon::start(&broker.url(), options).await.unwrap();
    let mut readings = Subscriber::connect_with(
        &broker.url(),
        "outage-readings",
        &[("site/readings", MqttQoS::AtLeastOnce)],
        &sn_tests::ClientOptions {
            clean_session: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();

    const MOTES: usize = 5;
    let start = tokio::time::Instant::now();
    let until = start + Duration::from_secs(66);
    let mut publishers = tokio::task::JoinSet::new();
    for i in 0..MOTES {
        let mote = SnClient::new(daemon.udp).await.unwrap();
        let name = format!("outage-{i}");
        assert_eq!(
            mote.connect(&name, true, 600).await.unwrap(),
            ReturnCode::Accepted
        );
        publishers.spawn(publish_readings(
            mote,
            name,
            Duration::from_millis(400),
            until,
        ));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.stop().await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    broker.restart().await.unwrap();

    let mut accepted = std::collections::BTreeMap::new();
    while let Some(done) = publishers.join_next().await {
        let (name, count) = done.unwrap();
        assert!(count > 100, "{name} published only {count} readings");
        accepted.insert(name, count);
    }
    let total: u32 = accepted.values().sum();
    // Everything acknowledged reaches the broker, each mote's readings in their order.
    let mut next: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut delivered = 0;
    while delivered < total {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(m) = readings.next_message(left).await else {
            panic!(
                "{delivered} of {total} readings arrived; accepted per mote: {accepted:?}, next expected: {next:?}"
            );
        };
        let text = m.payload_str();
        let (name, seq) = text.split_once(':').unwrap();
        let seq: u32 = seq.parse().unwrap();
        let want = next.entry(name.to_owned()).or_default();
        if seq < *want {
            continue; // a QoS 1 duplicate of one already counted
        }
        assert_eq!(seq, *want, "{name}: reading {seq} before {want}");
        *want += 1;
        delivered += 1;
    }
    assert_eq!(next, accepted);
    drop(daemon);
}

#[tokio::test]
async fn a_state_database_that_cannot_be_created_leaves_the_gateway_running_in_memory() {
    let broker = Mosquitto::start().await.unwrap();
    let options = DaemonOptions {
        config: "[storage]\npath = \"no-such-directory/state.db\"\n".into(),
        ..Default::default()
    };
    let daemon = Daemon::start(&broker.url(), options).await.unwrap();
    let log = daemon.log();
    assert!(
        log.contains("no-such-directory/state.db") && log.contains("in memory only"),
        "{log}"
    );
    let mote = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        mote.connect("m1", false, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    let metrics = gateway::admin_client::request(daemon.http, "GET", "/metrics")
        .await
        .unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("mqttsn_gateway_storage_enabled 0"),
        "{metrics}"
    );
    daemon.stop().await;
}
