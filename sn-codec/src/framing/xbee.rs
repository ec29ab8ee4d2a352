//! XBee API frames (ZigBee / 802.15.4 radios) in API mode 1 (unescaped) and 2 (escaped).
//!
//! ```text
//! 7E | len hi | len lo | frame data (len octets) | checksum
//! checksum = 0xFF − (sum of frame-data octets & 0xFF)
//! AP = 2: after the start octet, every 7E 7D 11 13 is sent as 7D, octet ^ 0x20
//!         (length and checksum included); the checksum covers the unescaped frame data
//! ```
//!
//! The first frame-data octet is the frame type. [`XbeeFrame`] types the frames the forwarder
//! uses; [`XbeeDecoder`] yields any intact frame as an [`ApiFrame`] (type + body), so an unknown
//! frame type is reported by [`ApiFrame::parse`], not by the framing.
//!
//! ```
//! use sn_codec::framing::{ApiMode, TransmitRequest, XbeeDecoder, XbeeFrame};
//!
//! // CONNACK 03 05 00 to node 0013A200415B6C2D, frame id 1, API mode 2.
//! let frame = XbeeFrame::TransmitRequest(TransmitRequest::unicast(
//!     1,
//!     [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D],
//!     &[0x03, 0x05, 0x00],
//! ));
//! let mut wire = [0u8; 64];
//! let n = frame.encode(ApiMode::Escaped, &mut wire).unwrap();
//! assert_eq!(&wire[..n], &[
//!     0x7E, 0x00, 0x7D, 0x31, 0x10, 0x01, 0x00, 0x7D, 0x33, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D,
//!     0xFF, 0xFE, 0x00, 0x00, 0x03, 0x05, 0x00, 0xFF,
//! ]);
//!
//! let mut decoder = XbeeDecoder::<128>::new(ApiMode::Escaped);
//! let (_, item) = decoder.feed(&wire[..n]);
//! assert_eq!(item.unwrap().unwrap().parse(), Ok(frame));
//! ```

use super::{FrameError, Out, store};

/// The start delimiter.
pub const START: u8 = 0x7E;
/// The escape octet (API mode 2).
pub const ESCAPE: u8 = 0x7D;
/// XON, escaped in API mode 2.
pub const XON: u8 = 0x11;
/// XOFF, escaped in API mode 2.
pub const XOFF: u8 = 0x13;
/// What an escaped octet is XORed with.
pub const ESCAPE_XOR: u8 = 0x20;
/// The longest frame data the 16-bit length can express.
pub const MAX_FRAME_DATA_LEN: usize = u16::MAX as usize;

/// The 64-bit broadcast address.
pub const BROADCAST_64: [u8; 8] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF];
/// The 16-bit address meaning "unknown" (also used for broadcast).
pub const UNKNOWN_16: u16 = 0xFFFE;
/// Receive option bit: the packet was a broadcast.
pub const RX_OPTION_BROADCAST: u8 = 0x02;
/// Transmit Status delivery status: success.
pub const DELIVERY_SUCCESS: u8 = 0x00;

/// Frame type of a ZigBee Transmit Request (host → radio).
pub const TYPE_TRANSMIT_REQUEST: u8 = 0x10;
/// Frame type of a ZigBee Receive Packet (radio → host).
pub const TYPE_RECEIVE_PACKET: u8 = 0x90;
/// Frame type of a ZigBee Transmit Status (radio → host).
pub const TYPE_TRANSMIT_STATUS: u8 = 0x8B;
/// Frame type of a local AT command (host → radio).
pub const TYPE_AT_COMMAND: u8 = 0x08;
/// Frame type of a local AT command response (radio → host).
pub const TYPE_AT_RESPONSE: u8 = 0x88;

/// The radio's AP setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiMode {
    /// AP = 1: no escaping. `7E` may appear inside a frame, so resynchronisation after noise
    /// is best effort (the decoder hunts for the next `7E` after the octets already consumed).
    Unescaped,
    /// AP = 2: `7E 7D 11 13` escaped after the start delimiter; `7E` always starts a frame.
    Escaped,
}

const fn needs_escape(octet: u8) -> bool {
    matches!(octet, START | ESCAPE | XON | XOFF)
}

/// `0xFF − (sum of octets & 0xFF)`.
fn checksum<'a>(octets: impl IntoIterator<Item = &'a u8>) -> u8 {
    let sum = octets
        .into_iter()
        .fold(0u8, |sum, &octet| sum.wrapping_add(octet));
    0xFFu8.wrapping_sub(sum)
}

/// Wire size of one octet after the start delimiter.
fn wire_len(mode: ApiMode, octet: u8) -> usize {
    if mode == ApiMode::Escaped && needs_escape(octet) {
        2
    } else {
        1
    }
}

fn put_wire(out: &mut Out<'_>, mode: ApiMode, octet: u8) {
    if mode == ApiMode::Escaped && needs_escape(octet) {
        out.put_all(&[ESCAPE, octet ^ ESCAPE_XOR]);
    } else {
        out.put(octet);
    }
}

/// Writes the API frame whose frame data is `head ‖ tail`.
fn encode_parts(
    mode: ApiMode,
    head: &[u8],
    tail: &[u8],
    out: &mut [u8],
) -> Result<usize, FrameError> {
    let data_len = head.len().saturating_add(tail.len());
    let len = u16::try_from(data_len).map_err(|_| FrameError::TooLong {
        len: data_len,
        max: MAX_FRAME_DATA_LEN,
    })?;
    let data = || head.iter().chain(tail);
    let sum = checksum(data());
    let [len_hi, len_lo] = len.to_be_bytes();
    let needed = [len_hi, len_lo, sum]
        .iter()
        .chain(data())
        .fold(1usize, |acc, &octet| {
            acc.saturating_add(wire_len(mode, octet))
        });
    if out.len() < needed {
        return Err(FrameError::BufferTooSmall { needed });
    }
    let mut w = Out::new(out);
    w.put(START);
    put_wire(&mut w, mode, len_hi);
    put_wire(&mut w, mode, len_lo);
    data().for_each(|&octet| put_wire(&mut w, mode, octet));
    put_wire(&mut w, mode, sum);
    w.finish(needed)
}

