//! Aggregating mode against a real mosquitto: many motes over the gateway's one MQTT
//! connection, a broker message fanned out to all of them, and a lost mote's Will published by
//! the gateway. Every wait is bounded.

use std::time::Duration;

use gateway::core::config::UpstreamMode;
use rumqttc::QoS as MqttQoS;
use sn_codec::{Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef};
use sn_tests::{Mosquitto, SnClient, Subscriber, TestGateway, publish};

const WAIT: Duration = Duration::from_secs(5);
const MOTES: usize = 20;

async fn setup() -> (Mosquitto, TestGateway) {
    let broker = Mosquitto::start().await.unwrap();
    let (mut core, io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    core.upstream.mode = UpstreamMode::Aggregating;
    core.upstream.gateway_client_id = "site-gw".into();
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    (broker, gw)
}

/// REGISTERs `name`; returns the topic id.
async fn register(m: &SnClient, name: &str) -> u16 {
    m.send(&Packet::Register(Register {
        topic_id: 0,
        msg_id: 1,
        topic_name: name.as_bytes(),
    }))
    .await
    .unwrap();
    match m.recv().await.unwrap().packet().unwrap() {
        Packet::Regack {
            topic_id,
            return_code: ReturnCode::Accepted,
            ..
        } => topic_id,
        other => panic!("expected REGACK, got {other}"),
    }
}

#[tokio::test]
async fn many_motes_publish_and_receive_over_one_broker_connection() {
    let (broker, gw) = setup().await;
    let mut data = Subscriber::connect(
        &broker.url(),
        "data-watch",
        &[("data/#", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();
    let mut motes = Vec::new();
    for n in 0..MOTES {
        let m = SnClient::new(gw.addr).await.unwrap();
        let rc = m.connect(&format!("mote-{n}"), true, 60).await.unwrap();
        assert_eq!(rc, ReturnCode::Accepted);
        motes.push(m);
    }

    // Uplink: a QoS 1 reading from every mote; PUBACK only after the broker's.
    for (n, m) in motes.iter().enumerate() {
        let topic_id = register(m, &format!("data/{n}")).await;
        let payload = format!("reading-{n}");
        m.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Normal(topic_id),
            msg_id: 2,
            data: payload.as_bytes(),
        }))
        .await
        .unwrap();
        m.expect(&Packet::Puback {
            topic_id,
            msg_id: 2,
            return_code: ReturnCode::Accepted,
        })
        .await
        .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..MOTES {
        let r = data.next_message(WAIT).await.expect("every reading");
        got.push((r.topic.clone(), r.payload_str()));
    }
    got.sort();
    let mut want: Vec<(String, String)> = (0..MOTES)
        .map(|n| (format!("data/{n}"), format!("reading-{n}")))
        .collect();
    want.sort();
    assert_eq!(got, want);

    // Downlink: every mote subscribes to the same topic; one broker publish reaches all.
    let mut topic_ids = Vec::new();
    for m in &motes {
        m.send(&Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::One,
            msg_id: 3,
            topic: TopicRef::Name(b"cmd/all"),
        }))
        .await
        .unwrap();
        match m.recv().await.unwrap().packet().unwrap() {
            Packet::Suback {
                topic_id,
                return_code: ReturnCode::Accepted,
                qos: QoS::One,
                msg_id: 3,
            } => topic_ids.push(topic_id),
            other => panic!("expected SUBACK, got {other}"),
        }
    }
    publish(
        &broker.url(),
        "cmd/all",
        b"blink",
        MqttQoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();
    for (m, topic_id) in motes.iter().zip(topic_ids) {
        let p = m.recv().await.unwrap();
        let Packet::Publish(p) = p.packet().unwrap() else {
            panic!("expected PUBLISH, got {}", p.text());
        };
        assert_eq!(
            (p.topic, p.data, p.qos),
            (TopicRef::Normal(topic_id), &b"blink"[..], QoS::One)
        );
        m.send(&Packet::Puback {
            topic_id,
            msg_id: p.msg_id,
            return_code: ReturnCode::Accepted,
        })
        .await
        .unwrap();
    }

    // The broker only ever saw the gateway's own ClientId, never a mote's.
    let log = broker.log();
    assert!(log.contains("site-gw"), "the shared link connected");
    assert!(
        !log.contains("mote-"),
        "a mote had a broker connection of its own"
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_gateway_publishes_a_lost_motes_will_but_not_after_disconnect() {
    let (broker, gw) = setup().await;
    sn_tests::flows::will_only_for_the_lost_mote(&broker.url(), gw.addr)
        .await
        .unwrap();
    gw.stop().await;
}
