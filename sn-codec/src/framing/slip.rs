//! SLIP (RFC 1055) with a CRC-16/IBM-3740 trailer: our framing for firmware-demo motes and
//! radio dongles.
//!
//! ```text
//! frame   = END | escaped(content ‖ CRC-16 big-endian) | END
//! content = message                          (plain: one node per serial line)
//!         | addr_len(1) addr(addr_len) message   (addressed: one dongle, many nodes)
//! escaping: C0 (END) → DB DC, DB (ESC) → DB DD
//! ```
//!
//! The CRC ([`crc16`](super::crc16())) covers the unescaped content. The leading END flushes
//! whatever line noise the receiver has buffered; `END END` (an empty frame) is ignored.
//! Frames whose unescaped content ‖ CRC is shorter than [`MIN_FRAME_LEN`] octets or whose CRC
//! does not match are dropped and reported.
//!
//! ```
//! use sn_codec::framing::{SlipDecoder, slip};
//!
//! let mut wire = [0u8; 16];
//! let n = slip::encode(&[0x02, 0x17], &mut wire).unwrap(); // PINGRESP
//! assert_eq!(&wire[..n], &[0xC0, 0x02, 0x17, 0x19, 0xBB, 0xC0]);
//!
//! let mut decoder = SlipDecoder::<64>::new();
//! let (used, item) = decoder.feed(&wire[..n]);
//! assert_eq!(used, n);
//! assert_eq!(item, Some(Ok(&[0x02, 0x17][..])));
//! ```

use super::crc16::{Crc16, crc16};
use super::{FrameError, Out, store};

/// Frame delimiter.
pub const END: u8 = 0xC0;
/// Escape octet.
pub const ESC: u8 = 0xDB;
/// Follows [`ESC`] to stand for a data [`END`].
pub const ESC_END: u8 = 0xDC;
/// Follows [`ESC`] to stand for a data [`ESC`].
pub const ESC_ESC: u8 = 0xDD;
/// Octets of the CRC trailer.
pub const CRC_LEN: usize = 2;
/// The shortest acceptable unescaped frame content, CRC included (a 2-octet message + CRC).
pub const MIN_FRAME_LEN: usize = 4;
/// The shortest MQTT-SN message the encoders accept.
const MIN_MESSAGE_LEN: usize = 2;
/// The longest address the addressed variant can carry.
pub const MAX_ADDR_LEN: usize = u8::MAX as usize;

/// Octets `octet` occupies once escaped.
const fn escaped_len(octet: u8) -> usize {
    if octet == END || octet == ESC { 2 } else { 1 }
}

/// Escaped size of the concatenation of `parts`.
fn escaped_len_of(parts: &[&[u8]]) -> usize {
    parts
        .iter()
        .flat_map(|part| part.iter())
        .fold(0usize, |acc, &octet| acc.saturating_add(escaped_len(octet)))
}

fn put_escaped(out: &mut Out<'_>, octet: u8) {
    match octet {
        END => out.put_all(&[ESC, ESC_END]),
        ESC => out.put_all(&[ESC, ESC_ESC]),
        other => out.put(other),
    }
}

/// Exact on-the-wire size of the frame built from the concatenated `parts`.
fn frame_len_of(parts: &[&[u8]]) -> usize {
    let crc = Crc16::new();
    let crc = parts
        .iter()
        .fold(crc, |crc, part| crc.update(part))
        .finish();
    let [hi, lo] = crc.to_be_bytes();
    escaped_len_of(parts)
        .saturating_add(escaped_len(hi))
        .saturating_add(escaped_len(lo))
        .saturating_add(2)
}

/// Writes `END | escaped(parts ‖ CRC) | END`.
fn encode_parts(parts: &[&[u8]], out: &mut [u8]) -> Result<usize, FrameError> {
    let needed = frame_len_of(parts);
    if out.len() < needed {
        return Err(FrameError::BufferTooSmall { needed });
    }
    let crc = parts
        .iter()
        .fold(Crc16::new(), |crc, part| crc.update(part))
        .finish();
    let mut w = Out::new(out);
    w.put(END);
    parts
        .iter()
        .flat_map(|part| part.iter())
        .for_each(|&octet| put_escaped(&mut w, octet));
    crc.to_be_bytes()
        .iter()
        .for_each(|&octet| put_escaped(&mut w, octet));
    w.put(END);
    w.finish(needed)
}

/// Exact size of [`encode`]'s output for `message`.
#[must_use]
pub fn encoded_len(message: &[u8]) -> usize {
    frame_len_of(&[message])
}

