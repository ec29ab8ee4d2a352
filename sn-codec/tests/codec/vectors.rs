//! Hand-checked byte vectors for every MQTT-SN v1.2 message, written from the message formats
//! of the MQTT-SN v1.2 specification (chapter 5).
//!
//! Every vector is written field by field with a comment saying what the octets mean. For each
//! one the test asserts `decode(bytes) == expected` and `expected.encode() == bytes`. The few
//! vectors that are legal on the wire but not what our encoder emits (a long Length form on a
//! message of 255 octets or less, unused Flags bits or reserved Ctrl bits set) state the bytes
//! the encoder produces instead, and the test checks that those differ and decode the same.

use std::collections::BTreeSet;

use sn_codec::{
    Connect, DecodeError, Encapsulated, MsgType, Packet, Publish, QoS, Register, ReturnCode,
    Subscribe, TopicRef, Unsubscribe, WillTopic, encode_encapsulated,
};

/// One golden vector.
struct Vector {
    /// What the vector shows.
    name: &'static str,
    /// The datagram, exactly as on the wire.
    bytes: Vec<u8>,
    /// What it decodes to.
    packet: Packet<'static>,
    /// `Some` when our encoder writes different (shorter) octets for the same packet.
    reencoded: Option<Vec<u8>>,
}

/// Joins the annotated fields of a vector into one datagram.
fn cat(fields: &[&[u8]]) -> Vec<u8> {
    fields.concat()
}

fn v(name: &'static str, fields: &[&[u8]], packet: Packet<'static>) -> Vector {
    Vector {
        name,
        bytes: cat(fields),
        packet,
        reencoded: None,
    }
}

/// A vector that decodes to `packet` but that our encoder writes as `reencoded`.
fn v_normalised(
    name: &'static str,
    fields: &[&[u8]],
    packet: Packet<'static>,
    reencoded: &[&[u8]],
) -> Vector {
    Vector {
        name,
        bytes: cat(fields),
        packet,
        reencoded: Some(cat(reencoded)),
    }
}

/// A payload of `N` octets, 'static so packets can borrow it.
const P248: &[u8; 248] = &[0xA5; 248];
const P247: &[u8; 247] = &[0xA5; 247];
const P249: &[u8; 249] = &[0xA5; 249];
const P300: &[u8; 300] = &[0x5A; 300];
const N249: &[u8; 249] = &[b'n'; 249];
const N250: &[u8; 250] = &[b'n'; 250];
const M253: &[u8; 253] = &[0x3C; 253];
const M254: &[u8; 254] = &[0x3C; 254];

const MOTE_01: &[u8] = b"mote-01";
const XBEE_WNID: &[u8] = &[0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];

