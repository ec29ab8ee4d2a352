//! The real gateway on loopback UDP against a real mosquitto started per test: every client
//! flow end to end. Every wait is bounded.

use std::time::Duration;

use rumqttc::QoS as MqttQoS;
use sn_codec::{Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef, WillTopic};
use sn_tests::sn_client::encode;
use sn_tests::{Mosquitto, SnClient, Subscriber, TestGateway, publish};

const WAIT: Duration = Duration::from_secs(5);

async fn setup() -> (Mosquitto, TestGateway) {
    setup_with(|_| {}).await
}

/// [`setup`] with core settings changed by `change`.
async fn setup_with(
    change: impl FnOnce(&mut gateway::core::config::GatewayConfig),
) -> (Mosquitto, TestGateway) {
    let broker = Mosquitto::start().await.unwrap();
    let mut cfg = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    cfg.0.predefined.global.insert(1, "site/status".into());
    change(&mut cfg.0);
    let gw = TestGateway::start_with(cfg.0, cfg.1).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    (broker, gw)
}

fn pub_packet<'a>(
    qos: QoS,
    topic: TopicRef<'a>,
    msg_id: u16,
    data: &'a [u8],
    retain: bool,
) -> Packet<'a> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain,
        topic,
        msg_id,
        data,
    })
}

async fn register(m: &SnClient, name: &str, msg_id: u16) -> u16 {
    m.send(&Packet::Register(Register {
        topic_id: 0,
        msg_id,
        topic_name: name.as_bytes(),
    }))
    .await
    .unwrap();
    let r = m.recv().await.unwrap();
    match r.packet().unwrap() {
        Packet::Regack {
            topic_id,
            msg_id: m_id,
            return_code: ReturnCode::Accepted,
        } if m_id == msg_id => topic_id,
        other => panic!("expected REGACK, got {other}"),
    }
}

