//! [`XbeeCodec`]: XBee / ZigBee API frames (API mode 1 or 2) on a serial line.
//!
//! - Receive Packet (0x90) → [`RadioItem::Frame`] from `NodeAddr::Link(64-bit source)`; the
//!   16-bit network address is cached for the next Transmit Request to that node.
//! - Unicast → Transmit Request (0x10) with a fresh frame id (1..=255) so the radio reports a
//!   Transmit Status (0x8B); the codec remembers which node each id went to. A status that
//!   reports failure, or none within [`STATUS_TIMEOUT`] ([`XbeeCodec::expire`]), is a failed
//!   delivery ([`TxOutcome`]); a failure also forgets the node's cached 16-bit address.
//! - Broadcast → Transmit Request to the broadcast address with the radius as hop limit and
//!   frame id 0 (no status: broadcasts are not acknowledged).
//! - Checksum errors, overruns and truncated frames are [`RadioItem::Dropped`]; other frame
//!   types are [`RadioItem::Ignored`].

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant as StdInstant};

use bytes::{Bytes, BytesMut};
use sn_codec::framing::xbee::{self, UNKNOWN_16};
use sn_codec::framing::{ApiMode, FrameError, TransmitRequest, XbeeDecoder, XbeeFrame};
use tokio_util::codec::{Decoder, Encoder};

use super::{MAX_FRAME, RadioItem, RadioOut, append, invalid};
use crate::core::{NodeAddr, RadioDest};

/// How long the codec waits for a Transmit Status.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// Most cached 16-bit addresses.
pub const ADDR16_CACHE: usize = 1024;

/// The result of one unicast Transmit Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// The frame id of the request.
    pub frame_id: u8,
    /// The node it was for (`None` for a status whose request the codec no longer knows).
    pub node: Option<[u8; 8]>,
    /// The radio delivered it.
    pub delivered: bool,
    /// The delivery status octet (0 = success); `None` when no status came in time.
    pub status: Option<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    node: [u8; 8],
    sent: StdInstant,
}

/// Decoder + encoder of XBee API frames; see the module documentation.
#[derive(Debug)]
pub struct XbeeCodec {
    decoder: XbeeDecoder<MAX_FRAME>,
    mode: ApiMode,
    link: LinkState,
}

/// Frame ids in flight and the 16-bit address cache.
#[derive(Debug, Default)]
struct LinkState {
    next_id: u8,
    pending: BTreeMap<u8, Pending>,
    addr16: BTreeMap<[u8; 8], u16>,
    /// Requests whose frame id was reused before their status came.
    overwritten: Vec<TxOutcome>,
}

impl XbeeCodec {
    /// A codec for a radio in API mode 2 (`escaped`) or 1.
    pub fn new(escaped: bool) -> Self {
        let mode = if escaped {
            ApiMode::Escaped
        } else {
            ApiMode::Unescaped
        };
        XbeeCodec {
            decoder: XbeeDecoder::new(mode),
            mode,
            link: LinkState {
                next_id: 1,
                ..LinkState::default()
            },
        }
    }

    /// Requests still waiting for their Transmit Status.
    pub fn pending(&self) -> usize {
        self.link.pending.len()
    }

    /// The cached 16-bit address of `node`.
    pub fn cached_addr16(&self, node: &[u8; 8]) -> Option<u16> {
        self.link.addr16.get(node).copied()
    }

    /// Removes the requests sent at least [`STATUS_TIMEOUT`] before `now` and reports them as
    /// failed (plus any whose frame id had to be reused). Call it about once a second.
    pub fn expire(&mut self, now: StdInstant) -> Vec<TxOutcome> {
        self.link.expire(now)
    }
}

