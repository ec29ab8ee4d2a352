//! SUBSCRIBE/UNSUBSCRIBE and broker → client delivery: REGISTER before PUBLISH, flow control,
//! retransmission, upstream acks in order.

use crate::core::upstream::MqttQos;
use std::time::Duration;

use sn_codec::{Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef, Unsubscribe};

use super::harness::{Harness, acks, message, peer};
use crate::core::config::{GatewayConfig, ShortSubackId};
use crate::core::event::{GatewayEvent, LostReason};
use crate::core::upstream::{LinkId, Token, UpstreamCmd, UpstreamEvent};

fn subscribe(topic: TopicRef<'_>, qos: QoS, msg_id: u16) -> Packet<'_> {
    Packet::Subscribe(Subscribe {
        dup: false,
        qos,
        msg_id,
        topic,
    })
}

fn subscribed(cmds: &[UpstreamCmd]) -> Vec<(Token, String, u8)> {
    cmds.iter()
        .filter_map(|c| match c {
            UpstreamCmd::Subscribe {
                token, filter, qos, ..
            } => Some((*token, filter.clone(), qos.level())),
            _ => None,
        })
        .collect()
}

fn gw_publish(
    qos: QoS,
    topic: TopicRef<'_>,
    msg_id: u16,
    data: &'static [u8],
    dup: bool,
) -> Packet<'static> {
    let topic = match topic {
        TopicRef::Normal(i) => TopicRef::Normal(i),
        TopicRef::Predefined(i) => TopicRef::Predefined(i),
        TopicRef::Short(s) => TopicRef::Short(s),
        TopicRef::Name(_) => unreachable!(),
    };
    Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic,
        msg_id,
        data,
    })
}

/// Connects mote-1 and subscribes it to `cmd/#` at QoS 1.
fn subscribed_to_wildcard(h: &mut Harness) -> LinkId {
    let a = peer(1);
    let link = h.connect(&a, "mote-1", true, 60);
    h.recv(&a, subscribe(TopicRef::Name(b"cmd/#"), QoS::One, 3));
    let s = subscribed(&h.take_cmds());
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].1.as_str(), s[0].2), ("cmd/#", 1));
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: s[0].0,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.expect(
        &a,
        &[Packet::Suback {
            qos: QoS::One,
            topic_id: 0,
            msg_id: 3,
            return_code: ReturnCode::Accepted,
        }],
    );
    link
}

#[test]
fn subscribing_to_a_concrete_name_returns_its_topic_id_after_the_broker_granted_it() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = h.connect(&a, "mote-1", true, 60);
    h.recv(&a, subscribe(TopicRef::Name(b"cmd/led"), QoS::Two, 9));
    h.expect_silence();
    let s = subscribed(&h.take_cmds());
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: s[0].0,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.expect(
        &a,
        &[Packet::Suback {
            qos: QoS::One,
            topic_id: 1,
            msg_id: 9,
            return_code: ReturnCode::Accepted,
        }],
    );
    // A message on it goes straight out with that id: no REGISTER needed.
    h.upstream(message(link, 5, "cmd/led", b"on", 1));
    h.expect(
        &a,
        &[gw_publish(QoS::One, TopicRef::Normal(1), 1, b"on", false)],
    );
}

#[test]
fn subscribe_rejections_carry_the_matching_return_codes() {
    let mut cfg = GatewayConfig::default();
    cfg.predefined.global.insert(1, "site/cmd".into());
    let mut h = Harness::new(cfg);
    let a = peer(1);
    let link = h.connect(&a, "mote-1", true, 60);
    h.recv(&a, subscribe(TopicRef::Predefined(42), QoS::Zero, 1));
    h.recv(&a, subscribe(TopicRef::Name(b"a/#/b"), QoS::Zero, 2));
    h.recv(&a, subscribe(TopicRef::Name(b""), QoS::Zero, 3));
    h.expect(
        &a,
        &[
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: 1,
                return_code: ReturnCode::InvalidTopicId,
            },
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: 2,
                return_code: ReturnCode::NotSupported,
            },
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: 3,
                return_code: ReturnCode::NotSupported,
            },
        ],
    );
    // The broker refuses a filter.
    h.recv(&a, subscribe(TopicRef::Name(b"forbidden"), QoS::Zero, 4));
    let s = subscribed(&h.take_cmds());
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: s[0].0,
        granted: None,
    });
    h.expect(
        &a,
        &[Packet::Suback {
            qos: QoS::Zero,
            topic_id: 0,
            msg_id: 4,
            return_code: ReturnCode::NotSupported,
        }],
    );
    // The upstream is down.
    h.upstream(UpstreamEvent::LinkDown {
        link,
        reason: "gone".into(),
    });
    h.recv(&a, subscribe(TopicRef::Predefined(1), QoS::Zero, 5));
    h.expect(
        &a,
        &[Packet::Suback {
            qos: QoS::Zero,
            topic_id: 0,
            msg_id: 5,
            return_code: ReturnCode::Congestion,
        }],
    );
}

