//! Malformed input: one test per [`DecodeError`] kind with the exact variant expected, and the
//! [`EncodeError`] cases.

use sn_codec::{
    Connect, DecodeError, Encapsulated, EncodeError, MsgType, Packet, Publish, QoS, ReturnCode,
    Subscribe, TopicRef, Unsubscribe, encode_encapsulated,
};

fn decode(bytes: &[u8]) -> Result<Packet<'_>, DecodeError> {
    Packet::decode(bytes)
}

fn body_len(msg_type: MsgType, len: usize) -> Result<Packet<'static>, DecodeError> {
    Err(DecodeError::InvalidBodyLength { msg_type, len })
}

// ------------------------------------------------------------------------------- Truncated

#[test]
fn empty_input_is_truncated() {
    assert_eq!(
        decode(&[]),
        Err(DecodeError::Truncated {
            needed: 2,
            actual: 0
        })
    );
}

#[test]
fn a_lone_short_length_octet_is_truncated() {
    assert_eq!(
        decode(&[0x02]),
        Err(DecodeError::Truncated {
            needed: 2,
            actual: 1
        })
    );
    assert_eq!(
        decode(&[0xFF]),
        Err(DecodeError::Truncated {
            needed: 255,
            actual: 1
        })
    );
}

#[test]
fn a_short_length_larger_than_the_datagram_is_truncated() {
    // CONNACK claiming 3 octets, 2 present.
    assert_eq!(
        decode(&[0x03, 0x05]),
        Err(DecodeError::Truncated {
            needed: 3,
            actual: 2
        })
    );
    // PUBLISH claiming 11 octets, the last payload octet missing.
    assert_eq!(
        decode(&[0x0B, 0x0C, 0x20, 0x00, 0x05, 0x00, 0x02, b'2', b'1', b'.']),
        Err(DecodeError::Truncated {
            needed: 11,
            actual: 10
        })
    );
}

#[test]
fn an_incomplete_long_length_field_is_truncated() {
    assert_eq!(
        decode(&[0x01]),
        Err(DecodeError::Truncated {
            needed: 4,
            actual: 1
        })
    );
    assert_eq!(
        decode(&[0x01, 0x00]),
        Err(DecodeError::Truncated {
            needed: 4,
            actual: 2
        })
    );
    // Three octets of header but no MsgType yet: the long form needs at least 4.
    assert_eq!(
        decode(&[0x01, 0x00, 0x05]),
        Err(DecodeError::Truncated {
            needed: 5,
            actual: 3
        })
    );
}

#[test]
fn a_long_length_larger_than_the_datagram_is_truncated() {
    let mut bytes = vec![0x01, 0x01, 0x35, 0x0C, 0x00, 0x00, 0x05, 0x00, 0x00];
    bytes.resize(308, 0x5A); // one octet short of 309
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::Truncated {
            needed: 309,
            actual: 308
        })
    );
}

#[test]
fn an_encapsulated_message_without_a_complete_inner_message_is_truncated() {
    // Header promises 11 octets, only 6 present.
    assert_eq!(
        decode(&[0x0B, 0xFE, 0x00, 0x00, 0x13, 0xA2]),
        Err(DecodeError::Truncated {
            needed: 13,
            actual: 6
        })
    );
    // Complete header (Len 3), no inner message at all.
    assert_eq!(
        decode(&[0x03, 0xFE, 0x00]),
        Err(DecodeError::Truncated {
            needed: 5,
            actual: 3
        })
    );
    // Complete header, a single inner octet.
    assert_eq!(
        decode(&[0x03, 0xFE, 0x00, 0x02]),
        Err(DecodeError::Truncated {
            needed: 5,
            actual: 4
        })
    );
}

#[test]
fn an_inner_message_shorter_than_its_length_is_truncated() {
    let e = Encapsulated::decode(&[0x03, 0xFE, 0x00, 0x03, 0x05]).unwrap();
    assert_eq!(
        e.decode_inner(),
        Err(DecodeError::Truncated {
            needed: 3,
            actual: 2
        })
    );
}

