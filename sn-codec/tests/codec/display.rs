//! The one-line `Display` of packets, as used in logs and transcripts.

use sn_codec::{
    Connect, Encapsulated, Packet, Publish, QoS, Register, ReturnCode, Subscribe, TopicRef,
    Unsubscribe, WillTopic,
};

fn publish(
    qos: QoS,
    topic: TopicRef<'static>,
    msg_id: u16,
    data: &'static [u8],
) -> Publish<'static> {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic,
        msg_id,
        data,
    }
}

#[test]
fn publish_shows_qos_topic_msg_id_retain_and_payload_length() {
    let p = Packet::Publish(publish(QoS::One, TopicRef::Normal(3), 7, b"hello world!"));
    assert_eq!(
        p.to_string(),
        "PUBLISH qos=1 tid=3(normal) mid=7 retain=0 len=12"
    );

    let p = Packet::Publish(Publish {
        dup: true,
        retain: true,
        ..publish(QoS::Two, TopicRef::Predefined(1), 9, b"")
    });
    assert_eq!(
        p.to_string(),
        "PUBLISH qos=2 tid=1(predefined) mid=9 retain=1 len=0 dup=1"
    );

    let p = Packet::Publish(publish(QoS::MinusOne, TopicRef::Short(*b"ab"), 0, b"x"));
    assert_eq!(
        p.to_string(),
        "PUBLISH qos=-1 topic=\"ab\"(short) mid=0 retain=0 len=1"
    );
}

#[test]
fn connect_shows_client_id_flags_and_keep_alive() {
    let p = Packet::Connect(Connect {
        will: true,
        clean_session: true,
        duration: 60,
        client_id: b"mote-01",
    });
    assert_eq!(
        p.to_string(),
        "CONNECT client_id=\"mote-01\" clean=1 will=1 keep_alive=60s"
    );
}

#[test]
fn text_fields_that_are_not_utf8_are_shown_in_hex() {
    let p = Packet::Connect(Connect {
        will: false,
        clean_session: false,
        duration: 0,
        client_id: &[0xFF, 0x00],
    });
    assert_eq!(
        p.to_string(),
        "CONNECT client_id=0xff00 clean=0 will=0 keep_alive=0s"
    );
    let p = Packet::GwInfo {
        gw_id: 7,
        gw_addr: &[0xC0, 0xA8, 0x01, 0x0A],
    };
    assert_eq!(p.to_string(), "GWINFO gw=7 addr=0xc0a8010a");
}

#[test]
fn control_characters_are_escaped_so_the_line_stays_one_line() {
    let p = Packet::Pingreq {
        client_id: Some(b"a\nb\"c"),
    };
    assert_eq!(p.to_string(), "PINGREQ client_id=\"a\\nb\\\"c\"");
}