impl LinkState {
    fn expire(&mut self, now: StdInstant) -> Vec<TxOutcome> {
        let mut out = std::mem::take(&mut self.overwritten);
        let expired: Vec<u8> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent) >= STATUS_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                out.push(TxOutcome {
                    frame_id: id,
                    node: Some(p.node),
                    delivered: false,
                    status: None,
                });
            }
        }
        out
    }

    fn allocate_id(&mut self, node: [u8; 8]) -> u8 {
        let id = self.next_id;
        self.next_id = if id == u8::MAX {
            1
        } else {
            id.saturating_add(1)
        };
        let entry = Pending {
            node,
            sent: StdInstant::now(),
        };
        if let Some(old) = self.pending.insert(id, entry) {
            self.overwritten.push(TxOutcome {
                frame_id: id,
                node: Some(old.node),
                delivered: false,
                status: None,
            });
        }
        id
    }

    fn cache(&mut self, node: [u8; 8], addr16: u16) {
        if addr16 == UNKNOWN_16 {
            return;
        }
        if !self.addr16.contains_key(&node) && self.addr16.len() >= ADDR16_CACHE {
            self.addr16.pop_first();
        }
        self.addr16.insert(node, addr16);
    }

    fn item(&mut self, frame: Result<XbeeFrame<'_>, FrameError>) -> RadioItem {
        match frame {
            Ok(XbeeFrame::ReceivePacket(r)) => {
                let item = RadioItem::Frame {
                    node: NodeAddr::Link(r.src64.to_vec()),
                    message: Bytes::copy_from_slice(r.data),
                };
                self.cache(r.src64, r.src16);
                item
            }
            Ok(XbeeFrame::TransmitStatus(s)) => {
                let node = self.pending.remove(&s.frame_id).map(|p| p.node);
                if !s.is_success()
                    && let Some(n) = node
                {
                    self.addr16.remove(&n);
                }
                RadioItem::TxStatus(TxOutcome {
                    frame_id: s.frame_id,
                    node,
                    delivered: s.is_success(),
                    status: Some(s.delivery_status),
                })
            }
            Ok(other) => RadioItem::Ignored {
                frame_type: other.frame_type(),
            },
            Err(FrameError::UnknownFrameType(t)) => RadioItem::Ignored { frame_type: t },
            Err(e) => RadioItem::Dropped(e.into()),
        }
    }
}

impl Decoder for XbeeCodec {
    type Item = RadioItem;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<RadioItem>> {
        let (used, frame) = self.decoder.feed(src);
        let item = frame.map(|f| self.link.item(f.and_then(|f| f.parse())));
        let _ = src.split_to(used.min(src.len()));
        Ok(item)
    }
}

impl Encoder<RadioOut> for XbeeCodec {
    type Error = io::Error;