// ------------------------------------------------------------------------------- TrailingBytes

#[test]
fn octets_after_the_declared_short_length_are_trailing_bytes() {
    assert_eq!(
        decode(&[0x03, 0x05, 0x00, 0x00]),
        Err(DecodeError::TrailingBytes {
            declared: 3,
            actual: 4
        })
    );
    assert_eq!(
        decode(&[0x02, 0x17, 0xFF]),
        Err(DecodeError::TrailingBytes {
            declared: 2,
            actual: 3
        })
    );
}

#[test]
fn octets_after_the_declared_long_length_are_trailing_bytes() {
    assert_eq!(
        decode(&[0x01, 0x00, 0x05, 0x05, 0x00, 0xEE]),
        Err(DecodeError::TrailingBytes {
            declared: 5,
            actual: 6
        })
    );
}

#[test]
fn an_inner_message_longer_than_its_length_has_trailing_bytes() {
    let e = Encapsulated::decode(&[0x03, 0xFE, 0x00, 0x02, 0x17, 0x00]).unwrap();
    assert_eq!(
        e.decode_inner(),
        Err(DecodeError::TrailingBytes {
            declared: 2,
            actual: 3
        })
    );
}

// ------------------------------------------------------------------------------- InvalidLength

#[test]
fn a_first_octet_of_zero_is_an_invalid_length() {
    assert_eq!(
        decode(&[0x00]),
        Err(DecodeError::InvalidLength { declared: 0 })
    );
    assert_eq!(
        decode(&[0x00, 0x05, 0x00]),
        Err(DecodeError::InvalidLength { declared: 0 })
    );
}

#[test]
fn a_long_form_length_below_4_is_invalid() {
    for declared in 0..4u8 {
        let bytes = [0x01, 0x00, declared, 0x17];
        assert_eq!(
            decode(&bytes),
            Err(DecodeError::InvalidLength {
                declared: usize::from(declared)
            }),
            "long form declaring {declared}"
        );
    }
}

#[test]
fn an_encapsulation_header_shorter_than_3_is_an_invalid_length() {
    assert_eq!(
        decode(&[0x02, 0xFE, 0x02, 0x17]),
        Err(DecodeError::InvalidLength { declared: 2 })
    );
    assert_eq!(
        decode(&[0x00, 0xFE, 0x02, 0x17]),
        Err(DecodeError::InvalidLength { declared: 0 })
    );
}

// ------------------------------------------------------------------------------- UnknownMsgType

/// Every code that v1.2 reserves.
fn reserved_codes() -> impl Iterator<Item = u8> {
    [0x03, 0x11, 0x19]
        .into_iter()
        .chain(0x1E..=0xFD)
        .chain([0xFF])
}

#[test]
fn every_reserved_msg_type_is_unknown_in_the_short_form() {
    let mut count = 0;
    for code in reserved_codes() {
        assert_eq!(
            decode(&[0x02, code]),
            Err(DecodeError::UnknownMsgType(code)),
            "0x{code:02X}"
        );
        assert_eq!(
            decode(&[0x05, code, 0x00, 0x01, 0x02]),
            Err(DecodeError::UnknownMsgType(code)),
            "0x{code:02X} with a body"
        );
        count += 1;
    }
    assert_eq!(count, 3 + (0xFD - 0x1E + 1) + 1);
}

#[test]
fn every_reserved_msg_type_is_unknown_in_the_long_form() {
    for code in reserved_codes() {
        assert_eq!(
            decode(&[0x01, 0x00, 0x04, code]),
            Err(DecodeError::UnknownMsgType(code))
        );
    }
}

#[test]
fn a_v2_connect_is_an_unknown_type_or_a_bad_searchgw_never_a_connect() {
    // The MQTT-SN v2.0 draft renumbers every type: its CONNECT is 0x01, which to v1.2 is an
    // over-long SEARCHGW.
    assert_eq!(
        decode(&[0x06, 0x01, 0x04, 0x02, 0x00, 0x3C]),
        body_len(MsgType::SearchGw, 4)
    );
}