/// An upper bound on the encoded size of a `message_len`-octet message (every octet escaped,
/// plus CRC and both ENDs), for sizing buffers; saturates instead of overflowing.
#[must_use]
pub const fn max_encoded_len(message_len: usize) -> usize {
    message_len
        .saturating_add(CRC_LEN)
        .saturating_mul(2)
        .saturating_add(2)
}

/// Frames `message` as `END | escaped(message ‖ CRC) | END` into `out` and returns the number
/// of octets written.
///
/// # Errors
/// [`FrameError::TooShort`] when `message` has fewer than 2 octets (the receiver would drop
/// it); [`FrameError::BufferTooSmall`] when `out` cannot hold the frame. Nothing meaningful is
/// written on error.
pub fn encode(message: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    if message.len() < MIN_MESSAGE_LEN {
        return Err(FrameError::TooShort { len: message.len() });
    }
    encode_parts(&[message], out)
}

/// Exact size of [`encode_addressed`]'s output.
#[must_use]
pub fn encoded_len_addressed(addr: &[u8], message: &[u8]) -> usize {
    let addr_len = [u8::try_from(addr.len()).unwrap_or(u8::MAX)];
    frame_len_of(&[&addr_len, addr, message])
}

/// Frames `message` for node `addr` (the addressed variant): the CRC-protected content is
/// `addr_len(1) addr message`.
///
/// # Errors
/// [`FrameError::TooLong`] when `addr` exceeds 255 octets; [`FrameError::TooShort`] when
/// `message` has fewer than 2 octets; [`FrameError::BufferTooSmall`] when `out` cannot hold
/// the frame. Nothing meaningful is written on error.
pub fn encode_addressed(addr: &[u8], message: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let addr_len = u8::try_from(addr.len()).map_err(|_| FrameError::TooLong {
        len: addr.len(),
        max: MAX_ADDR_LEN,
    })?;
    if message.len() < MIN_MESSAGE_LEN {
        return Err(FrameError::TooShort { len: message.len() });
    }
    encode_parts(&[&[addr_len], addr, message], out)
}

/// The content of an addressed SLIP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressedFrame<'a> {
    /// The node address (the forwarder's WNID for this node); may be empty.
    pub addr: &'a [u8],
    /// The MQTT-SN message.
    pub message: &'a [u8],
}

/// Splits the content returned by a [`SlipDecoder`] into address and message (addressed
/// variant).
///
/// # Errors
/// [`FrameError::TooShort`] when `content` is empty or the message is under 2 octets;
/// [`FrameError::BadAddress`] when the address length points past the end.
pub fn parse_addressed(content: &[u8]) -> Result<AddressedFrame<'_>, FrameError> {
    let (&addr_len, rest) = content
        .split_first()
        .ok_or(FrameError::TooShort { len: 0 })?;
    let (addr, message) =
        rest.split_at_checked(usize::from(addr_len))
            .ok_or(FrameError::BadAddress {
                addr_len,
                available: rest.len(),
            })?;
    if message.len() < MIN_MESSAGE_LEN {
        return Err(FrameError::TooShort { len: content.len() });
    }
    Ok(AddressedFrame { addr, message })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside a frame (possibly empty), storing octets.
    Data,
    /// The previous octet was ESC.
    Escape,
    /// The current frame was already reported as bad; discard up to the next END.
    Skip,
}

/// A streaming SLIP + CRC-16 decoder with an `N`-octet buffer.
///
/// `N` bounds the unescaped frame content *including* the 2-octet CRC: for messages of up to
/// `M` octets use `N = M + 2` (plain) or `N = M + 2 + 1 + max address length` (addressed).
///
/// # Calling contract
/// Feed received octets in order through [`push`](Self::push) or [`feed`](Self::feed). Each
/// call yields at most one item:
/// - `Ok(content)`: a frame whose CRC matched; `content` is the unescaped message without the
///   CRC (for the addressed variant, pass it to [`parse_addressed`]). It borrows the decoder
///   until the next call.
/// - `Err(e)`: a damaged frame was dropped ([`FrameError::BadCrc`], [`FrameError::TooShort`],
///   [`FrameError::BadEscape`] at its closing END or at the bad escape, [`FrameError::Overrun`]
///   as soon as the buffer is full). Count it and keep feeding: the decoder resynchronises on
///   the next END, so garbage costs at most the frames it touched.
///
/// Empty frames (`END END`) are ignored silently. Octets before the first END are treated as a
/// frame: leftover noise there yields one error, not a lost frame.
#[derive(Debug, Clone)]
pub struct SlipDecoder<const N: usize> {
    buf: [u8; N],
    len: usize,
    state: State,
}

