//! Connect, Will prompting, refusal, keep-alive, disconnect, takeover, unknown peers, bad input.

use crate::core::upstream::MqttQos;
use std::time::Duration;

use bytes::Bytes;
use sn_codec::{Packet, QoS, ReturnCode, WillTopic};

use super::harness::{Harness, connect, node, peer};
use crate::core::event::{DropReason, GatewayEvent, LostReason};
use crate::core::upstream::{BrokerRefusal, UpstreamCmd, UpstreamEvent, Will};

#[test]
fn connack_is_sent_only_after_the_broker_accepts_the_upstream_session() {
    let mut h = Harness::default();
    let a = peer(1);
    h.raw(&a, &connect("mote-1", false, true, 60));
    h.expect_silence();
    let cmds = h.take_cmds();
    let [
        UpstreamCmd::Open {
            link,
            client_id,
            clean_session: true,
            keep_alive,
            will: None,
            ..
        },
    ] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert_eq!(client_id, "mote-1");
    assert_eq!(
        *keep_alive,
        Duration::from_secs(60),
        "upstream keep-alive is the gateway's own"
    );
    h.upstream(UpstreamEvent::LinkUp {
        link: *link,
        session_present: false,
        lost: vec![],
    });
    h.expect(
        &a,
        &[Packet::Connack {
            return_code: ReturnCode::Accepted,
        }],
    );
    assert!(h.has_event(
        |e| matches!(e, GatewayEvent::ClientConnected { client_id, .. } if client_id == "mote-1")
    ));
}

#[test]
fn will_prompting_collects_topic_and_message_and_carries_them_upstream() {
    let mut cfg = crate::core::config::GatewayConfig::default();
    cfg.upstream.topic_prefix = "site/".into();
    cfg.upstream.client_id_prefix = "gw-".into();
    let mut h = Harness::new(cfg);
    let a = peer(1);
    h.raw(&a, &connect("mote-1", true, true, 30));
    h.expect(&a, &[Packet::WillTopicReq]);
    h.recv(
        &a,
        Packet::WillTopic(Some(WillTopic {
            qos: QoS::One,
            retain: true,
            topic: b"mote/1/status",
        })),
    );
    h.expect(&a, &[Packet::WillMsgReq]);
    assert!(
        h.take_cmds().is_empty(),
        "no upstream session before the Will is complete"
    );
    h.recv(&a, Packet::WillMsg { msg: b"offline" });
    let cmds = h.take_cmds();
    let [
        UpstreamCmd::Open {
            link,
            client_id,
            will: Some(will),
            ..
        },
    ] = &cmds[..]
    else {
        panic!("{cmds:?}")
    };
    assert_eq!(client_id, "gw-mote-1");
    assert_eq!(
        will,
        &Will {
            topic: "site/mote/1/status".into(),
            payload: Bytes::from_static(b"offline"),
            qos: MqttQos::AtLeastOnce,
            retain: true
        }
    );
    h.upstream(UpstreamEvent::LinkUp {
        link: *link,
        session_present: false,
        lost: vec![],
    });
    h.expect(
        &a,
        &[Packet::Connack {
            return_code: ReturnCode::Accepted,
        }],
    );
}

#[test]
fn an_empty_will_topic_skips_the_will_message_and_connects_without_will() {
    let mut h = Harness::default();
    let a = peer(1);
    h.raw(&a, &connect("mote-1", true, true, 30));
    h.expect(&a, &[Packet::WillTopicReq]);
    h.recv(&a, Packet::WillTopic(None));
    h.expect_silence();
    let cmds = h.take_cmds();
    assert!(
        matches!(&cmds[..], [UpstreamCmd::Open { will: None, .. }]),
        "{cmds:?}"
    );
}

#[test]
fn broker_refusal_and_unreachable_broker_give_meaningful_connack_codes() {
    let mut h = Harness::default();
    let (a, b) = (peer(1), peer(2));
    h.raw(&a, &connect("mote-1", false, true, 60));
    let link = h.opened_link();
    h.upstream(UpstreamEvent::Refused {
        link,
        refusal: BrokerRefusal::BadCredentials,
    });
    h.expect(
        &a,
        &[Packet::Connack {
            return_code: ReturnCode::NotSupported,
        }],
    );
    assert!(
        h.take_cmds()
            .iter()
            .any(|c| matches!(c, UpstreamCmd::Close { link: l, .. } if *l == link))
    );

    h.raw(&b, &connect("mote-2", false, true, 60));
    let link = h.opened_link();
    h.upstream(UpstreamEvent::LinkDown {
        link,
        reason: "connection refused".into(),
    });
    h.expect(
        &b,
        &[Packet::Connack {
            return_code: ReturnCode::Congestion,
        }],
    );
}

