//! CONNECT with Will prompting, registration and subscription before publishes, keep-alive,
//! rejections, and the end of a session.

use sn_codec::{Connect, Packet, QoS, Register, ReturnCode, Subscribe, TopicRef, WillTopic};

use super::harness::*;
use crate::client::{
    ClientEvent, CommandError, DisconnectReason, PubTopic, State, SubTopic, TopicHandle, Will,
};

#[test]
fn connect_with_a_will_answers_both_prompts_then_registers_and_subscribes_before_publishing() {
    let mut cfg = fixed_config();
    cfg.will = Some(Will::new("motes/mote-1/status", b"offline", QoS::One, true).unwrap());
    let mut w = World::new(cfg);
    let t = w
        .with(|c, now| c.register(now, "motes/mote-1/reading"))
        .unwrap();
    let cmd = w
        .with(|c, now| c.subscribe(now, SubTopic::Name("motes/mote-1/cmd"), QoS::One))
        .unwrap();
    let tok = w
        .with(|c, now| c.publish(now, PubTopic::Registered(t), b"21.5", QoS::One, false))
        .unwrap();
    w.expect_silence();
    w.with(|c, now| c.connect(now)).unwrap();
    w.expect_sent(&[Packet::Connect(Connect {
        will: true,
        clean_session: true,
        duration: 30,
        client_id: b"mote-1",
    })]);
    assert_eq!(w.c.state(), State::Connecting);

    w.deliver(&Packet::WillTopicReq);
    w.expect_sent(&[Packet::WillTopic(Some(WillTopic {
        qos: QoS::One,
        retain: true,
        topic: b"motes/mote-1/status",
    }))]);
    w.deliver(&Packet::WillMsgReq);
    w.expect_sent(&[Packet::WillMsg { msg: b"offline" }]);
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.expect_events(&[ClientEvent::Connected {
        gw_id: 7,
        resumed: false,
    }]);
    assert_eq!(w.c.state(), State::Registering);
    w.expect_sent(&[Packet::Register(Register {
        topic_id: 0,
        msg_id: 1,
        topic_name: b"motes/mote-1/reading",
    })]);

    w.deliver(&Packet::Regack {
        topic_id: 5,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.expect_events(&[ClientEvent::Registered {
        topic: t,
        topic_id: 5,
    }]);
    w.expect_sent(&[Packet::Subscribe(Subscribe {
        dup: false,
        qos: QoS::One,
        msg_id: 2,
        topic: TopicRef::Name(b"motes/mote-1/cmd"),
    })]);
    w.deliver(&Packet::Suback {
        qos: QoS::One,
        topic_id: 9,
        msg_id: 2,
        return_code: ReturnCode::Accepted,
    });
    w.expect_events(&[ClientEvent::Subscribed {
        topic: cmd,
        qos: QoS::One,
    }]);
    assert_eq!(w.c.state(), State::Active);
    assert_eq!(w.c.topic_id(cmd), Some(9));
    w.expect_sent(&[Packet::Publish(sn_codec::Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Normal(5),
        msg_id: 3,
        data: b"21.5",
    })]);
    w.deliver(&Packet::Puback {
        topic_id: 5,
        msg_id: 3,
        return_code: ReturnCode::Accepted,
    });
    w.expect_events(&[ClientEvent::Published {
        token: tok,
        qos: QoS::One,
        retries: 0,
    }]);
    assert!(w.c.is_idle());
}

#[test]
fn a_lost_connect_is_retransmitted_and_a_gateway_that_prompts_twice_gets_answers_twice() {
    let mut w = World::new(fixed_config());
    w.with(|c, now| c.connect(now)).unwrap();
    w.expect_sent(&[connect_packet(true)]);
    w.fire();
    w.expect_sent(&[connect_packet(true)]);
    assert_eq!(w.c.stats().retransmissions, 1);
    // No Will configured: a prompt is answered with the empty WILLTOPIC.
    w.deliver(&Packet::WillTopicReq);
    w.expect_sent(&[Packet::WillTopic(None)]);
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    assert_eq!(w.c.state(), State::Active);
}

#[test]
fn a_rejected_connect_is_retried_after_t_wait() {
    let mut w = World::new(fixed_config());
    w.with(|c, now| c.connect(now)).unwrap();
    w.take_sent();
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Congestion,
    });
    w.expect_events(&[ClientEvent::ConnectRejected {
        code: ReturnCode::Congestion,
    }]);
    w.expect_silence();
    assert_eq!(w.c.poll_timeout(), Some(w.now + secs(30)));
    w.run_for(secs(29));
    w.expect_silence();
    w.run_for(secs(1));
    w.expect_sent(&[connect_packet(true)]);
}

