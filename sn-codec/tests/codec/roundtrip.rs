//! Property tests: every encodable packet round-trips, `encoded_len` is what `encode` writes,
//! `decode` never panics on arbitrary or mutated input, and decode → encode → decode is stable.
//!
//! Packets borrow their variable-length fields, so the strategies generate an owned mirror
//! ([`Owned`]) whose `Vec<u8>` fields a [`Packet`] then borrows.

use std::collections::BTreeSet;

use proptest::collection::vec;
use proptest::prelude::*;
use sn_codec::{
    Connect, DecodeError, Encapsulated, EncodeError, MsgType, Packet, Publish, QoS, Register,
    ReturnCode, Subscribe, TopicRef, Unsubscribe, WillTopic, encode_encapsulated,
};

// ------------------------------------------------------------------------------- owned mirror

/// A topic reference owning its name.
#[derive(Debug, Clone)]
enum OwnedTopic {
    Normal(u16),
    Predefined(u16),
    Short([u8; 2]),
    Name(Vec<u8>),
}

impl OwnedTopic {
    fn as_ref(&self) -> TopicRef<'_> {
        match self {
            Self::Normal(id) => TopicRef::Normal(*id),
            Self::Predefined(id) => TopicRef::Predefined(*id),
            Self::Short(s) => TopicRef::Short(*s),
            Self::Name(n) => TopicRef::Name(n),
        }
    }
}

/// An owned copy of every encodable [`Packet`] (one arm per variant).
#[derive(Debug, Clone)]
enum Owned {
    Advertise {
        gw_id: u8,
        duration: u16,
    },
    SearchGw {
        radius: u8,
    },
    GwInfo {
        gw_id: u8,
        gw_addr: Vec<u8>,
    },
    Connect {
        will: bool,
        clean_session: bool,
        duration: u16,
        client_id: Vec<u8>,
    },
    Connack(ReturnCode),
    WillTopicReq,
    WillTopic(Option<(QoS, bool, Vec<u8>)>),
    WillMsgReq,
    WillMsg(Vec<u8>),
    Register {
        topic_id: u16,
        msg_id: u16,
        topic_name: Vec<u8>,
    },
    Regack {
        topic_id: u16,
        msg_id: u16,
        return_code: ReturnCode,
    },
    Publish {
        dup: bool,
        qos: QoS,
        retain: bool,
        topic: OwnedTopic,
        msg_id: u16,
        data: Vec<u8>,
    },
    Puback {
        topic_id: u16,
        msg_id: u16,
        return_code: ReturnCode,
    },
    Pubcomp(u16),
    Pubrec(u16),
    Pubrel(u16),
    Subscribe {
        dup: bool,
        qos: QoS,
        msg_id: u16,
        topic: OwnedTopic,
    },
    Suback {
        qos: QoS,
        topic_id: u16,
        msg_id: u16,
        return_code: ReturnCode,
    },
    Unsubscribe {
        msg_id: u16,
        topic: OwnedTopic,
    },
    Unsuback(u16),
    Pingreq(Option<Vec<u8>>),
    Pingresp,
    Disconnect(Option<u16>),
    WillTopicUpd(Option<(QoS, bool, Vec<u8>)>),
    WillTopicResp(ReturnCode),
    WillMsgUpd(Vec<u8>),
    WillMsgResp(ReturnCode),
    Encapsulated {
        radius: u8,
        wnid: Vec<u8>,
        inner: Vec<u8>,
    },
}

fn will_topic(t: &Option<(QoS, bool, Vec<u8>)>) -> Option<WillTopic<'_>> {
    t.as_ref().map(|(qos, retain, topic)| WillTopic {
        qos: *qos,
        retain: *retain,
        topic,
    })
}

