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

#[tokio::test]
async fn addressed_slip_motes_reach_the_broker_through_line_noise_and_get_downstream_messages() {
    let (broker, gw) = broker_and_gateway().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "slip-watch",
        &[("slip/#", MqttQoS::ExactlyOnce)],
    )
    .await
    .unwrap();
    let mut radio = SimRadio::open(SimFraming::SlipAddressed).unwrap();
    let fwd = start_forwarder(settings(
        gw.addr,
        vec![serial_port(
            radio.path().into(),
            Framing::Slip { addressed: true },
            None,
        )],
    ))
    .await;
    let (a, b): (&[u8], &[u8]) = (&[0x01], &[0xC0, 0xDB]);
    // Line noise before the first frame and a corrupted frame: each costs one frame at most.
    radio.pty.write(&[0x00, 0xFF, 0xDB, 0x13]).await.unwrap();
    let mut corrupted = radio.frame(a, &encode(&connect("slip-a"))).unwrap();
    corrupted[4] ^= 0x40;
    radio.pty.write(&corrupted).await.unwrap();
    connect_node(&mut radio, a, "slip-a").await;
    connect_node(&mut radio, b, "slip-b").await;
    publish_all_qos(&mut radio, Some(a), "slip/a").await;
    let tid = subscribe(&mut radio, Some(b), "slip/cmd", 4).await;
    publish(
        &broker.url(),
        "slip/cmd",
        b"go",
        MqttQoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        receive_publish(&mut radio, Some(b)).await,
        (tid, b"go".to_vec())
    );
    let got = payloads(&mut sub, 4).await;
    let texts: Vec<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(texts, ["q0", "q1", "q2", "go"]);
    let s = fwd.stats();
    let errors: u64 = s.ports[0].frame_errors.values().sum();
    assert_eq!(errors, 2, "{s}");
    assert_eq!(s.nodes, 2);
}

#[tokio::test]
async fn a_raw_serial_mote_connects_publishes_and_receives_under_its_configured_wnid() {
    let (broker, gw) = broker_and_gateway().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "raw-watch",
        &[("raw/#", MqttQoS::ExactlyOnce)],
    )
    .await
    .unwrap();
    let mut radio = SimRadio::open(SimFraming::Raw).unwrap();
    let _fwd = start_forwarder(settings(
        gw.addr,
        vec![serial_port(
            radio.path().into(),
            Framing::Raw,
            Some(vec![0x0A]),
        )],
    ))
    .await;
    connect_node(&mut radio, &[], "raw-mote").await;
    publish_all_qos(&mut radio, None, "raw/t").await;
    let tid = subscribe(&mut radio, None, "raw/cmd", 9).await;
    publish(
        &broker.url(),
        "raw/cmd",
        b"blink",
        MqttQoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        receive_publish(&mut radio, None).await,
        (tid, b"blink".to_vec())
    );
    assert_eq!(payloads(&mut sub, 3).await.len(), 3);
    // The gateway sees the node under WNID 0a.
    let clients = gw.stats().clients;
    assert!(
        clients.iter().any(|c| c.peer.to_string().ends_with("/0a")),
        "{clients:?}"
    );
}