#[test]
fn keep_alive_pings_after_an_idle_period_and_any_traffic_postpones_it() {
    let mut w = World::connected(fixed_config());
    let start = w.now;
    assert_eq!(w.c.poll_timeout(), Some(start + secs(30)));
    w.run_for(secs(20));
    w.with(|c, now| c.publish(now, PubTopic::Predefined(1), b"x", QoS::Zero, false))
        .unwrap();
    w.take_sent();
    w.take_events();
    assert_eq!(w.c.poll_timeout(), Some(start + secs(50)));
    w.fire();
    w.expect_sent(&[Packet::Pingreq { client_id: None }]);
    w.deliver(&Packet::Pingresp);
    assert_eq!(w.c.poll_timeout(), Some(start + secs(80)));
    assert_eq!(w.c.stats().unexpected, 0);
}

#[test]
fn disconnect_waits_for_the_request_in_flight_then_ends_the_session() {
    let mut w = World::connected(fixed_config());
    w.with(|c, now| c.publish(now, PubTopic::Predefined(1), b"a", QoS::One, false))
        .unwrap();
    w.take_sent();
    w.with(|c, now| c.disconnect(now)).unwrap();
    w.expect_silence();
    w.deliver(&Packet::Puback {
        topic_id: 1,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.expect_sent(&[Packet::Disconnect { duration: None }]);
    w.deliver(&Packet::Disconnect { duration: None });
    assert_eq!(w.c.state(), State::Disconnected);
    let events = w.take_events();
    assert!(events.contains(&ClientEvent::Disconnected {
        reason: DisconnectReason::Requested
    }));
    assert_eq!(w.c.poll_timeout(), None, "no keep-alive without a session");
}

#[test]
fn an_unsolicited_disconnect_starts_a_new_session_that_registers_again() {
    let mut w = World::new(fixed_config());
    let t = w.with(|c, now| c.register(now, "a/b")).unwrap();
    w.with(|c, now| c.connect(now)).unwrap();
    w.take_sent();
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
        .with(|c, now| c.publish(now, PubTopic::Registered(t), b"1", QoS::One, false))
        .unwrap();
    w.take_sent();
    // The gateway restarted and does not know us: after a randomised wait, a new session.
    w.deliver(&Packet::Disconnect { duration: None });
    w.expect_events(&[ClientEvent::Disconnected {
        reason: DisconnectReason::ByGateway,
    }]);
    w.expect_silence();
    w.fire();
    w.expect_sent(&[connect_packet(true)]);
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    assert_eq!(
        w.c.topic_id(t),
        None,
        "ids of the old session are forgotten"
    );
    w.expect_sent(&[Packet::Register(Register {
        topic_id: 0,
        msg_id: 3,
        topic_name: b"a/b",
    })]);
    w.deliver(&Packet::Regack {
        topic_id: 8,
        msg_id: 3,
        return_code: ReturnCode::Accepted,
    });
    // The interrupted publish goes again, with the new id.
    let sent = w.take_sent();
    assert_eq!(sent.len(), 1);
    let Ok(Packet::Publish(p)) = Packet::decode(&sent[0].1) else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (p.topic, p.data, p.dup),
        (TopicRef::Normal(8), &b"1"[..], false)
    );
    w.deliver(&Packet::Puback {
        topic_id: 8,
        msg_id: p.msg_id,
        return_code: ReturnCode::Accepted,
    });
    assert!(w.take_events().contains(&ClientEvent::Published {
        token: tok,
        qos: QoS::One,
        retries: 0
    }));
}

#[test]
fn commands_check_their_arguments_without_queueing_anything() {
    let mut w = World::new(fixed_config());
    assert_eq!(w.c.register(w.now, "a/+"), Err(CommandError::InvalidTopic));
    assert_eq!(w.c.register(w.now, ""), Err(CommandError::InvalidTopic));
    assert_eq!(
        w.c.subscribe(w.now, SubTopic::Name("a/#"), QoS::MinusOne),
        Err(CommandError::QosNotAllowed)
    );
    let bogus = PubTopic::Registered(TopicHandle(7));
    assert_eq!(
        w.c.publish(w.now, bogus, b"x", QoS::One, false),
        Err(CommandError::UnknownTopic)
    );
    let t = w.c.register(w.now, "a/b").unwrap();
    assert_eq!(
        w.c.publish(w.now, PubTopic::Registered(t), b"x", QoS::MinusOne, false),
        Err(CommandError::QosNotAllowed)
    );
    assert_eq!(
        w.c.publish(w.now, PubTopic::Predefined(0), b"x", QoS::Zero, false),
        Err(CommandError::InvalidTopic)
    );
    let big = [0u8; 65];
    assert_eq!(
        w.c.publish(w.now, PubTopic::Predefined(1), &big, QoS::Zero, false),
        Err(CommandError::TooLarge)
    );
    for _ in 0..4 {
        w.c.publish(w.now, PubTopic::Predefined(1), b"x", QoS::One, false)
            .unwrap();
    }
    assert_eq!(
        w.c.publish(w.now, PubTopic::Predefined(1), b"x", QoS::One, false),
        Err(CommandError::QueueFull)
    );
    assert_eq!(w.c.wake(w.now), Err(CommandError::InvalidState));
    assert_eq!(w.c.sleep(w.now, 10), Err(CommandError::InvalidState));
    assert_eq!(
        w.c.register(w.now, "a/b"),
        Ok(t),
        "registering twice gives the same handle"
    );
    w.drain();
    w.expect_silence();
}

#[test]
fn a_gateway_that_answers_every_connect_with_disconnect_is_retried_with_growing_back_off() {
    let mut w = World::new(fixed_config());
    w.with(|c, now| c.connect(now)).unwrap();
    let mut connects = Vec::new();
    let end = w.now.saturating_add(secs(300));
    loop {
        // Answer every CONNECT sent so far (an answer may make the client send the next one
        // at once).
        loop {
            let sent = w.take_sent();
            let connect = sent
                .iter()
                .any(|(_, b)| matches!(Packet::decode(b), Ok(Packet::Connect(_))));
            if !connect {
                break;
            }
            connects.push(w.now);
            w.deliver(&Packet::Disconnect { duration: None });
        }
        if w.c.poll_timeout().is_none_or(|t| t > end) {
            break;
        }
        w.fire();
    }
    // Back-off 4 s doubling to 60 s, the upper half randomised: a handful of attempts in five
    // minutes, not thousands.
    assert!(
        (5..=12).contains(&connects.len()),
        "{} CONNECTs in 300 s: {connects:?}",
        connects.len()
    );
    let gaps: Vec<u64> = connects
        .windows(2)
        .map(|p| p[1].as_millis() - p[0].as_millis())
        .collect();
    assert!(
        (2_000..=4_000).contains(&gaps[0]),
        "even the first reconnect waits a randomised 2–4 s: {gaps:?}"
    );
    assert!(gaps[1] >= 4_000, "then longer: {gaps:?}");
    assert!(
        gaps.iter().all(|g| *g <= 60_000),
        "never more than the cap: {gaps:?}"
    );
    assert!(
        gaps.last().is_some_and(|g| *g >= 30_000),
        "the waits grow towards the cap: {gaps:?}"
    );
}

#[test]
fn a_session_that_worked_resets_the_back_off() {
    let mut w = World::connected(fixed_config());
    for _ in 0..4 {
        // The gateway ends the session; the client reconnects after the first, shortest wait
        // every time, since each new session was accepted.
        w.deliver(&Packet::Disconnect { duration: None });
        w.take_events();
        let before = w.now;
        w.fire();
        let waited = w.now.as_millis() - before.as_millis();
        assert!((2_000..=4_000).contains(&waited), "{waited} ms");
        w.expect_sent(&[connect_packet(true)]);
        w.deliver(&Packet::Connack {
            return_code: ReturnCode::Accepted,
        });
        w.take_sent();
        w.take_events();
    }
}
