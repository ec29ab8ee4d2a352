use core::fmt;

use crate::cursor::{Reader, Writer};
use crate::display::{bit, write_text};
use crate::flags::Flags;
use crate::types::QoS;

/// The content of a WILLTOPIC or WILLTOPICUPD that is not the empty form.
///
/// The empty form (Length 2, no Flags, no topic) deletes the Will and is represented as `None`
/// in [`crate::Packet::WillTopic`] / [`crate::Packet::WillTopicUpd`].
///
/// # Wire format
/// | Offset | Size | Field | Notes |
/// |---|---|---|---|
/// | 0 | 1 | Length | 2 for the empty form |
/// | 1 | 1 | MsgType 0x07 / 0x1A | |
/// | 2 | 1 | Flags | Will QoS (bits 6–5), Will retain (bit 4) |
/// | 3 | n | WillTopic | runs to the end |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WillTopic<'a> {
    /// QoS of the Will message (the bits as sent; a gateway maps QoS −1 to 0).
    pub qos: QoS,
    /// Publish the Will retained.
    pub retain: bool,
    /// The Will topic octets.
    pub topic: &'a [u8],
}

impl<'a> WillTopic<'a> {
    /// `None` for the empty form (no variable part at all).
    pub(crate) fn decode(body: &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let flags = Flags::from_byte(r.u8()?);
        Some(WillTopic {
            qos: flags.qos,
            retain: flags.retain,
            topic: r.rest(),
        })
    }

    pub(crate) fn body_len(this: &Option<Self>) -> usize {
        this.map_or(0, |t| t.topic.len().saturating_add(1))
    }

    pub(crate) fn write(this: &Option<Self>, w: &mut Writer<'_>) {
        if let Some(t) = this {
            w.u8(Flags {
                qos: t.qos,
                retain: t.retain,
                ..Flags::EMPTY
            }
            .to_byte());
            w.bytes(t.topic);
        }
    }

    pub(crate) fn fmt_opt(this: &Option<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match this {
            None => f.write_str(" (empty)"),
            Some(t) => {
                write!(f, " qos={} retain={} topic=", t.qos, bit(t.retain))?;
                write_text(f, t.topic)
            }
        }
    }
}