#[test]
fn encapsulated_decode_of_a_non_encapsulated_message_reports_its_type() {
    assert_eq!(
        Encapsulated::decode(&[0x03, 0x05, 0x00, 0x02, 0x17]),
        Err(DecodeError::UnknownMsgType(0x05))
    );
}

// ------------------------------------------------------------------------------- InvalidBodyLength

#[test]
fn fixed_size_messages_reject_every_other_body_length() {
    // (type, the one valid body length)
    let fixed: &[(MsgType, usize)] = &[
        (MsgType::Advertise, 3),
        (MsgType::SearchGw, 1),
        (MsgType::Connack, 1),
        (MsgType::WillTopicReq, 0),
        (MsgType::WillMsgReq, 0),
        (MsgType::Regack, 5),
        (MsgType::Puback, 5),
        (MsgType::Pubcomp, 2),
        (MsgType::Pubrec, 2),
        (MsgType::Pubrel, 2),
        (MsgType::Suback, 6),
        (MsgType::Unsuback, 2),
        (MsgType::Pingresp, 0),
        (MsgType::WillTopicResp, 1),
        (MsgType::WillMsgResp, 1),
    ];
    for &(msg_type, valid) in fixed {
        for len in 0..=8usize {
            let mut bytes = vec![u8::try_from(len + 2).unwrap(), msg_type.code()];
            bytes.resize(len + 2, 0x00);
            let result = decode(&bytes);
            if len == valid {
                assert_eq!(
                    result.map(|p| p.msg_type()),
                    Ok(msg_type),
                    "{msg_type} body {len}"
                );
            } else {
                assert_eq!(result, body_len(msg_type, len), "{msg_type} body {len}");
            }
        }
    }
}

#[test]
fn connack_with_a_2_octet_body_is_an_invalid_body_length() {
    assert_eq!(
        decode(&[0x04, 0x05, 0x00, 0x00]),
        body_len(MsgType::Connack, 2)
    );
}

#[test]
fn disconnect_of_length_3_is_an_invalid_body_length() {
    assert_eq!(
        decode(&[0x03, 0x18, 0x00]),
        body_len(MsgType::Disconnect, 1)
    );
    assert_eq!(
        decode(&[0x05, 0x18, 0x00, 0x01, 0x02]),
        body_len(MsgType::Disconnect, 3)
    );
}

#[test]
fn publish_shorter_than_its_fixed_fields_is_an_invalid_body_length() {
    // Flags, TopicId, MsgId = 5 octets; 4 present.
    assert_eq!(
        decode(&[0x06, 0x0C, 0x20, 0x00, 0x05, 0x00]),
        body_len(MsgType::Publish, 4)
    );
    assert_eq!(decode(&[0x02, 0x0C]), body_len(MsgType::Publish, 0));
    // Too short *and* reserved TopicIdType: too short wins (no MsgId to answer with).
    assert_eq!(
        decode(&[0x05, 0x0C, 0x23, 0x00, 0x05]),
        body_len(MsgType::Publish, 3)
    );
}

#[test]
fn subscribe_by_predefined_id_or_short_name_needs_exactly_2_topic_octets() {
    // Predefined with a 3-octet id.
    assert_eq!(
        decode(&[0x08, 0x12, 0x21, 0x00, 0x01, 0x00, 0x01, 0x02]),
        body_len(MsgType::Subscribe, 6)
    );
    // Predefined with a 1-octet id.
    assert_eq!(
        decode(&[0x06, 0x12, 0x21, 0x00, 0x01, 0x07]),
        body_len(MsgType::Subscribe, 4)
    );
    // Short name with none at all.
    assert_eq!(
        decode(&[0x05, 0x12, 0x22, 0x00, 0x01]),
        body_len(MsgType::Subscribe, 3)
    );
    // Without Flags and MsgId complete.
    assert_eq!(
        decode(&[0x04, 0x12, 0x20, 0x00]),
        body_len(MsgType::Subscribe, 2)
    );
}