impl Owned {
    fn packet(&self) -> Packet<'_> {
        match self {
            Self::Advertise { gw_id, duration } => Packet::Advertise {
                gw_id: *gw_id,
                duration: *duration,
            },
            Self::SearchGw { radius } => Packet::SearchGw { radius: *radius },
            Self::GwInfo { gw_id, gw_addr } => Packet::GwInfo {
                gw_id: *gw_id,
                gw_addr,
            },
            Self::Connect {
                will,
                clean_session,
                duration,
                client_id,
            } => Packet::Connect(Connect {
                will: *will,
                clean_session: *clean_session,
                duration: *duration,
                client_id,
            }),
            Self::Connack(rc) => Packet::Connack { return_code: *rc },
            Self::WillTopicReq => Packet::WillTopicReq,
            Self::WillTopic(t) => Packet::WillTopic(will_topic(t)),
            Self::WillMsgReq => Packet::WillMsgReq,
            Self::WillMsg(msg) => Packet::WillMsg { msg },
            Self::Register {
                topic_id,
                msg_id,
                topic_name,
            } => Packet::Register(Register {
                topic_id: *topic_id,
                msg_id: *msg_id,
                topic_name,
            }),
            Self::Regack {
                topic_id,
                msg_id,
                return_code,
            } => Packet::Regack {
                topic_id: *topic_id,
                msg_id: *msg_id,
                return_code: *return_code,
            },
            Self::Publish {
                dup,
                qos,
                retain,
                topic,
                msg_id,
                data,
            } => Packet::Publish(Publish {
                dup: *dup,
                qos: *qos,
                retain: *retain,
                topic: topic.as_ref(),
                msg_id: *msg_id,
                data,
            }),
            Self::Puback {
                topic_id,
                msg_id,
                return_code,
            } => Packet::Puback {
                topic_id: *topic_id,
                msg_id: *msg_id,
                return_code: *return_code,
            },
            Self::Pubcomp(msg_id) => Packet::Pubcomp { msg_id: *msg_id },
            Self::Pubrec(msg_id) => Packet::Pubrec { msg_id: *msg_id },
            Self::Pubrel(msg_id) => Packet::Pubrel { msg_id: *msg_id },
            Self::Subscribe {
                dup,
                qos,
                msg_id,
                topic,
            } => Packet::Subscribe(Subscribe {
                dup: *dup,
                qos: *qos,
                msg_id: *msg_id,
                topic: topic.as_ref(),
            }),
            Self::Suback {
                qos,
                topic_id,
                msg_id,
                return_code,
            } => Packet::Suback {
                qos: *qos,
                topic_id: *topic_id,
                msg_id: *msg_id,
                return_code: *return_code,
            },
            Self::Unsubscribe { msg_id, topic } => Packet::Unsubscribe(Unsubscribe {
                msg_id: *msg_id,
                topic: topic.as_ref(),
            }),
            Self::Unsuback(msg_id) => Packet::Unsuback { msg_id: *msg_id },
            Self::Pingreq(id) => Packet::Pingreq {
                client_id: id.as_deref(),
            },
            Self::Pingresp => Packet::Pingresp,
            Self::Disconnect(duration) => Packet::Disconnect {
                duration: *duration,
            },
            Self::WillTopicUpd(t) => Packet::WillTopicUpd(will_topic(t)),
            Self::WillTopicResp(rc) => Packet::WillTopicResp { return_code: *rc },
            Self::WillMsgUpd(msg) => Packet::WillMsgUpd { msg },
            Self::WillMsgResp(rc) => Packet::WillMsgResp { return_code: *rc },
            Self::Encapsulated {
                radius,
                wnid,
                inner,
            } => Packet::Encapsulated(Encapsulated {
                radius: *radius,
                wnid,
                inner,
            }),
        }
    }
}

// ------------------------------------------------------------------------------- strategies

/// Variable-length field contents: mostly short, often around the 255/258 boundary, sometimes
/// well into the long form.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..24),
        2 => vec(any::<u8>(), 240..264),
        1 => vec(any::<u8>(), 0..1200),
    ]
}

fn non_empty_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => vec(any::<u8>(), 1..24),
        2 => vec(any::<u8>(), 240..264),
        1 => vec(any::<u8>(), 1..1200),
    ]
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::MinusOne),
        Just(QoS::Zero),
        Just(QoS::One),
        Just(QoS::Two)
    ]
}

