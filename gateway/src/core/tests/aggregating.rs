//! Aggregating mode: every client rides the gateway's own upstream link; subscriptions are a
//! reference-counted union; the gateway publishes Wills and takes custody of broker messages.

use crate::core::upstream::MqttQos;
use std::time::Duration;

use bytes::Bytes;
use sn_codec::{Packet, Publish, QoS, ReturnCode, Subscribe, TopicRef, Unsubscribe, WillTopic};

use super::harness::{Harness, acks, connect, peer};
use crate::core::addr::PeerAddr;
use crate::core::config::{GatewayConfig, UpstreamMode};
use crate::core::upstream::{DeliveryId, LinkId, Token, UpstreamCmd, UpstreamEvent};

fn aggregating() -> Harness {
    let mut cfg = GatewayConfig::default();
    cfg.upstream.mode = UpstreamMode::Aggregating;
    Harness::new(cfg)
}

fn accepted() -> Packet<'static> {
    Packet::Connack {
        return_code: ReturnCode::Accepted,
    }
}

/// Connects `id` from `from`; the CONNACK must come at once.
fn join(h: &mut Harness, from: &PeerAddr, id: &str) {
    h.raw(from, &connect(id, false, true, 60));
    h.expect(from, &[accepted()]);
    h.clear();
}

fn subscribe(filter: &'static [u8], msg_id: u16) -> Packet<'static> {
    Packet::Subscribe(Subscribe {
        dup: false,
        qos: QoS::One,
        msg_id,
        topic: TopicRef::Name(filter),
    })
}

fn suback(msg_id: u16, qos: QoS) -> Packet<'static> {
    Packet::Suback {
        qos,
        topic_id: 0,
        msg_id,
        return_code: ReturnCode::Accepted,
    }
}

/// The shared-link subscriptions among `cmds`: token, filter, QoS.
fn shared_subscribes(cmds: &[UpstreamCmd]) -> Vec<(Token, String, u8)> {
    cmds.iter()
        .filter_map(|c| match c {
            UpstreamCmd::Subscribe {
                link,
                token,
                filter,
                qos,
            } => {
                assert_eq!(*link, LinkId::GATEWAY, "everything rides the shared link");
                Some((*token, filter.clone(), qos.level()))
            }
            _ => None,
        })
        .collect()
}

fn broker_message(pkid: u16, topic: &str, qos: u8, retain: bool) -> UpstreamEvent {
    let qos = MqttQos::from_level(qos).expect("a QoS level");
    UpstreamEvent::Message {
        link: LinkId::GATEWAY,
        delivery: DeliveryId { pkid, qos },
        topic: topic.into(),
        payload: Bytes::from_static(b"22.5"),
        qos,
        retain,
    }
}

/// Answers every REGISTER sent to `to` with an accepting REGACK.
fn accept_registers(h: &mut Harness, to: &PeerAddr) {
    let registers: Vec<(u16, u16)> = h
        .sent_to(to)
        .iter()
        .filter_map(|b| match Packet::decode(b) {
            Ok(Packet::Register(r)) => Some((r.topic_id, r.msg_id)),
            _ => None,
        })
        .collect();
    for (topic_id, msg_id) in registers {
        h.recv(
            to,
            Packet::Regack {
                topic_id,
                msg_id,
                return_code: ReturnCode::Accepted,
            },
        );
    }
}

/// The PUBLISH data the client at `to` was sent since the last clear.
fn delivered(h: &Harness, to: &PeerAddr) -> Vec<(Vec<u8>, QoS, bool)> {
    h.sent_to(to)
        .iter()
        .filter_map(|b| match Packet::decode(b) {
            Ok(Packet::Publish(p)) => Some((p.data.to_vec(), p.qos, p.retain)),
            _ => None,
        })
        .collect()
}

#[test]
fn connack_comes_at_once_and_no_upstream_connection_is_opened_per_client() {
    let mut h = aggregating();
    for n in 1..=3u8 {
        let a = peer(n);
        h.raw(&a, &connect(&format!("mote-{n}"), false, true, 60));
        h.expect(&a, &[accepted()]);
    }
    assert!(h.take_cmds().is_empty(), "no Open per client");
}

#[test]
fn connect_is_refused_with_congestion_while_the_shared_link_is_down() {
    let mut h = aggregating();
    h.upstream(UpstreamEvent::LinkDown {
        link: LinkId::GATEWAY,
        reason: "broker gone".into(),
    });
    h.clear();
    let a = peer(1);
    h.raw(&a, &connect("mote-1", false, true, 60));
    h.expect(
        &a,
        &[Packet::Connack {
            return_code: ReturnCode::Congestion,
        }],
    );
}

