//! `tokio_util::codec` adapters over the serial framings of [`sn_codec::framing`]: one
//! [`Decoder`] + [`Encoder`] per framing, and [`RadioCodec`] choosing one at run time.
//!
//! Decoders never fail on line noise: a damaged frame is an item ([`RadioItem::Dropped`]) the
//! shell counts, and decoding goes on (a `Decoder` error would end a `Framed` stream). Decoder
//! errors are I/O errors only. Encoder errors with kind [`std::io::ErrorKind::InvalidInput`] mean
//! "this message cannot be framed for this destination" (count it, the port is fine); others
//! come from the device.

pub mod raw;
pub mod slip;
pub mod xbee;

use std::io;
use std::time::Instant as StdInstant;

use bytes::{Bytes, BytesMut};
use sn_codec::framing::FrameError;
use tokio_util::codec::{Decoder, Encoder};

use crate::core::{NodeAddr, RadioDest};

pub use self::raw::RawCodec;
pub use self::slip::SlipCodec;
pub use self::xbee::{TxOutcome, XbeeCodec};

/// Largest frame content the decoders accept (an MQTT-SN message plus framing overhead); longer
/// frames are dropped as [`FrameDrop::Overrun`].
pub const MAX_FRAME: usize = 2048;

/// One MQTT-SN message for the radio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadioOut {
    /// Node or broadcast.
    pub to: RadioDest,
    /// The bare MQTT-SN message.
    pub message: Bytes,
}

/// What a radio decoder yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RadioItem {
    /// One MQTT-SN message from a node.
    Frame {
        /// Who sent it.
        node: NodeAddr,
        /// The message, as framed (not checked further here).
        message: Bytes,
    },
    /// A damaged frame was discarded; the decoder has resynchronised.
    Dropped(FrameDrop),
    /// An XBee Transmit Status (or a status that never came).
    TxStatus(TxOutcome),
    /// An intact frame the forwarder does not use (e.g. an XBee AT command response or modem
    /// status); logged at debug level.
    Ignored {
        /// The XBee frame type.
        frame_type: u8,
    },
}

/// Why a frame was discarded by a decoder (the `kind` label of `frame_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FrameDrop {
    /// SLIP CRC-16 mismatch.
    Crc,
    /// XBee checksum mismatch.
    Checksum,
    /// Frame longer than the decoder's buffer.
    Overrun,
    /// Frame too short to be valid.
    TooShort,
    /// SLIP: invalid escape sequence.
    Escape,
    /// XBee: frame cut short by the next start delimiter.
    Truncated,
    /// Raw: invalid Length octet.
    BadLength,
    /// Addressed SLIP: address length past the end of the frame.
    BadAddress,
    /// Any other framing error.
    Other,
}

impl FrameDrop {
    /// Stable snake_case label for counters.
    pub const fn label(self) -> &'static str {
        match self {
            FrameDrop::Crc => "crc",
            FrameDrop::Checksum => "checksum",
            FrameDrop::Overrun => "overrun",
            FrameDrop::TooShort => "too_short",
            FrameDrop::Escape => "escape",
            FrameDrop::Truncated => "truncated",
            FrameDrop::BadLength => "bad_length",
            FrameDrop::BadAddress => "bad_address",
            FrameDrop::Other => "other",
        }
    }
}

impl From<FrameError> for FrameDrop {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::BadCrc { .. } => FrameDrop::Crc,
            FrameError::BadChecksum { .. } => FrameDrop::Checksum,
            FrameError::Overrun { .. } => FrameDrop::Overrun,
            FrameError::TooShort { .. } => FrameDrop::TooShort,
            FrameError::BadEscape { .. } => FrameDrop::Escape,
            FrameError::Truncated => FrameDrop::Truncated,
            FrameError::BadLength { .. } => FrameDrop::BadLength,
            FrameError::BadAddress { .. } => FrameDrop::BadAddress,
            _ => FrameDrop::Other,
        }
    }
}

/// The framing of a serial port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// XBee API frames; `escaped` = API mode 2 (AP=2), otherwise API mode 1.
    Xbee {
        /// API mode 2.
        escaped: bool,
    },
    /// SLIP + CRC-16; `addressed` = each frame carries the node address (one dongle, many
    /// nodes), otherwise one node per line.
    Slip {
        /// The addressed variant.
        addressed: bool,
    },
    /// Bare messages delimited by their own Length (mqtt-sn-tools serial bridge), one node.
    Raw,
}

/// A codec for one of the [`Framing`]s.
#[derive(Debug)]
pub enum RadioCodec {
    /// XBee API.
    Xbee(Box<XbeeCodec>),
    /// SLIP.
    Slip(Box<SlipCodec>),
    /// Raw.
    Raw(Box<RawCodec>),
}

impl RadioCodec {
    /// A fresh codec for `framing`.
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::Xbee { escaped } => RadioCodec::Xbee(Box::new(XbeeCodec::new(escaped))),
            Framing::Slip { addressed } => RadioCodec::Slip(Box::new(SlipCodec::new(addressed))),
            Framing::Raw => RadioCodec::Raw(Box::default()),
        }
    }

    /// XBee: Transmit Status reports that did not come in time (see
    /// [`XbeeCodec::expire`]); nothing for other framings.
    pub fn expire(&mut self, now: StdInstant) -> Vec<TxOutcome> {
        match self {
            RadioCodec::Xbee(c) => c.expire(now),
            _ => Vec::new(),
        }
    }
}

impl Decoder for RadioCodec {
    type Item = RadioItem;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<RadioItem>> {
        match self {
            RadioCodec::Xbee(c) => c.decode(src),
            RadioCodec::Slip(c) => c.decode(src),
            RadioCodec::Raw(c) => c.decode(src),
        }
    }
}

impl Encoder<RadioOut> for RadioCodec {
    type Error = io::Error;

    fn encode(&mut self, item: RadioOut, dst: &mut BytesMut) -> io::Result<()> {
        match self {
            RadioCodec::Xbee(c) => c.encode(item, dst),
            RadioCodec::Slip(c) => c.encode(item, dst),
            RadioCodec::Raw(c) => c.encode(item, dst),
        }
    }
}

/// An encoding problem as an `InvalidInput` I/O error.
pub(crate) fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// Appends the output of `encode` (at most `max` octets) to `dst`.
pub(crate) fn append(
    dst: &mut BytesMut,
    max: usize,
    encode: impl FnOnce(&mut [u8]) -> Result<usize, FrameError>,
) -> io::Result<()> {
    let start = dst.len();
    dst.resize(start.saturating_add(max), 0);
    let result = match dst.get_mut(start..) {
        Some(slot) => encode(slot),
        None => Err(FrameError::BufferTooSmall { needed: max }),
    };
    match result {
        Ok(n) => {
            dst.truncate(start.saturating_add(n));
            Ok(())
        }
        Err(e) => {
            dst.truncate(start);
            Err(invalid(e))
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    #![allow(clippy::unwrap_used)]
    //! Feeding helpers for the codec tests.
    use super::*;

    /// Feeds `wire` in chunks of `chunk` octets and collects every item.
    pub(crate) fn decode_all<D>(codec: &mut D, wire: &[u8], chunk: usize) -> Vec<RadioItem>
    where
        D: Decoder<Item = RadioItem, Error = io::Error>,
    {
        let mut buf = BytesMut::new();
        let mut out = vec![];
        for piece in wire.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                out.push(item);
            }
        }
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        out
    }
}
