//! [`Packet`]: every MQTT-SN v1.2 message, with decode, encode and a one-line `Display`.

use core::fmt;

use crate::cursor::Writer;
use crate::display::write_text;
use crate::encap::Encapsulated;
use crate::error::{DecodeError, EncodeError};
use crate::header;
use crate::packets::{Connect, Publish, Register, Subscribe, Unsubscribe, WillTopic};
use crate::types::{MsgType, QoS, ReturnCode};

/// One MQTT-SN v1.2 message, borrowing its variable-length fields from the decoded datagram.
///
/// Messages with one or two fields are variants with named fields; the others wrap a struct
/// whose documentation shows the wire format. Optional trailing fields are `Option`s, recognised
/// purely by length (PINGREQ ClientId, DISCONNECT Duration, the empty WILLTOPIC form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Packet<'a> {
    /// `05 00 | GwId | Duration(2)`: a gateway announces itself; Duration = seconds until the next.
    Advertise {
        /// The gateway's id.
        gw_id: u8,
        /// Seconds until the next ADVERTISE (T_ADV).
        duration: u16,
    },
    /// `03 01 | Radius`: a client looks for gateways.
    SearchGw {
        /// Broadcast radius in hops (0 = whole network).
        radius: u8,
    },
    /// `Len 02 | GwId | GwAdd(n)`: answer to SEARCHGW; GwAdd only when a client answers.
    GwInfo {
        /// The gateway's id.
        gw_id: u8,
        /// The gateway's address (opaque; empty when the gateway itself answers).
        gw_addr: &'a [u8],
    },
    /// A client opens a session.
    Connect(Connect<'a>),
    /// `03 05 | ReturnCode`.
    Connack {
        /// Whether the connection was accepted.
        return_code: ReturnCode,
    },
    /// `02 06`: the gateway asks for the Will topic.
    WillTopicReq,
    /// The client's Will topic; `None` is the empty form `02 07`.
    WillTopic(Option<WillTopic<'a>>),
    /// `02 08`: the gateway asks for the Will message.
    WillMsgReq,
    /// `Len 09 | WillMsg(n)`.
    WillMsg {
        /// The Will message (binary).
        msg: &'a [u8],
    },
    /// Topic registration (either direction).
    Register(Register<'a>),
    /// `07 0B | TopicId(2) | MsgId(2) | ReturnCode`.
    Regack {
        /// The assigned topic id.
        topic_id: u16,
        /// The REGISTER's MsgId.
        msg_id: u16,
        /// Whether the registration was accepted.
        return_code: ReturnCode,
    },
    /// An application message.
    Publish(Publish<'a>),
    /// `07 0D | TopicId(2) | MsgId(2) | ReturnCode`.
    Puback {
        /// The PUBLISH's topic id.
        topic_id: u16,
        /// The PUBLISH's MsgId.
        msg_id: u16,
        /// Accepted, or why the PUBLISH was rejected.
        return_code: ReturnCode,
    },
    /// `04 0E | MsgId(2)`: QoS 2, last step.
    Pubcomp {
        /// The PUBLISH's MsgId.
        msg_id: u16,
    },
    /// `04 0F | MsgId(2)`: QoS 2, first answer.
    Pubrec {
        /// The PUBLISH's MsgId.
        msg_id: u16,
    },
    /// `04 10 | MsgId(2)`: QoS 2, release.
    Pubrel {
        /// The PUBLISH's MsgId.
        msg_id: u16,
    },
    /// A subscription request.
    Subscribe(Subscribe<'a>),
    /// `08 13 | Flags | TopicId(2) | MsgId(2) | ReturnCode`.
    Suback {
        /// The granted QoS.
        qos: QoS,
        /// The topic id for a concrete topic name; 0 for wildcards and short names.
        topic_id: u16,
        /// The SUBSCRIBE's MsgId.
        msg_id: u16,
        /// Accepted, or why not.
        return_code: ReturnCode,
    },
    /// An unsubscription request.
    Unsubscribe(Unsubscribe<'a>),
    /// `04 15 | MsgId(2)`.
    Unsuback {
        /// The UNSUBSCRIBE's MsgId.
        msg_id: u16,
    },
    /// `02 16` keep-alive, or `Len 16 | ClientId(n)` from a sleeping client waking up.
    Pingreq {
        /// Present when a sleeping client wakes up to fetch its messages.
        client_id: Option<&'a [u8]>,
    },
    /// `02 17`.
    Pingresp,
    /// `02 18`, or `04 18 | Duration(2)` from a client going to sleep.
    Disconnect {
        /// Sleep duration in seconds when the client goes to sleep.
        duration: Option<u16>,
    },
    /// The client replaces its Will topic; `None` (`02 1A`) deletes the Will.
    WillTopicUpd(Option<WillTopic<'a>>),
    /// `03 1B | ReturnCode`.
    WillTopicResp {
        /// Whether the update was accepted.
        return_code: ReturnCode,
    },
    /// `Len 1C | WillMsg(n)`.
    WillMsgUpd {
        /// The new Will message.
        msg: &'a [u8],
    },
    /// `03 1D | ReturnCode`.
    WillMsgResp {
        /// Whether the update was accepted.
        return_code: ReturnCode,
    },
    /// A message to or from a wireless node, relayed by a forwarder.
    Encapsulated(Encapsulated<'a>),
}

/// Decodes one whole datagram; same as [`Packet::decode`].
pub fn decode(bytes: &[u8]) -> Result<Packet<'_>, DecodeError> {
    Packet::decode(bytes)
}

fn fixed<const N: usize>(msg_type: MsgType, body: &[u8]) -> Result<[u8; N], DecodeError> {
    <[u8; N]>::try_from(body).map_err(|_| DecodeError::InvalidBodyLength {
        msg_type,
        len: body.len(),
    })
}

/// A known encoder mistake [`Packet::decode_tolerant`] accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthQuirk {
    /// Long Length form, the declared length two less than the datagram.
    LongFormShortByTwo,
}

impl<'a> Packet<'a> {
    /// Decodes one whole datagram (or one whole frame on a serial link).
    ///
    /// Never panics and never allocates; variable-length fields borrow from `bytes`. The declared
    /// Length must equal `bytes.len()` exactly, except for an Encapsulated message, whose Length
    /// covers only its own header.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        match bytes {
            [len, 0xFE, ..] if *len != 0x01 => {
                return Encapsulated::decode(bytes).map(Packet::Encapsulated);
            }
            [0x01, _, _, 0xFE, ..] => return Err(DecodeError::LongEncapsulationHeader),
            _ => {}
        }
        let h = header::decode(bytes)?;
        let (type_octet, body) = bytes
            .get(h.len_octets..)
            .and_then(<[u8]>::split_first)
            .ok_or(DecodeError::Truncated {
                needed: h.total,
                actual: bytes.len(),
            })?;
        let msg_type =
            MsgType::from_code(*type_octet).ok_or(DecodeError::UnknownMsgType(*type_octet))?;
        Self::decode_body(msg_type, body)
    }

    /// [`Packet::decode`], also accepting one known encoder mistake: a message written in the
    /// long Length form whose Length is two less than the datagram (a widely used mote library
    /// does this for a 256-octet total, e.g. `01 00 FF 0C` + 253 octets for a QoS 1 PUBLISH with
    /// a 248-octet payload). Such a message is decoded whole and reported as
    /// [`LengthQuirk::LongFormShortByTwo`]; every other length mismatch is still an error.
    pub fn decode_tolerant(bytes: &'a [u8]) -> Result<(Self, Option<LengthQuirk>), DecodeError> {
        match Self::decode(bytes) {
            Err(DecodeError::TrailingBytes { declared, actual })
                if bytes.first() == Some(&0x01) && declared.checked_add(2) == Some(actual) =>
            {
                let (type_octet, body) = bytes
                    .get(3..)
                    .and_then(<[u8]>::split_first)
                    .ok_or(DecodeError::Truncated { needed: 4, actual })?;
                let msg_type = MsgType::from_code(*type_octet)
                    .ok_or(DecodeError::UnknownMsgType(*type_octet))?;
                if msg_type == MsgType::Encapsulated {
                    return Err(DecodeError::LongEncapsulationHeader);
                }
                let packet = Self::decode_body(msg_type, body)?;
                Ok((packet, Some(LengthQuirk::LongFormShortByTwo)))
            }
            other => other.map(|p| (p, None)),
        }
    }

    fn decode_body(msg_type: MsgType, body: &'a [u8]) -> Result<Self, DecodeError> {
        let rc = |b: u8| ReturnCode::from_code(b);
        Ok(match msg_type {
            MsgType::Advertise => {
                let [gw_id, hi, lo] = fixed(msg_type, body)?;
                Packet::Advertise {
                    gw_id,
                    duration: u16::from_be_bytes([hi, lo]),
                }
            }
            MsgType::SearchGw => {
                let [radius] = fixed(msg_type, body)?;
                Packet::SearchGw { radius }
            }
            MsgType::GwInfo => match body.split_first() {
                Some((&gw_id, gw_addr)) => Packet::GwInfo { gw_id, gw_addr },
                None => return Err(DecodeError::InvalidBodyLength { msg_type, len: 0 }),
            },
            MsgType::Connect => Packet::Connect(Connect::decode(body)?),
            MsgType::Connack => Packet::Connack {
                return_code: rc(fixed::<1>(msg_type, body)?[0]),
            },
            MsgType::WillTopicReq => {
                fixed::<0>(msg_type, body)?;
                Packet::WillTopicReq
            }
            MsgType::WillTopic => Packet::WillTopic(WillTopic::decode(body)),
            MsgType::WillMsgReq => {
                fixed::<0>(msg_type, body)?;
                Packet::WillMsgReq
            }
            MsgType::WillMsg => Packet::WillMsg { msg: body },
            MsgType::Register => Packet::Register(Register::decode(body)?),
            MsgType::Regack | MsgType::Puback => {
                let [t1, t2, m1, m2, code] = fixed(msg_type, body)?;
                let (topic_id, msg_id) =
                    (u16::from_be_bytes([t1, t2]), u16::from_be_bytes([m1, m2]));
                if msg_type == MsgType::Regack {
                    Packet::Regack {
                        topic_id,
                        msg_id,
                        return_code: rc(code),
                    }
                } else {
                    Packet::Puback {
                        topic_id,
                        msg_id,
                        return_code: rc(code),
                    }
                }
            }
            MsgType::Publish => Packet::Publish(Publish::decode(body)?),
            MsgType::Pubcomp | MsgType::Pubrec | MsgType::Pubrel | MsgType::Unsuback => {
                let msg_id = u16::from_be_bytes(fixed(msg_type, body)?);
                match msg_type {
                    MsgType::Pubcomp => Packet::Pubcomp { msg_id },
                    MsgType::Pubrec => Packet::Pubrec { msg_id },
                    MsgType::Pubrel => Packet::Pubrel { msg_id },
                    _ => Packet::Unsuback { msg_id },
                }
            }
            MsgType::Subscribe => Packet::Subscribe(Subscribe::decode(body)?),
            MsgType::Suback => {
                let [flags, t1, t2, m1, m2, code] = fixed(msg_type, body)?;
                Packet::Suback {
                    qos: crate::Flags::from_byte(flags).qos,
                    topic_id: u16::from_be_bytes([t1, t2]),
                    msg_id: u16::from_be_bytes([m1, m2]),
                    return_code: rc(code),
                }
            }
            MsgType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(body)?),
            MsgType::Pingreq => Packet::Pingreq {
                client_id: (!body.is_empty()).then_some(body),
            },
            MsgType::Pingresp => {
                fixed::<0>(msg_type, body)?;
                Packet::Pingresp
            }
            MsgType::Disconnect => match body {
                [] => Packet::Disconnect { duration: None },
                [hi, lo] => Packet::Disconnect {
                    duration: Some(u16::from_be_bytes([*hi, *lo])),
                },
                _ => {
                    return Err(DecodeError::InvalidBodyLength {
                        msg_type,
                        len: body.len(),
                    });
                }
            },
            MsgType::WillTopicUpd => Packet::WillTopicUpd(WillTopic::decode(body)),
            MsgType::WillTopicResp => Packet::WillTopicResp {
                return_code: rc(fixed::<1>(msg_type, body)?[0]),
            },
            MsgType::WillMsgUpd => Packet::WillMsgUpd { msg: body },
            MsgType::WillMsgResp => Packet::WillMsgResp {
                return_code: rc(fixed::<1>(msg_type, body)?[0]),
            },
            // Reached only through a long-form header, which Packet::decode rejects first.
            MsgType::Encapsulated => return Err(DecodeError::LongEncapsulationHeader),
        })
    }

    /// The message type.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Packet::Advertise { .. } => MsgType::Advertise,
            Packet::SearchGw { .. } => MsgType::SearchGw,
            Packet::GwInfo { .. } => MsgType::GwInfo,
            Packet::Connect(_) => MsgType::Connect,
            Packet::Connack { .. } => MsgType::Connack,
            Packet::WillTopicReq => MsgType::WillTopicReq,
            Packet::WillTopic(_) => MsgType::WillTopic,
            Packet::WillMsgReq => MsgType::WillMsgReq,
            Packet::WillMsg { .. } => MsgType::WillMsg,
            Packet::Register(_) => MsgType::Register,
            Packet::Regack { .. } => MsgType::Regack,
            Packet::Publish(_) => MsgType::Publish,
            Packet::Puback { .. } => MsgType::Puback,
            Packet::Pubcomp { .. } => MsgType::Pubcomp,
            Packet::Pubrec { .. } => MsgType::Pubrec,
            Packet::Pubrel { .. } => MsgType::Pubrel,
            Packet::Subscribe(_) => MsgType::Subscribe,
            Packet::Suback { .. } => MsgType::Suback,
            Packet::Unsubscribe(_) => MsgType::Unsubscribe,
            Packet::Unsuback { .. } => MsgType::Unsuback,
            Packet::Pingreq { .. } => MsgType::Pingreq,
            Packet::Pingresp => MsgType::Pingresp,
            Packet::Disconnect { .. } => MsgType::Disconnect,
            Packet::WillTopicUpd(_) => MsgType::WillTopicUpd,
            Packet::WillTopicResp { .. } => MsgType::WillTopicResp,
            Packet::WillMsgUpd { .. } => MsgType::WillMsgUpd,
            Packet::WillMsgResp { .. } => MsgType::WillMsgResp,
            Packet::Encapsulated(_) => MsgType::Encapsulated,
        }
    }

    /// Octets of the variable part (after Length and MsgType); `Err` for an unencodable message.
    fn body_len(&self) -> Result<usize, EncodeError> {
        Ok(match self {
            Packet::Advertise { .. } => 3,
            Packet::SearchGw { .. } => 1,
            Packet::GwInfo { gw_addr, .. } => gw_addr.len().saturating_add(1),
            Packet::Connect(c) => c.body_len(),
            Packet::Connack { .. } | Packet::WillTopicResp { .. } | Packet::WillMsgResp { .. } => 1,
            Packet::WillTopicReq | Packet::WillMsgReq | Packet::Pingresp => 0,
            Packet::WillTopic(t) | Packet::WillTopicUpd(t) => WillTopic::body_len(t),
            Packet::WillMsg { msg } | Packet::WillMsgUpd { msg } => msg.len(),
            Packet::Register(r) => r.body_len(),
            Packet::Regack { .. } | Packet::Puback { .. } => 5,
            Packet::Publish(p) => {
                p.check()?;
                p.body_len()
            }
            Packet::Pubcomp { .. }
            | Packet::Pubrec { .. }
            | Packet::Pubrel { .. }
            | Packet::Unsuback { .. } => 2,
            Packet::Subscribe(s) => {
                s.check()?;
                s.body_len()
            }
            Packet::Suback { .. } => 6,
            Packet::Unsubscribe(u) => {
                u.check()?;
                u.body_len()
            }
            Packet::Pingreq { client_id } => client_id.map_or(0, <[u8]>::len),
            Packet::Disconnect { duration } => duration.map_or(0, |_| 2),
            // Unused: encoded_len and encode handle the encapsulation header themselves.
            Packet::Encapsulated(e) => e.encoded_len(),
        })
    }

    /// Octets [`Packet::encode`] writes: the short Length form whenever the total is ≤ 255.
    ///
    /// `Err` when the message cannot be encoded at all (too long, wrong topic kind, node id too
    /// long).
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        if let Packet::Encapsulated(e) = self {
            if e.wnid.len() > crate::encap::MAX_WNID_LEN {
                return Err(EncodeError::FieldTooLong);
            }
            return Ok(e.encoded_len());
        }
        header::total_len(self.body_len()?)
    }

    /// Writes the message into `buf` and returns the number of octets written.
    ///
    /// Nothing is written when the buffer is too small ([`EncodeError::BufferTooSmall`]) or the
    /// message cannot be encoded. Bits a message does not use are sent as 0.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        if let Packet::Encapsulated(e) = self {
            return e.encode(buf);
        }
        let total = self.encoded_len()?;
        if total > buf.len() {
            return Err(EncodeError::BufferTooSmall {
                needed: total,
                available: buf.len(),
            });
        }
        let mut w = Writer::new(buf);
        header::write(&mut w, total);
        w.u8(self.msg_type().code());
        self.write_body(&mut w);
        debug_assert_eq!(w.position(), total);
        Ok(total)
    }

    fn write_body(&self, w: &mut Writer<'_>) {
        match self {
            Packet::Advertise { gw_id, duration } => {
                w.u8(*gw_id);
                w.u16(*duration);
            }
            Packet::SearchGw { radius } => w.u8(*radius),
            Packet::GwInfo { gw_id, gw_addr } => {
                w.u8(*gw_id);
                w.bytes(gw_addr);
            }
            Packet::Connect(c) => c.write(w),
            Packet::Connack { return_code }
            | Packet::WillTopicResp { return_code }
            | Packet::WillMsgResp { return_code } => w.u8(return_code.code()),
            Packet::WillTopicReq | Packet::WillMsgReq | Packet::Pingresp => {}
            Packet::WillTopic(t) | Packet::WillTopicUpd(t) => WillTopic::write(t, w),
            Packet::WillMsg { msg } | Packet::WillMsgUpd { msg } => w.bytes(msg),
            Packet::Register(r) => r.write(w),
            Packet::Regack {
                topic_id,
                msg_id,
                return_code,
            }
            | Packet::Puback {
                topic_id,
                msg_id,
                return_code,
            } => {
                w.u16(*topic_id);
                w.u16(*msg_id);
                w.u8(return_code.code());
            }
            Packet::Publish(p) => p.write(w),
            Packet::Pubcomp { msg_id }
            | Packet::Pubrec { msg_id }
            | Packet::Pubrel { msg_id }
            | Packet::Unsuback { msg_id } => w.u16(*msg_id),
            Packet::Subscribe(s) => s.write(w),
            Packet::Suback {
                qos,
                topic_id,
                msg_id,
                return_code,
            } => {
                w.u8(crate::Flags {
                    qos: *qos,
                    ..crate::Flags::EMPTY
                }
                .to_byte());
                w.u16(*topic_id);
                w.u16(*msg_id);
                w.u8(return_code.code());
            }
            Packet::Unsubscribe(u) => u.write(w),
            Packet::Pingreq { client_id } => w.bytes(client_id.unwrap_or_default()),
            Packet::Disconnect { duration } => {
                if let Some(d) = duration {
                    w.u16(*d);
                }
            }
            Packet::Encapsulated(_) => {}
        }
    }
}