/// Wraps raw `frame_data` (frame type first) in an API frame.
///
/// # Errors
/// [`FrameError::TooLong`] when `frame_data` exceeds 65535 octets;
/// [`FrameError::BufferTooSmall`] when `out` cannot hold the frame. Nothing meaningful is
/// written on error.
pub fn encode_api_frame(
    mode: ApiMode,
    frame_data: &[u8],
    out: &mut [u8],
) -> Result<usize, FrameError> {
    encode_parts(mode, frame_data, &[], out)
}

/// An upper bound on the wire size of an API frame carrying `frame_data_len` octets of frame
/// data (API mode 2 with every octet escaped), for sizing buffers; saturates.
#[must_use]
pub const fn max_encoded_len(frame_data_len: usize) -> usize {
    // start + 2 × (length 2 + data + checksum 1)
    frame_data_len
        .saturating_add(3)
        .saturating_mul(2)
        .saturating_add(1)
}

/// An intact API frame as delivered by [`XbeeDecoder`]: the frame type and the rest of the
/// frame data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiFrame<'a> {
    /// The frame type (first frame-data octet).
    pub frame_type: u8,
    /// The frame data after the frame type.
    pub body: &'a [u8],
}

impl<'a> ApiFrame<'a> {
    /// Types the frame.
    ///
    /// # Errors
    /// [`FrameError::UnknownFrameType`] for frame types [`XbeeFrame`] does not cover;
    /// [`FrameError::TooShort`] when the body is too short for its type.
    pub fn parse(&self) -> Result<XbeeFrame<'a>, FrameError> {
        XbeeFrame::from_parts(self.frame_type, self.body)
    }
}

/// ZigBee Transmit Request (0x10), host → radio.
///
/// | Field | Offset | Size | Notes |
/// |---|---|---|---|
/// | frame type | 0 | 1 | `10` |
/// | frame id | 1 | 1 | 0 = no Transmit Status wanted |
/// | 64-bit destination | 2 | 8 | [`BROADCAST_64`] for broadcast |
/// | 16-bit destination | 10 | 2 | [`UNKNOWN_16`] when unknown |
/// | broadcast radius | 12 | 1 | 0 = maximum hops |
/// | options | 13 | 1 | |
/// | RF data | 14 | n | |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransmitRequest<'a> {
    /// Frame id; non-zero asks the radio for a [`TransmitStatus`].
    pub frame_id: u8,
    /// 64-bit destination address.
    pub dest64: [u8; 8],
    /// 16-bit destination network address ([`UNKNOWN_16`] if not known).
    pub dest16: u16,
    /// Maximum hops for a broadcast (0 = the network maximum).
    pub radius: u8,
    /// Transmit options.
    pub options: u8,
    /// The payload (an MQTT-SN message).
    pub data: &'a [u8],
}

impl<'a> TransmitRequest<'a> {
    /// A unicast to `dest64` with unknown 16-bit address, radius 0 and no options.
    #[must_use]
    pub const fn unicast(frame_id: u8, dest64: [u8; 8], data: &'a [u8]) -> Self {
        Self {
            frame_id,
            dest64,
            dest16: UNKNOWN_16,
            radius: 0,
            options: 0,
            data,
        }
    }

    /// A broadcast with hop limit `radius` (0 = maximum) and no options.
    #[must_use]
    pub const fn broadcast(frame_id: u8, radius: u8, data: &'a [u8]) -> Self {
        Self {
            frame_id,
            dest64: BROADCAST_64,
            dest16: UNKNOWN_16,
            radius,
            options: 0,
            data,
        }
    }
}

/// ZigBee Receive Packet (0x90), radio → host.
///
/// | Field | Offset | Size | Notes |
/// |---|---|---|---|
/// | frame type | 0 | 1 | `90` |
/// | 64-bit source | 1 | 8 | the node's WNID |
/// | 16-bit source | 9 | 2 | cache it for the next Transmit Request |
/// | receive options | 11 | 1 | bit [`RX_OPTION_BROADCAST`] |
/// | RF data | 12 | n | |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivePacket<'a> {
    /// 64-bit source address.
    pub src64: [u8; 8],
    /// 16-bit source network address.
    pub src16: u16,
    /// Receive options.
    pub options: u8,
    /// The payload (an MQTT-SN message).
    pub data: &'a [u8],
}

impl ReceivePacket<'_> {
    /// `true` when the packet was sent as a broadcast.
    #[must_use]
    pub const fn is_broadcast(&self) -> bool {
        self.options & RX_OPTION_BROADCAST != 0
    }
}

/// ZigBee Transmit Status (0x8B), radio → host.
///
/// | Field | Offset | Size |
/// |---|---|---|
/// | frame type | 0 | 1 (`8B`) |
/// | frame id | 1 | 1 |
/// | 16-bit destination | 2 | 2 |
/// | transmit retry count | 4 | 1 |
/// | delivery status | 5 | 1 (`00` = success) |
/// | discovery status | 6 | 1 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransmitStatus {
    /// The frame id of the Transmit Request this reports on.
    pub frame_id: u8,
    /// The 16-bit address the packet went to.
    pub dest16: u16,
    /// Transmission retries.
    pub retry_count: u8,
    /// Delivery status ([`DELIVERY_SUCCESS`] = delivered).
    pub delivery_status: u8,
    /// Route discovery status.
    pub discovery_status: u8,
}

