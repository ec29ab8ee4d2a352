//! Exhaustive checks over small spaces: every MsgType octet 0..=255 with every body length
//! 0..=6 (messages of 2..=8 octets), every first body octet and several fillers, against an
//! independent oracle written from the MQTT-SN v1.2 specification's message formats (spec
//! chapter 5: header, Flags octet, each message's fields, forwarder encapsulation).

use sn_codec::{DecodeError, MsgType, Packet, QoS, ReturnCode, TopicIdType};

/// The codes v1.2 defines, written out independently of `MsgType`.
const DEFINED: &[(u8, &str)] = &[
    (0x00, "ADVERTISE"),
    (0x01, "SEARCHGW"),
    (0x02, "GWINFO"),
    (0x04, "CONNECT"),
    (0x05, "CONNACK"),
    (0x06, "WILLTOPICREQ"),
    (0x07, "WILLTOPIC"),
    (0x08, "WILLMSGREQ"),
    (0x09, "WILLMSG"),
    (0x0A, "REGISTER"),
    (0x0B, "REGACK"),
    (0x0C, "PUBLISH"),
    (0x0D, "PUBACK"),
    (0x0E, "PUBCOMP"),
    (0x0F, "PUBREC"),
    (0x10, "PUBREL"),
    (0x12, "SUBSCRIBE"),
    (0x13, "SUBACK"),
    (0x14, "UNSUBSCRIBE"),
    (0x15, "UNSUBACK"),
    (0x16, "PINGREQ"),
    (0x17, "PINGRESP"),
    (0x18, "DISCONNECT"),
    (0x1A, "WILLTOPICUPD"),
    (0x1B, "WILLTOPICRESP"),
    (0x1C, "WILLMSGUPD"),
    (0x1D, "WILLMSGRESP"),
    (0xFE, "ENCAPSULATED"),
];

fn be(hi: u8, lo: u8) -> u16 {
    u16::from_be_bytes([hi, lo])
}

/// What a (non-encapsulated) message with MsgType `code` and variable part `body` must decode
/// to, per the specification: `Ok(mask)` where `mask` says which bits of the Flags octet
/// (`body[0]`) survive a re-encode (0 when the message has no Flags), or the exact error.
fn oracle(code: u8, body: &[u8]) -> Result<u8, DecodeError> {
    let n = body.len();
    let Some(t) = MsgType::from_code(code) else {
        return Err(DecodeError::UnknownMsgType(code));
    };
    let bad = Err(DecodeError::InvalidBodyLength {
        msg_type: t,
        len: n,
    });
    let exactly = |want: usize| if n == want { Ok(0) } else { bad };
    match code {
        0x00 => exactly(3),
        0x01 => exactly(1),
        0x02 if n >= 1 => Ok(0),
        0x04 if n >= 4 => {
            if body[1] == 0x01 {
                Ok(0x0C) // Will + CleanSession
            } else {
                Err(DecodeError::InvalidProtocolId(body[1]))
            }
        }
        0x05 | 0x1B | 0x1D => exactly(1),
        0x06 | 0x08 | 0x17 => exactly(0),
        0x07 | 0x1A => Ok(if n == 0 { 0 } else { 0x70 }), // Will QoS + Will retain
        0x09 | 0x1C => Ok(0),
        0x0A if n >= 4 => Ok(0),
        0x0B | 0x0D => exactly(5),
        0x0C if n >= 5 => {
            if body[0] & 0b11 == 0b11 {
                Err(DecodeError::ReservedTopicIdType {
                    msg_type: t,
                    topic_id: be(body[1], body[2]),
                    msg_id: be(body[3], body[4]),
                })
            } else {
                Ok(0xF3) // DUP, QoS, Retain, TopicIdType
            }
        }
        0x0E | 0x0F | 0x10 | 0x15 => exactly(2),
        0x12 | 0x14 if n >= 3 => {
            let mask = if code == 0x12 { 0xE3 } else { 0x03 };
            match body[0] & 0b11 {
                0b00 => Ok(mask),
                0b01 | 0b10 if n == 5 => Ok(mask),
                0b11 => Err(DecodeError::ReservedTopicIdType {
                    msg_type: t,
                    topic_id: if n == 5 { be(body[3], body[4]) } else { 0 },
                    msg_id: be(body[1], body[2]),
                }),
                _ => bad,
            }
        }
        0x13 => {
            if n == 6 {
                Ok(0x60) // granted QoS only
            } else {
                bad
            }
        }
        0x16 => Ok(0),
        0x18 => match n {
            0 | 2 => Ok(0),
            _ => bad,
        },
        _ => bad,
    }
}

