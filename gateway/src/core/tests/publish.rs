//! Client → broker: REGISTER, PUBLISH at every QoS, duplicates, QoS −1, broker outages.

use std::net::IpAddr;

use sn_codec::{Packet, Publish, QoS, Register, ReturnCode, TopicRef};

use super::harness::{Harness, peer};
use crate::core::config::GatewayConfig;
use crate::core::event::GatewayEvent;
use crate::core::upstream::{LinkId, Token, UpstreamCmd, UpstreamEvent};

fn publish<'a>(qos: QoS, topic: TopicRef<'a>, msg_id: u16, data: &'a [u8]) -> Packet<'a> {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        msg_id,
        data,
    })
}

fn published(cmds: &[UpstreamCmd]) -> Vec<(LinkId, Token, String, Vec<u8>, u8, bool)> {
    cmds.iter()
        .filter_map(|c| match c {
            UpstreamCmd::Publish {
                link,
                token,
                topic,
                payload,
                qos,
                retain,
            } => Some((
                *link,
                *token,
                topic.clone(),
                payload.to_vec(),
                qos.level(),
                *retain,
            )),
            _ => None,
        })
        .collect()
}

fn with_predefined() -> GatewayConfig {
    let mut cfg = GatewayConfig::default();
    cfg.predefined.global.insert(1, "site/status".into());
    cfg.predefined.global.insert(2, "site/alarm".into());
    cfg.predefined
        .per_client
        .entry("mote-1".into())
        .or_default()
        .insert(3, "mote-1/config".into());
    cfg
}

#[test]
fn register_is_idempotent_and_never_hands_out_predefined_ids() {
    let mut h = Harness::new(with_predefined());
    let a = peer(1);
    h.connect(&a, "mote-1", true, 60);
    let reg = |msg_id| {
        Packet::Register(Register {
            topic_id: 0,
            msg_id,
            topic_name: b"sensors/t",
        })
    };
    h.recv(&a, reg(1));
    h.recv(&a, reg(2));
    h.recv(
        &a,
        Packet::Register(Register {
            topic_id: 0,
            msg_id: 3,
            topic_name: b"sensors/h",
        }),
    );
    h.expect(
        &a,
        &[
            Packet::Regack {
                topic_id: 4,
                msg_id: 1,
                return_code: ReturnCode::Accepted,
            },
            Packet::Regack {
                topic_id: 4,
                msg_id: 2,
                return_code: ReturnCode::Accepted,
            },
            Packet::Regack {
                topic_id: 5,
                msg_id: 3,
                return_code: ReturnCode::Accepted,
            },
        ],
    );
}

#[test]
fn register_with_an_invalid_name_or_a_full_table_is_rejected_with_the_matching_code() {
    let mut h = Harness::new(GatewayConfig {
        max_topics_per_client: 1,
        ..Default::default()
    });
    let a = peer(1);
    h.connect(&a, "mote-1", true, 60);
    for (msg_id, name) in [(1, &b"a/+"[..]), (2, b""), (3, &[0xC3, 0x28][..])] {
        h.recv(
            &a,
            Packet::Register(Register {
                topic_id: 0,
                msg_id,
                topic_name: name,
            }),
        );
    }
    h.recv(
        &a,
        Packet::Register(Register {
            topic_id: 0,
            msg_id: 4,
            topic_name: b"ok",
        }),
    );
    h.recv(
        &a,
        Packet::Register(Register {
            topic_id: 0,
            msg_id: 5,
            topic_name: b"full",
        }),
    );
    h.expect(
        &a,
        &[
            Packet::Regack {
                topic_id: 0,
                msg_id: 1,
                return_code: ReturnCode::NotSupported,
            },
            Packet::Regack {
                topic_id: 0,
                msg_id: 2,
                return_code: ReturnCode::NotSupported,
            },
            Packet::Regack {
                topic_id: 0,
                msg_id: 3,
                return_code: ReturnCode::NotSupported,
            },
            Packet::Regack {
                topic_id: 1,
                msg_id: 4,
                return_code: ReturnCode::Accepted,
            },
            Packet::Regack {
                topic_id: 0,
                msg_id: 5,
                return_code: ReturnCode::Congestion,
            },
        ],
    );
}