fn rc() -> impl Strategy<Value = ReturnCode> {
    any::<u8>().prop_map(ReturnCode::from_code)
}

/// PUBLISH topics: always 2 octets on the wire, never a name.
fn publish_topic() -> impl Strategy<Value = OwnedTopic> {
    prop_oneof![
        any::<u16>().prop_map(OwnedTopic::Normal),
        any::<u16>().prop_map(OwnedTopic::Predefined),
        any::<[u8; 2]>().prop_map(OwnedTopic::Short),
    ]
}

/// SUBSCRIBE / UNSUBSCRIBE topics: never a normal id.
fn subscribe_topic() -> impl Strategy<Value = OwnedTopic> {
    prop_oneof![
        bytes().prop_map(OwnedTopic::Name),
        any::<u16>().prop_map(OwnedTopic::Predefined),
        any::<[u8; 2]>().prop_map(OwnedTopic::Short),
    ]
}

fn will() -> impl Strategy<Value = Option<(QoS, bool, Vec<u8>)>> {
    prop::option::of((qos(), any::<bool>(), bytes()))
}

/// Every encodable packet except Encapsulated.
fn plain_packet() -> BoxedStrategy<Owned> {
    prop_oneof![
        (any::<u8>(), any::<u16>())
            .prop_map(|(gw_id, duration)| Owned::Advertise { gw_id, duration }),
        any::<u8>().prop_map(|radius| Owned::SearchGw { radius }),
        (any::<u8>(), bytes()).prop_map(|(gw_id, gw_addr)| Owned::GwInfo { gw_id, gw_addr }),
        (any::<bool>(), any::<bool>(), any::<u16>(), bytes()).prop_map(
            |(will, clean_session, duration, client_id)| Owned::Connect {
                will,
                clean_session,
                duration,
                client_id
            }
        ),
        rc().prop_map(Owned::Connack),
        Just(Owned::WillTopicReq),
        will().prop_map(Owned::WillTopic),
        Just(Owned::WillMsgReq),
        bytes().prop_map(Owned::WillMsg),
        (any::<u16>(), any::<u16>(), bytes()).prop_map(|(topic_id, msg_id, topic_name)| {
            Owned::Register {
                topic_id,
                msg_id,
                topic_name,
            }
        }),
        (any::<u16>(), any::<u16>(), rc()).prop_map(|(topic_id, msg_id, return_code)| {
            Owned::Regack {
                topic_id,
                msg_id,
                return_code,
            }
        }),
        (
            any::<bool>(),
            qos(),
            any::<bool>(),
            publish_topic(),
            any::<u16>(),
            bytes()
        )
            .prop_map(|(dup, qos, retain, topic, msg_id, data)| Owned::Publish {
                dup,
                qos,
                retain,
                topic,
                msg_id,
                data
            }),
        (any::<u16>(), any::<u16>(), rc()).prop_map(|(topic_id, msg_id, return_code)| {
            Owned::Puback {
                topic_id,
                msg_id,
                return_code,
            }
        }),
        any::<u16>().prop_map(Owned::Pubcomp),
        any::<u16>().prop_map(Owned::Pubrec),
        any::<u16>().prop_map(Owned::Pubrel),
        (any::<bool>(), qos(), any::<u16>(), subscribe_topic()).prop_map(
            |(dup, qos, msg_id, topic)| Owned::Subscribe {
                dup,
                qos,
                msg_id,
                topic
            }
        ),
        (qos(), any::<u16>(), any::<u16>(), rc()).prop_map(
            |(qos, topic_id, msg_id, return_code)| Owned::Suback {
                qos,
                topic_id,
                msg_id,
                return_code
            }
        ),
        (any::<u16>(), subscribe_topic())
            .prop_map(|(msg_id, topic)| Owned::Unsubscribe { msg_id, topic }),
        any::<u16>().prop_map(Owned::Unsuback),
        // Some(empty) encodes exactly like None: generate non-empty ids only.
        prop::option::of(non_empty_bytes()).prop_map(Owned::Pingreq),
        Just(Owned::Pingresp),
        prop::option::of(any::<u16>()).prop_map(Owned::Disconnect),
        will().prop_map(Owned::WillTopicUpd),
        rc().prop_map(Owned::WillTopicResp),
        bytes().prop_map(Owned::WillMsgUpd),
        rc().prop_map(Owned::WillMsgResp),
    ]
    .boxed()
}

