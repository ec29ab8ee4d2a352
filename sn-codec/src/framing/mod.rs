//! Serial framings shared by the forwarder and mote firmware (no_std): XBee API frames, SLIP
//! with CRC-16, and the raw length-delimited form.
//!
//! Everything here is sans-IO and allocation-free:
//!
//! - **Encoders** write one complete frame into a caller-owned `&mut [u8]` and return its length,
//!   or return [`FrameError::BufferTooSmall`] (or another [`FrameError`]) having written nothing
//!   meaningful.
//! - **Decoders** ([`SlipDecoder`], [`XbeeDecoder`], [`RawDecoder`]) are streaming state
//!   machines over a buffer sized by a const generic `N` (the largest frame *content* they
//!   accept). Octets go in through `push(octet)` or `feed(&input)`; each call yields at most one
//!   item: a frame borrowed from the decoder's buffer, or a [`FrameError`] the caller counts.
//!   An error never stops the decoder: it has already resynchronised and the next octet is
//!   processed normally. `feed` stops right after the octet that completed an item and says how
//!   many octets it consumed, so feeding octet by octet and feeding a whole buffer give the same
//!   sequence of items (this is what a `tokio_util::codec::Decoder` adapter needs).
//! - Nothing panics, whatever the input.
//!
//! | Framing | Module | Delimiting | Integrity | Resync |
//! |---|---|---|---|---|
//! | SLIP + CRC-16/IBM-3740 | [`slip`] | END `C0` | CRC-16 | next END |
//! | XBee API (AP = 1 or 2) | [`xbee`] | `7E` + 16-bit length | 8-bit checksum | next `7E` |
//! | Raw (mqtt-sn-tools serial bridge) | [`raw`] | the message's own Length field | none | none (heuristic) |

use core::fmt;

pub mod crc16;
pub mod raw;
pub mod slip;
pub mod xbee;

pub use crc16::{Crc16, crc16};
pub use raw::RawDecoder;
pub use slip::{AddressedFrame, SlipDecoder};
pub use xbee::{
    ApiFrame, ApiMode, AtCommand, AtResponse, ReceivePacket, TransmitRequest, TransmitStatus,
    XbeeDecoder, XbeeFrame,
};