impl<const N: usize> SlipDecoder<N> {
    /// An empty decoder.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            state: State::Data,
        }
    }

    /// Forgets any partly received frame.
    pub fn reset(&mut self) {
        self.len = 0;
        self.state = State::Data;
    }

    /// `true` when no partly received frame is buffered (useful at end of stream).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.len == 0 && self.state == State::Data
    }

    /// Processes one received octet; see the type's calling contract.
    pub fn push(&mut self, octet: u8) -> Option<Result<&[u8], FrameError>> {
        let item = self.step(octet)?;
        Some(item.map(|len| self.buf.get(..len).unwrap_or_default()))
    }

    /// Processes octets from `input` until one item is produced or `input` is exhausted.
    /// Returns the number of octets consumed (all of `input` when there is no item) and the
    /// item, if any.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<Result<&[u8], FrameError>>) {
        for (i, &octet) in input.iter().enumerate() {
            if let Some(item) = self.step(octet) {
                let consumed = i.saturating_add(1);
                return (
                    consumed,
                    Some(item.map(|len| self.buf.get(..len).unwrap_or_default())),
                );
            }
        }
        (input.len(), None)
    }

    /// The state machine; `Ok(len)` is the length of a valid message at the start of `buf`.
    fn step(&mut self, octet: u8) -> Option<Result<usize, FrameError>> {
        match (self.state, octet) {
            (State::Data, END) => self.end_of_frame(),
            (State::Escape, END) => {
                self.reset();
                Some(Err(FrameError::BadEscape { octet: END }))
            }
            (State::Skip, END) => {
                self.reset();
                None
            }
            (State::Skip, _) => None,
            (State::Data, ESC) => {
                self.state = State::Escape;
                None
            }
            (State::Escape, ESC_END) => self.store(END),
            (State::Escape, ESC_ESC) => self.store(ESC),
            (State::Escape, other) => {
                self.state = State::Skip;
                Some(Err(FrameError::BadEscape { octet: other }))
            }
            (State::Data, other) => self.store(other),
        }
    }

    fn store(&mut self, octet: u8) -> Option<Result<usize, FrameError>> {
        if store(&mut self.buf, &mut self.len, octet) {
            self.state = State::Data;
            None
        } else {
            self.state = State::Skip;
            Some(Err(FrameError::Overrun { limit: N }))
        }
    }

    fn end_of_frame(&mut self) -> Option<Result<usize, FrameError>> {
        let len = self.len;
        self.reset();
        if len == 0 {
            return None;
        }
        if len < MIN_FRAME_LEN {
            return Some(Err(FrameError::TooShort { len }));
        }
        let content = self.buf.get(..len).unwrap_or_default();
        let msg_len = len.saturating_sub(CRC_LEN);
        let (message, trailer) = content.split_at_checked(msg_len).unwrap_or_default();
        let received = match trailer {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            _ => return Some(Err(FrameError::TooShort { len })),
        };
        let computed = crc16(message);
        if received == computed {
            Some(Ok(msg_len))
        } else {
            Some(Err(FrameError::BadCrc { received, computed }))
        }
    }
}