/// Encapsulated with an arbitrary (not necessarily valid) inner message of at least 2 octets.
fn encapsulated() -> impl Strategy<Value = Owned> {
    (0u8..=3, vec(any::<u8>(), 0..=252), vec(any::<u8>(), 2..300)).prop_map(
        |(radius, wnid, inner)| Owned::Encapsulated {
            radius,
            wnid,
            inner,
        },
    )
}

/// Any encodable packet.
fn any_packet() -> impl Strategy<Value = Owned> {
    prop_oneof![28 => plain_packet(), 1 => encapsulated()]
}

fn encode_to_vec(p: &Packet<'_>) -> Vec<u8> {
    let len = p.encoded_len().unwrap();
    let mut buf = vec![0u8; len];
    assert_eq!(p.encode(&mut buf), Ok(len));
    buf
}

/// Datagrams likely to get past the header: a MsgType (valid or not), a body, and a Length
/// field that is right in the short or long form, or off by a little; one in five is wrapped
/// in an encapsulation header.
fn plausible_datagram() -> impl Strategy<Value = Vec<u8>> {
    let codes: Vec<u8> = MsgType::ALL.iter().map(|t| t.code()).collect();
    let code = prop_oneof![6 => prop::sample::select(codes), 1 => any::<u8>()];
    // Most fixed-size bodies are 0..=6 octets.
    let body = prop_oneof![
        4 => vec(any::<u8>(), 0..7),
        1 => noise(7..300),
    ];
    // 0, 1: correct and canonical; 2: correct long form; 3: Length off by -2..=+2.
    let message = (code, body, 0u8..4, -2i32..=2).prop_map(|(code, body, form, off)| {
        let short_total = body.len() + 2;
        let long = form == 2 || short_total > 255;
        let total = if long { body.len() + 4 } else { short_total };
        let declared = if form == 3 {
            (total as i32 + off).max(0) as usize
        } else {
            total
        };
        let mut out = Vec::with_capacity(total);
        if long {
            out.push(0x01);
            out.extend_from_slice(&u16::try_from(declared.min(65535)).unwrap().to_be_bytes());
        } else {
            out.push(u8::try_from(declared.min(255)).unwrap());
        }
        out.push(code);
        out.extend_from_slice(&body);
        out
    });
    let encapsulated =
        (any::<u8>(), vec(any::<u8>(), 0..12), message.clone()).prop_map(|(ctrl, wnid, inner)| {
            let mut out = vec![u8::try_from(wnid.len() + 3).unwrap(), 0xFE, ctrl];
            out.extend_from_slice(&wnid);
            out.extend_from_slice(&inner);
            out
        });
    prop_oneof![4 => message, 1 => encapsulated]
}

/// Random octets, expanded from a seed: much cheaper to generate than a
/// `vec(any::<u8>(), ..)` in a debug build, which matters at 100 000 cases. Shrinks by length.
fn noise(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    (len, any::<u64>()).prop_map(|(len, mut state)| {
        // SplitMix64.
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&next().to_le_bytes());
        }
        out.truncate(len);
        out
    })
}

/// A mutation of a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the octet at (index mod len).
    Set(usize, u8),
    /// Flip one bit of the octet at (index mod len).
    Flip(usize, u8),
    /// Drop everything from (index mod len) on.
    Truncate(usize),
    /// Append octets.
    Extend(Vec<u8>),
    /// Remove the octet at (index mod len).
    Remove(usize),
    /// Insert an octet before (index mod (len + 1)).
    Insert(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => vec(any::<u8>(), 1..4).prop_map(Mutation::Extend),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match m {
        Mutation::Set(i, b) if len > 0 => bytes[i % len] = *b,
        Mutation::Flip(i, bit) if len > 0 => bytes[i % len] ^= 1 << bit,
        Mutation::Truncate(i) if len > 0 => bytes.truncate(i % len),
        Mutation::Extend(tail) => bytes.extend_from_slice(tail),
        Mutation::Remove(i) if len > 0 => {
            bytes.remove(i % len);
        }
        Mutation::Insert(i, b) => bytes.insert(i % (len + 1), *b),
        _ => {}
    }
}

