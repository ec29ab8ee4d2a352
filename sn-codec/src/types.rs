//! Message types, return codes and topic references.

use core::fmt;

macro_rules! msg_types {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $text:literal; )*) => {
        /// The MsgType octet of every v1.2 message (spec 5.2.2).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum MsgType {
            $( $(#[$doc])* $name = $code, )*
        }

        impl MsgType {
            /// The type for a MsgType octet, or `None` for reserved and unknown codes.
            pub const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$name), )*
                    _ => None,
                }
            }

            /// The MsgType octet.
            pub const fn code(self) -> u8 {
                self as u8
            }

            /// The name used in the specification, e.g. `"PUBLISH"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$name => $text, )*
                }
            }

            /// Every message type, in code order (for metrics and exhaustive tests).
            pub const ALL: &'static [MsgType] = &[$( Self::$name, )*];
        }
    };
}

msg_types! {
    /// Gateway announces itself (broadcast).
    Advertise = 0x00, "ADVERTISE";
    /// Client looks for a gateway (broadcast).
    SearchGw = 0x01, "SEARCHGW";
    /// Answer to SEARCHGW.
    GwInfo = 0x02, "GWINFO";
    /// Client opens a session.
    Connect = 0x04, "CONNECT";
    /// Answer to CONNECT.
    Connack = 0x05, "CONNACK";
    /// Gateway asks for the Will topic.
    WillTopicReq = 0x06, "WILLTOPICREQ";
    /// Client sends the Will topic.
    WillTopic = 0x07, "WILLTOPIC";
    /// Gateway asks for the Will message.
    WillMsgReq = 0x08, "WILLMSGREQ";
    /// Client sends the Will message.
    WillMsg = 0x09, "WILLMSG";
    /// Topic name to topic id registration (either direction).
    Register = 0x0A, "REGISTER";
    /// Answer to REGISTER.
    Regack = 0x0B, "REGACK";
    /// Application message (either direction).
    Publish = 0x0C, "PUBLISH";
    /// QoS 1 acknowledgement, or a rejection of a PUBLISH.
    Puback = 0x0D, "PUBACK";
    /// QoS 2, third step.
    Pubcomp = 0x0E, "PUBCOMP";
    /// QoS 2, first step.
    Pubrec = 0x0F, "PUBREC";
    /// QoS 2, second step.
    Pubrel = 0x10, "PUBREL";
    /// Client subscribes.
    Subscribe = 0x12, "SUBSCRIBE";
    /// Answer to SUBSCRIBE.
    Suback = 0x13, "SUBACK";
    /// Client unsubscribes.
    Unsubscribe = 0x14, "UNSUBSCRIBE";
    /// Answer to UNSUBSCRIBE.
    Unsuback = 0x15, "UNSUBACK";
    /// Keep-alive, or a sleeping client waking up (with its ClientId).
    Pingreq = 0x16, "PINGREQ";
    /// Answer to PINGREQ.
    Pingresp = 0x17, "PINGRESP";
    /// End of session, or going to sleep (with a duration).
    Disconnect = 0x18, "DISCONNECT";
    /// Client replaces its Will topic.
    WillTopicUpd = 0x1A, "WILLTOPICUPD";
    /// Answer to WILLTOPICUPD.
    WillTopicResp = 0x1B, "WILLTOPICRESP";
    /// Client replaces its Will message.
    WillMsgUpd = 0x1C, "WILLMSGUPD";
    /// Answer to WILLMSGUPD.
    WillMsgResp = 0x1D, "WILLMSGRESP";
    /// Forwarder encapsulation of a message to or from a wireless node.
    Encapsulated = 0xFE, "ENCAPSULATED";
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A return code (spec 5.3.10). Reserved codes are kept, not rejected: some gateways send them,
/// and any non-zero code means "rejected".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnCode {
    /// 0x00.
    Accepted,
    /// 0x01: rejected because of congestion; the client waits T_WAIT.
    Congestion,
    /// 0x02: rejected, invalid topic id.
    InvalidTopicId,
    /// 0x03: rejected, not supported.
    NotSupported,
    /// 0x04..=0xFF: reserved by v1.2; never sent by this project.
    Reserved(u8),
}

impl ReturnCode {
    /// The code for an octet.
    pub const fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Accepted,
            1 => Self::Congestion,
            2 => Self::InvalidTopicId,
            3 => Self::NotSupported,
            other => Self::Reserved(other),
        }
    }

    /// The octet on the wire.
    pub const fn code(self) -> u8 {
        match self {
            Self::Accepted => 0,
            Self::Congestion => 1,
            Self::InvalidTopicId => 2,
            Self::NotSupported => 3,
            Self::Reserved(c) => c,
        }
    }

    /// True for 0x00.
    pub const fn is_accepted(self) -> bool {
        matches!(self, Self::Accepted)
    }
}