#[test]
fn predefined_and_short_subscriptions_deliver_with_their_own_topic_forms() {
    let mut cfg = GatewayConfig::default();
    cfg.predefined.global.insert(7, "site/cmd".into());
    // The SUBACK of the short name carries 0x0000 here (the default is the name's octets: see
    // the tests below).
    cfg.short_topic_suback_id = ShortSubackId::Zero;
    let mut h = Harness::new(cfg);
    let a = peer(1);
    let link = h.connect(&a, "mote-1", true, 60);
    h.recv(&a, subscribe(TopicRef::Predefined(7), QoS::Zero, 1));
    h.recv(&a, subscribe(TopicRef::Short(*b"ab"), QoS::Zero, 2));
    let s = subscribed(&h.take_cmds());
    assert_eq!(
        s.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        ["site/cmd", "ab"]
    );
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: s[0].0,
        granted: Some(MqttQos::AtMostOnce),
    });
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: s[1].0,
        granted: Some(MqttQos::AtMostOnce),
    });
    h.expect(
        &a,
        &[
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 7,
                msg_id: 1,
                return_code: ReturnCode::Accepted,
            },
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: 2,
                return_code: ReturnCode::Accepted,
            },
        ],
    );
    h.upstream(message(link, 0, "site/cmd", b"1", 0));
    h.upstream(message(link, 0, "ab", b"2", 0));
    h.expect(
        &a,
        &[
            gw_publish(QoS::Zero, TopicRef::Predefined(7), 0, b"1", false),
            gw_publish(QoS::Zero, TopicRef::Short(*b"ab"), 0, b"2", false),
        ],
    );
}

#[test]
fn a_wildcard_match_is_registered_and_acknowledged_before_the_first_publish() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = subscribed_to_wildcard(&mut h);
    h.upstream(message(link, 10, "cmd/led", b"on", 1));
    h.expect(
        &a,
        &[Packet::Register(Register {
            topic_id: 1,
            msg_id: 1,
            topic_name: b"cmd/led",
        })],
    );
    h.recv(
        &a,
        Packet::Regack {
            topic_id: 1,
            msg_id: 1,
            return_code: ReturnCode::Accepted,
        },
    );
    h.expect(
        &a,
        &[gw_publish(QoS::One, TopicRef::Normal(1), 2, b"on", false)],
    );
    assert!(
        acks(&h.take_cmds()).is_empty(),
        "the broker is acknowledged only after the client"
    );
    h.recv(
        &a,
        Packet::Puback {
            topic_id: 1,
            msg_id: 2,
            return_code: ReturnCode::Accepted,
        },
    );
    assert_eq!(acks(&h.take_cmds()), vec![10]);
    // The next message on the same topic needs no REGISTER.
    h.upstream(message(link, 11, "cmd/led", b"off", 1));
    h.expect(
        &a,
        &[gw_publish(QoS::One, TopicRef::Normal(1), 3, b"off", false)],
    );
}

#[test]
fn a_rejected_register_drops_that_topic_until_the_next_subscribe() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = subscribed_to_wildcard(&mut h);
    h.upstream(message(link, 10, "cmd/noise", b"x", 1));
    h.expect(
        &a,
        &[Packet::Register(Register {
            topic_id: 1,
            msg_id: 1,
            topic_name: b"cmd/noise",
        })],
    );
    h.recv(
        &a,
        Packet::Regack {
            topic_id: 1,
            msg_id: 1,
            return_code: ReturnCode::NotSupported,
        },
    );
    h.expect_silence();
    assert_eq!(
        acks(&h.take_cmds()),
        vec![10],
        "dropped messages are acknowledged upstream"
    );
    h.upstream(message(link, 12, "cmd/noise", b"y", 1));
    h.expect_silence();
    assert_eq!(acks(&h.take_cmds()), vec![12]);
    // Other topics still flow.
    h.upstream(message(link, 13, "cmd/led", b"on", 1));
    h.expect(
        &a,
        &[Packet::Register(Register {
            topic_id: 2,
            msg_id: 2,
            topic_name: b"cmd/led",
        })],
    );
}

