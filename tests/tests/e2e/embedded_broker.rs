//! Zero-setup start: with the default `embedded://` upstream the gateway runs its own broker,
//! and an ordinary MQTT client sees the motes' traffic. Every wait is bounded.

use std::time::Duration;

use gateway::io::config::Scheme;
use rumqttc::QoS as MqttQoS;
use sn_codec::{Packet, Publish, QoS, ReturnCode, TopicRef};
use sn_tests::{SnClient, Subscriber, TestGateway};

#[tokio::test]
async fn the_embedded_broker_carries_mote_traffic_to_ordinary_mqtt_clients() {
    let port = sn_tests::free_tcp_port().unwrap();
    let (mut core, mut io) =
        sn_tests::gateway::test_settings(&format!("mqtt://127.0.0.1:{port}")).unwrap();
    io.upstream.scheme = Scheme::Embedded;
    core.predefined.global.insert(1, "shed/temperature".into());
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, Duration::from_secs(5))
        .await
        .unwrap();

    let url = format!("mqtt://127.0.0.1:{port}");
    let mut sub = Subscriber::connect(&url, "app", &[("shed/#", MqttQoS::AtLeastOnce)])
        .await
        .unwrap();
    let m = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        m.connect("mote-e", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    let p = Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Predefined(1),
        msg_id: 1,
        data: b"21.5",
    };
    m.send(&Packet::Publish(p)).await.unwrap();
    m.expect(&Packet::Puback {
        topic_id: 1,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    let got = sub
        .next_message(Duration::from_secs(5))
        .await
        .expect("the reading at the embedded broker");
    assert_eq!(
        (got.topic.as_str(), got.payload_str().as_str()),
        ("shed/temperature", "21.5")
    );
}

#[tokio::test]
async fn a_taken_address_for_the_embedded_broker_is_a_clear_start_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (core, mut io) =
        sn_tests::gateway::test_settings(&format!("mqtt://127.0.0.1:{port}")).unwrap();
    io.upstream.scheme = Scheme::Embedded;
    let err = TestGateway::start_with(core, io).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("embedded broker cannot listen on 127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("--upstream mqtt://"), "{text}");
}