#[test]
fn unsubscribe_by_predefined_id_or_short_name_needs_exactly_2_topic_octets() {
    assert_eq!(
        decode(&[0x08, 0x14, 0x01, 0x00, 0x01, 0x00, 0x01, 0x02]),
        body_len(MsgType::Unsubscribe, 6)
    );
    assert_eq!(
        decode(&[0x06, 0x14, 0x02, 0x00, 0x01, b'a']),
        body_len(MsgType::Unsubscribe, 4)
    );
    assert_eq!(
        decode(&[0x03, 0x14, 0x00]),
        body_len(MsgType::Unsubscribe, 1)
    );
}

#[test]
fn variable_messages_shorter_than_their_fixed_fields_are_invalid_body_lengths() {
    // CONNECT needs Flags, ProtocolId, Duration.
    assert_eq!(
        decode(&[0x05, 0x04, 0x04, 0x01, 0x00]),
        body_len(MsgType::Connect, 3)
    );
    // REGISTER needs TopicId and MsgId.
    assert_eq!(
        decode(&[0x05, 0x0A, 0x00, 0x00, 0x01]),
        body_len(MsgType::Register, 3)
    );
    // GWINFO needs a GwId.
    assert_eq!(decode(&[0x02, 0x02]), body_len(MsgType::GwInfo, 0));
}

#[test]
fn a_long_form_header_reports_the_body_length_without_the_3_length_octets() {
    assert_eq!(
        decode(&[0x01, 0x00, 0x06, 0x05, 0x00, 0x00]),
        body_len(MsgType::Connack, 2)
    );
}

// ------------------------------------------------------------------------------- InvalidProtocolId

#[test]
fn connect_with_a_protocol_id_other_than_1_is_rejected_with_that_id() {
    for pid in [0x00u8, 0x02, 0x03, 0x04, 0x05, 0xFF] {
        let bytes = [
            0x0D, 0x04, 0x04, pid, 0x00, 0x3C, b'm', b'o', b't', b'e', b'-', b'0', b'1',
        ];
        assert_eq!(decode(&bytes), Err(DecodeError::InvalidProtocolId(pid)));
    }
    // Even without a ClientId.
    assert_eq!(
        decode(&[0x06, 0x04, 0x00, 0x02, 0x00, 0x00]),
        Err(DecodeError::InvalidProtocolId(2))
    );
}

// ------------------------------------------------------------------------------- ReservedTopicIdType

#[test]
fn publish_with_topic_id_type_0b11_carries_topic_and_msg_id() {
    let bytes = [
        0x0B, // Length 11
        0x0C, // PUBLISH
        0x23, // Flags: QoS 1, TopicIdType 0b11
        0x12, 0x34, // TopicId 0x1234
        0x56, 0x78, // MsgId 0x5678
        b'd', b'a', b't', b'a',
    ];
    assert_eq!(
        decode(&bytes),
        Err(DecodeError::ReservedTopicIdType {
            msg_type: MsgType::Publish,
            topic_id: 0x1234,
            msg_id: 0x5678,
        })
    );
}

#[test]
fn publish_qos_minus_one_with_topic_id_type_0b11_is_still_reported() {
    assert_eq!(
        decode(&[0x07, 0x0C, 0x63, 0x00, 0x01, 0x00, 0x00]),
        Err(DecodeError::ReservedTopicIdType {
            msg_type: MsgType::Publish,
            topic_id: 1,
            msg_id: 0
        })
    );
}

#[test]
fn subscribe_with_topic_id_type_0b11_carries_msg_id_and_a_2_octet_topic() {
    assert_eq!(
        decode(&[0x07, 0x12, 0x23, 0x00, 0x09, 0xAB, 0xCD]),
        Err(DecodeError::ReservedTopicIdType {
            msg_type: MsgType::Subscribe,
            topic_id: 0xABCD,
            msg_id: 9,
        })
    );
}