#[test]
fn bad_client_ids_are_refused_with_not_supported() {
    let mut h = Harness::default();
    let a = peer(1);
    for id in [&b""[..], &[b'x'; 24][..], &[0xff, 0xfe][..]] {
        let c = Packet::Connect(sn_codec::Connect {
            will: false,
            clean_session: true,
            duration: 10,
            client_id: id,
        });
        h.recv(&a, c);
        h.expect(
            &a,
            &[Packet::Connack {
                return_code: ReturnCode::NotSupported,
            }],
        );
    }
    assert!(h.take_cmds().is_empty());
}

#[test]
fn a_connect_with_a_wrong_protocol_id_gets_connack_not_supported() {
    let mut h = Harness::default();
    let a = peer(1);
    h.raw(&a, &[0x08, 0x04, 0x04, 0x02, 0x00, 0x3C, b'a', b'b']);
    h.expect(
        &a,
        &[Packet::Connack {
            return_code: ReturnCode::NotSupported,
        }],
    );
}

#[test]
fn the_client_limit_refuses_with_congestion() {
    let mut h = Harness::new(crate::core::config::GatewayConfig {
        max_clients: 1,
        ..Default::default()
    });
    h.connect(&peer(1), "mote-1", true, 60);
    h.raw(&peer(2), &connect("mote-2", false, true, 60));
    h.expect(
        &peer(2),
        &[Packet::Connack {
            return_code: ReturnCode::Congestion,
        }],
    );
}

#[test]
fn keep_alive_tolerance_edges_decide_when_a_silent_client_is_lost() {
    // Duration 60 s → supervision 90 s; 10 s → 15 s.
    for (keep_alive, survives, lost_at) in [(60u16, 89_999u64, 90_000u64), (10, 14_999, 15_000)] {
        // Keep-alive supervision alone (a silent unregistered client is otherwise dropped
        // after `unregistered_idle_timeout`, tested in `tests::exposure`).
        let mut cfg = crate::core::config::GatewayConfig::default();
        cfg.limits.unregistered_idle_timeout = None;
        let mut h = Harness::new(cfg);
        let a = peer(1);
        let link = h.connect(&a, "mote-1", true, keep_alive);
        h.advance(Duration::from_millis(survives));
        assert!(h.take_cmds().is_empty(), "still alive at {survives} ms");
        h.advance(Duration::from_millis(lost_at - survives));
        let cmds = h.take_cmds();
        assert_eq!(
            cmds,
            vec![UpstreamCmd::Close {
                link,
                graceful: false
            }],
            "dropped without DISCONNECT"
        );
        assert!(h.has_event(|e| matches!(
            e,
            GatewayEvent::ClientLost {
                reason: LostReason::KeepAliveExpired,
                ..
            }
        )));
    }
}

#[test]
fn any_message_restarts_the_keep_alive_timer_and_pingreq_gets_pingresp() {
    let mut h = Harness::default();
    let a = peer(1);
    h.connect(&a, "mote-1", true, 10);
    for _ in 0..5 {
        h.advance(Duration::from_secs(14));
        h.recv(&a, Packet::Pingreq { client_id: None });
        h.expect(&a, &[Packet::Pingresp]);
    }
    assert!(h.take_cmds().is_empty());
}

#[test]
fn disconnect_closes_the_upstream_session_gracefully_and_is_answered() {
    let mut h = Harness::default();
    let a = peer(1);
    let link = h.connect(&a, "mote-1", true, 60);
    h.recv(&a, Packet::Disconnect { duration: None });
    h.expect(&a, &[Packet::Disconnect { duration: None }]);
    assert_eq!(
        h.take_cmds(),
        vec![UpstreamCmd::Close {
            link,
            graceful: true
        }]
    );
    // The session is gone: the next message gets an unsolicited DISCONNECT.
    h.recv(&a, Packet::Pingreq { client_id: None });
    h.expect(&a, &[Packet::Disconnect { duration: None }]);
}

