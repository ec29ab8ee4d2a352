//! Scripted MQTT-SN exchanges of motes on a [`SimRadio`], and forwarder settings for tests.
//! Every wait is bounded by [`WAIT`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use forwarder::io::config::{FlowControl, PortConfig, PortKind, SerialConfig, Settings};
use forwarder::radio::Framing;
use sn_codec::{Connect, Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef};

use super::{SimRadio, TestForwarder};
use crate::sn_client::encode;
use crate::{Mosquitto, Subscriber, TestGateway};

/// Bound of every wait in these helpers.
pub const WAIT: Duration = Duration::from_secs(5);

/// A per-test mosquitto and a gateway with predefined topic 1 = `site/status`, upstream up.
pub async fn broker_and_gateway() -> (Mosquitto, TestGateway) {
    let broker = Mosquitto::start().await.unwrap();
    let (mut core, io) = crate::gateway::test_settings(&broker.url()).unwrap();
    core.predefined.global.insert(1, "site/status".into());
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    (broker, gw)
}

/// A serial port on `path` (115200 baud, no flow control).
pub fn serial_port(path: PathBuf, framing: Framing, wnid: Option<Vec<u8>>) -> PortConfig {
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

/// Forwarder settings on loopback: gateway `gateway`, no multicast, fast reopen.
pub fn settings(gateway: SocketAddr, ports: Vec<PortConfig>) -> Settings {
    let mut s = Settings::new(Some(gateway), ports);
    s.io.bind = "127.0.0.1:0".parse().unwrap();
    s.io.group = None;
    s.io.reopen_initial = Duration::from_millis(50);
    s.io.reopen_max = Duration::from_millis(400);
    s.core.relay_advertise = false;
    s
}

/// Starts the forwarder and waits until every serial port is open.
pub async fn start_forwarder(settings: Settings) -> TestForwarder {
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

/// Sends `p` from `node` through the radio.
pub async fn send(radio: &SimRadio, node: &[u8], p: &Packet<'_>) {
    radio.send(node, &encode(p)).await.unwrap();
}

/// The next message for `node` (`None` = any), within [`WAIT`].
pub async fn recv(radio: &mut SimRadio, node: Option<&[u8]>) -> Vec<u8> {
    radio.recv_for(node, WAIT).await.unwrap().message
}

/// Waits for exactly `p` for `node`.
pub async fn expect(radio: &mut SimRadio, node: Option<&[u8]>, p: &Packet<'_>) {
    let got = recv(radio, node).await;
    assert_eq!(
        got,
        encode(p),
        "expected {p}, got {}",
        Packet::decode(&got).map_or_else(|e| e.to_string(), |g| g.to_string())
    );
}

/// CONNECT, clean session, keep-alive 60 s, no Will.
pub fn connect(client_id: &str) -> Packet<'_> {
    Packet::Connect(Connect {
        will: false,
        clean_session: true,
        duration: 60,
        client_id: client_id.as_bytes(),
    })
}

/// A PUBLISH without dup or retain.
pub fn publish_packet<'a>(
    qos: QoS,
    topic: TopicRef<'a>,
    msg_id: u16,
    data: &'a [u8],
) -> Packet<'a> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        msg_id,
        data,
    })
}

/// CONNECT from `node` and the expected CONNACK (empty `node` = the single node of a line).
pub async fn connect_node(radio: &mut SimRadio, node: &[u8], client_id: &str) {
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

/// REGISTER `name`; returns the topic id from the REGACK.
pub async fn register(radio: &mut SimRadio, node: Option<&[u8]>, name: &str, msg_id: u16) -> u16 {
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

/// REGISTER `topic`, then PUBLISH `q0`, `q1`, `q2` at QoS 0, 1, 2 with every handshake.
pub async fn publish_all_qos(radio: &mut SimRadio, node: Option<&[u8]>, topic: &str) {
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
pub async fn subscribe(radio: &mut SimRadio, node: Option<&[u8]>, topic: &str, msg_id: u16) -> u16 {
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

/// Waits for a PUBLISH to `node`, acknowledges QoS 1, returns (topic id, payload).
pub async fn receive_publish(radio: &mut SimRadio, node: Option<&[u8]>) -> (u16, Vec<u8>) {
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

/// The next `n` messages at the subscriber as (topic, payload).
pub async fn payloads(sub: &mut Subscriber, n: usize) -> Vec<(String, String)> {
    sub.expect_messages(n, WAIT)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.topic.clone(), r.payload_str()))
        .collect()
}
