//! The forwarder end to end: simulated radios on pseudo-terminals (XBee API, SLIP, raw) and
//! UDP motes → `forwarder::io` → the real gateway → a real mosquitto, and back. Every wait is
//! bounded.

use std::time::Duration;

use forwarder::io::config::{PortConfig, PortKind, UdpRadioConfig};
use forwarder::radio::Framing;
use rumqttc::QoS as MqttQoS;
use sn_codec::{Packet, QoS, Register, ReturnCode, Subscribe, TopicRef};
use sn_tests::forwarder::script::*;
use sn_tests::forwarder::{SimFraming, SimRadio, TestForwarder};
use sn_tests::sn_client::encode;
use sn_tests::{Subscriber, publish};

const NODE_A: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];
const NODE_B: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x7E];

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
    let clients = gw.snapshot().await.unwrap().clients;
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