impl fmt::Display for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted => f.write_str("accepted"),
            Self::Congestion => f.write_str("congestion"),
            Self::InvalidTopicId => f.write_str("invalid-topic-id"),
            Self::NotSupported => f.write_str("not-supported"),
            Self::Reserved(c) => write!(f, "reserved-0x{c:02X}"),
        }
    }
}

/// How a PUBLISH, SUBSCRIBE or UNSUBSCRIBE names its topic (TopicIdType, spec 5.3.4).
///
/// In PUBLISH the topic is always 2 octets: a normal id, a predefined id or a short name. In
/// SUBSCRIBE and UNSUBSCRIBE TopicIdType 0b00 carries a topic *name or filter* that runs to the
/// end of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicRef<'a> {
    /// A topic id obtained through REGISTER/REGACK (TopicIdType 0b00 in PUBLISH).
    Normal(u16),
    /// A topic id configured on both sides in advance (TopicIdType 0b01).
    Predefined(u16),
    /// A two-character topic name carried in place of the id (TopicIdType 0b10).
    Short([u8; 2]),
    /// A topic name or filter as raw octets (TopicIdType 0b00 in SUBSCRIBE/UNSUBSCRIBE).
    /// UTF-8 is expected but checked by the receiver, which owes the sender a return code.
    Name(&'a [u8]),
}

impl TopicRef<'_> {
    /// The TopicIdType bits that encode this reference.
    pub const fn id_type(&self) -> TopicIdType {
        match self {
            Self::Normal(_) | Self::Name(_) => TopicIdType::Normal,
            Self::Predefined(_) => TopicIdType::Predefined,
            Self::Short(_) => TopicIdType::Short,
        }
    }

    /// The 2-octet TopicId field value (the short name's octets as a big-endian number; 0 for a
    /// name).
    pub const fn id_field(&self) -> u16 {
        match *self {
            Self::Normal(id) | Self::Predefined(id) => id,
            Self::Short(s) => u16::from_be_bytes(s),
            Self::Name(_) => 0,
        }
    }
}

impl fmt::Display for TopicRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Normal(id) => write!(f, "tid={id}(normal)"),
            Self::Predefined(id) => write!(f, "tid={id}(predefined)"),
            Self::Short(s) => {
                f.write_str("topic=")?;
                crate::display::write_text(f, &s)?;
                f.write_str("(short)")
            }
            Self::Name(n) => {
                f.write_str("topic=")?;
                crate::display::write_text(f, n)
            }
        }
    }
}

/// The TopicIdType bits of the Flags octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicIdType {
    /// 0b00: normal topic id (PUBLISH) or topic name (SUBSCRIBE, UNSUBSCRIBE).
    Normal,
    /// 0b01: predefined topic id.
    Predefined,
    /// 0b10: short topic name.
    Short,
    /// 0b11: reserved.
    Reserved,
}

impl TopicIdType {
    /// From the two low bits of a Flags octet.
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => Self::Normal,
            1 => Self::Predefined,
            2 => Self::Short,
            _ => Self::Reserved,
        }
    }

    /// The two bits.
    pub const fn bits(self) -> u8 {
        match self {
            Self::Normal => 0,
            Self::Predefined => 1,
            Self::Short => 2,
            Self::Reserved => 3,
        }
    }
}

/// Quality of service, including MQTT-SN's QoS −1 (publish without a connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QoS {
    /// QoS −1 (bits 0b11): PUBLISH without CONNECT; forwarded at QoS 0.
    MinusOne,
    /// At most once.
    Zero,
    /// At least once.
    One,
    /// Exactly once.
    Two,
}

impl QoS {
    /// From bits 6–5 of a Flags octet (already shifted down to 0..=3).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => Self::Zero,
            1 => Self::One,
            2 => Self::Two,
            _ => Self::MinusOne,
        }
    }

    /// The two bits (unshifted).
    pub const fn bits(self) -> u8 {
        match self {
            Self::Zero => 0,
            Self::One => 1,
            Self::Two => 2,
            Self::MinusOne => 3,
        }
    }

    /// The level as a signed number (−1, 0, 1, 2), as people write it.
    pub const fn level(self) -> i8 {
        match self {
            Self::MinusOne => -1,
            Self::Zero => 0,
            Self::One => 1,
            Self::Two => 2,
        }
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.level())
    }
}
