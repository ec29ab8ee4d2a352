//! The Flags octet (spec 5.3.4): DUP, QoS, Retain, Will, CleanSession, TopicIdType.

use crate::types::{QoS, TopicIdType};

/// The Flags octet, decoded. Which bits matter depends on the message (spec 5.3.4); bits a
/// message does not use are ignored on decode and written as 0 on encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flags {
    /// Bit 7: retransmission of a PUBLISH or SUBSCRIBE.
    pub dup: bool,
    /// Bits 6–5.
    pub qos: QoS,
    /// Bit 4.
    pub retain: bool,
    /// Bit 3: CONNECT asks for Will prompting.
    pub will: bool,
    /// Bit 2: CONNECT clean session.
    pub clean_session: bool,
    /// Bits 1–0.
    pub topic_id_type: TopicIdType,
}

impl Flags {
    /// All bits zero.
    pub const EMPTY: Flags = Flags {
        dup: false,
        qos: QoS::Zero,
        retain: false,
        will: false,
        clean_session: false,
        topic_id_type: TopicIdType::Normal,
    };

    /// Decodes every bit of the octet.
    pub const fn from_byte(b: u8) -> Self {
        Flags {
            dup: b & 0x80 != 0,
            qos: QoS::from_bits(b >> 5),
            retain: b & 0x10 != 0,
            will: b & 0x08 != 0,
            clean_session: b & 0x04 != 0,
            topic_id_type: TopicIdType::from_bits(b),
        }
    }

    /// Encodes every bit.
    pub const fn to_byte(self) -> u8 {
        (if self.dup { 0x80 } else { 0 })
            | (self.qos.bits() << 5)
            | (if self.retain { 0x10 } else { 0 })
            | (if self.will { 0x08 } else { 0 })
            | (if self.clean_session { 0x04 } else { 0 })
            | self.topic_id_type.bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_octet_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(Flags::from_byte(b).to_byte(), b);
        }
    }

    #[test]
    fn common_flag_octets_decode_to_the_flags_the_spec_gives_them() {
        let connect = Flags::from_byte(0x0C);
        assert!(connect.will && connect.clean_session);
        assert_eq!(Flags::from_byte(0x21).qos, QoS::One);
        assert_eq!(
            Flags::from_byte(0x21).topic_id_type,
            TopicIdType::Predefined
        );
        assert_eq!(Flags::from_byte(0x62).qos, QoS::MinusOne);
        assert_eq!(Flags::from_byte(0x62).topic_id_type, TopicIdType::Short);
        assert!(Flags::from_byte(0x80).dup);
        assert!(Flags::from_byte(0x10).retain);
    }
}