/// Whatever decodes must re-encode, and the re-encoding must decode to the same packet.
fn assert_stable(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(p) = Packet::decode(bytes) else {
        return Ok(());
    };
    let again = p.encoded_len().map(|len| {
        let mut buf = vec![0u8; len];
        let written = p.encode(&mut buf);
        (buf, written)
    });
    let Ok((reencoded, written)) = again else {
        return Err(TestCaseError::fail(format!(
            "{p:?} decoded but cannot be encoded: {again:?}"
        )));
    };
    prop_assert_eq!(written, Ok(reencoded.len()));
    prop_assert_eq!(Packet::decode(&reencoded), Ok(p));
    // Only the Length form can shrink a message; flags normalisation never changes its size.
    prop_assert!(reencoded.len() <= bytes.len());
    if bytes[0] != 0x01 || matches!(p, Packet::Encapsulated(_)) {
        prop_assert_eq!(reencoded.len(), bytes.len());
    }
    // Re-encoding is a fixed point.
    prop_assert_eq!(
        encode_to_vec(&Packet::decode(&reencoded).unwrap()),
        reencoded
    );
    Ok(())
}

// ------------------------------------------------------------------------------- properties

/// Cases per property: `PROPTEST_CASES` when it is set (and a number), else `default`.
/// `ProptestConfig::default()` reads the variable, but `with_cases` would override it.
fn cases_or(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases_or(4_000)))]

    /// `decode(encode(p)) == p` and `encoded_len == written` for every message type.
    #[test]
    fn every_packet_round_trips(owned in any_packet()) {
        let p = owned.packet();
        let len = p.encoded_len().unwrap();
        let mut buf = vec![0u8; len + 16];
        let written = p.encode(&mut buf).unwrap();
        prop_assert_eq!(written, len);
        prop_assert_eq!(Packet::decode(&buf[..written]), Ok(p));
        prop_assert!(buf[written..].iter().all(|&b| b == 0), "wrote past encoded_len");
    }

    /// The encoder picks the short Length form exactly when the total is at most 255.
    #[test]
    fn the_short_form_is_used_exactly_up_to_255(owned in plain_packet()) {
        let p = owned.packet();
        let bytes = encode_to_vec(&p);
        if bytes.len() <= 255 {
            prop_assert_eq!(usize::from(bytes[0]), bytes.len());
            prop_assert_eq!(bytes[1], p.msg_type().code());
        } else {
            prop_assert_eq!(bytes[0], 0x01);
            prop_assert_eq!(usize::from(u16::from_be_bytes([bytes[1], bytes[2]])), bytes.len());
            prop_assert_eq!(bytes[3], p.msg_type().code());
            prop_assert!(bytes.len() >= 258, "no long form below 258: {}", bytes.len());
        }
    }

    /// Exactly `encoded_len` octets suffice; one fewer is BufferTooSmall and writes nothing.
    #[test]
    fn a_buffer_one_octet_short_is_rejected_untouched(owned in any_packet()) {
        let p = owned.packet();
        let len = p.encoded_len().unwrap();
        let mut exact = vec![0xAAu8; len];
        prop_assert_eq!(p.encode(&mut exact), Ok(len));
        let mut short = vec![0xAAu8; len - 1];
        prop_assert_eq!(
            p.encode(&mut short),
            Err(EncodeError::BufferTooSmall { needed: len, available: len - 1 })
        );
        prop_assert!(short.iter().all(|&b| b == 0xAA));
    }

    /// `encode_encapsulated` writes the same octets as wrapping a separately encoded message,
    /// and `decode_inner` gives the message back.
    #[test]
    fn encapsulation_round_trips(
        inner in plain_packet(),
        radius in 0u8..=3,
        wnid in vec(any::<u8>(), 0..=252),
    ) {
        let inner = inner.packet();
        let inner_bytes = encode_to_vec(&inner);
        let wrapped = Packet::Encapsulated(Encapsulated { radius, wnid: &wnid, inner: &inner_bytes });
        let expected = encode_to_vec(&wrapped);
        prop_assert_eq!(expected.len(), 3 + wnid.len() + inner_bytes.len());

        let mut buf = vec![0u8; expected.len()];
        prop_assert_eq!(encode_encapsulated(radius, &wnid, &inner, &mut buf), Ok(expected.len()));
        prop_assert_eq!(&buf, &expected);

        let Ok(Packet::Encapsulated(e)) = Packet::decode(&buf) else {
            return Err(TestCaseError::fail("not decoded as Encapsulated"));
        };
        prop_assert_eq!(e.radius, radius);
        prop_assert_eq!(e.wnid, &wnid[..]);
        prop_assert_eq!(e.decode_inner(), Ok(inner));
    }

    /// Display is one line for every packet.
    #[test]
    fn display_is_a_single_line(owned in any_packet()) {
        let text = owned.packet().to_string();
        prop_assert!(!text.contains('\n') && !text.contains('\r'), "{}", text);
        prop_assert!(text.starts_with(owned.packet().msg_type().name()), "{}", text);
    }

    /// Any datagram that decodes re-encodes to octets that decode to the same packet.
    #[test]
    fn decode_encode_decode_is_stable(bytes in plausible_datagram()) {
        assert_stable(&bytes)?;
    }

    /// Mutated valid encodings never panic the decoder, and whatever still decodes is stable.
    #[test]
    fn decoding_mutated_encodings_never_panics(
        owned in any_packet(),
        mutations in vec(mutation(), 1..4),
    ) {
        let mut bytes = encode_to_vec(&owned.packet());
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let _ = Packet::decode(&bytes).map(|p| p.to_string()).map_err(|e| e.to_string());
        if let Ok(Packet::Encapsulated(e)) = Packet::decode(&bytes) {
            let _ = e.decode_inner();
        }
        assert_stable(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases_or(100_000)))]

    /// `decode` never panics: 100 000 cases (unless `PROPTEST_CASES` says otherwise) of raw and
    /// plausible datagrams up to ~300 octets.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        bytes in prop_oneof![noise(0..300), plausible_datagram()],
    ) {
        match Packet::decode(&bytes) {
            Ok(Packet::Encapsulated(e)) => {
                let _ = e.decode_inner();
                let _ = e.to_string();
            }
            Ok(p) => {
                let _ = p.to_string();
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        let _ = Encapsulated::decode(&bytes);
        assert_stable(&bytes)?;
    }
}

// ------------------------------------------------------------------------------- generator coverage

#[test]
fn the_generators_cover_every_message_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = any_packet();
    let mut seen = BTreeSet::new();
    for _ in 0..3_000 {
        let owned = strategy.new_tree(&mut runner).unwrap().current();
        seen.insert(owned.packet().msg_type());
    }
    let all: BTreeSet<MsgType> = MsgType::ALL.iter().copied().collect();
    assert_eq!(seen, all);
}

#[test]
fn the_plausible_datagrams_mostly_decode_or_fail_past_the_header() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = plausible_datagram();
    let (mut ok, mut header_errors) = (0, 0);
    for _ in 0..5_000 {
        let bytes = strategy.new_tree(&mut runner).unwrap().current();
        match Packet::decode(&bytes) {
            Ok(_) => ok += 1,
            Err(
                DecodeError::Truncated { .. }
                | DecodeError::TrailingBytes { .. }
                | DecodeError::InvalidLength { .. },
            ) => header_errors += 1,
            Err(_) => {}
        }
    }
    // The stability property is only as good as the share of datagrams that decode.
    assert!(ok > 1_500, "only {ok} of 5000 decoded");
    assert!(
        header_errors > 200,
        "only {header_errors} of 5000 had a bad Length"
    );
}
