//! The forwarder's robustness end to end: a serial device unplugged and re-created while
//! the node keeps its session, and a gateway restart. Every wait is bounded.

use forwarder::radio::Framing;
use rumqttc::QoS as MqttQoS;
use sn_codec::{Packet, QoS, ReturnCode, TopicRef};
use sn_tests::forwarder::script::*;
use sn_tests::forwarder::{SimFraming, SimRadio};
use sn_tests::{Mosquitto, Subscriber, TestGateway, publish};

const NODE_A: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];
const NODE_B: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x7E];

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