#[allow(clippy::too_many_lines)]
fn vectors() -> Vec<Vector> {
    vec![
        // ---------------------------------------------------------------- discovery
        v(
            "ADVERTISE GwId 7, Duration 900 s",
            &[
                &[0x05],       // Length: 5 octets in total (short form)
                &[0x00],       // MsgType: ADVERTISE
                &[0x07],       // GwId: 7
                &[0x03, 0x84], // Duration: 0x0384 = 900 s
            ],
            Packet::Advertise {
                gw_id: 7,
                duration: 900,
            },
        ),
        v(
            "ADVERTISE GwId 255, Duration 65535 s (largest fields)",
            &[
                &[0x05],       // Length: 5
                &[0x00],       // MsgType: ADVERTISE
                &[0xFF],       // GwId: 255
                &[0xFF, 0xFF], // Duration: 65535 s
            ],
            Packet::Advertise {
                gw_id: 255,
                duration: 65535,
            },
        ),
        v(
            "SEARCHGW radius 1",
            &[
                &[0x03], // Length: 3
                &[0x01], // MsgType: SEARCHGW
                &[0x01], // Radius: 1 hop
            ],
            Packet::SearchGw { radius: 1 },
        ),
        v(
            "SEARCHGW radius 0 (whole network)",
            &[
                &[0x03], // Length: 3
                &[0x01], // MsgType: SEARCHGW
                &[0x00], // Radius: 0 = whole network
            ],
            Packet::SearchGw { radius: 0 },
        ),
        v(
            "GWINFO from the GW, no GwAdd",
            &[
                &[0x03], // Length: 3
                &[0x02], // MsgType: GWINFO
                &[0x07], // GwId: 7 (no GwAdd: the gateway itself answers)
            ],
            Packet::GwInfo {
                gw_id: 7,
                gw_addr: &[],
            },
        ),
        v(
            "GWINFO from a client, with a 4-octet GwAdd",
            &[
                &[0x07],                   // Length: 7 = 3 + 4
                &[0x02],                   // MsgType: GWINFO
                &[0x07],                   // GwId: 7
                &[0xC0, 0xA8, 0x01, 0x0A], // GwAdd: 192.168.1.10, opaque to the codec
            ],
            Packet::GwInfo {
                gw_id: 7,
                gw_addr: &[0xC0, 0xA8, 0x01, 0x0A],
            },
        ),
        // ---------------------------------------------------------------- connection
        v(
            "CONNECT clean, no Will, keep-alive 60 s, \"mote-01\"",
            &[
                &[0x0D],       // Length: 13 = 6 + 7
                &[0x04],       // MsgType: CONNECT
                &[0x04],       // Flags: CleanSession (bit 2)
                &[0x01],       // ProtocolId: 0x01 (v1.2)
                &[0x00, 0x3C], // Duration: 60 s
                b"mote-01",    // ClientId: 6D 6F 74 65 2D 30 31
            ],
            Packet::Connect(Connect {
                will: false,
                clean_session: true,
                duration: 60,
                client_id: MOTE_01,
            }),
        ),
        v(
            "CONNECT clean + Will",
            &[
                &[0x0D],       // Length: 13
                &[0x04],       // MsgType: CONNECT
                &[0x0C],       // Flags: Will (bit 3) + CleanSession (bit 2)
                &[0x01],       // ProtocolId: 0x01
                &[0x00, 0x3C], // Duration: 60 s
                b"mote-01",    // ClientId
            ],
            Packet::Connect(Connect {
                will: true,
                clean_session: true,
                duration: 60,
                client_id: MOTE_01,
            }),
        ),
        v(
            "CONNECT persistent session, keep-alive 0, empty ClientId (the codec accepts it)",
            &[
                &[0x06],       // Length: 6, no ClientId octets
                &[0x04],       // MsgType: CONNECT
                &[0x00],       // Flags: none (CleanSession = 0, Will = 0)
                &[0x01],       // ProtocolId: 0x01
                &[0x00, 0x00], // Duration: 0 = no supervision
            ],
            Packet::Connect(Connect {
                will: false,
                clean_session: false,
                duration: 0,
                client_id: b"",
            }),
        ),
        v_normalised(
            "CONNECT with unused flag bits set: ignored on decode, sent as 0",
            &[
                &[0x07],       // Length: 7
                &[0x04],       // MsgType: CONNECT
                &[0xF3], // Flags: DUP, QoS -1, Retain, TopicIdType 0b11 (all unused) + no Will/Clean
                &[0x01], // ProtocolId: 0x01
                &[0xFF, 0xFF], // Duration: 65535 s
                b"x",    // ClientId: "x"
            ],
            Packet::Connect(Connect {
                will: false,
                clean_session: false,
                duration: 65535,
                client_id: b"x",
            }),
            &[&[0x07, 0x04], &[0x00], &[0x01, 0xFF, 0xFF], b"x"],
        ),
        v(
            "CONNACK accepted",
            &[
                &[0x03], // Length: 3
                &[0x05], // MsgType: CONNACK
                &[0x00], // ReturnCode: accepted
            ],
            Packet::Connack {
                return_code: ReturnCode::Accepted,
            },
        ),
        v(
            "CONNACK rejected: congestion",
            &[
                &[0x03], // Length: 3
                &[0x05], // MsgType: CONNACK
                &[0x01], // ReturnCode: congestion
            ],
            Packet::Connack {
                return_code: ReturnCode::Congestion,
            },
        ),
        v(
            "CONNACK rejected: not supported",
            &[
                &[0x03], // Length: 3
                &[0x05], // MsgType: CONNACK
                &[0x03], // ReturnCode: not supported
            ],
            Packet::Connack {
                return_code: ReturnCode::NotSupported,
            },
        ),
        v(
            "CONNACK with a reserved return code (kept, not rejected)",
            &[
                &[0x03], // Length: 3
                &[0x05], // MsgType: CONNACK
                &[0x80], // ReturnCode: 0x80, reserved in v1.2
            ],
            Packet::Connack {
                return_code: ReturnCode::Reserved(0x80),
            },
        ),
        v(
            "WILLTOPICREQ",
            &[
                &[0x02], // Length: 2, no variable part
                &[0x06], // MsgType: WILLTOPICREQ
            ],
            Packet::WillTopicReq,
        ),
        v(
            "WILLTOPIC QoS 1, retain, \"mote/01/status\"",
            &[
                &[0x11],           // Length: 17 = 3 + 14
                &[0x07],           // MsgType: WILLTOPIC
                &[0x30],           // Flags: QoS 1 (bits 6-5 = 01) + Retain (bit 4)
                b"mote/01/status", // WillTopic
            ],
            Packet::WillTopic(Some(WillTopic {
                qos: QoS::One,
                retain: true,
                topic: b"mote/01/status",
            })),
        ),
        v(
            "WILLTOPIC empty form: deletes the Will",
            &[
                &[0x02], // Length: 2, no Flags and no topic
                &[0x07], // MsgType: WILLTOPIC
            ],
            Packet::WillTopic(None),
        ),
        v(
            "WILLTOPIC with Flags but an empty topic (not the empty form)",
            &[
                &[0x03], // Length: 3: a Flags octet and nothing else
                &[0x07], // MsgType: WILLTOPIC
                &[0x40], // Flags: QoS 2, no retain
            ],
            Packet::WillTopic(Some(WillTopic {
                qos: QoS::Two,
                retain: false,
                topic: b"",
            })),
        ),
        v(
            "WILLMSGREQ",
            &[
                &[0x02], // Length: 2
                &[0x08], // MsgType: WILLMSGREQ
            ],
            Packet::WillMsgReq,
        ),
        v(
            "WILLMSG \"offline\"",
            &[
                &[0x09],    // Length: 9 = 2 + 7
                &[0x09],    // MsgType: WILLMSG
                b"offline", // WillMsg: 6F 66 66 6C 69 6E 65
            ],
            Packet::WillMsg { msg: b"offline" },
        ),
        v(
            "WILLMSG empty",
            &[
                &[0x02], // Length: 2
                &[0x09], // MsgType: WILLMSG, empty message
            ],
            Packet::WillMsg { msg: b"" },
        ),
        // ---------------------------------------------------------------- registration
        v(
            "REGISTER \"sensors/t\" from a client, MsgId 1",
            &[
                &[0x0F],       // Length: 15 = 6 + 9
                &[0x0A],       // MsgType: REGISTER
                &[0x00, 0x00], // TopicId: 0x0000 (a client does not know it yet)
                &[0x00, 0x01], // MsgId: 1
                b"sensors/t",  // TopicName
            ],
            Packet::Register(Register {
                topic_id: 0,
                msg_id: 1,
                topic_name: b"sensors/t",
            }),
        ),
        v(
            "REGISTER id 6 \"cmd/led\" from the GW",
            &[
                &[0x0D],       // Length: 13 = 6 + 7
                &[0x0A],       // MsgType: REGISTER
                &[0x00, 0x06], // TopicId: 6
                &[0x00, 0x01], // MsgId: 1
                b"cmd/led",    // TopicName
            ],
            Packet::Register(Register {
                topic_id: 6,
                msg_id: 1,
                topic_name: b"cmd/led",
            }),
        ),
        v(
            "REGACK id 5, MsgId 1, accepted",
            &[
                &[0x07],       // Length: 7
                &[0x0B],       // MsgType: REGACK
                &[0x00, 0x05], // TopicId: 5
                &[0x00, 0x01], // MsgId: 1
                &[0x00],       // ReturnCode: accepted
            ],
            Packet::Regack {
                topic_id: 5,
                msg_id: 1,
                return_code: ReturnCode::Accepted,
            },
        ),
        v(
            "REGACK rejected: not supported (invalid name)",
            &[
                &[0x07],       // Length: 7
                &[0x0B],       // MsgType: REGACK
                &[0x00, 0x00], // TopicId: 0, none assigned
                &[0x12, 0x34], // MsgId: 0x1234
                &[0x03],       // ReturnCode: not supported
            ],
            Packet::Regack {
                topic_id: 0,
                msg_id: 0x1234,
                return_code: ReturnCode::NotSupported,
            },
        ),
        // ---------------------------------------------------------------- publish
        v(
            "PUBLISH QoS 1, id 5, MsgId 2, \"21.5\"",
            &[
                &[0x0B],       // Length: 11 = 7 + 4
                &[0x0C],       // MsgType: PUBLISH
                &[0x20],       // Flags: QoS 1, TopicIdType 0b00 normal
                &[0x00, 0x05], // TopicId: 5
                &[0x00, 0x02], // MsgId: 2
                b"21.5",       // Data: 32 31 2E 35
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::One,
                retain: false,
                topic: TopicRef::Normal(5),
                msg_id: 2,
                data: b"21.5",
            }),
        ),
        v(
            "GW PUBLISH QoS 1, id 6, MsgId 2, \"on\"",
            &[
                &[0x09],       // Length: 9
                &[0x0C],       // MsgType: PUBLISH
                &[0x20],       // Flags: QoS 1, normal id
                &[0x00, 0x06], // TopicId: 6
                &[0x00, 0x02], // MsgId: 2
                b"on",         // Data
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::One,
                retain: false,
                topic: TopicRef::Normal(6),
                msg_id: 2,
                data: b"on",
            }),
        ),
        v(
            "PUBLISH QoS -1, short name \"ab\", data \"x\"",
            &[
                &[0x08],       // Length: 8
                &[0x0C],       // MsgType: PUBLISH
                &[0x62],       // Flags: QoS -1 (0b11), TopicIdType 0b10 short name
                b"ab",         // TopicId: the short name itself, 61 62
                &[0x00, 0x00], // MsgId: 0 at QoS -1
                b"x",          // Data
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::MinusOne,
                retain: false,
                topic: TopicRef::Short(*b"ab"),
                msg_id: 0,
                data: b"x",
            }),
        ),
        v(
            "PUBLISH QoS -1, predefined id 1, data \"1\"",
            &[
                &[0x08],       // Length: 8
                &[0x0C],       // MsgType: PUBLISH
                &[0x61],       // Flags: QoS -1, TopicIdType 0b01 predefined
                &[0x00, 0x01], // TopicId: predefined 1
                &[0x00, 0x00], // MsgId: 0
                b"1",          // Data
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::MinusOne,
                retain: false,
                topic: TopicRef::Predefined(1),
                msg_id: 0,
                data: b"1",
            }),
        ),
        v(
            "PUBLISH QoS -1 non-standard \"long topic\" form: the codec sees a normal id",
            &[
                &[0x10],       // Length: 16
                &[0x0C],       // MsgType: PUBLISH
                &[0x60],       // Flags: QoS -1, TopicIdType 0b00
                &[0x00, 0x05], // TopicId: 5 (= length of the topic name in this form)
                &[0x00, 0x00], // MsgId: 0
                b"hello",      // Data: topic name "hello" ...
                b"test",       // ... followed by the payload "test"
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::MinusOne,
                retain: false,
                topic: TopicRef::Normal(5),
                msg_id: 0,
                data: b"hellotest",
            }),
        ),
        v(
            "PUBLISH QoS 2, DUP, retain, predefined id 0xFFFE, MsgId 0xFFFF",
            &[
                &[0x09],       // Length: 9
                &[0x0C],       // MsgType: PUBLISH
                &[0xD1],       // Flags: DUP (bit 7) + QoS 2 (10) + Retain (bit 4) + predefined (01)
                &[0xFF, 0xFE], // TopicId: 0xFFFE
                &[0xFF, 0xFF], // MsgId: 0xFFFF
                &[0x00, 0xFF], // Data: two binary octets
            ],
            Packet::Publish(Publish {
                dup: true,
                qos: QoS::Two,
                retain: true,
                topic: TopicRef::Predefined(0xFFFE),
                msg_id: 0xFFFF,
                data: &[0x00, 0xFF],
            }),
        ),
        v(
            "PUBLISH QoS 0, normal id 1, empty payload (shortest PUBLISH)",
            &[
                &[0x07],       // Length: 7, no Data
                &[0x0C],       // MsgType: PUBLISH
                &[0x00],       // Flags: QoS 0, normal id
                &[0x00, 0x01], // TopicId: 1
                &[0x00, 0x00], // MsgId: 0
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::Zero,
                retain: false,
                topic: TopicRef::Normal(1),
                msg_id: 0,
                data: b"",
            }),
        ),
        v(
            "PUBACK id 5, MsgId 2, accepted",
            &[
                &[0x07],       // Length: 7
                &[0x0D],       // MsgType: PUBACK
                &[0x00, 0x05], // TopicId: 5
                &[0x00, 0x02], // MsgId: 2
                &[0x00],       // ReturnCode: accepted
            ],
            Packet::Puback {
                topic_id: 5,
                msg_id: 2,
                return_code: ReturnCode::Accepted,
            },
        ),
        v(
            "PUBACK rejected: invalid topic id",
            &[
                &[0x07],       // Length: 7
                &[0x0D],       // MsgType: PUBACK
                &[0x00, 0x09], // TopicId: 9
                &[0x00, 0x0A], // MsgId: 10
                &[0x02],       // ReturnCode: invalid topic id
            ],
            Packet::Puback {
                topic_id: 9,
                msg_id: 10,
                return_code: ReturnCode::InvalidTopicId,
            },
        ),
        v(
            "PUBCOMP MsgId 7",
            &[
                &[0x04],       // Length: 4
                &[0x0E],       // MsgType: PUBCOMP (comes before PUBREC!)
                &[0x00, 0x07], // MsgId: 7
            ],
            Packet::Pubcomp { msg_id: 7 },
        ),
        v(
            "PUBREC MsgId 7",
            &[
                &[0x04],       // Length: 4
                &[0x0F],       // MsgType: PUBREC
                &[0x00, 0x07], // MsgId: 7
            ],
            Packet::Pubrec { msg_id: 7 },
        ),
        v(
            "PUBREL MsgId 0x0102",
            &[
                &[0x04],       // Length: 4
                &[0x10],       // MsgType: PUBREL
                &[0x01, 0x02], // MsgId: 0x0102 = 258 (big-endian)
            ],
            Packet::Pubrel { msg_id: 0x0102 },
        ),
        // ---------------------------------------------------------------- subscriptions
        v(
            "SUBSCRIBE QoS 1 \"cmd/#\", MsgId 3",
            &[
                &[0x0A],       // Length: 10 = 5 + 5
                &[0x12],       // MsgType: SUBSCRIBE
                &[0x20],       // Flags: QoS 1, TopicIdType 0b00 = topic name follows
                &[0x00, 0x03], // MsgId: 3
                b"cmd/#",      // TopicName (filter): 63 6D 64 2F 23
            ],
            Packet::Subscribe(Subscribe {
                dup: false,
                qos: QoS::One,
                msg_id: 3,
                topic: TopicRef::Name(b"cmd/#"),
            }),
        ),
        v(
            "SUBSCRIBE QoS 0 by predefined id 0x0102, MsgId 4",
            &[
                &[0x07],       // Length: 7
                &[0x12],       // MsgType: SUBSCRIBE
                &[0x01],       // Flags: QoS 0, TopicIdType 0b01 predefined
                &[0x00, 0x04], // MsgId: 4
                &[0x01, 0x02], // TopicId: predefined 0x0102
            ],
            Packet::Subscribe(Subscribe {
                dup: false,
                qos: QoS::Zero,
                msg_id: 4,
                topic: TopicRef::Predefined(0x0102),
            }),
        ),
        v(
            "SUBSCRIBE DUP, QoS 2, short name \"ab\", MsgId 5",
            &[
                &[0x07],       // Length: 7
                &[0x12],       // MsgType: SUBSCRIBE
                &[0xC2],       // Flags: DUP + QoS 2 + TopicIdType 0b10 short name
                &[0x00, 0x05], // MsgId: 5
                b"ab",         // TopicId: short name "ab"
            ],
            Packet::Subscribe(Subscribe {
                dup: true,
                qos: QoS::Two,
                msg_id: 5,
                topic: TopicRef::Short(*b"ab"),
            }),
        ),
        v(
            "SUBSCRIBE with a 2-octet name (TopicIdType 0b00 means name, even for 2 octets)",
            &[
                &[0x07],       // Length: 7
                &[0x12],       // MsgType: SUBSCRIBE
                &[0x00],       // Flags: QoS 0, topic name
                &[0x00, 0x06], // MsgId: 6
                b"ab",         // TopicName "ab"
            ],
            Packet::Subscribe(Subscribe {
                dup: false,
                qos: QoS::Zero,
                msg_id: 6,
                topic: TopicRef::Name(b"ab"),
            }),
        ),
        v(
            "SUBACK granted QoS 1, TopicId 0, MsgId 3, accepted",
            &[
                &[0x08],       // Length: 8
                &[0x13],       // MsgType: SUBACK
                &[0x20],       // Flags: granted QoS 1
                &[0x00, 0x00], // TopicId: 0 (wildcard filter)
                &[0x00, 0x03], // MsgId: 3
                &[0x00],       // ReturnCode: accepted
            ],
            Packet::Suback {
                qos: QoS::One,
                topic_id: 0,
                msg_id: 3,
                return_code: ReturnCode::Accepted,
            },
        ),
        v(
            "SUBACK rejected: invalid topic id",
            &[
                &[0x08],       // Length: 8
                &[0x13],       // MsgType: SUBACK
                &[0x00],       // Flags: QoS 0
                &[0x00, 0x00], // TopicId: 0
                &[0x00, 0x04], // MsgId: 4
                &[0x02],       // ReturnCode: invalid topic id
            ],
            Packet::Suback {
                qos: QoS::Zero,
                topic_id: 0,
                msg_id: 4,
                return_code: ReturnCode::InvalidTopicId,
            },
        ),
        v(
            "UNSUBSCRIBE by name \"cmd/#\", MsgId 8",
            &[
                &[0x0A],       // Length: 10
                &[0x14],       // MsgType: UNSUBSCRIBE
                &[0x00],       // Flags: TopicIdType 0b00 topic name
                &[0x00, 0x08], // MsgId: 8
                b"cmd/#",      // TopicName
            ],
            Packet::Unsubscribe(Unsubscribe {
                msg_id: 8,
                topic: TopicRef::Name(b"cmd/#"),
            }),
        ),
        v(
            "UNSUBSCRIBE by predefined id 1, MsgId 9",
            &[
                &[0x07],       // Length: 7
                &[0x14],       // MsgType: UNSUBSCRIBE
                &[0x01],       // Flags: TopicIdType 0b01 predefined
                &[0x00, 0x09], // MsgId: 9
                &[0x00, 0x01], // TopicId: 1
            ],
            Packet::Unsubscribe(Unsubscribe {
                msg_id: 9,
                topic: TopicRef::Predefined(1),
            }),
        ),
        v(
            "UNSUBSCRIBE by short name \"zz\", MsgId 10",
            &[
                &[0x07],       // Length: 7
                &[0x14],       // MsgType: UNSUBSCRIBE
                &[0x02],       // Flags: TopicIdType 0b10 short name
                &[0x00, 0x0A], // MsgId: 10
                b"zz",         // TopicId: short name "zz"
            ],
            Packet::Unsubscribe(Unsubscribe {
                msg_id: 10,
                topic: TopicRef::Short(*b"zz"),
            }),
        ),
        v(
            "UNSUBSCRIBE with a 2-octet name and TopicIdType 0b00 is a name, never an id",
            &[
                &[0x07],       // Length: 7
                &[0x14],       // MsgType: UNSUBSCRIBE
                &[0x00],       // Flags: topic name
                &[0x00, 0x0B], // MsgId: 11
                &[0x00, 0x05], // TopicName: the two octets 00 05, not "id 5"
            ],
            Packet::Unsubscribe(Unsubscribe {
                msg_id: 11,
                topic: TopicRef::Name(&[0x00, 0x05]),
            }),
        ),
        v(
            "UNSUBACK MsgId 8",
            &[
                &[0x04],       // Length: 4
                &[0x15],       // MsgType: UNSUBACK
                &[0x00, 0x08], // MsgId: 8
            ],
            Packet::Unsuback { msg_id: 8 },
        ),
        // ---------------------------------------------------------------- keep-alive and sleep
        v(
            "PINGREQ keep-alive, no ClientId",
            &[
                &[0x02], // Length: 2
                &[0x16], // MsgType: PINGREQ
            ],
            Packet::Pingreq { client_id: None },
        ),
        v(
            "PINGREQ on wake-up with ClientId \"mote-01\"",
            &[
                &[0x09],    // Length: 9 = 2 + 7
                &[0x16],    // MsgType: PINGREQ
                b"mote-01", // ClientId
            ],
            Packet::Pingreq {
                client_id: Some(MOTE_01),
            },
        ),
        v(
            "PINGRESP",
            &[
                &[0x02], // Length: 2
                &[0x17], // MsgType: PINGRESP
            ],
            Packet::Pingresp,
        ),
        v(
            "DISCONNECT without Duration",
            &[
                &[0x02], // Length: 2
                &[0x18], // MsgType: DISCONNECT
            ],
            Packet::Disconnect { duration: None },
        ),
        v(
            "DISCONNECT, sleep 300 s",
            &[
                &[0x04],       // Length: 4
                &[0x18],       // MsgType: DISCONNECT
                &[0x01, 0x2C], // Duration: 300 s
            ],
            Packet::Disconnect {
                duration: Some(300),
            },
        ),
        v(
            "DISCONNECT with Duration 0 (still carries the field)",
            &[
                &[0x04],       // Length: 4
                &[0x18],       // MsgType: DISCONNECT
                &[0x00, 0x00], // Duration: 0
            ],
            Packet::Disconnect { duration: Some(0) },
        ),
        // ---------------------------------------------------------------- will updates
        v(
            "WILLTOPICUPD QoS 0, \"lwt\"",
            &[
                &[0x06], // Length: 6 = 3 + 3
                &[0x1A], // MsgType: WILLTOPICUPD
                &[0x00], // Flags: QoS 0, no retain
                b"lwt",  // WillTopic
            ],
            Packet::WillTopicUpd(Some(WillTopic {
                qos: QoS::Zero,
                retain: false,
                topic: b"lwt",
            })),
        ),
        v(
            "WILLTOPICUPD QoS 2, retain, \"m/1\"",
            &[
                &[0x06], // Length: 6
                &[0x1A], // MsgType: WILLTOPICUPD
                &[0x50], // Flags: QoS 2 (bits 6-5 = 10) + Retain (bit 4)
                b"m/1",  // WillTopic
            ],
            Packet::WillTopicUpd(Some(WillTopic {
                qos: QoS::Two,
                retain: true,
                topic: b"m/1",
            })),
        ),
        v(
            "WILLTOPICUPD empty form: deletes the Will",
            &[
                &[0x02], // Length: 2
                &[0x1A], // MsgType: WILLTOPICUPD
            ],
            Packet::WillTopicUpd(None),
        ),
        v(
            "WILLTOPICRESP accepted",
            &[
                &[0x03], // Length: 3
                &[0x1B], // MsgType: WILLTOPICRESP
                &[0x00], // ReturnCode: accepted
            ],
            Packet::WillTopicResp {
                return_code: ReturnCode::Accepted,
            },
        ),
        v(
            "WILLMSGUPD \"bye\"",
            &[
                &[0x05], // Length: 5
                &[0x1C], // MsgType: WILLMSGUPD
                b"bye",  // WillMsg
            ],
            Packet::WillMsgUpd { msg: b"bye" },
        ),
        v(
            "WILLMSGRESP rejected: congestion",
            &[
                &[0x03], // Length: 3
                &[0x1D], // MsgType: WILLMSGRESP
                &[0x01], // ReturnCode: congestion
            ],
            Packet::WillMsgResp {
                return_code: ReturnCode::Congestion,
            },
        ),
        // ---------------------------------------------------------------- length forms
        v_normalised(
            "long form on a short message: CONNACK",
            &[
                &[0x01],       // Length: 0x01 = long form follows
                &[0x00, 0x05], // Length: total 5 octets (3 length + MsgType + ReturnCode)
                &[0x05],       // MsgType: CONNACK
                &[0x00],       // ReturnCode: accepted
            ],
            Packet::Connack {
                return_code: ReturnCode::Accepted,
            },
            &[&[0x03], &[0x05], &[0x00]], // our encoder: short form, Length 3
        ),
        v_normalised(
            "long form with no variable part: PINGREQ, total 4 (the long-form minimum)",
            &[
                &[0x01],       // Length: long form
                &[0x00, 0x04], // Length: total 4
                &[0x16],       // MsgType: PINGREQ, no ClientId
            ],
            Packet::Pingreq { client_id: None },
            &[&[0x02], &[0x16]],
        ),
        v(
            "total 255, short form: PUBLISH with a 253-octet body (248-octet payload)",
            &[
                &[0xFF],       // Length: 255, the largest short form
                &[0x0C],       // MsgType: PUBLISH
                &[0x00],       // Flags: QoS 0, normal id
                &[0x00, 0x05], // TopicId: 5
                &[0x00, 0x00], // MsgId: 0
                P248,          // Data: 248 octets (body = 5 + 248 = 253)
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::Zero,
                retain: false,
                topic: TopicRef::Normal(5),
                msg_id: 0,
                data: P248,
            }),
        ),
        v_normalised(
            "total 256 in the long form (body 252): legal, re-encoded as a 254-octet short form",
            &[
                &[0x01],       // Length: long form
                &[0x01, 0x00], // Length: total 256 = 3 + 1 + 252
                &[0x0C],       // MsgType: PUBLISH
                &[0x00],       // Flags: QoS 0, normal id
                &[0x00, 0x05], // TopicId: 5
                &[0x00, 0x00], // MsgId: 0
                P247,          // Data: 247 octets (body = 252)
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::Zero,
                retain: false,
                topic: TopicRef::Normal(5),
                msg_id: 0,
                data: P247,
            }),
            &[
                &[0xFE],
                &[0x0C],
                &[0x00],
                &[0x00, 0x05],
                &[0x00, 0x00],
                P247,
            ],
        ),
        v_normalised(
            "total 257 in the long form (body 253): legal, re-encoded as the 255-octet short form",
            &[
                &[0x01],       // Length: long form
                &[0x01, 0x01], // Length: total 257 = 3 + 1 + 253
                &[0x0C],       // MsgType: PUBLISH
                &[0x00],       // Flags
                &[0x00, 0x05], // TopicId: 5
                &[0x00, 0x00], // MsgId: 0
                P248,          // Data: 248 octets (body = 253)
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::Zero,
                retain: false,
                topic: TopicRef::Normal(5),
                msg_id: 0,
                data: P248,
            }),
            &[
                &[0xFF],
                &[0x0C],
                &[0x00],
                &[0x00, 0x05],
                &[0x00, 0x00],
                P248,
            ],
        ),
        v(
            "total 258, long form: PUBLISH with a 254-octet body (249-octet payload)",
            &[
                &[0x01],       // Length: long form
                &[0x01, 0x02], // Length: total 258 = 3 + 1 + 254
                &[0x0C],       // MsgType: PUBLISH
                &[0x00],       // Flags
                &[0x00, 0x05], // TopicId: 5
                &[0x00, 0x00], // MsgId: 0
                P249,          // Data: 249 octets (body = 254)
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::Zero,
                retain: false,
                topic: TopicRef::Normal(5),
                msg_id: 0,
                data: P249,
            }),
        ),
        v(
            "total 309, long form: PUBLISH QoS 0, id 5, 300-octet payload",
            &[
                &[0x01],       // Length: long form
                &[0x01, 0x35], // Length: total 309 = 0x0135
                &[0x0C],       // MsgType: PUBLISH
                &[0x00],       // Flags: QoS 0, normal id
                &[0x00, 0x05], // TopicId: 5
                &[0x00, 0x00], // MsgId: 0
                P300,          // Data: 300 octets
            ],
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::Zero,
                retain: false,
                topic: TopicRef::Normal(5),
                msg_id: 0,
                data: P300,
            }),
        ),
        v(
            "total 255, short form: REGISTER with a 249-octet name (body 253)",
            &[
                &[0xFF],       // Length: 255
                &[0x0A],       // MsgType: REGISTER
                &[0x00, 0x00], // TopicId: 0
                &[0x00, 0x01], // MsgId: 1
                N249,          // TopicName: 249 x 'n'
            ],
            Packet::Register(Register {
                topic_id: 0,
                msg_id: 1,
                topic_name: N249,
            }),
        ),
        v(
            "total 258, long form: REGISTER with a 250-octet name (body 254)",
            &[
                &[0x01],       // Length: long form
                &[0x01, 0x02], // Length: 258
                &[0x0A],       // MsgType: REGISTER
                &[0x00, 0x00], // TopicId: 0
                &[0x00, 0x01], // MsgId: 1
                N250,          // TopicName: 250 x 'n'
            ],
            Packet::Register(Register {
                topic_id: 0,
                msg_id: 1,
                topic_name: N250,
            }),
        ),
        v(
            "total 255, short form: WILLMSG with a 253-octet message",
            &[
                &[0xFF], // Length: 255
                &[0x09], // MsgType: WILLMSG
                M253,    // WillMsg: 253 octets
            ],
            Packet::WillMsg { msg: M253 },
        ),
        v(
            "total 258, long form: WILLMSGUPD with a 254-octet message",
            &[
                &[0x01],       // Length: long form
                &[0x01, 0x02], // Length: 258
                &[0x1C],       // MsgType: WILLMSGUPD
                M254,          // WillMsg: 254 octets
            ],
            Packet::WillMsgUpd { msg: M254 },
        ),
        // ---------------------------------------------------------------- encapsulation
        v(
            "Encapsulated CONNECT from XBee node 0013A200415B6C2D",
            &[
                &[0x0B],       // Len: 11 = 3 + 8, the encapsulation header only
                &[0xFE],       // MsgType: Encapsulated
                &[0x00],       // Ctrl: radius 0
                XBEE_WNID,     // Wireless Node Id: 00 13 A2 00 41 5B 6C 2D
                &[0x0D],       // inner Length: 13
                &[0x04],       // inner MsgType: CONNECT
                &[0x04],       // inner Flags: CleanSession
                &[0x01],       // inner ProtocolId
                &[0x00, 0x3C], // inner Duration: 60 s
                b"mote-01",    // inner ClientId
            ],
            Packet::Encapsulated(Encapsulated {
                radius: 0,
                wnid: XBEE_WNID,
                inner: &[
                    0x0D, 0x04, 0x04, 0x01, 0x00, 0x3C, b'm', b'o', b't', b'e', b'-', b'0', b'1',
                ],
            }),
        ),
        v(
            "Encapsulated CONNACK back to that node",
            &[
                &[0x0B],             // Len: 11
                &[0xFE],             // MsgType: Encapsulated
                &[0x00],             // Ctrl: radius 0
                XBEE_WNID,           // Wireless Node Id
                &[0x03, 0x05, 0x00], // inner: CONNACK accepted
            ],
            Packet::Encapsulated(Encapsulated {
                radius: 0,
                wnid: XBEE_WNID,
                inner: &[0x03, 0x05, 0x00],
            }),
        ),
        v(
            "Encapsulated SEARCHGW broadcast: empty WNID, radius 2",
            &[
                &[0x03],             // Len: 3, no node id
                &[0xFE],             // MsgType: Encapsulated
                &[0x02],             // Ctrl: radius 2
                &[0x03, 0x01, 0x02], // inner: SEARCHGW radius 2
            ],
            Packet::Encapsulated(Encapsulated {
                radius: 2,
                wnid: &[],
                inner: &[0x03, 0x01, 0x02],
            }),
        ),
        v_normalised(
            "Encapsulated with reserved Ctrl bits set: ignored on decode, sent as 0",
            &[
                &[0x05],       // Len: 5 = 3 + 2
                &[0xFE],       // MsgType: Encapsulated
                &[0xFD],       // Ctrl: reserved bits 7-2 set, radius 1
                &[0xAB, 0xCD], // Wireless Node Id: 2 octets
                &[0x02, 0x17], // inner: PINGRESP
            ],
            Packet::Encapsulated(Encapsulated {
                radius: 1,
                wnid: &[0xAB, 0xCD],
                inner: &[0x02, 0x17],
            }),
            &[&[0x05, 0xFE], &[0x01], &[0xAB, 0xCD], &[0x02, 0x17]],
        ),
    ]
}