#[test]
fn the_small_messages_show_their_fields() {
    let cases: &[(Packet<'static>, &str)] = &[
        (
            Packet::Advertise {
                gw_id: 7,
                duration: 900,
            },
            "ADVERTISE gw=7 duration=900s",
        ),
        (Packet::SearchGw { radius: 1 }, "SEARCHGW radius=1"),
        (
            Packet::GwInfo {
                gw_id: 7,
                gw_addr: b"",
            },
            "GWINFO gw=7",
        ),
        (
            Packet::Connack {
                return_code: ReturnCode::Accepted,
            },
            "CONNACK rc=accepted",
        ),
        (
            Packet::Connack {
                return_code: ReturnCode::Reserved(0x80),
            },
            "CONNACK rc=reserved-0x80",
        ),
        (Packet::WillTopicReq, "WILLTOPICREQ"),
        (Packet::WillTopic(None), "WILLTOPIC (empty)"),
        (
            Packet::WillTopic(Some(WillTopic {
                qos: QoS::One,
                retain: true,
                topic: b"mote/01/status",
            })),
            "WILLTOPIC qos=1 retain=1 topic=\"mote/01/status\"",
        ),
        (Packet::WillMsgReq, "WILLMSGREQ"),
        (Packet::WillMsg { msg: b"offline" }, "WILLMSG len=7"),
        (
            Packet::Register(Register {
                topic_id: 0,
                msg_id: 1,
                topic_name: b"sensors/t",
            }),
            "REGISTER tid=0 mid=1 topic=\"sensors/t\"",
        ),
        (
            Packet::Regack {
                topic_id: 5,
                msg_id: 1,
                return_code: ReturnCode::Accepted,
            },
            "REGACK tid=5 mid=1 rc=accepted",
        ),
        (
            Packet::Puback {
                topic_id: 5,
                msg_id: 2,
                return_code: ReturnCode::InvalidTopicId,
            },
            "PUBACK tid=5 mid=2 rc=invalid-topic-id",
        ),
        (Packet::Pubcomp { msg_id: 7 }, "PUBCOMP mid=7"),
        (Packet::Pubrec { msg_id: 7 }, "PUBREC mid=7"),
        (Packet::Pubrel { msg_id: 7 }, "PUBREL mid=7"),
        (
            Packet::Subscribe(Subscribe {
                dup: false,
                qos: QoS::One,
                msg_id: 3,
                topic: TopicRef::Name(b"cmd/#"),
            }),
            "SUBSCRIBE qos=1 topic=\"cmd/#\" mid=3",
        ),
        (
            Packet::Subscribe(Subscribe {
                dup: true,
                qos: QoS::Zero,
                msg_id: 4,
                topic: TopicRef::Predefined(2),
            }),
            "SUBSCRIBE qos=0 tid=2(predefined) mid=4 dup=1",
        ),
        (
            Packet::Suback {
                qos: QoS::One,
                topic_id: 0,
                msg_id: 3,
                return_code: ReturnCode::Accepted,
            },
            "SUBACK qos=1 tid=0 mid=3 rc=accepted",
        ),
        (
            Packet::Unsubscribe(Unsubscribe {
                msg_id: 8,
                topic: TopicRef::Short(*b"zz"),
            }),
            "UNSUBSCRIBE topic=\"zz\"(short) mid=8",
        ),
        (Packet::Unsuback { msg_id: 8 }, "UNSUBACK mid=8"),
        (Packet::Pingreq { client_id: None }, "PINGREQ"),
        (
            Packet::Pingreq {
                client_id: Some(b"mote-01"),
            },
            "PINGREQ client_id=\"mote-01\"",
        ),
        (Packet::Pingresp, "PINGRESP"),
        (Packet::Disconnect { duration: None }, "DISCONNECT"),
        (
            Packet::Disconnect {
                duration: Some(300),
            },
            "DISCONNECT duration=300s",
        ),
        (Packet::WillTopicUpd(None), "WILLTOPICUPD (empty)"),
        (
            Packet::WillTopicUpd(Some(WillTopic {
                qos: QoS::Zero,
                retain: false,
                topic: b"lwt",
            })),
            "WILLTOPICUPD qos=0 retain=0 topic=\"lwt\"",
        ),
        (
            Packet::WillTopicResp {
                return_code: ReturnCode::Congestion,
            },
            "WILLTOPICRESP rc=congestion",
        ),
        (Packet::WillMsgUpd { msg: b"bye" }, "WILLMSGUPD len=3"),
        (
            Packet::WillMsgResp {
                return_code: ReturnCode::NotSupported,
            },
            "WILLMSGRESP rc=not-supported",
        ),
    ];
    for (packet, text) in cases {
        assert_eq!(packet.to_string(), *text);
    }
}

#[test]
fn encapsulated_shows_the_node_radius_and_the_inner_message() {
    let bytes = [
        0x0B, 0xFE, 0x00, 0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D, 0x0D, 0x04, 0x04, 0x01,
        0x00, 0x3C, b'm', b'o', b't', b'e', b'-', b'0', b'1',
    ];
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(
        p.to_string(),
        "ENCAPSULATED wnid=0013a200415b6c2d radius=0 \
         [CONNECT client_id=\"mote-01\" clean=1 will=0 keep_alive=60s]"
    );
    let broadcast = Packet::Encapsulated(Encapsulated {
        radius: 2,
        wnid: &[],
        inner: &[0x03, 0x01, 0x02],
    });
    assert_eq!(
        broadcast.to_string(),
        "ENCAPSULATED wnid= radius=2 [SEARCHGW radius=2]"
    );
    let bad = Packet::Encapsulated(Encapsulated {
        radius: 0,
        wnid: &[0x01],
        inner: &[0x03, 0x05],
    });
    assert_eq!(
        bad.to_string(),
        "ENCAPSULATED wnid=01 radius=0 [malformed: truncated: needs 3 octets, got 2]"
    );
}