/// What went wrong while framing or deframing serial data.
///
/// Decoder errors (everything except [`FrameError::BufferTooSmall`], [`FrameError::TooLong`]
/// and [`FrameError::LengthMismatch`]) are reported once per damaged frame; by the time the
/// caller sees one, the decoder has already discarded the damaged octets and resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The output buffer cannot hold the encoded frame.
    ///
    /// **Fault:** the caller. **Recovery:** retry with a buffer of at least `needed` octets;
    /// nothing meaningful was written.
    BufferTooSmall {
        /// Octets the encoded frame needs.
        needed: usize,
    },
    /// A frame or field is longer than the framing can express (XBee frame data over 65535
    /// octets, a SLIP address over 255 octets).
    ///
    /// **Fault:** the caller. **Recovery:** do not send it on this link; nothing was written.
    TooLong {
        /// The offending length.
        len: usize,
        /// The largest length the framing can express.
        max: usize,
    },
    /// A message handed to the raw encoder whose own Length field disagrees with its size (it
    /// would desynchronise the receiver, which has nothing else to delimit frames with).
    ///
    /// **Fault:** the caller. **Recovery:** drop the message; nothing was written.
    LengthMismatch {
        /// Total length declared by the message's Length field (0 if it has none).
        declared: usize,
        /// Octets actually handed to the encoder.
        actual: usize,
    },
    /// A SLIP frame whose CRC-16 does not match its content.
    ///
    /// **Fault:** line noise or the sender. **Recovery:** the frame was dropped; count it.
    BadCrc {
        /// The CRC carried by the frame.
        received: u16,
        /// The CRC computed over the received message.
        computed: u16,
    },
    /// An XBee API frame whose checksum does not match its frame data.
    ///
    /// **Fault:** line noise or the radio. **Recovery:** the frame was dropped and the decoder
    /// hunts for the next start delimiter; count it.
    BadChecksum {
        /// The checksum carried by the frame.
        received: u8,
        /// The checksum computed over the received frame data.
        computed: u8,
    },
    /// A frame too short to be valid: a SLIP frame under 4 octets (message ‖ CRC), an XBee
    /// frame with length 0 or frame data too short for its frame type, an addressed SLIP frame
    /// whose message is under 2 octets.
    ///
    /// **Fault:** line noise or the sender. **Recovery:** the frame was dropped; count it.
    TooShort {
        /// Octets the frame (or frame data) actually had.
        len: usize,
    },
    /// A frame longer than the decoder's buffer.
    ///
    /// **Fault:** line noise, or a sender configured for larger frames. **Recovery:** the
    /// decoder discards the rest of the frame (SLIP: up to the next END; XBee: up to the next
    /// start delimiter; raw: the declared number of octets); count it, and raise `N` if it
    /// keeps happening.
    Overrun {
        /// The decoder's buffer size `N`.
        limit: usize,
    },
    /// A SLIP ESC octet followed by something other than ESC_END or ESC_ESC.
    ///
    /// **Fault:** line noise or the sender. **Recovery:** the decoder discards the frame up to
    /// the next END; count it.
    BadEscape {
        /// The octet that followed ESC.
        octet: u8,
    },
    /// An XBee API frame cut short by the start delimiter of the next frame (API mode 2 only:
    /// in mode 1, `7E` may be data).
    ///
    /// **Fault:** lost octets on the line. **Recovery:** the partial frame was dropped and the
    /// new frame is already being received; count it.
    Truncated,
    /// A raw-framing Length field no message can have (0 or 1 in the short form, below 4 in the
    /// long form).
    ///
    /// **Fault:** line noise or a desynchronised stream. **Recovery:** the decoder dropped the
    /// octets of the Length field and tries again with the next octet; count it.
    BadLength {
        /// The declared total length.
        declared: usize,
    },
    /// An addressed SLIP frame whose address length points past the end of the frame.
    ///
    /// **Fault:** the sender. **Recovery:** drop the frame and count it.
    BadAddress {
        /// The address length octet.
        addr_len: u8,
        /// Octets available after the address length octet.
        available: usize,
    },
    /// XBee frame data of a frame type this crate does not parse. Not a framing error: the
    /// frame itself was intact ([`ApiFrame`] still holds it).
    ///
    /// **Fault:** nobody (the radio sent a frame type we do not use). **Recovery:** ignore the
    /// frame or log it at debug level.
    UnknownFrameType(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: frame needs {needed} octets")
            }
            Self::TooLong { len, max } => {
                write!(
                    f,
                    "length {len} exceeds what the framing can express ({max})"
                )
            }
            Self::LengthMismatch { declared, actual } => write!(
                f,
                "message Length field says {declared} octets but the message has {actual}"
            ),
            Self::BadCrc { received, computed } => write!(
                f,
                "bad CRC-16: frame carries 0x{received:04X}, content gives 0x{computed:04X}"
            ),
            Self::BadChecksum { received, computed } => write!(
                f,
                "bad XBee checksum: frame carries 0x{received:02X}, data gives 0x{computed:02X}"
            ),
            Self::TooShort { len } => write!(f, "frame too short ({len} octets)"),
            Self::Overrun { limit } => {
                write!(f, "frame longer than the {limit}-octet receive buffer")
            }
            Self::BadEscape { octet } => write!(f, "invalid escape sequence DB {octet:02X}"),
            Self::Truncated => f.write_str("frame cut short by the next start delimiter"),
            Self::BadLength { declared } => write!(f, "invalid Length field value {declared}"),
            Self::BadAddress {
                addr_len,
                available,
            } => write!(
                f,
                "address length {addr_len} exceeds the {available} octets left in the frame"
            ),
            Self::UnknownFrameType(t) => write!(f, "unknown XBee frame type 0x{t:02X}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// Sequential writer over a caller's buffer whose size was checked beforehand; never panics
/// (out-of-range writes are dropped and reported by [`Out::finish`]).
pub(crate) struct Out<'b> {
    buf: &'b mut [u8],
    pos: usize,
    overflow: bool,
}

impl<'b> Out<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            overflow: false,
        }
    }

    pub(crate) fn put(&mut self, octet: u8) {
        match self.buf.get_mut(self.pos) {
            Some(slot) => {
                *slot = octet;
                self.pos = self.pos.saturating_add(1);
            }
            None => self.overflow = true,
        }
    }

    pub(crate) fn put_all(&mut self, octets: &[u8]) {
        let end = self.pos.saturating_add(octets.len());
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => {
                dst.copy_from_slice(octets);
                self.pos = end;
            }
            None => self.overflow = true,
        }
    }

    /// The number of octets written, or `BufferTooSmall` if anything did not fit.
    pub(crate) fn finish(self, needed: usize) -> Result<usize, FrameError> {
        if self.overflow {
            Err(FrameError::BufferTooSmall { needed })
        } else {
            Ok(self.pos)
        }
    }
}

/// Stores `octet` at `*pos` in `buf` and advances `*pos`; `false` (nothing stored) when full.
pub(crate) fn store(buf: &mut [u8], pos: &mut usize, octet: u8) -> bool {
    match buf.get_mut(*pos) {
        Some(slot) => {
            *slot = octet;
            *pos = pos.saturating_add(1);
            true
        }
        None => false,
    }
}