fn encode_to_vec(p: &Packet<'_>) -> Vec<u8> {
    let len = p.encoded_len().unwrap();
    let mut buf = vec![0u8; len];
    let written = p.encode(&mut buf).unwrap();
    assert_eq!(
        written, len,
        "encode wrote a different count than encoded_len"
    );
    buf
}

#[test]
fn every_vector_decodes_to_its_packet() {
    for vec in vectors() {
        assert_eq!(
            Packet::decode(&vec.bytes),
            Ok(vec.packet),
            "decoding: {}",
            vec.name
        );
    }
}

#[test]
fn every_vector_packet_encodes_to_its_bytes() {
    for vec in vectors() {
        let expected = vec.reencoded.as_ref().unwrap_or(&vec.bytes);
        assert_eq!(
            &encode_to_vec(&vec.packet),
            expected,
            "encoding: {}",
            vec.name
        );
        assert_eq!(
            vec.packet.encoded_len(),
            Ok(expected.len()),
            "encoded_len: {}",
            vec.name
        );
    }
}

#[test]
fn normalised_vectors_really_differ_and_their_encoding_decodes_back() {
    let mut seen = 0;
    for vec in vectors() {
        let Some(reencoded) = &vec.reencoded else {
            continue;
        };
        seen += 1;
        assert_ne!(
            reencoded, &vec.bytes,
            "{}: drop the reencoded bytes, they are the input",
            vec.name
        );
        assert_eq!(Packet::decode(reencoded), Ok(vec.packet), "{}", vec.name);
    }
    assert_eq!(seen, 6);
}

