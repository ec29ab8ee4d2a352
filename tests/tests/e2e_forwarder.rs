//! The forwarder end to end: simulated radios on pseudo-terminals (XBee API, SLIP, raw) and
//! UDP motes → `forwarder::io` → the real gateway → a real mosquitto, and back. Every wait is
//! bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use forwarder::io::config::{
    FlowControl, PortConfig, PortKind, SerialConfig, Settings, UdpRadioConfig,
};
use forwarder::radio::Framing;
use rumqttc::QoS as MqttQoS;
use sn_codec::{Connect, Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef};
use sn_tests::forwarder::{SimFraming, SimRadio, TestForwarder};
use sn_tests::sn_client::encode;
use sn_tests::{Mosquitto, Subscriber, TestGateway, publish};

const WAIT: Duration = Duration::from_secs(5);
const NODE_A: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];
const NODE_B: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x7E];

async fn broker_and_gateway() -> (Mosquitto, TestGateway) {
    let broker = Mosquitto::start().await.unwrap();
    let (mut core, io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    core.predefined.global.insert(1, "site/status".into());
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    (broker, gw)
}

fn serial_port(path: PathBuf, framing: Framing, wnid: Option<Vec<u8>>) -> PortConfig {
    PortConfig {
        name: path.display().to_string(),
        kind: PortKind::Serial(SerialConfig {
            path,
            baud: 115_200,
            flow: FlowControl::None,
            framing,
            wnid,
        }),
    }
}

fn settings(gateway: SocketAddr, ports: Vec<PortConfig>) -> Settings {
    let mut s = Settings::new(Some(gateway), ports);
    s.io.bind = "127.0.0.1:0".parse().unwrap();
    s.io.group = None;
    s.io.reopen_initial = Duration::from_millis(50);
    s.io.reopen_max = Duration::from_millis(400);
    s.core.relay_advertise = false;
    s
}

async fn start_forwarder(settings: Settings) -> TestForwarder {
    let serial_ports = settings
        .io
        .ports
        .iter()
        .filter(|p| matches!(p.kind, PortKind::Serial(_)))
        .count();
    let fwd = TestForwarder::start(settings).await.unwrap();
    fwd.wait_for("serial ports open", WAIT, |s| {
        s.ports.iter().filter(|p| p.up).count() >= serial_ports
    })
    .await
    .unwrap();
    fwd
}

async fn send(radio: &SimRadio, node: &[u8], p: &Packet<'_>) {
    radio.send(node, &encode(p)).await.unwrap();
}

async fn recv(radio: &mut SimRadio, node: Option<&[u8]>) -> Vec<u8> {
    radio.recv_for(node, WAIT).await.unwrap().message
}

async fn expect(radio: &mut SimRadio, node: Option<&[u8]>, p: &Packet<'_>) {
    let got = recv(radio, node).await;
    assert_eq!(
        got,
        encode(p),
        "expected {p}, got {}",
        Packet::decode(&got).map_or_else(|e| e.to_string(), |g| g.to_string())
    );
}

fn connect(client_id: &str) -> Packet<'_> {
    Packet::Connect(Connect {
        will: false,
        clean_session: true,
        duration: 60,
        client_id: client_id.as_bytes(),
    })
}

fn publish_packet<'a>(qos: QoS, topic: TopicRef<'a>, msg_id: u16, data: &'a [u8]) -> Packet<'a> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        msg_id,
        data,
    })
}

async fn connect_node(radio: &mut SimRadio, node: &[u8], client_id: &str) {
    send(radio, node, &connect(client_id)).await;
    expect(
        radio,
        Some(node).filter(|n| !n.is_empty()),
        &Packet::Connack {
            return_code: ReturnCode::Accepted,
        },
    )
    .await;
}

async fn register(radio: &mut SimRadio, node: Option<&[u8]>, name: &str, msg_id: u16) -> u16 {
    let at = node.unwrap_or_default();
    send(
        radio,
        at,
        &Packet::Register(Register {
            topic_id: 0,
            msg_id,
            topic_name: name.as_bytes(),
        }),
    )
    .await;
    let r = recv(radio, node).await;
    match Packet::decode(&r).unwrap() {
        Packet::Regack {
            topic_id,
            return_code: ReturnCode::Accepted,
            ..
        } => topic_id,
        other => panic!("expected REGACK, got {other}"),
    }
}

/// QoS 0, 1 and 2 publishes of one node on `topic`.
async fn publish_all_qos(radio: &mut SimRadio, node: Option<&[u8]>, topic: &str) {
    let at = node.unwrap_or_default();
    let tid = register(radio, node, topic, 1).await;
    send(
        radio,
        at,
        &publish_packet(QoS::Zero, TopicRef::Normal(tid), 0, b"q0"),
    )
    .await;
    send(
        radio,
        at,
        &publish_packet(QoS::One, TopicRef::Normal(tid), 2, b"q1"),
    )
    .await;
    expect(
        radio,
        node,
        &Packet::Puback {
            topic_id: tid,
            msg_id: 2,
            return_code: ReturnCode::Accepted,
        },
    )
    .await;
    send(
        radio,
        at,
        &publish_packet(QoS::Two, TopicRef::Normal(tid), 3, b"q2"),
    )
    .await;
    expect(radio, node, &Packet::Pubrec { msg_id: 3 }).await;
    send(radio, at, &Packet::Pubrel { msg_id: 3 }).await;
    expect(radio, node, &Packet::Pubcomp { msg_id: 3 }).await;
}

