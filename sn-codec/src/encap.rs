//! The forwarder encapsulation (MsgType 0xFE, spec 5.5).
//!
//! ```text
//! | Len (1) | 0xFE | Ctrl (1) | Wireless Node Id (Len−3) | inner MQTT-SN message (own header) |
//! ```
//! Len always uses the 1-octet form and counts only the encapsulation header. Ctrl bits 1–0 are
//! the broadcast radius (gateway → forwarder); bits 7–2 are reserved (ignored, sent as 0).

use core::fmt;

use crate::cursor::Writer;
use crate::error::{DecodeError, EncodeError};
use crate::packet::Packet;
use crate::types::MsgType;

/// The longest wireless node id the 1-octet Len can carry.
pub const MAX_WNID_LEN: usize = 252;

/// An Encapsulated message: a complete inner message to or from one wireless node.
///
/// # Wire format
/// | Offset | Size | Field | Notes |
/// |---|---|---|---|
/// | 0 | 1 | Len | 3 + length of the node id; never the 3-octet form |
/// | 1 | 1 | MsgType 0xFE | |
/// | 2 | 1 | Ctrl | bits 1–0: radius (0 = whole network) |
/// | 3 | Len−3 | Wireless Node Id | opaque octets naming the node |
/// | Len | m | inner message | a complete MQTT-SN message; may use the long Length form |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encapsulated<'a> {
    /// Broadcast radius, 0..=3 (0 = whole network). Meaningful gateway → forwarder only.
    pub radius: u8,
    /// The node the inner message comes from or goes to; empty means "broadcast".
    pub wnid: &'a [u8],
    /// The inner message, undecoded: see [`Encapsulated::decode_inner`].
    pub inner: &'a [u8],
}

impl<'a> Encapsulated<'a> {
    /// Decodes the encapsulation header of a whole datagram. The inner message is not decoded;
    /// its presence (at least 2 octets) is checked.
    #[inline]
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let (&len, _) = bytes.split_first().ok_or(DecodeError::Truncated {
            needed: 3,
            actual: 0,
        })?;
        if len == 0x01 {
            return Err(DecodeError::LongEncapsulationHeader);
        }
        let header_len = usize::from(len);
        if header_len < 3 {
            return Err(DecodeError::InvalidLength {
                declared: header_len,
            });
        }
        let needed = header_len.saturating_add(2);
        let Some(header) = bytes.get(..header_len) else {
            return Err(DecodeError::Truncated {
                needed,
                actual: bytes.len(),
            });
        };
        let inner = bytes.get(header_len..).unwrap_or_default();
        if inner.len() < 2 {
            return Err(DecodeError::Truncated {
                needed,
                actual: bytes.len(),
            });
        }
        match header {
            [_, 0xFE, ctrl, wnid @ ..] => Ok(Encapsulated {
                radius: ctrl & 0x03,
                wnid,
                inner,
            }),
            [_, other, ..] => Err(DecodeError::UnknownMsgType(*other)),
            _ => Err(DecodeError::Truncated {
                needed,
                actual: bytes.len(),
            }),
        }
    }

    /// [`Encapsulated::decode_inner`] accepting the known encoder mistake of
    /// [`Packet::decode_tolerant`].
    pub fn decode_inner_tolerant(
        &self,
    ) -> Result<(Packet<'a>, Option<crate::packet::LengthQuirk>), DecodeError> {
        let inner = Packet::decode_tolerant(self.inner)?;
        if let (Packet::Encapsulated(_), _) = inner {
            return Err(DecodeError::NestedEncapsulation);
        }
        Ok(inner)
    }

    /// Decodes the inner message, which must fill the rest of the datagram exactly and must not
    /// itself be Encapsulated.
    pub fn decode_inner(&self) -> Result<Packet<'a>, DecodeError> {
        // Hand the result on as is rather than re-wrapping it: the packet is then built in place,
        // which halves the cost of decoding an encapsulated message (see BENCHMARKS.md).
        let inner = Packet::decode(self.inner);
        if let Ok(Packet::Encapsulated(_)) = inner {
            return Err(DecodeError::NestedEncapsulation);
        }
        inner
    }

    /// Octets of the encapsulation header (Len, MsgType, Ctrl, node id).
    pub fn header_len(&self) -> usize {
        self.wnid.len().saturating_add(3)
    }

    /// Total octets: header plus inner message.
    pub fn encoded_len(&self) -> usize {
        self.header_len().saturating_add(self.inner.len())
    }

    /// Writes the header and the inner octets into `buf`; returns the length written. Nothing is
    /// written on error.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let total = self.encoded_len();
        check_header(self.wnid, total, buf.len())?;
        let mut w = Writer::new(buf);
        write_header(&mut w, self.radius, self.wnid);
        w.bytes(self.inner);
        Ok(w.position())
    }
}

fn check_header(wnid: &[u8], total: usize, available: usize) -> Result<(), EncodeError> {
    if wnid.len() > MAX_WNID_LEN {
        return Err(EncodeError::FieldTooLong);
    }
    if total > available {
        return Err(EncodeError::BufferTooSmall {
            needed: total,
            available,
        });
    }
    Ok(())
}

fn write_header(w: &mut Writer<'_>, radius: u8, wnid: &[u8]) {
    w.u8(u8::try_from(wnid.len().saturating_add(3)).unwrap_or(u8::MAX));
    w.u8(MsgType::Encapsulated.code());
    w.u8(radius & 0x03);
    w.bytes(wnid);
}

/// Encodes `inner` wrapped for node `wnid` straight into `buf` (no intermediate copy); returns
/// the total length. Nothing is written on error; an Encapsulated `inner` is
/// [`EncodeError::NestedEncapsulation`].
pub fn encode_encapsulated(
    radius: u8,
    wnid: &[u8],
    inner: &Packet<'_>,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    if let Packet::Encapsulated(_) = inner {
        return Err(EncodeError::NestedEncapsulation);
    }
    let header_len = wnid.len().saturating_add(3);
    let total = header_len.saturating_add(inner.encoded_len()?);
    check_header(wnid, total, buf.len())?;
    let (head, tail) = buf.split_at_mut(header_len);
    let mut w = Writer::new(head);
    write_header(&mut w, radius, wnid);
    let inner_len = inner.encode(tail)?;
    Ok(header_len.saturating_add(inner_len))
}

impl fmt::Display for Encapsulated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ENCAPSULATED wnid=")?;
        for b in self.wnid {
            write!(f, "{b:02x}")?;
        }
        write!(f, " radius={} ", self.radius)?;
        match self.decode_inner() {
            Ok(inner) => write!(f, "[{inner}]"),
            Err(e) => write!(f, "[malformed: {e}]"),
        }
    }
}