#[test]
fn qos0_publishes_by_normal_predefined_and_short_topic_go_upstream_with_retain() {
    let mut cfg = with_predefined();
    cfg.upstream.topic_prefix = "site-a/".into();
    let mut h = Harness::new(cfg);
    let a = peer(1);
    let link = h.connect(&a, "mote-1", true, 60);
    h.recv(
        &a,
        Packet::Register(Register {
            topic_id: 0,
            msg_id: 1,
            topic_name: b"sensors/t",
        }),
    );
    h.clear();
    h.recv(&a, publish(QoS::Zero, TopicRef::Normal(4), 0, b"21.5"));
    h.recv(&a, publish(QoS::Zero, TopicRef::Predefined(3), 0, b"cfg"));
    h.recv(
        &a,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::Zero,
            retain: true,
            topic: TopicRef::Short(*b"ab"),
            msg_id: 0,
            data: b"x",
        }),
    );
    h.expect_silence();
    let p = published(&h.take_cmds());
    let summary: Vec<_> = p
        .iter()
        .map(|(l, _, t, d, q, r)| (*l, t.as_str(), d.as_slice(), *q, *r))
        .collect();
    assert_eq!(
        summary,
        vec![
            (link, "site-a/sensors/t", &b"21.5"[..], 0, false),
            (link, "site-a/mote-1/config", &b"cfg"[..], 0, false),
            (link, "site-a/ab", &b"x"[..], 0, true),
        ]
    );
}

#[test]
fn unknown_topic_ids_get_puback_invalid_topic_id_even_at_qos0() {
    let mut h = Harness::new(with_predefined());
    let a = peer(1);
    h.connect(&a, "mote-1", true, 60);
    h.recv(&a, publish(QoS::Zero, TopicRef::Normal(77), 0, b"x"));
    h.recv(&a, publish(QoS::One, TopicRef::Predefined(99), 5, b"x"));
    h.raw(&a, &[0x08, 0x0C, 0x23, 0x00, 0x07, 0x00, 0x09, b'x']); // TopicIdType 0b11
    h.expect(
        &a,
        &[
            Packet::Puback {
                topic_id: 77,
                msg_id: 0,
                return_code: ReturnCode::InvalidTopicId,
            },
            Packet::Puback {
                topic_id: 99,
                msg_id: 5,
                return_code: ReturnCode::InvalidTopicId,
            },
            Packet::Puback {
                topic_id: 7,
                msg_id: 9,
                return_code: ReturnCode::InvalidTopicId,
            },
        ],
    );
    assert!(published(&h.take_cmds()).is_empty());
}

#[test]
fn qos1_is_acknowledged_only_after_the_broker_and_duplicates_are_not_published_twice() {
    let mut h = Harness::new(with_predefined());
    let a = peer(1);
    h.connect(&a, "mote-1", true, 60);
    h.recv(&a, publish(QoS::One, TopicRef::Predefined(1), 7, b"on"));
    h.expect_silence();
    let p = published(&h.take_cmds());
    assert_eq!(p.len(), 1);
    let (link, token, ..) = p[0].clone();
    // The client retransmits before the broker answered: nothing new goes upstream.
    h.recv(
        &a,
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Predefined(1),
            msg_id: 7,
            data: b"on",
        }),
    );
    h.expect_silence();
    assert!(published(&h.take_cmds()).is_empty());
    h.upstream(UpstreamEvent::PublishDone { link, token });
    h.expect(
        &a,
        &[Packet::Puback {
            topic_id: 1,
            msg_id: 7,
            return_code: ReturnCode::Accepted,
        }],
    );
    // A retransmission after the PUBACK was lost gets the same PUBACK, not a second publish.
    h.recv(
        &a,
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::One,
            retain: false,
            topic: TopicRef::Predefined(1),
            msg_id: 7,
            data: b"on",
        }),
    );
    h.expect(
        &a,
        &[Packet::Puback {
            topic_id: 1,
            msg_id: 7,
            return_code: ReturnCode::Accepted,
        }],
    );
    assert!(published(&h.take_cmds()).is_empty());
}

