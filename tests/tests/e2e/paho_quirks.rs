//! What the most common mote library (the Paho MQTT-SN embedded C packet library) sends and
//! expects, as exact byte sequences, through the real binary to a real mosquitto: a SUBACK for
//! a short topic name that carries the name's two octets, and a 256-octet message written in
//! the long Length form two octets short. The PyPI `mqtt-sn-12` client, which needs 0x0000 in
//! that SUBACK, is covered in `tls_interop` with that setting.

use std::time::Duration;

use rumqttc::QoS as MqttQoS;
use sn_codec::{Packet, ReturnCode};
use sn_tests::daemon::{Daemon, DaemonOptions};
use sn_tests::{Mosquitto, SnClient, Subscriber};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_paho_mote_receives_on_a_short_name_and_its_248_octet_reading_arrives_whole() {
    let broker = Mosquitto::start().await.unwrap();
    let daemon = Daemon::start(&broker.url(), DaemonOptions::default())
        .await
        .unwrap();
    let mut readings = Subscriber::connect(
        &broker.url(),
        "paho-readings",
        &[("site/big", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();
    let mote = SnClient::new(daemon.udp).await.unwrap();
    assert_eq!(
        mote.connect("paho-mote", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );

    // SUBSCRIBE QoS 1 to the short name "x1", MsgId 1.
    mote.send_raw(&[0x07, 0x12, 0x22, 0x00, 0x01, b'x', b'1'])
        .await
        .unwrap();
    // SUBACK QoS 1, TopicId = the name's two octets, MsgId 1, accepted.
    let suback = mote.recv().await.unwrap();
    assert_eq!(suback.0, [0x08, 0x13, 0x20, b'x', b'1', 0x00, 0x01, 0x00]);

    // A command on "x1" reaches the mote as a PUBLISH on the short name it filed.
    sn_tests::mqtt::publish(&broker.url(), "x1", b"on", MqttQoS::AtLeastOnce, false)
        .await
        .unwrap();
    let publish = mote.recv().await.unwrap();
    let bytes = &publish.0;
    assert_eq!(bytes[1], 0x0C, "PUBLISH");
    assert_eq!(bytes[2] & 0x03, 0b10, "short topic name");
    assert_eq!(&bytes[3..5], b"x1");
    assert_eq!(&bytes[7..], b"on");
    let msg_id = [bytes[5], bytes[6]];
    mote.send_raw(&[0x07, 0x0D, b'x', b'1', msg_id[0], msg_id[1], 0x00])
        .await
        .unwrap();

    // REGISTER "site/big", then a QoS 1 PUBLISH of 248 octets as the library writes it:
    // 257 octets starting 01 00 FF 0C.
    let mut register = vec![0x0E, 0x0A, 0x00, 0x00, 0x00, 0x02];
    register.extend(b"site/big");
    mote.send_raw(&register).await.unwrap();
    let topic_id = match mote.recv().await.unwrap().packet().unwrap() {
        Packet::Regack {
            topic_id,
            return_code: ReturnCode::Accepted,
            ..
        } => topic_id,
        other => panic!("expected REGACK, got {other}"),
    };
    let payload: Vec<u8> = (0..248u32).map(|i| (i % 251) as u8).collect();
    let mut datagram = vec![0x01, 0x00, 0xFF, 0x0C, 0x20];
    datagram.extend(topic_id.to_be_bytes());
    datagram.extend([0x00, 0x03]);
    datagram.extend(&payload);
    assert_eq!(datagram.len(), 257);
    mote.send_raw(&datagram).await.unwrap();
    mote.expect(&Packet::Puback {
        topic_id,
        msg_id: 3,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    let got = readings.next_message(WAIT).await.expect("the reading");
    assert_eq!(got.payload, payload, "all 248 octets");

    let metrics = gateway::admin_client::request(daemon.http, "GET", "/metrics")
        .await
        .unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("mqttsn_gateway_length_quirks_total 1"),
        "{metrics}"
    );
    daemon.stop().await;
}