/// The fillers used for body octets 1.. (octet 0 runs through all 256 values).
const FILLERS: &[u8] = &[0x00, 0x01, 0x02, 0x03, 0x5A, 0xFF];

fn bodies(n: usize) -> impl Iterator<Item = Vec<u8>> {
    (0..=255u8).flat_map(move |first| {
        let count = if n == 0 { 1 } else { FILLERS.len() + 1 };
        (0..count).map(move |k| {
            (0..n)
                .map(|i| match (i, k) {
                    (0, _) => first,
                    (_, k) if k < FILLERS.len() => FILLERS[k],
                    // An incrementing pattern so multi-octet fields differ.
                    (i, _) => first.wrapping_add(u8::try_from(i).unwrap()),
                })
                .collect::<Vec<u8>>()
        })
    })
}

/// Checks one message against the oracle; returns whether it decoded.
fn check(bytes: &[u8], code: u8, body: &[u8], long_form: bool) -> bool {
    let result = Packet::decode(bytes);
    let ctx = || format!("{bytes:02X?}");
    match oracle(code, body) {
        Err(e) => {
            assert_eq!(result, Err(e), "{}", ctx());
            false
        }
        Ok(mask) => {
            let p = result.unwrap_or_else(|e| panic!("{}: expected Ok, got {e:?}", ctx()));
            assert_eq!(p.msg_type().code(), code, "{}", ctx());
            // Re-encoding gives the same octets (short form) with unused flag bits cleared.
            let mut buf = [0u8; 16];
            let len = p.encode(&mut buf).unwrap();
            let mut expected = vec![u8::try_from(body.len() + 2).unwrap(), code];
            expected.extend_from_slice(body);
            if mask != 0 {
                expected[2] &= mask;
            }
            assert_eq!(
                &buf[..len],
                &expected[..],
                "{} (long form: {long_form})",
                ctx()
            );
            assert_eq!(Packet::decode(&buf[..len]), Ok(p), "{}", ctx());
            true
        }
    }
}

#[test]
fn every_msg_type_octet_with_bodies_of_0_to_6_octets_in_the_short_form() {
    let (mut ok, mut err) = (0u32, 0u32);
    for code in 0..=255u8 {
        for n in 0..=6usize {
            for body in bodies(n) {
                let mut bytes = vec![u8::try_from(n + 2).unwrap(), code];
                bytes.extend_from_slice(&body);
                if code == 0xFE {
                    // Length = the whole datagram, so the encapsulation header leaves no inner
                    // message (or is too short to be a header at all).
                    let expected = if n + 2 < 3 {
                        DecodeError::InvalidLength { declared: n + 2 }
                    } else {
                        DecodeError::Truncated {
                            needed: n + 4,
                            actual: n + 2,
                        }
                    };
                    assert_eq!(Packet::decode(&bytes), Err(expected), "{bytes:02X?}");
                    err += 1;
                    continue;
                }
                if check(&bytes, code, &body, false) {
                    ok += 1;
                } else {
                    err += 1;
                }
            }
        }
    }
    // Guard against an oracle (or a loop) that silently checks nothing.
    assert!(ok > 50_000, "{ok} decoded");
    assert!(err > 500_000, "{err} rejected");
}