/// SUBSCRIBE to a concrete topic at QoS 1; returns its topic id.
async fn subscribe(radio: &mut SimRadio, node: Option<&[u8]>, topic: &str, msg_id: u16) -> u16 {
    send(
        radio,
        node.unwrap_or_default(),
        &Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::One,
            msg_id,
            topic: TopicRef::Name(topic.as_bytes()),
        }),
    )
    .await;
    let r = recv(radio, node).await;
    match Packet::decode(&r).unwrap() {
        Packet::Suback {
            topic_id,
            return_code: ReturnCode::Accepted,
            ..
        } => topic_id,
        other => panic!("expected SUBACK, got {other}"),
    }
}

/// Waits for a QoS 1 PUBLISH to `node`, acknowledges it, returns (topic id, payload).
async fn receive_publish(radio: &mut SimRadio, node: Option<&[u8]>) -> (u16, Vec<u8>) {
    let r = recv(radio, node).await;
    let Packet::Publish(p) = Packet::decode(&r).unwrap() else {
        panic!("expected PUBLISH, got {:?}", Packet::decode(&r));
    };
    if p.qos == QoS::One {
        send(
            radio,
            node.unwrap_or_default(),
            &Packet::Puback {
                topic_id: p.topic.id_field(),
                msg_id: p.msg_id,
                return_code: ReturnCode::Accepted,
            },
        )
        .await;
    }
    (p.topic.id_field(), p.data.to_vec())
}

async fn payloads(sub: &mut Subscriber, n: usize) -> Vec<(String, String)> {
    sub.expect_messages(n, WAIT)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.topic.clone(), r.payload_str()))
        .collect()
}

#[tokio::test]
async fn two_xbee_motes_publish_at_every_qos_and_each_gets_its_own_downstream_messages() {
    let (broker, gw) = broker_and_gateway().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "xbee-watch",
        &[
            ("xb/#", MqttQoS::ExactlyOnce),
            ("site/status", MqttQoS::AtLeastOnce),
        ],
    )
    .await
    .unwrap();
    let mut radio = SimRadio::open(SimFraming::Xbee).unwrap();
    let fwd = start_forwarder(settings(
        gw.addr,
        vec![serial_port(
            radio.path().into(),
            Framing::Xbee { escaped: true },
            None,
        )],
    ))
    .await;

    connect_node(&mut radio, &NODE_A, "xb-a").await;
    connect_node(&mut radio, &NODE_B, "xb-b").await;
    // QoS −1 with a predefined topic id: no reply.
    send(
        &radio,
        &NODE_A,
        &publish_packet(QoS::MinusOne, TopicRef::Predefined(1), 0, b"minus1"),
    )
    .await;
    publish_all_qos(&mut radio, Some(&NODE_A), "xb/a").await;
    let tid_b = subscribe(&mut radio, Some(&NODE_B), "xb/cmd/b", 7).await;
    publish(
        &broker.url(),
        "xb/cmd/b",
        b"led-on",
        MqttQoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        receive_publish(&mut radio, Some(&NODE_B)).await,
        (tid_b, b"led-on".to_vec())
    );

    let mut got = payloads(&mut sub, 4).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            ("site/status".into(), "minus1".into()),
            ("xb/a".into(), "q0".into()),
            ("xb/a".into(), "q1".into()),
            ("xb/a".into(), "q2".into()),
        ]
    );
    // Nothing was sent to node A that was meant for B, and nothing is left over.
    assert!(
        radio
            .collect(Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );
    let s = fwd.stats();
    assert_eq!(s.nodes, 2);
    assert_eq!(s.ports[0].frames_in, 10);
    assert_eq!(s.ports[0].frames_out, 8);
    assert_eq!(s.ports[0].tx_failures, 0);
    assert!(s.dropped.is_empty(), "{s}");
}

#[tokio::test]
async fn a_sleeping_xbee_mote_gets_its_buffered_message_when_it_wakes_with_pingreq() {
    let (broker, gw) = broker_and_gateway().await;
    let mut radio = SimRadio::open(SimFraming::Xbee).unwrap();
    let _fwd = start_forwarder(settings(
        gw.addr,
        vec![serial_port(
            radio.path().into(),
            Framing::Xbee { escaped: true },
            None,
        )],
    ))
    .await;
    let node = Some(&NODE_A[..]);
    connect_node(&mut radio, &NODE_A, "sleepy-xb").await;
    let tid = subscribe(&mut radio, node, "sleepy/xb", 1).await;
    send(&radio, &NODE_A, &Packet::Disconnect { duration: Some(30) }).await;
    expect(&mut radio, node, &Packet::Disconnect { duration: None }).await;
    publish(
        &broker.url(),
        "sleepy/xb",
        b"while-asleep",
        MqttQoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();
    assert!(
        radio
            .collect(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    send(
        &radio,
        &NODE_A,
        &Packet::Pingreq {
            client_id: Some(b"sleepy-xb"),
        },
    )
    .await;
    assert_eq!(
        receive_publish(&mut radio, node).await,
        (tid, b"while-asleep".to_vec())
    );
    expect(&mut radio, node, &Packet::Pingresp).await;
}