#[test]
fn vectors_cover_every_message_type() {
    let covered: BTreeSet<MsgType> = vectors().iter().map(|v| v.packet.msg_type()).collect();
    let all: BTreeSet<MsgType> = MsgType::ALL.iter().copied().collect();
    assert_eq!(covered, all);
    assert_eq!(all.len(), 28, "v1.2 has 27 message types plus Encapsulated");
}

#[test]
fn boundary_vectors_cover_totals_255_to_258_in_the_right_form() {
    let vectors = vectors();
    let lengths: Vec<(usize, u8)> = vectors
        .iter()
        .map(|v| (v.bytes.len(), v.bytes[0]))
        .collect();
    // Total 255: short form, first octet 0xFF.
    assert!(lengths.contains(&(255, 0xFF)));
    // Totals 256, 257, 258 exist only in the long form, first octet 0x01.
    for total in [256, 257, 258] {
        assert!(
            lengths.contains(&(total, 0x01)),
            "no long-form vector of total {total}"
        );
    }
}

#[test]
fn encoder_switches_form_exactly_between_body_253_and_254() {
    for body in [0usize, 1, 200, 252, 253, 254, 255, 256, 1000] {
        let msg = vec![0x77u8; body];
        let p = Packet::WillMsg { msg: &msg };
        let bytes = encode_to_vec(&p);
        if body <= 253 {
            assert_eq!(bytes.len(), body + 2);
            assert_eq!(usize::from(bytes[0]), body + 2);
            assert_eq!(bytes[1], 0x09);
        } else {
            assert_eq!(bytes.len(), body + 4);
            assert_eq!(bytes[0], 0x01);
            assert_eq!(
                usize::from(u16::from_be_bytes([bytes[1], bytes[2]])),
                body + 4
            );
            assert_eq!(bytes[3], 0x09);
        }
        assert_eq!(&bytes[bytes.len() - body..], &msg[..]);
        assert_eq!(Packet::decode(&bytes), Ok(p));
    }
}