#[test]
fn every_msg_type_octet_with_bodies_of_0_to_6_octets_in_the_long_form() {
    for code in 0..=255u8 {
        for n in 0..=6usize {
            for body in bodies(n).step_by(7) {
                let mut bytes = vec![0x01, 0x00, u8::try_from(n + 4).unwrap(), code];
                bytes.extend_from_slice(&body);
                if code == 0xFE {
                    assert_eq!(
                        Packet::decode(&bytes),
                        Err(DecodeError::LongEncapsulationHeader),
                        "{bytes:02X?}"
                    );
                    continue;
                }
                check(&bytes, code, &body, true);
            }
        }
    }
}

#[test]
fn every_msg_type_octet_inside_an_encapsulation() {
    for code in 0..=255u8 {
        for n in 0..=4usize {
            for body in bodies(n).step_by(5) {
                let mut inner = vec![u8::try_from(n + 2).unwrap(), code];
                inner.extend_from_slice(&body);
                let mut bytes = vec![0x04, 0xFE, 0x01, 0x99];
                bytes.extend_from_slice(&inner);
                let Ok(Packet::Encapsulated(e)) = Packet::decode(&bytes) else {
                    panic!("{bytes:02X?}: outer header must decode")
                };
                assert_eq!((e.radius, e.wnid, e.inner), (1, &[0x99][..], &inner[..]));
                let expected = match code {
                    0xFE if n + 2 < 3 => Err(DecodeError::InvalidLength { declared: n + 2 }),
                    0xFE => Err(DecodeError::Truncated {
                        needed: n + 4,
                        actual: n + 2,
                    }),
                    _ => oracle(code, &body).map(|_| code),
                };
                assert_eq!(
                    e.decode_inner().map(|p| p.msg_type().code()),
                    expected,
                    "{bytes:02X?}"
                );
            }
        }
    }
}

#[test]
fn msg_type_codes_round_trip_for_every_octet() {
    let mut defined = 0;
    for code in 0..=255u8 {
        let expected = DEFINED.iter().find(|(c, _)| *c == code);
        match (MsgType::from_code(code), expected) {
            (Some(t), Some((_, name))) => {
                assert_eq!(t.code(), code);
                assert_eq!(t.name(), *name);
                assert_eq!(t.to_string(), *name);
                defined += 1;
            }
            (None, None) => {}
            (got, want) => panic!("0x{code:02X}: from_code gave {got:?}, expected {want:?}"),
        }
    }
    assert_eq!(defined, DEFINED.len());
}

#[test]
fn msg_type_all_lists_every_type_once_in_code_order() {
    let codes: Vec<u8> = MsgType::ALL.iter().map(|t| t.code()).collect();
    let expected: Vec<u8> = DEFINED.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, expected);
}

#[test]
fn return_codes_round_trip_for_every_octet() {
    for code in 0..=255u8 {
        let rc = ReturnCode::from_code(code);
        assert_eq!(rc.code(), code);
        assert_eq!(rc.is_accepted(), code == 0);
        let expected = match code {
            0 => ReturnCode::Accepted,
            1 => ReturnCode::Congestion,
            2 => ReturnCode::InvalidTopicId,
            3 => ReturnCode::NotSupported,
            c => ReturnCode::Reserved(c),
        };
        assert_eq!(rc, expected);
    }
}

#[test]
fn qos_and_topic_id_type_bits_round_trip() {
    let qos = [QoS::Zero, QoS::One, QoS::Two, QoS::MinusOne];
    let levels = [0i8, 1, 2, -1];
    let types = [
        TopicIdType::Normal,
        TopicIdType::Predefined,
        TopicIdType::Short,
        TopicIdType::Reserved,
    ];
    for bits in 0..4u8 {
        let i = usize::from(bits);
        assert_eq!(QoS::from_bits(bits), qos[i]);
        assert_eq!(qos[i].bits(), bits);
        assert_eq!(qos[i].level(), levels[i]);
        assert_eq!(TopicIdType::from_bits(bits), types[i]);
        assert_eq!(types[i].bits(), bits);
        // Higher bits are ignored.
        assert_eq!(QoS::from_bits(bits | 0xFC), qos[i]);
        assert_eq!(TopicIdType::from_bits(bits | 0xFC), types[i]);
    }
}