#[test]
fn qos2_runs_the_full_handshake_on_both_legs_without_duplicates() {
    let mut h = Harness::new(with_predefined());
    let a = peer(1);
    h.connect(&a, "mote-1", true, 60);
    h.recv(&a, publish(QoS::Two, TopicRef::Predefined(2), 11, b"fire"));
    let p = published(&h.take_cmds());
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].4, 2);
    let (link, token, ..) = p[0].clone();
    h.expect_silence();
    h.upstream(UpstreamEvent::PublishReceived { link, token });
    h.expect(&a, &[Packet::Pubrec { msg_id: 11 }]);
    // DUP after PUBREC: PUBREC again, no second publish.
    h.recv(
        &a,
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::Two,
            retain: false,
            topic: TopicRef::Predefined(2),
            msg_id: 11,
            data: b"fire",
        }),
    );
    h.expect(&a, &[Packet::Pubrec { msg_id: 11 }]);
    assert!(published(&h.take_cmds()).is_empty());
    h.recv(&a, Packet::Pubrel { msg_id: 11 });
    h.expect_silence();
    h.upstream(UpstreamEvent::PublishDone { link, token });
    h.expect(&a, &[Packet::Pubcomp { msg_id: 11 }]);
    h.recv(&a, Packet::Pubrel { msg_id: 11 });
    h.expect(&a, &[Packet::Pubcomp { msg_id: 11 }]);
}

#[test]
fn publishes_are_kept_while_the_broker_is_away_and_resubmitted_when_it_lost_them() {
    let mut h = Harness::new(with_predefined());
    let a = peer(1);
    h.connect(&a, "mote-1", true, 60);
    h.recv(&a, publish(QoS::One, TopicRef::Predefined(1), 1, b"a"));
    let p = published(&h.take_cmds());
    let (link, token, ..) = p[0].clone();
    h.upstream(UpstreamEvent::LinkDown {
        link,
        reason: "broker restart".into(),
    });
    h.expect_silence();
    // The client keeps its session while the broker is away.
    h.recv(&a, Packet::Pingreq { client_id: None });
    h.expect(&a, &[Packet::Pingresp]);
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present: false,
        lost: vec![token],
    });
    let again = published(&h.take_cmds());
    assert_eq!(again.len(), 1, "the lost publish is submitted again");
    assert_eq!(again[0].1, token);
    h.upstream(UpstreamEvent::PublishDone { link, token });
    h.expect(
        &a,
        &[Packet::Puback {
            topic_id: 1,
            msg_id: 1,
            return_code: ReturnCode::Accepted,
        }],
    );
}

#[test]
fn a_full_uplink_buffer_answers_congestion() {
    let mut cfg = with_predefined();
    cfg.uplink_buffer = 2;
    let mut h = Harness::new(cfg);
    let a = peer(1);
    h.connect(&a, "mote-1", true, 60);
    for id in 1..=3 {
        h.recv(&a, publish(QoS::One, TopicRef::Predefined(1), id, b"x"));
    }
    h.expect(
        &a,
        &[Packet::Puback {
            topic_id: 1,
            msg_id: 3,
            return_code: ReturnCode::Congestion,
        }],
    );
    assert_eq!(published(&h.take_cmds()).len(), 2);
}

#[test]
fn qos_minus1_from_any_address_is_published_at_qos0_through_the_gateway_link() {
    let mut cfg = with_predefined();
    cfg.qos_minus1.long_topic_form = true;
    let mut h = Harness::new(cfg);
    let s = peer(42);
    h.recv(&s, publish(QoS::MinusOne, TopicRef::Predefined(1), 0, b"1"));
    h.recv(&s, publish(QoS::MinusOne, TopicRef::Short(*b"ab"), 0, b"x"));
    // Long-topic form: TopicIdType 0b00, TopicId = 5, data = "hello" + "test".
    h.raw(
        &s,
        &[
            0x10, 0x0C, 0x60, 0x00, 0x05, 0x00, 0x00, b'h', b'e', b'l', b'l', b'o', b't', b'e',
            b's', b't',
        ],
    );
    // Unknown predefined id and per-client-only id: dropped silently.
    h.recv(
        &s,
        publish(QoS::MinusOne, TopicRef::Predefined(3), 0, b"no"),
    );
    h.recv(
        &s,
        publish(QoS::MinusOne, TopicRef::Predefined(9), 0, b"no"),
    );
    h.expect_silence();
    let p = published(&h.take_cmds());
    let summary: Vec<_> = p
        .iter()
        .map(|(l, _, t, d, q, _)| (*l, t.as_str(), d.as_slice(), *q))
        .collect();
    assert_eq!(
        summary,
        vec![
            (LinkId::GATEWAY, "site/status", &b"1"[..], 0),
            (LinkId::GATEWAY, "ab", &b"x"[..], 0),
            (LinkId::GATEWAY, "hello", &b"test"[..], 0),
        ]
    );
}

