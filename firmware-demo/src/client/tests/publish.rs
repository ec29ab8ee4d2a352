//! Publishing at QoS −1, 0, 1 and 2 with retransmissions, and messages from the gateway.

use sn_codec::{Packet, Publish, QoS, Register, ReturnCode, TopicRef};

use super::harness::*;
use crate::client::{ClientEvent, Destination, MessageTopic, PubTopic, PublishError, State};

fn publish<'a>(
    dup: bool,
    qos: QoS,
    topic: TopicRef<'a>,
    msg_id: u16,
    data: &'a [u8],
) -> Packet<'a> {
    Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic,
        msg_id,
        data,
    })
}

#[test]
fn qos_minus1_goes_out_without_any_connection_with_predefined_ids_and_short_names() {
    let mut w = World::new(fixed_config());
    let a = w
        .with(|c, now| c.publish(now, PubTopic::Predefined(3), b"t=21", QoS::MinusOne, false))
        .unwrap();
    let b = w
        .with(|c, now| c.publish(now, PubTopic::Short(*b"rd"), b"h=40", QoS::MinusOne, false))
        .unwrap();
    w.expect_sent(&[
        publish(false, QoS::MinusOne, TopicRef::Predefined(3), 0, b"t=21"),
        publish(false, QoS::MinusOne, TopicRef::Short(*b"rd"), 0, b"h=40"),
    ]);
    w.expect_events(&[
        ClientEvent::Published {
            token: a,
            qos: QoS::MinusOne,
            retries: 0,
        },
        ClientEvent::Published {
            token: b,
            qos: QoS::MinusOne,
            retries: 0,
        },
    ]);
    assert_eq!(w.c.state(), State::Disconnected);
    assert_eq!(w.c.poll_timeout(), None, "nothing to wait for");
}

#[test]
fn qos_minus1_without_a_known_gateway_searches_first() {
    let mut w = World::new(discovery_config());
    w.with(|c, now| c.publish(now, PubTopic::Short(*b"rd"), b"1", QoS::MinusOne, false))
        .unwrap();
    assert_eq!(w.c.state(), State::SearchingGw);
    w.fire();
    w.expect_sent_to(
        Destination::Broadcast { radius: 1 },
        &[Packet::SearchGw { radius: 1 }],
    );
    w.deliver_from(
        GW2,
        &Packet::GwInfo {
            gw_id: 4,
            gw_addr: &[],
        },
    );
    w.expect_sent_to(
        Destination::Gateway(GW2),
        &[publish(
            false,
            QoS::MinusOne,
            TopicRef::Short(*b"rd"),
            0,
            b"1",
        )],
    );
    assert_eq!(w.c.state(), State::Disconnected, "QoS -1 needs no session");
}