    fn encode(&mut self, item: RadioOut, dst: &mut BytesMut) -> io::Result<()> {
        let request = match &item.to {
            RadioDest::Unicast(NodeAddr::Link(addr)) => {
                let dest64: [u8; 8] = addr.as_slice().try_into().map_err(|_| {
                    invalid(format!(
                        "an XBee address has 8 octets, not {} ({})",
                        addr.len(),
                        crate::core::wnid::hex(addr)
                    ))
                })?;
                let mut r = TransmitRequest::unicast(0, dest64, &item.message);
                r.dest16 = self.cached_addr16(&dest64).unwrap_or(UNKNOWN_16);
                r
            }
            RadioDest::Unicast(other) => {
                return Err(invalid(format!("an XBee port cannot address {other}")));
            }
            RadioDest::Broadcast { radius } => {
                TransmitRequest::broadcast(0, *radius & 0x03, &item.message)
            }
        };
        let max = xbee::max_encoded_len(14usize.saturating_add(item.message.len()));
        let mut request = request;
        let mut probe = [0u8; 0];
        // Validate the size first, so a frame id is allocated only for a frame that is sent.
        if let Err(e @ FrameError::TooLong { .. }) =
            XbeeFrame::TransmitRequest(request).encode(self.mode, &mut probe)
        {
            return Err(invalid(e));
        }
        if request.dest64 != xbee::BROADCAST_64 {
            request.frame_id = self.link.allocate_id(request.dest64);
        }
        let mode = self.mode;
        append(dst, max, |out| {
            XbeeFrame::TransmitRequest(request).encode(mode, out)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use sn_codec::framing::{ReceivePacket, TransmitStatus};

    use super::*;
    use crate::radio::FrameDrop;
    use crate::radio::test_util::decode_all;

    const NODE: [u8; 8] = [0x00, 0x13, 0xA2, 0x00, 0x41, 0x5B, 0x6C, 0x2D];

    fn rx(src64: [u8; 8], src16: u16, data: &[u8]) -> Vec<u8> {
        let f = XbeeFrame::ReceivePacket(ReceivePacket {
            src64,
            src16,
            options: 0,
            data,
        });
        let mut b = vec![0u8; 256];
        let n = f.encode(ApiMode::Escaped, &mut b).unwrap();
        b.truncate(n);
        b
    }

    fn status(frame_id: u8, delivery_status: u8) -> Vec<u8> {
        let f = XbeeFrame::TransmitStatus(TransmitStatus {
            frame_id,
            dest16: 0x1234,
            retry_count: 0,
            delivery_status,
            discovery_status: 0,
        });
        let mut b = vec![0u8; 64];
        let n = f.encode(ApiMode::Escaped, &mut b).unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn receive_packets_survive_noise_and_any_split() {
        let mut wire = vec![0x11, 0x7D, 0x00];
        wire.extend(rx(NODE, 0x1234, &[0x02, 0x16]));
        let mut bad = rx([1; 8], 0xFFFE, &[0x02, 0x16]);
        let last = bad.len() - 1;
        bad[last] ^= 0x01; // checksum
        wire.extend(bad);
        wire.extend([0x7E, 0x00]); // cut short by the next frame
        wire.extend(rx([2; 8], 0x7D7E, &[0x03, 0x05, 0x00]));
        for chunk in [1, 2, 3, 7, wire.len()] {
            let mut c = XbeeCodec::new(true);
            let items = decode_all(&mut c, &wire, chunk);
            assert_eq!(
                items,
                vec![
                    RadioItem::Frame {
                        node: NodeAddr::Link(NODE.to_vec()),
                        message: Bytes::from_static(&[0x02, 0x16])
                    },
                    RadioItem::Dropped(FrameDrop::Checksum),
                    RadioItem::Dropped(FrameDrop::Truncated),
                    RadioItem::Frame {
                        node: NodeAddr::Link(vec![2; 8]),
                        message: Bytes::from_static(&[0x03, 0x05, 0x00])
                    },
                ],
                "chunk {chunk}"
            );
            assert_eq!(c.cached_addr16(&NODE), Some(0x1234));
            assert_eq!(c.cached_addr16(&[2; 8]), Some(0x7D7E));
            assert_eq!(c.cached_addr16(&[1; 8]), None);
        }
    }

    #[test]
    fn unicast_uses_a_fresh_frame_id_and_the_cached_16_bit_address() {
        let mut c = XbeeCodec::new(true);
        decode_all(&mut c, &rx(NODE, 0x1234, &[0x02, 0x16]), 64);
        let mut dst = BytesMut::new();
        for _ in 0..2 {
            c.encode(
                RadioOut {
                    to: RadioDest::Unicast(NodeAddr::Link(NODE.to_vec())),
                    message: Bytes::from_static(&[0x03, 0x05, 0x00]),
                },
                &mut dst,
            )
            .unwrap();
        }
        let mut d = XbeeDecoder::<256>::new(ApiMode::Escaped);
        let mut ids = vec![];
        let mut rest = &dst[..];
        while !rest.is_empty() {
            let (used, item) = d.feed(rest);
            if let Some(item) = item {
                match item.unwrap().parse().unwrap() {
                    XbeeFrame::TransmitRequest(t) => {
                        assert_eq!((t.dest64, t.dest16), (NODE, 0x1234));
                        assert_eq!(t.data, &[0x03, 0x05, 0x00]);
                        ids.push(t.frame_id);
                    }
                    other => panic!("{other:?}"),
                }
            }
            rest = &rest[used..];
        }
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(c.pending(), 2);
    }

    #[test]
    fn the_spec_example_connack_is_framed_byte_for_byte() {
        let mut c = XbeeCodec::new(true);
        let mut dst = BytesMut::new();
        c.encode(
            RadioOut {
                to: RadioDest::Unicast(NodeAddr::Link(NODE.to_vec())),
                message: Bytes::from_static(&[0x03, 0x05, 0x00]),
            },
            &mut dst,
        )
        .unwrap();
        assert_eq!(
            &dst[..],
            &[
                0x7E, 0x00, 0x7D, 0x31, 0x10, 0x01, 0x00, 0x7D, 0x33, 0xA2, 0x00, 0x41, 0x5B, 0x6C,
                0x2D, 0xFF, 0xFE, 0x00, 0x00, 0x03, 0x05, 0x00, 0xFF,
            ]
        );
    }

    #[test]
    fn transmit_status_is_matched_and_failures_time_out_or_drop_the_cache() {
        let mut c = XbeeCodec::new(true);
        decode_all(&mut c, &rx(NODE, 0x1234, &[0x02, 0x16]), 64);
        let out = |c: &mut XbeeCodec| {
            let mut dst = BytesMut::new();
            c.encode(
                RadioOut {
                    to: RadioDest::Unicast(NodeAddr::Link(NODE.to_vec())),
                    message: Bytes::from_static(&[0x02, 0x17]),
                },
                &mut dst,
            )
            .unwrap();
        };
        out(&mut c);
        out(&mut c);
        out(&mut c);
        let mut wire = status(1, 0x00);
        wire.extend(status(2, 0x24)); // address not found
        wire.extend(status(99, 0x00)); // unknown id
        let items = decode_all(&mut c, &wire, 5);
        assert_eq!(
            items,
            vec![
                RadioItem::TxStatus(TxOutcome {
                    frame_id: 1,
                    node: Some(NODE),
                    delivered: true,
                    status: Some(0)
                }),
                RadioItem::TxStatus(TxOutcome {
                    frame_id: 2,
                    node: Some(NODE),
                    delivered: false,
                    status: Some(0x24)
                }),
                RadioItem::TxStatus(TxOutcome {
                    frame_id: 99,
                    node: None,
                    delivered: true,
                    status: Some(0)
                }),
            ]
        );
        assert_eq!(c.cached_addr16(&NODE), None, "failure forgets the address");
        let now = StdInstant::now();
        assert!(c.expire(now).is_empty());
        let late = c.expire(now + STATUS_TIMEOUT + Duration::from_millis(1));
        assert_eq!(
            late,
            vec![TxOutcome {
                frame_id: 3,
                node: Some(NODE),
                delivered: false,
                status: None
            }]
        );
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn broadcasts_use_the_broadcast_address_the_radius_and_no_status() {
        let mut c = XbeeCodec::new(false);
        let mut dst = BytesMut::new();
        c.encode(
            RadioOut {
                to: RadioDest::Broadcast { radius: 2 },
                message: Bytes::from_static(&[0x05, 0x00, 0x01, 0x03, 0x84]),
            },
            &mut dst,
        )
        .unwrap();
        let mut d = XbeeDecoder::<256>::new(ApiMode::Unescaped);
        let (_, item) = d.feed(&dst);
        match item.unwrap().unwrap().parse().unwrap() {
            XbeeFrame::TransmitRequest(t) => {
                assert_eq!((t.frame_id, t.dest64, t.radius), (0, xbee::BROADCAST_64, 2));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn frame_ids_wrap_and_skip_zero_reporting_overwritten_requests() {
        let mut c = XbeeCodec::new(true);
        let mut dst = BytesMut::new();
        for _ in 0..256 {
            c.encode(
                RadioOut {
                    to: RadioDest::Unicast(NodeAddr::Link(NODE.to_vec())),
                    message: Bytes::from_static(&[0x02, 0x17]),
                },
                &mut dst,
            )
            .unwrap();
        }
        assert_eq!(c.pending(), 255);
        let lost = c.expire(StdInstant::now());
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].frame_id, 1);
    }

    #[test]
    fn bad_destinations_are_invalid_input() {
        let mut c = XbeeCodec::new(true);
        let mut dst = BytesMut::new();
        for to in [
            RadioDest::Unicast(NodeAddr::Link(vec![1, 2])),
            RadioDest::Unicast(NodeAddr::PointToPoint),
        ] {
            let e = c
                .encode(
                    RadioOut {
                        to,
                        message: Bytes::from_static(&[0x02, 0x17]),
                    },
                    &mut dst,
                )
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(dst.is_empty());
        assert_eq!(c.pending(), 0);
    }
}
