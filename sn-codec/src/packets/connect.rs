use core::fmt;

use crate::cursor::{Reader, Writer};
use crate::display::{bit, write_text};
use crate::error::DecodeError;
use crate::flags::Flags;
use crate::types::MsgType;

/// The ProtocolId of MQTT-SN v1.2.
pub(crate) const PROTOCOL_ID: u8 = 0x01;

/// CONNECT: a client opens (or resumes) a session.
///
/// # Wire format
/// | Offset | Size | Field | Notes |
/// |---|---|---|---|
/// | 0 | 1 | Length | |
/// | 1 | 1 | MsgType 0x04 | |
/// | 2 | 1 | Flags | Will (bit 3), CleanSession (bit 2); other bits ignored |
/// | 3 | 1 | ProtocolId | always 0x01; anything else is [`DecodeError::InvalidProtocolId`] |
/// | 4 | 2 | Duration | keep-alive in seconds |
/// | 6 | n | ClientId | runs to the end; UTF-8 expected, checked by the gateway |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    /// The client wants to be prompted for a Will topic and message.
    pub will: bool,
    /// Start a fresh session (drop subscriptions and registrations).
    pub clean_session: bool,
    /// Keep-alive period in seconds (0 = no supervision).
    pub duration: u16,
    /// The client identifier octets.
    pub client_id: &'a [u8],
}

impl<'a> Connect<'a> {
    pub(crate) fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let (Some(flags), Some(protocol_id), Some(duration)) = (r.u8(), r.u8(), r.u16()) else {
            return Err(DecodeError::InvalidBodyLength {
                msg_type: MsgType::Connect,
                len: body.len(),
            });
        };
        if protocol_id != PROTOCOL_ID {
            return Err(DecodeError::InvalidProtocolId(protocol_id));
        }
        let flags = Flags::from_byte(flags);
        Ok(Connect {
            will: flags.will,
            clean_session: flags.clean_session,
            duration,
            client_id: r.rest(),
        })
    }

    pub(crate) fn body_len(&self) -> usize {
        self.client_id.len().saturating_add(4)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        let flags = Flags {
            will: self.will,
            clean_session: self.clean_session,
            ..Flags::EMPTY
        };
        w.u8(flags.to_byte());
        w.u8(PROTOCOL_ID);
        w.u16(self.duration);
        w.bytes(self.client_id);
    }
}

impl fmt::Display for Connect<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CONNECT client_id=")?;
        write_text(f, self.client_id)?;
        write!(
            f,
            " clean={} will={} keep_alive={}s",
            bit(self.clean_session),
            bit(self.will),
            self.duration
        )
    }
}