impl fmt::Display for Packet<'_> {
    /// One line, e.g. `PUBLISH qos=1 tid=3(normal) mid=7 retain=0 len=12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.msg_type().name();
        match self {
            Packet::Advertise { gw_id, duration } => {
                write!(f, "{name} gw={gw_id} duration={duration}s")
            }
            Packet::SearchGw { radius } => write!(f, "{name} radius={radius}"),
            Packet::GwInfo { gw_id, gw_addr } => {
                write!(f, "{name} gw={gw_id}")?;
                if !gw_addr.is_empty() {
                    f.write_str(" addr=")?;
                    write_text(f, gw_addr)?;
                }
                Ok(())
            }
            Packet::Connect(c) => c.fmt(f),
            Packet::Connack { return_code }
            | Packet::WillTopicResp { return_code }
            | Packet::WillMsgResp { return_code } => write!(f, "{name} rc={return_code}"),
            Packet::WillTopicReq | Packet::WillMsgReq | Packet::Pingresp => f.write_str(name),
            Packet::WillTopic(t) | Packet::WillTopicUpd(t) => {
                f.write_str(name)?;
                WillTopic::fmt_opt(t, f)
            }
            Packet::WillMsg { msg } | Packet::WillMsgUpd { msg } => {
                write!(f, "{name} len={}", msg.len())
            }
            Packet::Register(r) => r.fmt(f),
            Packet::Regack {
                topic_id,
                msg_id,
                return_code,
            }
            | Packet::Puback {
                topic_id,
                msg_id,
                return_code,
            } => {
                write!(f, "{name} tid={topic_id} mid={msg_id} rc={return_code}")
            }
            Packet::Publish(p) => p.fmt(f),
            Packet::Pubcomp { msg_id }
            | Packet::Pubrec { msg_id }
            | Packet::Pubrel { msg_id }
            | Packet::Unsuback { msg_id } => write!(f, "{name} mid={msg_id}"),
            Packet::Subscribe(s) => s.fmt(f),
            Packet::Suback {
                qos,
                topic_id,
                msg_id,
                return_code,
            } => {
                write!(
                    f,
                    "{name} qos={qos} tid={topic_id} mid={msg_id} rc={return_code}"
                )
            }
            Packet::Unsubscribe(u) => u.fmt(f),
            Packet::Pingreq { client_id } => {
                f.write_str(name)?;
                if let Some(id) = client_id {
                    f.write_str(" client_id=")?;
                    write_text(f, id)?;
                }
                Ok(())
            }
            Packet::Disconnect { duration } => {
                f.write_str(name)?;
                if let Some(d) = duration {
                    write!(f, " duration={d}s")?;
                }
                Ok(())
            }
            Packet::Encapsulated(e) => e.fmt(f),
        }
    }
}