#[test]
fn one_message_is_in_flight_per_client_and_acks_go_upstream_in_arrival_order() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = h.connect(&a, "mote-1", true, 60);
    h.recv(
        &a,
        Packet::Register(Register {
            topic_id: 0,
            msg_id: 1,
            topic_name: b"t",
        }),
    );
    h.recv(&a, subscribe(TopicRef::Name(b"t"), QoS::Two, 2));
    let s = subscribed(&h.take_cmds());
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: s[0].0,
        granted: Some(MqttQos::ExactlyOnce),
    });
    h.clear();
    h.upstream(message(link, 1, "t", b"a", 1));
    h.upstream(message(link, 2, "t", b"b", 2));
    h.upstream(message(link, 3, "t", b"c", 0));
    h.expect(
        &a,
        &[gw_publish(QoS::One, TopicRef::Normal(1), 1, b"a", false)],
    );
    h.recv(
        &a,
        Packet::Puback {
            topic_id: 1,
            msg_id: 1,
            return_code: ReturnCode::Accepted,
        },
    );
    h.expect(
        &a,
        &[gw_publish(QoS::Two, TopicRef::Normal(1), 2, b"b", false)],
    );
    assert_eq!(acks(&h.take_cmds()), vec![1]);
    h.recv(&a, Packet::Pubrec { msg_id: 2 });
    h.expect(&a, &[Packet::Pubrel { msg_id: 2 }]);
    assert_eq!(acks(&h.take_cmds()), vec![2]);
    h.recv(&a, Packet::Pubcomp { msg_id: 2 });
    h.expect(
        &a,
        &[gw_publish(QoS::Zero, TopicRef::Normal(1), 0, b"c", false)],
    );
}

#[test]
fn downlink_publishes_are_retransmitted_with_dup_and_the_client_is_lost_after_n_retry() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = subscribed_to_wildcard(&mut h);
    h.recv(
        &a,
        Packet::Register(Register {
            topic_id: 0,
            msg_id: 1,
            topic_name: b"cmd/led",
        }),
    );
    h.clear();
    h.upstream(message(link, 10, "cmd/led", b"on", 1));
    h.expect(
        &a,
        &[gw_publish(QoS::One, TopicRef::Normal(1), 1, b"on", false)],
    );
    for _ in 0..3 {
        h.advance(Duration::from_secs(10));
        h.recv(&a, Packet::Pingreq { client_id: None }); // alive, but not acknowledging
        h.expect(
            &a,
            &[
                gw_publish(QoS::One, TopicRef::Normal(1), 1, b"on", true),
                Packet::Pingresp,
            ],
        );
    }
    h.advance(Duration::from_secs(10));
    assert!(h.has_event(|e| matches!(
        e,
        GatewayEvent::ClientLost {
            reason: LostReason::RetriesExhausted,
            ..
        }
    )));
    assert!(h.take_cmds().contains(&UpstreamCmd::Close {
        link,
        graceful: false
    }));
}

#[test]
fn a_puback_with_invalid_topic_id_makes_the_gateway_register_again() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = subscribed_to_wildcard(&mut h);
    h.upstream(message(link, 10, "cmd/led", b"on", 1));
    h.recv(
        &a,
        Packet::Regack {
            topic_id: 1,
            msg_id: 1,
            return_code: ReturnCode::Accepted,
        },
    );
    h.clear();
    h.recv(
        &a,
        Packet::Puback {
            topic_id: 1,
            msg_id: 2,
            return_code: ReturnCode::InvalidTopicId,
        },
    );
    h.expect(
        &a,
        &[Packet::Register(Register {
            topic_id: 1,
            msg_id: 3,
            topic_name: b"cmd/led",
        })],
    );
}

