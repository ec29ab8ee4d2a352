//! Sleeping clients (`docs/protocol.md`, "Sleeping clients"): buffering, wake-up by PINGREQ,
//! wake by CONNECT, sleep timer.

use crate::core::upstream::MqttQos;
use std::time::Duration;

use sn_codec::{Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef};

use super::harness::{Harness, acks, connect, message, peer};
use crate::core::config::GatewayConfig;
use crate::core::event::{GatewayEvent, LostReason};
use crate::core::upstream::{LinkId, UpstreamCmd, UpstreamEvent};

/// mote-1 with `t` registered (id 1) and subscribed at QoS 2, then asleep for 300 s.
fn asleep(h: &mut Harness) -> LinkId {
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
    h.recv(
        &a,
        Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::Two,
            msg_id: 2,
            topic: TopicRef::Name(b"#"),
        }),
    );
    let token = h
        .take_cmds()
        .iter()
        .find_map(|c| match c {
            UpstreamCmd::Subscribe { token, .. } => Some(*token),
            _ => None,
        })
        .unwrap();
    h.upstream(UpstreamEvent::SubAck {
        link,
        token,
        granted: Some(MqttQos::ExactlyOnce),
    });
    h.clear();
    h.recv(
        &a,
        Packet::Disconnect {
            duration: Some(300),
        },
    );
    h.expect(&a, &[Packet::Disconnect { duration: None }]);
    assert!(
        h.take_cmds().is_empty(),
        "the upstream session stays open while asleep"
    );
    link
}

fn publish(qos: QoS, id: u16, msg_id: u16, data: &'static [u8]) -> Packet<'static> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicRef::Normal(id),
        msg_id,
        data,
    })
}

#[test]
fn a_sleeping_client_gets_its_buffered_messages_on_wake_up_then_pingresp() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = asleep(&mut h);
    h.upstream(message(link, 1, "t", b"q0", 0));
    h.upstream(message(link, 2, "t", b"q1", 1));
    h.upstream(message(link, 3, "t", b"q2", 2));
    h.expect_silence();
    assert!(
        acks(&h.take_cmds()).is_empty(),
        "nothing acknowledged upstream while asleep"
    );
    h.advance(Duration::from_secs(200));
    h.recv(
        &a,
        Packet::Pingreq {
            client_id: Some(b"mote-1"),
        },
    );
    h.expect(
        &a,
        &[
            publish(QoS::Zero, 1, 0, b"q0"),
            publish(QoS::One, 1, 1, b"q1"),
        ],
    );
    h.recv(
        &a,
        Packet::Puback {
            topic_id: 1,
            msg_id: 1,
            return_code: ReturnCode::Accepted,
        },
    );
    h.expect(&a, &[publish(QoS::Two, 1, 2, b"q2")]);
    h.recv(&a, Packet::Pubrec { msg_id: 2 });
    h.expect(&a, &[Packet::Pubrel { msg_id: 2 }]);
    h.recv(&a, Packet::Pubcomp { msg_id: 2 });
    h.expect(&a, &[Packet::Pingresp]);
    assert_eq!(acks(&h.take_cmds()), vec![2, 3]);
    // Asleep again with the timer restarted: not lost 330 s after the first sleep began.
    h.advance(Duration::from_secs(300));
    assert!(!h.has_event(|e| matches!(e, GatewayEvent::ClientLost { .. })));
}

#[test]
fn an_empty_buffer_gets_pingresp_at_once() {
    let mut h = Harness::default();
    let a = peer(1);
    asleep(&mut h);
    h.recv(
        &a,
        Packet::Pingreq {
            client_id: Some(b"mote-1"),
        },
    );
    h.expect(&a, &[Packet::Pingresp]);
}

#[test]
fn a_client_that_does_not_wake_in_time_is_lost_and_its_will_is_published() {
    let mut h = Harness::default();
    let link = asleep(&mut h);
    h.advance(Duration::from_secs(329));
    assert!(h.take_cmds().is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.take_cmds(),
        vec![UpstreamCmd::Close {
            link,
            graceful: false
        }]
    );
    assert!(h.has_event(|e| matches!(
        e,
        GatewayEvent::ClientLost {
            reason: LostReason::SleepExpired,
            ..
        }
    )));
}