#[tokio::test]
async fn plain_slip_and_xbee_ports_run_side_by_side() {
    let (broker, gw) = broker_and_gateway().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "mixed-watch",
        &[("site/status", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();
    let mut xbee = SimRadio::open(SimFraming::Xbee).unwrap();
    let mut slip = SimRadio::open(SimFraming::Slip).unwrap();
    let _fwd = start_forwarder(settings(
        gw.addr,
        vec![
            serial_port(xbee.path().into(), Framing::Xbee { escaped: true }, None),
            serial_port(
                slip.path().into(),
                Framing::Slip { addressed: false },
                Some(vec![0x42]),
            ),
        ],
    ))
    .await;
    connect_node(&mut xbee, &NODE_A, "mixed-x").await;
    connect_node(&mut slip, &[], "mixed-s").await;
    for (radio, node, text) in [
        (&xbee, &NODE_A[..], &b"from-x"[..]),
        (&slip, &[][..], &b"from-s"[..]),
    ] {
        send(
            radio,
            node,
            &publish_packet(QoS::One, TopicRef::Predefined(1), 5, text),
        )
        .await;
    }
    let ack = Packet::Puback {
        topic_id: 1,
        msg_id: 5,
        return_code: ReturnCode::Accepted,
    };
    expect(&mut xbee, Some(&NODE_A), &ack).await;
    expect(&mut slip, None, &ack).await;
    let mut got: Vec<String> = payloads(&mut sub, 2)
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    got.sort();
    assert_eq!(got, ["from-s", "from-x"]);
}

#[tokio::test]
async fn two_udp_motes_behind_the_forwarder_are_told_apart() {
    let (broker, gw) = broker_and_gateway().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "udp-watch",
        &[("udp/#", MqttQoS::ExactlyOnce)],
    )
    .await
    .unwrap();
    let port = PortConfig {
        name: "udp-radio".into(),
        kind: PortKind::Udp(UdpRadioConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            broadcast: None,
        }),
    };
    let fwd = TestForwarder::start(settings(gw.addr, vec![port]))
        .await
        .unwrap();
    let radio_addr = fwd.udp_ports[0].unwrap();
    let m1 = sn_tests::SnClient::new(radio_addr).await.unwrap();
    let m2 = sn_tests::SnClient::new(radio_addr).await.unwrap();
    assert_eq!(
        m1.connect("udp-1", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    assert_eq!(
        m2.connect("udp-2", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    for (m, id) in [(&m1, 1u16), (&m2, 2u16)] {
        m.send(&Packet::Register(Register {
            topic_id: 0,
            msg_id: id,
            topic_name: format!("udp/{id}").as_bytes(),
        }))
        .await
        .unwrap();
        let r = m.recv().await.unwrap();
        let Packet::Regack { topic_id, .. } = r.packet().unwrap() else {
            panic!("{}", r.text())
        };
        m.send(&publish_packet(
            QoS::One,
            TopicRef::Normal(topic_id),
            10,
            b"hello",
        ))
        .await
        .unwrap();
        m.expect(&Packet::Puback {
            topic_id,
            msg_id: 10,
            return_code: ReturnCode::Accepted,
        })
        .await
        .unwrap();
    }
    let mut topics: Vec<String> = payloads(&mut sub, 2)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    topics.sort();
    assert_eq!(topics, ["udp/1", "udp/2"]);
    // Downstream to the second mote only.
    m2.send(&Packet::Subscribe(Subscribe {
        dup: false,
        qos: QoS::Zero,
        msg_id: 3,
        topic: TopicRef::Name(b"udp/down"),
    }))
    .await
    .unwrap();
    let r = m2.recv().await.unwrap();
    assert!(
        matches!(r.packet().unwrap(), Packet::Suback { .. }),
        "{}",
        r.text()
    );
    publish(
        &broker.url(),
        "udp/down",
        b"only-2",
        MqttQoS::AtMostOnce,
        false,
    )
    .await
    .unwrap();
    let r = m2.recv().await.unwrap();
    let Packet::Publish(p) = r.packet().unwrap() else {
        panic!("{}", r.text())
    };
    assert_eq!(p.data, b"only-2");
    m1.expect_nothing(Duration::from_millis(200)).await.unwrap();
    assert_eq!(fwd.stats().nodes, 2);
}

#[tokio::test]
async fn a_serial_device_that_disappears_and_comes_back_is_reopened_and_traffic_flows_again() {
    let (broker, gw) = broker_and_gateway().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "reopen-watch",
        &[("site/status", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyRADIO");
    let mut radio = SimRadio::open(SimFraming::Xbee).unwrap();
    std::os::unix::fs::symlink(radio.path(), &link).unwrap();
    let fwd = start_forwarder(settings(
        gw.addr,
        vec![serial_port(
            link.clone(),
            Framing::Xbee { escaped: true },
            None,
        )],
    ))
    .await;
    connect_node(&mut radio, &NODE_A, "unplugged").await;
    let ack = |msg_id| Packet::Puback {
        topic_id: 1,
        msg_id,
        return_code: ReturnCode::Accepted,
    };
    send(
        &radio,
        &NODE_A,
        &publish_packet(QoS::One, TopicRef::Predefined(1), 1, b"before"),
    )
    .await;
    expect(&mut radio, Some(&NODE_A), &ack(1)).await;

    // Unplug: the pty (master and our slave) goes away, the device path dangles.
    drop(radio);
    std::fs::remove_file(&link).unwrap();
    fwd.wait_for("port down", WAIT, |s| !s.ports[0].up)
        .await
        .unwrap();
    // Meanwhile the gateway talks to the node: dropped as port_down, counted.
    publish(
        &broker.url(),
        "site/status",
        b"ignored",
        MqttQoS::AtMostOnce,
        false,
    )
    .await
    .unwrap();

    // Plug in again (a new device node, as after a USB re-enumeration).
    let mut radio = SimRadio::open(SimFraming::Xbee).unwrap();
    let tmp = dir.path().join("ttyRADIO.new");
    std::os::unix::fs::symlink(radio.path(), &tmp).unwrap();
    std::fs::rename(&tmp, &link).unwrap();
    fwd.wait_for("port reopened", WAIT, |s| {
        s.ports[0].up && s.ports[0].opened == 2
    })
    .await
    .unwrap();
    send(
        &radio,
        &NODE_A,
        &publish_packet(QoS::One, TopicRef::Predefined(1), 2, b"after"),
    )
    .await;
    expect(&mut radio, Some(&NODE_A), &ack(2)).await;
    let got: Vec<String> = payloads(&mut sub, 3)
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(got, ["before", "ignored", "after"]);
}

#[tokio::test]
async fn the_forwarder_survives_a_gateway_restart_on_the_same_port() {
    let broker = Mosquitto::start().await.unwrap();
    let port = sn_tests::free_udp_port().unwrap();
    let gw_settings = || {
        let (mut core, mut io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
        core.predefined.global.insert(1, "site/status".into());
        io.listeners[0].bind = sn_tests::ports::loopback(port);
        (core, io)
    };
    let (core, io) = gw_settings();
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let mut sub = Subscriber::connect(
        &broker.url(),
        "restart-watch",
        &[("site/status", MqttQoS::AtLeastOnce)],
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
    connect_node(&mut radio, &NODE_B, "survivor").await;
    send(
        &radio,
        &NODE_B,
        &publish_packet(QoS::One, TopicRef::Predefined(1), 3, b"one"),
    )
    .await;
    expect(
        &mut radio,
        Some(&NODE_B),
        &Packet::Puback {
            topic_id: 1,
            msg_id: 3,
            return_code: ReturnCode::Accepted,
        },
    )
    .await;
    gw.stop().await;

    // The gateway is gone: frames go out into the void, the forwarder keeps running.
    send(
        &radio,
        &NODE_B,
        &publish_packet(QoS::Zero, TopicRef::Predefined(1), 0, b"lost"),
    )
    .await;
    fwd.wait_for("frame relayed while the gateway is down", WAIT, |s| {
        s.ports[0].frames_in >= 3
    })
    .await
    .unwrap();

    let (core, io) = gw_settings();
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    connect_node(&mut radio, &NODE_B, "survivor").await;
    send(
        &radio,
        &NODE_B,
        &publish_packet(QoS::One, TopicRef::Predefined(1), 4, b"two"),
    )
    .await;
    expect(
        &mut radio,
        Some(&NODE_B),
        &Packet::Puback {
            topic_id: 1,
            msg_id: 4,
            return_code: ReturnCode::Accepted,
        },
    )
    .await;
    let got: Vec<String> = payloads(&mut sub, 2)
        .await
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(got, ["one", "two"]);
    assert!(fwd.stats().ports[0].up);
}