#[test]
fn a_qos1_publish_travels_on_the_shared_link_and_is_acknowledged_after_the_broker() {
    let mut h = aggregating();
    let a = peer(1);
    join(&mut h, &a, "mote-1");
    h.recv(
        &a,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Short(*b"t1"),
            msg_id: 9,
            data: b"21.0",
        }),
    );
    h.expect_silence();
    let cmds = h.take_cmds();
    let [
        UpstreamCmd::Publish {
            link, token, topic, ..
        },
    ] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert_eq!((*link, topic.as_str()), (LinkId::GATEWAY, "t1"));
    h.upstream(UpstreamEvent::PublishDone {
        link: LinkId::GATEWAY,
        token: *token,
    });
    h.expect(
        &a,
        &[Packet::Puback {
            topic_id: u16::from_be_bytes(*b"t1"),
            msg_id: 9,
            return_code: ReturnCode::Accepted,
        }],
    );
}

#[test]
fn subscriptions_form_a_union_and_a_message_fans_out_with_the_broker_acked_at_custody() {
    let mut h = aggregating();
    let (a, b) = (peer(1), peer(2));
    join(&mut h, &a, "mote-1");
    join(&mut h, &b, "mote-2");
    h.recv(&a, subscribe(b"cmd/#", 1));
    h.recv(&b, subscribe(b"cmd/#", 2));
    let subs = shared_subscribes(&h.take_cmds());
    assert_eq!(subs.len(), 2, "each SUBSCRIBE goes up (retained messages)");
    for (token, filter, qos) in &subs {
        assert_eq!((filter.as_str(), *qos), ("cmd/#", 1));
        h.upstream(UpstreamEvent::SubAck {
            link: LinkId::GATEWAY,
            token: *token,
            granted: Some(MqttQos::AtLeastOnce),
        });
    }
    h.expect(&a, &[suback(1, QoS::One)]);
    h.expect(&b, &[suback(2, QoS::One)]);

    h.upstream(broker_message(41, "cmd/led", 1, false));
    assert_eq!(acks(&h.take_cmds()), vec![41], "acked when routed");
    accept_registers(&mut h, &a);
    accept_registers(&mut h, &b);
    assert_eq!(delivered(&h, &a), vec![(b"22.5".to_vec(), QoS::One, false)]);
    assert_eq!(delivered(&h, &b), vec![(b"22.5".to_vec(), QoS::One, false)]);

    // The first to leave keeps the shared subscription; the last one drops it.
    h.clear();
    h.recv(
        &a,
        Packet::Unsubscribe(Unsubscribe {
            msg_id: 3,
            topic: TopicRef::Name(b"cmd/#"),
        }),
    );
    h.expect(&a, &[Packet::Unsuback { msg_id: 3 }]);
    assert!(h.take_cmds().is_empty());
    h.recv(
        &b,
        Packet::Unsubscribe(Unsubscribe {
            msg_id: 4,
            topic: TopicRef::Name(b"cmd/#"),
        }),
    );
    h.expect(&b, &[Packet::Unsuback { msg_id: 4 }]);
    let cmds = h.take_cmds();
    assert!(
        matches!(&cmds[..], [UpstreamCmd::Unsubscribe { link: LinkId::GATEWAY, filter, .. }] if filter == "cmd/#"),
        "{cmds:?}"
    );
}