#[tokio::test]
async fn publishes_at_qos_0_1_and_2_reach_the_broker_with_retain_preserved() {
    let (broker, gw) = setup().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "watcher",
        &[("sensors/#", MqttQoS::ExactlyOnce)],
    )
    .await
    .unwrap();
    let m = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        m.connect("mote-1", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    let tid = register(&m, "sensors/t", 1).await;

    m.send(&pub_packet(
        QoS::Zero,
        TopicRef::Normal(tid),
        0,
        b"q0",
        false,
    ))
    .await
    .unwrap();
    m.send(&pub_packet(QoS::One, TopicRef::Normal(tid), 2, b"q1", true))
        .await
        .unwrap();
    m.expect(&Packet::Puback {
        topic_id: tid,
        msg_id: 2,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    m.send(&pub_packet(
        QoS::Two,
        TopicRef::Normal(tid),
        3,
        b"q2",
        false,
    ))
    .await
    .unwrap();
    m.expect(&Packet::Pubrec { msg_id: 3 }).await.unwrap();
    // A duplicate after PUBREC is answered again, not published again.
    m.send(&Packet::Publish(Publish {
        dup: true,
        qos: QoS::Two,
        retain: false,
        topic: TopicRef::Normal(tid),
        msg_id: 3,
        data: b"q2",
    }))
    .await
    .unwrap();
    m.expect(&Packet::Pubrec { msg_id: 3 }).await.unwrap();
    m.send(&Packet::Pubrel { msg_id: 3 }).await.unwrap();
    m.expect(&Packet::Pubcomp { msg_id: 3 }).await.unwrap();

    let got = sub.expect_messages(3, WAIT).await.unwrap();
    let summary: Vec<_> = got
        .iter()
        .map(|r| (r.topic.as_str(), r.payload_str(), r.qos, r.retain))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("sensors/t", "q0".to_string(), MqttQoS::AtMostOnce, false),
            // Live subscribers get retain=0 (MQTT 3.1.1 sets it only for a new subscription);
            // the late one below sees it set.
            ("sensors/t", "q1".to_string(), MqttQoS::AtLeastOnce, false),
            ("sensors/t", "q2".to_string(), MqttQoS::ExactlyOnce, false),
        ]
    );
    sub.expect_no_message(Duration::from_millis(300))
        .await
        .unwrap();
    // The retained message is kept by the broker for a new subscriber.
    let mut late = Subscriber::connect(
        &broker.url(),
        "late",
        &[("sensors/t", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();
    let r = late.next_message(WAIT).await.unwrap();
    assert!(r.retain && r.payload_str() == "q1");
}

#[tokio::test]
async fn a_wildcard_subscription_registers_each_topic_before_publishing_it() {
    let (broker, gw) = setup().await;
    let m = SnClient::new(gw.addr).await.unwrap();
    m.connect("mote-2", true, 60).await.unwrap();
    m.send(&Packet::Subscribe(Subscribe {
        dup: false,
        qos: QoS::One,
        msg_id: 5,
        topic: TopicRef::Name(b"cmd/#"),
    }))
    .await
    .unwrap();
    m.expect(&Packet::Suback {
        qos: QoS::One,
        topic_id: 0,
        msg_id: 5,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();

    publish(&broker.url(), "cmd/led", b"on", MqttQoS::AtLeastOnce, false)
        .await
        .unwrap();
    let reg = m.recv().await.unwrap();
    let Packet::Register(Register {
        topic_id,
        msg_id,
        topic_name,
    }) = reg.packet().unwrap()
    else {
        panic!("expected REGISTER, got {}", reg.text())
    };
    assert_eq!(topic_name, b"cmd/led");
    m.send(&Packet::Regack {
        topic_id,
        msg_id,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    let p = m.recv().await.unwrap();
    let Packet::Publish(p) = p.packet().unwrap() else {
        panic!("expected PUBLISH")
    };
    assert_eq!(
        (p.topic, p.qos, p.data),
        (TopicRef::Normal(topic_id), QoS::One, &b"on"[..])
    );
    m.send(&Packet::Puback {
        topic_id,
        msg_id: p.msg_id,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();

    // The second message on the same topic needs no REGISTER.
    publish(&broker.url(), "cmd/led", b"off", MqttQoS::AtMostOnce, false)
        .await
        .unwrap();
    let p = m.recv().await.unwrap();
    let Packet::Publish(p) = p.packet().unwrap() else {
        panic!("expected PUBLISH, got {}", p.text())
    };
    assert_eq!(
        (p.topic, p.qos, p.data),
        (TopicRef::Normal(topic_id), QoS::Zero, &b"off"[..])
    );
}

#[tokio::test]
async fn qos2_messages_from_the_broker_run_the_full_handshake_to_the_mote() {
    let (broker, gw) = setup().await;
    let m = SnClient::new(gw.addr).await.unwrap();
    m.connect("mote-3", true, 60).await.unwrap();
    m.send(&Packet::Subscribe(Subscribe {
        dup: false,
        qos: QoS::Two,
        msg_id: 1,
        topic: TopicRef::Name(b"alarm"),
    }))
    .await
    .unwrap();
    let r = m.recv().await.unwrap();
    let Packet::Suback {
        qos: QoS::Two,
        topic_id,
        return_code: ReturnCode::Accepted,
        ..
    } = r.packet().unwrap()
    else {
        panic!("{}", r.text())
    };
    assert_ne!(
        topic_id, 0,
        "a concrete name gets its topic id in the SUBACK"
    );
    publish(&broker.url(), "alarm", b"fire", MqttQoS::ExactlyOnce, false)
        .await
        .unwrap();
    let p = m.recv().await.unwrap();
    let Packet::Publish(p) = p.packet().unwrap() else {
        panic!()
    };
    assert_eq!(
        (p.topic, p.qos, p.data),
        (TopicRef::Normal(topic_id), QoS::Two, &b"fire"[..])
    );
    m.send(&Packet::Pubrec { msg_id: p.msg_id }).await.unwrap();
    m.expect(&Packet::Pubrel { msg_id: p.msg_id })
        .await
        .unwrap();
    m.send(&Packet::Pubcomp { msg_id: p.msg_id }).await.unwrap();
    m.expect_nothing(Duration::from_millis(300)).await.unwrap();
}

#[tokio::test]
async fn the_will_is_published_when_a_mote_goes_silent_but_not_after_disconnect() {
    let (broker, gw) = setup().await;
    sn_tests::flows::will_only_for_the_lost_mote(&broker.url(), gw.addr)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_will_update_takes_effect_at_the_broker() {
    let (broker, gw) = setup().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "will-watch2",
        &[
            ("w/#", MqttQoS::AtLeastOnce),
            ("data", MqttQoS::AtLeastOnce),
        ],
    )
    .await
    .unwrap();
    let m = SnClient::new(gw.addr).await.unwrap();
    m.connect("mote-u", true, 2).await.unwrap();
    m.send(&Packet::Subscribe(Subscribe {
        dup: false,
        qos: QoS::One,
        msg_id: 1,
        topic: TopicRef::Name(b"cmd"),
    }))
    .await
    .unwrap();
    let suback = m.recv().await.unwrap();
    assert!(matches!(
        suback.packet().unwrap(),
        Packet::Suback {
            return_code: ReturnCode::Accepted,
            ..
        }
    ));
    m.send(&Packet::WillTopicUpd(Some(WillTopic {
        qos: QoS::One,
        retain: false,
        topic: b"w/new",
    })))
    .await
    .unwrap();
    m.expect(&Packet::WillTopicResp {
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    m.send(&Packet::WillMsgUpd { msg: b"updated" })
        .await
        .unwrap();
    m.expect(&Packet::WillMsgResp {
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    // The subscription survived the re-established upstream session: publish until the mote
    // gets it (the new session needs a moment at the broker; bounded).
    let mut delivered = None;
    for _ in 0..20 {
        publish(
            &broker.url(),
            "cmd",
            b"still-subscribed",
            MqttQoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
        if let Some(r) = m.recv_within(Duration::from_millis(250)).await.unwrap() {
            delivered = Some(r);
            break;
        }
    }
    let p = delivered.expect("the subscription survived the Will update");
    let Packet::Publish(p) = p.packet().unwrap() else {
        panic!("{}", p.text())
    };
    assert_eq!(p.data, b"still-subscribed");
    m.send(&Packet::Puback {
        topic_id: p.topic.id_field(),
        msg_id: p.msg_id,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    // Silence: the broker publishes the new Will.
    let r = sub.next_message(WAIT).await.expect("the updated Will");
    assert_eq!(
        (r.topic.as_str(), r.payload_str().as_str()),
        ("w/new", "updated")
    );
}

#[tokio::test]
async fn qos_minus1_from_a_socket_that_never_connected_is_published() {
    // The long-topic form is off by default (tested in `exposure`).
    let (broker, gw) = setup_with(|c| c.qos_minus1.long_topic_form = true).await;
    let mut sub = Subscriber::connect(&broker.url(), "m1-watch", &[("#", MqttQoS::AtMostOnce)])
        .await
        .unwrap();
    let s = SnClient::new(gw.addr).await.unwrap();
    s.send(&pub_packet(
        QoS::MinusOne,
        TopicRef::Predefined(1),
        0,
        b"up",
        false,
    ))
    .await
    .unwrap();
    s.send(&pub_packet(
        QoS::MinusOne,
        TopicRef::Short(*b"ab"),
        0,
        b"short",
        false,
    ))
    .await
    .unwrap();
    s.send_raw(&[
        0x10, 0x0C, 0x60, 0x00, 0x05, 0x00, 0x00, b'h', b'e', b'l', b'l', b'o', b't', b'e', b's',
        b't',
    ])
    .await
    .unwrap();
    let mut got = vec![];
    while got.len() < 3 {
        let r = sub.next_message(WAIT).await.expect("QoS -1 messages");
        if !r.topic.starts_with("gateway/") {
            got.push((r.topic.clone(), r.payload_str()));
        }
    }
    assert_eq!(
        got,
        vec![
            ("site/status".into(), "up".into()),
            ("ab".into(), "short".into()),
            ("hello".into(), "test".into())
        ]
    );
    s.expect_nothing(Duration::from_millis(200)).await.unwrap();
}

#[tokio::test]
async fn a_broker_restart_with_qos1_in_flight_loses_nothing() {
    let mut broker = Mosquitto::start_with(sn_tests::MosquittoOptions {
        persistence: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let (core, io) = sn_tests::gateway::test_settings(&broker.url()).unwrap();
    let gw = TestGateway::start_with(core, io).await.unwrap();
    gw.wait_upstream(true, WAIT).await.unwrap();
    let opts = sn_tests::ClientOptions {
        clean_session: false,
        ..Default::default()
    };
    let sub = Subscriber::connect_with(
        &broker.url(),
        "durable-watch",
        &[("data/#", MqttQoS::AtLeastOnce)],
        &opts,
    )
    .await
    .unwrap();
    let m = SnClient::new(gw.addr).await.unwrap();
    m.connect("mote-r", true, 120).await.unwrap();
    let tid = register(&m, "data/x", 1).await;
    m.send(&pub_packet(
        QoS::One,
        TopicRef::Normal(tid),
        10,
        b"before",
        false,
    ))
    .await
    .unwrap();
    m.expect(&Packet::Puback {
        topic_id: tid,
        msg_id: 10,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();

    broker.stop().await.unwrap();
    gw.wait_upstream(false, WAIT).await.unwrap();
    for i in 0..3u16 {
        let data = format!("during-{i}");
        m.send(&pub_packet(
            QoS::One,
            TopicRef::Normal(tid),
            20 + i,
            data.as_bytes(),
            false,
        ))
        .await
        .unwrap();
    }
    // Nothing is acknowledged while the broker is away.
    m.expect_nothing(Duration::from_millis(300)).await.unwrap();
    broker.restart().await.unwrap();
    let mut acked = vec![];
    while acked.len() < 3 {
        let r = m
            .recv_within(Duration::from_secs(10))
            .await
            .unwrap()
            .expect("PUBACKs after the broker is back");
        match r.packet().unwrap() {
            Packet::Puback {
                msg_id,
                return_code: ReturnCode::Accepted,
                ..
            } => acked.push(msg_id),
            other => panic!("unexpected {other}"),
        }
    }
    acked.sort_unstable();
    assert_eq!(acked, vec![20, 21, 22]);
    let mut sub = sub;
    let mut got: Vec<String> = vec![];
    while got.len() < 4 {
        let r = sub
            .next_message(Duration::from_secs(10))
            .await
            .expect("every acknowledged message reaches the subscriber");
        if !got.contains(&r.payload_str()) {
            got.push(r.payload_str());
        }
    }
    got.sort();
    assert_eq!(got, vec!["before", "during-0", "during-1", "during-2"]);
}

#[tokio::test]
async fn malformed_datagrams_are_dropped_and_counted_without_disturbing_other_motes() {
    let (_broker, gw) = setup().await;
    let good = SnClient::new(gw.addr).await.unwrap();
    good.connect("mote-good", true, 60).await.unwrap();
    let bad = SnClient::new(gw.addr).await.unwrap();
    for junk in [
        &[][..],
        &[0x00, 0x01][..],
        &[0xFF; 40][..],
        &[0x05, 0x0C, 0x00][..],
        &[0x02, 0xFE][..],
    ] {
        bad.send_raw(junk).await.unwrap();
    }
    good.send(&Packet::Pingreq { client_id: None })
        .await
        .unwrap();
    good.expect(&Packet::Pingresp).await.unwrap();
    let snap = gw.snapshot().await.unwrap();
    assert_eq!(
        snap.status.core.dropped.get("malformed").copied(),
        Some(5),
        "{:?}",
        snap.status.core.dropped
    );
    assert_eq!(
        snap.status
            .core
            .packets_in
            .get(&sn_codec::MsgType::Pingreq)
            .copied(),
        Some(1)
    );
    assert_eq!(snap.clients.len(), 1);
    assert_eq!(
        (snap.clients[0].client_id.as_str(), snap.clients[0].state),
        ("mote-good", "active")
    );
}

#[tokio::test]
async fn a_second_connect_with_the_same_client_id_takes_the_session_over() {
    let (broker, gw) = setup().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "take-watch",
        &[("t/#", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();
    let old = SnClient::new(gw.addr).await.unwrap();
    old.connect("mote-t", true, 60).await.unwrap();
    let new = SnClient::new(gw.addr).await.unwrap();
    assert_eq!(
        new.connect("mote-t", true, 60).await.unwrap(),
        ReturnCode::Accepted
    );
    let tid = register(&new, "t/x", 1).await;
    new.send(&pub_packet(
        QoS::One,
        TopicRef::Normal(tid),
        2,
        b"from-new",
        false,
    ))
    .await
    .unwrap();
    new.expect(&Packet::Puback {
        topic_id: tid,
        msg_id: 2,
        return_code: ReturnCode::Accepted,
    })
    .await
    .unwrap();
    assert_eq!(
        sub.next_message(WAIT).await.unwrap().payload_str(),
        "from-new"
    );
    old.send(&Packet::Pingreq { client_id: None })
        .await
        .unwrap();
    old.expect(&Packet::Disconnect { duration: None })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_mote_behind_a_forwarder_connects_and_publishes_through_encapsulation() {
    let (broker, gw) = setup().await;
    let mut sub = Subscriber::connect(
        &broker.url(),
        "encap-watch",
        &[("site/#", MqttQoS::AtLeastOnce)],
    )
    .await
    .unwrap();
    let fwd = SnClient::new(gw.addr).await.unwrap();
    let wnid = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];
    let wrap = |p: &Packet<'_>| {
        let mut buf = vec![0u8; 300];
        let n = sn_codec::encode_encapsulated(0, &wnid, p, &mut buf).unwrap();
        buf.truncate(n);
        buf
    };
    let connect = Packet::Connect(sn_codec::Connect {
        will: false,
        clean_session: true,
        duration: 60,
        client_id: b"xbee-node",
    });
    fwd.send_raw(&wrap(&connect)).await.unwrap();
    let r = fwd.recv().await.unwrap();
    let e = sn_codec::Encapsulated::decode(&r.0).unwrap();
    assert_eq!(e.wnid, &wnid);
    assert_eq!(
        e.inner,
        encode(&Packet::Connack {
            return_code: ReturnCode::Accepted
        })
    );
    fwd.send_raw(&wrap(&pub_packet(
        QoS::One,
        TopicRef::Predefined(1),
        4,
        b"via-radio",
        false,
    )))
    .await
    .unwrap();
    let r = fwd.recv().await.unwrap();
    let e = sn_codec::Encapsulated::decode(&r.0).unwrap();
    assert_eq!(
        e.inner,
        encode(&Packet::Puback {
            topic_id: 1,
            msg_id: 4,
            return_code: ReturnCode::Accepted
        })
    );
    let got = sub.next_message(WAIT).await.unwrap();
    assert_eq!(
        (got.topic.as_str(), got.payload_str().as_str()),
        ("site/status", "via-radio")
    );
}