#[test]
fn qos0_publishes_are_fire_and_forget_in_order_behind_a_qos1_in_flight() {
    let mut w = World::connected(fixed_config());
    let q1 = w
        .with(|c, now| c.publish(now, PubTopic::Predefined(1), b"one", QoS::One, false))
        .unwrap();
    let q0 = w
        .with(|c, now| c.publish(now, PubTopic::Predefined(1), b"zero", QoS::Zero, false))
        .unwrap();
    w.expect_sent(&[publish(false, QoS::One, TopicRef::Predefined(1), 1, b"one")]);
    w.deliver(&Packet::Puback {
        topic_id: 1,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.expect_sent(&[publish(
        false,
        QoS::Zero,
        TopicRef::Predefined(1),
        0,
        b"zero",
    )]);
    w.expect_events(&[
        ClientEvent::Published {
            token: q1,
            qos: QoS::One,
            retries: 0,
        },
        ClientEvent::Published {
            token: q0,
            qos: QoS::Zero,
            retries: 0,
        },
    ]);
}

#[test]
fn qos1_is_retransmitted_with_dup_after_t_retry_and_completes_on_puback() {
    let mut w = World::connected(fixed_config());
    let tok = w
        .with(|c, now| c.publish(now, PubTopic::Short(*b"ab"), b"x", QoS::One, false))
        .unwrap();
    w.expect_sent(&[publish(false, QoS::One, TopicRef::Short(*b"ab"), 1, b"x")]);
    let t0 = w.now;
    assert_eq!(w.fire(), t0 + secs(1));
    w.expect_sent(&[publish(true, QoS::One, TopicRef::Short(*b"ab"), 1, b"x")]);
    // A PUBACK for another MsgId is ignored.
    w.deliver(&Packet::Puback {
        topic_id: 0x6162,
        msg_id: 9,
        return_code: ReturnCode::Accepted,
    });
    assert_eq!(w.c.stats().unexpected, 1);
    w.deliver(&Packet::Puback {
        topic_id: 0x6162,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.expect_events(&[ClientEvent::Published {
        token: tok,
        qos: QoS::One,
        retries: 1,
    }]);
    assert_eq!(w.c.stats().retransmissions, 1);
}

#[test]
fn qos2_runs_publish_pubrec_pubrel_pubcomp_and_retransmits_each_step() {
    let mut w = World::connected(fixed_config());
    let tok = w
        .with(|c, now| c.publish(now, PubTopic::Predefined(2), b"q2", QoS::Two, true))
        .unwrap();
    let first = Packet::Publish(Publish {
        dup: false,
        qos: QoS::Two,
        retain: true,
        topic: TopicRef::Predefined(2),
        msg_id: 1,
        data: b"q2",
    });
    w.expect_sent(&[first]);
    w.fire();
    let Packet::Publish(p) = first else {
        unreachable!()
    };
    w.expect_sent(&[Packet::Publish(Publish { dup: true, ..p })]);
    w.deliver(&Packet::Pubrec { msg_id: 1 });
    w.expect_sent(&[Packet::Pubrel { msg_id: 1 }]);
    // Two PUBREL retransmissions are still allowed: the count restarted at PUBREC.
    w.fire();
    w.fire();
    w.expect_sent(&[Packet::Pubrel { msg_id: 1 }, Packet::Pubrel { msg_id: 1 }]);
    w.deliver(&Packet::Pubrec { msg_id: 1 });
    w.expect_sent(&[Packet::Pubrel { msg_id: 1 }]);
    w.deliver(&Packet::Pubcomp { msg_id: 1 });
    w.expect_events(&[ClientEvent::Published {
        token: tok,
        qos: QoS::Two,
        retries: 3,
    }]);
    assert!(w.c.is_idle());
}

#[test]
fn puback_invalid_topic_id_registers_again_and_repeats_the_publish_once() {
    let mut w = World::new(fixed_config());
    let t = w.with(|c, now| c.register(now, "s/t")).unwrap();
    w.with(|c, now| c.connect(now)).unwrap();
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.deliver(&Packet::Regack {
        topic_id: 5,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.take_sent();
    w.take_events();
    let tok = w
        .with(|c, now| c.publish(now, PubTopic::Registered(t), b"v", QoS::One, false))
        .unwrap();
    w.expect_sent(&[publish(false, QoS::One, TopicRef::Normal(5), 2, b"v")]);
    w.deliver(&Packet::Puback {
        topic_id: 5,
        msg_id: 2,
        return_code: ReturnCode::InvalidTopicId,
    });
    w.expect_sent(&[Packet::Register(Register {
        topic_id: 0,
        msg_id: 3,
        topic_name: b"s/t",
    })]);
    w.deliver(&Packet::Regack {
        topic_id: 6,
        msg_id: 3,
        return_code: ReturnCode::Accepted,
    });
    w.expect_sent(&[publish(false, QoS::One, TopicRef::Normal(6), 4, b"v")]);
    w.deliver(&Packet::Puback {
        topic_id: 6,
        msg_id: 4,
        return_code: ReturnCode::InvalidTopicId,
    });
    let events = w.take_events();
    assert_eq!(
        events.last(),
        Some(&ClientEvent::PublishFailed {
            token: tok,
            reason: PublishError::Rejected(ReturnCode::InvalidTopicId)
        }),
        "a second 0x02 is final: {events:?}"
    );
}

#[test]
fn congestion_holds_every_request_for_t_wait_then_repeats_the_publish() {
    let mut w = World::connected(fixed_config());
    let tok = w
        .with(|c, now| c.publish(now, PubTopic::Predefined(1), b"c", QoS::One, false))
        .unwrap();
    w.take_sent();
    w.deliver(&Packet::Puback {
        topic_id: 1,
        msg_id: 1,
        return_code: ReturnCode::Congestion,
    });
    w.expect_silence();
    let t = w.now;
    w.fire();
    assert_eq!(w.now, t + secs(30));
    w.expect_sent(&[publish(false, QoS::One, TopicRef::Predefined(1), 2, b"c")]);
    w.deliver(&Packet::Puback {
        topic_id: 1,
        msg_id: 2,
        return_code: ReturnCode::Accepted,
    });
    w.expect_events(&[ClientEvent::Published {
        token: tok,
        qos: QoS::One,
        retries: 0,
    }]);
}

#[test]
fn messages_from_the_gateway_are_acknowledged_and_qos2_duplicates_delivered_once() {
    let mut w = World::connected(fixed_config());
    // The gateway registers a name, then publishes on it at QoS 1 and 2.
    w.deliver(&Packet::Register(Register {
        topic_id: 12,
        msg_id: 1,
        topic_name: b"motes/mote-1/cmd",
    }));
    w.expect_sent(&[Packet::Regack {
        topic_id: 12,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    }]);
    w.deliver(&publish(
        false,
        QoS::One,
        TopicRef::Normal(12),
        2,
        b"led=on",
    ));
    w.expect_sent(&[Packet::Puback {
        topic_id: 12,
        msg_id: 2,
        return_code: ReturnCode::Accepted,
    }]);
    let events = w.take_events();
    let [ClientEvent::Message(m)] = &events[..] else {
        panic!("{events:?}")
    };
    let MessageTopic::Topic(h) = m.topic else {
        panic!("{m:?}")
    };
    assert_eq!(w.c.topic_name(h), Some("motes/mote-1/cmd"));
    assert_eq!(&m.payload[..], b"led=on");

    w.deliver(&publish(
        false,
        QoS::Two,
        TopicRef::Normal(12),
        3,
        b"interval=5",
    ));
    w.deliver(&publish(
        true,
        QoS::Two,
        TopicRef::Normal(12),
        3,
        b"interval=5",
    ));
    w.expect_sent(&[Packet::Pubrec { msg_id: 3 }, Packet::Pubrec { msg_id: 3 }]);
    assert_eq!(
        w.take_events().len(),
        1,
        "the duplicate is not delivered again"
    );
    w.deliver(&Packet::Pubrel { msg_id: 3 });
    w.expect_sent(&[Packet::Pubcomp { msg_id: 3 }]);
    // After PUBREL the id may be reused for a new message.
    w.deliver(&publish(
        false,
        QoS::Two,
        TopicRef::Normal(12),
        3,
        b"interval=6",
    ));
    assert_eq!(w.take_events().len(), 1);
    w.take_sent();

    // An unknown topic id is refused so that the gateway registers it.
    w.deliver(&publish(false, QoS::One, TopicRef::Normal(99), 4, b"?"));
    w.expect_sent(&[Packet::Puback {
        topic_id: 99,
        msg_id: 4,
        return_code: ReturnCode::InvalidTopicId,
    }]);
    assert!(w.take_events().is_empty());
    // Predefined ids and short names need no table entry.
    w.deliver(&publish(false, QoS::Zero, TopicRef::Short(*b"zz"), 0, b"s"));
    let events = w.take_events();
    assert!(
        matches!(&events[..], [ClientEvent::Message(m)] if m.topic == MessageTopic::Short(*b"zz"))
    );
    w.expect_silence();
}

#[test]
fn a_qos0_rejection_or_a_reused_id_makes_the_client_register_again_before_the_next_publish() {
    let mut w = World::new(fixed_config());
    let t = w.with(|c, now| c.register(now, "s/t")).unwrap();
    w.with(|c, now| c.connect(now)).unwrap();
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.deliver(&Packet::Regack {
        topic_id: 5,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.take_sent();
    w.with(|c, now| c.publish(now, PubTopic::Registered(t), b"a", QoS::Zero, false))
        .unwrap();
    w.expect_sent(&[publish(false, QoS::Zero, TopicRef::Normal(5), 0, b"a")]);
    // The gateway lost the id: PUBACK 0x02 to the QoS 0 publish.
    w.deliver(&Packet::Puback {
        topic_id: 5,
        msg_id: 0,
        return_code: ReturnCode::InvalidTopicId,
    });
    w.expect_sent(&[Packet::Register(Register {
        topic_id: 0,
        msg_id: 2,
        topic_name: b"s/t",
    })]);
    w.deliver(&Packet::Regack {
        topic_id: 6,
        msg_id: 2,
        return_code: ReturnCode::Accepted,
    });
    // The gateway gives id 6 to another name: ours must be registered again.
    w.deliver(&Packet::Register(Register {
        topic_id: 6,
        msg_id: 9,
        topic_name: b"x/y",
    }));
    w.expect_sent(&[
        Packet::Regack {
            topic_id: 6,
            msg_id: 9,
            return_code: ReturnCode::Accepted,
        },
        Packet::Register(Register {
            topic_id: 0,
            msg_id: 3,
            topic_name: b"s/t",
        }),
    ]);
    let tok = w
        .with(|c, now| c.publish(now, PubTopic::Registered(t), b"b", QoS::One, false))
        .unwrap();
    w.expect_silence();
    w.deliver(&Packet::Regack {
        topic_id: 7,
        msg_id: 3,
        return_code: ReturnCode::Accepted,
    });
    w.expect_sent(&[publish(false, QoS::One, TopicRef::Normal(7), 4, b"b")]);
    w.deliver(&Packet::Puback {
        topic_id: 7,
        msg_id: 4,
        return_code: ReturnCode::Accepted,
    });
    assert!(w.take_events().contains(&ClientEvent::Published {
        token: tok,
        qos: QoS::One,
        retries: 0
    }));
}

#[test]
fn during_t_wait_keep_alive_still_pings_and_disconnect_does_not_wait() {
    let mut cfg = fixed_config();
    cfg.keep_alive = 10;
    let mut w = World::connected(cfg);
    w.with(|c, now| c.publish(now, PubTopic::Predefined(1), b"c", QoS::One, false))
        .unwrap();
    w.take_sent();
    w.deliver(&Packet::Puback {
        topic_id: 1,
        msg_id: 1,
        return_code: ReturnCode::Congestion,
    });
    // T_WAIT is 30 s, keep-alive 10 s: PINGREQs keep the session alive while the publish waits.
    for _ in 0..2 {
        w.run_for(secs(10));
        w.expect_sent(&[Packet::Pingreq { client_id: None }]);
        w.deliver(&Packet::Pingresp);
    }
    w.run_for(secs(10));
    w.expect_sent(&[publish(false, QoS::One, TopicRef::Predefined(1), 2, b"c")]);
    // Congestion again, then leave: DISCONNECT goes out at once.
    w.deliver(&Packet::Puback {
        topic_id: 1,
        msg_id: 2,
        return_code: ReturnCode::Congestion,
    });
    w.with(|c, now| c.disconnect(now)).unwrap();
    w.expect_sent(&[Packet::Disconnect { duration: None }]);
}