#[test]
fn retained_messages_after_a_suback_go_only_to_the_clients_it_answers() {
    let mut h = aggregating();
    let (a, b) = (peer(1), peer(2));
    join(&mut h, &a, "mote-1");
    join(&mut h, &b, "mote-2");
    h.recv(&a, subscribe(b"cfg/rate", 1));
    let (t1, ..) = shared_subscribes(&h.take_cmds())[0].clone();
    h.upstream(UpstreamEvent::SubAck {
        link: LinkId::GATEWAY,
        token: t1,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.upstream(broker_message(0, "cfg/rate", 0, true));
    assert_eq!(delivered(&h, &a).len(), 1);
    h.clear();

    h.recv(&b, subscribe(b"cfg/rate", 2));
    let (t2, ..) = shared_subscribes(&h.take_cmds())[0].clone();
    h.upstream(UpstreamEvent::SubAck {
        link: LinkId::GATEWAY,
        token: t2,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.clear();
    h.upstream(broker_message(0, "cfg/rate", 0, true));
    assert!(
        delivered(&h, &a).is_empty(),
        "no duplicate retained message"
    );
    assert_eq!(delivered(&h, &b).len(), 1);
    h.clear();
    // A live message (retain cleared by the broker) goes to both.
    h.upstream(broker_message(0, "cfg/rate", 0, false));
    assert_eq!(delivered(&h, &a).len(), 1);
    assert_eq!(delivered(&h, &b).len(), 1);
}

#[test]
fn the_gateway_publishes_the_will_of_a_lost_client_but_not_after_disconnect() {
    let mut h = aggregating();
    let (a, b) = (peer(1), peer(2));
    for (p, id) in [(&a, "mote-1"), (&b, "mote-2")] {
        h.raw(p, &connect(id, true, true, 10));
        h.recv(
            p,
            Packet::WillTopic(Some(WillTopic {
                qos: QoS::One,
                retain: true,
                topic: b"status",
            })),
        );
        h.recv(p, Packet::WillMsg { msg: b"gone" });
        h.clear();
    }
    h.recv(&b, Packet::Disconnect { duration: None });
    assert!(h.take_cmds().is_empty(), "no Will after DISCONNECT");
    // mote-1 falls silent: Lost after the keep-alive tolerance.
    h.advance(Duration::from_secs(60));
    let cmds = h.take_cmds();
    let [
        UpstreamCmd::Publish {
            link: LinkId::GATEWAY,
            topic,
            payload,
            qos: MqttQos::AtLeastOnce,
            retain: true,
            ..
        },
    ] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert_eq!((topic.as_str(), &payload[..]), ("status", &b"gone"[..]));
}

#[test]
fn after_a_shared_link_loss_the_union_is_restored_and_unacknowledged_publishes_resent() {
    let mut h = aggregating();
    let a = peer(1);
    join(&mut h, &a, "mote-1");
    h.recv(&a, subscribe(b"cmd/#", 1));
    let (t, ..) = shared_subscribes(&h.take_cmds())[0].clone();
    h.upstream(UpstreamEvent::SubAck {
        link: LinkId::GATEWAY,
        token: t,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.recv(
        &a,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Short(*b"t1"),
            msg_id: 5,
            data: b"1",
        }),
    );
    let cmds = h.take_cmds();
    let Some(UpstreamCmd::Publish { token, .. }) = cmds.last() else {
        panic!("{cmds:?}")
    };
    let token = *token;
    h.clear();

    h.upstream(UpstreamEvent::LinkDown {
        link: LinkId::GATEWAY,
        reason: "reset".into(),
    });
    h.upstream(UpstreamEvent::LinkUp {
        link: LinkId::GATEWAY,
        session_present: false,
        lost: vec![token],
    });
    let cmds = h.take_cmds();
    let subs = shared_subscribes(&cmds);
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].1.as_str(), subs[0].2), ("cmd/#", 1));
    let resent: Vec<Token> = cmds
        .iter()
        .filter_map(|c| match c {
            UpstreamCmd::Publish {
                link: LinkId::GATEWAY,
                token,
                qos: MqttQos::AtLeastOnce,
                ..
            } => Some(*token),
            _ => None,
        })
        .collect();
    assert_eq!(
        resent.iter().filter(|t| **t == token).count(),
        1,
        "the lost publish goes up again: {resent:?}"
    );
    h.upstream(UpstreamEvent::PublishDone {
        link: LinkId::GATEWAY,
        token,
    });
    h.expect(
        &a,
        &[Packet::Puback {
            topic_id: u16::from_be_bytes(*b"t1"),
            msg_id: 5,
            return_code: ReturnCode::Accepted,
        }],
    );
    // The restored subscription answers no client (the client was answered long ago).
    h.upstream(UpstreamEvent::SubAck {
        link: LinkId::GATEWAY,
        token: subs[0].0,
        granted: Some(MqttQos::AtLeastOnce),
    });
    h.expect_silence();
    h.upstream(broker_message(7, "cmd/x", 1, false));
    accept_registers(&mut h, &a);
    assert_eq!(delivered(&h, &a).len(), 1);
}

#[test]
fn a_lost_clients_subscriptions_leave_the_union() {
    let mut h = aggregating();
    let a = peer(1);
    h.raw(&a, &connect("mote-1", false, true, 10));
    h.clear();
    h.recv(&a, subscribe(b"cmd/#", 1));
    h.take_cmds();
    h.advance(Duration::from_secs(60));
    let cmds = h.take_cmds();
    assert!(
        matches!(&cmds[..], [UpstreamCmd::Unsubscribe { link: LinkId::GATEWAY, filter, .. }] if filter == "cmd/#"),
        "{cmds:?}"
    );
    h.clear();
    h.upstream(broker_message(3, "cmd/x", 1, false));
    assert_eq!(
        acks(&h.take_cmds()),
        vec![3],
        "acked though nobody holds it"
    );
    h.expect_silence();
}
