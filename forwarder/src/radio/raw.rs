//! [`RawCodec`]: bare MQTT-SN messages delimited by their own Length field, as mqtt-sn-tools'
//! serial bridge sends them; one node per line ([`NodeAddr::PointToPoint`]).
//!
//! There is no integrity check: a Length octet below 2 is dropped ([`RadioItem::Dropped`] with
//! `bad_length`) and the next octet tried. Anything sent to the port — unicast or broadcast —
//! goes to its one node unchanged.

use std::io;

use bytes::{Bytes, BytesMut};
use sn_codec::framing::{RawDecoder, raw};
use tokio_util::codec::{Decoder, Encoder};

use super::{MAX_FRAME, RadioItem, RadioOut, append, invalid};
use crate::core::{NodeAddr, RadioDest};

/// Decoder + encoder of the raw framing; see the module documentation.
#[derive(Debug)]
pub struct RawCodec {
    decoder: RawDecoder<MAX_FRAME>,
}

impl RawCodec {
    /// A fresh codec.
    pub fn new() -> Self {
        RawCodec {
            decoder: RawDecoder::new(),
        }
    }
}

impl Default for RawCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for RawCodec {
    type Item = RadioItem;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<RadioItem>> {
        let (used, frame) = self.decoder.feed(src);
        let item = frame.map(|r| match r {
            Ok(message) => RadioItem::Frame {
                node: NodeAddr::PointToPoint,
                message: Bytes::copy_from_slice(message),
            },
            Err(e) => RadioItem::Dropped(e.into()),
        });
        let _ = src.split_to(used.min(src.len()));
        Ok(item)
    }
}

impl Encoder<RadioOut> for RawCodec {
    type Error = io::Error;

    fn encode(&mut self, item: RadioOut, dst: &mut BytesMut) -> io::Result<()> {
        match item.to {
            RadioDest::Unicast(NodeAddr::PointToPoint) | RadioDest::Broadcast { .. } => {
                append(dst, item.message.len(), |out| {
                    raw::encode(&item.message, out)
                })
            }
            RadioDest::Unicast(other) => Err(invalid(format!("a raw port cannot address {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::radio::FrameDrop;
    use crate::radio::test_util::decode_all;

    #[test]
    fn messages_are_delimited_by_their_length_through_split_reads() {
        let stream = [0x00, 0x02, 0x16, 0x03, 0x05, 0x00, 0x01, 0x00, 0x04, 0x17];
        for chunk in [1, 2, 4, stream.len()] {
            let items = decode_all(&mut RawCodec::new(), &stream, chunk);
            assert_eq!(
                items,
                vec![
                    RadioItem::Dropped(FrameDrop::BadLength),
                    RadioItem::Frame {
                        node: NodeAddr::PointToPoint,
                        message: Bytes::from_static(&[0x02, 0x16])
                    },
                    RadioItem::Frame {
                        node: NodeAddr::PointToPoint,
                        message: Bytes::from_static(&[0x03, 0x05, 0x00])
                    },
                    RadioItem::Frame {
                        node: NodeAddr::PointToPoint,
                        message: Bytes::from_static(&[0x01, 0x00, 0x04, 0x17])
                    },
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn the_encoder_copies_valid_messages_and_refuses_inconsistent_ones() {
        let mut c = RawCodec::new();
        let mut dst = BytesMut::new();
        c.encode(
            RadioOut {
                to: RadioDest::Broadcast { radius: 0 },
                message: Bytes::from_static(&[0x02, 0x17]),
            },
            &mut dst,
        )
        .unwrap();
        assert_eq!(&dst[..], &[0x02, 0x17]);
        let e = c
            .encode(
                RadioOut {
                    to: RadioDest::Unicast(NodeAddr::PointToPoint),
                    message: Bytes::from_static(&[0x05, 0x17]),
                },
                &mut dst,
            )
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(&dst[..], &[0x02, 0x17]);
    }
}