#[test]
fn a_second_connect_from_a_new_address_takes_the_session_over() {
    let mut h = Harness::default();
    let (a, b) = (peer(1), peer(2));
    let old = h.connect(&a, "mote-1", true, 60);
    h.raw(&b, &connect("mote-1", false, true, 60));
    let cmds = h.take_cmds();
    assert_eq!(
        cmds[0],
        UpstreamCmd::Close {
            link: old,
            graceful: true
        },
        "old binding dropped without Will"
    );
    let UpstreamCmd::Open { link, .. } = cmds[1] else {
        panic!("{cmds:?}")
    };
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present: false,
        lost: vec![],
    });
    h.expect(
        &b,
        &[Packet::Connack {
            return_code: ReturnCode::Accepted,
        }],
    );
    h.expect_silence();
    // The old address no longer has a session.
    h.recv(&a, Packet::Pingreq { client_id: None });
    h.expect(&a, &[Packet::Disconnect { duration: None }]);
}

#[test]
fn unknown_addresses_get_a_rate_limited_disconnect() {
    let mut h = Harness::default();
    let a = peer(9);
    h.recv(&a, Packet::Pingreq { client_id: None });
    h.expect(&a, &[Packet::Disconnect { duration: None }]);
    h.recv(&a, Packet::Pubrel { msg_id: 1 });
    h.expect_silence();
    h.advance(Duration::from_secs(10));
    h.recv(&a, Packet::Pubrel { msg_id: 1 });
    h.expect(&a, &[Packet::Disconnect { duration: None }]);
}