#[test]
fn qos_minus1_can_be_disabled_or_restricted_to_listed_addresses() {
    let mut cfg = with_predefined();
    cfg.qos_minus1.allow = Some(vec![IpAddr::from([10, 0, 0, 1])]);
    let mut h = Harness::new(cfg);
    h.recv(
        &peer(1),
        publish(QoS::MinusOne, TopicRef::Predefined(1), 0, b"yes"),
    );
    h.recv(
        &peer(2),
        publish(QoS::MinusOne, TopicRef::Predefined(1), 0, b"no"),
    );
    assert_eq!(published(&h.take_cmds()).len(), 1);

    let mut cfg = with_predefined();
    cfg.qos_minus1.enabled = false;
    let mut h = Harness::new(cfg);
    h.recv(
        &peer(1),
        publish(QoS::MinusOne, TopicRef::Predefined(1), 0, b"no"),
    );
    assert!(published(&h.take_cmds()).is_empty());
    h.expect_silence();
}

#[test]
fn more_outstanding_requests_than_allowed_are_answered_with_congestion() {
    let mut cfg = with_predefined();
    cfg.max_inflight_from_client = 2;
    let mut h = Harness::new(cfg);
    let a = peer(1);
    h.connect(&a, "mote-1", true, 60);
    h.recv(&a, publish(QoS::One, TopicRef::Predefined(1), 1, b"x"));
    h.recv(
        &a,
        Packet::Subscribe(sn_codec::Subscribe {
            dup: false,
            qos: QoS::Zero,
            msg_id: 2,
            topic: TopicRef::Name(b"t"),
        }),
    );
    h.recv(&a, publish(QoS::Two, TopicRef::Predefined(1), 3, b"y"));
    h.recv(
        &a,
        Packet::Subscribe(sn_codec::Subscribe {
            dup: false,
            qos: QoS::Zero,
            msg_id: 4,
            topic: TopicRef::Name(b"u"),
        }),
    );
    h.expect(
        &a,
        &[
            Packet::Puback {
                topic_id: 1,
                msg_id: 3,
                return_code: ReturnCode::Congestion,
            },
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: 4,
                return_code: ReturnCode::Congestion,
            },
        ],
    );
    assert_eq!(published(&h.take_cmds()).len(), 1);
}

/// The long-form Length mistake of a widely used mote library: a QoS 1 PUBLISH on topic id
/// `topic_id`, MsgId `msg_id`, with a 248-octet payload, sent as 257 octets `01 00 FF 0C ...`.
fn paho_long_publish(topic_id: u16, msg_id: u16) -> Vec<u8> {
    let mut d = vec![0x01, 0x00, 0xFF, 0x0C, 0x20];
    d.extend(topic_id.to_be_bytes());
    d.extend(msg_id.to_be_bytes());
    d.extend((0..248).map(|i| i as u8));
    d
}

#[test]
fn a_248_octet_publish_in_the_off_by_two_long_form_is_published_whole_and_counted() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = h.connect(&a, "paho-mote", true, 60);
    h.recv(
        &a,
        Packet::Register(Register {
            topic_id: 0,
            msg_id: 1,
            topic_name: b"site/big",
        }),
    );
    h.clear();
    h.raw(&a, &paho_long_publish(1, 7));
    let sent = published(&h.take_cmds());
    assert_eq!(sent.len(), 1);
    let (l, token, topic, payload, qos, _) = &sent[0];
    assert_eq!((*l, topic.as_str(), *qos), (link, "site/big", 1));
    assert_eq!(payload.len(), 248, "every octet of the payload");
    assert_eq!(
        payload[..],
        (0..248).map(|i| i as u8).collect::<Vec<u8>>()[..]
    );
    h.upstream(UpstreamEvent::PublishDone {
        link,
        token: *token,
    });
    h.expect(
        &a,
        &[Packet::Puback {
            topic_id: 1,
            msg_id: 7,
            return_code: ReturnCode::Accepted,
        }],
    );
    assert_eq!(h.gw.stats().length_quirks, 1);
    assert!(h.gw.stats().dropped.is_empty(), "nothing dropped");
    // Reported once per session, counted every time.
    h.raw(&a, &paho_long_publish(1, 8));
    assert_eq!(h.gw.stats().length_quirks, 2);
    let reports = h
        .events
        .iter()
        .filter(|e| matches!(e, GatewayEvent::LengthQuirk { .. }))
        .count();
    assert_eq!(reports, 1);
}