impl TransmitStatus {
    /// `true` when the packet was delivered.
    #[must_use]
    pub const fn is_success(&self) -> bool {
        self.delivery_status == DELIVERY_SUCCESS
    }
}

/// Local AT command (0x08), host → radio: frame type, frame id, 2-character command, parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtCommand<'a> {
    /// Frame id; non-zero asks for an [`AtResponse`].
    pub frame_id: u8,
    /// The two command characters, e.g. `*b"SH"`.
    pub command: [u8; 2],
    /// Parameter value (empty to read the setting).
    pub parameter: &'a [u8],
}

/// Local AT command response (0x88), radio → host: frame type, frame id, command, status, data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtResponse<'a> {
    /// The frame id of the command.
    pub frame_id: u8,
    /// The two command characters.
    pub command: [u8; 2],
    /// Command status (0 = OK).
    pub status: u8,
    /// Register data (e.g. the 4 octets of SH or SL).
    pub data: &'a [u8],
}

/// The API frames the forwarder uses, typed. Borrows variable-length data from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XbeeFrame<'a> {
    /// 0x10.
    TransmitRequest(TransmitRequest<'a>),
    /// 0x90.
    ReceivePacket(ReceivePacket<'a>),
    /// 0x8B.
    TransmitStatus(TransmitStatus),
    /// 0x08.
    AtCommand(AtCommand<'a>),
    /// 0x88.
    AtResponse(AtResponse<'a>),
}

/// Largest fixed part of frame data (Transmit Request: type, id, 8, 2, radius, options).
const HEAD_MAX: usize = 14;

fn split_array<const K: usize>(body: &[u8]) -> Option<([u8; K], &[u8])> {
    body.split_first_chunk::<K>()
        .map(|(head, rest)| (*head, rest))
}

impl<'a> XbeeFrame<'a> {
    /// Types `frame_data` (frame type first), as delivered between the length and the
    /// checksum.
    ///
    /// # Errors
    /// [`FrameError::TooShort`] when `frame_data` is empty or too short for its type;
    /// [`FrameError::UnknownFrameType`] for other frame types.
    pub fn decode(frame_data: &'a [u8]) -> Result<Self, FrameError> {
        let (&frame_type, body) = frame_data
            .split_first()
            .ok_or(FrameError::TooShort { len: 0 })?;
        Self::from_parts(frame_type, body)
    }

    /// Types a frame given its type and the frame data after the type octet.
    ///
    /// # Errors
    /// As [`XbeeFrame::decode`].
    pub fn from_parts(frame_type: u8, body: &'a [u8]) -> Result<Self, FrameError> {
        let too_short = FrameError::TooShort {
            len: body.len().saturating_add(1),
        };
        match frame_type {
            TYPE_TRANSMIT_REQUEST => {
                let (
                    [
                        frame_id,
                        d0,
                        d1,
                        d2,
                        d3,
                        d4,
                        d5,
                        d6,
                        d7,
                        h,
                        l,
                        radius,
                        options,
                    ],
                    data,
                ) = split_array::<13>(body).ok_or(too_short)?;
                Ok(Self::TransmitRequest(TransmitRequest {
                    frame_id,
                    dest64: [d0, d1, d2, d3, d4, d5, d6, d7],
                    dest16: u16::from_be_bytes([h, l]),
                    radius,
                    options,
                    data,
                }))
            }
            TYPE_RECEIVE_PACKET => {
                let ([s0, s1, s2, s3, s4, s5, s6, s7, h, l, options], data) =
                    split_array::<11>(body).ok_or(too_short)?;
                Ok(Self::ReceivePacket(ReceivePacket {
                    src64: [s0, s1, s2, s3, s4, s5, s6, s7],
                    src16: u16::from_be_bytes([h, l]),
                    options,
                    data,
                }))
            }
            TYPE_TRANSMIT_STATUS => {
                // Trailing octets (newer firmware) are ignored.
                let (
                    [
                        frame_id,
                        h,
                        l,
                        retry_count,
                        delivery_status,
                        discovery_status,
                    ],
                    _,
                ) = split_array::<6>(body).ok_or(too_short)?;
                Ok(Self::TransmitStatus(TransmitStatus {
                    frame_id,
                    dest16: u16::from_be_bytes([h, l]),
                    retry_count,
                    delivery_status,
                    discovery_status,
                }))
            }
            TYPE_AT_COMMAND => {
                let ([frame_id, c0, c1], parameter) = split_array::<3>(body).ok_or(too_short)?;
                Ok(Self::AtCommand(AtCommand {
                    frame_id,
                    command: [c0, c1],
                    parameter,
                }))
            }
            TYPE_AT_RESPONSE => {
                let ([frame_id, c0, c1, status], data) = split_array::<4>(body).ok_or(too_short)?;
                Ok(Self::AtResponse(AtResponse {
                    frame_id,
                    command: [c0, c1],
                    status,
                    data,
                }))
            }
            other => Err(FrameError::UnknownFrameType(other)),
        }
    }

    /// The frame type octet.
    #[must_use]
    pub const fn frame_type(&self) -> u8 {
        match self {
            Self::TransmitRequest(_) => TYPE_TRANSMIT_REQUEST,
            Self::ReceivePacket(_) => TYPE_RECEIVE_PACKET,
            Self::TransmitStatus(_) => TYPE_TRANSMIT_STATUS,
            Self::AtCommand(_) => TYPE_AT_COMMAND,
            Self::AtResponse(_) => TYPE_AT_RESPONSE,
        }
    }

    /// Fixed part of the frame data (and its length) and the variable tail.
    fn parts(&self) -> ([u8; HEAD_MAX], usize, &'a [u8]) {
        let mut head = [0u8; HEAD_MAX];
        let mut len = 0usize;
        let mut push = |octets: &[u8]| {
            for &octet in octets {
                store(&mut head, &mut len, octet);
            }
        };
        push(&[self.frame_type()]);
        let tail: &'a [u8] = match *self {
            Self::TransmitRequest(t) => {
                push(&[t.frame_id]);
                push(&t.dest64);
                push(&t.dest16.to_be_bytes());
                push(&[t.radius, t.options]);
                t.data
            }
            Self::ReceivePacket(r) => {
                push(&r.src64);
                push(&r.src16.to_be_bytes());
                push(&[r.options]);
                r.data
            }
            Self::TransmitStatus(s) => {
                push(&[s.frame_id]);
                push(&s.dest16.to_be_bytes());
                push(&[s.retry_count, s.delivery_status, s.discovery_status]);
                &[]
            }
            Self::AtCommand(c) => {
                push(&[c.frame_id]);
                push(&c.command);
                c.parameter
            }
            Self::AtResponse(r) => {
                push(&[r.frame_id]);
                push(&r.command);
                push(&[r.status]);
                r.data
            }
        };
        (head, len, tail)
    }

    /// Octets of frame data (frame type included).
    #[must_use]
    pub fn frame_data_len(&self) -> usize {
        let (_, head_len, tail) = self.parts();
        head_len.saturating_add(tail.len())
    }

    /// Writes the frame data only (no delimiter, length, checksum or escaping).
    ///
    /// # Errors
    /// [`FrameError::BufferTooSmall`] when `out` is too small; nothing meaningful is written.
    pub fn encode_frame_data(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let (head, head_len, tail) = self.parts();
        let needed = head_len.saturating_add(tail.len());
        if out.len() < needed {
            return Err(FrameError::BufferTooSmall { needed });
        }
        let mut w = Out::new(out);
        w.put_all(head.get(..head_len).unwrap_or_default());
        w.put_all(tail);
        w.finish(needed)
    }

    /// Writes the complete API frame as sent on the serial line in `mode`.
    ///
    /// # Errors
    /// [`FrameError::TooLong`] when the frame data exceeds 65535 octets;
    /// [`FrameError::BufferTooSmall`] when `out` cannot hold the frame. Nothing meaningful is
    /// written on error.
    pub fn encode(&self, mode: ApiMode, out: &mut [u8]) -> Result<usize, FrameError> {
        let (head, head_len, tail) = self.parts();
        encode_parts(mode, head.get(..head_len).unwrap_or_default(), tail, out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a start delimiter; everything else is discarded silently.
    Hunt,
    LenHi,
    LenLo,
    Data,
    Checksum,
}

/// A streaming XBee API frame decoder for API mode 1 or 2, with an `N`-octet buffer for frame
/// data (the frame type included; the RF payload of a Receive Packet is `N − 12` octets at
/// most).
///
/// # Calling contract
/// Feed received octets in order through [`push`](Self::push) or [`feed`](Self::feed). Each
/// call yields at most one item:
/// - `Ok(frame)`: an intact frame (checksum verified), of any frame type; type it with
///   [`ApiFrame::parse`]. It borrows the decoder until the next call.
/// - `Err(e)`: a frame was dropped — [`FrameError::BadChecksum`], [`FrameError::Overrun`]
///   (length above `N`), [`FrameError::TooShort`] (length 0), or [`FrameError::Truncated`]
///   (API mode 2: a start delimiter inside a frame, which already begins the next frame).
///   Count it and keep feeding.
///
/// Octets outside frames are discarded silently until the next `7E`. In API mode 2 `7E`
/// never occurs inside a frame, so garbage costs at most the frames it touched; in API mode 1
/// resynchronisation is best effort (see [`ApiMode::Unescaped`]).
#[derive(Debug, Clone)]
pub struct XbeeDecoder<const N: usize> {
    mode: ApiMode,
    state: State,
    /// The previous octet was [`ESCAPE`] (mode 2).
    escaped: bool,
    /// Declared frame-data length.
    len: usize,
    /// Frame-data octets received so far.
    pos: usize,
    sum: u8,
    buf: [u8; N],
}

impl<const N: usize> XbeeDecoder<N> {
    /// A decoder for a radio in `mode`, waiting for a start delimiter.
    #[must_use]
    pub const fn new(mode: ApiMode) -> Self {
        Self {
            mode,
            state: State::Hunt,
            escaped: false,
            len: 0,
            pos: 0,
            sum: 0,
            buf: [0; N],
        }
    }

    /// The API mode this decoder expects.
    #[must_use]
    pub const fn mode(&self) -> ApiMode {
        self.mode
    }

    /// Forgets any partly received frame and hunts for the next start delimiter.
    pub fn reset(&mut self) {
        self.state = State::Hunt;
        self.escaped = false;
    }

    /// `true` when no partly received frame is buffered (useful at end of stream).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.state == State::Hunt
    }

    /// Processes one received octet; see the type's calling contract.
    pub fn push(&mut self, octet: u8) -> Option<Result<ApiFrame<'_>, FrameError>> {
        let item = self.step(octet)?;
        Some(item.map(|len| self.frame(len)))
    }

    /// Processes octets from `input` until one item is produced or `input` is exhausted.
    /// Returns the number of octets consumed (all of `input` when there is no item) and the
    /// item, if any.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<Result<ApiFrame<'_>, FrameError>>) {
        for (i, &octet) in input.iter().enumerate() {
            if let Some(item) = self.step(octet) {
                return (i.saturating_add(1), Some(item.map(|len| self.frame(len))));
            }
        }
        (input.len(), None)
    }

    fn frame(&self, len: usize) -> ApiFrame<'_> {
        let data = self.buf.get(..len).unwrap_or_default();
        match data.split_first() {
            Some((&frame_type, body)) => ApiFrame { frame_type, body },
            None => ApiFrame {
                frame_type: 0,
                body: &[],
            },
        }
    }

    fn start(&mut self) {
        self.state = State::LenHi;
        self.escaped = false;
        self.len = 0;
        self.pos = 0;
        self.sum = 0;
    }

    /// The state machine; `Ok(len)` is the length of intact frame data at the start of `buf`.
    fn step(&mut self, raw: u8) -> Option<Result<usize, FrameError>> {
        let escaped_mode = self.mode == ApiMode::Escaped;
        if raw == START && (escaped_mode || self.state == State::Hunt) {
            let truncated = self.state != State::Hunt;
            self.start();
            return truncated.then_some(Err(FrameError::Truncated));
        }
        if self.state == State::Hunt {
            return None;
        }
        let octet = if !escaped_mode {
            raw
        } else if self.escaped {
            self.escaped = false;
            raw ^ ESCAPE_XOR
        } else if raw == ESCAPE {
            self.escaped = true;
            return None;
        } else {
            raw
        };
        match self.state {
            State::Hunt => None,
            State::LenHi => {
                self.len = usize::from(octet).wrapping_shl(8);
                self.state = State::LenLo;
                None
            }
            State::LenLo => {
                self.len |= usize::from(octet);
                if self.len == 0 {
                    self.reset();
                    Some(Err(FrameError::TooShort { len: 0 }))
                } else if self.len > N {
                    self.reset();
                    Some(Err(FrameError::Overrun { limit: N }))
                } else {
                    self.state = State::Data;
                    None
                }
            }
            State::Data => {
                store(&mut self.buf, &mut self.pos, octet);
                self.sum = self.sum.wrapping_add(octet);
                if self.pos >= self.len {
                    self.state = State::Checksum;
                }
                None
            }
            State::Checksum => {
                self.reset();
                if self.sum.wrapping_add(octet) == 0xFF {
                    Some(Ok(self.len))
                } else {
                    let computed = 0xFFu8.wrapping_sub(self.sum);
                    Some(Err(FrameError::BadChecksum {
                        received: octet,
                        computed,
                    }))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NODE: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];
    const CONNACK: [u8; 3] = [0x03, 0x05, 0x00];
    const UNESCAPED: [u8; 21] = [
        0x7E, 0x00, 0x11, 0x10, 0x01, 0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D, 0xFF, 0xFE,
        0x00, 0x00, 0x03, 0x05, 0x00, 0xFF,
    ];
    const ESCAPED: [u8; 23] = [
        0x7E, 0x00, 0x7D, 0x31, 0x10, 0x01, 0x00, 0x7D, 0x33, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D,
        0xFF, 0xFE, 0x00, 0x00, 0x03, 0x05, 0x00, 0xFF,
    ];

    /// An owned decoded item, for comparisons.
    type Item = Result<(u8, Vec<u8>), FrameError>;

    fn own(item: Result<ApiFrame<'_>, FrameError>) -> Item {
        item.map(|f| (f.frame_type, f.body.to_vec()))
    }

    fn decode_all<const N: usize>(dec: &mut XbeeDecoder<N>, mut input: &[u8]) -> Vec<Item> {
        let mut items = Vec::new();
        while !input.is_empty() {
            let (used, item) = dec.feed(input);
            assert!(used > 0 && used <= input.len());
            match item {
                Some(item) => items.push(own(item)),
                None => assert_eq!(used, input.len()),
            }
            input = &input[used..];
        }
        items
    }

    fn decode_bytewise<const N: usize>(dec: &mut XbeeDecoder<N>, input: &[u8]) -> Vec<Item> {
        input.iter().filter_map(|&b| dec.push(b).map(own)).collect()
    }

    fn enc(mode: ApiMode, frame: &XbeeFrame<'_>) -> Vec<u8> {
        let mut out = vec![0u8; max_encoded_len(frame.frame_data_len())];
        let n = frame.encode(mode, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn connack_request() -> XbeeFrame<'static> {
        XbeeFrame::TransmitRequest(TransmitRequest::unicast(1, NODE, &CONNACK))
    }

    fn rx(data: &[u8]) -> XbeeFrame<'_> {
        XbeeFrame::ReceivePacket(ReceivePacket {
            src64: NODE,
            src16: 0x1234,
            options: 0,
            data,
        })
    }

    fn rx_item(data: &[u8]) -> Item {
        let mut body = NODE.to_vec();
        body.extend([0x12, 0x34, 0x00]);
        body.extend(data);
        Ok((TYPE_RECEIVE_PACKET, body))
    }

    #[test]
    fn connack_vector_api_mode_1_and_2() {
        assert_eq!(enc(ApiMode::Unescaped, &connack_request()), UNESCAPED);
        assert_eq!(enc(ApiMode::Escaped, &connack_request()), ESCAPED);
        let mut raw = vec![0u8; 64];
        let n = encode_api_frame(ApiMode::Escaped, &UNESCAPED[3..20], &mut raw).unwrap();
        assert_eq!(&raw[..n], ESCAPED);
        let mut data = [0u8; 17];
        assert_eq!(connack_request().encode_frame_data(&mut data), Ok(17));
        assert_eq!(data, UNESCAPED[3..20]);
    }

    #[test]
    fn connack_vector_decodes_in_both_modes() {
        for (mode, wire) in [
            (ApiMode::Unescaped, &UNESCAPED[..]),
            (ApiMode::Escaped, &ESCAPED[..]),
        ] {
            let mut dec = XbeeDecoder::<64>::new(mode);
            let (used, item) = dec.feed(wire);
            assert_eq!(used, wire.len());
            let frame = item.unwrap().unwrap();
            assert_eq!(frame.frame_type, TYPE_TRANSMIT_REQUEST);
            assert_eq!(frame.parse(), Ok(connack_request()));
            assert_eq!(XbeeFrame::decode(&UNESCAPED[3..20]), Ok(connack_request()));
            assert!(dec.is_idle());
        }
    }

    #[test]
    fn every_special_octet_is_escaped_in_mode_2() {
        let data = [START, ESCAPE, XON, XOFF, 0x00];
        let frame = rx(&data);
        let wire = enc(ApiMode::Escaped, &frame);
        // Nothing after the start delimiter is a raw special octet, except escapes.
        assert!(wire[1..].iter().all(|&b| b == ESCAPE || !needs_escape(b)));
        assert!(
            wire.windows(2).any(|w| w == [ESCAPE, 0x5E])
                && wire.windows(2).any(|w| w == [ESCAPE, 0x5D])
                && wire.windows(2).any(|w| w == [ESCAPE, 0x31])
                && wire.windows(2).any(|w| w == [ESCAPE, 0x33])
        );
        let mut dec = XbeeDecoder::<64>::new(ApiMode::Escaped);
        assert_eq!(decode_all(&mut dec, &wire), [rx_item(&data)]);
        // Mode 1 carries them verbatim.
        let wire1 = enc(ApiMode::Unescaped, &frame);
        assert_eq!(wire1.len(), 1 + 2 + 1 + 11 + data.len() + 1);
        let mut dec1 = XbeeDecoder::<64>::new(ApiMode::Unescaped);
        assert_eq!(decode_all(&mut dec1, &wire1), [rx_item(&data)]);
    }

    #[test]
    fn escaped_checksum_and_length() {
        // Find a payload whose checksum needs escaping.
        let payload = (0u8..=255)
            .map(|b| [0x02, b])
            .find(|p| {
                let mut data = [0u8; 64];
                let n = rx(p).encode_frame_data(&mut data).unwrap();
                needs_escape(checksum(&data[..n]))
            })
            .unwrap();
        let wire = enc(ApiMode::Escaped, &rx(&payload));
        assert_eq!(wire[wire.len() - 2], ESCAPE);
        let mut dec = XbeeDecoder::<64>::new(ApiMode::Escaped);
        assert_eq!(decode_all(&mut dec, &wire), [rx_item(&payload)]);
    }

    #[test]
    fn typed_frames_round_trip() {
        let frames = [
            connack_request(),
            XbeeFrame::TransmitRequest(TransmitRequest::broadcast(0, 3, &[0x02, 0x17])),
            rx(&[0x02, 0x17]),
            XbeeFrame::ReceivePacket(ReceivePacket {
                src64: NODE,
                src16: 0xFFFE,
                options: RX_OPTION_BROADCAST,
                data: &[0x03, 0x01, 0x00],
            }),
            XbeeFrame::TransmitStatus(TransmitStatus {
                frame_id: 1,
                dest16: 0x7D33,
                retry_count: 0,
                delivery_status: 0,
                discovery_status: 0,
            }),
            XbeeFrame::AtCommand(AtCommand {
                frame_id: 2,
                command: *b"SH",
                parameter: &[],
            }),
            XbeeFrame::AtResponse(AtResponse {
                frame_id: 2,
                command: *b"SL",
                status: 0,
                data: &[0x41, 0x5B, 0x6C, 0x2D],
            }),
        ];
        for mode in [ApiMode::Unescaped, ApiMode::Escaped] {
            let mut dec = XbeeDecoder::<64>::new(mode);
            for frame in &frames {
                let wire = enc(mode, frame);
                let (used, item) = dec.feed(&wire);
                assert_eq!(used, wire.len());
                assert_eq!(item.unwrap().unwrap().parse(), Ok(*frame));
            }
        }
    }

    #[test]
    fn typed_helpers() {
        let XbeeFrame::TransmitRequest(b) =
            XbeeFrame::TransmitRequest(TransmitRequest::broadcast(0, 0, &[]))
        else {
            unreachable!()
        };
        assert_eq!(b.dest64, BROADCAST_64);
        assert_eq!(b.dest16, 0xFFFE);
        let status = |delivery_status| TransmitStatus {
            frame_id: 1,
            dest16: 0,
            retry_count: 0,
            delivery_status,
            discovery_status: 0,
        };
        assert!(status(0).is_success());
        assert!(!status(0x21).is_success());
        let r = ReceivePacket {
            src64: NODE,
            src16: 0,
            options: 0x02,
            data: &[],
        };
        assert!(r.is_broadcast());
        assert!(!ReceivePacket { options: 0x01, ..r }.is_broadcast());
    }

    #[test]
    fn typed_parse_errors() {
        assert_eq!(XbeeFrame::decode(&[]), Err(FrameError::TooShort { len: 0 }));
        assert_eq!(
            XbeeFrame::decode(&[0x8A, 0x00]),
            Err(FrameError::UnknownFrameType(0x8A))
        );
        assert_eq!(
            XbeeFrame::decode(&[0x90; 13]),
            Ok(XbeeFrame::ReceivePacket(ReceivePacket {
                src64: [0x90; 8],
                src16: 0x9090,
                options: 0x90,
                data: &[0x90],
            }))
        );
        assert_eq!(
            XbeeFrame::decode(&[0x90; 12]).map(|f| f.frame_type()),
            Ok(0x90)
        );
        assert_eq!(
            XbeeFrame::decode(&[0x90; 11]),
            Err(FrameError::TooShort { len: 11 })
        );
        assert_eq!(
            XbeeFrame::decode(&[0x10; 13]),
            Err(FrameError::TooShort { len: 13 })
        );
        assert_eq!(
            XbeeFrame::decode(&[0x8B; 6]),
            Err(FrameError::TooShort { len: 6 })
        );
        assert_eq!(
            XbeeFrame::decode(&[0x08; 3]),
            Err(FrameError::TooShort { len: 3 })
        );
        assert_eq!(
            XbeeFrame::decode(&[0x88; 4]),
            Err(FrameError::TooShort { len: 4 })
        );
    }

    #[test]
    fn unknown_frame_type_is_delivered_by_the_framing() {
        // Modem Status 0x8A, status 0x06 (coordinator started).
        let mut wire = [0u8; 16];
        let n = encode_api_frame(ApiMode::Escaped, &[0x8A, 0x06], &mut wire).unwrap();
        assert_eq!(&wire[..n], [0x7E, 0x00, 0x02, 0x8A, 0x06, 0x6F]);
        let mut dec = XbeeDecoder::<16>::new(ApiMode::Escaped);
        let frame = dec.feed(&wire[..n]).1.unwrap().unwrap();
        assert_eq!(
            frame,
            ApiFrame {
                frame_type: 0x8A,
                body: &[0x06]
            }
        );
        assert_eq!(frame.parse(), Err(FrameError::UnknownFrameType(0x8A)));
    }

    #[test]
    fn two_frames_back_to_back() {
        for mode in [ApiMode::Unescaped, ApiMode::Escaped] {
            let mut input = enc(mode, &rx(&[0x02, 0x17]));
            input.extend(enc(mode, &rx(&[0x03, 0x05, 0x00])));
            let mut dec = XbeeDecoder::<64>::new(mode);
            assert_eq!(
                decode_all(&mut dec, &input),
                [rx_item(&[0x02, 0x17]), rx_item(&[0x03, 0x05, 0x00])]
            );
        }
    }

    #[test]
    fn garbage_before_and_between_frames_is_skipped() {
        for mode in [ApiMode::Unescaped, ApiMode::Escaped] {
            let mut input = vec![0x00, 0x11, 0x7D, 0xFF, 0x13];
            input.extend(enc(mode, &rx(&[0x02, 0x17])));
            input.extend([0x55, 0x7D, 0x7D, 0x00]);
            input.extend(enc(mode, &rx(&[0x03, 0x05, 0x00])));
            let mut dec = XbeeDecoder::<64>::new(mode);
            assert_eq!(
                decode_all(&mut dec, &input),
                [rx_item(&[0x02, 0x17]), rx_item(&[0x03, 0x05, 0x00])]
            );
        }
    }

    #[test]
    fn garbage_with_start_delimiters_costs_at_most_the_touched_frame_in_mode_2() {
        let mut input = vec![0x7E, 0x00, 0x7E, 0x7E, 0x01];
        input.extend(enc(ApiMode::Escaped, &rx(&[0x02, 0x17])));
        let mut dec = XbeeDecoder::<64>::new(ApiMode::Escaped);
        let items = decode_all(&mut dec, &input);
        assert_eq!(items.last(), Some(&rx_item(&[0x02, 0x17])));
        assert!(
            items[..items.len() - 1]
                .iter()
                .all(|i| *i == Err(FrameError::Truncated))
        );
    }

    #[test]
    fn truncated_frame_is_reported_and_the_next_one_decodes() {
        let first = enc(ApiMode::Escaped, &rx(&[0x02, 0x17]));
        let mut input = first[..first.len() - 4].to_vec();
        input.extend(enc(ApiMode::Escaped, &rx(&[0x03, 0x05, 0x00])));
        let mut dec = XbeeDecoder::<64>::new(ApiMode::Escaped);
        assert_eq!(
            decode_all(&mut dec, &input),
            [Err(FrameError::Truncated), rx_item(&[0x03, 0x05, 0x00])]
        );
    }

    #[test]
    fn bad_checksum_is_reported_then_recovery() {
        for mode in [ApiMode::Unescaped, ApiMode::Escaped] {
            let mut bad = enc(mode, &rx(&[0x02, 0x17]));
            let last = bad.len() - 1;
            let good_sum = bad[last];
            bad[last] = 0x00;
            let mut input = bad;
            input.extend(enc(mode, &rx(&[0x03, 0x05, 0x00])));
            let mut dec = XbeeDecoder::<64>::new(mode);
            assert_eq!(
                decode_all(&mut dec, &input),
                [
                    Err(FrameError::BadChecksum {
                        received: 0x00,
                        computed: good_sum
                    }),
                    rx_item(&[0x03, 0x05, 0x00])
                ]
            );
        }
    }

    #[test]
    fn garbage_inside_a_frame_then_recovery() {
        // A corrupted data octet.
        let mut bad = enc(ApiMode::Escaped, &rx(&[0x02, 0x17]));
        bad[8] ^= 0x04;
        let mut input = bad;
        input.extend(enc(ApiMode::Escaped, &rx(&[0x03, 0x05, 0x00])));
        let mut dec = XbeeDecoder::<64>::new(ApiMode::Escaped);
        let items = decode_all(&mut dec, &input);
        assert!(matches!(items[0], Err(FrameError::BadChecksum { .. })));
        assert_eq!(items[1..], [rx_item(&[0x03, 0x05, 0x00])]);
        // An inserted octet in mode 1: the checksum fails, hunting skips the leftover.
        let mut bad = enc(ApiMode::Unescaped, &rx(&[0x02, 0x17]));
        bad.insert(6, 0x42);
        let mut input = bad;
        input.extend(enc(ApiMode::Unescaped, &rx(&[0x03, 0x05, 0x00])));
        let mut dec = XbeeDecoder::<64>::new(ApiMode::Unescaped);
        let items = decode_all(&mut dec, &input);
        assert!(matches!(items[0], Err(FrameError::BadChecksum { .. })));
        assert_eq!(items[1..], [rx_item(&[0x03, 0x05, 0x00])]);
    }

    #[test]
    fn overrun_and_zero_length_then_recovery() {
        let mut input = enc(ApiMode::Escaped, &rx(&[0xAA; 40]));
        input.extend([0x7E, 0x00, 0x00, 0xFF]);
        input.extend(enc(ApiMode::Escaped, &rx(&[0x02, 0x17])));
        let mut dec = XbeeDecoder::<32>::new(ApiMode::Escaped);
        assert_eq!(
            decode_all(&mut dec, &input),
            [
                Err(FrameError::Overrun { limit: 32 }),
                Err(FrameError::TooShort { len: 0 }),
                rx_item(&[0x02, 0x17])
            ]
        );
        // Exactly N octets of frame data fit.
        let fits = enc(ApiMode::Escaped, &rx(&[0xAA; 20]));
        assert_eq!(decode_all(&mut dec, &fits), [rx_item(&[0xAA; 20])]);
        let mut zero = XbeeDecoder::<0>::new(ApiMode::Unescaped);
        assert_eq!(
            decode_all(&mut zero, &fits),
            [Err(FrameError::Overrun { limit: 0 })]
        );
    }

    #[test]
    fn encoder_errors_write_nothing() {
        let mut out = [0u8; 22];
        assert_eq!(
            connack_request().encode(ApiMode::Escaped, &mut out),
            Err(FrameError::BufferTooSmall { needed: 23 })
        );
        assert_eq!(out, [0; 22]);
        assert_eq!(
            connack_request().encode(ApiMode::Unescaped, &mut out[..21]),
            Ok(21)
        );
        let big = vec![0u8; 65_536];
        assert_eq!(
            encode_api_frame(ApiMode::Unescaped, &big, &mut [0u8; 8]),
            Err(FrameError::TooLong {
                len: 65_536,
                max: 65_535
            })
        );
        assert_eq!(
            connack_request().encode_frame_data(&mut [0u8; 16]),
            Err(FrameError::BufferTooSmall { needed: 17 })
        );
    }

    fn mode() -> impl Strategy<Value = ApiMode> {
        prop_oneof![Just(ApiMode::Unescaped), Just(ApiMode::Escaped)]
    }

    fn noisy_stream(mode: ApiMode) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..20).prop_map(move |d| enc(mode, &rx(&d))),
                proptest::collection::vec(any::<u8>(), 0..8),
                Just(vec![START]),
                Just(vec![ESCAPE]),
            ],
            0..10,
        )
        .prop_map(|chunks| chunks.concat())
    }

    proptest! {
        #[test]
        fn receive_packet_round_trip(mode in mode(),
                                     src64 in any::<[u8; 8]>(),
                                     src16 in any::<u16>(),
                                     options in any::<u8>(),
                                     data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let frame = XbeeFrame::ReceivePacket(ReceivePacket { src64, src16, options, data: &data });
            let wire = enc(mode, &frame);
            let mut dec = XbeeDecoder::<212>::new(mode);
            let (used, item) = dec.feed(&wire);
            prop_assert_eq!(used, wire.len());
            prop_assert_eq!(item.unwrap().unwrap().parse(), Ok(frame));
        }

        #[test]
        fn transmit_request_round_trip(mode in mode(),
                                       frame_id in any::<u8>(),
                                       dest64 in any::<[u8; 8]>(),
                                       dest16 in any::<u16>(),
                                       radius in any::<u8>(),
                                       options in any::<u8>(),
                                       data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let frame = XbeeFrame::TransmitRequest(TransmitRequest {
                frame_id, dest64, dest16, radius, options, data: &data,
            });
            let wire = enc(mode, &frame);
            let mut dec = XbeeDecoder::<214>::new(mode);
            let (used, item) = dec.feed(&wire);
            prop_assert_eq!(used, wire.len());
            prop_assert_eq!(item.unwrap().unwrap().parse(), Ok(frame));
        }

        #[test]
        fn arbitrary_input_never_panics(mode in mode(),
                                        input in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut dec = XbeeDecoder::<32>::new(mode);
            for (frame_type, body) in decode_all(&mut dec, &input).into_iter().flatten() {
                let _ = XbeeFrame::from_parts(frame_type, &body);
            }
            let mut tiny = XbeeDecoder::<1>::new(mode);
            let _ = decode_bytewise(&mut tiny, &input);
            let _ = XbeeFrame::decode(&input);
        }

        #[test]
        fn bytewise_equals_whole_buffer((mode, input) in mode().prop_flat_map(|m| (Just(m), noisy_stream(m)))) {
            let mut a = XbeeDecoder::<24>::new(mode);
            let mut b = XbeeDecoder::<24>::new(mode);
            prop_assert_eq!(decode_all(&mut a, &input), decode_bytewise(&mut b, &input));
        }

        #[test]
        fn frame_after_noise_always_decodes_in_mode_2(noise in proptest::collection::vec(any::<u8>(), 0..50),
                                                      data in proptest::collection::vec(any::<u8>(), 0..20)) {
            let mut input = noise;
            input.extend(enc(ApiMode::Escaped, &rx(&data)));
            let mut dec = XbeeDecoder::<64>::new(ApiMode::Escaped);
            let items = decode_all(&mut dec, &input);
            prop_assert_eq!(items.last(), Some(&rx_item(&data)));
        }
    }
}