#[test]
fn subscribe_with_topic_id_type_0b11_and_a_name_carries_topic_id_0() {
    assert_eq!(
        decode(&[0x0A, 0x12, 0x03, 0x00, 0x0A, b'c', b'm', b'd', b'/', b'#']),
        Err(DecodeError::ReservedTopicIdType {
            msg_type: MsgType::Subscribe,
            topic_id: 0,
            msg_id: 10
        })
    );
}

#[test]
fn unsubscribe_with_topic_id_type_0b11_is_reported() {
    assert_eq!(
        decode(&[0x07, 0x14, 0x03, 0x00, 0x0B, 0x00, 0x02]),
        Err(DecodeError::ReservedTopicIdType {
            msg_type: MsgType::Unsubscribe,
            topic_id: 2,
            msg_id: 11
        })
    );
}

// ------------------------------------------------------------------------------- NestedEncapsulation

#[test]
fn an_encapsulated_inner_message_is_nested_encapsulation() {
    let bytes = [
        0x04, 0xFE, 0x00, 0x01, // outer header: Len 4, radius 0, WNID 01
        0x04, 0xFE, 0x00, 0x02, // inner header: Len 4, radius 0, WNID 02
        0x02, 0x17, // innermost PINGRESP
    ];
    let Ok(Packet::Encapsulated(outer)) = decode(&bytes) else {
        panic!("outer must decode")
    };
    assert_eq!(outer.wnid, &[0x01]);
    assert_eq!(outer.decode_inner(), Err(DecodeError::NestedEncapsulation));
}

#[test]
fn encapsulated_display_reports_a_malformed_inner_message() {
    let e = Encapsulated::decode(&[0x04, 0xFE, 0x00, 0x01, 0x04, 0xFE, 0x00, 0x02, 0x02, 0x17])
        .unwrap();
    assert_eq!(
        e.to_string(),
        "ENCAPSULATED wnid=01 radius=0 [malformed: encapsulated message inside another]"
    );
}

// ------------------------------------------------------------------------------- LongEncapsulationHeader

#[test]
fn an_encapsulation_header_in_the_long_form_is_rejected() {
    // 01 00 0B FE 00 <8-octet wnid> + CONNACK
    let bytes = [
        0x01, 0x00, 0x0B, 0xFE, 0x00, 0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D, 0x03, 0x05,
        0x00,
    ];
    assert_eq!(decode(&bytes), Err(DecodeError::LongEncapsulationHeader));
    assert_eq!(
        Encapsulated::decode(&bytes),
        Err(DecodeError::LongEncapsulationHeader)
    );
}

#[test]
fn an_inner_long_form_encapsulation_is_also_rejected() {
    let e = Encapsulated::decode(&[0x03, 0xFE, 0x00, 0x01, 0x00, 0x04, 0xFE]).unwrap();
    assert_eq!(e.decode_inner(), Err(DecodeError::LongEncapsulationHeader));
}

// ------------------------------------------------------------------------------- Display of errors

#[test]
fn decode_errors_display_what_was_wrong() {
    let cases: &[(DecodeError, &str)] = &[
        (
            DecodeError::Truncated {
                needed: 5,
                actual: 3,
            },
            "truncated: needs 5 octets, got 3",
        ),
        (
            DecodeError::TrailingBytes {
                declared: 3,
                actual: 4,
            },
            "length mismatch: Length field says 3 octets, datagram has 4",
        ),
        (
            DecodeError::InvalidLength { declared: 0 },
            "invalid Length field value 0",
        ),
        (
            DecodeError::UnknownMsgType(0x03),
            "unknown or reserved message type 0x03",
        ),
        (
            DecodeError::InvalidBodyLength {
                msg_type: MsgType::Disconnect,
                len: 1,
            },
            "DISCONNECT cannot have a 1-octet variable part",
        ),
        (
            DecodeError::InvalidProtocolId(2),
            "CONNECT with protocol id 0x02 (v1.2 uses 0x01)",
        ),
        (
            DecodeError::ReservedTopicIdType {
                msg_type: MsgType::Publish,
                topic_id: 1,
                msg_id: 2,
            },
            "PUBLISH with reserved topic id type 0b11",
        ),
        (
            DecodeError::NestedEncapsulation,
            "encapsulated message inside another",
        ),
        (
            DecodeError::LongEncapsulationHeader,
            "encapsulation header uses the 3-octet Length form",
        ),
    ];
    for (err, text) in cases {
        assert_eq!(err.to_string(), *text);
    }
}