#[test]
fn largest_message_uses_length_65535() {
    let data = vec![0x11u8; 65535 - 4 - 5];
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::Zero,
        retain: false,
        topic: TopicRef::Predefined(1),
        msg_id: 0,
        data: &data,
    });
    let bytes = encode_to_vec(&p);
    assert_eq!(bytes.len(), 65535);
    assert_eq!(&bytes[..5], &[0x01, 0xFF, 0xFF, 0x0C, 0x01]);
    assert_eq!(Packet::decode(&bytes), Ok(p));
}

#[test]
fn encapsulated_spec_examples_decode_their_inner_message() {
    let connect = cat(&[
        &[0x0B, 0xFE, 0x00],
        XBEE_WNID,
        &[0x0D, 0x04, 0x04, 0x01, 0x00, 0x3C],
        b"mote-01",
    ]);
    let Ok(Packet::Encapsulated(e)) = Packet::decode(&connect) else {
        panic!("not an Encapsulated message")
    };
    assert_eq!(e.radius, 0);
    assert_eq!(e.wnid, XBEE_WNID);
    assert_eq!(e.header_len(), 11);
    assert_eq!(e.encoded_len(), connect.len());
    assert_eq!(
        e.decode_inner(),
        Ok(Packet::Connect(Connect {
            will: false,
            clean_session: true,
            duration: 60,
            client_id: MOTE_01
        }))
    );

    let connack = cat(&[&[0x0B, 0xFE, 0x00], XBEE_WNID, &[0x03, 0x05, 0x00]]);
    let e = Encapsulated::decode(&connack).unwrap();
    assert_eq!(
        e.decode_inner(),
        Ok(Packet::Connack {
            return_code: ReturnCode::Accepted
        })
    );
}