#[test]
fn malformed_datagrams_are_dropped_counted_and_never_disturb_other_clients() {
    let mut h = Harness::default();
    let (a, b) = (peer(1), peer(2));
    h.connect(&a, "mote-1", true, 60);
    for junk in [
        &[][..],
        &[0x00][..],
        &[0x05, 0x0C, 0x00][..],
        &[0x03, 0x03, 0x00][..],
        &[0x02, 0xFE][..],
    ] {
        h.raw(&b, junk);
    }
    h.expect_silence();
    let malformed = h
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                GatewayEvent::Dropped {
                    reason: DropReason::Malformed(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(malformed, 5);
    h.recv(&a, Packet::Pingreq { client_id: None });
    h.expect(&a, &[Packet::Pingresp]);
}

#[test]
fn oversized_datagrams_are_dropped() {
    let mut h = Harness::new(crate::core::config::GatewayConfig {
        max_packet_size: 64,
        ..Default::default()
    });
    h.raw(&peer(1), &[0u8; 65]);
    h.expect_silence();
    assert!(h.has_event(|e| matches!(
        e,
        GatewayEvent::Dropped {
            reason: DropReason::TooLarge,
            ..
        }
    )));
}

#[test]
fn will_topic_update_reopens_the_upstream_session_without_clean_session() {
    let mut h = Harness::default();
    let a = peer(1);
    let old = h.connect(&a, "mote-1", true, 60);
    h.recv(
        &a,
        Packet::WillTopicUpd(Some(WillTopic {
            qos: QoS::Zero,
            retain: false,
            topic: b"m/1/will",
        })),
    );
    h.expect(
        &a,
        &[Packet::WillTopicResp {
            return_code: ReturnCode::Accepted,
        }],
    );
    let cmds = h.take_cmds();
    assert_eq!(
        cmds[0],
        UpstreamCmd::Close {
            link: old,
            graceful: true
        }
    );
    let UpstreamCmd::Open {
        clean_session,
        will: Some(w),
        ..
    } = &cmds[1]
    else {
        panic!("{cmds:?}")
    };
    assert!(!clean_session, "subscriptions must survive");
    assert_eq!(w.topic, "m/1/will");
    h.recv(&a, Packet::WillMsgUpd { msg: b"bye" });
    h.expect(
        &a,
        &[Packet::WillMsgResp {
            return_code: ReturnCode::Accepted,
        }],
    );
    let cmds = h.take_cmds();
    let UpstreamCmd::Open { will: Some(w), .. } = &cmds[1] else {
        panic!("{cmds:?}")
    };
    assert_eq!(&w.payload[..], b"bye");
}

#[test]
fn a_node_behind_a_forwarder_gets_every_reply_encapsulated_with_its_wnid() {
    let mut h = Harness::default();
    let n = node(&[0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D]);
    h.connect(&n, "xbee-1", true, 60);
    h.recv(&n, Packet::Pingreq { client_id: None });
    h.expect(&n, &[Packet::Pingresp]);
    // A second node at the same forwarder is a different client.
    let m = node(&[0x01]);
    h.recv(&m, Packet::Pingreq { client_id: None });
    h.expect(&m, &[Packet::Disconnect { duration: None }]);
}

#[test]
fn the_spec_example_of_an_encapsulated_connect_is_understood() {
    let mut h = Harness::default();
    let forwarder = peer(7);
    let bytes = [
        0x0B, 0xFE, 0x00, 0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D, // header, WNID
        0x0D, 0x04, 0x04, 0x01, 0x00, 0x3C, b'm', b'o', b't', b'e', b'-', b'0',
        b'1', // CONNECT
    ];
    h.raw(&forwarder, &bytes);
    let link = h.opened_link();
    h.upstream(UpstreamEvent::LinkUp {
        link,
        session_present: false,
        lost: vec![],
    });
    assert_eq!(h.sent.len(), 1);
    assert_eq!(
        h.sent[0].1,
        vec![
            0x0B, 0xFE, 0x00, 0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D, 0x03, 0x05, 0x00
        ]
    );
}

#[test]
fn shutdown_closes_every_link_gracefully() {
    let mut h = Harness::default();
    let l1 = h.connect(&peer(1), "mote-1", true, 60);
    let l2 = h.connect(&peer(2), "mote-2", true, 60);
    h.gw.handle_shutdown(h.now);
    let mut cmds = vec![];
    while let Some(c) = h.gw.poll_upstream() {
        cmds.push(c);
    }
    for link in [l1, l2, crate::core::upstream::LinkId::GATEWAY] {
        assert!(
            cmds.contains(&UpstreamCmd::Close {
                link,
                graceful: true
            }),
            "{cmds:?}"
        );
    }
}

#[test]
fn a_graceful_shutdown_publishes_the_offline_status_before_disconnecting() {
    let mut h = Harness::default();
    h.gw.handle_shutdown(h.now);
    let mut cmds = vec![];
    while let Some(c) = h.gw.poll_upstream() {
        cmds.push(c);
    }
    let gateway = crate::core::upstream::LinkId::GATEWAY;
    let offline = cmds.iter().position(|c| {
        matches!(c, UpstreamCmd::Publish { link, topic, payload, retain: true, .. }
            if *link == gateway && topic == "gateway/1/status" && &payload[..] == b"offline")
    });
    let close = cmds.iter().position(|c| {
        *c == UpstreamCmd::Close {
            link: gateway,
            graceful: true,
        }
    });
    assert!(
        offline.is_some() && offline < close,
        "offline status then close: {cmds:?}"
    );
}

#[test]
fn a_repeated_clean_session_off_connect_of_an_active_mote_keeps_its_link_and_its_qos2_exchange() {
    // The mote's CONNACK was lost and it repeats its CONNECT while a QoS 2 message from the
    // broker is in flight to it: the session resumes as it is, with the same MsgId.
    let mut h = Harness::default();
    let a = peer(1);
    let link = h.connect(&a, "mote-1", false, 60);
    h.recv(
        &a,
        Packet::Subscribe(sn_codec::Subscribe {
            dup: false,
            qos: QoS::Two,
            msg_id: 1,
            topic: sn_codec::TopicRef::Short(*b"c1"),
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
    h.upstream(super::harness::message(link, 5, "c1", b"open", 2));
    h.clear_datagrams();
    h.take_cmds();
    h.raw(&a, &connect("mote-1", false, false, 60));
    assert!(
        h.take_cmds().is_empty(),
        "the upstream link is neither closed nor re-opened"
    );
    let sent = h.sent_to(&a);
    assert_eq!(
        Packet::decode(&sent[0]),
        Ok(Packet::Connack {
            return_code: ReturnCode::Accepted
        })
    );
    // The QoS 2 PUBLISH in flight goes again at once, with its MsgId and DUP set.
    let Ok(Packet::Publish(p)) = Packet::decode(&sent[1]) else {
        panic!(
            "expected the PUBLISH again, got {:?}",
            Packet::decode(&sent[1])
        )
    };
    assert!(p.dup);
    assert_eq!((p.qos, p.data), (QoS::Two, &b"open"[..]));
}
