use core::fmt;

use crate::cursor::{Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::flags::Flags;
use crate::types::{MsgType, QoS, TopicIdType, TopicRef};

/// SUBSCRIBE: a client subscribes by topic name or filter, predefined id or short name.
///
/// # Wire format
/// | Offset | Size | Field | Notes |
/// |---|---|---|---|
/// | 0 | 1 | Length | |
/// | 1 | 1 | MsgType 0x12 | |
/// | 2 | 1 | Flags | DUP, requested QoS, TopicIdType |
/// | 3 | 2 | MsgId | |
/// | 5 | n / 2 | TopicName (TopicIdType 0b00, runs to the end) or TopicId (0b01, 0b10: exactly 2) | |
///
/// The topic is never [`TopicRef::Normal`] (a normal id cannot be subscribed to); encoding one
/// is [`EncodeError::TopicRefNotAllowed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// Retransmission of an earlier SUBSCRIBE.
    pub dup: bool,
    /// Requested QoS (a gateway treats QoS −1 as 0).
    pub qos: QoS,
    /// Matches the SUBACK.
    pub msg_id: u16,
    /// Name/filter, predefined id or short name.
    pub topic: TopicRef<'a>,
}

/// UNSUBSCRIBE: a client ends a subscription. Same topic forms as [`Subscribe`].
///
/// # Wire format
/// | Offset | Size | Field | Notes |
/// |---|---|---|---|
/// | 0 | 1 | Length | |
/// | 1 | 1 | MsgType 0x14 | |
/// | 2 | 1 | Flags | TopicIdType only |
/// | 3 | 2 | MsgId | |
/// | 5 | n / 2 | TopicName or TopicId | as in SUBSCRIBE; a 2-octet name with type 0b00 is a name |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// Matches the UNSUBACK.
    pub msg_id: u16,
    /// Name/filter, predefined id or short name.
    pub topic: TopicRef<'a>,
}

/// Decodes the part shared by SUBSCRIBE and UNSUBSCRIBE: Flags, MsgId, topic.
fn decode_common<'a>(
    msg_type: MsgType,
    body: &'a [u8],
) -> Result<(Flags, u16, TopicRef<'a>), DecodeError> {
    let bad_len = DecodeError::InvalidBodyLength {
        msg_type,
        len: body.len(),
    };
    let mut r = Reader::new(body);
    let (Some(flags), Some(msg_id)) = (r.u8(), r.u16()) else {
        return Err(bad_len);
    };
    let flags = Flags::from_byte(flags);
    let rest = r.rest();
    let id_octets = || -> Result<[u8; 2], DecodeError> {
        match rest {
            [a, b] => Ok([*a, *b]),
            _ => Err(bad_len),
        }
    };
    let topic = match flags.topic_id_type {
        TopicIdType::Normal => TopicRef::Name(rest),
        TopicIdType::Predefined => TopicRef::Predefined(u16::from_be_bytes(id_octets()?)),
        TopicIdType::Short => TopicRef::Short(id_octets()?),
        TopicIdType::Reserved => {
            let topic_id = match rest {
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => 0,
            };
            return Err(DecodeError::ReservedTopicIdType {
                msg_type,
                topic_id,
                msg_id,
            });
        }
    };
    Ok((flags, msg_id, topic))
}

fn check_topic(topic: &TopicRef<'_>) -> Result<(), EncodeError> {
    match topic {
        TopicRef::Normal(_) => Err(EncodeError::TopicRefNotAllowed),
        _ => Ok(()),
    }
}

fn topic_len(topic: &TopicRef<'_>) -> usize {
    match topic {
        TopicRef::Name(n) => n.len(),
        _ => 2,
    }
}

fn write_topic(topic: &TopicRef<'_>, w: &mut Writer<'_>) {
    match topic {
        TopicRef::Name(n) => w.bytes(n),
        other => w.u16(other.id_field()),
    }
}

impl<'a> Subscribe<'a> {
    pub(crate) fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let (flags, msg_id, topic) = decode_common(MsgType::Subscribe, body)?;
        Ok(Subscribe {
            dup: flags.dup,
            qos: flags.qos,
            msg_id,
            topic,
        })
    }

    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        check_topic(&self.topic)
    }

    pub(crate) fn body_len(&self) -> usize {
        topic_len(&self.topic).saturating_add(3)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        let flags = Flags {
            dup: self.dup,
            qos: self.qos,
            topic_id_type: self.topic.id_type(),
            ..Flags::EMPTY
        };
        w.u8(flags.to_byte());
        w.u16(self.msg_id);
        write_topic(&self.topic, w);
    }
}

impl<'a> Unsubscribe<'a> {
    pub(crate) fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let (_, msg_id, topic) = decode_common(MsgType::Unsubscribe, body)?;
        Ok(Unsubscribe { msg_id, topic })
    }

    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        check_topic(&self.topic)
    }

    pub(crate) fn body_len(&self) -> usize {
        topic_len(&self.topic).saturating_add(3)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u8(Flags {
            topic_id_type: self.topic.id_type(),
            ..Flags::EMPTY
        }
        .to_byte());
        w.u16(self.msg_id);
        write_topic(&self.topic, w);
    }
}

impl fmt::Display for Subscribe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SUBSCRIBE qos={} {} mid={}",
            self.qos, self.topic, self.msg_id
        )?;
        if self.dup {
            f.write_str(" dup=1")?;
        }
        Ok(())
    }
}

impl fmt::Display for Unsubscribe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UNSUBSCRIBE {} mid={}", self.topic, self.msg_id)
    }
}