#[test]
fn encode_encapsulated_writes_the_spec_examples() {
    let inner = Packet::Connack {
        return_code: ReturnCode::Accepted,
    };
    let mut buf = [0u8; 64];
    let n = encode_encapsulated(0, XBEE_WNID, &inner, &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        &cat(&[&[0x0B, 0xFE, 0x00], XBEE_WNID, &[0x03, 0x05, 0x00]])[..]
    );

    let inner = Packet::Connect(Connect {
        will: false,
        clean_session: true,
        duration: 60,
        client_id: MOTE_01,
    });
    let n = encode_encapsulated(0, XBEE_WNID, &inner, &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        &cat(&[
            &[0x0B, 0xFE, 0x00],
            XBEE_WNID,
            &[0x0D, 0x04, 0x04, 0x01, 0x00, 0x3C],
            b"mote-01"
        ])[..]
    );

    // Broadcast: empty node id, radius in Ctrl bits 1-0 (only the low two bits are sent).
    let n = encode_encapsulated(3, &[], &Packet::SearchGw { radius: 3 }, &mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x03, 0xFE, 0x03, 0x03, 0x01, 0x03]);
}

#[test]
fn encapsulated_inner_message_may_use_the_long_form() {
    let bytes = cat(&[
        &[0x04, 0xFE, 0x00], // Len 4, Encapsulated, radius 0
        &[0x42],             // Wireless Node Id: one octet
        &[0x01, 0x00, 0x05], // inner Length: long form, total 5
        &[0x05, 0x03],       // inner CONNACK not supported
    ]);
    let e = Encapsulated::decode(&bytes).unwrap();
    assert_eq!(e.wnid, &[0x42]);
    assert_eq!(e.inner, &[0x01, 0x00, 0x05, 0x05, 0x03]);
    assert_eq!(
        e.decode_inner(),
        Ok(Packet::Connack {
            return_code: ReturnCode::NotSupported
        })
    );
}

