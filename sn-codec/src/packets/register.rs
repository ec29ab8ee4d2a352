use core::fmt;

use crate::cursor::{Reader, Writer};
use crate::display::write_text;
use crate::error::DecodeError;
use crate::types::MsgType;

/// REGISTER: asks the peer to associate a topic id with a topic name (either direction).
///
/// # Wire format
/// | Offset | Size | Field | Notes |
/// |---|---|---|---|
/// | 0 | 1 | Length | |
/// | 1 | 1 | MsgType 0x0A | |
/// | 2 | 2 | TopicId | 0x0000 from a client; the assigned id from a gateway |
/// | 4 | 2 | MsgId | |
/// | 6 | n | TopicName | runs to the end; UTF-8 expected, checked by the receiver |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Register<'a> {
    /// The topic id (0 when a client registers).
    pub topic_id: u16,
    /// Matches the REGACK.
    pub msg_id: u16,
    /// The topic name octets.
    pub topic_name: &'a [u8],
}

impl<'a> Register<'a> {
    pub(crate) fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let (Some(topic_id), Some(msg_id)) = (r.u16(), r.u16()) else {
            return Err(DecodeError::InvalidBodyLength {
                msg_type: MsgType::Register,
                len: body.len(),
            });
        };
        Ok(Register {
            topic_id,
            msg_id,
            topic_name: r.rest(),
        })
    }

    pub(crate) fn body_len(&self) -> usize {
        self.topic_name.len().saturating_add(4)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        w.u16(self.topic_id);
        w.u16(self.msg_id);
        w.bytes(self.topic_name);
    }
}

impl fmt::Display for Register<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "REGISTER tid={} mid={} topic=",
            self.topic_id, self.msg_id
        )?;
        write_text(f, self.topic_name)
    }
}
