//! The raw serial form of mqtt-sn-tools' `mqtt-sn-serial-bridge`: bare MQTT-SN messages back to
//! back, delimited only by their own Length field.
//!
//! ```text
//! short form: L (2..=255) | L − 1 more octets
//! long form:  01 | hi | lo | (hi·256 + lo) − 3 more octets   (total ≥ 4; our extension)
//! ```
//!
//! There is no escaping, checksum or resynchronisation: a Length octet below 2 is dropped and
//! the next octet tried (a heuristic, as in that tool). mqtt-sn-tools neither sends nor
//! understands the 3-octet form; our decoder accepts it because our gateway may send long
//! messages, and the encoder writes whatever form the message already has.
//!
//! ```
//! use sn_codec::framing::{RawDecoder, raw};
//!
//! let mut wire = [0u8; 8];
//! let n = raw::encode(&[0x03, 0x05, 0x00], &mut wire).unwrap(); // CONNACK, unchanged
//! assert_eq!(&wire[..n], &[0x03, 0x05, 0x00]);
//!
//! let mut decoder = RawDecoder::<256>::new();
//! assert_eq!(decoder.feed(&wire[..n]), (3, Some(Ok(&[0x03, 0x05, 0x00][..]))));
//! ```

use super::{FrameError, Out, store};

/// The first octet of the 3-octet Length form.
pub const LONG_FORM: u8 = 0x01;

/// Checks that `message`'s Length field is valid and equals its size.
fn check_message(message: &[u8]) -> Result<(), FrameError> {
    let actual = message.len();
    let declared = match message {
        [] => {
            return Err(FrameError::LengthMismatch {
                declared: 0,
                actual,
            });
        }
        [LONG_FORM, hi, lo, ..] => {
            let total = usize::from(u16::from_be_bytes([*hi, *lo]));
            if total < 4 {
                return Err(FrameError::BadLength { declared: total });
            }
            total
        }
        [LONG_FORM, ..] => {
            return Err(FrameError::LengthMismatch {
                declared: 0,
                actual,
            });
        }
        [0, ..] => return Err(FrameError::BadLength { declared: 0 }),
        [len, ..] => usize::from(*len),
    };
    if declared == actual {
        Ok(())
    } else {
        Err(FrameError::LengthMismatch { declared, actual })
    }
}

/// Copies `message` unchanged into `out` after checking that its Length field matches its size
/// (a mismatch would desynchronise the receiver for good).
///
/// # Errors
/// [`FrameError::BadLength`] or [`FrameError::LengthMismatch`] when the message's Length field
/// is invalid or disagrees with its size; [`FrameError::BufferTooSmall`] when `out` is too
/// small. Nothing is written on error.
pub fn encode(message: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    check_message(message)?;
    let needed = message.len();
    if out.len() < needed {
        return Err(FrameError::BufferTooSmall { needed });
    }
    let mut w = Out::new(out);
    w.put_all(message);
    w.finish(needed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a Length octet.
    Idle,
    /// Read `01`; expecting the high length octet.
    LongHi,
    /// Read `01 hi`; expecting the low length octet.
    LongLo { hi: u8 },
    /// Storing a message of `total` octets.
    Body { total: usize },
    /// Discarding the rest of an overlong message.
    Skip { remaining: usize },
}

/// A streaming decoder for the raw form with an `N`-octet buffer (the longest message
/// accepted, Length field included).
///
/// # Calling contract
/// Feed received octets in order through [`push`](Self::push) or [`feed`](Self::feed). Each
/// call yields at most one item:
/// - `Ok(message)`: one complete MQTT-SN message, Length field included, ready for
///   [`Packet::decode`](crate::Packet::decode). It borrows the decoder until the next call.
/// - `Err(FrameError::BadLength)`: a Length octet below 2 (or a long form below 4) was dropped;
///   decoding continues with the next octet.
/// - `Err(FrameError::Overrun)`: the declared length exceeds `N`; reported at once, after which
///   the declared number of octets is skipped.
///
/// Nothing else can be detected: a lost or extra octet desynchronises the stream until the
/// length heuristics happen to realign it.
#[derive(Debug, Clone)]
pub struct RawDecoder<const N: usize> {
    buf: [u8; N],
    pos: usize,
    state: State,
}

impl<const N: usize> RawDecoder<N> {
    /// An empty decoder.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            pos: 0,
            state: State::Idle,
        }
    }

    /// Forgets any partly received message.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.state = State::Idle;
    }

    /// `true` when no partly received message is buffered (useful at end of stream).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
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

    /// Starts storing a message of `total` octets whose header is `header`, or skips it.
    fn begin(&mut self, total: usize, header: &[u8]) -> Option<Result<usize, FrameError>> {
        if total > N {
            self.pos = 0;
            let remaining = total.saturating_sub(header.len());
            self.state = if remaining == 0 {
                State::Idle
            } else {
                State::Skip { remaining }
            };
            return Some(Err(FrameError::Overrun { limit: N }));
        }
        self.pos = 0;
        for &octet in header {
            store(&mut self.buf, &mut self.pos, octet);
        }
        self.state = State::Body { total };
        self.complete(total)
    }

    fn complete(&mut self, total: usize) -> Option<Result<usize, FrameError>> {
        if self.pos >= total {
            self.reset();
            Some(Ok(total))
        } else {
            None
        }
    }

    /// The state machine; `Ok(len)` is the length of a message at the start of `buf`.
    fn step(&mut self, octet: u8) -> Option<Result<usize, FrameError>> {
        match self.state {
            State::Idle => match octet {
                0 => Some(Err(FrameError::BadLength { declared: 0 })),
                LONG_FORM => {
                    self.state = State::LongHi;
                    None
                }
                len => self.begin(usize::from(len), &[len]),
            },
            State::LongHi => {
                self.state = State::LongLo { hi: octet };
                None
            }
            State::LongLo { hi } => {
                let total = usize::from(u16::from_be_bytes([hi, octet]));
                if total < 4 {
                    self.reset();
                    Some(Err(FrameError::BadLength { declared: total }))
                } else {
                    self.begin(total, &[LONG_FORM, hi, octet])
                }
            }
            State::Body { total } => {
                store(&mut self.buf, &mut self.pos, octet);
                self.complete(total)
            }
            State::Skip { remaining } => {
                let remaining = remaining.saturating_sub(1);
                self.state = if remaining == 0 {
                    State::Idle
                } else {
                    State::Skip { remaining }
                };
                None
            }
        }
    }
}