impl<const N: usize> Default for SlipDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Item = Result<Vec<u8>, FrameError>;

    fn enc(message: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; max_encoded_len(message.len())];
        let n = encode(message, &mut out).unwrap();
        assert_eq!(n, encoded_len(message));
        out.truncate(n);
        out
    }

    fn enc_addressed(addr: &[u8], message: &[u8]) -> Vec<u8> {
        let mut out =
            vec![0u8; max_encoded_len(message.len().saturating_add(addr.len()).saturating_add(1))];
        let n = encode_addressed(addr, message, &mut out).unwrap();
        assert_eq!(n, encoded_len_addressed(addr, message));
        out.truncate(n);
        out
    }

    /// Feeds a whole buffer through `feed`, collecting every item.
    fn decode_all<const N: usize>(dec: &mut SlipDecoder<N>, mut input: &[u8]) -> Vec<Item> {
        let mut items = Vec::new();
        while !input.is_empty() {
            let (used, item) = dec.feed(input);
            assert!(used > 0 && used <= input.len());
            if let Some(item) = item {
                items.push(item.map(<[u8]>::to_vec));
            } else {
                assert_eq!(used, input.len());
            }
            input = &input[used..];
        }
        items
    }

    fn decode_bytewise<const N: usize>(dec: &mut SlipDecoder<N>, input: &[u8]) -> Vec<Item> {
        input
            .iter()
            .filter_map(|&b| dec.push(b).map(|r| r.map(<[u8]>::to_vec)))
            .collect()
    }

    #[test]
    fn pingresp_example() {
        assert_eq!(enc(&[0x02, 0x17]), [0xC0, 0x02, 0x17, 0x19, 0xBB, 0xC0]);
        let mut dec = SlipDecoder::<16>::new();
        assert_eq!(
            decode_all(&mut dec, &[0xC0, 0x02, 0x17, 0x19, 0xBB, 0xC0]),
            [Ok(vec![0x02, 0x17])]
        );
        assert!(dec.is_idle());
    }

    #[test]
    fn connack_example() {
        assert_eq!(
            enc(&[0x03, 0x05, 0x00]),
            [0xC0, 0x03, 0x05, 0x00, 0x6A, 0x39, 0xC0]
        );
        let mut dec = SlipDecoder::<16>::new();
        assert_eq!(
            decode_all(&mut dec, &[0xC0, 0x03, 0x05, 0x00, 0x6A, 0x39, 0xC0]),
            [Ok(vec![0x03, 0x05, 0x00])]
        );
    }

    #[test]
    fn special_octets_are_escaped_in_message_and_crc() {
        let message = [0x04, 0xC0, 0xDB, 0x00];
        let wire = enc(&message);
        let crc = crc16(&message).to_be_bytes();
        let mut expected = vec![0xC0, 0x04, 0xDB, 0xDC, 0xDB, 0xDD, 0x00];
        for b in crc {
            match b {
                0xC0 => expected.extend([0xDB, 0xDC]),
                0xDB => expected.extend([0xDB, 0xDD]),
                b => expected.push(b),
            }
        }
        expected.push(0xC0);
        assert_eq!(wire, expected);
        // No END inside the frame.
        assert!(!wire[1..wire.len() - 1].contains(&END));
        let mut dec = SlipDecoder::<16>::new();
        assert_eq!(decode_all(&mut dec, &wire), [Ok(message.to_vec())]);
    }

    #[test]
    fn escaped_crc_octet_round_trips() {
        // Search for a 2-octet message whose CRC contains C0 or DB, to cover CRC escaping.
        let message = (0u16..=u16::MAX)
            .map(u16::to_be_bytes)
            .find(|m| crc16(m).to_be_bytes().iter().any(|&b| b == END || b == ESC))
            .unwrap();
        let wire = enc(&message);
        assert_eq!(wire.len(), encoded_len(&message));
        assert!(wire.len() > 6);
        let mut dec = SlipDecoder::<8>::new();
        assert_eq!(decode_all(&mut dec, &wire), [Ok(message.to_vec())]);
    }

    #[test]
    fn empty_frames_are_ignored() {
        let mut dec = SlipDecoder::<16>::new();
        let mut input = vec![0xC0, 0xC0, 0xC0];
        input.extend(enc(&[0x02, 0x17]));
        input.extend([0xC0, 0xC0]);
        assert_eq!(decode_all(&mut dec, &input), [Ok(vec![0x02, 0x17])]);
    }

    #[test]
    fn two_frames_back_to_back() {
        let mut input = enc(&[0x02, 0x17]);
        input.extend(enc(&[0x03, 0x05, 0x00]));
        let mut dec = SlipDecoder::<16>::new();
        assert_eq!(
            decode_all(&mut dec, &input),
            [Ok(vec![0x02, 0x17]), Ok(vec![0x03, 0x05, 0x00])]
        );
        // Also without the second frame's leading END (a sender that shares delimiters).
        let mut shared = enc(&[0x02, 0x17]);
        shared.extend(&enc(&[0x03, 0x05, 0x00])[1..]);
        assert_eq!(
            decode_all(&mut dec, &shared),
            [Ok(vec![0x02, 0x17]), Ok(vec![0x03, 0x05, 0x00])]
        );
    }

    #[test]
    fn garbage_before_frame_costs_one_error_and_no_frame() {
        let mut input = vec![0x11, 0x22, 0x33, 0x44, 0x55];
        input.extend(enc(&[0x02, 0x17]));
        let mut dec = SlipDecoder::<16>::new();
        let items = decode_all(&mut dec, &input);
        assert_eq!(items.len(), 2);
        assert!(matches!(items[0], Err(FrameError::BadCrc { .. })));
        assert_eq!(items[1], Ok(vec![0x02, 0x17]));
    }

    #[test]
    fn short_garbage_is_too_short() {
        let mut input = vec![0x11, 0x22];
        input.extend(enc(&[0x02, 0x17]));
        let mut dec = SlipDecoder::<16>::new();
        assert_eq!(
            decode_all(&mut dec, &input),
            [Err(FrameError::TooShort { len: 2 }), Ok(vec![0x02, 0x17])]
        );
    }

    #[test]
    fn garbage_between_frames() {
        let mut input = enc(&[0x02, 0x17]);
        input.extend([0x99, 0x98, 0x97, 0x96, 0x95]);
        input.extend(enc(&[0x03, 0x05, 0x00]));
        let mut dec = SlipDecoder::<16>::new();
        let items = decode_all(&mut dec, &input);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], Ok(vec![0x02, 0x17]));
        assert!(items[1].is_err());
        assert_eq!(items[2], Ok(vec![0x03, 0x05, 0x00]));
    }

    #[test]
    fn garbage_inside_a_frame_is_a_crc_error_then_recovery() {
        let mut bad = enc(&[0x03, 0x05, 0x00]);
        bad.insert(3, 0x42);
        let mut input = bad;
        input.extend(enc(&[0x02, 0x17]));
        let mut dec = SlipDecoder::<16>::new();
        let items = decode_all(&mut dec, &input);
        assert!(matches!(items[0], Err(FrameError::BadCrc { .. })));
        assert_eq!(items[1..], [Ok(vec![0x02, 0x17])]);
    }

    #[test]
    fn corrupted_crc_reports_both_values() {
        let mut wire = enc(&[0x02, 0x17]);
        wire[4] ^= 0x01;
        let mut dec = SlipDecoder::<16>::new();
        assert_eq!(
            decode_all(&mut dec, &wire),
            [Err(FrameError::BadCrc {
                received: 0x19BA,
                computed: 0x19BB
            })]
        );
        assert_eq!(
            decode_all(&mut dec, &enc(&[0x02, 0x17])),
            [Ok(vec![0x02, 0x17])]
        );
    }

    #[test]
    fn bad_escape_drops_the_frame_then_recovers() {
        let mut input = vec![0xC0, 0x02, 0xDB, 0x01, 0x17, 0x19, 0xBB, 0xC0];
        input.extend(enc(&[0x02, 0x17]));
        let mut dec = SlipDecoder::<16>::new();
        assert_eq!(
            decode_all(&mut dec, &input),
            [
                Err(FrameError::BadEscape { octet: 0x01 }),
                Ok(vec![0x02, 0x17])
            ]
        );
        // ESC immediately followed by END aborts the frame.
        let mut input = vec![0xC0, 0x02, 0x17, 0xDB, 0xC0];
        input.extend(enc(&[0x02, 0x17]));
        assert_eq!(
            decode_all(&mut dec, &input),
            [
                Err(FrameError::BadEscape { octet: 0xC0 }),
                Ok(vec![0x02, 0x17])
            ]
        );
    }

    #[test]
    fn overrun_is_reported_once_then_recovers() {
        let long = [0x0A; 10];
        let mut input = enc(&long);
        input.extend(enc(&[0x02, 0x17]));
        let mut dec = SlipDecoder::<8>::new();
        assert_eq!(
            decode_all(&mut dec, &input),
            [Err(FrameError::Overrun { limit: 8 }), Ok(vec![0x02, 0x17])]
        );
        // Exactly N octets of content fit.
        let fits = [0x0A; 6];
        assert_eq!(decode_all(&mut dec, &enc(&fits)), [Ok(fits.to_vec())]);
    }

    #[test]
    fn zero_sized_buffer_never_panics() {
        let mut dec = SlipDecoder::<0>::new();
        assert_eq!(
            decode_all(&mut dec, &enc(&[0x02, 0x17])),
            [Err(FrameError::Overrun { limit: 0 })]
        );
    }

    #[test]
    fn encoder_rejects_small_buffers_and_short_messages() {
        let mut out = [0u8; 5];
        assert_eq!(
            encode(&[0x02, 0x17], &mut out),
            Err(FrameError::BufferTooSmall { needed: 6 })
        );
        assert_eq!(out, [0; 5]);
        assert_eq!(
            encode(&[0x02], &mut [0u8; 16]),
            Err(FrameError::TooShort { len: 1 })
        );
        assert_eq!(
            encode_addressed(&[0; 256], &[0x02, 0x17], &mut [0u8; 600]),
            Err(FrameError::TooLong { len: 256, max: 255 })
        );
        let mut exact = [0u8; 6];
        assert_eq!(encode(&[0x02, 0x17], &mut exact), Ok(6));
    }

    #[test]
    fn addressed_variant_round_trip() {
        let addr = [0xC0, 0x01];
        let wire = enc_addressed(&addr, &[0x02, 0x17]);
        let mut expected_content = vec![0x02, 0xC0, 0x01, 0x02, 0x17];
        let crc = crc16(&expected_content);
        expected_content.extend(crc.to_be_bytes());
        let mut dec = SlipDecoder::<16>::new();
        let items = decode_all(&mut dec, &wire);
        assert_eq!(items, [Ok(vec![0x02, 0xC0, 0x01, 0x02, 0x17])]);
        let content = items[0].as_ref().unwrap();
        assert_eq!(
            parse_addressed(content),
            Ok(AddressedFrame {
                addr: &addr,
                message: &[0x02, 0x17]
            })
        );
        // Empty address.
        let wire = enc_addressed(&[], &[0x02, 0x17]);
        assert_eq!(wire, {
            let mut w = vec![0xC0, 0x00, 0x02, 0x17];
            w.extend(crc16(&[0x00, 0x02, 0x17]).to_be_bytes());
            w.push(0xC0);
            w
        });
    }

    #[test]
    fn parse_addressed_rejects_bad_lengths() {
        assert_eq!(parse_addressed(&[]), Err(FrameError::TooShort { len: 0 }));
        assert_eq!(
            parse_addressed(&[5, 1, 2]),
            Err(FrameError::BadAddress {
                addr_len: 5,
                available: 2
            })
        );
        assert_eq!(
            parse_addressed(&[1, 9, 2]),
            Err(FrameError::TooShort { len: 3 })
        );
    }

    #[test]
    fn display_is_one_line() {
        let text = FrameError::BadCrc {
            received: 1,
            computed: 2,
        }
        .to_string();
        assert_eq!(
            text,
            "bad CRC-16: frame carries 0x0001, content gives 0x0002"
        );
    }

    fn noisy_stream() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 2..20).prop_map(|m| enc(&m)),
                proptest::collection::vec(any::<u8>(), 0..8),
                Just(vec![0xC0]),
                Just(vec![0xDB]),
            ],
            0..10,
        )
        .prop_map(|chunks| chunks.concat())
    }

    proptest! {
        #[test]
        fn round_trip(message in proptest::collection::vec(any::<u8>(), 2..300)) {
            let wire = enc(&message);
            let mut dec = SlipDecoder::<302>::new();
            prop_assert_eq!(decode_all(&mut dec, &wire), vec![Ok(message)]);
            prop_assert!(dec.is_idle());
        }

        #[test]
        fn addressed_round_trip(addr in proptest::collection::vec(any::<u8>(), 0..12),
                                message in proptest::collection::vec(any::<u8>(), 2..100)) {
            let wire = enc_addressed(&addr, &message);
            let mut dec = SlipDecoder::<128>::new();
            let items = decode_all(&mut dec, &wire);
            prop_assert_eq!(items.len(), 1);
            let content = items[0].as_ref().unwrap();
            let frame = parse_addressed(content).unwrap();
            prop_assert_eq!(frame.addr, &addr[..]);
            prop_assert_eq!(frame.message, &message[..]);
        }

        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut dec = SlipDecoder::<32>::new();
            let _ = decode_all(&mut dec, &input);
            let mut small = SlipDecoder::<3>::new();
            let _ = decode_bytewise(&mut small, &input);
        }

        #[test]
        fn bytewise_equals_whole_buffer(input in noisy_stream()) {
            let mut a = SlipDecoder::<24>::new();
            let mut b = SlipDecoder::<24>::new();
            prop_assert_eq!(decode_all(&mut a, &input), decode_bytewise(&mut b, &input));
        }

        #[test]
        fn frame_after_noise_and_end_always_decodes(noise in proptest::collection::vec(any::<u8>(), 0..50),
                                                    message in proptest::collection::vec(any::<u8>(), 2..20)) {
            let mut input = noise;
            input.extend(enc(&message));
            let mut dec = SlipDecoder::<64>::new();
            let items = decode_all(&mut dec, &input);
            prop_assert_eq!(items.last(), Some(&Ok(message)));
        }
    }
}
