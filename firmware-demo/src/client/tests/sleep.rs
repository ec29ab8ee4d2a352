//! The sleep cycle: DISCONNECT(Duration), wake-up PINGREQ(ClientId), buffered messages,
//! PINGRESP, resume with CONNECT.

use sn_codec::{Connect, Packet, Publish, QoS, Register, ReturnCode, TopicRef};

use super::harness::*;
use crate::client::{
    ClientEvent, DisconnectReason, LossReason, MessageTopic, PubTopic, State, SubTopic,
};

fn asleep() -> World {
    let mut w = World::connected(fixed_config());
    w.with(|c, now| c.sleep(now, 120)).unwrap();
    w.expect_sent(&[Packet::Disconnect {
        duration: Some(120),
    }]);
    w.deliver(&Packet::Disconnect { duration: None });
    w.expect_events(&[ClientEvent::Asleep { duration: 120 }]);
    assert_eq!(w.c.state(), State::Asleep);
    w
}

#[test]
fn sleep_waits_for_the_outbox_then_the_client_stays_silent_while_asleep() {
    let mut w = World::connected(fixed_config());
    let tok = w
        .with(|c, now| c.publish(now, PubTopic::Predefined(1), b"r", QoS::One, false))
        .unwrap();
    w.take_sent();
    w.with(|c, now| c.sleep(now, 60)).unwrap();
    w.expect_silence();
    w.deliver(&Packet::Puback {
        topic_id: 1,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.expect_sent(&[Packet::Disconnect { duration: Some(60) }]);
    // The DISCONNECT is retransmitted like any request.
    w.fire();
    w.expect_sent(&[Packet::Disconnect { duration: Some(60) }]);
    w.deliver(&Packet::Disconnect { duration: None });
    w.expect_events(&[
        ClientEvent::Published {
            token: tok,
            qos: QoS::One,
            retries: 0,
        },
        ClientEvent::Asleep { duration: 60 },
    ]);
    assert_eq!(w.c.sleep_duration(), 60);
    assert_eq!(
        w.c.poll_timeout(),
        None,
        "no keep-alive and no ADVERTISE supervision while asleep"
    );
    // Publishes wait for the next session; a duplicate DISCONNECT is ignored.
    w.with(|c, now| c.publish(now, PubTopic::Predefined(1), b"later", QoS::One, false))
        .unwrap();
    w.deliver(&Packet::Disconnect { duration: None });
    w.run_for(secs(3600));
    w.expect_silence();
    assert_eq!(w.c.state(), State::Asleep);
}

#[test]
fn wake_up_takes_the_buffered_messages_with_a_register_then_sleeps_again_at_pingresp() {
    let mut w = World::new(fixed_config());
    let cmd = w
        .with(|c, now| c.subscribe(now, SubTopic::Name("motes/+/cmd"), QoS::One))
        .unwrap();
    w.with(|c, now| c.connect(now)).unwrap();
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.deliver(&Packet::Suback {
        qos: QoS::One,
        topic_id: 0,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.with(|c, now| c.sleep(now, 120)).unwrap();
    w.deliver(&Packet::Disconnect { duration: None });
    w.take_sent();
    w.take_events();
    let _ = cmd;

    w.run_for(secs(100));
    w.with(|c, now| c.wake(now)).unwrap();
    w.expect_sent(&[Packet::Pingreq {
        client_id: Some(b"mote-1"),
    }]);
    w.expect_events(&[ClientEvent::Awake]);
    assert_eq!(w.c.state(), State::Awake);
    // The gateway registers the concrete topic, then delivers the message.
    w.deliver(&Packet::Register(Register {
        topic_id: 3,
        msg_id: 7,
        topic_name: b"motes/mote-1/cmd",
    }));
    w.expect_sent(&[Packet::Regack {
        topic_id: 3,
        msg_id: 7,
        return_code: ReturnCode::Accepted,
    }]);
    // Slow delivery: each gateway message restarts T_RETRY of the PINGREQ.
    w.run_for(core::time::Duration::from_millis(900));
    w.deliver(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Normal(3),
        msg_id: 8,
        data: b"interval=30",
    }));
    w.expect_sent(&[Packet::Puback {
        topic_id: 3,
        msg_id: 8,
        return_code: ReturnCode::Accepted,
    }]);
    w.run_for(core::time::Duration::from_millis(900));
    w.expect_silence();
    w.deliver(&Packet::Pingresp);
    let events = w.take_events();
    let [ClientEvent::Message(m), ClientEvent::BackToSleep] = &events[..] else {
        panic!("{events:?}")
    };
    let MessageTopic::Topic(h) = m.topic else {
        panic!()
    };
    assert_eq!(w.c.topic_name(h), Some("motes/mote-1/cmd"));
    assert_eq!(w.c.state(), State::Asleep);
    assert_eq!(w.c.poll_timeout(), None);
}

#[test]
fn a_wake_up_pingreq_is_repeated_and_an_unanswered_one_loses_the_gateway() {
    let mut w = asleep();
    w.with(|c, now| c.wake(now)).unwrap();
    w.take_sent();
    w.fire();
    w.fire();
    w.expect_sent(&[
        Packet::Pingreq {
            client_id: Some(b"mote-1"),
        },
        Packet::Pingreq {
            client_id: Some(b"mote-1"),
        },
    ]);
    w.fire();
    let events = w.take_events();
    assert!(
        events.contains(&ClientEvent::GatewayLost {
            gw_id: 7,
            reason: LossReason::RetriesExhausted
        }),
        "{events:?}"
    );
    assert_eq!(w.c.state(), State::Lost);
}

#[test]
fn a_gateway_that_forgot_the_sleeper_answers_disconnect_and_the_client_starts_over() {
    let mut w = World::new(fixed_config());
    let t = w.with(|c, now| c.register(now, "a/b")).unwrap();
    w.with(|c, now| c.connect(now)).unwrap();
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.deliver(&Packet::Regack {
        topic_id: 5,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.with(|c, now| c.sleep(now, 10)).unwrap();
    w.deliver(&Packet::Disconnect { duration: None });
    w.take_sent();
    w.take_events();
    w.with(|c, now| c.wake(now)).unwrap();
    w.take_sent();
    w.deliver(&Packet::Disconnect { duration: None });
    let events = w.take_events();
    assert!(events.contains(&ClientEvent::Disconnected {
        reason: DisconnectReason::ByGateway
    }));
    w.expect_silence();
    w.fire();
    w.expect_sent(&[connect_packet(true)]);
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.expect_sent(&[Packet::Register(Register {
        topic_id: 0,
        msg_id: 2,
        topic_name: b"a/b",
    })]);
    assert_eq!(w.c.topic_id(t), None);
}

#[test]
fn connect_from_asleep_resumes_the_session_without_registering_again() {
    let mut w = World::new(fixed_config());
    let t = w.with(|c, now| c.register(now, "a/b")).unwrap();
    w.with(|c, now| c.connect(now)).unwrap();
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.deliver(&Packet::Regack {
        topic_id: 5,
        msg_id: 1,
        return_code: ReturnCode::Accepted,
    });
    w.with(|c, now| c.sleep(now, 10)).unwrap();
    w.deliver(&Packet::Disconnect { duration: None });
    let tok = w
        .with(|c, now| c.publish(now, PubTopic::Registered(t), b"v", QoS::Zero, false))
        .unwrap();
    w.take_sent();
    w.take_events();
    w.run_for(secs(8));
    w.with(|c, now| c.connect(now)).unwrap();
    w.expect_sent(&[Packet::Connect(Connect {
        will: false,
        clean_session: false,
        duration: 30,
        client_id: b"mote-1",
    })]);
    w.deliver(&Packet::Connack {
        return_code: ReturnCode::Accepted,
    });
    w.expect_sent(&[Packet::Publish(Publish {
        dup: false,
        qos: QoS::Zero,
        retain: false,
        topic: TopicRef::Normal(5),
        msg_id: 0,
        data: b"v",
    })]);
    w.expect_events(&[
        ClientEvent::Connected {
            gw_id: 7,
            resumed: true,
        },
        ClientEvent::Published {
            token: tok,
            qos: QoS::Zero,
            retries: 0,
        },
    ]);
    // Sleep again with a new duration, and leave for good from Asleep.
    w.with(|c, now| c.sleep(now, 20)).unwrap();
    w.deliver(&Packet::Disconnect { duration: None });
    w.with(|c, now| c.disconnect(now)).unwrap();
    w.expect_sent(&[
        Packet::Disconnect { duration: Some(20) },
        Packet::Disconnect { duration: None },
    ]);
    w.deliver(&Packet::Disconnect { duration: None });
    assert_eq!(w.c.state(), State::Disconnected);
}