#[test]
fn unsubscribe_is_always_answered_and_removes_the_subscription_upstream() {
    let mut h = Harness::default();
    let a = peer(1);
    subscribed_to_wildcard(&mut h);
    h.recv(
        &a,
        Packet::Unsubscribe(Unsubscribe {
            msg_id: 4,
            topic: TopicRef::Name(b"cmd/#"),
        }),
    );
    h.recv(
        &a,
        Packet::Unsubscribe(Unsubscribe {
            msg_id: 5,
            topic: TopicRef::Name(b"never/subscribed"),
        }),
    );
    h.expect(
        &a,
        &[
            Packet::Unsuback { msg_id: 4 },
            Packet::Unsuback { msg_id: 5 },
        ],
    );
    let cmds = h.take_cmds();
    assert_eq!(
        cmds.iter()
            .filter(|c| matches!(c, UpstreamCmd::Unsubscribe { filter, .. } if filter == "cmd/#"))
            .count(),
        1
    );
    assert_eq!(cmds.len(), 1);
}

#[test]
fn a_broker_that_lost_the_session_gets_the_subscriptions_again_silently() {
    let mut h = Harness::default();
    let link = subscribed_to_wildcard(&mut h);
    h.upstream(UpstreamEvent::LinkDown {
        link,
        reason: "restart".into(),
    });
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present: false,
        lost: vec![],
    });
    let s = subscribed(&h.take_cmds());
    assert_eq!(
        s.iter().map(|x| (x.1.as_str(), x.2)).collect::<Vec<_>>(),
        [("cmd/#", 1)]
    );
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: s[0].0,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.expect_silence();
}

#[test]
fn a_message_too_large_for_the_client_is_dropped_and_acknowledged_upstream() {
    let mut h = Harness::new(GatewayConfig {
        max_packet_size: 32,
        ..Default::default()
    });
    let a = peer(1);
    let link = subscribed_to_wildcard(&mut h);
    h.recv(
        &a,
        Packet::Register(Register {
            topic_id: 0,
            msg_id: 1,
            topic_name: b"cmd/led",
        }),
    );
    h.clear();
    h.upstream(message(link, 10, "cmd/led", &[b'x'; 40], 1));
    h.expect_silence();
    assert_eq!(acks(&h.take_cmds()), vec![10]);
}

#[test]
fn an_unanswered_subscribe_is_sent_again_after_a_reconnect_even_when_the_session_survived() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = h.connect(&a, "mote-1", true, 60);
    h.recv(&a, subscribe(TopicRef::Name(b"x/#"), QoS::One, 3));
    let s = subscribed(&h.take_cmds());
    h.upstream(UpstreamEvent::LinkDown {
        link,
        reason: "blip".into(),
    });
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present: true,
        lost: vec![s[0].0],
    });
    let again = subscribed(&h.take_cmds());
    assert_eq!(again, s, "same token, same filter");
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: s[0].0,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.expect(
        &a,
        &[Packet::Suback {
            qos: QoS::One,
            topic_id: 0,
            msg_id: 3,
            return_code: ReturnCode::Accepted,
        }],
    );
}

/// mote-1 subscribes to the short name `x1`; returns the SUBACK's TopicId and the link.
fn short_suback_id(cfg: GatewayConfig, id: &str) -> u16 {
    let mut h = Harness::new(cfg);
    let a = peer(1);
    let link = h.connect(&a, id, true, 60);
    h.recv(&a, subscribe(TopicRef::Short(*b"x1"), QoS::One, 3));
    let s = subscribed(&h.take_cmds());
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: s[0].0,
        granted: Some(MqttQos::AtLeastOnce),
    });
    let sent = h.sent_to(&a);
    match Packet::decode(&sent[0]).unwrap() {
        Packet::Suback {
            topic_id,
            return_code: ReturnCode::Accepted,
            ..
        } => topic_id,
        other => panic!("{other}"),
    }
}

#[test]
fn a_short_name_subscription_is_answered_with_the_names_two_octets_by_default() {
    assert_eq!(
        short_suback_id(GatewayConfig::default(), "paho-mote"),
        0x7831
    );
}

#[test]
fn the_short_name_suback_id_follows_the_global_setting_and_a_clients_own() {
    let mut cfg = GatewayConfig {
        short_topic_suback_id: ShortSubackId::Zero,
        ..GatewayConfig::default()
    };
    assert_eq!(short_suback_id(cfg.clone(), "py-mote"), 0);
    cfg.clients.registry.insert(
        "paho-mote".into(),
        crate::core::config::ClientEntry {
            short_topic_suback_id: Some(ShortSubackId::Name),
            ..Default::default()
        },
    );
    assert_eq!(short_suback_id(cfg.clone(), "paho-mote"), 0x7831);
    assert_eq!(
        short_suback_id(cfg, "py-mote"),
        0,
        "others keep the global setting"
    );
}
