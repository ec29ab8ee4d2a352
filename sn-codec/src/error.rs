//! Decode and encode errors. Each variant says whose fault it is and what the caller does.

use core::fmt;

use crate::types::MsgType;

/// Why a datagram could not be decoded as an MQTT-SN v1.2 message.
///
/// **Fault:** always the sender of the bytes. **Recovery:** drop the datagram and count it; the
/// variants that carry a message id ([`DecodeError::ReservedTopicIdType`]) or identify a CONNECT
/// ([`DecodeError::InvalidProtocolId`]) let a gateway send the reply the specification
/// prescribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends before the header or the declared length is complete.
    Truncated {
        /// Octets the header or the declared Length field needs.
        needed: usize,
        /// Octets actually present.
        actual: usize,
    },
    /// The datagram holds more octets than its Length field declares.
    TrailingBytes {
        /// Total length declared by the Length field.
        declared: usize,
        /// Octets actually present.
        actual: usize,
    },
    /// The Length field holds a value no message can have (0 or 1 in the short form, below 4 in
    /// the long form).
    InvalidLength {
        /// The declared total length.
        declared: usize,
    },
    /// The MsgType octet is reserved or unknown in v1.2.
    UnknownMsgType(u8),
    /// The variable part has a size this message type never has (e.g. a 3-octet DISCONNECT).
    InvalidBodyLength {
        /// The message type whose body is wrong.
        msg_type: MsgType,
        /// Octets in the variable part (after Length and MsgType).
        len: usize,
    },
    /// A CONNECT whose ProtocolId is not 0x01. The gateway answers CONNACK 0x03.
    InvalidProtocolId(u8),
    /// A PUBLISH, SUBSCRIBE or UNSUBSCRIBE whose TopicIdType is the reserved 0b11. The fields let
    /// the receiver answer with return code 0x02 (invalid topic id).
    ReservedTopicIdType {
        /// The message type that carried it.
        msg_type: MsgType,
        /// The two topic octets (0 when the message has none of fixed size).
        topic_id: u16,
        /// The message id, for the reply.
        msg_id: u16,
    },
    /// An Encapsulated message whose inner message is itself Encapsulated.
    NestedEncapsulation,
    /// An Encapsulated message whose Length field uses the long form (the spec allows only the
    /// 1-octet form for the encapsulation header).
    LongEncapsulationHeader,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, actual } => {
                write!(f, "truncated: needs {needed} octets, got {actual}")
            }
            Self::TrailingBytes { declared, actual } => write!(
                f,
                "length mismatch: Length field says {declared} octets, datagram has {actual}"
            ),
            Self::InvalidLength { declared } => write!(f, "invalid Length field value {declared}"),
            Self::UnknownMsgType(t) => write!(f, "unknown or reserved message type 0x{t:02X}"),
            Self::InvalidBodyLength { msg_type, len } => {
                write!(f, "{msg_type} cannot have a {len}-octet variable part")
            }
            Self::InvalidProtocolId(p) => {
                write!(f, "CONNECT with protocol id 0x{p:02X} (v1.2 uses 0x01)")
            }
            Self::ReservedTopicIdType { msg_type, .. } => {
                write!(f, "{msg_type} with reserved topic id type 0b11")
            }
            Self::NestedEncapsulation => f.write_str("encapsulated message inside another"),
            Self::LongEncapsulationHeader => {
                f.write_str("encapsulation header uses the 3-octet Length form")
            }
        }
    }
}

/// Why a message could not be encoded.
///
/// **Fault:** ours (a field too long for the wire format) or the caller's buffer size.
/// **Recovery:** nothing was written; enlarge the buffer or abort the delivery (spec 6.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The buffer cannot hold the whole message; nothing was written.
    BufferTooSmall {
        /// Octets the message needs.
        needed: usize,
        /// Octets the buffer offers.
        available: usize,
    },
    /// The message would exceed 65 535 octets, the largest the Length field can express.
    MessageTooLong {
        /// Octets the message would need.
        len: usize,
    },
    /// A field does not fit its wire format (a wireless node id over 252 octets, a short topic
    /// name that is not 2 octets).
    FieldTooLong,
    /// The topic reference kind does not exist in this message (a topic name in PUBLISH, a
    /// normal topic id in SUBSCRIBE or UNSUBSCRIBE).
    TopicRefNotAllowed,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed, available } => {
                write!(
                    f,
                    "buffer too small: needs {needed} octets, has {available}"
                )
            }
            Self::MessageTooLong { len } => {
                write!(f, "message of {len} octets exceeds the 65535-octet maximum")
            }
            Self::FieldTooLong => f.write_str("a field is too long for its wire format"),
            Self::TopicRefNotAllowed => {
                f.write_str("this kind of topic reference cannot be sent in this message")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}