// ------------------------------------------------------------------------------- EncodeError

const SENTINEL: u8 = 0xAA;

fn publish(data: &[u8]) -> Packet<'_> {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::One,
        retain: false,
        topic: TopicRef::Normal(5),
        msg_id: 2,
        data,
    })
}

#[test]
fn buffer_too_small_leaves_the_buffer_untouched() {
    let payload = [0x42u8; 40];
    let packets = [
        publish(b"21.5"),
        publish(&payload),
        Packet::Connack {
            return_code: ReturnCode::Accepted,
        },
        Packet::Pingresp,
        Packet::Connect(Connect {
            will: true,
            clean_session: true,
            duration: 60,
            client_id: b"mote-01",
        }),
        Packet::Subscribe(Subscribe {
            dup: false,
            qos: QoS::One,
            msg_id: 3,
            topic: TopicRef::Name(b"cmd/#"),
        }),
        Packet::Encapsulated(Encapsulated {
            radius: 0,
            wnid: &[1, 2, 3],
            inner: &[0x02, 0x17],
        }),
    ];
    for p in packets {
        let needed = p.encoded_len().unwrap();
        for available in 0..needed {
            let mut buf = vec![SENTINEL; available];
            assert_eq!(
                p.encode(&mut buf),
                Err(EncodeError::BufferTooSmall { needed, available }),
                "{p} into {available}"
            );
            assert!(
                buf.iter().all(|&b| b == SENTINEL),
                "{p}: buffer of {available} was written"
            );
        }
        let mut buf = vec![SENTINEL; needed];
        assert_eq!(p.encode(&mut buf), Ok(needed));
    }
}

#[test]
fn buffer_too_small_for_a_long_form_message_leaves_the_buffer_untouched() {
    let payload = [0x42u8; 300];
    let p = publish(&payload);
    assert_eq!(p.encoded_len(), Ok(309));
    let mut buf = [SENTINEL; 308];
    assert_eq!(
        p.encode(&mut buf),
        Err(EncodeError::BufferTooSmall {
            needed: 309,
            available: 308
        })
    );
    assert!(buf.iter().all(|&b| b == SENTINEL));
}

#[test]
fn encode_encapsulated_into_a_small_buffer_writes_nothing() {
    let inner = Packet::Connack {
        return_code: ReturnCode::Accepted,
    };
    let wnid = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];
    for available in 0..14 {
        let mut buf = vec![SENTINEL; available];
        assert_eq!(
            encode_encapsulated(0, &wnid, &inner, &mut buf),
            Err(EncodeError::BufferTooSmall {
                needed: 14,
                available
            })
        );
        assert!(
            buf.iter().all(|&b| b == SENTINEL),
            "buffer of {available} was written"
        );
    }
}

#[test]
fn a_message_over_65535_octets_is_too_long() {
    // Body 65531 gives total 65535, the maximum; one more octet is too long.
    let data = vec![0u8; 65535 - 4 - 5 + 1];
    let p = publish(&data);
    assert_eq!(
        p.encoded_len(),
        Err(EncodeError::MessageTooLong { len: 65536 })
    );
    let mut buf = vec![SENTINEL; 70_000];
    assert_eq!(
        p.encode(&mut buf),
        Err(EncodeError::MessageTooLong { len: 65536 })
    );
    assert!(buf.iter().all(|&b| b == SENTINEL));

    let msg = vec![0u8; 100_000];
    assert_eq!(
        Packet::WillMsg { msg: &msg }.encoded_len(),
        Err(EncodeError::MessageTooLong { len: 100_004 })
    );
    // The same inner message cannot be encapsulated either.
    assert_eq!(
        encode_encapsulated(0, &[], &Packet::WillMsg { msg: &msg }, &mut buf),
        Err(EncodeError::MessageTooLong { len: 100_004 })
    );
}