#[test]
fn encapsulated_inner_long_message_over_255_octets() {
    let payload = [0x33u8; 300];
    let inner = Packet::Publish(Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Normal(9),
        msg_id: 77,
        data: &payload,
    });
    let mut buf = [0u8; 512];
    let n = encode_encapsulated(0, &[1, 2, 3], &inner, &mut buf).unwrap();
    assert_eq!(n, 6 + 309);
    assert_eq!(
        &buf[..10],
        &[0x06, 0xFE, 0x00, 1, 2, 3, 0x01, 0x01, 0x35, 0x0C]
    );
    let Ok(Packet::Encapsulated(e)) = Packet::decode(&buf[..n]) else {
        panic!("not encapsulated")
    };
    assert_eq!(e.decode_inner(), Ok(inner));
}

#[test]
fn longest_wireless_node_id_is_252_octets() {
    let wnid = [0xEEu8; 252];
    let inner = Packet::Pingresp;
    let mut buf = [0u8; 300];
    let n = encode_encapsulated(0, &wnid, &inner, &mut buf).unwrap();
    assert_eq!(n, 255 + 2);
    assert_eq!(buf[0], 0xFF, "Len counts 3 + 252 = 255");
    let e = Encapsulated::decode(&buf[..n]).unwrap();
    assert_eq!(e.wnid, &wnid[..]);
    assert_eq!(e.decode_inner(), Ok(Packet::Pingresp));
}

#[test]
fn the_crate_level_decode_function_is_packet_decode() {
    for vec in vectors() {
        assert_eq!(sn_codec::decode(&vec.bytes), Packet::decode(&vec.bytes));
    }
    assert_eq!(
        sn_codec::decode(&[0x00]),
        Err(DecodeError::InvalidLength { declared: 0 })
    );
}

/// Writes every golden vector as a seed for both fuzz targets (`fuzz/corpus/<target>/`, ignored
/// by git), so `cargo fuzz run` starts from valid messages of every type.
#[test]
fn golden_vectors_are_written_as_the_fuzz_seed_corpus() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    if !fuzz.join("Cargo.toml").exists() {
        return;
    }
    for target in ["decode", "roundtrip"] {
        let dir = fuzz.join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, vec) in vectors().iter().enumerate() {
            std::fs::write(dir.join(format!("golden-{i:02}")), &vec.bytes).unwrap();
        }
    }
}
