//! [`SlipCodec`]: SLIP + CRC-16/IBM-3740 frames, plain (one node per line) or addressed (each
//! frame carries `addr_len addr` before the message, inside the CRC; the address is the node's
//! WNID).
//!
//! Damaged frames (bad CRC, bad escape, too short, overrun, bad address) are
//! [`RadioItem::Dropped`]; the decoder resynchronises on the next END, so noise costs at most the
//! frames it touched. Broadcasts: addressed frames with an empty address (radius not carried);
//! on a plain line the message is simply sent to its one node.

use std::io;

use bytes::{Bytes, BytesMut};
use sn_codec::framing::{SlipDecoder, slip};
use tokio_util::codec::{Decoder, Encoder};

use super::{MAX_FRAME, RadioItem, RadioOut, append, invalid};
use crate::core::{NodeAddr, RadioDest};

/// Decoder + encoder of SLIP frames; see the module documentation.
#[derive(Debug)]
pub struct SlipCodec {
    decoder: SlipDecoder<MAX_FRAME>,
    addressed: bool,
}

impl SlipCodec {
    /// A codec for the addressed variant or the plain one.
    pub fn new(addressed: bool) -> Self {
        SlipCodec {
            decoder: SlipDecoder::new(),
            addressed,
        }
    }
}

impl Decoder for SlipCodec {
    type Item = RadioItem;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<RadioItem>> {
        let addressed = self.addressed;
        let (used, frame) = self.decoder.feed(src);
        let item = frame.map(|r| match r {
            Err(e) => RadioItem::Dropped(e.into()),
            Ok(content) if addressed => match slip::parse_addressed(content) {
                Ok(f) => RadioItem::Frame {
                    node: NodeAddr::Link(f.addr.to_vec()),
                    message: Bytes::copy_from_slice(f.message),
                },
                Err(e) => RadioItem::Dropped(e.into()),
            },
            Ok(content) => RadioItem::Frame {
                node: NodeAddr::PointToPoint,
                message: Bytes::copy_from_slice(content),
            },
        });
        let _ = src.split_to(used.min(src.len()));
        Ok(item)
    }
}

impl Encoder<RadioOut> for SlipCodec {
    type Error = io::Error;

    fn encode(&mut self, item: RadioOut, dst: &mut BytesMut) -> io::Result<()> {
        let msg = &item.message;
        let addr: &[u8] = match (&item.to, self.addressed) {
            (RadioDest::Unicast(NodeAddr::Link(a)), true) => a,
            (RadioDest::Broadcast { .. }, true) => &[],
            (RadioDest::Unicast(NodeAddr::PointToPoint) | RadioDest::Broadcast { .. }, false) => {
                let max = slip::max_encoded_len(msg.len());
                return append(dst, max, |out| slip::encode(msg, out));
            }
            (RadioDest::Unicast(other), _) => {
                return Err(invalid(format!("this SLIP port cannot address {other}")));
            }
        };
        let max = slip::max_encoded_len(msg.len().saturating_add(addr.len()).saturating_add(1));
        append(dst, max, |out| slip::encode_addressed(addr, msg, out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::radio::FrameDrop;
    use crate::radio::test_util::decode_all;

    fn out(to: RadioDest, m: &'static [u8]) -> RadioOut {
        RadioOut {
            to,
            message: Bytes::from_static(m),
        }
    }

    #[test]
    fn plain_frames_match_the_documented_bytes_and_decode_through_noise() {
        let mut c = SlipCodec::new(false);
        let mut wire = BytesMut::new();
        c.encode(
            out(RadioDest::Unicast(NodeAddr::PointToPoint), &[0x02, 0x17]),
            &mut wire,
        )
        .unwrap();
        assert_eq!(&wire[..], &[0xC0, 0x02, 0x17, 0x19, 0xBB, 0xC0]);
        let mut stream = vec![0x55, 0xAA, 0x13];
        stream.extend_from_slice(&wire);
        stream.extend_from_slice(&[0xC0, 0x03, 0x05, 0x00, 0x6A, 0x38, 0xC0]); // bad CRC
        stream.extend_from_slice(&[0xC0, 0x03, 0x05, 0x00, 0x6A, 0x39, 0xC0]);
        for chunk in [1, 2, 5, stream.len()] {
            let items = decode_all(&mut SlipCodec::new(false), &stream, chunk);
            let frame = |m: &'static [u8]| RadioItem::Frame {
                node: NodeAddr::PointToPoint,
                message: Bytes::from_static(m),
            };
            assert_eq!(
                items,
                vec![
                    RadioItem::Dropped(FrameDrop::TooShort),
                    frame(&[0x02, 0x17]),
                    RadioItem::Dropped(FrameDrop::Crc),
                    frame(&[0x03, 0x05, 0x00]),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn addressed_frames_carry_the_node_address_both_ways() {
        let mut c = SlipCodec::new(true);
        let mut wire = BytesMut::new();
        c.encode(
            out(
                RadioDest::Unicast(NodeAddr::Link(vec![0xC0, 0x01])),
                &[0x02, 0x17],
            ),
            &mut wire,
        )
        .unwrap();
        c.encode(
            out(RadioDest::Broadcast { radius: 1 }, &[0x02, 0x17]),
            &mut wire,
        )
        .unwrap();
        let items = decode_all(&mut SlipCodec::new(true), &wire, 3);
        assert_eq!(
            items,
            vec![
                RadioItem::Frame {
                    node: NodeAddr::Link(vec![0xC0, 0x01]),
                    message: Bytes::from_static(&[0x02, 0x17])
                },
                RadioItem::Frame {
                    node: NodeAddr::Link(vec![]),
                    message: Bytes::from_static(&[0x02, 0x17])
                },
            ]
        );
        let e = c
            .encode(
                out(RadioDest::Unicast(NodeAddr::PointToPoint), &[0x02, 0x17]),
                &mut wire,
            )
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn an_addressed_frame_with_a_bad_address_length_is_dropped() {
        let mut wire = [0u8; 32];
        // content = addr_len 9 but only 2 octets follow.
        let n = slip::encode(&[0x09, 0x02, 0x17], &mut wire).unwrap();
        let items = decode_all(&mut SlipCodec::new(true), &wire[..n], 64);
        assert_eq!(items, vec![RadioItem::Dropped(FrameDrop::BadAddress)]);
    }
}