#[test]
fn a_wireless_node_id_of_253_octets_is_too_long() {
    let wnid = [0x11u8; 253];
    let e = Packet::Encapsulated(Encapsulated {
        radius: 0,
        wnid: &wnid,
        inner: &[0x02, 0x17],
    });
    assert_eq!(e.encoded_len(), Err(EncodeError::FieldTooLong));
    let mut buf = [SENTINEL; 512];
    assert_eq!(e.encode(&mut buf), Err(EncodeError::FieldTooLong));
    assert_eq!(
        encode_encapsulated(0, &wnid, &Packet::Pingresp, &mut buf),
        Err(EncodeError::FieldTooLong)
    );
    assert!(buf.iter().all(|&b| b == SENTINEL));
    // 252 is fine.
    let e = Packet::Encapsulated(Encapsulated {
        radius: 0,
        wnid: &wnid[..252],
        inner: &[0x02, 0x17],
    });
    assert_eq!(e.encoded_len(), Ok(257));
}

#[test]
fn a_topic_name_in_publish_is_not_allowed() {
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::Zero,
        retain: false,
        topic: TopicRef::Name(b"a/b"),
        msg_id: 0,
        data: b"x",
    });
    assert_eq!(p.encoded_len(), Err(EncodeError::TopicRefNotAllowed));
    let mut buf = [SENTINEL; 64];
    assert_eq!(p.encode(&mut buf), Err(EncodeError::TopicRefNotAllowed));
    assert!(buf.iter().all(|&b| b == SENTINEL));
}

#[test]
fn a_normal_topic_id_in_subscribe_or_unsubscribe_is_not_allowed() {
    let mut buf = [SENTINEL; 64];
    let s = Packet::Subscribe(Subscribe {
        dup: false,
        qos: QoS::One,
        msg_id: 1,
        topic: TopicRef::Normal(5),
    });
    assert_eq!(s.encoded_len(), Err(EncodeError::TopicRefNotAllowed));
    assert_eq!(s.encode(&mut buf), Err(EncodeError::TopicRefNotAllowed));
    let u = Packet::Unsubscribe(Unsubscribe {
        msg_id: 1,
        topic: TopicRef::Normal(5),
    });
    assert_eq!(u.encoded_len(), Err(EncodeError::TopicRefNotAllowed));
    assert_eq!(u.encode(&mut buf), Err(EncodeError::TopicRefNotAllowed));
    assert_eq!(
        encode_encapsulated(0, &[1], &u, &mut buf),
        Err(EncodeError::TopicRefNotAllowed)
    );
    assert!(buf.iter().all(|&b| b == SENTINEL));
}

#[test]
fn encode_errors_display_what_was_wrong() {
    assert_eq!(
        EncodeError::BufferTooSmall {
            needed: 9,
            available: 4
        }
        .to_string(),
        "buffer too small: needs 9 octets, has 4"
    );
    assert_eq!(
        EncodeError::MessageTooLong { len: 65536 }.to_string(),
        "message of 65536 octets exceeds the 65535-octet maximum"
    );
    assert_eq!(
        EncodeError::FieldTooLong.to_string(),
        "a field is too long for its wire format"
    );
    assert_eq!(
        EncodeError::TopicRefNotAllowed.to_string(),
        "this kind of topic reference cannot be sent in this message"
    );
}

#[test]
fn an_encapsulated_message_is_never_wrapped_in_another() {
    let inner = Packet::Encapsulated(sn_codec::Encapsulated {
        radius: 0,
        wnid: &[1],
        inner: &[0x02, 0x17],
    });
    let mut buf = [0xAA_u8; 64];
    assert_eq!(
        encode_encapsulated(0, &[2], &inner, &mut buf),
        Err(sn_codec::EncodeError::NestedEncapsulation)
    );
    assert!(buf.iter().all(|&b| b == 0xAA), "nothing written");
}
