use core::fmt;

use crate::cursor::{Reader, Writer};
use crate::display::bit;
use crate::error::{DecodeError, EncodeError};
use crate::flags::Flags;
use crate::types::{MsgType, QoS, TopicIdType, TopicRef};

/// PUBLISH: an application message (either direction), at QoS −1, 0, 1 or 2.
///
/// # Wire format
/// | Offset | Size | Field | Notes |
/// |---|---|---|---|
/// | 0 | 1 | Length | |
/// | 1 | 1 | MsgType 0x0C | |
/// | 2 | 1 | Flags | DUP, QoS, Retain, TopicIdType (0b11 is [`DecodeError::ReservedTopicIdType`]) |
/// | 3 | 2 | TopicId | normal id, predefined id or the two octets of a short name |
/// | 5 | 2 | MsgId | 0 for QoS 0 and −1 |
/// | 7 | n | Data | runs to the end |
///
/// The topic is never [`TopicRef::Name`]: encoding one is [`EncodeError::TopicRefNotAllowed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// Retransmission of an earlier PUBLISH with the same MsgId.
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// The broker keeps the message for future subscribers.
    pub retain: bool,
    /// Which topic: normal id, predefined id or short name.
    pub topic: TopicRef<'a>,
    /// Matches PUBACK/PUBREC; 0 at QoS 0 and −1.
    pub msg_id: u16,
    /// The payload.
    pub data: &'a [u8],
}

impl<'a> Publish<'a> {
    pub(crate) fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let (Some(flags), Some(topic), Some(msg_id)) = (r.u8(), r.array2(), r.u16()) else {
            return Err(DecodeError::InvalidBodyLength {
                msg_type: MsgType::Publish,
                len: body.len(),
            });
        };
        let flags = Flags::from_byte(flags);
        let topic_id = u16::from_be_bytes(topic);
        let topic = match flags.topic_id_type {
            TopicIdType::Normal => TopicRef::Normal(topic_id),
            TopicIdType::Predefined => TopicRef::Predefined(topic_id),
            TopicIdType::Short => TopicRef::Short(topic),
            TopicIdType::Reserved => {
                return Err(DecodeError::ReservedTopicIdType {
                    msg_type: MsgType::Publish,
                    topic_id,
                    msg_id,
                });
            }
        };
        Ok(Publish {
            dup: flags.dup,
            qos: flags.qos,
            retain: flags.retain,
            topic,
            msg_id,
            data: r.rest(),
        })
    }

    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        match self.topic {
            TopicRef::Name(_) => Err(EncodeError::TopicRefNotAllowed),
            _ => Ok(()),
        }
    }

    pub(crate) fn body_len(&self) -> usize {
        self.data.len().saturating_add(5)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        let flags = Flags {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic_id_type: self.topic.id_type(),
            ..Flags::EMPTY
        };
        w.u8(flags.to_byte());
        w.u16(self.topic.id_field());
        w.u16(self.msg_id);
        w.bytes(self.data);
    }
}

impl fmt::Display for Publish<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PUBLISH qos={} {} mid={} retain={} len={}",
            self.qos,
            self.topic,
            self.msg_id,
            bit(self.retain),
            self.data.len()
        )?;
        if self.dup {
            f.write_str(" dup=1")?;
        }
        Ok(())
    }
}