#[test]
fn the_sleep_buffer_is_bounded_and_drops_the_oldest_qos0_first() {
    let mut cfg = GatewayConfig::default();
    cfg.sleep.max_buffered = 2;
    let mut h = Harness::new(cfg);
    let a = peer(1);
    let link = asleep(&mut h);
    h.upstream(message(link, 0, "t", b"old0", 0));
    h.upstream(message(link, 5, "t", b"q1", 1));
    h.upstream(message(link, 0, "t", b"new0", 0));
    h.upstream(message(link, 6, "t", b"q1b", 1));
    // Only QoS 1 left in a full buffer: the newest is refused (dropped, counted, acknowledged
    // upstream once the earlier deliveries are).
    h.upstream(message(link, 7, "t", b"q1c", 1));
    assert!(
        acks(&h.take_cmds()).is_empty(),
        "7 cannot be acknowledged before 5 and 6"
    );
    let drops = h
        .events
        .iter()
        .filter(|e| matches!(e, GatewayEvent::Dropped { .. }))
        .count();
    assert_eq!(drops, 3, "old0, new0 and q1c");
    h.recv(
        &a,
        Packet::Pingreq {
            client_id: Some(b"mote-1"),
        },
    );
    h.expect(&a, &[publish(QoS::One, 1, 1, b"q1")]);
    h.recv(
        &a,
        Packet::Puback {
            topic_id: 1,
            msg_id: 1,
            return_code: ReturnCode::Accepted,
        },
    );
    h.expect(&a, &[publish(QoS::One, 1, 2, b"q1b")]);
    assert_eq!(acks(&h.take_cmds()), vec![5]);
    h.recv(
        &a,
        Packet::Puback {
            topic_id: 1,
            msg_id: 2,
            return_code: ReturnCode::Accepted,
        },
    );
    h.expect(&a, &[Packet::Pingresp]);
    assert_eq!(acks(&h.take_cmds()), vec![6, 7]);
}

#[test]
fn connect_while_asleep_resumes_the_session_and_delivers_the_buffer() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = asleep(&mut h);
    h.upstream(message(link, 7, "t", b"hello", 1));
    h.raw(&a, &connect("mote-1", false, true, 60));
    h.expect(
        &a,
        &[
            Packet::Connack {
                return_code: ReturnCode::Accepted,
            },
            publish(QoS::One, 1, 1, b"hello"),
        ],
    );
    assert!(
        h.take_cmds().is_empty(),
        "same upstream session, registrations kept"
    );
}

#[test]
fn retries_exhausted_while_awake_send_the_client_back_to_sleep_keeping_the_message() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = asleep(&mut h);
    h.upstream(message(link, 7, "t", b"m", 1));
    h.recv(
        &a,
        Packet::Pingreq {
            client_id: Some(b"mote-1"),
        },
    );
    h.expect(&a, &[publish(QoS::One, 1, 1, b"m")]);
    h.advance(Duration::from_secs(40));
    h.sent.clear();
    assert!(!h.has_event(|e| matches!(e, GatewayEvent::ClientLost { .. })));
    h.recv(
        &a,
        Packet::Pingreq {
            client_id: Some(b"mote-1"),
        },
    );
    let sent = h.sent_to(&a);
    assert_eq!(
        sent.len(),
        1,
        "the kept message is sent again on the next wake-up"
    );
}

#[test]
fn a_wake_up_from_a_new_address_moves_the_session_when_allowed() {
    let mut h = Harness::default();
    asleep(&mut h);
    let b = peer(2);
    h.recv(
        &b,
        Packet::Pingreq {
            client_id: Some(b"mote-1"),
        },
    );
    h.expect(&b, &[Packet::Pingresp]);
    assert!(h.has_event(|e| matches!(e, GatewayEvent::ClientMoved { .. })));

    let mut cfg = GatewayConfig::default();
    cfg.sleep.allow_wake_from_new_address = false;
    let mut h = Harness::new(cfg);
    asleep(&mut h);
    h.recv(
        &b,
        Packet::Pingreq {
            client_id: Some(b"mote-1"),
        },
    );
    h.expect(&b, &[Packet::Disconnect { duration: None }]);
}

#[test]
fn pingreq_with_an_unknown_client_id_gets_disconnect() {
    let mut h = Harness::default();
    h.recv(
        &peer(3),
        Packet::Pingreq {
            client_id: Some(b"nobody"),
        },
    );
    h.expect(&peer(3), &[Packet::Disconnect { duration: None }]);
}

#[test]
fn connect_after_sleeping_with_a_message_in_flight_sends_it_again_at_once() {
    // Found by the aggregating-mode property test: the retry timer of the message in flight
    // had run out during the sleep, so the woken session's next deadline lay in the past.
    let mut h = Harness::default();
    let a = peer(4);
    let link = h.connect(&a, "m3", true, 10);
    h.recv(
        &a,
        Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::One,
            msg_id: 7,
            topic: TopicRef::Name(b"a/#"),
        }),
    );
    let cmds = h.take_cmds();
    let Some(UpstreamCmd::Subscribe { token, .. }) = cmds.first() else {
        panic!("{cmds:?}")
    };
    h.upstream(UpstreamEvent::SubAck {
        link,
        token: *token,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.upstream(message(link, 0, "a/b", b"x", 0));
    let register = Packet::Register(Register {
        topic_id: 1,
        msg_id: 1,
        topic_name: b"a/b",
    });
    assert!(h.sent_to(&a).contains(&super::harness::encode(&register)));
    h.clear();
    // Asleep with the REGISTER unanswered; wakes by CONNECT after its retry time.
    h.recv(&a, Packet::Disconnect { duration: Some(20) });
    h.advance(Duration::from_secs(11));
    h.clear();
    h.raw(&a, &connect("m3", false, true, 10));
    h.expect(
        &a,
        &[
            Packet::Connack {
                return_code: ReturnCode::Accepted,
            },
            register,
        ],
    );
    assert!(h.gw.poll_timeout().is_some_and(|at| at > h.now));
}