impl<const N: usize> Default for RawDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Item = Result<Vec<u8>, FrameError>;

    fn decode_all<const N: usize>(dec: &mut RawDecoder<N>, mut input: &[u8]) -> Vec<Item> {
        let mut items = Vec::new();
        while !input.is_empty() {
            let (used, item) = dec.feed(input);
            assert!(used > 0 && used <= input.len());
            match item {
                Some(item) => items.push(item.map(<[u8]>::to_vec)),
                None => assert_eq!(used, input.len()),
            }
            input = &input[used..];
        }
        items
    }

    fn decode_bytewise<const N: usize>(dec: &mut RawDecoder<N>, input: &[u8]) -> Vec<Item> {
        input
            .iter()
            .filter_map(|&b| dec.push(b).map(|r| r.map(<[u8]>::to_vec)))
            .collect()
    }

    /// A valid message of `total` octets in the form the Length rules choose.
    fn message(total: usize, fill: u8) -> Vec<u8> {
        let mut m = if total <= 255 {
            vec![total as u8]
        } else {
            let [hi, lo] = (total as u16).to_be_bytes();
            vec![LONG_FORM, hi, lo]
        };
        m.resize(total, fill);
        m
    }

    #[test]
    fn connack_and_pingresp_back_to_back() {
        let mut dec = RawDecoder::<64>::new();
        let input = [0x03, 0x05, 0x00, 0x02, 0x17];
        assert_eq!(
            decode_all(&mut dec, &input),
            [Ok(vec![0x03, 0x05, 0x00]), Ok(vec![0x02, 0x17])]
        );
        assert!(dec.is_idle());
    }

    #[test]
    fn long_form_is_accepted() {
        let long = message(300, 0xAB);
        let mut input = long.clone();
        input.extend([0x02, 0x17]);
        // The long form may also carry a small total.
        input.extend([0x01, 0x00, 0x05, 0x0C, 0x00]);
        let mut dec = RawDecoder::<512>::new();
        assert_eq!(
            decode_all(&mut dec, &input),
            [
                Ok(long),
                Ok(vec![0x02, 0x17]),
                Ok(vec![0x01, 0x00, 0x05, 0x0C, 0x00])
            ]
        );
    }

    #[test]
    fn lengths_below_two_are_dropped_one_octet_at_a_time() {
        let mut input = vec![0x00, 0x00];
        input.extend([0x02, 0x17]);
        let mut dec = RawDecoder::<64>::new();
        assert_eq!(
            decode_all(&mut dec, &input),
            [
                Err(FrameError::BadLength { declared: 0 }),
                Err(FrameError::BadLength { declared: 0 }),
                Ok(vec![0x02, 0x17])
            ]
        );
        // A long form below 4 drops its three octets.
        let input = [0x01, 0x00, 0x03, 0x02, 0x17];
        assert_eq!(
            decode_all(&mut dec, &input),
            [
                Err(FrameError::BadLength { declared: 3 }),
                Ok(vec![0x02, 0x17])
            ]
        );
    }

    #[test]
    fn garbage_between_frames_realigns_on_zero_octets() {
        // Idle-line zeros between messages are skipped and counted.
        let input = [0x02, 0x17, 0x00, 0x00, 0x00, 0x03, 0x05, 0x00];
        let mut dec = RawDecoder::<64>::new();
        let items = decode_all(&mut dec, &input);
        assert_eq!(items.first(), Some(&Ok(vec![0x02, 0x17])));
        assert_eq!(items.last(), Some(&Ok(vec![0x03, 0x05, 0x00])));
        assert_eq!(items.len(), 5);
    }

    #[test]
    fn overrun_skips_the_declared_length() {
        let mut input = message(40, 0x0A);
        input.extend([0x02, 0x17]);
        input.extend(message(300, 0x0B));
        input.extend([0x03, 0x05, 0x00]);
        let mut dec = RawDecoder::<16>::new();
        assert_eq!(
            decode_all(&mut dec, &input),
            [
                Err(FrameError::Overrun { limit: 16 }),
                Ok(vec![0x02, 0x17]),
                Err(FrameError::Overrun { limit: 16 }),
                Ok(vec![0x03, 0x05, 0x00])
            ]
        );
        // Exactly N octets fit.
        assert_eq!(decode_all(&mut dec, &message(16, 1)), [Ok(message(16, 1))]);
        let mut zero = RawDecoder::<0>::new();
        assert_eq!(
            decode_all(&mut zero, &[0x02, 0x17, 0x02]),
            [
                Err(FrameError::Overrun { limit: 0 }),
                Err(FrameError::Overrun { limit: 0 })
            ]
        );
        assert!(!zero.is_idle());
    }

    #[test]
    fn encoder_writes_the_message_unchanged() {
        let mut out = [0u8; 8];
        assert_eq!(encode(&[0x02, 0x17], &mut out), Ok(2));
        assert_eq!(out[..2], [0x02, 0x17]);
        let long = message(300, 0xAB);
        let mut big = vec![0u8; 300];
        assert_eq!(encode(&long, &mut big), Ok(300));
        assert_eq!(big, long);
    }

    #[test]
    fn encoder_rejects_inconsistent_messages() {
        let mut out = [0u8; 8];
        assert_eq!(
            encode(&[], &mut out),
            Err(FrameError::LengthMismatch {
                declared: 0,
                actual: 0
            })
        );
        assert_eq!(
            encode(&[0x00, 0x17], &mut out),
            Err(FrameError::BadLength { declared: 0 })
        );
        assert_eq!(
            encode(&[0x01], &mut out),
            Err(FrameError::LengthMismatch {
                declared: 0,
                actual: 1
            })
        );
        assert_eq!(
            encode(&[0x01, 0x00, 0x03], &mut out),
            Err(FrameError::BadLength { declared: 3 })
        );
        assert_eq!(
            encode(&[0x03, 0x17], &mut out),
            Err(FrameError::LengthMismatch {
                declared: 3,
                actual: 2
            })
        );
        assert_eq!(
            encode(&[0x02, 0x17], &mut out[..1]),
            Err(FrameError::BufferTooSmall { needed: 2 })
        );
        assert_eq!(out, [0; 8]);
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                (2usize..40, any::<u8>()).prop_map(|(n, f)| message(n, f)),
                (256usize..400, any::<u8>()).prop_map(|(n, f)| message(n, f)),
                proptest::collection::vec(any::<u8>(), 0..4),
            ],
            0..8,
        )
        .prop_map(|chunks| chunks.concat())
    }

    proptest! {
        #[test]
        fn round_trip(total in 2usize..600, fill in any::<u8>()) {
            let m = message(total, fill);
            let mut out = vec![0u8; total];
            prop_assert_eq!(encode(&m, &mut out), Ok(total));
            let mut dec = RawDecoder::<600>::new();
            prop_assert_eq!(decode_all(&mut dec, &out), vec![Ok(m)]);
        }

        #[test]
        fn messages_back_to_back(lens in proptest::collection::vec(2usize..300, 1..6)) {
            let messages: Vec<_> = lens.iter().map(|&n| message(n, 0xEE)).collect();
            let mut dec = RawDecoder::<300>::new();
            let expected: Vec<Item> = messages.iter().cloned().map(Ok).collect();
            prop_assert_eq!(decode_all(&mut dec, &messages.concat()), expected);
        }

        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut dec = RawDecoder::<64>::new();
            let _ = decode_all(&mut dec, &input);
            let mut tiny = RawDecoder::<2>::new();
            let _ = decode_bytewise(&mut tiny, &input);
            let _ = encode(&input, &mut [0u8; 64]);
        }

        #[test]
        fn bytewise_equals_whole_buffer(input in stream()) {
            let mut a = RawDecoder::<64>::new();
            let mut b = RawDecoder::<64>::new();
            prop_assert_eq!(decode_all(&mut a, &input), decode_bytewise(&mut b, &input));
        }
    }
}
