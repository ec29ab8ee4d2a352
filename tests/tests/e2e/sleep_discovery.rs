//! Battery-powered motes end to end: a full sleep cycle against a real mosquitto, and gateway
//! discovery over IPv4 multicast on loopback with two gateways. Every wait is bounded.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use gateway::core::config::DiscoveryConfig;
use gateway::io::config::MulticastConfig;
use rumqttc::QoS as MqttQoS;
use sn_codec::{Packet, QoS, Register, ReturnCode, Subscribe, TopicRef};
use sn_tests::sn_client::encode;
use sn_tests::{Mosquitto, SnClient, TestGateway, publish};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_sleeping_mote_gets_every_qos1_message_on_wake_up_exactly_as_the_broker_sent_it() {
    let broker = Mosquitto::start().await.unwrap();
    let gw = TestGateway::start(&broker.url()).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let m = SnClient::new(gw.addr).await.unwrap();
    m.connect("sleepy", true, 60).await.unwrap();
    m.send(&Packet::Subscribe(Subscribe {
        dup: false,
        qos: QoS::One,
        msg_id: 1,
        topic: TopicRef::Name(b"sleepy/#"),
    }))
    .await
    .unwrap();
    m.expect(&Packet::Suback {
        qos: QoS::One,
        topic_id: 0,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    m.send(&Packet::Disconnect { duration: Some(30) })
        .await
        .unwrap();
    m.expect(&Packet::Disconnect { duration: None })
        .await
        .unwrap();

    let sent = [
        ("sleepy/a", "one"),
        ("sleepy/b", "two"),
        ("sleepy/a", "three"),
    ];
    for (topic, payload) in sent {
        publish(
            &broker.url(),
            topic,
            payload.as_bytes(),
            MqttQoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    }
    // Nothing reaches a sleeping mote.
    m.expect_nothing(Duration::from_millis(300)).await.unwrap();

    m.send(&Packet::Pingreq {
        client_id: Some(b"sleepy"),
    })
    .await
    .unwrap();
    let mut received = vec![];
    loop {
        let r = m.recv().await.unwrap();
        match r.packet().unwrap() {
            Packet::Register(Register {
                topic_id, msg_id, ..
            }) => {
                m.send(&Packet::Regack {
                    topic_id,
                    msg_id,
                    return_code: ReturnCode::Accepted,
                })
                .await
                .unwrap();
            }
            Packet::Publish(p) => {
                assert_eq!(p.qos, QoS::One);
                received.push((
                    p.topic.id_field(),
                    String::from_utf8(p.data.to_vec()).unwrap(),
                ));
                m.send(&Packet::Puback {
                    topic_id: p.topic.id_field(),
                    msg_id: p.msg_id,
                    return_code: ReturnCode::Accepted,
                })
                .await
                .unwrap();
            }
            Packet::Pingresp => break,
            other => panic!("unexpected {other}"),
        }
    }
    let payloads: Vec<&str> = received.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(payloads, ["one", "two", "three"], "in order, each once");
    assert_eq!(received[0].0, received[2].0, "same topic, same id");
    assert_ne!(received[0].0, received[1].0);
    // Asleep again: a new message waits for the next wake-up.
    publish(
        &broker.url(),
        "sleepy/a",
        b"four",
        MqttQoS::AtLeastOnce,
        false,
    )
    .await
    .unwrap();
    m.expect_nothing(Duration::from_millis(300)).await.unwrap();
    m.send(&Packet::Pingreq {
        client_id: Some(b"sleepy"),
    })
    .await
    .unwrap();
    let r = m.recv().await.unwrap();
    let Packet::Publish(p) = r.packet().unwrap() else {
        panic!("{}", r.text())
    };
    assert_eq!(p.data, b"four");
}

fn group_listener(group: SocketAddrV4) -> UdpSocket {
    UdpSocket::from_std(sn_tests::ports::loopback_group_member(group).unwrap()).unwrap()
}

async fn discovery_gateway(broker_url: &str, id: u8, group: SocketAddrV4) -> TestGateway {
    let (mut core, mut io) = sn_tests::gateway::test_settings(broker_url).unwrap();
    core.gateway_id = id;
    core.upstream.gateway_client_id = format!("gw-{id}");
    core.discovery = Some(DiscoveryConfig {
        advertise_interval: Duration::from_secs(1),
        max_gwinfo_ttl: 1,
        max_gwinfo_delay: Duration::from_millis(50),
    });
    io.listeners[0].multicast = Some(MulticastConfig {
        group: SocketAddr::V4(group),
        interface_v4: Some(Ipv4Addr::LOCALHOST),
        interface_v6: 0,
        ttl: 1,
    });
    TestGateway::start_with(core, io).await.unwrap()
}

/// Collects datagrams from `sock` for `window`, decoded to text.
async fn collect(sock: &UdpSocket, window: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut out = vec![];
    let deadline = tokio::time::Instant::now() + window;
    let mut buf = [0u8; 512];
    while let Ok(Ok((n, from))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
    {
        out.push((from, buf[..n].to_vec()));
    }
    out
}

#[tokio::test]
async fn two_gateways_on_one_host_advertise_and_both_answer_searchgw() {
    let broker = Mosquitto::start().await.unwrap();
    let port = sn_tests::free_udp_port().unwrap();
    let group = SocketAddrV4::new(Ipv4Addr::new(225, 1, 1, 77), port);
    let listener = group_listener(group);
    let g1 = discovery_gateway(&broker.url(), 11, group).await;
    let g2 = discovery_gateway(&broker.url(), 22, group).await;
    g1.wait_upstream(true, WAIT).await.unwrap();
    g2.wait_upstream(true, WAIT).await.unwrap();

    // ADVERTISE from both, from their unicast ports, with Duration = 1 s.
    let seen = collect(&listener, Duration::from_millis(1500)).await;
    for (gw, id) in [(&g1, 11u8), (&g2, 22u8)] {
        let adv = encode(&Packet::Advertise {
            gw_id: id,
            duration: 1,
        });
        assert!(
            seen.iter()
                .any(|(from, b)| *b == adv && from.port() == gw.addr.port()),
            "ADVERTISE of gateway {id}: {seen:?}"
        );
    }

    // SEARCHGW to the group: both answer unicast (and on the group).
    let searcher = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    searcher.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    searcher.set_multicast_ttl_v4(1).unwrap();
    searcher
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    searcher.set_nonblocking(true).unwrap();
    let searcher = UdpSocket::from_std(searcher.into()).unwrap();
    searcher
        .send_to(
            &encode(&Packet::SearchGw { radius: 1 }),
            SocketAddr::V4(group),
        )
        .await
        .unwrap();
    let answers = collect(&searcher, Duration::from_millis(800)).await;
    let mut ids: Vec<u8> = answers
        .iter()
        .filter_map(|(_, b)| match Packet::decode(b) {
            Ok(Packet::GwInfo { gw_id, .. }) => Some(gw_id),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![11, 22]);
}

#[tokio::test]
async fn a_gateway_whose_upstream_is_down_neither_advertises_nor_answers() {
    let dead = format!("mqtt://127.0.0.1:{}", sn_tests::free_tcp_port().unwrap());
    let port = sn_tests::free_udp_port().unwrap();
    let group = SocketAddrV4::new(Ipv4Addr::new(225, 1, 1, 78), port);
    let listener = group_listener(group);
    let gw = discovery_gateway(&dead, 33, group).await;
    let m = SnClient::new(gw.addr).await.unwrap();
    m.send(&Packet::SearchGw { radius: 1 }).await.unwrap();
    m.expect_nothing(Duration::from_millis(500)).await.unwrap();
    let seen = collect(&listener, Duration::from_millis(1500)).await;
    assert!(
        seen.is_empty(),
        "no ADVERTISE while the upstream is down: {seen:?}"
    );
}

#[tokio::test]
async fn qos1_messages_for_a_sleeping_mote_survive_a_gateway_crash_at_the_broker() {
    let broker = Mosquitto::start().await.unwrap();
    let (core, io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    let first = sn_tests::gateway::CrashableGateway::start_with(core.clone(), io.clone())
        .await
        .unwrap();
    let m = SnClient::new(first.addr).await.unwrap();
    assert_eq!(
        m.connect("durable", false, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    m.send(&Packet::Subscribe(Subscribe {
        dup: false,
        qos: QoS::One,
        msg_id: 1,
        topic: TopicRef::Name(b"crash/#"),
    }))
    .await
    .unwrap();
    m.expect(&Packet::Suback {
        qos: QoS::One,
        topic_id: 0,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    m.send(&Packet::Disconnect { duration: Some(60) })
        .await
        .unwrap();
    m.expect(&Packet::Disconnect { duration: None })
        .await
        .unwrap();
    for payload in ["m1", "m2"] {
        publish(
            &broker.url(),
            "crash/x",
            payload.as_bytes(),
            MqttQoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    }
    // The gateway holds the messages for the sleeper without acknowledging them upstream.
    m.expect_nothing(Duration::from_millis(300)).await.unwrap();
    first.kill();

    let second = TestGateway::start_with(core, io).await.unwrap();
    let m = SnClient::new(second.addr).await.unwrap();
    assert_eq!(
        m.connect("durable", false, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    let mut got = vec![];
    while got.len() < 2 {
        let r = m.recv().await.unwrap();
        match r.packet().unwrap() {
            Packet::Register(Register {
                topic_id,
                msg_id,
                topic_name,
            }) => {
                assert_eq!(topic_name, b"crash/x");
                m.send(&Packet::Regack {
                    topic_id,
                    msg_id,
                    return_code: ReturnCode::Accepted,
                })
                .await
                .unwrap();
            }
            Packet::Publish(p) => {
                got.push(String::from_utf8(p.data.to_vec()).unwrap());
                m.send(&Packet::Puback {
                    topic_id: p.topic.id_field(),
                    msg_id: p.msg_id,
                    return_code: ReturnCode::Accepted,
                })
                .await
                .unwrap();
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        got,
        ["m1", "m2"],
        "redelivered by the broker to the new gateway session"
    );
}
